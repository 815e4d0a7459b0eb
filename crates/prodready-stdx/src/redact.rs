//! Hiding secrets in what is shown: one list of secret-looking names, one mask, one way to treat URLs.
//!
//! This is security code. Everything that displays a URL, a connection string, a query string or a
//! configuration value that may hold a credential goes through here, and the table-driven tests below are
//! the whole specification.

/// What a hidden value is replaced with (the same text `secrecy` prints for a secret's `Debug`).
pub const MASK: &str = "[REDACTED]";

/// Parts of a name that mark its value as secret (matched case-insensitively anywhere in the name).
const SECRET_PARTS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "key",
    "signature",
    "auth",
    "credential",
    "cookie",
    "session",
    "webhook",
];

/// Names that are secret only as a whole word (`code` is an OAuth code; `exit_code` is not secret).
const SECRET_WORDS: &[&str] = &["code", "sig", "pass"];

/// Whether a value named `name` (a configuration key, a query parameter, a connection parameter, a
/// header) should be hidden. A name ending in `_file`, `_path` or `_dir` names where a secret lives, not
/// the secret, and is shown.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    if ["_file", "_path", "_dir"].iter().any(|s| name.ends_with(s)) {
        return false;
    }
    SECRET_WORDS.contains(&name.as_str()) || SECRET_PARTS.iter().any(|part| name.contains(part))
}

/// A URL or connection string fit to show: the password of `scheme://user:password@host` masked (the user
/// stays), the values of secret-looking query parameters masked; for a libpq `key=value` string, the
/// values of secret-looking keys masked. Anything else comes back unchanged.
pub fn url(s: &str) -> String {
    if !s.contains("://") {
        if s.contains('=') && !s.contains('/') {
            return conninfo(s);
        }
        return s.to_owned();
    }
    let mut out = s.to_owned();
    let scheme_end = out.find("://").unwrap_or_default() + 3;
    let authority_end = out[scheme_end..].find(['/', '?', '#']).map_or(out.len(), |i| scheme_end + i);
    // The last '@' ends the user information (a password may hold an '@').
    if let Some(at) = out[scheme_end..authority_end].rfind('@') {
        let userinfo = &out[scheme_end..scheme_end + at];
        if let Some(colon) = userinfo.find(':') {
            out.replace_range(scheme_end + colon + 1..scheme_end + at, MASK);
        }
    }
    if let Some(q) = out.find('?') {
        let (head, rest) = out.split_at(q + 1);
        let (query, fragment) = rest.split_once('#').map_or((rest, None), |(q, f)| (q, Some(f)));
        let mut shown = format!("{head}{}", self::query(query, &[]));
        if let Some(fragment) = fragment {
            shown.push('#');
            shown.push_str(fragment);
        }
        out = shown;
    }
    out
}

/// `text` (an error from a client library, say) with the secrets of `url` masked wherever they appear:
/// its password and the values of its secret-looking query parameters, in whatever form the library
/// quoted the URL.
pub fn quoted(text: &str, url: &str) -> String {
    let mut secrets = Vec::new();
    if let Some(scheme_end) = url.find("://").map(|i| i + 3) {
        let authority_end = url[scheme_end..].find(['/', '?', '#']).map_or(url.len(), |i| scheme_end + i);
        if let Some(at) = url[scheme_end..authority_end].rfind('@') {
            let userinfo = &url[scheme_end..scheme_end + at];
            if let Some((_, password)) = userinfo.split_once(':') {
                secrets.push(password.to_owned());
            }
        }
    }
    if let Some((_, rest)) = url.split_once('?') {
        let query = rest.split('#').next().unwrap_or_default();
        for (key, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
            if is_secret_name(&crate::text::percent_decode(&key.replace('+', " "))) {
                secrets.push(value.to_owned());
            }
        }
    }
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), MASK);
        let decoded = crate::text::percent_decode(secret);
        if !decoded.is_empty() && decoded != *secret {
            out = out.replace(decoded.as_str(), MASK);
        }
    }
    out
}

/// A query string (`a=1&token=x`) with the values of secret-looking parameters, and of the parameters
/// named in `also` (case-insensitive), masked. Names are compared after percent-decoding.
pub fn query(query: &str, also: &[String]) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) => {
                let decoded = crate::text::percent_decode(&key.replace('+', " "));
                if is_secret_name(&decoded) || also.iter().any(|a| a.eq_ignore_ascii_case(&decoded)) {
                    format!("{key}={MASK}")
                } else {
                    pair.to_owned()
                }
            }
            None => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A libpq `key=value key='quoted value'` string with secret values masked.
