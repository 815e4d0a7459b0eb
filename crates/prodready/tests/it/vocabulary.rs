//! Libraries speak their own vocabulary. No string literal in a library crate names a `prodready`
//! command, one of its flags, a section of `prodready.toml`, a `PRODREADY_*` variable or a `cargo xtask`
//! step: a team embedding the crate has none of those. The binary adds them when it maps an error to a
//! message (`error::hint`) or builds a library's options.

use std::path::{Path, PathBuf};

use clap::CommandFactory as _;

/// Every library crate's `src/` (the binary, test support and the fuzz targets are not libraries for users).
fn library_sources() -> Vec<PathBuf> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(crates).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("prodready-") && name != "prodready-test-support" && name != "prodready-fuzz" {
            collect(&entry.path().join("src"), &mut files);
        }
    }
    assert!(files.len() > 50, "library sources not found under {}", crates.display());
    files
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literals of a Rust source file with their line numbers (comments skipped).
fn string_literals(source: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\n' => line += 1,
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if next == Some('*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
                i += 2;
                continue;
            }
            // A char literal ('x', '\n', '"'); a lifetime ('a) has no closing quote there.
            '\'' if next == Some('\\') => {
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
            }
            '\'' if chars.get(i + 2) == Some(&'\'') => i += 2,
            'r' if (next == Some('"') || next == Some('#')) && !is_ident(chars.get(i.wrapping_sub(1))) => {
                let mut j = i + 1;
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) == Some(&'"') {
                    let start_line = line;
                    let mut text = String::new();
                    j += 1;
                    while j < chars.len() {
                        if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                            break;
                        }
                        line += usize::from(chars[j] == '\n');
                        text.push(chars[j]);
                        j += 1;
                    }
                    out.push((start_line, text));
                    i = j + hashes + 1;
                    continue;
                }
            }
            '"' => {
                let start_line = line;
                let mut text = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                        // A line continuation (`\` at the end of a line) drops the newline and indentation.
                        if chars.get(i) == Some(&'\n') {
                            line += 1;
                            i += 1;
                            while chars.get(i).is_some_and(|c| c.is_whitespace()) {
                                line += usize::from(chars[i] == '\n');
                                i += 1;
                            }
                            continue;
                        }
                    }
                    line += usize::from(chars[i] == '\n');
                    text.push(chars[i]);
                    i += 1;
                }
                out.push((start_line, text));
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn is_ident(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// What a library must not say: `prodready` command paths, the binary's long flags (the ones no tool it
/// runs also has), configuration sections, `PRODREADY_` variables, `cargo xtask`.
fn forbidden() -> (Vec<String>, Vec<String>) {
    let mut phrases = vec!["cargo xtask".to_owned(), "PRODREADY_".to_owned(), "prodready.toml".to_owned()];
    let mut flags = Vec::new();
    fn walk(cmd: &clap::Command, path: &str, phrases: &mut Vec<String>, flags: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long().filter(|l| !["help", "version"].contains(l)) {
                flags.push(format!("--{long}"));
            }
        }
        for sub in cmd.get_subcommands() {
            let path = if path.is_empty() {
                sub.get_name().to_owned()
            } else {
                format!("{path} {}", sub.get_name())
            };
            phrases.push(format!("prodready {path}"));
            if path.contains(' ') {
                phrases.push(format!("`{path}"));
            }
            walk(sub, &path, phrases, flags);
        }
    }
    walk(&prodready::cli::Cli::command(), "", &mut phrases, &mut flags);
    let config = toml::Value::try_from(prodready::config::Config::default()).unwrap();
    for (section, value) in config.as_table().unwrap() {
        phrases.push(format!("[{section}]"));
        phrases.push(format!("[{section}."));
        phrases.push(format!("[[{section}."));
        if let Some(table) = value.as_table() {
            for (key, value) in table {
                if value.is_table() {
                    phrases.push(format!("[{section}.{key}]"));
                }
            }
        }
    }
    flags.sort();
    flags.dedup();
    phrases.sort();
    phrases.dedup();
    (phrases, flags)
}

/// Whether `text` holds `flag` as a whole word (not `--output-path` for `--output`, nor `--jobs=4`, the
/// form the client tools get).
fn names_flag(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + flag.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '-')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '=')
    })
}

