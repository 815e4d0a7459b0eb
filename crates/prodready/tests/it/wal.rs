//! `backup wal-push` as a real cluster's archive_command and `backup wal-fetch` as restore_command, into a
//! local store and S3 on moto; conflicts, corruption, gaps and SIGKILL in the middle of a push.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prodready_test_support::{Cluster, Moto, ServerExecutable, server_dir};

use crate::{prodready, stderr, stdout};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

/// A shell word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A cluster archiving with `prodready backup wal-push <args> %p`, `env` set for the command.
fn archiving_cluster(exe: &ServerExecutable, env: &[(&str, String)], args: &str) -> Cluster {
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect();
    let command = format!(
        "env {} {} backup wal-push {args} %p",
        env.join(" "),
        quote(&exe.path().display().to_string())
    );
    Cluster::builder().setting("archive_mode", "on").setting("archive_command", &command).start()
}

/// Writes rows and switches segments `n` times; returns the last segment switched away from.
fn generate(cluster: &Cluster, n: usize) -> String {
    cluster.psql("CREATE TABLE IF NOT EXISTS t (id int, pad text)");
    let mut last = String::new();
    for _ in 0..n {
        cluster.psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g");
        last = cluster.psql("SELECT pg_walfile_name(pg_current_wal_lsn())");
        cluster.psql("SELECT pg_switch_wal()");
    }
    last
}

/// Waits (60 s at most) until PostgreSQL reports `segment` archived.
fn wait_archived(cluster: &Cluster, segment: &str) {
    let started = Instant::now();
    loop {
        let row = cluster.psql("SELECT coalesce(last_archived_wal, ''), failed_count, coalesce(last_failed_wal, '') FROM pg_stat_archiver");
        let archived = row.split('|').next().unwrap_or_default().to_owned();
        if archived.len() >= 24 && archived.as_str() >= segment {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{segment} not archived after 60 s (pg_stat_archiver: {row});\n{}",
            cluster.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn exe() -> ServerExecutable {
    ServerExecutable::new(Path::new(env!("CARGO_BIN_EXE_prodready")))
}

/// The checks both stores must pass once the cluster archived into `store` (with `env` for the binary).
fn archived_store_checks(cluster: &Cluster, store: &str, env: &[(&str, String)], last: &str) {
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let verify = prodready(dir.path(), &env, &["backup", "wal-verify", "--store", store, "--json"]);
    assert_eq!(verify.status.code(), Some(0), "{}{}", stdout(&verify), stderr(&verify));
    let report = json(&verify);
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["status"]["gaps"].as_array().unwrap().is_empty(), "{report}");
    assert!(report["status"]["timelines"][0]["last"].as_str().unwrap() >= last, "{report}");

    let status = prodready(dir.path(), &env, &["backup", "status", "--store", store, "--json"]);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let status = json(&status);
    assert!(status["wal_archive"]["newest"]["age_seconds"].as_u64().unwrap() < 3600, "{status}");

    // restore_command: the very bytes PostgreSQL wrote, written atomically to the destination.
    let dest = dir.path().join("RECOVERYXLOG");
    let dest_arg = dest.to_str().unwrap();
    let fetch = prodready(dir.path(), &env, &["backup", "wal-fetch", "--store", store, last, dest_arg]);
    assert_eq!(fetch.status.code(), Some(0), "{}", stderr(&fetch));
    let original = cluster.data_dir().join("pg_wal").join(last);
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&original).unwrap());
    // Files that do not exist: exit 1, nothing in PostgreSQL's log.
    for missing in ["00000009.history", "0000000900000000000000FF"] {
        let fetch =
            prodready(dir.path(), &env, &["backup", "wal-fetch", "--store", store, missing, dest_arg]);
        assert_eq!(fetch.status.code(), Some(1), "{missing}: {}", stderr(&fetch));
        assert_eq!(stderr(&fetch), "", "{missing}");
    }
    // A store that holds no archive (not mounted, a typo), a configuration that cannot be read, arguments
    // that do not parse: 126, which stops recovery, never the 1 that would end it as if the file were
    // the last one.
    let elsewhere = dir.path().join("not-mounted");
    let elsewhere = elsewhere.to_str().unwrap();
    let cases: [(&str, &[&str]); 3] = [
        ("no archive", &["backup", "wal-fetch", "--store", elsewhere, last, dest_arg]),
        (
            "bad configuration",
            &["--config", "/nonexistent/prodready.toml", "backup", "wal-fetch", last, dest_arg],
        ),
        ("bad arguments", &["backup", "wal-fetch", "--stor", store, last, dest_arg]),
    ];
    for (case, args) in cases {
        let fetch = prodready(dir.path(), &env, args);
        assert_eq!(fetch.status.code(), Some(126), "{case}: {}", stderr(&fetch));
        assert!(!stderr(&fetch).is_empty(), "{case}: a reason is given");
    }
    assert!(stderr(&prodready(dir.path(), &env, cases[0].1)).contains("no WAL archive here"));

    // Pushing an archived file again succeeds; different bytes under its name fail loudly.
    let copy = dir.path().join(last);
    std::fs::copy(&original, &copy).unwrap();
    let copy_arg = copy.to_str().unwrap();
    let again = prodready(dir.path(), &env, &["backup", "wal-push", "--store", store, copy_arg]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[4_000_000] ^= 1;
    std::fs::write(&copy, bytes).unwrap();
    let forged = prodready(dir.path(), &env, &["backup", "wal-push", "--store", store, copy_arg]);
    assert_eq!(forged.status.code(), Some(1), "{}", stderr(&forged));
    assert!(stderr(&forged).contains("already archived with different contents"), "{}", stderr(&forged));
}

#[test]
fn archive_command_fills_a_local_store_that_restore_command_reads() {
    let exe = exe();
    let store_dir = server_dir();
    let store = store_dir.path().join("store").display().to_string();
    let cluster = archiving_cluster(&exe, &[], &format!("--store {} --jobs 3", quote(&store)));
    let last = generate(&cluster, 5);
    wait_archived(&cluster, &last);
    archived_store_checks(&cluster, &store, &[], &last);
}

#[test]
fn async_archive_command_pushes_in_the_background() {
    let exe = exe();
    let store_dir = server_dir();
    let store = store_dir.path().join("store").display().to_string();
    let cluster = archiving_cluster(&exe, &[], &format!("--store {} --async --jobs 2", quote(&store)));
    let last = generate(&cluster, 6);
    wait_archived(&cluster, &last);
    archived_store_checks(&cluster, &store, &[], &last);
    let spool = cluster.data_dir().join("pg_wal/prodready_archive_status");
    let errors: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".error"))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// A fake SigV4 header: moto routes by the credential scope and checks no signature.
