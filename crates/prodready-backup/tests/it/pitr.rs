//! Base backups and point-in-time recovery against throwaway clusters that archive WAL with `cp` into a
//! directory (the binary's own WAL archive has its tests in the binary's suite): a recovery to a noted
//! time has exactly the rows written before it and the table dropped after it; `latest` has every row; a
//! recovery follows a timeline switch; drills pass on a good chain and name what broke on a broken one.

use std::path::Path;
use std::time::Duration;

use prodready_backup::drill::{DrillOptions, TableCheck};
use prodready_backup::pitr::{self, Action, PrepareOptions, Target, Timelines};
use prodready_backup::{BaseManifest, BaseOptions, Store, catalog};
use prodready_test_support::{Cluster, bin_dir, server_dir};

use crate::quiet;

/// A cluster archiving every WAL file into `archive` with `cp` (never overwriting).
fn archiving_cluster(archive: &Path) -> Cluster {
    Cluster::builder()
        .setting("archive_mode", "on")
        .setting("archive_command", &format!("test ! -f {0}/%f && cp %p {0}/%f", archive.display()))
        .start()
}

fn restore_command(archive: &Path) -> String {
    format!("cp {}/%f %p", archive.display())
}

/// Base backup options for `cluster`, whose WAL goes to a `cp` archive (not the store: the check that
/// the store holds the backup's WAL is off).
fn base_options(cluster: &Cluster) -> BaseOptions {
    let mut options = BaseOptions::new(cluster.url("127.0.0.1", ""));
    options.pg_basebackup = bin_dir().join("pg_basebackup");
    options.check_archive = false;
    options
}

fn drill_options(tables: &[&str]) -> DrillOptions {
    let mut options = DrillOptions::for_major(15);
    options.bin_dir = bin_dir();
    options.tables = tables.iter().map(|t| t.parse::<TableCheck>().unwrap()).collect();
    options.timeout = Duration::from_secs(300);
    options
}

/// The newest segment in the `cp` archive, on its newest timeline (what a drill to `latest` must reach).
fn newest_segment(archive: &Path) -> String {
    std::fs::read_dir(archive)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 24 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .max()
        .expect("the archive holds segments")
}

/// Drill options for `latest` that check recovery got through the archive's newest segment.
fn latest_options(archive: &Path, tables: &[&str]) -> DrillOptions {
    let mut options = drill_options(tables);
    options.latest_segment = Some(newest_segment(archive));
    options
}

fn prepare(
    store: &Store,
    base: &BaseManifest,
    archive: &Path,
    target: &Target,
    into: &Path,
) -> pitr::Prepared {
    let options = PrepareOptions {
        target: target.clone(),
        into: into.to_owned(),
        restore_command: restore_command(archive),
        action: Action::Promote,
        identity_files: Vec::new(),
        archive: false,
    };
    pitr::prepare(store, base, &options).unwrap()
}

/// Reads `TLI.history` from the `cp` archive.
fn timelines(archive: &Path, from: u32) -> Timelines {
    Timelines::discover(from, &mut |tli| {
        Ok(std::fs::read_to_string(archive.join(format!("{tli:08X}.history"))).ok())
    })
    .unwrap()
}

