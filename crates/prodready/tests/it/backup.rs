use std::time::{Duration, Instant};

use prodready_test_support::TestDb;

use crate::{prodready, stderr, stdout};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_list_verify_restore_status_from_the_command_line() {
    let db = TestDb::create().await;
    db.connect()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", db.url())];

    // Nothing verified yet: status with a limit fails.
    let status = prodready(dir.path(), &env, &["backup", "status", "--max-age", "1h"]);
    assert_eq!(status.status.code(), Some(1), "{}", stdout(&status));
    assert!(stdout(&status).contains("STALE"), "{}", stdout(&status));

    let run = prodready(dir.path(), &env, &["backup", "run", "--json"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let manifest = json(&run);
    let id = manifest["id"].as_str().unwrap().to_owned();
    assert_eq!(manifest["tables"][0]["rows"], 1000);

    let list = json(&prodready(dir.path(), &env, &["backup", "list", "--json"]));
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["verify_ok"], serde_json::Value::Null);

    let verify = prodready(dir.path(), &env, &["backup", "verify", "latest", "--json"]);
    assert_eq!(verify.status.code(), Some(0), "{}{}", stdout(&verify), stderr(&verify));
    assert_eq!(json(&verify)["ok"], true);
    let status = prodready(dir.path(), &env, &["backup", "status", "--max-age", "1h"]);
    assert_eq!(status.status.code(), Some(0), "{}", stdout(&status));

    let target = TestDb::create().await;
    let restore = prodready(dir.path(), &env, &["backup", "restore", &id, "--into", target.url(), "--json"]);
    assert_eq!(restore.status.code(), Some(0), "{}", stderr(&restore));
    assert_eq!(json(&restore)["rows"], 1000);
    // The target now holds tables: a second restore is refused (exit 2) and names --force.
    let again = prodready(dir.path(), &env, &["backup", "restore", &id, "--into", target.url()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let forced =
        prodready(dir.path(), &env, &["backup", "restore", &id, "--into", target.url(), "--force", "--json"]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    // The replaced database is kept; this test drops it.
    let kept = json(&forced)["replaced"].as_str().expect("the previous database is named").to_owned();
    assert!(kept.starts_with(&format!("{}_prodready_replaced_", target.name())), "{kept}");
    target.connect().await.batch_execute(&format!("DROP DATABASE \"{kept}\" WITH (FORCE)")).await.unwrap();

    let unknown = prodready(dir.path(), &env, &["backup", "verify", "20000101T000000Z-dead"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("no backup `20000101T000000Z-dead`"), "{}", stderr(&unknown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_killed_mid_run_leaves_nothing_listed_and_prune_clears_it() {
    let db = TestDb::create().await;
    db.connect()
        .await
        .batch_execute("CREATE TABLE big (id int, pad text); INSERT INTO big SELECT i, md5(i::text) || repeat('z', 400) FROM generate_series(1, 800000) i")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prodready"))
        .args(["backup", "run", "--jobs", "1", "--store"])
        .arg(&store)
        .env("DATABASE_URL", db.url())
        .env("HOME", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until table data is being written, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let writing = std::fs::read_dir(&store).into_iter().flatten().flatten().any(|backup| {
            std::fs::read_dir(backup.path().join("data"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|f| f.metadata().is_ok_and(|m| m.len() > 0))
        });
        if writing {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the backup finished before it could be killed");
        assert!(Instant::now() < deadline, "the backup never started writing");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let env = [("DATABASE_URL", db.url())];
    let store_arg = store.to_str().unwrap();
    let list = json(&prodready(dir.path(), &env, &["backup", "list", "--store", store_arg, "--json"]));
    assert_eq!(list, serde_json::json!([]), "an interrupted backup is not a backup");
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 1, "its leftovers are still on disk");

    // The default idle threshold (1 h) protects a backup that might still be running...
    let kept = json(&prodready(dir.path(), &env, &["backup", "prune", "--store", store_arg, "--json"]));
    assert_eq!(kept["incomplete"], serde_json::json!([]));
    // ...and an explicit threshold clears the leftovers.
    let pruned = json(&prodready(
        dir.path(),
        &env,
        &["backup", "prune", "--store", store_arg, "--incomplete-older-than", "0s", "--json"],
    ));
    assert_eq!(pruned["incomplete"].as_array().unwrap().len(), 1, "{pruned}");
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0);

    // The advisory lock died with the killed process: the next run succeeds.
    let run = prodready(dir.path(), &env, &["backup", "run", "--store", store_arg]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_verifications_report_metrics_to_a_textfile_and_a_real_pushgateway() {
    let db = TestDb::create().await;
    db.connect().await.batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)").await.unwrap();
    let pushgateway = prodready_test_support::Pushgateway::start();
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", db.url())];
    let pgw = pushgateway.url();

    let run =
        prodready(dir.path(), &env, &["backup", "run", "--textfile", "run.prom", "--pushgateway", &pgw]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let verify = prodready(
        dir.path(),
        &env,
        &["backup", "verify", "--textfile", "verify.prom", "--pushgateway", &pgw],
    );
    assert_eq!(verify.status.code(), Some(0), "{}", stderr(&verify));

    let run_file = std::fs::read_to_string(dir.path().join("run.prom")).unwrap();
    let label = format!("{{database=\"{}\"}}", db.name());
    assert!(run_file.contains(&format!("prodready_backup_last_run_success{label} 1")), "{run_file}");
    assert!(run_file.contains("prodready_backup_last_success_timestamp_seconds{"), "{run_file}");
    let verify_file = std::fs::read_to_string(dir.path().join("verify.prom")).unwrap();
    assert!(
        verify_file.contains(&format!("prodready_backup_last_verify_run_success{label} 1")),
        "{verify_file}"
    );

    // Both pushes landed in one Pushgateway group without overwriting each other.
    let scraped = http_get(&format!("{pgw}/metrics")).await;
    for name in [
        "prodready_backup_last_run_success",
        "prodready_backup_last_success_timestamp_seconds",
        "prodready_backup_last_size_bytes",
        "prodready_backup_last_verify_run_success",
        "prodready_backup_last_verify_success_timestamp_seconds",
    ] {
        let line = scraped.lines().find(|l| {
            l.starts_with(&format!("{name}{{")) && l.contains(&format!("database=\"{}\"", db.name()))
        });
        assert!(line.is_some_and(|l| l.contains("job=\"prodready-backup\"")), "{name} missing:\n{scraped}");
    }

    // A failed run reports success 0 before it exits 1.
    let dead = format!("postgres://postgres@127.0.0.1:{}/{}", prodready_test_support::free_port(), db.name());
    let failed =
        prodready(dir.path(), &env, &["backup", "run", "--database", &dead, "--textfile", "run.prom"]);
    assert_eq!(failed.status.code(), Some(1));
    let run_file = std::fs::read_to_string(dir.path().join("run.prom")).unwrap();
    assert!(run_file.contains(&format!("prodready_backup_last_run_success{label} 0")), "{run_file}");
    assert!(
        run_file.contains("prodready_backup_last_success_timestamp_seconds{"),
        "the last success is still known: {run_file}"
    );
}

async fn http_get(url: &str) -> String {
    let (host_port, path) = url.trim_start_matches("http://").split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host_port).await.unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream.write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host_port}\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

#[test]
fn cron_prints_jobs_that_read_the_same_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prodready.toml"),
        "[backup]\nschedule = \"5 1 * * *\"\nverify_schedule = \"0 3 * * 0\"\n",
    )
    .unwrap();
    let out = prodready(
        dir.path(),
        &[],
        &["backup", "cron", "--binary", "/usr/local/bin/prodready", "--user", "backup"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let config = dir.path().join("prodready.toml");
    let run_line =
        format!("5 1 * * * /usr/local/bin/prodready --config {} backup run --textfile ", config.display());
    assert!(text.contains(&run_line), "{text}");
    assert!(text.contains("OnCalendar=Sun *-*-* 03:00:00"), "{text}");
    assert!(text.contains("User=backup"), "{text}");

    std::fs::write(dir.path().join("prodready.toml"), "[backup]\nschedule = \"daily\"\n").unwrap();
    let out = prodready(dir.path(), &[], &["backup", "cron"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("[backup]: cron `daily`: needs five fields"), "{}", stderr(&out));
}

/// A fake SigV4 header: moto routes by the credential scope and checks no signature.
const S3_AUTH: &str =
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

async fn s3(method: &str, url: &str) -> String {
    let (host_port, path) = url.trim_start_matches("http://").split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host_port).await.unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let request = format!(
        "{method} /{path} HTTP/1.0\r\nHost: {host_port}\r\nAuthorization: {S3_AUTH}\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_backup_killed_mid_upload_leaves_no_backup_and_prune_aborts_its_uploads() {
    let moto = prodready_test_support::Moto::start();
    let endpoint = moto.endpoint();
    let created = s3("PUT", &format!("{endpoint}/backups")).await;
    assert!(created.starts_with("HTTP/1.0 200") || created.starts_with("HTTP/1.1 200"), "{created}");
    let db = TestDb::create().await;
    db.connect()
        .await
        .batch_execute("CREATE TABLE big (id int, a text, b text); INSERT INTO big SELECT i, md5(random()::text), md5(random()::text) FROM generate_series(1, 1500000) i")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, String)> = moto.aws_env();
    env.push(("DATABASE_URL", db.url().to_owned()));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prodready"))
        .args(["backup", "run", "--jobs", "1", "--store", "s3://backups/prod"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("HOME", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a multipart upload is under way.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let uploads = s3("GET", &format!("{endpoint}/backups?uploads")).await;
        if uploads.contains("<UploadId>") {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup finished before a multipart upload was seen"
        );
        assert!(Instant::now() < deadline, "no multipart upload started: {uploads}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let list =
        json(&prodready(dir.path(), &env_ref, &["backup", "list", "--store", "s3://backups/prod", "--json"]));
    assert_eq!(list, serde_json::json!([]), "an interrupted backup is not a backup");
    assert!(
        s3("GET", &format!("{endpoint}/backups?uploads")).await.contains("<UploadId>"),
        "the killed run left an upload"
    );

    let pruned = json(&prodready(
        dir.path(),
        &env_ref,
        &["backup", "prune", "--store", "s3://backups/prod", "--incomplete-older-than", "0s", "--json"],
    ));
    assert!(pruned["aborted_uploads"].as_u64().unwrap() >= 1, "{pruned}");
    assert!(
        !s3("GET", &format!("{endpoint}/backups?uploads")).await.contains("<UploadId>"),
        "no upload is left in progress"
    );
    let left = s3("GET", &format!("{endpoint}/backups?list-type=2&prefix=prod/")).await;
    assert!(!left.contains("<Key>"), "no object of the killed run is left: {left}");

    // A bucket that does not exist: one clear error, exit 1.
    let missing = prodready(dir.path(), &env_ref, &["backup", "list", "--store", "s3://no-such-bucket/x"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("NoSuchBucket"), "{}", stderr(&missing));
}

/// The checklist's backup check opens the store the way `prodready backup` does, so backups kept in S3
/// count: a real moto server, a real backup and a verification by restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_check_reads_an_s3_store() {
    let moto = prodready_test_support::Moto::start();
    let created = s3("PUT", &format!("{}/backups", moto.endpoint())).await;
    assert!(created.starts_with("HTTP/1.0 200") || created.starts_with("HTTP/1.1 200"), "{created}");
    let db = TestDb::create().await;
    db.connect()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prodready.toml"),
        "[backup]\nstore = \"s3://backups/prod\"\n\n\
         [[checklist.checks]]\nid = \"backups\"\ntitle = \"Backups are fresh and proven\"\ncategory = \"Backups\"\n\
         kind = \"backup\"\nstore = \"s3://backups/prod\"\nmust_have = true\n",
    )
    .unwrap();
    let mut env: Vec<(&str, String)> = moto.aws_env();
    env.push(("DATABASE_URL", db.url().to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let check = |dir: &std::path::Path| {
        let out = prodready(dir, &env, &["check", "--json", "--no-history"]);
        let report = json(&out);
        (out.status.code(), report["results"][0]["status"].clone(), report["results"][0]["summary"].clone())
    };

    let (code, status, summary) = check(dir.path());
    assert_eq!((code, status.as_str()), (Some(3), Some("fail")), "{summary}");
    assert_eq!(summary, "no backup in s3://backups/prod");

    let run = prodready(dir.path(), &env, &["backup", "run"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let verify = prodready(dir.path(), &env, &["backup", "verify", "latest"]);
    assert_eq!(verify.status.code(), Some(0), "{}{}", stdout(&verify), stderr(&verify));

    let (code, status, summary) = check(dir.path());
    assert_eq!((code, status.as_str()), (Some(0), Some("pass")), "{summary}");
    assert!(summary.as_str().unwrap().contains("verified by restore"), "{summary}");
}

/// `latest` with no database configured: the store's only database, else an error listing them;
/// `--database` picks one for verify, restore and status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_means_the_named_or_the_only_database() {
    let (a, b) = (TestDb::create().await, TestDb::create().await);
    for db in [&a, &b] {
        db.connect().await.batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)").await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    let run = |db: &TestDb| {
        prodready(dir.path(), &[], &["backup", "run", "--store", store, "--database", db.url()])
    };
    assert_eq!(run(&a).status.code(), Some(0), "{}", stderr(&run(&a)));

    // One database in the store: `latest` is its newest backup, with nothing configured.
    let quick = prodready(dir.path(), &[], &["backup", "verify", "--quick", "--store", store, "--json"]);
    assert_eq!(quick.status.code(), Some(0), "{}", stderr(&quick));
    // A quick verification shows as one in `list`, and is not the restore `status` counts as verified.
    let listed = json(&prodready(dir.path(), &[], &["backup", "list", "--store", store, "--json"]));
    assert_eq!(listed[0]["verify_mode"], "quick", "{listed}");
    assert_eq!(listed[0]["verify_ok"], true, "{listed}");
    assert!(listed[0]["last_verified_ok_at"].is_null(), "{listed}");
    let status = json(&prodready(dir.path(), &[], &["backup", "status", "--store", store, "--json"]));
    assert!(status["newest_verified"].is_null() && status["verified_at"].is_null(), "{status}");

    assert_eq!(run(&b).status.code(), Some(0));
    let ambiguous = prodready(dir.path(), &[], &["backup", "verify", "--quick", "--store", store]);
    assert_eq!(ambiguous.status.code(), Some(2));
    let message = stderr(&ambiguous);
    assert!(
        message.contains("several databases") && message.contains(a.name()) && message.contains(b.name()),
        "{message}"
    );

    let named = prodready(
        dir.path(),
        &[],
        &["backup", "verify", "--quick", "--store", store, "--database", b.name(), "--json"],
    );
    assert_eq!(named.status.code(), Some(0), "{}", stderr(&named));
    let newest_of_b = json(&prodready(dir.path(), &[], &["backup", "list", "--store", store, "--json"]))
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["database"] == b.name())
        .unwrap()["id"]
        .clone();
    assert_eq!(json(&named)["id"], newest_of_b);

    let status = json(&prodready(
        dir.path(),
        &[],
        &["backup", "status", "--store", store, "--database", a.url(), "--json"],
    ));
    assert_eq!(status["newest"]["database"], a.name());

    // restore and prune take --database too: `latest` of b restores b's rows; a prune of a alone
    // judges a's backups only.
    let target = TestDb::create().await;
    target.connect().await.batch_execute("SELECT 1").await.unwrap();
    let restored = prodready(
        dir.path(),
        &[],
        &["backup", "restore", "latest", "--store", store, "--database", b.name(), "--into", target.url()],
    );
    assert_eq!(restored.status.code(), Some(0), "{}", stderr(&restored));
    let ambiguous = prodready(
        dir.path(),
        &[],
        &["backup", "restore", "latest", "--store", store, "--into", target.url()],
    );
    assert_eq!(ambiguous.status.code(), Some(2), "{}", stderr(&ambiguous));
    let pruned = json(&prodready(
        dir.path(),
        &[],
        &["backup", "prune", "--store", store, "--database", a.name(), "--dry-run", "--json"],
    ));
    let judged: Vec<&str> =
        pruned["decisions"].as_array().unwrap().iter().filter_map(|d| d["id"].as_str()).collect();
    let of_a: Vec<String> =
        json(&prodready(dir.path(), &[], &["backup", "list", "--store", store, "--json"]))
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["database"] == a.name())
            .filter_map(|x| x["id"].as_str().map(str::to_owned))
            .collect();
    assert_eq!(judged, of_a, "{pruned}");

    // A bit-rotted manifest: `list` warns on stderr and its JSON lists it last, as corrupt.
    let rotten = std::path::Path::new(store).join("20000101T000000Z-0bad");
    std::fs::create_dir_all(&rotten).unwrap();
    std::fs::write(rotten.join("manifest.json"), "{ bit rot").unwrap();
    let listed = prodready(dir.path(), &[], &["backup", "list", "--store", store, "--json"]);
    assert!(stderr(&listed).contains("backup 20000101T000000Z-0bad is corrupt"), "{}", stderr(&listed));
    let entries = json(&listed);
    let last = entries.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["kind"].as_str(), last["id"].as_str()),
        (Some("corrupt"), Some("20000101T000000Z-0bad"))
    );
    assert!(last["problem"].as_str().is_some_and(|p| !p.is_empty()), "{last}");
}

async fn databases_like(url: &str, pattern: &str) -> Vec<String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .query("SELECT datname FROM pg_database WHERE datname LIKE $1", &[&pattern])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// SIGTERM during a verification drops its scratch database; after a SIGKILL, the next prune does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_verification_leaves_no_scratch_database() {
    let db = TestDb::create().await;
    db.connect()
        .await
        .batch_execute("CREATE TABLE big (id int PRIMARY KEY, a text); INSERT INTO big SELECT i, md5(i::text) FROM generate_series(1, 1500000) i")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", db.url())];
    let run = prodready(dir.path(), &env, &["backup", "run", "--json"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let id = json(&run)["id"].as_str().unwrap().to_owned();
    let clean: String = id.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();

    for signal in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGKILL] {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_prodready"))
            .args(["backup", "verify", "latest"])
            .current_dir(dir.path())
            .env_clear()
            .envs(crate::coverage_env())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("DATABASE_URL", db.url())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let scratch = format!("prodready_verify_{clean}_{}", child.id());
        let deadline = Instant::now() + Duration::from_secs(60);
        while databases_like(db.url(), &scratch).await.is_empty() {
            assert!(Instant::now() < deadline, "the verification never created {scratch}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        if signal == nix::sys::signal::Signal::SIGTERM {
            assert!(stderr(&out).contains("interrupted by SIGTERM"), "{}", stderr(&out));
            assert!(databases_like(db.url(), &scratch).await.is_empty(), "{}", stderr(&out));
        } else {
            assert_eq!(
                databases_like(db.url(), &scratch).await,
                std::slice::from_ref(&scratch),
                "SIGKILL leaves it"
            );
            let prune = prodready(dir.path(), &env, &["backup", "prune"]);
            assert_eq!(prune.status.code(), Some(0), "{}", stderr(&prune));
            assert!(stderr(&prune).contains(&scratch), "{}", stderr(&prune));
            assert!(databases_like(db.url(), &scratch).await.is_empty());
        }
    }
}
