//! `backup base` and `backup pitr` end to end with the binary's own WAL archive: a throwaway cluster
//! archives with `backup wal-push`, recoveries fetch with `backup wal-fetch`, on a local store and on S3
//! (moto). A recovery to a noted time has exactly the rows written before it and the table dropped after
//! it; `latest` has every row; a recovery follows a timeline switch (and never picks a base backup past
//! it); drills pass on a good chain and fail naming the reason on a broken one.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use prodready_test_support::{Cluster, ServerExecutable, bin_dir, server_dir};

use crate::{stderr, stdout};

/// The binary, runnable by the server's user (restore_command names this very binary).
struct Bin {
    exe: ServerExecutable,
    env: Vec<(String, String)>,
    home: tempfile::TempDir,
}

impl Bin {
    fn new(env: &[(&str, String)]) -> Self {
        Self {
            exe: ServerExecutable::new(Path::new(env!("CARGO_BIN_EXE_prodready"))),
            env: env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(self.exe.path())
            .args(args)
            .current_dir(self.home.path())
            .env_clear()
            .envs(crate::coverage_env())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run prodready")
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}{}", stdout(&out), stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
    }

    /// A recovery drill, `backup pitr --verify --json`, of `store` to `to` in `into`, checking each
    /// `DATABASE:TABLE=ROWS` of `tables`.
    fn drill(&self, store: &str, to: &str, into: &str, tables: &[&str]) -> Output {
        let pg_bin = bin_dir().display().to_string();
        let mut args = vec![
            "backup", "pitr", "--store", store, "--to", to, "--into", into, "--verify", "--pg-bin", &pg_bin,
        ];
        for table in tables {
            args.extend(["--table", table]);
        }
        args.push("--json");
        self.run(&args)
    }

    /// [`Bin::drill`] that must pass; its report.
    fn drill_ok(&self, store: &str, to: &str, into: &str, tables: &[&str]) -> serde_json::Value {
        let out = self.drill(store, to, into, tables);
        assert_eq!(out.status.code(), Some(0), "drill to {to}: {}{}", stdout(&out), stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["ok"], true, "{report:#}");
        if to == "latest" {
            // Recovery got through the store's newest archived segment, not only to a promotion.
            let checked = report["checked"].as_array().expect("a list of what was checked");
            assert!(
                checked.iter().any(|c| c.as_str().is_some_and(|c| c.contains("through its newest segment"))),
                "{report:#}"
            );
        }
        report
    }

    /// `restore_command` with the test's environment (a server started by a test does not inherit it).
    fn fetch_command(&self, store: &str) -> String {
        let env: String = self.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        format!("env {env}HOME=/tmp {} backup wal-fetch %f %p --store {store}", self.exe.path().display())
    }

    /// `archive_command` for a cluster: this binary's wal-push into `store`, with the test's environment.
    fn archive_command(&self, store: &str) -> String {
        let env: String = self.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        format!("env {env}HOME=/tmp {} backup wal-push %p --store {store}", self.exe.path().display())
    }
}

