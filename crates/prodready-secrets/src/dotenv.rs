//! A `.env` parser for `migrate`. The accepted syntax is the common subset of docker compose, python-dotenv
//! and the Ruby dotenv gem:
//!
//! - `KEY=value`, optionally preceded by `export `; whitespace around `=` is ignored. A key is
//!   `[A-Za-z_][A-Za-z0-9_.-]*`.
//! - Blank lines and lines starting with `#` are comments. After an unquoted value, ` #` (whitespace then
//!   `#`) starts a comment; trailing whitespace is trimmed.
//! - `'single quoted'`: taken literally, may span lines.
//! - `"double quoted"`: may span lines; `\n`, `\r`, `\t`, `\"`, `\\` and `\$` are escapes, any other
//!   backslash is kept as it is.
//! - `${VAR}` and `$VAR` are kept literally (no interpolation), so a value is never silently changed.
//! - A key defined twice is an error (which one was meant is not ours to guess).
//!
//! Errors name the file, the line and the problem; they never quote the line, which may hold a secret.

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// One `KEY=value` of a `.env` file.
#[derive(Debug)]
pub struct DotEnvEntry {
    pub key: String,
    /// The line the entry starts on (1-based).
    pub line: usize,
    pub value: SecretString,
}

/// Parses the text of a `.env` file; `path` names it in errors.
pub fn parse_dotenv(path: &str, text: &str) -> Result<Vec<DotEnvEntry>> {
    let err = |line: usize, message: String| Error::DotEnv { path: path.to_owned(), line, message };
    let text = Zeroizing::new(text.strip_prefix('\u{feff}').unwrap_or(text).replace("\r\n", "\n"));
    let chars: Zeroizing<Vec<char>> = Zeroizing::new(text.chars().collect());
    let mut entries: Vec<DotEnvEntry> = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let at_eol = |i: usize| i >= chars.len() || chars[i] == '\n';
    while i < chars.len() {
        let start_line = line;
        // Leading whitespace.
        while i < chars.len() && matches!(chars[i], ' ' | '\t' | '\r') {
            i += 1;
        }
        if at_eol(i) || chars[i] == '#' {
            while !at_eol(i) {
                i += 1;
            }
            i += 1;
            line += 1;
            continue;
        }
        // `export ` prefix.
        if chars[i..].starts_with(&['e', 'x', 'p', 'o', 'r', 't'])
            && matches!(chars.get(i + 6), Some(' ' | '\t'))
        {
            i += 6;
            while i < chars.len() && matches!(chars[i], ' ' | '\t') {
                i += 1;
            }
        }
        let key_start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '.' | '-')) {
            i += 1;
        }
        let key: String = chars[key_start..i].iter().collect();
        if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-') {
            return Err(err(
                start_line,
                "expected KEY=value; a key starts with a letter or `_` and holds letters, digits, `_`, `.` or `-`"
                    .to_owned(),
            ));
        }
        while i < chars.len() && matches!(chars[i], ' ' | '\t') {
            i += 1;
        }
        if i >= chars.len() || chars[i] != '=' {
            // The would-be key is not quoted: a stray line may be a value.
            return Err(err(start_line, "expected KEY=value, found no `=` after the first word".to_owned()));
        }
        i += 1;
        let value_start = i;
        while i < chars.len() && matches!(chars[i], ' ' | '\t') {
            i += 1;
        }
        let spaced = i > value_start;
        let mut value = Zeroizing::new(String::new());
        match chars.get(i) {
            Some(&quote @ ('\'' | '"')) => {
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(err(
                            start_line,
                            format!(
                                "the value of {key} opens a {} quote that is never closed",
                                quote_name(quote)
                            ),
                        ));
                    };
                    i += 1;
                    if c == quote {
                        break;
                    }
                    if c == '\n' {
                        line += 1;
                    }
                    if c == '\\' && quote == '"' {
                        match chars.get(i) {
                            Some('n') => value.push('\n'),
                            Some('r') => value.push('\r'),
                            Some('t') => value.push('\t'),
                            Some(&e @ ('"' | '\\' | '$')) => value.push(e),
                            _ => {
                                value.push('\\');
                                continue;
                            }
                        }
                        i += 1;
                        continue;
                    }
                    value.push(c);
                }
                // After the closing quote: whitespace, then an optional comment.
                while i < chars.len() && matches!(chars[i], ' ' | '\t' | '\r') {
                    i += 1;
                }
                if !at_eol(i) && chars[i] != '#' {
                    return Err(err(
                        line,
                        format!("unexpected text after the closing quote of {key}; quote the whole value"),
                    ));
                }
                while !at_eol(i) {
                    i += 1;
                }
            }
            _ => {
                // `KEY= # note` is empty with a comment; `KEY=#abc` is the value `#abc`.
                let mut prev_space = spaced;
                while !at_eol(i) {
                    let c = chars[i];
                    if c == '#' && prev_space {
                        while !at_eol(i) {
                            i += 1;
                        }
                        break;
                    }
                    prev_space = matches!(c, ' ' | '\t');
                    value.push(c);
                    i += 1;
                }
                let trimmed = value.trim_end_matches([' ', '\t', '\r']).len();
                value.truncate(trimmed);
            }
        }
        i += 1;
        line += 1;
        if let Some(first) = entries.iter().find(|e| e.key == key) {
            return Err(err(
                start_line,
                format!("{key} is already defined on line {}; keep one", first.line),
            ));
        }
        entries.push(DotEnvEntry { key, line: start_line, value: SecretString::from(value.to_string()) });
    }
    Ok(entries)
}

fn quote_name(quote: char) -> &'static str {
    if quote == '"' { "double" } else { "single" }
}

/// Renders entries as a `.env` file that [`parse_dotenv`] reads back to the same values (every value
/// double-quoted and escaped).
pub fn render_dotenv<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (key, value) in entries {
        out.push_str(key);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '$' => out.push_str("\\$"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        out.push_str("\"\n");
    }
    out
}