const S3_AUTH: &str =
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

fn create_bucket(endpoint: &str, bucket: &str) {
    use std::io::{Read as _, Write as _};
    let host_port = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host_port).unwrap();
    write!(
        stream,
        "PUT /{bucket} HTTP/1.0\r\nHost: {host_port}\r\nAuthorization: {S3_AUTH}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"), "{out}");
}

#[test]
fn archive_command_fills_an_s3_store_on_moto() {
    let moto = Moto::start();
    create_bucket(&moto.endpoint(), "wal");
    let exe = exe();
    let env = moto.aws_env();
    let cluster = archiving_cluster(&exe, &env, "--store s3://wal/prod --jobs 3");
    let last = generate(&cluster, 4);
    wait_archived(&cluster, &last);
    archived_store_checks(&cluster, "s3://wal/prod", &env, &last);
}

/// A finished segment of a fresh cluster, copied out of pg_wal.
fn a_segment(dir: &Path) -> PathBuf {
    let cluster = Cluster::builder().start();
    let last = generate(&cluster, 1);
    let to = dir.join(&last);
    std::fs::copy(cluster.data_dir().join("pg_wal").join(&last), &to).unwrap();
    to
}

fn kill(child: &mut std::process::Child) {
    let _ = Command::new("kill").args(["-KILL", &child.id().to_string()]).status();
    let _ = child.wait();
}