fn now_utc(cluster: &Cluster) -> String {
    cluster.psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

fn scenario(bin: &Bin, store: &str) {
    let archiving = [("archive_mode", "on".to_owned()), ("archive_command", bin.archive_command(store))];
    let mut builder = Cluster::builder();
    for (name, value) in &archiving {
        builder = builder.setting(name, value);
    }
    let primary = builder.start();
    let url = primary.url("127.0.0.1", "");
    primary.psql(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 100) i;
         CREATE TABLE doomed (k int); INSERT INTO doomed SELECT generate_series(1, 10)",
    );
    let base = bin.json(&["backup", "base", "--store", store, "--database", &url, "--json"]);
    let base_id = base["id"].as_str().unwrap().to_owned();
    assert_eq!(base["kind"], "base");
    assert_eq!(base["timeline"], 1);

    primary.psql("INSERT INTO t SELECT i, md5(i::text) FROM generate_series(101, 200) i");
    std::thread::sleep(Duration::from_millis(1100));
    let noted = now_utc(&primary);
    std::thread::sleep(Duration::from_millis(1100));
    primary.psql("INSERT INTO t SELECT i, md5(i::text) FROM generate_series(201, 400) i");
    primary.psql("DROP TABLE doomed");
    primary.switch_and_archive();

    let work = server_dir();
    let into = |name: &str| work.path().join(name).display().to_string();
    // A drill to the noted time: exactly the rows written before it, and the table dropped after it.
    let drill = bin.drill_ok(store, &noted, &into("noted"), &["postgres:public.t=200", "postgres:doomed=10"]);
    assert_eq!(drill["id"], base_id.as_str());
    // Latest: every row.
    bin.drill_ok(store, "latest", &into("latest"), &["postgres:t=400"]);

    // Listed as a base backup with its drill; logical commands never take it.
    let list = bin.json(&["backup", "list", "--store", store, "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");
    assert_eq!(list[0]["kind"], "base");
    assert_eq!(list[0]["verify_ok"], true);
    let verify = bin.run(&["backup", "verify", "latest", "--quick", "--store", store]);
    assert_eq!(verify.status.code(), Some(2), "{}{}", stdout(&verify), stderr(&verify));
    let verify = bin.run(&["backup", "verify", &base_id, "--quick", "--store", store]);
    assert_eq!(verify.status.code(), Some(2), "{}{}", stdout(&verify), stderr(&verify));
    assert!(stderr(&verify).contains("base backup"), "{}", stderr(&verify));
    let status = bin.run(&["backup", "status", "--store", store]);
    assert!(stdout(&status).contains("recovery last proven:"), "{}", stdout(&status));
    // The checklist's backup check names the drill beside the recovery point the archive reaches.
    let config = bin.home.path().join("drill-check.toml");
    std::fs::write(
        &config,
        format!(
            "[[checklist.checks]]\nid = \"backups\"\ntitle = \"Backups\"\ncategory = \"Backups\"\n\
             kind = \"backup\"\nstore = \"{store}\"\n"
        ),
    )
    .unwrap();
    let check = bin.run(&["--config", config.to_str().unwrap(), "check"]);
    assert!(
        stdout(&check).contains("; recovery proven by a drill under a minute ago"),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );

    // Prepared, not verified: the directory starts with pg_ctl (here: as a throwaway cluster), recovers to
    // the noted time through wal-fetch and is promoted onto timeline 2, which it archives.
    let copy_dir = server_dir();
    let prepared = bin.json(&[
        "backup",
        "pitr",
        "--store",
        store,
        "--to",
        &noted,
        "--into",
        &copy_dir.path().join("data").display().to_string(),
        "--action",
        "promote",
        "--json",
    ]);
    assert_eq!(prepared["base"], base_id.as_str());
    let auto = std::fs::read_to_string(copy_dir.path().join("data/postgresql.auto.conf")).unwrap();
    assert!(auto.contains("backup wal-fetch %f %p --store"), "{auto}");
    let mut settings: Vec<(&str, &str)> = archiving.iter().map(|(n, v)| (*n, v.as_str())).collect();
    // The server a test starts gets no environment of ours: on S3 the credentials go in the command.
    let fetch = bin.fetch_command(store);
    if !bin.env.is_empty() {
        settings.push(("restore_command", &fetch));
    }
    let copy = Cluster::adopt(copy_dir, &settings);
    copy.wait_promoted();
    assert_eq!(copy.psql("SELECT count(*) FROM t"), "200");
    assert_eq!(copy.psql("SELECT count(*) FROM doomed"), "10");
    copy.psql("INSERT INTO t SELECT i, 'tl2' FROM generate_series(1001, 1050) i");
    copy.switch_and_archive();
    drop(copy);

    // The old primary goes on on timeline 1 and takes a base backup past the switch: a recovery to
    // latest follows timeline 2 from the first base backup, never from that one.
    primary.psql("INSERT INTO t VALUES (5000, 'timeline 1 only')");
    let late = bin.json(&["backup", "base", "--store", store, "--database", &url, "--json"]);
    assert_ne!(late["id"], base_id.as_str());
    let drill = bin.drill_ok(store, "latest", &into("switched"), &["postgres:t=250"]);
    assert_eq!(drill["id"], base_id.as_str(), "{drill:#}");

    // Retention keeping one base backup keeps the newest (past the switch) and the newest drilled one, and
    // deletes the WAL before the oldest kept one's start: the drilled chain still recovers.
    let prune = [
        "backup",
        "prune",
        "--store",
        store,
        "--keep-daily",
        "0",
        "--keep-weekly",
        "0",
        "--keep-monthly",
        "0",
        "--min-keep",
        "1",
        "--json",
    ];
    if !store.starts_with("s3://") {
        // First with a manifest that cannot be read (it may be a base backup's): no WAL is deleted, and
        // prune says why.
        let unreadable = Path::new(store).join("20260101T000000Z");
        std::fs::create_dir(&unreadable).unwrap();
        std::fs::write(unreadable.join("manifest.json"), b"{\"kind\": \"ba").unwrap();
        let out = bin.run(&prune);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let held: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(held["wal_deleted"].as_array().map(Vec::len), Some(0), "{held:#}");
        assert!(held["wal_kept"].as_str().unwrap().contains("20260101T000000Z"), "{held:#}");
        assert!(stderr(&out).contains("warning: no WAL pruned"), "{}", stderr(&out));
        std::fs::remove_dir_all(&unreadable).unwrap();
    }
    let pruned = bin.json(&prune);
    let kept: Vec<&str> = pruned["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["keep"] == true)
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(kept.contains(&base_id.as_str()) && kept.contains(&late["id"].as_str().unwrap()), "{pruned:#}");
    let start = base["start_wal_file"].as_str().unwrap();
    let deleted = pruned["wal_deleted"].as_array().unwrap();
    assert!(pruned.get("wal_kept").is_none(), "{pruned:#}");
    assert!(!deleted.is_empty(), "{pruned:#}");
    assert!(deleted.iter().all(|n| n.as_str().unwrap() < start), "{pruned:#}");
    bin.drill_ok(store, "latest", &into("pruned"), &["postgres:t=250"]);
}

#[test]
fn base_backup_and_point_in_time_recovery_on_a_local_store() {
    let bin = Bin::new(&[]);
    let store = server_dir();
    scenario(&bin, &store.path().display().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_backup_and_point_in_time_recovery_on_s3() {
    let moto = prodready_test_support::Moto::start();
    let bin = Bin::new(&moto.aws_env());
    // A bucket through the binary's own client would need a command; moto takes a plain PUT.
    let created = Command::new("curl")
        .args(["-fs", "-X", "PUT", "-H"])
        .arg("Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0")
        .arg(format!("{}/pitr", moto.endpoint()))
        .status()
        .unwrap();
    assert!(created.success());
    tokio::task::spawn_blocking(move || scenario(&bin, "s3://pitr/cluster")).await.unwrap();
    drop(moto);
}

/// A broken chain fails the drill (exit 1) and names the reason; nothing of the drill's server is left.
#[test]
fn a_drill_on_a_broken_chain_fails_naming_the_reason() {
    let bin = Bin::new(&[]);
    let store_dir = server_dir();
    let store = store_dir.path().display().to_string();
    let primary = Cluster::builder()
        .setting("archive_mode", "on")
        .setting("archive_command", &bin.archive_command(&store))
        .start();
    primary.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)");
    bin.json(&["backup", "base", "--store", &store, "--database", &primary.url("127.0.0.1", ""), "--json"]);
    primary.psql("INSERT INTO t SELECT generate_series(101, 200)");
    primary.switch_and_archive();
    let lost = primary.psql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    primary.psql("INSERT INTO t SELECT generate_series(201, 300)");
    std::thread::sleep(Duration::from_millis(1100));
    let noted = now_utc(&primary);
    std::thread::sleep(Duration::from_millis(1100));
    primary.psql("INSERT INTO t SELECT generate_series(301, 400)");
    primary.switch_and_archive();
    // The archived segment holding rows 201-300 goes missing.
    let removed = remove_archived(&store_dir.path().join(".wal"), &lost);
    assert!(removed, "segment {lost} not found in the archive");
    let work = server_dir();
    let into = work.path().join("d").display().to_string();
    let out = bin.drill(&store, &noted, &into, &["postgres:t=300"]);
    assert_eq!(out.status.code(), Some(1), "{}{}", stdout(&out), stderr(&out));
    // Said before anything is unpacked: the gap, and that recovery cannot get past it.
    assert!(
        stderr(&out).contains(&format!("misses 1 segment(s) {lost}..{lost} on timeline 1")),
        "{}",
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false, "{report:#}");
    assert!(
        report["problems"].as_array().unwrap().iter().any(|p| p
            .as_str()
            .unwrap()
            .contains("recovery ended before configured recovery target was reached")),
        "{report:#}"
    );
    assert_eq!(std::fs::read_dir(work.path().join("d")).unwrap().count(), 0);
    let list = bin.json(&["backup", "list", "--store", &store, "--json"]);
    assert_eq!(list[0]["verify_ok"], false, "{list:#}");
}

/// Deletes the archive object of WAL file `name` under `dir` (any layout), returning whether one was found.
fn remove_archived(dir: &Path, name: &str) -> bool {
    let mut found = false;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found |= remove_archived(&path, name);
        } else if entry.file_name().to_string_lossy().starts_with(&format!("{name}-")) {
            std::fs::remove_file(&path).unwrap();
            found = true;
        }
    }
    found
}
