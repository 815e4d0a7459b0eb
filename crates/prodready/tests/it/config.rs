use std::path::Path;

use expect_test::{Expect, expect};
use prodready::config::{self, Config};
use prodready::env::Env;

/// Loads `text` as `prodready.toml` under `env` and renders either the error or the given keys.
fn check(text: &str, env: &[(&str, &str)], expected: Expect) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prodready.toml");
    std::fs::write(&path, text).unwrap();
    let mut pairs = vec![("HOME", "/home/ops")];
    pairs.extend_from_slice(env);
    let actual = match config::load(Some(&path), &Env::from_pairs(pairs)) {
        Ok(loaded) => render(&loaded.config),
        Err(err) => err.to_string().replace(&path.display().to_string(), "prodready.toml"),
    };
    expected.assert_eq(&actual);
}

fn render(config: &Config) -> String {
    format!(
        "jobs={} store={} db={} min_score={} timeout={:?} data_dir={}",
        config.backup.jobs,
        config.backup.store.as_deref().unwrap_or("-"),
        config.database_url(),
        config.checklist.min_score,
        config.checklist.timeout,
        config.general.data_dir.as_deref().unwrap_or(Path::new("-")).display(),
    )
}

#[test]
fn embedded_defaults_come_from_the_environment() {
    check(
        "",
        &[],
        expect![[
            r#"jobs=2 store=/home/ops/.local/share/prodready/backups db=postgres://postgres@127.0.0.1:5432/postgres min_score=7 timeout=10s data_dir=/home/ops/.local/share/prodready"#
        ]],
    );
    check(
        "",
        &[("DATABASE_URL", "postgres://app@db:5432/app"), ("XDG_DATA_HOME", "/data")],
        expect![[
            r#"jobs=2 store=/data/prodready/backups db=postgres://app@db:5432/app min_score=7 timeout=10s data_dir=/data/prodready"#
        ]],
    );
}

#[test]
fn the_file_sets_keys_and_the_environment_overrides_them() {
    let file = "[backup]\njobs = 4\nstore = \"s3://b/p\"\n[checklist]\ntimeout = \"2s\"\n";
    check(
        file,
        &[],
        expect![[
            r#"jobs=4 store=s3://b/p db=postgres://postgres@127.0.0.1:5432/postgres min_score=7 timeout=2s data_dir=/home/ops/.local/share/prodready"#
        ]],
    );
    check(
        file,
        &[
            ("PRODREADY_BACKUP__JOBS", "3"),
            ("PRODREADY_CHECKLIST__MIN_SCORE", "8.5"),
            ("PRODREADY_GENERAL__DATA_DIR", "/srv"),
        ],
        expect![[
            r#"jobs=3 store=s3://b/p db=postgres://postgres@127.0.0.1:5432/postgres min_score=8.5 timeout=2s data_dir=/srv"#
        ]],
    );
    // A value that looks like a number still works for a string key.
    check(
        "",
        &[("PRODREADY_BACKUP__STORE", "2024")],
        expect![[
            r#"jobs=2 store=2024 db=postgres://postgres@127.0.0.1:5432/postgres min_score=7 timeout=10s data_dir=/home/ops/.local/share/prodready"#
        ]],
    );
    // A nested key.
    let dir = tempfile::tempdir().unwrap();
    let loaded = config::load(
        None,
        &Env::from_pairs([
            ("PRODREADY_BACKUP__RETENTION__KEEP_DAILY", "14"),
            ("HOME", dir.path().to_str().unwrap()),
        ]),
    )
    .unwrap();
    assert_eq!(loaded.config.backup.retention.keep_daily, 14);
    assert_eq!(loaded.overrides, ["PRODREADY_BACKUP__RETENTION__KEEP_DAILY"]);
}

