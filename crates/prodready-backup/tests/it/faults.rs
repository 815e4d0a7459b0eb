use std::time::Duration;

use prodready_backup::catalog;
use prodready_backup::{Error, RestoreOptions, Store, Tools, VerifyOptions};
use prodready_test_support::{TestDb, free_port};

use crate::{options, quiet, temp_store};

async fn small_database() -> TestDb {
    let db = TestDb::create().await;
    db.connect()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 5000) i")
        .await
        .unwrap();
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_fails_both_verifications_and_names_the_object() {
    let db = small_database().await;
    let (dir, store) = temp_store();
    let manifest = prodready_backup::backup(&store, &options(&db), quiet()).await.unwrap();
    let object = manifest.tables[0].parts[0].clone();
    let path = dir.path().join("backups").join(&manifest.id).join(&object);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    let quick = prodready_backup::verify_quick(&store, &manifest).await.unwrap();
    assert!(!quick.ok);
    assert_eq!(quick.problems.len(), 1, "{:?}", quick.problems);
    assert!(quick.problems[0].starts_with(&format!("{object}: SHA-256 ")), "{:?}", quick.problems);

    let full = prodready_backup::verify(&store, &manifest, &crate::verify_options(db.url())).await.unwrap();
    assert!(!full.ok);
    assert!(full.problems.iter().any(|p| p.contains(&object)), "{:?}", full.problems);
    assert_eq!(catalog::list(&store).unwrap()[0].verify_ok, Some(false));

    // Restoring it fails on the corrupt object instead of loading damaged data.
    let target = TestDb::create().await;
    let restored = prodready_backup::restore(
        &store,
        &manifest,
        &RestoreOptions {
            target_url: target.url().to_owned(),
            jobs: 1,
            force: false,
            identity_files: vec![],
            tools: Tools::default(),
        },
        quiet(),
    )
    .await;
    match restored {
        Err(Error::Corrupt { object: named, .. }) => assert_eq!(named, object),
        other => panic!("expected corruption, got {other:?}"),
    }
}

/// An object the manifest lists but the store lost fails both verifications, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_object_fails_both_verifications_and_names_it() {
    let db = small_database().await;
    let (dir, store) = temp_store();
    let manifest = prodready_backup::backup(&store, &options(&db), quiet()).await.unwrap();
    let object = manifest.tables[0].parts[0].clone();
    std::fs::remove_file(dir.path().join("backups").join(&manifest.id).join(&object)).unwrap();

    let quick = prodready_backup::verify_quick(&store, &manifest).await.unwrap();
    assert!(!quick.ok);
    assert_eq!(quick.problems.len(), 1, "{:?}", quick.problems);
    assert!(quick.problems[0].starts_with(&format!("{object}: cannot read")), "{:?}", quick.problems);

    let full = prodready_backup::verify(&store, &manifest, &crate::verify_options(db.url())).await.unwrap();
    assert!(!full.ok);
    assert!(full.problems.iter().any(|p| p.starts_with(&format!("{object}: "))), "{:?}", full.problems);
    assert_eq!(catalog::list(&store).unwrap()[0].verify_ok, Some(false));
}

