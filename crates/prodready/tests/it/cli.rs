use crate::{prodready, stderr, stdout};

#[test]
fn help_lists_only_working_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = prodready(dir.path(), &[], &["--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    let mut commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // The set matters here, not the order help shows them in.
    commands.sort_unstable();
    let mut expected = [
        "check",
        "backup",
        "alerts",
        "secrets",
        "scan",
        "logs",
        "stack",
        "daemon",
        "db",
        "trace",
        "load",
        "notify",
        "init",
        "config",
        "completions",
        "man",
        "help",
    ];
    expected.sort_unstable();
    assert_eq!(commands, expected);
}

#[test]
fn init_then_config_show_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = prodready(dir.path(), &[], &["config", "show"]);
    assert!(embedded.status.success(), "{}", stderr(&embedded));
    assert!(!stdout(&embedded).contains("$__toml_private"), "{}", stdout(&embedded));
    assert!(stdout(&embedded).starts_with("# source: embedded defaults"));

    let init = prodready(dir.path(), &[], &["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    assert!(dir.path().join("prodready.toml").is_file());
    let shown = prodready(dir.path(), &[], &["config", "show"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(stdout(&shown).starts_with("# source: prodready.toml"));
    let body = |s: String| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(stdout(&shown)), body(stdout(&embedded)));

    // Refuses to overwrite without --force.
    let again = prodready(dir.path(), &[], &["init"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    std::fs::write(dir.path().join("prodready.toml"), "# mine\n").unwrap();
    assert_eq!(prodready(dir.path(), &[], &["init"]).status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(dir.path().join("prodready.toml")).unwrap(), "# mine\n");
    assert!(prodready(dir.path(), &[], &["init", "--force"]).status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("prodready.toml")).unwrap(),
        prodready::config::STARTER
    );
}

#[test]
fn an_environment_override_shows_in_config_show() {
    let dir = tempfile::tempdir().unwrap();
    let out = prodready(dir.path(), &[("PRODREADY_BACKUP__JOBS", "3")], &["config", "show"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(shown.contains("# overridden by PRODREADY_BACKUP__JOBS"), "{shown}");
    let backup = shown.split("[backup]").nth(1).unwrap();
    assert!(backup.lines().any(|l| l == "jobs = 3"), "{shown}");

    let json = prodready(dir.path(), &[("PRODREADY_BACKUP__JOBS", "3")], &["config", "show", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["backup"]["jobs"], 3);
}

#[test]
fn a_wrong_type_on_line_7_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = "# prodready\n[general]\n\n[database]\n\n[backup]\njobs = \"four\"\n";
    std::fs::write(dir.path().join("prodready.toml"), text).unwrap();
    let out = prodready(dir.path(), &[], &["config", "show"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).starts_with("error: prodready.toml:7:8: backup.jobs: invalid type"),
        "{}",
        stderr(&out)
    );

    std::fs::write(dir.path().join("other.toml"), "[logging]\nfilter = \"info\"\nlevel = \"debug\"\n")
        .unwrap();
    let out = prodready(dir.path(), &[("PRODREADY_CONFIG", "other.toml")], &["config", "show"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: other.toml:3:1: logging.level: unknown field `level`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_show_never_prints_a_database_password() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        prodready(dir.path(), &[("DATABASE_URL", "postgres://app:hunter2@db/app")], &["config", "show"]);
    assert!(out.status.success());
    assert!(!stdout(&out).contains("hunter2") && !stderr(&out).contains("hunter2"));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(prodready(dir.path(), &[], &["no-such-command"]).status.code(), Some(2));
    assert_eq!(prodready(dir.path(), &[], &["config", "show", "--bogus"]).status.code(), Some(2));
    assert_eq!(prodready(dir.path(), &[], &["--version"]).status.code(), Some(0));
    assert_eq!(prodready(dir.path(), &[], &["init", "--help"]).status.code(), Some(0));
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prodready"))
        .args(["completions", "bash"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before the script is written
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn completions_and_man_pages_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    let bash = prodready(dir.path(), &[], &["completions", "bash"]);
    assert!(bash.status.success());
    assert!(stdout(&bash).contains("complete -F _prodready"), "{}", stdout(&bash));
    let man = prodready(dir.path(), &[], &["man", "--out", "pages"]);
    assert!(man.status.success(), "{}", stderr(&man));
    let page = std::fs::read_to_string(dir.path().join("pages/prodready-config-show.1")).unwrap();
    assert!(page.contains("effective configuration"), "{page}");
}