#[test]
fn the_scanner_finds_literals_and_skips_comments() {
    let source = "// \"in a comment\" prodready backup run\nlet a = 'x'; let b = '\"'; fn f<'a>() {}\nlet s = \"one \\\"two\\\" \\\n    three\"; let r = r#\"raw \"q\"\"#;\n/* \"block\" */ let t = \"last\";";
    let found: Vec<(usize, String)> = string_literals(source);
    assert_eq!(
        found,
        [(3, "one \"two\" three".to_owned()), (4, "raw \"q\"".to_owned()), (5, "last".to_owned())]
    );
    assert!(names_flag("pass --force to", "--force"));
    assert!(!names_flag("--output-path x", "--output"));
    assert!(!names_flag("--jobs=4", "--jobs"));
}

/// Strings that name a command as data, not as a hint to the reader: (file, the string, why).
const ALLOWED: &[(&str, &str, &str)] = &[
    (
        "prodready-checklist/src/probe/files.rs",
        "prodready scan",
        "one of the security scanners the CI check recognises in a workflow file",
    ),
    ("prodready-scan/src/secrets/git.rs", "--verify", "git rev-parse's own flag, passed to git"),
];

#[test]
fn no_library_string_names_the_binarys_commands_flags_or_configuration() {
    let (phrases, flags) = forbidden();
    assert!(phrases.iter().any(|p| p == "prodready backup run") && phrases.iter().any(|p| p == "[secrets]"));
    assert!(flags.iter().any(|f| f == "--store"), "{flags:?}");
    let mut found = Vec::new();
    for file in library_sources() {
        let source = std::fs::read_to_string(&file).unwrap();
        for (line, text) in string_literals(&source) {
            let phrase = phrases.iter().find(|p| text.contains(p.as_str()));
            let flag = flags.iter().find(|f| names_flag(&text, f));
            let allowed = ALLOWED.iter().any(|(f, t, _)| file.ends_with(f) && text == *t);
            if let Some(what) = phrase.or(flag).filter(|_| !allowed) {
                found.push(format!("{}:{line}: names `{what}`: {text:?}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "library strings that speak the binary's language (move the hint into crates/prodready):\n{}",
        found.join("\n")
    );
}

/// The configuration file's compound key names (`zstd_level`, `drill_tables`...), at any depth: a
/// library message naming one speaks the file's language. One-word keys (`url`, `jobs`) are ordinary
/// words and left out.
fn compound_keys() -> Vec<String> {
    fn walk(value: &toml::Value, out: &mut Vec<String>) {
        match value {
            toml::Value::Table(table) => {
                for (key, value) in table {
                    if key.contains('_') {
                        out.push(key.clone());
                    }
                    walk(value, out);
                }
            }
            toml::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut keys = Vec::new();
    walk(&toml::Value::try_from(prodready::config::Config::default()).unwrap(), &mut keys);
    keys.sort();
    keys.dedup();
    keys
}

/// Whether `text` holds `word` with no identifier character on either side.
fn names_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn no_library_string_names_a_configuration_key() {
    let keys = compound_keys();
    assert!(keys.iter().any(|k| k == "zstd_level"), "{keys:?}");
    let mut found = Vec::new();
    for file in library_sources() {
        let source = std::fs::read_to_string(&file).unwrap();
        for (line, text) in string_literals(&source) {
            // A string that is only an identifier is data (a kind's name), not a message.
            if !text.contains(' ') {
                continue;
            }
            if let Some(key) = keys.iter().find(|k| names_word(&text, k)) {
                found.push(format!("{}:{line}: names `{key}`: {text:?}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "library strings that name a configuration key (say it in the library's own terms; the binary's \
         error::hint names the key):\n{}",
        found.join("\n")
    );
}

/// A library's public error enums are `#[non_exhaustive]`: a new failure mode is not a breaking
/// change for the teams that match on them.
#[test]
fn public_error_enums_are_non_exhaustive() {
    let mut open = Vec::new();
    for file in library_sources() {
        let source = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = source.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = line.trim_start().strip_prefix("pub enum ") else { continue };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.ends_with("Error") {
                continue;
            }
            // The attributes right above the enum, up to its doc comment or the previous item.
            let marked = lines[..i]
                .iter()
                .rev()
                .take_while(|l| l.trim_start().starts_with("#["))
                .any(|l| l.contains("non_exhaustive"));
            if !marked {
                open.push(format!("{}:{}: pub enum {name}", file.display(), i + 1));
            }
        }
    }
    assert!(open.is_empty(), "public error enums without #[non_exhaustive]:\n{}", open.join("\n"));
}
