//! Project automation. Dependency-free on purpose: it builds in seconds on a cold machine.
//!
//! cargo xtask ci      lint, coverage (the whole suite with the 80% gate), audit: what `.ci/run` runs
//! cargo xtask lint    cargo fmt --check; no PromQL parser or YAML crate under prodready-backup and
//!                     prodready-logging/ship (cargo tree -e normal); clippy on every target with warnings
//!                     as errors; each library alone with default and with all features (a feature
//!                     matrix); actionlint on .github/workflows
//! cargo xtask test    provision the real peers, check PostgreSQL, run every test (with CI=true and no
//!                     arguments: `cargo xtask coverage`, the same suite instrumented with the gate)
//! cargo xtask peers   provision the real peers only (moto, oteltap, k6, Prometheus, Alertmanager, ...)
//! cargo xtask docs    regenerate committed generated files (docs/cli.md, docs/configuration.md, deploy/)
//! cargo xtask bench backup   release build, then bench/backup.sh against pg_dump/pg_restore
//! cargo xtask bench basebackup  release build, then bench/basebackup.sh against pg_basebackup -Ft -z
//! cargo xtask bench logging  release build, then bench/ship.sh (1M lines into the receiver) and the
//!                            per-event overhead against tracing-subscriber's JSON format
//! cargo xtask bench secrets  release build, then bench/secrets.sh (`secrets migrate` of 10,000 entries)
//! cargo xtask bench dbmon    release build, then bench/dbmon.sh (db exporter beside postgres_exporter)
//! cargo xtask bench walpush  release build, then bench/walpush.sh (wal-push beside pgBackRest archive-push)
//! cargo xtask bench tracing  the server layer against tracing-opentelemetry's plain layer: time, and
//!                            instructions per request under callgrind (bench/tracing.sh)
//! cargo xtask bench loadtest release build, then bench/loadtest.sh (`load run` beside wrk and k6 against
//!                            nginx, server and generator on separate cores: CPU and instructions per
//!                            request, memory per idle VU, memory over time, open-model rate)
//! cargo xtask bench scan     release build, then bench/scan.sh (scan secrets beside ripsecrets and
//!                            detect-secrets on the cargo registry sources and the labelled corpus)
//! cargo xtask fuzz [--seconds N] [TARGET...]   every parser of outside input under the mutation fuzzer
//!                     (release build, 60 s per target by default); findings land in fuzz/regressions/
//! cargo xtask coverage   the tests of `test` under cargo-llvm-cov (spawned binaries included): coverage/lcov.info
//!                     and a per-crate summary; fails under 80% of the library crates' lines
//! cargo xtask dist [--target T]... [--no-repro]   release archives, SHA256SUMS and a CycloneDX SBOM in
//!                     dist/ under the target directory, and a second build that must be identical
//! cargo xtask release VERSION [--execute]   bump the workspace and internal versions, check CHANGELOG.md,
//!                     commit and tag vVERSION (a dry run unless --execute)
//! cargo xtask audit [--db DIR]   cargo-deny with deny.toml (licenses, duplicates, sources) and RustSec
//!                     advisories read offline from DIR (default ../shared/advisory-db)

// xtask reads cargo's variables (CARGO, CARGO_TARGET_DIR) and DATABASE_URL as a build tool does.
#![allow(clippy::disallowed_methods)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};

mod audit;
mod coverage;
mod dist;
mod json;
mod peers;
mod release;

type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "usage: cargo xtask <ci | lint | test [NEXTEST ARGS...] | peers | docs | bench <backup | basebackup | logging | secrets | dbmon | tracing | scan | walpush | loadtest> | fuzz [--seconds N] [TARGET...] | coverage | audit [--db DIR] | dist [--target T]... [--no-repro] | release VERSION [--execute]>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => lint().and_then(|()| coverage::main(&[])).and_then(|()| audit::main(&[])),
        Some("lint") => lint(),
        // In CI (CI=true, as .ci/run and GitHub set it) the README's test command runs the suite once,
        // instrumented, with the coverage gate: running it a second time uninstrumented would add its
        // whole run for nothing.
        Some("test") if args.len() == 1 && std::env::var("CI").is_ok_and(|v| v == "true") => {
            say("CI=true: the suite runs instrumented, with the coverage gate (cargo xtask coverage)");
            coverage::main(&[])
        }
        Some("test") => test(&args[1..]),
        Some("peers") => peers::provision().map(drop),
        Some("docs") => docs(),
        Some("bench") => bench(args.get(1).map(String::as_str)),
        Some("fuzz") => fuzz(&args[1..]),
        Some("audit") => audit::main(&args[1..]),
        Some("coverage") => coverage::main(&args[1..]),
        Some("dist") => dist::main(&args[1..]),
        Some("release") => release::main(&args[1..]),
        Some("-h" | "--help" | "help") => {
            say(USAGE);
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            say(&format!("xtask: error: {msg}"));
            ExitCode::FAILURE
        }
    }
}

