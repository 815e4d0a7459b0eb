//! Throwaway PostgreSQL clusters for tests that must not touch the shared server's configuration (TLS,
//! preloaded libraries, replication, WAL archiving): `initdb` into a temporary directory, `postgres` on a
//! free loopback port, stopped and removed on drop.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to install the server binaries when they are missing.
const INSTALL: &str = "install the PostgreSQL server (Debian: `apt-get install postgresql-15`)";

/// A running throwaway cluster with trust authentication for the `postgres` role.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

/// What the cluster starts with: `postgres -c` settings and files placed in its data directory.
#[derive(Debug, Default)]
pub struct ClusterBuilder {
    settings: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>, u32)>,
    password: Option<String>,
}

impl ClusterBuilder {
    /// A server setting (`ssl` = `on`...), passed as `-c NAME=VALUE`.
    #[must_use]
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A file written into the data directory before the start, owned by the server's user.
    #[must_use]
    pub fn file(mut self, name: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.files.push((name.to_owned(), contents.into(), mode));
        self
    }

    /// The `postgres` role gets this password and every connection must give it (scram-sha-256) instead
    /// of trust authentication.
    #[must_use]
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    /// Runs `initdb` and starts the server; panics with the install step or the server's log on failure.
    pub fn start(self) -> Cluster {
        let bin = bin_dir();
        let dir =
            tempfile::Builder::new().prefix("prodready-cluster-").tempdir().expect("temporary directory");
        let owner = server_user();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown the cluster directory");
        }
        let data = dir.path().join("data");
        let sockets = dir.path().join("sock");
        let as_owner = |cmd: &mut Command| {
            if let Some((uid, gid)) = owner {
                cmd.uid(uid).gid(gid);
            }
        };
        let mut initdb = Command::new(bin.join("initdb"));
        initdb.args(["-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"]);
        match &self.password {
            Some(password) => {
                let pwfile = dir.path().join("pwfile");
                std::fs::write(&pwfile, format!("{password}\n")).expect("write the password file");
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("chown the password file");
                }
                initdb.arg("--auth=scram-sha-256").arg(format!("--pwfile={}", pwfile.display()));
            }
            None => {
                initdb.arg("--auth=trust");
            }
        }
        initdb.arg("-D").arg(&data);
        as_owner(&mut initdb);
        let out = initdb.output().unwrap_or_else(|e| panic!("cannot run initdb: {e}; {INSTALL}"));
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::create_dir(&sockets).expect("socket directory");
        for (name, contents, mode) in &self.files {
            let path = data.join(name);
            std::fs::write(&path, contents).expect("write a cluster file");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).expect("chmod");
        }
        for path in [&sockets].into_iter().cloned().chain(self.files.iter().map(|(n, _, _)| data.join(n))) {
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown a cluster file");
            }
        }
        let port = crate::free_port();
        let log = std::fs::File::create(dir.path().join("postgres.log")).expect("log file");
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", sockets.display()));
        for (name, value) in &self.settings {
            postgres.arg("-c").arg(format!("{name}={value}"));
        }
        postgres.stdout(Stdio::null()).stderr(log);
        as_owner(&mut postgres);
        let child = postgres.spawn().unwrap_or_else(|e| panic!("cannot start postgres: {e}; {INSTALL}"));
        let mut cluster = Cluster { dir, port, child };
        cluster.wait_ready(&bin);
        cluster
    }
}

impl Cluster {
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@HOST:PORT/postgres` plus `query` (e.g. `?sslmode=require`).
    pub fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres{query}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self, bin: &Path) {
        let started = Instant::now();
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("postgres exited ({status}) before it was ready:\n{}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "postgres not ready after 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A fast shutdown (SIGINT) lets the server remove its shared memory and socket.
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The directory of the newest installed server's binaries.
pub(crate) fn bin_dir() -> PathBuf {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| panic!("no PostgreSQL server binaries in /usr/lib/postgresql: {INSTALL}"))
}

/// The `postgres` user's (uid, gid) when the tests run as root (initdb refuses root), else `None`.
fn server_user() -> Option<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?;
    if uid != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let entry = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .unwrap_or_else(|| panic!("running as root needs a `postgres` user to run the server: {INSTALL}"));
    let fields: Vec<&str> = entry.split(':').collect();
    Some((fields[2].parse().expect("uid"), fields[3].parse().expect("gid")))
}