fn conninfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        let trimmed = rest.trim_start();
        out.push_str(&rest[..rest.len() - trimmed.len()]);
        rest = trimmed;
        let Some(eq) = rest.find('=') else {
            out.push_str(rest);
            break;
        };
        let key = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        // A value is quoted ('...' with \' escapes) or runs to the next space.
        let len = if let Some(quoted) = after.strip_prefix('\'') {
            let mut escaped = false;
            let end = quoted
                .char_indices()
                .find(|&(_, c)| {
                    let close = c == '\'' && !escaped;
                    escaped = c == '\\' && !escaped;
                    close
                })
                .map_or(quoted.len(), |(i, _)| i + 1);
            end + 1
        } else {
            after.find(char::is_whitespace).unwrap_or(after.len())
        };
        let value_start = rest.len() - after.len();
        if is_secret_name(key) {
            out.push_str(&rest[..value_start]);
            out.push_str(MASK);
        } else {
            out.push_str(&rest[..value_start + len]);
        }
        rest = &after[len.min(after.len())..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{is_secret_name, query, quoted, url};

    #[test]
    fn texts_quoting_a_url() {
        let endpoint = "http://app:pw%40x@127.0.0.1:1/v1/traces?token=tk-1&page=2";
        let cases = [
            (
                "error sending request for url (http://app:pw%40x@127.0.0.1:1/v1/traces?token=tk-1&page=2)",
                "error sending request for url (http://app:[REDACTED]@127.0.0.1:1/v1/traces?token=[REDACTED]&page=2)",
            ),
            ("password pw@x rejected", "password [REDACTED] rejected"),
            ("nothing secret here: page=2", "nothing secret here: page=2"),
        ];
        for (text, expected) in cases {
            assert_eq!(quoted(text, endpoint), expected, "{text}");
        }
        assert_eq!(quoted("http://h/ failed", "http://h/"), "http://h/ failed");
    }

    #[test]
    fn secret_names() {
        let secret = [
            "password",
            "PGPASSWORD",
            "db_passwd",
            "pwd",
            "pass",
            "passphrase",
            "client_secret",
            "access_token",
            "api_key",
            "apikey",
            "X-Api-Key",
            "private_key",
            "signature",
            "sig",
            "Authorization",
            "aws_credentials",
            "cookie",
            "session_id",
            "webhook_url",
            "code",
        ];
        let plain = [
            "user",
            "host",
            "sslmode",
            "key_file",
            "secrets_path",
            "token_dir",
            "exit_code",
            "page",
            "dbname",
            "passenger",
            "compass",
        ];
        for name in secret {
            assert!(is_secret_name(name), "{name} should be secret");
        }
        for name in plain {
            assert!(!is_secret_name(name), "{name} should be shown");
        }
    }

    #[test]
    fn urls() {
        let cases = [
            ("postgres://app:hunter2@db:5432/app", "postgres://app:[REDACTED]@db:5432/app"),
            (
                "postgres://app@db/app?password=x&sslmode=require",
                "postgres://app@db/app?password=[REDACTED]&sslmode=require",
            ),
            ("http://u:p@h:1@x/y", "http://u:[REDACTED]@x/y"),
            ("https://u:p%40ss@loki:3100/push?a=1#frag", "https://u:[REDACTED]@loki:3100/push?a=1#frag"),
            (
                "https://hooks.example/services?token=abc&x=1",
                "https://hooks.example/services?token=[REDACTED]&x=1",
            ),
            ("http://127.0.0.1:8080/a%20b?api%5Fkey=1", "http://127.0.0.1:8080/a%20b?api%5Fkey=[REDACTED]"),
            ("http://user@host/", "http://user@host/"),
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            ("/var/lib/backups", "/var/lib/backups"),
            (
                "host=db user=app password=s3cr3t dbname=app",
                "host=db user=app password=[REDACTED] dbname=app",
            ),
            ("host=db password='a b\\' c' dbname=app", "host=db password=[REDACTED] dbname=app"),
            ("host = db password = x", "host = db password = [REDACTED]"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(url(input), expected, "{input}");
        }
    }

    #[test]
    fn queries() {
        assert_eq!(query("page=2&token=x&flag", &[]), "page=2&token=[REDACTED]&flag");
        assert_eq!(query("page=2&Tenant=x", &["tenant".to_owned()]), "page=2&Tenant=[REDACTED]");
    }
}
