//! The history scan: every line added by every commit reachable from any ref (`git log -p --all`, or
//! only the commits not reachable from `since`), each finding naming its commit.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{Options, Progress, Ruleset, engine, finish};
use crate::report::{Finding, Report, Stats};
use crate::{Error, Result};

/// Scans the history of the repository at `repo` (a work tree or a directory inside one; paths are
/// relative to it, and only its part of the tree is read). With `since`, only commits not reachable
/// from that revision are read.
pub fn scan_git(
    rules: &Ruleset,
    repo: &Path,
    since: Option<&str>,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report> {
    let git_err = |message: String| Error::Git { repo: repo.to_owned(), message };
    std::fs::metadata(repo).map_err(|source| Error::Read { path: repo.to_owned(), source })?;
    if let Some(rev) = since {
        if rev.starts_with('-') {
            return Err(git_err(format!("`{rev}` is not a revision")));
        }
        let out = git(repo)
            .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{rev}^{{commit}}"))
            .output()
            .map_err(|e| git_err(spawn_message(&e)))?;
        if !out.status.success() {
            return Err(git_err(format!("unknown revision `{rev}` (give a commit, a tag or a branch)")));
        }
    }
    let mut cmd = git(repo);
    cmd.args([
        "log",
        "-p",
        "-U0",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--relative",
        "--format=%x00%H",
        // A merge shows what it adds beyond git's own merge of its parents (a conflict resolved with a
        // secret in it): without this, git log prints no diff for merges at all. git 2.36 or newer.
        "--diff-merges=remerge",
        "--all",
    ]);
    if let Some(rev) = since {
        cmd.arg(format!("^{rev}"));
    }
    cmd.arg("--");
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| git_err(spawn_message(&e)))?;
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut state = State::default_for(rules, options, progress);
    let mut reader = BufReader::with_capacity(1 << 18, stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n =
            reader.read_until(b'\n', &mut line).map_err(|e| git_err(format!("reading `git log`: {e}")))?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        state.line(&line);
    }
    state.flush_file();
    let status = child.wait().map_err(|e| git_err(format!("waiting for `git log`: {e}")))?;
    let stderr = stderr_reader.join().unwrap_or_default();
    if !status.success() {
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(git_err(format!("`git log` failed: {}", first.trim())));
    }
    let stats: Stats = [
        ("commits", state.commits),
        ("files", state.files),
        ("bytes", state.bytes),
        ("skipped_large", state.skipped_large),
        ("skipped_path", state.skipped_path),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok(finish(rules, options, state.findings, state.allowed, stats))
}

fn git(repo: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(repo).args(["-c", "core.quotePath=false", "-c", "diff.noprefix=false"]);
    cmd
}

fn spawn_message(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        "`git` is not installed (install it: apt-get install git)".into()
    } else {
        format!("cannot run `git`: {e}")
    }
}

/// The parser's state: which commit and file we are in, and the added lines gathered for the file.
struct State<'a> {
    rules: &'a Ruleset,
    options: &'a Options,
    progress: &'a dyn Progress,
    commit: String,
    path: Option<String>,
    /// Lines still expected in the current hunk: (old, new).
    hunk: (u64, u64),
    next_line: u32,
    added: Vec<u8>,
    line_map: Vec<u32>,
    findings: Vec<Finding>,
    allowed: u64,
    commits: u64,
    files: u64,
    bytes: u64,
    skipped_large: u64,
    skipped_path: u64,
}

impl<'a> State<'a> {
    fn default_for(rules: &'a Ruleset, options: &'a Options, progress: &'a dyn Progress) -> Self {
        Self {
            rules,
            options,
            progress,
            commit: String::new(),
            path: None,
            hunk: (0, 0),
            next_line: 0,
            added: Vec::new(),
            line_map: Vec::new(),
            findings: Vec::new(),
            allowed: 0,
            commits: 0,
            files: 0,
            bytes: 0,
            skipped_large: 0,
            skipped_path: 0,
        }
    }