#[test]
fn bad_files_name_the_line_column_and_key() {
    check(
        "[general]\n\n[database]\n\n[backup]\nzstd_level = 3\njobs = \"three\"\n",
        &[],
        expect![[
            r#"prodready.toml:7:8: backup.jobs: invalid type: string "three", expected u16 (write the value with the expected type, e.g. a number without quotes)"#
        ]],
    );
    check(
        "[backup]\njobz = 3\n",
        &[],
        expect![
            "prodready.toml:2:1: backup.jobz: unknown field `jobz`, expected one of `store`, `jobs`, `zstd_level`, `encrypt_to`, `s3_endpoint`, `s3_path_style`, `smoke_sql`, `drill_tables`, `retention`, `wal`, `schedule`, `verify_schedule`, `prune_schedule` (remove it or fix its spelling; `prodready init --path FILE` writes every key with its default)"
        ],
    );
    check(
        "[backups]\njobs = 3\n",
        &[],
        expect![
            "prodready.toml:1:2: backups: unknown field `backups`, expected one of `general`, `database`, `backup`, `secrets`, `scan`, `logging`, `alerts`, `stack`, `daemon`, `database_monitoring`, `tracing`, `loadtest`, `checklist` (remove it or fix its spelling; `prodready init --path FILE` writes every key with its default)"
        ],
    );
    check("[backup\njobs = 3\n", &[], expect![[r#"prodready.toml:1:8: unclosed table, expected `]`"#]]);
    // Ranges are checked when the file is read, with the same location.
    check(
        "[backup]\njobs = 0\n",
        &[],
        expect!["prodready.toml:2:8: backup.jobs: must be at least 1 (connections copying in parallel)"],
    );
    check(
        "[backup]\nzstd_level = 40\n",
        &[],
        expect!["prodready.toml:2:14: backup.zstd_level: 40 is not a zstd level from 1 to 19"],
    );
    check(
        "[checklist]\nmin_score = 11.5\n",
        &[],
        expect!["prodready.toml:2:13: checklist.min_score: 11.5 is not a score from 0 to 10"],
    );
    check(
        "[tracing]\nsample_ratio = -0.5\n",
        &[],
        expect!["prodready.toml:2:16: tracing.sample_ratio: -0.5 is not a ratio from 0.0 to 1.0"],
    );
    check(
        "[checklist]\ntimeout = \"soon\"\n",
        &[],
        expect![[
            r#"prodready.toml:2:11: checklist.timeout: invalid value: string "soon", expected a duration (write a duration such as 30s, 5m, 12h or 90d)"#
        ]],
    );
    check(
        "[secrets]\nbackend = \"vault\"\n",
        &[],
        expect![[
            r#"prodready.toml:2:11: secrets.backend: unknown variant `vault`, expected one of `file`, `aws`, `env`"#
        ]],
    );
}

#[test]
fn bad_overrides_name_the_variable() {
    check(
        "",
        &[("PRODREADY_BACKUP__JOBS", "many")],
        expect![[r#"PRODREADY_BACKUP__JOBS: backup.jobs: invalid type: string "many", expected u16"#]],
    );
    check(
        "",
        &[("PRODREADY_BAKUP__JOBS", "3")],
        expect![
            "PRODREADY_BAKUP__JOBS: bakup: unknown field `bakup`, expected one of `general`, `database`, `backup`, `secrets`, `scan`, `logging`, `alerts`, `stack`, `daemon`, `database_monitoring`, `tracing`, `loadtest`, `checklist`"
        ],
    );
    check(
        "",
        &[("PRODREADY_BACKUP__", "3")],
        expect![[
            r#"PRODREADY_BACKUP__: empty key part; write PRODREADY_<SECTION>__<KEY>, e.g. PRODREADY_BACKUP__JOBS=4"#
        ]],
    );
    check(
        "",
        &[("PRODREADY_BACKUP__JOBS__X", "3")],
        expect!["PRODREADY_BACKUP__JOBS__X: backup.jobs: invalid type: map, expected u16"],
    );
}

#[test]
fn a_missing_named_file_is_a_usage_error() {
    let err = config::load(Some(Path::new("/nonexistent/prodready.toml")), &Env::default()).unwrap_err();
    expect![[r#"/nonexistent/prodready.toml: configuration file not found (named by --config); create one with `prodready init --path /nonexistent/prodready.toml`"#]]
        .assert_eq(&err.to_string());
}

#[test]
fn secrets_are_redacted_for_display() {
    let check = |input: &str, expected: Expect| expected.assert_eq(&prodready_stdx::redact::url(input));
    check("postgres://app:hunter2@db:5432/app", expect!["postgres://app:[REDACTED]@db:5432/app"]);
    check(
        "postgres://app@db/app?password=hunter2&sslmode=require",
        expect!["postgres://app@db/app?password=[REDACTED]&sslmode=require"],
    );
    check("postgres://db/app", expect!["postgres://db/app"]);
    check("http://u:p@h:1@x/y", expect!["http://u:[REDACTED]@x/y"]);
    check(
        "host=db user=app password=hunter2 dbname=app",
        expect!["host=db user=app password=[REDACTED] dbname=app"],
    );

    let env = Env::from_pairs([("DATABASE_URL", "postgres://app:hunter2@db/app"), ("HOME", "/h")]);
    let shown = config::load(None, &env).unwrap().config.redacted().to_string();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("postgres://app:[REDACTED]@db/app"), "{shown}");
}

#[test]
fn the_starter_file_is_the_defaults_and_every_commented_key_is_valid() {
    let env = Env::from_pairs([("HOME", "/h")]);
    let dir = tempfile::tempdir().unwrap();
    let starter = dir.path().join("starter.toml");
    std::fs::write(&starter, config::STARTER).unwrap();
    let defaults = config::load(None, &env).unwrap().config;
    assert_eq!(config::load(Some(&starter), &env).unwrap().config, defaults);

    // Uncomment every `# key = value` line: the result must still be a valid configuration.
    let uncommented: String = config::STARTER
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest)
                if rest
                    .split_once(" = ")
                    .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_')) =>
            {
                rest
            }
            _ => line,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(uncommented.lines().filter(|l| l.contains(" = ") && !l.starts_with('#')).count() > 30);
    std::fs::write(&starter, &uncommented).unwrap();
    if let Err(e) = config::load(Some(&starter), &env) {
        panic!("{e}\n{uncommented}");
    }
}

#[test]
fn check_headers_are_redacted_and_dates_shown_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prodready.toml");
    std::fs::write(
        &path,
        "[[checklist.checks]]\nid = \"api\"\ntitle = \"API\"\ncategory = \"Features\"\nkind = \"http\"\n\
         url = \"http://x\"\nheaders = { Authorization = \"Bearer abc123\", X-Api-Key = \"k-999\" }\n\
         [[checklist.checks]]\nid = \"drill\"\ntitle = \"Drill\"\ncategory = \"Backups\"\nkind = \"manual\"\n\
         attested_at = 2026-10-01\n",
    )
    .unwrap();
    let loaded = config::load(Some(&path), &Env::from_pairs([("HOME", "/h")])).unwrap();
    let toml = loaded.config.redacted().to_string();
    let json = loaded.config.redacted_json().to_string();
    for shown in [&toml, &json] {
        assert!(!shown.contains("abc123") && !shown.contains("k-999"), "{shown}");
    }
    assert!(json.contains("\"attested_at\":\"2026-10-01\""), "{json}");
}

#[test]
fn a_directory_named_as_the_configuration_is_called_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        config::load(Some(dir.path()), &Env::from_pairs([("HOME", "/home/ops")])).unwrap_err().to_string();
    assert!(err.contains("is a directory, not a configuration file (named by --config)"), "{err}");
}