/// The scenario of the acceptance criteria, on any store.
async fn recovers_to_a_time_to_latest_and_across_a_timeline_switch(store: &Store) {
    let archive = server_dir();
    let primary = archiving_cluster(archive.path());
    primary.psql(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 100) i;
         CREATE TABLE doomed (k int); INSERT INTO doomed SELECT generate_series(1, 10)",
    );
    let base = prodready_backup::base_backup(store, &base_options(&primary), quiet()).await.unwrap();
    assert_eq!(base.kind, "base");
    assert_eq!(base.timeline, 1);
    assert!(base.backup_label.contains(&base.label), "{}", base.backup_label);
    assert!(
        base.start_lsn.parse::<prodready_backup::Lsn>().unwrap()
            <= base.stop_lsn.parse::<prodready_backup::Lsn>().unwrap()
    );
    assert_eq!(base.objects.len(), 1);
    // Listed as a base backup; never taken for a logical one.
    let (bases, corrupt) = catalog::list_base(store).unwrap();
    assert!(corrupt.is_empty(), "{corrupt:?}");
    assert_eq!((bases.len(), bases[0].kind.as_str()), (1, "base"));
    assert!(catalog::list(store).unwrap().is_empty());
    assert!(matches!(catalog::manifest(store, "latest", None), Err(prodready_backup::Error::NotFound(_))));
    let err = catalog::manifest(store, &base.id, None).unwrap_err().to_string();
    assert!(err.contains("base backup"), "{err}");

    primary.psql("INSERT INTO t SELECT i, md5(i::text) FROM generate_series(101, 200) i");
    std::thread::sleep(Duration::from_millis(1100));
    let noted = primary
        .psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
    std::thread::sleep(Duration::from_millis(1100));
    primary.psql("INSERT INTO t SELECT i, md5(i::text) FROM generate_series(201, 400) i");
    primary.psql("DROP TABLE doomed");
    primary.switch_and_archive();

    // To the noted time: the 200 rows written before it, and the table dropped after it.
    let at_noted = Target::parse(&noted).unwrap();
    let one = timelines(archive.path(), 1);
    let chosen = pitr::choose(std::slice::from_ref(&base), &at_noted, &one).unwrap();
    let into = server_dir();
    let prepared = prepare(store, chosen, archive.path(), &at_noted, &into.path().join("data"));
    assert!(into.path().join("data/recovery.signal").is_file());
    let auto = std::fs::read_to_string(into.path().join("data/postgresql.auto.conf")).unwrap();
    assert!(auto.contains("recovery_target_time = '") && auto.contains("+00'"), "{auto}");
    assert!(auto.contains("recovery_target_timeline = 'latest'"), "{auto}");
    let drilled = prodready_backup::drill::drill(
        store,
        &base,
        &prepared,
        &at_noted,
        &drill_options(&["postgres:public.t=200", "postgres:doomed=10"]),
    )
    .await
    .unwrap();
    assert!(drilled.ok, "{drilled:#?}");
    assert!(drilled.checked.iter().any(|c| c.contains("recovery stopping")), "{:#?}", drilled.checked);
    assert!(drilled.checked.iter().any(|c| c.contains("pg_verifybackup")), "{:#?}", drilled.checked);
    assert_eq!(
        std::fs::read_dir(into.path().join("data")).unwrap().count(),
        0,
        "the drill empties its directory"
    );
    let listed = &catalog::list_base(store).unwrap().0[0];
    assert_eq!(listed.verify_ok, Some(true));
    assert!(listed.last_verified_ok_at.is_some());

    // Latest: every row, and the table is gone (a drill expecting it fails, naming it).
    let into = server_dir();
    let prepared = prepare(store, &base, archive.path(), &Target::Latest, &into.path().join("data"));
    let drilled = prodready_backup::drill::drill(
        store,
        &base,
        &prepared,
        &Target::Latest,
        &latest_options(archive.path(), &["postgres:t=400", "postgres:doomed"]),
    )
    .await
    .unwrap();
    assert!(!drilled.ok);
    assert_eq!(drilled.problems.len(), 1, "{:#?}", drilled.problems);
    assert!(
        drilled.problems[0].contains("doomed") && drilled.problems[0].contains("does not exist"),
        "{:#?}",
        drilled.problems
    );
    assert!(drilled.checked.iter().any(|c| c.contains("t: 400 rows")), "{:#?}", drilled.checked);
    assert!(
        drilled.checked.iter().any(|c| c.contains("through its newest segment")),
        "{:#?}",
        drilled.checked
    );
    // The failed drill is the newest; the passed one is still remembered.
    let listed = &catalog::list_base(store).unwrap().0[0];
    assert_eq!(listed.verify_ok, Some(false));
    assert!(listed.last_verified_ok_at.is_some());

    // A timeline switch: a copy recovered to the noted time is promoted (timeline 2), archives into the
    // same archive, and takes 50 more rows. Recovering again to latest follows timeline 2.
    let copy_dir = server_dir();
    prepare(store, &base, archive.path(), &at_noted, &copy_dir.path().join("data"));
    let copy = Cluster::adopt(
        copy_dir,
        &[
            ("archive_mode", "on"),
            ("archive_command", &format!("test ! -f {0}/%f && cp %p {0}/%f", archive.path().display())),
        ],
    );
    copy.wait_promoted();
    copy.psql("INSERT INTO t SELECT i, 'tl2' FROM generate_series(1001, 1050) i");
    copy.switch_and_archive();
    drop(copy);
    let two = timelines(archive.path(), 1);
    assert_eq!(two.newest, 2, "{two:?}");
    // The old primary's base backup of today (timeline 1, past the switch) cannot serve timeline 2.
    primary.psql("INSERT INTO t VALUES (5000, 'tl1 only')");
    let late = prodready_backup::base_backup(store, &base_options(&primary), quiet()).await.unwrap();
    let (all, _) = catalog::base_manifests(store).unwrap();
    assert_eq!(all.len(), 2);
    let chosen = pitr::choose(&all, &Target::Latest, &two).unwrap();
    assert_eq!(chosen.id, base.id, "the base backup past the switch ({}) must not be chosen", late.id);
    assert_eq!(pitr::choose(&all, &Target::Latest, &one).unwrap().id, late.id);
    let into = server_dir();
    let prepared = prepare(store, chosen, archive.path(), &Target::Latest, &into.path().join("data"));
    let drilled = prodready_backup::drill::drill(
        store,
        chosen,
        &prepared,
        &Target::Latest,
        &latest_options(archive.path(), &["postgres:t=250"]),
    )
    .await
    .unwrap();
    assert!(drilled.ok, "{drilled:#?}");
    assert!(
        drilled.checked.iter().any(|c| c.contains("selected new timeline ID: 3")),
        "{:#?}",
        drilled.checked
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_recovery_from_a_local_store() {
    let (_dir, store) = crate::temp_store();
    recovers_to_a_time_to_latest_and_across_a_timeline_switch(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_recovery_from_s3_on_moto() {
    let moto = prodready_test_support::Moto::start();
    crate::s3::bucket(&moto, "pitr").await;
    let store = Store::s3(
        &crate::s3::sdk(&moto.endpoint()).await,
        "s3://pitr/cluster",
        &prodready_backup::S3Options::default(),
    )
    .unwrap();
    recovers_to_a_time_to_latest_and_across_a_timeline_switch(&store).await;
}

/// A broken chain fails its drill, naming why: a missing WAL segment stops recovery before the target; a
/// damaged archive object is named with its hash before anything starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_on_a_broken_chain_fail_naming_the_reason() {
    let (store_dir, store) = crate::temp_store();
    let archive = server_dir();
    let primary = archiving_cluster(archive.path());
    primary.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)");
    let base = prodready_backup::base_backup(&store, &base_options(&primary), quiet()).await.unwrap();
    primary.psql("INSERT INTO t SELECT generate_series(101, 200)");
    primary.switch_and_archive();
    let after_gap = primary.psql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    primary.psql("INSERT INTO t SELECT generate_series(201, 300)");
    std::thread::sleep(Duration::from_millis(1100));
    let noted = primary
        .psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
    std::thread::sleep(Duration::from_millis(1100));
    primary.psql("INSERT INTO t SELECT generate_series(301, 400)");
    primary.switch_and_archive();

    // The segment after the base backup's end goes missing: recovery cannot reach the noted time.
    std::fs::remove_file(archive.path().join(&after_gap)).unwrap();
    let target = Target::parse(&noted).unwrap();
    let into = server_dir();
    let prepared = prepare(&store, &base, archive.path(), &target, &into.path().join("data"));
    let drilled = prodready_backup::drill::drill(
        &store,
        &base,
        &prepared,
        &target,
        &drill_options(&["postgres:t=300"]),
    )
    .await
    .unwrap();
    assert!(!drilled.ok);
    let problems = drilled.problems.join("\n");
    assert!(problems.contains("recovery ended before configured recovery target was reached"), "{problems}");

    // To latest, PostgreSQL itself stops at the missing segment and promotes as if all were well: the
    // drill fails because recovery ended before the archive's newest segment.
    let into = server_dir();
    let prepared = prepare(&store, &base, archive.path(), &Target::Latest, &into.path().join("data"));
    let newest = newest_segment(archive.path());
    let drilled = prodready_backup::drill::drill(
        &store,
        &base,
        &prepared,
        &Target::Latest,
        &latest_options(archive.path(), &["postgres:t=100"]),
    )
    .await
    .unwrap();
    assert!(!drilled.ok, "{drilled:#?}");
    assert_eq!(drilled.problems.len(), 1, "{:#?}", drilled.problems);
    assert!(
        drilled.problems[0].starts_with("recovery to latest ended in WAL segment "),
        "{:#?}",
        drilled.problems
    );
    assert!(drilled.problems[0].contains(&format!("before {newest}")), "{:#?}", drilled.problems);

    // A flipped byte in the stored archive: named before anything is unpacked, and the directory emptied.
    let object = store_dir.path().join("backups").join(&base.id).join(prodready_backup::ARCHIVE);
    let mut bytes = std::fs::read(&object).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&object, bytes).unwrap();
    let into = server_dir();
    let options = PrepareOptions {
        target: Target::Latest,
        into: into.path().join("data"),
        restore_command: restore_command(archive.path()),
        action: Action::Promote,
        identity_files: Vec::new(),
        archive: false,
    };
    let err = pitr::prepare(&store, &base, &options).unwrap_err().to_string();
    assert!(err.contains("base.tar.zst"), "{err}");
    assert!(err.contains("corrupt"), "{err}");
    assert_eq!(std::fs::read_dir(into.path().join("data")).unwrap().count(), 0);

    // A non-empty directory is refused.
    let busy = server_dir();
    std::fs::write(busy.path().join("x"), b"x").unwrap();
    let options = PrepareOptions { into: busy.path().to_owned(), ..options };
    let err = pitr::prepare(&store, &base, &options).unwrap_err().to_string();
    assert!(err.contains("not empty"), "{err}");
}