    fn line(&mut self, line: &[u8]) {
        if self.hunk != (0, 0) {
            match line.first() {
                Some(b'+') => {
                    self.hunk.1 = self.hunk.1.saturating_sub(1);
                    if self.path.is_some() {
                        self.added.extend_from_slice(&line[1..]);
                        self.added.push(b'\n');
                        self.line_map.push(self.next_line);
                    }
                    self.next_line += 1;
                    return;
                }
                Some(b'-') => {
                    self.hunk.0 = self.hunk.0.saturating_sub(1);
                    return;
                }
                Some(b' ') => {
                    self.hunk = (self.hunk.0.saturating_sub(1), self.hunk.1.saturating_sub(1));
                    self.next_line += 1;
                    return;
                }
                Some(b'\\') => return,
                _ => self.hunk = (0, 0),
            }
        }
        if let Some(hash) = line.strip_prefix(b"\0") {
            self.flush_file();
            self.commit = String::from_utf8_lossy(hash).trim().to_owned();
            self.commits += 1;
            self.progress.commit();
        } else if line.starts_with(b"diff ") {
            self.flush_file();
            self.path = None;
        } else if let Some(path) = line.strip_prefix(b"+++ ") {
            // git ends a name holding a space with a TAB, so the name's end is unambiguous.
            let path = path.strip_suffix(b"\t").unwrap_or(path);
            self.path = if path == b"/dev/null" {
                None
            } else {
                let path = unquote(path);
                Some(path.strip_prefix("b/").map_or(path.clone(), str::to_owned))
            };
        } else if line.starts_with(b"@@ ") {
            let (old, new, start) = hunk_header(line);
            self.hunk = (old, new);
            self.next_line = start;
        }
    }

    /// Scans the added lines gathered for the current file.
    fn flush_file(&mut self) {
        if self.added.is_empty() {
            return;
        }
        let added = std::mem::take(&mut self.added);
        let map = std::mem::take(&mut self.line_map);
        let Some(path) = self.path.clone() else { return };
        self.progress.scanned(added.len() as u64);
        if self.rules.path_allowed(&path) {
            self.skipped_path += 1;
            return;
        }
        if added.len() as u64 > self.options.max_file_size {
            self.skipped_large += 1;
            return;
        }
        self.files += 1;
        self.bytes += added.len() as u64;
        let hits = engine::scan(self.rules, &added);
        if !hits.is_empty() {
            let (found, allowed) =
                engine::findings(self.rules, &path, &added, &hits, Some(&map), Some(&self.commit));
            self.findings.extend(found);
            self.allowed += allowed;
        }
    }
}

/// `@@ -a[,b] +c[,d] @@ ...` → (b, d, c); a missing count is 1.
fn hunk_header(line: &[u8]) -> (u64, u64, u32) {
    let text = String::from_utf8_lossy(line);
    let mut parts = text.split(' ').skip(1);
    let range = |s: Option<&str>| -> (u64, u64) {
        let s = s.unwrap_or("").trim_start_matches(['-', '+']);
        let mut it = s.splitn(2, ',');
        let start = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let count = it.next().map_or(Some(1), |n| n.parse().ok()).unwrap_or(0);
        (start, count)
    };
    let (_, old) = range(parts.next());
    let (start, new) = range(parts.next());
    (old, new, u32::try_from(start).unwrap_or(u32::MAX))
}

/// A path as git prints it: plain, or C-quoted (`"a\tb"`, octal escapes for bytes).
fn unquote(path: &[u8]) -> String {
    if path.len() < 2 || path[0] != b'"' || path[path.len() - 1] != b'"' {
        return String::from_utf8_lossy(path).into_owned();
    }
    let inner = &path[1..path.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' && i + 1 < inner.len() {
            let c = inner[i + 1];
            if c.is_ascii_digit() && i + 3 < inner.len() + 1 && inner[i + 1..].len() >= 3 {
                let oct = &inner[i + 1..i + 4];
                if let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(oct), 8) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
            out.push(match c {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                b'a' => 7,
                b'b' => 8,
                b'f' => 12,
                b'v' => 11,
                other => other,
            });
            i += 2;
        } else {
            out.push(inner[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunk_headers_and_quoted_paths() {
        assert_eq!(hunk_header(b"@@ -0,0 +1,3 @@"), (0, 3, 1));
        assert_eq!(hunk_header(b"@@ -5 +7 @@ fn main() {"), (1, 1, 7));
        assert_eq!(hunk_header(b"@@ -5,2 +4,0 @@"), (2, 0, 4));
        assert_eq!(unquote(b"\"b/a\\tb\\303\\244.txt\""), "b/a\tb\u{e4}.txt");
        assert_eq!(unquote(b"b/plain.rs"), "b/plain.rs");
    }
}
