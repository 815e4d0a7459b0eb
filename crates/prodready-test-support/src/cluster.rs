//! Throwaway PostgreSQL clusters for tests that must not touch the shared server's configuration (TLS,
//! preloaded libraries, replication, WAL archiving): `initdb` into a temporary directory, `postgres` on a
//! free loopback port, stopped and removed on drop. A cluster can load pg_stat_statements and get
//! streaming replicas (`pg_basebackup -R`), themselves clusters of their own.

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
    /// The `-c` settings it runs with, which a replica inherits.
    settings: Vec<(String, String)>,
    password: Option<String>,
}

/// What the cluster starts with: `postgres -c` settings and files placed in its data directory.
#[derive(Debug, Default)]
pub struct ClusterBuilder {
    settings: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>, u32)>,
    password: Option<String>,
    pg_stat_statements: bool,
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

    /// Preloads pg_stat_statements (`shared_preload_libraries`, `pg_stat_statements.track = all`) and
    /// creates the extension in the `postgres` database once the server is up.
    #[must_use]
    pub fn pg_stat_statements(mut self) -> Self {
        self.pg_stat_statements = true;
        self
    }

    /// Runs `initdb` and starts the server; panics with the install step or the server's log on failure.
    pub fn start(mut self) -> Cluster {
        if self.pg_stat_statements {
            // First, so that a caller's own `setting` of the same name wins.
            self.settings.splice(
                0..0,
                [("shared_preload_libraries", "pg_stat_statements"), ("pg_stat_statements.track", "all")]
                    .map(|(name, value)| (name.to_owned(), value.to_owned())),
            );
        }
        let bin = bin_dir();
        let dir = cluster_dir();
        let owner = server_user();
        let data = dir.path().join("data");
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
        for (name, contents, mode) in &self.files {
            let path = data.join(name);
            std::fs::write(&path, contents).expect("write a cluster file");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).expect("chmod");
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown a cluster file");
            }
        }
        let cluster = Cluster::launch(dir, crate::free_port(), self.settings, self.password);
        if self.pg_stat_statements {
            cluster.psql("CREATE EXTENSION pg_stat_statements");
        }
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

    /// The data directory (owned by the server's user).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `postgres://postgres@HOST:PORT/postgres` plus `query` (e.g. `?sslmode=require`).
    pub fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres{query}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// Runs `sql` with `psql` as `postgres` in the `postgres` database (stopping at the first error) and
    /// returns what it printed: tuples only, unaligned (`|` between columns), without the final newline.
    /// Panics with psql's stderr when it fails.
    pub fn psql(&self, sql: &str) -> String {
        let mut cmd = Command::new(bin_dir().join("psql"));
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10");
        if let Some(password) = &self.password {
            cmd.env("PGPASSWORD", password);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run psql: {e}; {INSTALL}"));
        assert!(
            out.status.success(),
            "psql on port {} failed ({sql}): {}",
            self.port,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let mut stdout = String::from_utf8(out.stdout).expect("psql prints UTF-8");
        if stdout.ends_with('\n') {
            stdout.pop();
        }
        stdout
    }

    /// Switches to a new WAL segment and waits (up to 120 s) until the finished one is archived
    /// (`pg_stat_archiver.last_archived_wal`); panics with the server's log when it is not.
    pub fn switch_and_archive(&self) {
        let segment = self.psql("SELECT pg_walfile_name(pg_switch_wal())");
        let started = Instant::now();
        loop {
            let last = self.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
            if last.as_str() >= segment.as_str() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "segment {segment} not archived after 120 s (last: {last}):\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (up to 120 s) until the server has left recovery (promoted, or its recovery target reached
    /// with `recovery_target_action = promote`); panics with the server's log when it has not.
    pub fn wait_promoted(&self) {
        let started = Instant::now();
        while self.psql("SELECT pg_is_in_recovery()") != "f" {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "not promoted after 120 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A streaming replica of this cluster: `pg_basebackup -R -X stream` into a data directory of its own,
    /// started on its own free port with the same settings plus `hot_standby = on` and
    /// `wal_receiver_status_interval = 1s` (so the primary's `pg_stat_replication` sees replay progress
    /// within a second). Returns once the replica is in recovery and the primary lists it as streaming;
    /// its `application_name` there is `replica_PORT`. Dropped like any cluster.
    pub fn replica(&self) -> Cluster {
        let bin = bin_dir();
        let dir = cluster_dir();
        let owner = server_user();
        let port = crate::free_port();
        let name = format!("replica_{port}");
        let mut basebackup = Command::new(bin.join("pg_basebackup"));
        basebackup
            .args(["-R", "-X", "stream", "--no-sync", "-c", "fast", "-D"])
            .arg(dir.path().join("data"))
            .arg("-d")
            .arg(format!("host=127.0.0.1 port={} user=postgres application_name={name}", self.port));
        if let Some(password) = &self.password {
            basebackup.env("PGPASSWORD", password);
        }
        if let Some((uid, gid)) = owner {
            basebackup.uid(uid).gid(gid);
        }
        let out = basebackup.output().unwrap_or_else(|e| panic!("cannot run pg_basebackup: {e}; {INSTALL}"));
        assert!(
            out.status.success(),
            "pg_basebackup from port {} failed: {}\nprimary log:\n{}",
            self.port,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        let mut settings = self.settings.clone();
        settings.extend(
            [("hot_standby", "on"), ("wal_receiver_status_interval", "1s")]
                .map(|(name, value)| (name.to_owned(), value.to_owned())),
        );
        let replica = Cluster::launch(dir, port, settings, self.password.clone());
        let started = Instant::now();
        loop {
            let recovering = replica.psql("SELECT pg_is_in_recovery()") == "t";
            let streaming = self.psql(&format!(
                "SELECT count(*) FROM pg_stat_replication WHERE application_name = '{name}' AND state = 'streaming'"
            )) == "1";
            if recovering && streaming {
                return replica;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "replica on port {port} not streaming from port {} after 60 s (in recovery: {recovering}, \
                 streaming: {streaming});\nreplica log:\n{}\nprimary log:\n{}",
                self.port,
                replica.log(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts a server on a data directory prepared elsewhere, `DIR/data` (e.g. restored from a base
    /// backup), owned by the server's user, with these `-c` settings; waits until it accepts connections
    /// (for a recovering server with `hot_standby = off`: until recovery ended).
    pub fn adopt(dir: tempfile::TempDir, settings: &[(&str, &str)]) -> Cluster {
        let settings = settings.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        Cluster::launch(dir, crate::free_port(), settings, None)
    }

    /// Starts `postgres` on the data directory `DIR/data` (owned by the server's user) and waits until it
    /// accepts connections.
    fn launch(
        dir: tempfile::TempDir,
        port: u16,
        settings: Vec<(String, String)>,
        password: Option<String>,
    ) -> Cluster {
        let bin = bin_dir();
        let owner = server_user();
        let data = dir.path().join("data");
        let sockets = dir.path().join("sock");
        std::fs::create_dir(&sockets).expect("socket directory");
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&sockets, Some(uid), Some(gid)).expect("chown a cluster file");
        }
        let log = std::fs::File::create(dir.path().join("postgres.log")).expect("log file");
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", sockets.display()));
        for (name, value) in &settings {
            postgres.arg("-c").arg(format!("{name}={value}"));
        }
        postgres.stdout(Stdio::null()).stderr(log);
        if let Some((uid, gid)) = owner {
            postgres.uid(uid).gid(gid);
        }
        let child = postgres.spawn().unwrap_or_else(|e| panic!("cannot start postgres: {e}; {INSTALL}"));
        let mut cluster = Cluster { dir, port, child, settings, password };
        cluster.wait_ready(&bin);
        cluster
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

/// A temporary directory for one cluster, owned by the server's user.
fn cluster_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("prodready-cluster-").tempdir().expect("temporary directory");
    if let Some((uid, gid)) = server_user() {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown the cluster directory");
    }
    dir
}

/// The directory of the newest installed server's binaries.
pub fn bin_dir() -> PathBuf {
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

/// A directory the server's user owns (mode 0755), for what the server's own commands write, such as a
/// WAL archive that `archive_command` fills. Removed on drop.
pub fn server_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("prodready-server-").tempdir().expect("temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    if let Some((uid, gid)) = server_user() {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown a server directory");
    }
    dir
}

/// Gives the server's user what it needs to write into an existing tree `path` (a store a test created as
/// root): ownership of every directory and file in it.
pub fn give_to_server(path: &Path) {
    let Some((uid, gid)) = server_user() else { return };
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown for the server");
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read a directory").flatten() {
            give_to_server(&entry.path());
        }
    }
}

/// An executable the server's user can run (`archive_command`, `restore_command`): a copy of `program`
/// (whose own directory may be private to root, as cargo's target directory under /root is) in a
/// directory of its own, world-readable. Removed on drop.
#[derive(Debug)]
pub struct ServerExecutable {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl ServerExecutable {
    pub fn new(program: &Path) -> Self {
        let dir = tempfile::Builder::new().prefix("prodready-bin-").tempdir().expect("temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let name = program.file_name().expect("a program has a file name");
        let path = dir.path().join(name);
        // A hard link costs nothing; another file system needs a copy.
        if std::fs::hard_link(program, &path).is_err() {
            std::fs::copy(program, &path).unwrap_or_else(|e| panic!("copy {}: {e}", program.display()));
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Self { _dir: dir, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
