//! The WAL archive against real segments of throwaway clusters, in a local store and in S3 on moto: one
//! behaviour suite for both.

use std::path::{Path, PathBuf};

use prodready_backup::wal::{Lsn, PushOptions, WalArchive, WalKind};
use prodready_backup::{Error, Store, catalog, retention};
use prodready_test_support::{Cluster, Moto};

/// A cluster with `n` finished segments, and their paths (copied out of pg_wal, oldest first).
fn cluster_with_segments(n: usize) -> (Cluster, tempfile::TempDir, Vec<PathBuf>) {
    let cluster = Cluster::builder().start();
    cluster.psql("CREATE TABLE t (id int, pad text)");
    let finished = || {
        let current = cluster.psql("SELECT pg_walfile_name(pg_current_wal_lsn())");
        let mut names: Vec<String> = std::fs::read_dir(cluster.data_dir().join("pg_wal"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.len() == 24 && n.as_str() < current.as_str())
            .collect();
        names.sort();
        names
    };
    let mut names = finished();
    for i in 0.. {
        if names.len() >= n {
            break;
        }
        assert!(i < 10 * n, "no {n} finished segments after {i} switches: {names:?}");
        cluster.psql(&format!(
            "INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, {}) g",
            2000 + i
        ));
        cluster.psql("SELECT pg_switch_wal()");
        names = finished();
    }
    let copies = tempfile::tempdir().unwrap();
    let paths = names
        .iter()
        .map(|name| {
            let to = copies.path().join(name);
            std::fs::copy(cluster.data_dir().join("pg_wal").join(name), &to).unwrap();
            to
        })
        .collect();
    (cluster, copies, paths)
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Everything the archive promises, on `store`.
fn archive_suite(store: &Store) {
    let (_cluster, _copies, segments) = cluster_with_segments(4);
    let archive = WalArchive::new(store.clone());
    let options = PushOptions::default();
    for path in &segments {
        let pushed = archive.push(path, &options).unwrap();
        assert!(!pushed.already, "{}", pushed.name);
        assert!(pushed.stored_size < pushed.size, "compressed: {pushed:?}");
    }
    // Idempotent: the same bytes again succeed without a second object.
    let again = archive.push(&segments[0], &options).unwrap();
    assert!(again.already);
    let info = archive.info().unwrap().expect("the first push records the cluster");
    assert_eq!(info.segment_size, 16 << 20);

    // Different bytes under an archived name are refused, loudly, and the archive keeps the original.
    let forged_dir = tempfile::tempdir().unwrap();
    let forged = forged_dir.path().join(name(&segments[1]));
    let mut bytes = std::fs::read(&segments[1]).unwrap();
    bytes[100_000] ^= 0xff;
    std::fs::write(&forged, &bytes).unwrap();
    match archive.push(&forged, &options) {
        Err(Error::WalConflict { name: n, .. }) => assert_eq!(n, name(&segments[1])),
        other => panic!("a conflicting push must fail: {other:?}"),
    }

    // A round trip gives back the very bytes.
    let out = tempfile::tempdir().unwrap();
    for path in &segments {
        let dest = out.path().join("RECOVERYXLOG");
        let fetched = archive.fetch(&name(path), &dest).unwrap().expect("archived");
        assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(path).unwrap(), "{}", fetched.name);
    }
    // What PostgreSQL asks for and the archive does not hold is a quiet `None`.
    assert!(archive.fetch("00000002.history", &out.path().join("x")).unwrap().is_none());
    assert!(archive.fetch("0000000100000000000000FF", &out.path().join("x")).unwrap().is_none());
    assert!(!out.path().join("x").exists());

    // A history file and a backup history file are archived beside the segments.
    let history = forged_dir.path().join("00000002.history");
    std::fs::write(&history, "1\t0/5000000\tno recovery target specified\n").unwrap();
    assert_eq!(archive.push(&history, &options).unwrap().name, "00000002.history");
    let dest = out.path().join("h");
    archive.fetch("00000002.history", &dest).unwrap().unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&history).unwrap());
    let text = archive.history(2).unwrap().expect("archived");
    assert_eq!(text.as_bytes(), std::fs::read(&history).unwrap());
    assert!(archive.history(3).unwrap().is_none());
    assert_eq!(archive.newest_timeline().unwrap(), 2);

    let status = archive.status(now()).unwrap();
    assert_eq!(status.timelines.len(), 1, "{status:?}");
    assert_eq!(status.timelines[0].first, name(&segments[0]));
    assert_eq!(status.timelines[0].last, name(segments.last().unwrap()));
    assert!(status.gaps.is_empty(), "{:?}", status.gaps);
    assert!(status.newest.as_ref().is_some_and(|n| n.age_seconds < 3600), "{:?}", status.newest);
    assert_eq!(status.history, vec![2]);

    // A logical-backup listing and prune never see the archive, however idle it looks.
    assert!(catalog::list(store).unwrap().is_empty());
    let report = retention::prune(
        store,
        &prodready_backup::Retention::default(),
        None,
        false,
        true,
        std::time::Duration::ZERO,
    )
    .unwrap();
    assert!(report.incomplete.is_empty(), "{:?}", report.incomplete);
    assert_eq!(archive.status(now()).unwrap().files, status.files);

    // Corruption: an object whose bytes changed is named by verification; a fetch refuses it.
    let objects = store.list(prodready_backup::wal::WAL_DIR, "").unwrap();
    let victim = objects.iter().find(|o| o.name.contains(&name(&segments[2]))).unwrap().name.clone();
    let mut stored = store.read(prodready_backup::wal::WAL_DIR, &victim).unwrap();
    let middle = stored.len() / 2;
    stored[middle] ^= 0x55;
    store.delete(prodready_backup::wal::WAL_DIR, &victim).unwrap();
    store.write_atomic(prodready_backup::wal::WAL_DIR, &victim, &stored).unwrap();
    let verified = archive.verify(now(), 2).unwrap();
    assert!(!verified.ok);
    assert_eq!(verified.corrupt.len(), 1, "{:?}", verified.corrupt);
    assert_eq!(verified.corrupt[0].object, victim);
    assert!(matches!(
        archive.fetch(&name(&segments[2]), &out.path().join("c")),
        Err(Error::WalCorrupt { .. })
    ));
    assert!(!out.path().join("c").exists(), "a corrupt file is never left at the destination");

    // A missing segment is a gap, named.
    let missing = objects.iter().find(|o| o.name.contains(&name(&segments[1]))).unwrap().name.clone();
    store.delete(prodready_backup::wal::WAL_DIR, &missing).unwrap();
    let status = archive.status(now()).unwrap();
    assert_eq!(status.gaps.len(), 1, "{:?}", status.gaps);
    assert_eq!(status.gaps[0].first, name(&segments[1]));
    assert_eq!(status.gaps[0].missing, 1);
    assert!(!archive.verify(now(), 2).unwrap().ok);

    // Pruning before the last segment removes the older ones, keeps it and the history file.
    let last = prodready_backup::wal::WalName::parse(&name(segments.last().unwrap())).unwrap();
    let start = Lsn(last.segno(16 << 20).unwrap() * (16 << 20));
    let dry = archive.prune_before(1, start, true).unwrap();
    assert_eq!(dry.deleted.len(), segments.len() - 2, "{dry:?}");
    assert_eq!(archive.status(now()).unwrap().files, status.files, "a dry run deletes nothing");
    archive.prune_before(1, start, false).unwrap();
    let after = archive.status(now()).unwrap();
    assert_eq!(after.timelines[0].first, name(segments.last().unwrap()));
    assert!(after.gaps.is_empty());
    assert_eq!(after.history, vec![2]);

    // A segment of another cluster is refused.
    let (_other, _other_copies, foreign) = cluster_with_segments(1);
    let renamed = forged_dir.path().join("000000010000000000000042");
    std::fs::copy(&foreign[0], &renamed).unwrap();
    assert!(matches!(archive.push(&renamed, &options), Err(Error::WalForeign { .. })));
}