/// A manifest whose row count was changed (its objects and their hashes untouched, so every hash still
/// matches) passes the quick verification but fails the full one: the restored table has another count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_row_count_other_than_the_manifests_fails_verify_naming_the_table() {
    let db = small_database().await;
    let (dir, store) = temp_store();
    let backup = prodready_backup::backup(&store, &options(&db), quiet()).await.unwrap();
    let path = dir.path().join("backups").join(&backup.id).join("manifest.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["tables"][0]["rows"], 5000);
    json["tables"][0]["rows"] = 5001.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let manifest = catalog::manifest(&store, &backup.id, None).unwrap();
    assert_eq!(manifest.tables[0].rows, 5001);

    let quick = prodready_backup::verify_quick(&store, &manifest).await.unwrap();
    assert!(quick.ok, "{:?}", quick.problems);
    let full = prodready_backup::verify(&store, &manifest, &crate::verify_options(db.url())).await.unwrap();
    assert!(!full.ok);
    assert_eq!(full.problems, ["public.t: 5000 rows restored, 5001 in the manifest"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_fail_the_run_and_publish_nothing() {
    let db = TestDb::create().await;
    db.connect()
        .await
        .batch_execute("CREATE TABLE big (id int, pad text); INSERT INTO big SELECT i, repeat('y', 500) FROM generate_series(1, 600000) i")
        .await
        .unwrap();
    let (dir, store) = temp_store();
    let killer = {
        let client = db.connect().await;
        let name = db.name().to_owned();
        tokio::spawn(async move {
            for _ in 0..400 {
                let killed: i64 = client
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                         WHERE datname = $1 AND application_name = 'prodready-backup' AND query ILIKE 'COPY%'",
                        &[&name],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if killed > 0 {
                    return killed;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            0
        })
    };
    let result = prodready_backup::backup(&store, &options(&db), quiet()).await;
    assert!(killer.await.unwrap() > 0, "the test never caught the backup copying");
    assert!(matches!(result, Err(Error::Database(_))), "{result:?}");
    assert!(catalog::list(&store).unwrap().is_empty());
    let leftovers = std::fs::read_dir(dir.path().join("backups")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "the partial backup was removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_work_over_tls_when_required() {
    let db = small_database().await;
    let (_dir, store) = temp_store();
    let url = format!("{}?sslmode=require", db.url());
    let manifest =
        prodready_backup::backup(&store, &prodready_backup::BackupOptions::new(&url), quiet()).await.unwrap();
    assert_eq!(manifest.rows(), 5000);
    // sslmode=require fails outright without TLS support, so success means every connection (ours and
    // pg_dump's, through PGSSLMODE) was encrypted.
    let target = TestDb::create().await;
    prodready_backup::restore(
        &store,
        &manifest,
        &RestoreOptions {
            target_url: format!("{}?sslmode=require", target.url()),
            jobs: 2,
            force: false,
            identity_files: vec![],
            tools: Tools::default(),
        },
        quiet(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_backup_of_the_same_database_is_refused_while_one_runs() {
    let db = small_database().await;
    let holder = db.connect().await;
    holder.query_one("SELECT pg_advisory_lock($1)", &[&prodready_backup::LOCK_KEY]).await.unwrap();
    let (_dir, store) = temp_store();
    let result = prodready_backup::backup(&store, &options(&db), quiet()).await;
    assert!(matches!(result, Err(Error::Locked(ref name)) if name == db.name()), "{result:?}");
    holder.query_one("SELECT pg_advisory_unlock($1)", &[&prodready_backup::LOCK_KEY]).await.unwrap();
    assert!(prodready_backup::backup(&store, &options(&db), quiet()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_one_clear_error() {
    let (_dir, store) = temp_store();
    let unreachable = format!("postgres://postgres:hunter2@127.0.0.1:{}/nope", free_port());
    let err = prodready_backup::backup(&store, &prodready_backup::BackupOptions::new(&unreachable), quiet())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("database: cannot connect to 127.0.0.1:"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    let db = small_database().await;
    let mut opts = options(&db);
    opts.tools.pg_dump = "/nonexistent/pg_dump".into();
    let err = prodready_backup::backup(&store, &opts, quiet()).await.unwrap_err();
    assert!(matches!(err, Error::ToolMissing { tool: "pg_dump", .. }), "{err:?}");
    assert!(err.to_string().contains("apt-get install postgresql-client"), "{err}");

    let err = catalog::manifest(&store, "20000101T000000Z-dead", None).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)) && err.is_usage(), "{err:?}");
    let err = catalog::manifest(&store, "latest", None).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert!(Store::open("s3://bucket/prefix").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_backup_restores_only_with_its_identity() {
    use age::secrecy::ExposeSecret as _;
    let db = small_database().await;
    let (dir, store) = temp_store();
    let key = age::x25519::Identity::generate();
    let other = age::x25519::Identity::generate();
    let write_identity = |name: &str, identity: &age::x25519::Identity| {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{}\n", identity.to_string().expose_secret())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let (right, wrong) = (write_identity("key.txt", &key), write_identity("other.txt", &other));

    let mut opts = options(&db);
    opts.encrypt_to = vec![key.to_public().to_string()];
    let manifest = prodready_backup::backup(&store, &opts, quiet()).await.unwrap();
    assert_eq!(manifest.encryption.as_ref().unwrap().recipients, opts.encrypt_to);
    for object in &manifest.objects {
        let bytes = std::fs::read(dir.path().join("backups").join(&manifest.id).join(&object.name)).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1"), "{} is not encrypted", object.name);
    }
    // Hashes cover the ciphertext: a quick verification needs no key.
    assert!(prodready_backup::verify_quick(&store, &manifest).await.unwrap().ok);

    let restore = |identity_files: Vec<std::path::PathBuf>, target: String| {
        let (store, manifest) = (store.clone(), manifest.clone());
        async move {
            prodready_backup::restore(
                &store,
                &manifest,
                &RestoreOptions {
                    target_url: target,
                    jobs: 2,
                    force: false,
                    identity_files,
                    tools: Tools::default(),
                },
                quiet(),
            )
            .await
        }
    };
    let target = TestDb::create().await;
    let without = restore(vec![], target.url().to_owned()).await.unwrap_err();
    assert!(
        without.is_usage() && without.to_string().contains("is encrypted: it needs the age identity"),
        "{without}"
    );
    let wrong_key = restore(vec![wrong], target.url().to_owned()).await.unwrap_err();
    assert!(wrong_key.to_string().contains("none of the given identities can decrypt"), "{wrong_key}");
    // A key file others can read is refused, with the chmod fix.
    let exposed = dir.path().join("exposed.txt");
    std::fs::copy(&right, &exposed).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&exposed, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let refused = restore(vec![exposed.clone()], target.url().to_owned()).await.unwrap_err();
    assert!(refused.to_string().contains(&format!("run `chmod 600 {}`", exposed.display())), "{refused}");
    let fresh = TestDb::create().await;
    let report = restore(vec![right.clone()], fresh.url().to_owned()).await.unwrap();
    assert_eq!(report.rows, 5000);
    assert_eq!(crate::fingerprints(db.url()).await, crate::fingerprints(fresh.url()).await);

    let verify = |smoke_sql: Vec<String>| {
        let (store, manifest, right, url) =
            (store.clone(), manifest.clone(), right.clone(), db.url().to_owned());
        async move {
            let options = VerifyOptions {
                scratch_url: url,
                smoke_sql,
                jobs: 2,
                identity_files: vec![right],
                tools: Tools::default(),
            };
            prodready_backup::verify(&store, &manifest, &options).await.unwrap()
        }
    };
    let verified = verify(vec![]).await;
    assert!(verified.ok, "{:?}", verified.problems);
    // A failure whose message quotes a row (a duplicate key's DETAIL) is recorded beside the encrypted
    // backup, in the clear, without the row.
    let failed = verify(vec!["INSERT INTO t VALUES (1, 'dup')".into()]).await;
    assert!(!failed.ok);
    let problem = failed.problems.iter().find(|p| p.starts_with("smoke SQL")).expect("the smoke SQL failed");
    assert!(problem.contains("duplicate key"), "{problem}");
    assert!(!problem.contains("DETAIL") && !problem.contains("(id)=(1)"), "{problem}");

    let bad = prodready_backup::BackupOptions { encrypt_to: vec!["age1notakey".into()], ..options(&db) };
    let err = prodready_backup::backup(&store, &bad, quiet()).await.unwrap_err();
    assert!(err.to_string().contains("`age1notakey` is not an age X25519 recipient"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_keeps_each_databases_own_backups_in_a_shared_store() {
    let (a, b) = (small_database().await, small_database().await);
    let (_dir, store) = temp_store();
    for db in [&a, &b, &a, &b] {
        prodready_backup::backup(&store, &options(db), quiet()).await.unwrap();
    }
    let policy = prodready_backup::Retention { keep_daily: 1, keep_weekly: 0, keep_monthly: 0, min_keep: 1 };
    let report =
        prodready_backup::retention::prune(&store, &policy, None, false, true, Duration::from_secs(3600))
            .unwrap();
    assert_eq!(report.decisions.iter().filter(|d| d.keep).count(), 2, "{:?}", report.decisions);
    let left: Vec<String> = catalog::list(&store).unwrap().into_iter().map(|b| b.database).collect();
    assert_eq!(left.len(), 2);
    assert!(left.contains(&a.name().to_owned()) && left.contains(&b.name().to_owned()), "{left:?}");
    // `latest` of one database is its own newest backup.
    assert_eq!(catalog::manifest(&store, "latest", Some(a.name())).unwrap().database, a.name());
    assert_eq!(catalog::manifest(&store, "latest", Some(b.name())).unwrap().database, b.name());
}

/// One bad manifest never takes the store down, and no id or object name leads outside the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_manifests_are_left_out_and_paths_stay_inside_the_store() {
    let db = small_database().await;
    let (dir, store) = temp_store();
    let old = prodready_backup::backup(&store, &options(&db), quiet()).await.unwrap();
    let new = prodready_backup::backup(&store, &options(&db), quiet()).await.unwrap();
    let root = dir.path().join("backups");
    std::fs::write(root.join(&old.id).join("manifest.json"), b"{ bit rot").unwrap();
    // A manifest whose objects point outside, and one whose id is not its directory's.
    let outside = std::fs::read_to_string(root.join(&new.id).join("manifest.json")).unwrap();
    for (id, text) in [
        (
            "20000101T000000Z-evil",
            outside.replacen(&new.id, "20000101T000000Z-evil", 1).replace(&new.schema, "../../outside"),
        ),
        ("20000101T000000Z-moved", outside.replacen(&new.id, "x/../20000101T000000Z-other", 1)),
    ] {
        std::fs::create_dir(root.join(id)).unwrap();
        std::fs::write(root.join(id).join("manifest.json"), text).unwrap();
    }
    // A manifest the disk cannot give back: reading it fails with EIO, as a bad sector would (reading
    // /proc/self/mem at offset 0, an unmapped address, does).
    std::fs::create_dir(root.join("20000101T000000Z-eio")).unwrap();
    std::os::unix::fs::symlink("/proc/self/mem", root.join("20000101T000000Z-eio/manifest.json")).unwrap();

    let (good, corrupt) = catalog::list_all(&store).unwrap();
    assert_eq!(good.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), [new.id.as_str()]);
    let mut problems: Vec<(String, String)> = corrupt.into_iter().map(|c| (c.id, c.problem)).collect();
    problems.sort();
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(problems[0].1.starts_with("cannot read manifest.json: "), "{problems:?}");
    assert!(problems[1].1.contains("leads outside the backup"), "{problems:?}");
    assert!(problems[2].1.contains("is not its directory's"), "{problems:?}");
    assert_eq!(problems[3].0, old.id);
    assert!(problems[3].1.starts_with("unreadable"), "{problems:?}");
    // The good backup is still `latest`, verifiable and restorable: the unreadable one is older.
    assert_eq!(catalog::manifest(&store, "latest", None).unwrap().id, new.id);
    assert!(prodready_backup::verify_quick(&store, &new).await.unwrap().ok);

    // An unreadable manifest newer than every good one stops `latest` (it may be a passing fault, and
    // the newest backup), naming it; a malformed one (read, and bit-rotted) does not.
    std::fs::create_dir(root.join("29990101T000000Z-eio")).unwrap();
    std::os::unix::fs::symlink("/proc/self/mem", root.join("29990101T000000Z-eio/manifest.json")).unwrap();
    match catalog::manifest(&store, "latest", None) {
        Err(Error::Corrupt { id, problem, .. }) => {
            assert_eq!(id, "29990101T000000Z-eio");
            assert!(problem.contains(&format!("newer than {}", new.id)), "{problem}");
        }
        other => panic!("expected the newer unreadable backup to stop latest, got {other:?}"),
    }
    std::fs::remove_dir_all(root.join("29990101T000000Z-eio")).unwrap();
    std::fs::create_dir(root.join("29990101T000000Z-rot")).unwrap();
    std::fs::write(root.join("29990101T000000Z-rot/manifest.json"), b"{ bit rot").unwrap();
    assert_eq!(catalog::manifest(&store, "latest", None).unwrap().id, new.id);
    std::fs::remove_dir_all(root.join("29990101T000000Z-rot")).unwrap();

    // Nothing is read or written outside the store.
    for id in ["../x", "..", "a/b", "/etc", ""] {
        assert!(matches!(catalog::manifest(&store, id, None), Err(Error::NotFound(_))), "{id}");
        assert!(matches!(store.read(id, "manifest.json"), Err(Error::Corrupt { .. })), "{id}");
    }
    for name in ["../../../etc/passwd", "/etc/passwd", "a/../../b", ""] {
        assert!(matches!(store.read(&new.id, name), Err(Error::Corrupt { .. })), "{name}");
        assert!(matches!(store.write_atomic(&new.id, name, b"x"), Err(Error::Corrupt { .. })), "{name}");
    }
    assert!(!dir.path().join("outside").exists() && !dir.path().join("b").exists());

    // Prune judges the good backups and never deletes a corrupt one as a leftover.
    let keep_one =
        prodready_backup::Retention { keep_daily: 0, keep_weekly: 0, keep_monthly: 0, min_keep: 1 };
    let report =
        prodready_backup::retention::prune(&store, &keep_one, None, false, true, Duration::ZERO).unwrap();
    assert_eq!(report.corrupt.len(), 4);
    assert!(report.incomplete.is_empty(), "{:?}", report.incomplete);
    assert!(root.join(&old.id).join("manifest.json").exists());
}

/// Scratch databases nobody holds (a verification killed with SIGKILL) are dropped; one in use is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_scratch_databases_are_dropped_and_used_ones_kept() {
    let db = TestDb::create().await;
    let suffix = db.name().trim_start_matches("prt_");
    let (abandoned, in_use) =
        (format!("prodready_verify_gone_{suffix}"), format!("prodready_verify_busy_{suffix}"));
    let admin = db.connect().await;
    for name in [&abandoned, &in_use] {
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    }
    // The lock is held from another database than the one the cleanup connects to (advisory locks are
    // per database; the check must see it anyway).
    let elsewhere = TestDb::create().await;
    let holder = elsewhere.connect().await;
    holder.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", &[&in_use]).await.unwrap();

    let dropped = prodready_backup::drop_abandoned_scratch(db.url()).await.unwrap();
    assert!(dropped.contains(&abandoned), "{dropped:?}");
    assert!(!dropped.contains(&in_use), "{dropped:?}");
    let exists = |name: &str| {
        let name = name.to_owned();
        let admin = &admin;
        async move {
            admin
                .query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(exists(&abandoned).await, 0);
    assert_eq!(exists(&in_use).await, 1);
    drop(holder);
    admin.batch_execute(&format!("DROP DATABASE {in_use} WITH (FORCE)")).await.unwrap();
}

/// A table part the manifest names but does not list among its objects (so nothing checks its hash) fails
/// the quick verification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_verification_notices_an_unlisted_table_part() {
    let db = small_database().await;
    let (_dir, store) = temp_store();
    let mut manifest = prodready_backup::backup(&store, &options(&db), quiet()).await.unwrap();
    let part = manifest.tables[0].parts[0].clone();
    manifest.objects.retain(|o| o.name != part);
    let quick = prodready_backup::verify_quick(&store, &manifest).await.unwrap();
    assert!(!quick.ok);
    assert_eq!(
        quick.problems,
        [format!("{part}: the manifest uses it as table part but does not list it among the objects")]
    );
}

/// While a backup of the database runs (it holds the advisory lock), prune keeps leftovers that look
/// idle: a long backup's objects are not an interrupted run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_keeps_leftovers_while_a_backup_runs() {
    let db = small_database().await;
    let (dir, store) = temp_store();
    prodready_backup::backup(&store, &options(&db), quiet()).await.unwrap();
    let leftover = dir.path().join("backups/20260101T000000Z-beef");
    std::fs::create_dir_all(leftover.join("data")).unwrap();
    std::fs::write(leftover.join("data/00000.0.copy.zst"), b"half").unwrap();
    let policy = prodready_backup::Retention::default();

    let holder = db.connect().await;
    holder.query_one("SELECT pg_advisory_lock($1)", &[&prodready_backup::LOCK_KEY]).await.unwrap();
    assert!(prodready_backup::backup_running(db.url()).await.unwrap());
    let running = prodready_backup::backup_running(db.url()).await.unwrap();
    let report =
        prodready_backup::retention::prune(&store, &policy, None, false, !running, Duration::ZERO).unwrap();
    assert!(report.incomplete.is_empty() && leftover.exists(), "{report:?}");

    // Other tests back up other databases of this server meanwhile, so `backup_running` (which sees
    // every database's backups) is not asked again: with none running, prune cleans.
    drop(holder);
    let report =
        prodready_backup::retention::prune(&store, &policy, None, false, true, Duration::ZERO).unwrap();
    assert_eq!(report.incomplete, ["20260101T000000Z-beef"]);
    assert!(!leftover.exists());
}

/// A migration rewrites a table while the backup starts: the backup's snapshot is taken, then it waits
/// for its lock behind the migration, which commits. The snapshot sees none of the table's rows: the
/// backup fails naming the table, instead of publishing it empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_rewritten_as_the_backup_starts_fails_the_backup() {
    let db = small_database().await;
    let migration = db.connect().await;
    migration.batch_execute("BEGIN; ALTER TABLE t ALTER COLUMN id TYPE bigint").await.unwrap();
    let (_dir, store) = temp_store();
    let backup = tokio::spawn({
        let (store, options) = (store.clone(), options(&db));
        async move { prodready_backup::backup(&store, &options, quiet()).await }
    });
    // Until the backup waits on the migration's lock (its snapshot is taken by then).
    let watcher = db.connect().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE NOT l.granted AND a.application_name = 'prodready-backup'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the backup never waited for its lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    migration.batch_execute("COMMIT").await.unwrap();
    let err = backup.await.unwrap().unwrap_err().to_string();
    assert!(err.contains("public.t rewritten or truncated as the backup started"), "{err}");
    assert!(catalog::list(&store).unwrap().is_empty());
    // Run again, it is whole.
    let manifest = prodready_backup::backup(&store, &options(&db), quiet()).await.unwrap();
    assert_eq!(manifest.tables[0].rows, 5000);
}

/// A database that sets standard_conforming_strings = off: schemas whose names begin with `pg` are still
/// backed up (the catalog filter is no LIKE pattern a backslash setting can change), and restored whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_beginning_with_pg_are_kept_whatever_standard_conforming_strings_says() {
    let db = TestDb::create().await;
    db.connect()
        .await
        .batch_execute(&format!(
            "CREATE SCHEMA pgbench; CREATE TABLE pgbench.accounts (id int PRIMARY KEY, note text);
             INSERT INTO pgbench.accounts SELECT i, 'back\\slash ' || i FROM generate_series(1, 100) i;
             CREATE SCHEMA pgx; CREATE SEQUENCE pgx.s; SELECT setval('pgx.s', 42);
             ALTER DATABASE \"{}\" SET standard_conforming_strings = off",
            db.name()
        ))
        .await
        .unwrap();
    let (_dir, store) = temp_store();
    let manifest = prodready_backup::backup(&store, &options(&db), quiet()).await.unwrap();
    assert!(manifest.tables.iter().any(|t| t.schema == "pgbench" && t.rows == 100), "{:?}", manifest.tables);
    let target = TestDb::create().await;
    prodready_backup::restore(&store, &manifest, &crate::restore_options(target.url()), quiet())
        .await
        .unwrap();
    assert_eq!(crate::fingerprints(db.url()).await, crate::fingerprints(target.url()).await);
    let s: i64 = target.connect().await.query_one("SELECT last_value FROM pgx.s", &[]).await.unwrap().get(0);
    assert_eq!(s, 42);
}

/// A backup whose data misses a table its schema has (as when the backup's own list of tables missed
/// one): verify restores the schema, sees the table, and fails naming it, where comparing the backup
/// with itself passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_fails_a_backup_whose_data_misses_a_table_of_its_schema() {
    let db = small_database().await;
    db.connect()
        .await
        .batch_execute("CREATE TABLE other (k int); INSERT INTO other VALUES (1)")
        .await
        .unwrap();
    let (dir, store) = temp_store();
    let manifest = prodready_backup::backup(&store, &options(&db), quiet()).await.unwrap();
    let path = dir.path().join("backups").join(&manifest.id).join("manifest.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["tables"].as_array_mut().unwrap().retain(|t| t["name"] != "other");
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let short = catalog::manifest(&store, &manifest.id, None).unwrap();
    let verified = prodready_backup::verify(&store, &short, &crate::verify_options(db.url())).await.unwrap();
    assert!(!verified.ok);
    assert!(
        verified
            .problems
            .iter()
            .any(|p| p.starts_with("public.other: in the backup's schema but not in its data")),
        "{:?}",
        verified.problems
    );
}

/// Advisory locks belong to one database: a backup of another database of the server (or a base backup
/// connected to `postgres`) still counts as running for a prune configured with this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_another_database_counts_as_running() {
    let cluster = prodready_test_support::Cluster::builder().start();
    let other = format!("postgres://postgres@127.0.0.1:{}/template1", cluster.port());
    assert!(!prodready_backup::backup_running(&other).await.unwrap());
    for key in [prodready_backup::LOCK_KEY, prodready_backup::BASE_LOCK_KEY] {
        let (holder, driver) =
            tokio_postgres::connect(&cluster.url("127.0.0.1", ""), tokio_postgres::NoTls).await.unwrap();
        let driver = tokio::spawn(driver);
        holder.query_one("SELECT pg_advisory_lock_shared($1)", &[&key]).await.unwrap();
        assert!(prodready_backup::backup_running(&other).await.unwrap(), "{key:#x} held in postgres");
        drop(holder);
        driver.await.unwrap().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while prodready_backup::backup_running(&other).await.unwrap() {
            assert!(std::time::Instant::now() < deadline, "the lock outlived its session");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
