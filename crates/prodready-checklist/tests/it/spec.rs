use expect_test::{Expect, expect};
use prodready_checklist::{CheckSpec, Date, validate_all};

#[derive(serde::Deserialize)]
struct File {
    checks: Vec<CheckSpec>,
}

/// Parses `[[checks]]` tables and renders each validated kind, or the first error.
fn check(toml_text: &str, expected: Expect) {
    let file: File = match toml::from_str(toml_text) {
        Ok(f) => f,
        Err(e) => return expected.assert_eq(&format!("parse: {}", e.message())),
    };
    let actual = match validate_all(&file.checks) {
        Ok(checks) => {
            checks.iter().map(|c| format!("{} {:?}", c.meta.id, c.kind)).collect::<Vec<_>>().join("\n")
        }
        Err(e) => e.to_string(),
    };
    expected.assert_eq(&actual);
}

#[test]
fn the_briefs_examples_validate() {
    check(
        r#"
[[checks]]
id = "api-health"
title = "API health endpoint answers"
category = "Monitoring"
kind = "http"
must_have = true
weight = 2
remediation = "Start the API: systemctl start api"
url = "http://127.0.0.1:8080/healthz"
expect_status = 200
body_contains = "ok"
max_response_ms = 500

[[checks]]
id = "restore-drill"
title = "Restore drill done this quarter"
category = "Backups"
kind = "manual"
owner = "ops@example.com"
evidence = "https://wiki.example.com/drills/2026-q4"
attested_at = 2026-10-01
expires_after = "90d"

[[checks]]
id = "migrations"
title = "Migrations apply cleanly"
category = "CI/CD"
kind = "command"
run = ["sh", "-c", "make migrate-check"]
"#,
        expect![[r#"
            api-health Http(HttpCheck { url: "http://127.0.0.1:8080/healthz", method: "GET", headers: {}, body: None, expect_status: One(200), body_contains: Some("ok"), json: {}, max_response_ms: Some(500) })
            restore-drill Manual(ManualCheck { owner: Some("ops@example.com"), evidence: Some("https://wiki.example.com/drills/2026-q4"), attested_on: Some(Date { year: 2026, month: 10, day: 1 }), expires_after: Some(7776000s) })
            migrations Command { run: ["sh", "-c", "make migrate-check"] }"#]],
    );
}

const HEAD: &str = "[[checks]]\nid = \"x\"\ntitle = \"X\"\ncategory = \"Features\"\n";

fn with(rest: &str, expected: Expect) {
    check(&format!("{HEAD}{rest}"), expected);
}

#[test]
fn every_kind_requires_its_keys() {
    with("kind = \"http\"\n", expect!["check `x`: url: is required for kind `http`"]);
    with("kind = \"tls\"\n", expect!["check `x`: address: is required for kind `tls`"]);
    with("kind = \"docs\"\n", expect!["check `x`: path: is required for kind `docs`"]);
    with("kind = \"coverage\"\nreports = []\n", expect!["check `x`: reports: names no report"]);
    with(
        "kind = \"coverage\"\nmin_percent = 70\nreports = [{ path = \"a.info\", min_percent = 80 }]\n",
        expect!["check `x`: min_percent: goes inside each of `reports`"],
    );
    with(
        "kind = \"coverage\"\nreports = [{ path = \"a.info\", min_percent = 180 }]\n",
        expect!["check `x`: reports: must be between 0 and 100, not 180"],
    );
    with(
        "kind = \"alerting\"\n",
        expect![
            "check `x`: path: give exactly one of `path` (an alertmanager.yml) and `url` (a running Alertmanager)"
        ],
    );
    with(
        "kind = \"command\"\n",
        expect![[r#"check `x`: run: needs a program and its arguments, e.g. ["make", "check"]"#]],
    );
    with("kind = \"postgres\"\n", expect!["check `x`: url: is required for kind `postgres`"]);
    with("", expect!["check `x`: kind: is missing"]);
}

#[test]
fn keys_of_another_kind_are_refused() {
    with(
        "kind = \"tcp\"\naddress = \"db:5432\"\nurl = \"http://x\"\n",
        expect!["check `x`: url: does not apply to kind `tcp` (its keys: address)"],
    );
    with(
        "kind = \"manual\"\nrun = [\"true\"]\n",
        expect![
            "check `x`: run: does not apply to kind `manual` (its keys: owner, evidence, attested_at, expires_after)"
        ],
    );
}

#[test]
fn values_are_checked() {
    with(
        "kind = \"tcp\"\naddress = \"db\"\n",
        expect!["check `x`: address: `db` must be HOST:PORT, e.g. example.com:443"],
    );
    with(
        "kind = \"http\"\nurl = \"ftp://x\"\n",
        expect!["check `x`: url: `ftp://x` must start with http:// or https://"],
    );
    with(
        "kind = \"http\"\nurl = \"http://x\"\nmethod = \"FETCH\"\n",
        expect!["check `x`: method: `FETCH` is not an HTTP method"],
    );
    with(
        "kind = \"http\"\nurl = \"http://x\"\njson = { status = \"ok\" }\n",
        expect![[r#"check `x`: json: `status` is not a JSON pointer; write it like "/status""#]],
    );
    with(
        "kind = \"tls\"\naddress = \"h:443\"\nmin_days = 30\nwarn_days = 7\n",
        expect!["check `x`: warn_days: (7) must be at least min_days (30)"],
    );
    with(
        "kind = \"coverage\"\npath = \"c\"\nmin_percent = 120.0\n",
        expect!["check `x`: min_percent: must be between 0 and 100, not 120"],
    );
    with(
        "kind = \"tcp\"\naddress = \"h:1\"\nweight = -1\n",
        expect!["check `x`: weight: must be a number >= 0, not -1"],
    );
    with(
        "kind = \"manual\"\nattested_at = 10:30:00\n",
        expect!["check `x`: attested_at: must be a date like 2026-10-01"],
    );
    with(
        "kind = \"gopher\"\n",
        expect![
            "parse: unknown variant `gopher`, expected one of `http`, `tls`, `tcp`, `postgres`, `prometheus_targets`, `loki`, `otlp`, `docs`, `coverage`, `loadtest`, `command`, `manual`, `backup`, `alert_rules`, `env_files`, `loki_retention`, `alerting`, `attestations`, `scan_report`, `ci_workflow`, `dashboards`"
        ],
    );
    with(
        "kind = \"tcp\"\naddres = \"h:1\"\n",
        expect![
            "parse: unknown field `addres`, expected one of `id`, `title`, `category`, `kind`, `must_have`, `weight`, `remediation`, `docs`, `not_applicable`, `timeout`, `url`, `method`, `headers`, `body`, `expect_status`, `body_contains`, `json`, `max_response_ms`, `address`, `server_name`, `min_days`, `warn_days`, `job`, `path`, `sections`, `min_percent`, `run`, `owner`, `evidence`, `attested_at`, `expires_after`, `store`, `database`, `max_age`, `max_verify_age`, `promtool`, `channels`, `steps`, `scans`, `reports`"
        ],
    );
    check(
        &format!("{HEAD}kind = \"tcp\"\naddress = \"h:1\"\n{HEAD}kind = \"tcp\"\naddress = \"h:2\"\n"),
        expect!["check `x` is declared twice; ids must be unique"],
    );
    check(
        "[[checks]]\nid = \"a b\"\ntitle = \"t\"\n",
        expect!["check `a b`: id: must be non-empty letters, digits, `-`, `_` or `.`"],
    );
}

#[test]
fn dates_round_trip_through_day_numbers() {
    for days in (-800_000..800_000).step_by(997) {
        let date = Date::from_days_since_epoch(days);
        assert_eq!(date.days_since_epoch(), days, "{date}");
    }
    let check =
        |days: i64, expected: &str| assert_eq!(Date::from_days_since_epoch(days).to_string(), expected);
    check(0, "1970-01-01");
    check(-1, "1969-12-31");
    check(11_016, "2000-02-29");
    check(20_786, "2026-11-29");
}
