//! Text helpers.

/// Decodes `%XX` escapes (as in URLs); anything else, an invalid escape included, is kept as it is.
/// Bytes that do not form UTF-8 become U+FFFD. `+` is not a space here: replace it first for form data.
pub fn percent_decode(text: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi * 16 + lo);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escapes text for HTML element content and quoted attribute values (`&`, `<`, `>`, `"`, `'`).
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn html_escape_covers_content_and_attributes() {
        assert_eq!(
            super::html_escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(super::html_escape("plain é"), "plain é");
    }

    #[test]
    fn decodes_escapes_and_keeps_the_rest() {
        let cases = [
            ("a%20b", "a b"),
            ("%2Ftmp%2fca.pem", "/tmp/ca.pem"),
            ("100%", "100%"),
            ("%zz%4", "%zz%4"),
            ("a+b", "a+b"),
            ("%C3%A9", "\u{e9}"),
            ("%FF", "\u{fffd}"),
        ];
        for (input, expected) in cases {
            assert_eq!(super::percent_decode(input), expected, "{input}");
        }
    }
}