/// Progress goes to stderr; xtask has no stdout output to keep clean, but cargo's does.
#[allow(clippy::print_stderr)]
fn say(msg: &str) {
    eprintln!("{msg}");
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace root").to_path_buf()
}

/// A directory under the system's temporary directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> Result<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("prodready-xtask-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Self(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else `target/` in the workspace.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| root().join("target"), PathBuf::from)
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs `cmd`, echoing it, and fails with its exit status.
fn run(cmd: &mut Command) -> Result {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args().map(OsStr::to_string_lossy).collect::<Vec<_>>().join(" ")
    );
    say(&format!("$ {shown}"));
    let status = cmd.status().map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`{shown}` failed ({status})")) }
}

fn lint() -> Result {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    runtime_graphs()?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]))?;
    feature_matrix()?;
    actionlint()
}

/// Crates (by name prefix) that the backup crate, and the log agent (prodready-logging with `ship`), must
/// not link: the PromQL parser, YAML and the rule generators that bring them.
const GENERATOR_CRATES: [&str; 6] = [
    "promql-parser",
    "serde_yaml",
    "serde_yaml_ng",
    "unsafe-libyaml",
    "yaml-rust",
    "prodready-metrics-alerts",
];

/// A service linking the backup crate or the log agent compiles no PromQL parser and no YAML crate:
/// `cargo tree -e normal` of each names none of [`GENERATOR_CRATES`].
fn runtime_graphs() -> Result {
    for (package, features) in [("prodready-backup", None), ("prodready-logging", Some("ship"))] {
        let mut cmd = cargo();
        cmd.args(["tree", "--locked", "--edges", "normal", "--package", package]);
        cmd.args(["--prefix", "none", "--format", "{p}"]);
        if let Some(features) = features {
            cmd.args(["--features", features]);
        }
        let args: Vec<_> = cmd.get_args().map(OsStr::to_string_lossy).collect();
        say(&format!("$ cargo {}", args.join(" ")));
        let shown = match features {
            Some(features) => format!("{package} with feature {features}"),
            None => package.to_owned(),
        };
        let out = cmd.output().map_err(|e| format!("cannot run cargo tree: {e}"))?;
        if !out.status.success() {
            return Err(format!("cargo tree failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let found = generator_crates(&String::from_utf8_lossy(&out.stdout));
        if !found.is_empty() {
            return Err(format!(
                "{shown} links {} (`cargo tree -e normal -p {package} -i NAME` shows who pulls each in): \
                 the runtime crates must not depend on the rule generators",
                found.join(", ")
            ));
        }
    }
    Ok(())
}

/// The crates of a `cargo tree --prefix none --format {p}` listing whose name starts with one of
/// [`GENERATOR_CRATES`], sorted, each once.
fn generator_crates(tree: &str) -> Vec<String> {
    let names: std::collections::BTreeSet<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| GENERATOR_CRATES.iter().any(|banned| name.starts_with(banned)))
        .collect();
    names.into_iter().map(str::to_owned).collect()
}

/// The GitHub Actions workflows under .github/workflows, with actionlint from the peers.
fn actionlint() -> Result {
    let mut bin = peers::dir().join("bin/actionlint");
    if !bin.is_file() {
        bin = peers::provision()?.join("bin/actionlint");
    }
    run(Command::new(bin).arg("-no-color").current_dir(root()))
}

/// Every library alone, with its default (empty) feature set and with all its features: a workspace
/// build unifies features, so a library that only compiles because a sibling enabled a feature of a shared
/// dependency is caught here, as is an `#[cfg(feature)]` item unused without its feature.
fn feature_matrix() -> Result {
    for name in libraries()? {
        for features in [None, Some("--all-features")] {
            let mut cmd = cargo();
            cmd.args(["clippy", "--locked", "--lib", "--package", &name]).args(features);
            run(cmd.args(["--", "-D", "warnings"]))?;
        }
    }
    Ok(())
}

/// The library crates: every `crates/prodready-*` except test support and the fuzz targets.
fn libraries() -> Result<Vec<String>> {
    let dir = root().join("crates");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("prodready-") && n != "prodready-test-support" && n != "prodready-fuzz")
        .collect();
    names.sort();
    Ok(names)
}

fn test(extra: &[String]) -> Result {
    let peers = peers::provision()?;
    peers::ensure_postgres()?;
    let nextest = cargo().args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success());
    if !nextest {
        return Err(
            "cargo-nextest is missing: install it with `cargo install cargo-nextest --locked`".to_owned()
        );
    }
    let with_peers = |cmd: &mut Command| {
        cmd.env("PRODREADY_PEERS_DIR", &peers);
    };
    let mut nextest = cargo();
    nextest.args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast"]).args(extra);
    with_peers(&mut nextest);
    run(&mut nextest)?;
    if extra.is_empty() {
        let mut doc = cargo();
        doc.args(["test", "--workspace", "--locked", "--doc"]);
        with_peers(&mut doc);
        run(&mut doc)?;
    }
    Ok(())
}