#[test]
fn a_local_push_killed_at_any_point_is_completed_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let segment = a_segment(dir.path());
    let store = dir.path().join("store");
    let store_arg = store.to_str().unwrap();
    let segment_arg = segment.to_str().unwrap();
    let name = segment.file_name().unwrap().to_str().unwrap().to_owned();
    let objects = store.join(".wal").join(&name[..16]);
    let mut mid_write = 0;
    for _ in 0..20 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_prodready"))
            .args(["backup", "wal-push", "--store", store_arg, segment_arg])
            .env("HOME", dir.path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill it as soon as its temporary object appears (or when it is about to finish).
        let started = Instant::now();
        loop {
            let temporary = std::fs::read_dir(&objects)
                .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with('.')))
                .unwrap_or(false);
            if temporary
                || started.elapsed() > Duration::from_secs(30)
                || matches!(child.try_wait(), Ok(Some(_)))
            {
                mid_write += usize::from(temporary);
                break;
            }
        }
        kill(&mut child);
        let visible: Vec<String> = std::fs::read_dir(&objects)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        if !visible.is_empty() {
            // The rename happened before the kill: the object is whole. Start again from nothing.
            assert_eq!(visible.len(), 1, "{visible:?}");
            let verify = prodready(dir.path(), &[], &["backup", "wal-verify", "--store", store_arg]);
            assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
            std::fs::remove_dir_all(&store).unwrap();
        }
    }
    let push = prodready(dir.path(), &[], &["backup", "wal-push", "--store", store_arg, segment_arg]);
    assert_eq!(
        push.status.code(),
        Some(0),
        "{} ({mid_write} of 20 pushes were killed while writing their temporary object)",
        stderr(&push)
    );
    let dest = dir.path().join("back");
    let fetch = prodready(
        dir.path(),
        &[],
        &["backup", "wal-fetch", "--store", store_arg, &name, dest.to_str().unwrap()],
    );
    assert_eq!(fetch.status.code(), Some(0), "{}", stderr(&fetch));
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&segment).unwrap());
}

/// A relay to `upstream` that forwards the first `limit` bytes each client sends, then stalls (the
/// upstream keeps the half-received request open); `stalled` turns true when it does.
fn stalling_relay(upstream: String, limit: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stalled.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(&upstream) else { continue };
            let (mut from_server, mut to_client) = (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_server, &mut to_client);
            });
            let (mut client, mut server, flag) = (client, server, flag.clone());
            std::thread::spawn(move || {
                let mut sent = 0;
                let mut buf = vec![0u8; 64 * 1024];
                while sent < limit {
                    let Ok(n) = client.read(&mut buf[..(limit - sent).min(64 * 1024)]) else { return };
                    if n == 0 || server.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    sent += n;
                }
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(600));
            });
        }
    });
    (url, stalled)
}

#[test]
fn an_s3_push_killed_mid_upload_leaves_nothing_and_the_next_push_completes() {
    let moto = Moto::start();
    create_bucket(&moto.endpoint(), "wal");
    let dir = tempfile::tempdir().unwrap();
    let segment = a_segment(dir.path());
    let name = segment.file_name().unwrap().to_str().unwrap().to_owned();
    let segment_arg = segment.to_str().unwrap();
    let (relay, stalled) = stalling_relay(moto.endpoint().trim_start_matches("http://").to_owned(), 300_000);
    let mut env = moto.aws_env();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    let mut child = Command::new(env!("CARGO_BIN_EXE_prodready"))
        .args(["backup", "wal-push", "--store", "s3://wal/prod", "--jobs", "1", segment_arg])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("AWS_ENDPOINT_URL", &relay)
        .env("HOME", dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !stalled.load(std::sync::atomic::Ordering::SeqCst) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("wal-push ended ({status}) before its upload stalled");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the upload never reached the relay's limit");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(&mut child);
    let owned = moto.aws_env();
    let env: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let status = prodready(dir.path(), &env, &["backup", "status", "--store", "s3://wal/prod", "--json"]);
    let status = json(&status);
    let files = status["wal_archive"]["files"].as_u64().unwrap_or(0);
    assert_eq!(files, 0, "a killed upload left an object: {status}");
    let push = prodready(dir.path(), &env, &["backup", "wal-push", "--store", "s3://wal/prod", segment_arg]);
    assert_eq!(push.status.code(), Some(0), "{}", stderr(&push));
    let dest = dir.path().join("back");
    let fetch = prodready(
        dir.path(),
        &env,
        &["backup", "wal-fetch", "--store", "s3://wal/prod", &name, dest.to_str().unwrap()],
    );
    assert_eq!(fetch.status.code(), Some(0), "{}", stderr(&fetch));
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&segment).unwrap());
}
