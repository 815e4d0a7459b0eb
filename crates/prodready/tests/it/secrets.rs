//! `prodready secrets` end to end: the file backend and Secrets Manager on moto, `exec` with real
//! processes and signals, and every output stream searched for the values.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use prodready_test_support::Moto;

use crate::{prodready, stderr, stdout};

/// Values that must never appear in any output but `get`'s.
const VALUES: &[&str] =
    &["pg-pass-7f3a9c", "tok-live-19d2e8", "line-one-8c1b\nline-two-8c1b", "rotated-4e7d21"];

fn command(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prodready"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .envs(crate::coverage_env())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .envs(env.iter().copied());
    cmd
}

fn with_stdin(dir: &Path, env: &[(&str, &str)], args: &[&str], input: &str) -> Output {
    let mut child = command(dir, env, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn put(dir: &Path, env: &[(&str, &str)], name: &str, value: &str) {
    let out = with_stdin(dir, env, &["secrets", "put", name], value);
    assert!(out.status.success(), "put {name}: {}", stderr(&out));
}

fn get(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let mut all = vec!["secrets", "get"];
    all.extend_from_slice(args);
    let out = prodready(dir, env, &all);
    assert!(out.status.success(), "get {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Asserts that no output stream holds any test value (or one of its lines).
#[track_caller]
fn assert_clean(what: &str, out: &Output) {
    for stream in [stdout(out), stderr(out)] {
        for value in VALUES {
            for part in value.lines() {
                assert!(!stream.contains(part), "{what} printed a secret value:\n{stream}");
            }
        }
    }
}

const DOTENV: &str = "# app settings\nexport DATABASE_URL=\"postgres://app:pg-pass-7f3a9c@db/app\"\nAPI_TOKEN='tok-live-19d2e8'\nMULTI=\"line-one-8c1b\nline-two-8c1b\"\n";

/// Runs every reporting and failing command against one backend and searches their output.
fn no_value_in_any_output(dir: &Path, env: &[(&str, &str)]) {
    std::fs::write(dir.join(".env"), DOTENV).unwrap();
    let run = |args: &[&str]| prodready(dir, env, args);
    let mut checked = Vec::new();
    let mut check = |what: &str, out: Output, ok: bool| {
        assert_eq!(out.status.success(), ok, "{what}: {}{}", stdout(&out), stderr(&out));
        assert_clean(what, &out);
        checked.push(what.to_owned());
    };
    check(
        "migrate --dry-run",
        run(&["secrets", "migrate", "--from", ".env", "--prefix", "prod/app/", "--dry-run"]),
        true,
    );
    check("migrate", run(&["secrets", "migrate", "--from", ".env", "--prefix", "prod/app/"]), true);
    let second = run(&["secrets", "migrate", "--from", ".env", "--prefix", "prod/app/", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(
        (report["added"].as_u64(), report["changed"].as_u64(), report["writes"].as_u64()),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(report["unchanged"], 3);
    check("migrate --json (second run)", second, true);
    assert_eq!(get(dir, env, &["prod/app/api-token"]), "tok-live-19d2e8");
    assert_eq!(get(dir, env, &["prod/app/multi"]), "line-one-8c1b\nline-two-8c1b");
    put(dir, env, "prod/app/api-token", "rotated-4e7d21\n");
    assert_eq!(get(dir, env, &["prod/app/api-token"]), "rotated-4e7d21");
    assert_eq!(get(dir, env, &["prod/app/api-token", "--stage", "AWSPREVIOUS"]), "tok-live-19d2e8");

    check("list", run(&["secrets", "list"]), true);
    check("list --json", run(&["secrets", "list", "--prefix", "prod/", "--json"]), true);
    check("history", run(&["secrets", "history", "prod/app/api-token"]), true);
    check("history --json", run(&["secrets", "history", "prod/app/api-token", "--json"]), true);
    check("rollback", run(&["secrets", "rollback", "prod/app/api-token"]), true);
    assert_eq!(get(dir, env, &["prod/app/api-token", "--stage", "AWSCURRENT"]), "tok-live-19d2e8");

    // Failing commands.
    check("get missing", run(&["secrets", "get", "prod/app/nope"]), false);
    check(
        "get bad version",
        run(&[
            "secrets",
            "get",
            "prod/app/api-token",
            "--version-id",
            "00000000-0000-4000-8000-000000000000",
        ]),
        false,
    );
    check("rollback without previous", run(&["secrets", "rollback", "prod/app/database-url"]), false);
    std::fs::write(dir.join("bad.env"), "OK=1\nthis line holds pg-pass-7f3a9c\n").unwrap();
    check("migrate bad .env", run(&["secrets", "migrate", "--from", "bad.env"]), false);
    std::fs::write(dir.join("stray.env"), "OK=1\npg-pass-7f3a9c\n").unwrap();
    check("migrate stray value line", run(&["secrets", "migrate", "--from", "stray.env"]), false);
    std::fs::write(dir.join("open.env"), "A=\"tok-live-19d2e8\n").unwrap();
    check("migrate unterminated quote", run(&["secrets", "migrate", "--from", "open.env"]), false);
    check("put empty", with_stdin(dir, env, &["secrets", "put", "prod/app/empty"], ""), false);
    check("put value on argv", run(&["secrets", "put", "prod/app/argv", "pg-pass-7f3a9c"]), false);
    check("put bad name", with_stdin(dir, env, &["secrets", "put", "bad name"], "pg-pass-7f3a9c"), false);
    let big = format!("pg-pass-7f3a9c{}", "x".repeat(70_000));
    check("put too large", with_stdin(dir, env, &["secrets", "put", "prod/app/big"], &big), false);
    check("delete", run(&["secrets", "delete", "prod/app/multi", "--recovery-days", "7"]), true);
    check("get deleted", run(&["secrets", "get", "prod/app/multi"]), false);
    check(
        "put deleted",
        with_stdin(dir, env, &["secrets", "put", "prod/app/multi"], "rotated-4e7d21"),
        false,
    );
    check("restore", run(&["secrets", "restore", "prod/app/multi"]), true);
    assert_eq!(get(dir, env, &["prod/app/multi"]), "line-one-8c1b\nline-two-8c1b");
    check("restore live", run(&["secrets", "restore", "prod/app/multi"]), false);
    check(
        "exec collision",
        {
            put(dir, env, "prod/app/database_url", "x");
            run(&["secrets", "exec", "--prefix", "prod/app/", "--", "true"])
        },
        false,
    );
    check("delete --force", run(&["secrets", "delete", "prod/app/database_url", "--force"]), true);
    check(
        "exec --only unknown",
        run(&["secrets", "exec", "--prefix", "prod/app/", "--only", "NOPE", "--", "true"]),
        false,
    );
    check("config show", run(&["config", "show"]), true);
    assert!(checked.len() >= 20);
}

#[test]
fn no_output_of_the_file_backend_shows_a_value() {
    let dir = tempfile::tempdir().unwrap();
    no_value_in_any_output(dir.path(), &[]);
    // A wrong key from the environment: one error, the store untouched.
    let store = dir.path().join(".local/share/prodready/secrets.enc");
    let before = std::fs::read(&store).unwrap();
    let wrong = "ab".repeat(32);
    for args in [&["secrets", "list"][..], &["secrets", "get", "prod/app/api-token"]] {
        let out = prodready(dir.path(), &[("PRODREADY_SECRETS_KEY", &wrong)], args);
        assert_eq!(out.status.code(), Some(2));
        assert_clean("wrong key", &out);
        assert!(stderr(&out).contains("$PRODREADY_SECRETS_KEY is not the key of"), "{}", stderr(&out));
        assert!(!stderr(&out).contains(&wrong));
    }
    let out =
        with_stdin(dir.path(), &[("PRODREADY_SECRETS_KEY", &wrong)], &["secrets", "put", "prod/app/x"], "v");
    assert!(!out.status.success());
    assert_eq!(std::fs::read(&store).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_of_the_secrets_manager_backend_shows_a_value() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let mut aws = moto.aws_env();
    aws.push(("PRODREADY_SECRETS__BACKEND", "aws".to_owned()));
    let dir_path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = aws.iter().map(|(k, v)| (*k, v.as_str())).collect();
        no_value_in_any_output(&dir_path, &env);
    })
    .await
    .unwrap();
    assert!(
        !dir.path().join(".local/share/prodready/secrets.enc").exists(),
        "the aws backend wrote a local store"
    );
}

#[test]
fn a_group_readable_key_file_is_refused_with_the_chmod_fix() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), &[], "app/a", "pg-pass-7f3a9c");
    let key = dir.path().join(".local/share/prodready/secrets.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = prodready(dir.path(), &[], &["secrets", "get", "app/a"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&format!("run `chmod 600 {}`", key.display())), "{}", stderr(&out));
    assert_clean("group-readable key", &out);
}

#[test]
fn concurrent_puts_from_separate_processes_all_survive() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), &[], "app/seed", "s"); // the key exists before the race
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut child = command(dir.path(), &[], &["secrets", "put", &format!("app/k{i}")])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(format!("value-{i}").as_bytes()).unwrap();
            child
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = prodready(dir.path(), &[], &["secrets", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["secrets"].as_array().unwrap().len(), 9, "{listed}");
    for i in 0..8 {
        assert_eq!(get(dir.path(), &[], &[&format!("app/k{i}")]), format!("value-{i}"));
    }
}

/// `secrets migrate` applies a whole `.env` as one store write: killed at any moment, it leaves the store
/// as it was or holding every entry, never a part, and no temporary file once the next write ran.
#[test]
fn a_migration_is_one_write_whenever_it_is_killed() {
    const ENTRIES: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), &[], "app/seed", "s");
    let dotenv: String = (0..ENTRIES).map(|i| format!("KEY_{i}=value-{i}\n")).collect();
    std::fs::write(dir.path().join(".env"), dotenv).unwrap();
    let count = || {
        let out = prodready(dir.path(), &[], &["secrets", "list", "--prefix", "app/", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        listed["secrets"].as_array().unwrap().len()
    };
    let migrate = ["secrets", "migrate", "--from", ".env", "--prefix", "app/"];
    for delay in [10, 40, 80, 150, 300] {
        let mut child =
            command(dir.path(), &[], &migrate).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        let n = count();
        assert!(
            n == 1 || n == ENTRIES + 1,
            "killed after {delay} ms, the migration left {n} of {} secrets",
            ENTRIES + 1
        );
    }
    let out =
        prodready(dir.path(), &[], &["secrets", "migrate", "--from", ".env", "--prefix", "app/", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(), ENTRIES + 1);
    assert_eq!(get(dir.path(), &[], &["app/key-9999"]), "value-9999");
    let store_dir = dir.path().join(".local/share/prodready");
    let left: Vec<String> = std::fs::read_dir(&store_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left beside the store: {left:?}");
}

fn exec_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), &[], "prod/app/database-url", "pg-pass-7f3a9c");
    put(dir.path(), &[], "prod/app/api-token", "tok-live-19d2e8");
    put(dir.path(), &[], "other/unrelated", "rotated-4e7d21");
    dir
}

#[test]
fn exec_passes_the_exit_code_through() {
    let dir = exec_dir();
    let out = prodready(dir.path(), &[], &["secrets", "exec", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    let out = prodready(dir.path(), &[], &["secrets", "exec", "--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(out.status.code(), Some(128 + 9));
    let out = prodready(dir.path(), &[], &["secrets", "exec", "--", "no-such-program-here"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot run `no-such-program-here`"));
}

#[test]
fn exec_maps_names_and_honours_only_and_pristine() {
    let dir = exec_dir();
    let env_of = |args: &[&str]| {
        let mut all = vec!["secrets", "exec"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--", "env"]);
        let out = prodready(dir.path(), &[], &all);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut vars: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
        vars.sort();
        vars
    };
    let all = env_of(&["--prefix", "prod/app/"]);
    assert!(all.contains(&"DATABASE_URL=pg-pass-7f3a9c".to_owned()), "{all:?}");
    assert!(all.contains(&"API_TOKEN=tok-live-19d2e8".to_owned()));
    assert!(all.iter().any(|v| v.starts_with("PATH=")));
    assert!(!all.iter().any(|v| v.contains("rotated-4e7d21")), "a secret outside the prefix leaked in");
    let only = env_of(&["--prefix", "prod/app/", "--only", "API_TOKEN", "--pristine"]);
    let names: Vec<&str> = only.iter().map(|v| v.split('=').next().unwrap()).collect();
    assert_eq!(names, ["API_TOKEN", "PRODREADY_SECRETS_EXEC"]);
    let unprefixed = env_of(&["--only", "other/unrelated"]);
    assert!(unprefixed.contains(&"OTHER_UNRELATED=rotated-4e7d21".to_owned()), "{unprefixed:?}");
}

#[test]
fn exec_never_hands_the_store_key_to_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let key = "0123456789abcdef".repeat(4);
    let env = [("PRODREADY_SECRETS_KEY", key.as_str())];
    put(dir.path(), &env, "app/token", "tok-live-19d2e8");
    let out = prodready(dir.path(), &env, &["secrets", "exec", "--prefix", "app/", "--", "env"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("TOKEN=tok-live-19d2e8"));
    assert!(!stdout(&out).contains(&key), "the child got the store key");
    assert!(!dir.path().join(".local/share/prodready/secrets.key").exists(), "a key file was made");
}

#[test]
fn a_failed_first_write_leaves_no_key_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = prodready(dir.path(), &[], &["secrets", "delete", "app/nothing", "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!dir.path().join(".local/share/prodready/secrets.key").exists());
}

#[test]
fn exec_inside_exec_is_refused() {
    let dir = exec_dir();
    let me = env!("CARGO_BIN_EXE_prodready");
    let out = prodready(dir.path(), &[], &["secrets", "exec", "--", me, "secrets", "exec", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("refusing to nest `prodready secrets exec`"), "{}", stderr(&out));
}

/// `put` refuses a NUL byte, but another writer of Secrets Manager need not: the value goes straight to moto
/// (a request moto does not check the signature of), and `exec` names the secret instead of blaming the
/// program.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_refuses_a_stored_nul_byte_naming_the_secret_and_starts_nothing() {
    let moto = Moto::start();
    let body =
        serde_json::json!({ "Name": "prod/app/broken", "SecretString": "nul-left-5b2e\0nul-right-5b2e" });
    let created = reqwest::Client::new()
        .post(moto.endpoint())
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "secretsmanager.CreateSecret")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/secretsmanager/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.text().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut aws = moto.aws_env();
    aws.push(("PRODREADY_SECRETS__BACKEND", "aws".to_owned()));
    let dir_path = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = aws.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let args = ["secrets", "exec", "--prefix", "prod/app/", "--", "sh", "-c", "echo child-ran"];
        prodready(&dir_path, &env, &args)
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).lines().find(|l| l.contains("NUL")),
        Some(
            "error: secret `prod/app/broken` holds a NUL byte, which no environment variable can carry; \
             overwrite it with `prodready secrets put prod/app/broken`"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("cannot run"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("child-ran"), "the command ran");
    for part in ["nul-left-5b2e", "nul-right-5b2e"] {
        assert!(!stderr(&out).contains(part) && !stdout(&out).contains(part), "the value was printed");
    }
}

fn wait_for(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_reaches_the_child_and_no_value_is_on_its_command_line() {
    for (signal, name) in
        [(nix::sys::signal::Signal::SIGTERM, "TERM"), (nix::sys::signal::Signal::SIGINT, "INT")]
    {
        let dir = exec_dir();
        let script = format!(
            "sleep 60 & SLEEPER=$!; trap 'kill $SLEEPER; echo got-{name} > signal; exit 42' {name}; echo $$ > pid; wait"
        );
        let parent = command(
            dir.path(),
            &[],
            &["secrets", "exec", "--prefix", "prod/app/", "--", "sh", "-c", &script],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let child_pid = wait_for(&dir.path().join("pid")).trim().to_owned();
        let cmdline = std::fs::read(format!("/proc/{child_pid}/cmdline")).unwrap();
        let environ = std::fs::read(format!("/proc/{child_pid}/environ")).unwrap();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(cmdline.contains("sleep 60"), "not the child's command line: {cmdline}");
        for value in VALUES {
            assert!(!cmdline.contains(value), "the child's argv holds a secret: {cmdline}");
        }
        // The value is in the child's environment, where exec puts it: the search above could have found it.
        assert!(String::from_utf8_lossy(&environ).contains("DATABASE_URL=pg-pass-7f3a9c"));
        let parent_pid = nix::unistd::Pid::from_raw(i32::try_from(parent.id()).unwrap());
        nix::sys::signal::kill(parent_pid, signal).unwrap();
        assert_eq!(wait_for(&dir.path().join("signal")), format!("got-{name}\n"));
        let out = parent.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(42), "{}", stderr(&out));
    }
}
