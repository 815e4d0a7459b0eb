//! One function per parser that reads outside input. Each returns whether the input was accepted; an
//! error is fine, a panic is a finding.

use std::path::Path;

use crate::Target;

/// Every fuzz target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "config",
        run: config,
        builtin: config_seeds,
        dictionary: &[
            "[backup]",
            "[database]",
            "[logging]",
            "[logging.ship]",
            "[alerts]",
            "[alerts.slack]",
            "[checklist]",
            "[[checklist.checks]]",
            "[secrets]",
            "[tracing]",
            "[loadtest]",
            "jobs = ",
            "zstd_level = ",
            "url = ",
            "min_score = ",
            "= \"",
            "\"\"\"",
            "'''",
            "= [",
            "= {",
            "}",
            "]",
            "\n",
            "=",
            "1e400",
            "-0",
            "inf",
            "nan",
            "1979-05-27T07:32:00Z",
            "\\u0000",
            "\"30d\"",
            "true",
        ],
    },
    Target {
        name: "dotenv",
        run: dotenv,
        builtin: none,
        dictionary: &[
            "export ", "=", "\"", "'", "\\n", "\\", "#", "\n", "\r\n", "${", "}", "\u{feff}", "KEY",
        ],
    },
    Target {
        name: "positions",
        run: positions,
        builtin: none,
        dictionary: &[
            "{",
            "}",
            "[",
            "]",
            "\"version\":",
            "\"files\":",
            "\"path\":",
            "\"offset\":",
            "\"sent\":",
            "\"seen\":",
            "18446744073709551615",
            "-1",
            "1e99",
            "null",
            ",",
            "\"",
        ],
    },
    Target {
        name: "manifest",
        run: manifest,
        builtin: none,
        dictionary: &[
            "{",
            "}",
            "[",
            "]",
            "\"id\":",
            "\"objects\":",
            "\"name\":",
            "\"tables\":",
            "\"parts\":",
            "../",
            "/",
            "\"schema\":",
            "null",
            "18446744073709551615",
            ",",
            "\"",
        ],
    },
    Target {
        name: "rules",
        run: rules,
        builtin: rules_seeds,
        dictionary: &[
            "groups:\n",
            "- name: ",
            "  rules:\n",
            "  - alert: ",
            "    expr: ",
            "    for: ",
            "    labels:\n",
            "      severity: ",
            "    annotations:\n",
            "{{ $value }}",
            "{{",
            "}}",
            "[5m]",
            "rate(",
            ")",
            "- ",
            "? ",
            "&a ",
            "*a",
            "!!str ",
            "|\n",
            ">\n",
            "---\n",
            "[",
            "{",
            "'",
            "\"",
            "#",
        ],
    },
    Target {
        name: "loki_push_json",
        run: loki_push_json,
        builtin: push_json_seeds,
        dictionary: &[
            "{\"streams\":[",
            "{\"stream\":{",
            "\"values\":[",
            "[\"",
            "\",\"",
            "\"]",
            "]}",
            "}",
            "\\u0000",
        ],
    },
    Target {
        name: "loki_push_protobuf",
        run: loki_push_protobuf,
        builtin: push_protobuf_seeds,
        dictionary: &["\u{0}", "\u{ff}", "\n"],
    },
];

fn text(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

fn config(input: &[u8]) -> bool {
    prodready::config::parse(Path::new("fuzz.toml"), &text(input)).is_ok()
}

fn dotenv(input: &[u8]) -> bool {
    prodready_secrets::parse_dotenv("fuzz.env", &text(input)).is_ok()
}

fn positions(input: &[u8]) -> bool {
    prodready_logging::ship::check_positions(Path::new("positions.json"), input).is_ok()
}

fn manifest(input: &[u8]) -> bool {
    prodready_backup::catalog::parse_manifest("20261206T000000Z-0000", input).is_ok()
}

fn rules(input: &[u8]) -> bool {
    match prodready_metrics_alerts::rules::RuleFile::from_yaml(&text(input)) {
        Ok(file) => {
            let _ = prodready_metrics_alerts::lint::lint(&file, std::time::Duration::from_secs(15));
            true
        }
        Err(_) => false,
    }
}

fn loki_push_json(input: &[u8]) -> bool {
    prodready_test_support::decode_push(false, input).is_ok()
}

fn loki_push_protobuf(input: &[u8]) -> bool {
    prodready_test_support::decode_push(true, input).is_ok()
}

fn none() -> Vec<Vec<u8>> {
    Vec::new()
}

fn config_seeds() -> Vec<Vec<u8>> {
    let effective = prodready::config::Config::default().redacted().to_string();
    vec![prodready::config::STARTER.as_bytes().to_vec(), effective.into_bytes()]
}

fn rules_seeds() -> Vec<Vec<u8>> {
    vec![include_str!("../../../deploy/prometheus/rules/prodready.rules.yml").as_bytes().to_vec()]
}

fn batch() -> prodready_logging::loki::Batch {
    use prodready_logging::loki::{Batch, Entry, Labels};
    let mut batch = Batch::new();
    let labels = Labels::new([("job", "app"), ("level", "info")]).expect("valid labels");
    for n in 0..3 {
        let metadata = vec![("trace_id".to_owned(), format!("{n:032x}"))];
        batch.push(
            &labels,
            Entry { timestamp_ns: 1_796_400_000_000_000_000 + n, line: format!("{{\"n\":{n}}}"), metadata },
        );
    }
    batch
}

fn push_json_seeds() -> Vec<Vec<u8>> {
    vec![batch().encode_json()]
}

fn push_protobuf_seeds() -> Vec<Vec<u8>> {
    vec![batch().encode_protobuf()]
}