fn now() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs())
        .unwrap()
}

#[test]
fn the_local_archive_keeps_its_promises() {
    let dir = tempfile::tempdir().unwrap();
    archive_suite(&Store::open(dir.path().join("store").to_str().unwrap()).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_archive_keeps_its_promises() {
    let moto = Moto::start();
    crate::s3::bucket(&moto, "wal").await;
    let sdk = crate::s3::sdk(&moto.endpoint()).await;
    let store = Store::s3(
        &sdk,
        "s3://wal/prod",
        &prodready_backup::S3Options {
            endpoint: Some(moto.endpoint()),
            path_style: Some(true),
            max_attempts: 3,
        },
    )
    .unwrap();
    tokio::task::spawn_blocking(move || archive_suite(&store)).await.unwrap();
}

#[test]
fn wal_names_know_their_kind() {
    let parse = |n: &str| prodready_backup::wal::WalName::parse(n).unwrap().kind;
    assert_eq!(parse("000000010000000000000003.00000028.backup"), WalKind::Backup);
    assert_eq!(parse("000000010000000000000003.partial"), WalKind::Partial);
}

/// A `pg_wal` under `dir` holding `segments` (changed by `edit`, by index), each marked ready.
fn ready_pg_wal(dir: &Path, segments: &[PathBuf], edit: impl Fn(usize, &mut Vec<u8>)) -> PathBuf {
    let pg_wal = dir.join("pg_wal");
    std::fs::create_dir_all(pg_wal.join("archive_status")).unwrap();
    for (i, path) in segments.iter().enumerate() {
        let mut bytes = std::fs::read(path).unwrap();
        edit(i, &mut bytes);
        std::fs::write(pg_wal.join(name(path)), bytes).unwrap();
        std::fs::write(pg_wal.join("archive_status").join(format!("{}.ready", name(path))), "").unwrap();
    }
    pg_wal
}

/// The background pusher over a `pg_wal` of real segments, one of which conflicts with what the store
/// holds: every other ready file is recorded done, the conflict is recorded for its caller (and not
/// retried while the record waits), and a second pusher finds nothing left to do.
#[test]
fn the_background_pusher_records_each_outcome() {
    use prodready_backup::wal_spool::{self, Spool};
    let (_cluster, _copies, segments) = cluster_with_segments(4);
    let dir = tempfile::tempdir().unwrap();
    let archive = WalArchive::new(Store::open(dir.path().join("store").to_str().unwrap()).unwrap());
    let options = PushOptions { jobs: 3, ..PushOptions::default() };
    archive.push(&segments[0], &options).unwrap();
    // Past the page header: the first file still looks like this cluster's segment, with other bytes.
    let pg_wal = ready_pg_wal(dir.path(), &segments, |i, bytes| {
        if i == 0 {
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
        }
    });
    let spool = Spool::new(&pg_wal, None, &archive.store().location());
    let idle = std::time::Duration::from_millis(200);
    let pushed = wal_spool::run_background(&archive, &spool, &options, idle).unwrap();
    assert_eq!(pushed, Some(3));
    assert_eq!(wal_spool::run_background(&archive, &spool, &options, idle).unwrap(), Some(0));
    let problem = spool.take_error(&name(&segments[0])).expect("the conflict is recorded");
    assert!(problem.contains(&name(&segments[0])), "{problem}");
    assert!(!spool.take_done(&name(&segments[0])));
    for path in &segments[1..] {
        assert!(spool.take_done(&name(path)), "{} recorded done", name(path));
        let fetched = dir.path().join("fetched");
        archive.fetch(&name(path), &fetched).unwrap().expect("in the store");
        assert_eq!(std::fs::read(&fetched).unwrap(), std::fs::read(path).unwrap());
    }
}

/// `archive_command` pointed at another store while files were pushed ahead into the old one: no record
/// made for the old store counts for the new one. A background pusher for the old store stops once a
/// caller for the new store claims the spool, and every file lands in the new store, asynchronously or
/// not.
#[test]
fn records_made_for_another_store_are_not_trusted() {
    use prodready_backup::wal_spool::{self, Spool};
    let (_cluster, _copies, segments) = cluster_with_segments(2);
    let dir = tempfile::tempdir().unwrap();
    let store = |n: &str| WalArchive::new(Store::open(dir.path().join(n).to_str().unwrap()).unwrap());
    let (old, new) = (store("old"), store("new"));
    let pg_wal = ready_pg_wal(dir.path(), &segments, |_, _| {});
    let old_spool = Spool::new(&pg_wal, None, &old.store().location());
    let new_spool = Spool::new(&pg_wal, None, &new.store().location());
    let options = PushOptions { jobs: 2, ..PushOptions::default() };
    let names: Vec<String> = segments.iter().map(|p| name(p)).collect();
    let idle = std::time::Duration::from_millis(200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    std::thread::scope(|scope| {
        // The old store's pusher, idle for a minute once it has pushed both files.
        let stale = scope.spawn(|| {
            wal_spool::run_background(&old, &old_spool, &options, std::time::Duration::from_secs(60))
        });
        while !names.iter().all(|n| old_spool.dir().join(format!("{n}.done")).is_file()) {
            assert!(std::time::Instant::now() < deadline, "the old store's pusher recorded nothing");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut started = Vec::new();
        let waited = wal_spool::wait_for(&new_spool, &names[0], std::time::Duration::from_secs(30), || {
            started.push(scope.spawn(|| wal_spool::run_background(&new, &new_spool, &options, idle)));
            Ok(())
        });
        waited.unwrap();
        assert_eq!(stale.join().unwrap().unwrap(), Some(2), "the old store's pusher stopped");
        assert_eq!(started.len(), 1, "one pusher started for the new store, once the old one stopped");
        for pusher in started {
            assert!(pusher.join().unwrap().is_ok());
        }
    });
    // The second file, synchronously: its old record is not taken for an archived file.
    let pushed = wal_spool::push_with_ready(&new, &pg_wal.join(&names[1]), &options, &new_spool).unwrap();
    assert!(!pushed.already, "{pushed:?}");
    for (n, path) in names.iter().zip(&segments) {
        let fetched = dir.path().join("fetched");
        new.fetch(n, &fetched).unwrap().unwrap_or_else(|| panic!("{n} in the new store"));
        assert_eq!(std::fs::read(&fetched).unwrap(), std::fs::read(path).unwrap());
        assert!(old.fetch(n, &fetched).unwrap().is_some(), "{n} in the old store as well");
    }
}

/// A history file pushed by another cluster's server (the `pg_control` beside its `pg_wal` names another
/// system) is refused: recovery to latest would follow that cluster's timeline. The archive's own server
/// pushes its own.
#[test]
fn a_history_file_of_another_cluster_is_refused() {
    let (ours, _copies, segments) = cluster_with_segments(1);
    let theirs = Cluster::builder().start();
    let dir = tempfile::tempdir().unwrap();
    let archive = WalArchive::new(Store::open(dir.path().join("store").to_str().unwrap()).unwrap());
    archive.push(&segments[0], &PushOptions::default()).unwrap();
    for (cluster, ours) in [(&theirs, false), (&ours, true)] {
        let path = cluster.data_dir().join("pg_wal/00000002.history");
        std::fs::write(&path, "1\t0/3000000\tno recovery target specified\n").unwrap();
        let pushed = archive.push(&path, &PushOptions::default());
        std::fs::remove_file(&path).unwrap();
        if ours {
            assert!(pushed.is_ok(), "{pushed:?}");
        } else {
            assert!(matches!(pushed, Err(Error::WalForeign { .. })), "{pushed:?}");
        }
    }
    assert!(archive.history(2).unwrap().is_some());
}