/// A server that does not archive WAL gets no base backup (it could never be recovered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_archiving_is_refused() {
    let (_dir, store) = crate::temp_store();
    let plain = Cluster::builder().start();
    let err =
        prodready_backup::base_backup(&store, &base_options(&plain), quiet()).await.unwrap_err().to_string();
    assert!(err.contains("archive_mode"), "{err}");
    assert!(store.ids().unwrap().is_empty());
}

/// A base backup holds its lock while it streams, so `backup_running` (what prune asks before it removes
/// leftovers and aborts uploads idle for `--incomplete-older-than`) sees it: an upload of hours is not an
/// interrupted one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_base_backup_counts_as_a_running_backup() {
    /// Stops the stream at its first bytes until released.
    struct Paused {
        reached: std::sync::mpsc::SyncSender<()>,
        release: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    }
    impl prodready_backup::Progress for Paused {
        fn bytes(&self, _n: u64) {
            let release = self.release.lock().unwrap().take();
            if let Some(release) = release {
                let _ = self.reached.send(());
                let _ = release.recv();
            }
        }
    }
    let (_dir, store) = crate::temp_store();
    let archive = server_dir();
    let primary = archiving_cluster(archive.path());
    let url = primary.url("127.0.0.1", "");
    assert!(!prodready_backup::backup_running(&url).await.unwrap());
    let (reached, at_bytes) = std::sync::mpsc::sync_channel(1);
    let (release, released) = std::sync::mpsc::channel();
    let progress = std::sync::Arc::new(Paused { reached, release: std::sync::Mutex::new(Some(released)) });
    let backup = tokio::spawn({
        let (store, options) = (store.clone(), base_options(&primary));
        async move { prodready_backup::base_backup(&store, &options, progress).await }
    });
    tokio::task::spawn_blocking(move || at_bytes.recv()).await.unwrap().expect("the stream started");
    assert!(prodready_backup::backup_running(&url).await.unwrap(), "a base backup is streaming");
    release.send(()).unwrap();
    backup.await.unwrap().unwrap();
    assert!(!prodready_backup::backup_running(&url).await.unwrap());
}

