/// Quotes an identifier for SQL text (always, which is simpler than `quote_ident`'s "when needed" and
/// as safe): `a"b` becomes `"a""b"`.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for SQL text (standard_conforming_strings, on since PostgreSQL 9.1).
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        for (name, quoted) in
            [("plain", "\"plain\""), ("a\"b", "\"a\"\"b\""), ("Mixed Case", "\"Mixed Case\"")]
        {
            assert_eq!(super::ident(name), quoted);
        }
        for (value, quoted) in [("x", "'x'"), ("it's", "'it''s'"), ("\\", "'\\'")] {
            assert_eq!(super::literal(value), quoted);
        }
    }
}
