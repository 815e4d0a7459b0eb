//! Rules files: the embedded one compiles, a caller's rules and allowlists join it, bad ones are named.

use prodready_scan::secrets::{self, Ruleset, RulesetBuilder, entropy, redact};

fn check(rules: &Ruleset, text: &str, expected: &[&str]) {
    let (found, _) = secrets::scan_bytes(rules, "f.txt", text.as_bytes());
    let got: Vec<String> = found.iter().map(|f| format!("{}:{} {}", f.line, f.column, f.rule)).collect();
    assert_eq!(got, expected, "{text}");
}

fn error(origin: &str, text: &str) -> String {
    RulesetBuilder::new().file(origin, text).and_then(RulesetBuilder::build).unwrap_err().to_string()
}

#[test]
fn builtin_rules_cover_the_providers() {
    let ids: Vec<String> = Ruleset::builtin().rules().map(|r| r.id.clone()).collect();
    for id in [
        "aws-access-key-id",
        "gcp-api-key",
        "azure-storage-account-key",
        "github-pat",
        "gitlab-pat",
        "slack-webhook-url",
        "stripe-key",
        "private-key",
        "jwt",
        "database-url-password",
        "generic-api-key",
    ] {
        assert!(ids.iter().any(|i| i == id), "no rule {id}");
    }
    assert!(ids.len() >= 45, "{}", ids.len());
    assert!(Ruleset::builtin().rules().all(|r| !r.title.is_empty() && !r.help.is_empty()));
}

#[test]
fn user_rules_allowlists_and_disabled_rules() {
    let user = r#"
[allow]
secrets = ['''^ghp_R8a2''']
paths = ['''^fixtures/''']

[[rules]]
id = "acme-key"
title = "ACME internal key"
severity = "critical"
keywords = ["acme_"]
regex = '''\b(acme_[a-z0-9]{24})\b'''
entropy = 3.0
"#;
    let rules =
        RulesetBuilder::new().file("prodready.toml [scan]", user).unwrap().disable("jwt").build().unwrap();
    check(&rules, "k = acme_4kq9z2m7x1c8v5b3n6t0w2ya", &["1:5 acme-key"]);
    check(&rules, "ghp_R8a2kQ0wLm3ZpX7vN1cT5yB9dF4hJ6sE2uGq", &[]);
    check(&rules, "ghp_Z8a2kQ0wLm3ZpX7vN1cT5yB9dF4hJ6sE2uGq", &["1:1 github-pat"]);
    check(
        &rules,
        "t = eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        &[],
    );
    assert!(rules.rules().any(|r| r.id == "acme-key" && r.title == "ACME internal key"));
}

#[test]
fn bad_rules_are_named_with_their_place() {
    assert_eq!(
        error("rules.toml", "[[rules]]\nid = \"x\"\nregex = '(unclosed'\n"),
        "rules.toml: rule `x`: regex does not compile: regex parse error:\n    (unclosed\n    ^\nerror: unclosed group"
    );
    assert_eq!(
        error("rules.toml", "[[rules]]\nid = \"x\"\nregex = 'a'\nkeywords = 3\n"),
        "rules.toml:4: invalid type: integer `3`, expected a sequence"
    );
    assert_eq!(
        error("rules.toml", "[[rules]]\nid = \"x\"\nregex = 'a'\nsecret_group = 2\n"),
        "rules.toml: rule `x`: secret_group = 2 but the regex has 0 groups"
    );
    assert_eq!(
        error("rules.toml", "[[rules]]\nid = \"x\"\nregex = 'a'\nentropee = 2\n"),
        "rules.toml:4: unknown field `entropee`, expected one of `id`, `title`, `description`, `help`, `severity`, `keywords`, `regex`, `secret_group`, `entropy`, `min_digits`, `allow`, `multiline`, `generic`"
    );
    assert_eq!(
        RulesetBuilder::new().disable("nope").build().unwrap_err().to_string(),
        "disabled rules: no rule `nope` to disable"
    );
}

#[test]
fn entropy_and_redaction() {
    assert_eq!(entropy(b"aaaa"), 0.0);
    assert_eq!(entropy(b"abcd"), 2.0);
    assert_eq!(redact(b"ghp_R8a2kQ0wLm3ZpX7vN1cT5yB9dF4hJ6sE2uGq"), "ghp_****");
    assert_eq!(redact(b"hunter2pass"), "h****");
    assert_eq!(redact(b"abc"), "****");
}