/// pg_basebackup streams the whole archive and then fails (the server could not end the backup): the
/// archive object is never completed, nothing of the backup stays in the store, and the error is
/// pg_basebackup's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_backup_whose_tool_fails_after_the_stream_leaves_nothing() {
    let (dir, store) = crate::temp_store();
    let archive = server_dir();
    let primary = archiving_cluster(archive.path());
    let tool = dir.path().join("pg_basebackup");
    std::fs::write(
        &tool,
        format!(
            "#!/bin/sh\nreal={}\ncase \"$1\" in --version) exec \"$real\" --version;; esac\n\
             \"$real\" \"$@\" || exit $?\n\
             echo 'pg_basebackup: error: the server could not end the backup' >&2\nexit 1\n",
            bin_dir().join("pg_basebackup").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &tool,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
    )
    .unwrap();
    let mut options = base_options(&primary);
    options.pg_basebackup = tool;
    let err = prodready_backup::base_backup(&store, &options, quiet()).await.unwrap_err().to_string();
    assert!(err.contains("the server could not end the backup"), "{err}");
    assert!(store.ids().unwrap().is_empty(), "{:?}", store.ids());
}

/// A base backup of a server whose configuration already holds recovery settings (as one that was itself
/// recovered, to a named point, and promoted): the new recovery sets them back to their defaults first,
/// so a recovery to latest replays everything instead of hunting for the old target. The recovered
/// server archives nothing unless asked to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_of_an_earlier_recovery_do_not_steer_this_one() {
    let (_dir, store) = crate::temp_store();
    let archive = server_dir();
    let primary = archiving_cluster(archive.path());
    for sql in [
        "ALTER SYSTEM SET recovery_target_name = 'a_point_never_created'",
        "ALTER SYSTEM SET recovery_target_inclusive = off",
        "ALTER SYSTEM SET recovery_target_action = 'shutdown'",
    ] {
        primary.psql(sql);
    }
    primary.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)");
    let base = prodready_backup::base_backup(&store, &base_options(&primary), quiet()).await.unwrap();
    primary.psql("INSERT INTO t SELECT generate_series(101, 150)");
    primary.switch_and_archive();

    let into = server_dir();
    let prepared = prepare(&store, &base, archive.path(), &Target::Latest, &into.path().join("data"));
    let auto = std::fs::read_to_string(into.path().join("data/postgresql.auto.conf")).unwrap();
    let ours = auto.split("written by prodready-backup").nth(1).expect("the recovery's own block");
    for line in [
        "recovery_target_name = ''",
        "recovery_target_inclusive = 'on'",
        "recovery_target_action = 'pause'",
        "archive_mode = 'off'",
    ] {
        assert!(ours.contains(line), "{line} missing:\n{auto}");
    }
    assert!(!ours.contains("recovery_target_lsn"), "only what was set before is reset:\n{auto}");
    let drilled = prodready_backup::drill::drill(
        &store,
        &base,
        &prepared,
        &Target::Latest,
        &latest_options(archive.path(), &["postgres:t=150"]),
    )
    .await
    .unwrap();
    assert!(drilled.ok, "{drilled:#?}");

    // A recovery that replaces production keeps the source's archiving.
    let into = server_dir();
    let options = PrepareOptions {
        target: Target::Latest,
        into: into.path().join("data"),
        restore_command: restore_command(archive.path()),
        action: Action::Pause,
        identity_files: Vec::new(),
        archive: true,
    };
    pitr::prepare(&store, &base, &options).unwrap();
    let auto = std::fs::read_to_string(into.path().join("data/postgresql.auto.conf")).unwrap();
    assert!(!auto.contains("archive_mode"), "{auto}");
}

