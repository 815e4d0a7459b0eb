//! libpq's password file (`~/.pgpass`): `hostname:port:database:username:password` lines, `*` matching
//! anything, `\:` and `\\` escaped, `#` comments. The first matching line gives the password.
//!
//! The file is read only when the caller names it: in the URL (`passfile=`), or once for the process with
//! [`set_default`] (the `prodready` binary passes `$PGPASSFILE`, else `~/.pgpass`). As libpq does, a file
//! that the group or others may read is ignored.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static DEFAULT: OnceLock<PathBuf> = OnceLock::new();

/// The password file used when a URL names none. Set once, by the program (later calls are ignored).
pub fn set_default(path: PathBuf) {
    let _ = DEFAULT.set(path);
}

/// The password file set by [`set_default`], if any.
pub fn default_path() -> Option<&'static Path> {
    DEFAULT.get().map(PathBuf::as_path)
}

/// What a connection is matched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// A host name or address; a Unix socket directory matches `localhost`, as in libpq.
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
    pub user: &'a str,
}

/// The password for `target` in the file at `path`: `None` when the file is missing, unreadable, open to
/// the group or others, or has no matching line.
pub fn lookup(path: &Path, target: Target<'_>) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || prodready_stdx::fs::open_to_others(&meta).is_some() {
        return None;
    }
    find(&std::fs::read_to_string(path).ok()?, target)
}

/// The first line of `text` matching `target`.
pub fn find(text: &str, target: Target<'_>) -> Option<String> {
    let host = if target.host.starts_with('/') { "localhost" } else { target.host };
    let port = target.port.to_string();
    let wanted = [host, port.as_str(), target.database, target.user];
    text.lines().filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty()).find_map(|line| {
        let fields = split(line);
        let [h, p, d, u, password] = fields.as_slice() else { return None };
        let matches = [h, p, d, u].iter().zip(wanted).all(|(field, value)| *field == "*" || *field == value);
        matches.then(|| password.clone())
    })
}

/// The five fields of a line, unescaped.
fn split(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().expect("one field at least").extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field at least").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::{Target, find};

    const FILE: &str = "# comment\n\
db.internal:5432:shop:app:s3cr:et\\\\x\n\
*:6432:*:app:pooler\n\
localhost:5432:*:postgres:local\n\
we\\:ird:5432:*:*:escaped\n";

    fn check(host: &str, port: u16, database: &str, user: &str, expected: Option<&str>) {
        let target = Target { host, port, database, user };
        assert_eq!(find(FILE, target).as_deref(), expected, "{target:?}");
    }

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        check("db.internal", 5432, "shop", "app", Some("s3cr:et\\x"));
        check("db.internal", 5432, "other", "app", None);
        check("anything", 6432, "x", "app", Some("pooler"));
        check("localhost", 5432, "x", "postgres", Some("local"));
        check("/var/run/postgresql", 5432, "x", "postgres", Some("local"));
        check("we:ird", 5432, "x", "y", Some("escaped"));
        check("db.internal", 5433, "shop", "app", None);
    }
}
