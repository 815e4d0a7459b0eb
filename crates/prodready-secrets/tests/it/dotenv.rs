//! The `.env` parser: one `check` per syntax rule, errors that never quote a value, and properties.

use prodready_secrets::{ExposeSecret as _, parse_dotenv, render_dotenv};
use proptest::prelude::*;

#[track_caller]
fn check(input: &str, expected: &[(&str, &str)]) {
    let parsed = parse_dotenv(".env", input).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(&str, &str)> = parsed.iter().map(|e| (e.key.as_str(), e.value.expose_secret())).collect();
    assert_eq!(got, expected, "input: {input:?}");
}

#[track_caller]
fn check_error(input: &str, expected: &str) {
    let err = parse_dotenv(".env", input).unwrap_err().to_string();
    assert_eq!(err, expected);
}

#[test]
fn plain_values() {
    check("A=1\nB=two words\n", &[("A", "1"), ("B", "two words")]);
    check("A = spaced  \n", &[("A", "spaced")]);
    check("EMPTY=\nNEXT=x", &[("EMPTY", ""), ("NEXT", "x")]);
    check(
        "URL=postgres://u:p@h:5432/db?sslmode=require",
        &[("URL", "postgres://u:p@h:5432/db?sslmode=require")],
    );
    check("EQ=a=b=c", &[("EQ", "a=b=c")]);
    check("dotted.key-name=v", &[("dotted.key-name", "v")]);
}

#[test]
fn export_comments_and_blank_lines() {
    check("# comment\n\nexport A=1\n  # indented comment\nB=2 # trailing\n", &[("A", "1"), ("B", "2")]);
    check("HASH=abc#def\n", &[("HASH", "abc#def")]);
    check("HASH=#abc\nNOTE= # only a comment\n", &[("HASH", "#abc"), ("NOTE", "")]);
    check("exported=1\n", &[("exported", "1")]);
    check("\u{feff}A=1\r\nB=2\r\n", &[("A", "1"), ("B", "2")]);
}

#[test]
fn single_quotes_are_literal() {
    check(r"A='it is \n literal $HOME'", &[("A", r"it is \n literal $HOME")]);
    check("A='# not a comment' # a comment", &[("A", "# not a comment")]);
    check(
        "KEY='-----BEGIN KEY-----\nabc\n-----END KEY-----'\nNEXT=1",
        &[("KEY", "-----BEGIN KEY-----\nabc\n-----END KEY-----"), ("NEXT", "1")],
    );
}

#[test]
fn double_quotes_take_escapes_and_span_lines() {
    check(r#"A="line1\nline2\t\"q\" \\ \$HOME \x""#, &[("A", "line1\nline2\t\"q\" \\ $HOME \\x")]);
    check("A=\"one\ntwo\"\nB=3", &[("A", "one\ntwo"), ("B", "3")]);
    check("A=\"${OTHER}\"", &[("A", "${OTHER}")]);
}

#[test]
fn errors_name_the_line_and_never_the_value() {
    check_error("A=1\nnot a pair\n", ".env:2: expected KEY=value, found no `=` after the first word");
    check_error("A=1\nsk_live_51Habc\n", ".env:2: expected KEY=value, found no `=` after the first word");
    check_error(
        "A=1\n=orphan-secret\n",
        ".env:2: expected KEY=value; a key starts with a letter or `_` and holds letters, digits, `_`, `.` or `-`",
    );
    check_error(
        "A=1\nB=\"open-secret\nC=3\n",
        ".env:2: the value of B opens a double quote that is never closed",
    );
    check_error(
        "A='sec'ret\n",
        ".env:1: unexpected text after the closing quote of A; quote the whole value",
    );
    check_error("A=1\nB=2\nA=3\n", ".env:3: A is already defined on line 1; keep one");
    check_error(
        "1A=x\n",
        ".env:1: expected KEY=value; a key starts with a letter or `_` and holds letters, digits, `_`, `.` or `-`",
    );
}

proptest! {
    #[test]
    fn rendered_values_read_back_unchanged(values in proptest::collection::vec("\\PC*|[\"'\\\\$#= \\n\\t\\r]*", 1..8)) {
        let keys: Vec<String> = (0..values.len()).map(|i| format!("KEY_{i}")).collect();
        let text = render_dotenv(keys.iter().map(String::as_str).zip(values.iter().map(String::as_str)));
        let parsed = parse_dotenv(".env", &text).unwrap();
        let got: Vec<&str> = parsed.iter().map(|e| e.value.expose_secret()).collect();
        prop_assert_eq!(got, values.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn any_input_parses_or_fails_cleanly(text in "\\PC*|[A-Za-z_=\"'\\\\#\\n ]*") {
        match parse_dotenv(".env", &text) {
            Ok(entries) => prop_assert!(entries.iter().all(|e| !e.key.is_empty())),
            Err(e) => prop_assert!(e.to_string().starts_with(".env:")),
        }
    }
}