/// A server whose WAL is archived somewhere else than the store: the base backup streams, but it is not
/// kept, since it could not be recovered from this store (and would count as a backup for retention).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_backup_whose_wal_is_not_in_the_store_is_not_kept() {
    let (_dir, store) = crate::temp_store();
    let archive = server_dir();
    let primary = archiving_cluster(archive.path());
    primary.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)");
    // The store has a WAL archive (of this cluster), just not the segments this backup needs.
    primary.switch_and_archive();
    let first = newest_segment(archive.path());
    prodready_backup::wal::WalArchive::new(store.clone())
        .push(&archive.path().join(&first), &prodready_backup::wal::PushOptions::default())
        .unwrap();
    let mut options = base_options(&primary);
    options.check_archive = true;
    let err = prodready_backup::base_backup(&store, &options, quiet()).await.unwrap_err().to_string();
    assert!(err.contains("not archived here") && err.contains("archive_command"), "{err}");
    assert_eq!(store.ids().unwrap(), Vec::<String>::new(), "nothing of the backup is kept");
    // A store with no WAL archive at all says so.
    let (_dir, empty) = crate::temp_store();
    let err = prodready_backup::base_backup(&empty, &options, quiet()).await.unwrap_err().to_string();
    assert!(err.contains("no WAL is archived here"), "{err}");
    assert!(empty.ids().unwrap().is_empty());
}