fn docs() -> Result {
    run(cargo()
        .args(["test", "--package", "prodready", "--test", "it", "generated"])
        .env("UPDATE_EXPECT", "1"))
}

/// The fuzz targets (crates/prodready-fuzz) for a fixed time each, in a release build; a finding is kept
/// in fuzz/regressions/ (commit it with the fix: the test suite replays it) and fails the run.
fn fuzz(args: &[String]) -> Result {
    run(cargo().args(["run", "--release", "--locked", "--package", "prodready-fuzz", "--"]).args(args))
}

/// Benchmarks run our release build and the peer side by side; results go in bench/RESULTS.md by hand,
/// with the date, the machine and this command.
fn bench(area: Option<&str>) -> Result {
    let target = target_dir();
    match area {
        Some("backup") => {
            peers::ensure_postgres()?;
            run(cargo().args(["build", "--release", "--package", "prodready"]))?;
            run(Command::new("bash")
                .arg(root().join("bench/backup.sh"))
                .env("PRODREADY_BIN", target.join("release/prodready")))
        }
        Some("basebackup") => {
            peers::ensure_postgres()?;
            run(cargo().args(["build", "--release", "--package", "prodready"]))?;
            run(Command::new("bash")
                .arg(root().join("bench/basebackup.sh"))
                .env("PRODREADY_BIN", target.join("release/prodready")))
        }
        Some("logging") => {
            run(cargo().args(["build", "--release", "--package", "prodready"]))?;
            run(cargo().args([
                "build",
                "--release",
                "--package",
                "prodready-test-support",
                "--bin",
                "loki-receiver",
            ]))?;
            run(Command::new("bash")
                .arg(root().join("bench/ship.sh"))
                .env("PRODREADY_BIN", target.join("release/prodready"))
                .env("RECEIVER_BIN", target.join("release/loki-receiver")))?;
            run(cargo().args(["bench", "--package", "prodready-logging", "--bench", "overhead"]))
        }
        Some("secrets") => {
            run(cargo().args(["build", "--release", "--package", "prodready"]))?;
            run(Command::new("bash")
                .arg(root().join("bench/secrets.sh"))
                .env("PRODREADY_BIN", target.join("release/prodready")))
        }
        Some("dbmon") => {
            let peers = peers::provision()?;
            run(cargo().args(["build", "--release", "--package", "prodready"]))?;
            run(Command::new("bash")
                .arg(root().join("bench/dbmon.sh"))
                .env("PRODREADY_BIN", target.join("release/prodready"))
                .env("PRODREADY_PEERS_DIR", peers))
        }
        Some("walpush") => {
            let peers = peers::provision()?;
            peers::ensure_postgres()?;
            run(cargo().args(["build", "--release", "--package", "prodready"]))?;
            run(Command::new("bash")
                .arg(root().join("bench/walpush.sh"))
                .env("PRODREADY_BIN", target.join("release/prodready"))
                .env("PRODREADY_PEERS_DIR", peers))
        }
        Some("tracing") => run(Command::new("bash").arg(root().join("bench/tracing.sh"))),
        Some("scan") => {
            let peers = peers::provision()?;
            run(cargo().args(["build", "--release", "--package", "prodready"]))?;
            run(cargo().args(["build", "--release", "--package", "prodready-scan", "--example", "corpus"]))?;
            run(Command::new("bash")
                .arg(root().join("bench/scan.sh"))
                .env("PRODREADY_BIN", target.join("release/prodready"))
                .env("CORPUS_BIN", target.join("release/examples/corpus"))
                .env("PEERS", peers))
        }
        Some("loadtest") => {
            let peers = peers::provision()?;
            run(cargo().args(["build", "--release", "--package", "prodready"]))?;
            run(Command::new("bash")
                .arg(root().join("bench/loadtest.sh"))
                .env("PRODREADY_BIN", target.join("release/prodready"))
                .env("PRODREADY_PEERS_DIR", peers))
        }
        _ => Err(
            "usage: cargo xtask bench <backup | basebackup | logging | secrets | dbmon | tracing | scan | walpush | loadtest>"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_crates_are_found_by_name_in_a_tree_listing() {
        let clean = [
            "prodready-backup v0.1.0 (/w/crates/prodready-backup)",
            "prodready-metrics v0.1.0 (/w/crates/prodready-metrics)",
            "serde v1.0.228",
            "serde v1.0.228 (*)",
        ]
        .join("\n");
        assert!(generator_crates(&clean).is_empty());
        let tainted = [
            clean.as_str(),
            "prodready-metrics-alerts v0.1.0 (/w/crates/prodready-metrics-alerts)",
            "promql-parser v0.11.0",
            "serde_yaml_ng v0.10.0",
            "unsafe-libyaml v0.2.11",
            "promql-parser v0.11.0 (*)",
        ]
        .join("\n");
        assert_eq!(
            generator_crates(&tainted),
            ["prodready-metrics-alerts", "promql-parser", "serde_yaml_ng", "unsafe-libyaml"]
        );
    }
}
