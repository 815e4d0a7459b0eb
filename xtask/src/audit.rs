//! `cargo xtask audit`: the supply-chain policy in deny.toml (licenses, duplicate versions, sources) and
//! RustSec advisories read offline from a local copy of the advisory database, with cargo-deny.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, TempDir, peers, root, run, say};

pub(crate) const HELP: &str = "\
usage: cargo xtask audit [--db DIR] [--sarif DIR]

Checks the workspace's dependency graph against deny.toml with cargo-deny (provisioned by `cargo xtask
peers`): licenses on the allow-list, no crate from outside crates.io, no crate in two versions unless
deny.toml's [bans] skip list excuses it (naming who forces it), and every RustSec advisory matching a
locked version. Nothing is fetched: the advisories come from DIR. Then
`prodready scan secrets .` looks for credentials in the repository's files and `prodready scan deps
Cargo.lock --db DIR` checks the lockfile again with prodready's own matcher (ignoring the ids deny.toml
ignores), with the binary of the instrumented build (`cargo xtask coverage`'s: in CI it is built already).

  --db DIR   a RustSec advisory-db checkout or snapshot (Markdown advisories under crates/NAME/);
             default: $PRODREADY_ADVISORY_DB, ../shared/advisory-db beside the repository, or the
             copy `cargo xtask peers` made of it
  --sarif DIR    also write SARIF 2.1.0 reports there (for code scanning): cargo-deny.sarif (its
                 errors), prodready-scan-secrets.sarif and prodready-scan-deps.sarif

Refreshing the database (on a machine that reaches GitHub):
  git clone --depth 1 https://github.com/rustsec/advisory-db DIR     # first time
  git -C DIR pull --ff-only                                          # later
then `cargo xtask audit --db DIR`. A plain directory works as well (it is copied into a temporary git
repository, which is what cargo-deny reads). An advisory that does not apply to us goes in deny.toml's
[advisories] ignore list with its reason.

Examples:
  cargo xtask audit
  cargo xtask audit --db ~/src/advisory-db";

/// The directory cargo-deny opens under its `db-path` for the default database URL
/// (https://github.com/rustsec/advisory-db, named by tame-index's `url_to_local_dir`).
const DB_DIR_NAME: &str = "advisory-db-3157b0e258782691";

pub(crate) fn main(args: &[String]) -> Result {
    let mut db = None;
    let mut sarif = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--db" => db = Some(PathBuf::from(args.next().ok_or("--db needs a directory")?)),
            "--sarif" => sarif = Some(PathBuf::from(args.next().ok_or("--sarif needs a directory")?)),
            "-h" | "--help" => {
                say(HELP);
                return Ok(());
            }
            other => return Err(format!("unexpected argument `{other}`\n\n{HELP}")),
        }
    }
    let db = match db {
        Some(db) => db,
        None => default_db().ok_or_else(|| {
            format!(
                "no advisory database at {}: pass --db DIR (see `cargo xtask audit --help`)",
                root().join("../shared/advisory-db").display()
            )
        })?,
    };
    let peers = peers::provision()?;
    if let Ok(snapshot) = std::fs::read_to_string(db.join("SNAPSHOT.txt")) {
        say(&format!("advisories: {}", snapshot.lines().next().unwrap_or_default()));
    }
    if let Some(dir) = &sarif {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let report = deny(
        &peers.join("bin/cargo-deny"),
        &root().join("Cargo.toml"),
        &root().join("deny.toml"),
        &db,
        sarif.as_ref().map(|d| d.join("cargo-deny.sarif")).as_deref(),
    )?;
    say(&report);
    scan(&peers, &db, sarif.as_deref())
}

/// The repository through `prodready scan`: `scan secrets .` (credentials in its files) and `scan deps
/// Cargo.lock` against the same advisories, with deny.toml's ignored ids. Both run; either failing fails.
fn scan(peers: &Path, db: &Path, sarif: Option<&Path>) -> Result {
    let bin = crate::coverage::Instrumented::new(peers)?.prodready()?;
    let policy = std::fs::read_to_string(root().join("deny.toml")).map_err(|e| format!("deny.toml: {e}"))?;
    // The instrumented binary writes a profile; this one is no test's, so it goes away.
    let profiles = TempDir::new("scan-profiles")?;
    let mut deps: Vec<OsString> = vec!["deps".into(), "Cargo.lock".into(), "--db".into(), db.into()];
    for id in ignored_advisories(&policy) {
        deps.extend(["--ignore".into(), id.into()]);
    }
    // Accepted findings: the test fixtures' made-up credentials.
    let mut secrets: Vec<OsString> = vec!["secrets".into(), ".".into()];
    if root().join(BASELINE).is_file() {
        secrets.extend(["--baseline".into(), BASELINE.into()]);
    }
    let mut failed = Vec::new();
    for (name, args) in [("secrets", secrets), ("deps", deps)] {
        let scan = |extra: &[&str]| {
            let mut cmd = Command::new(&bin);
            cmd.arg("scan")
                .args(&args)
                .args(extra)
                .current_dir(root())
                .env("LLVM_PROFILE_FILE", profiles.path().join("scan-%p.profraw"));
            cmd
        };
        if let Some(dir) = sarif {
            // Written whatever it finds: code scanning shows the findings; the text run below decides.
            let file = dir.join(format!("prodready-scan-{name}.sarif"));
            let _ = scan(&["--format", "sarif", "--output"]).arg(&file).status();
        }
        if let Err(e) = run(&mut scan(&[])) {
            failed.push(match name {
                "secrets" => format!(
                    "{e}: remove the secret, or, for a test fixture's made-up one, accept it in {BASELINE} \
                     (`prodready scan secrets . --format json --output {BASELINE}` rewrites it from the tree; \
                     review what it accepts)"
                ),
                _ => format!("{e}: upgrade the crate, or ignore the advisory in deny.toml with its reason"),
            });
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(failed.join("; ")) }
}

/// Secret-scan findings accepted in this repository (made-up credentials in test fixtures), by
/// fingerprint: a JSON report of `prodready scan secrets`.
const BASELINE: &str = ".prodready-baseline.json";

/// The advisory ids deny.toml's `[advisories] ignore` lists (each with its reason there).
fn ignored_advisories(policy: &str) -> Vec<String> {
    let mut section = "";
    let mut ids = Vec::new();
    for line in policy.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[')
            && !trimmed.starts_with("[[")
            && trimmed.ends_with(']')
            && !trimmed.contains('=')
        {
            section = trimmed;
        } else if section == "[advisories]" && !trimmed.starts_with('#') {
            for (at, _) in trimmed.match_indices("RUSTSEC-") {
                let id: String =
                    trimmed[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                if id.len() == "RUSTSEC-0000-0000".len() {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

/// `$PRODREADY_ADVISORY_DB` or ../shared/advisory-db next to the repository, else the copy `cargo xtask
/// peers` keeps in the peers folder (a clone elsewhere on the machine finds it there).
fn default_db() -> Option<PathBuf> {
    peers::advisory_source()
        .or_else(|| Some(peers::dir().join("advisory-db")).filter(|d| d.join("crates").is_dir()))
}

/// Runs `cargo deny check` on `manifest` with the policy in `config` and the advisories in `db`, offline.
/// Ok is a short report (the warnings, duplicate versions listed); Err names every error cargo-deny found
/// (advisory ids, licenses, sources). With `sarif`, the errors are also written there as SARIF.
pub(crate) fn deny(
    cargo_deny: &Path,
    manifest: &Path,
    config: &Path,
    db: &Path,
    sarif: Option<&Path>,
) -> Result<String> {
    if !db.join("crates").is_dir() {
        return Err(format!("{}: not an advisory database (no crates/ directory)", db.display()));
    }
    let tmp = TempDir::new("audit")?;
    let dbs = tmp.path().join("dbs");
    let repo = dbs.join(DB_DIR_NAME);
    std::fs::create_dir_all(&dbs).map_err(|e| format!("{}: {e}", dbs.display()))?;
    quiet(Command::new("cp").arg("-R").arg(db).arg(&repo))?;
    // A read-only snapshot stays read-only when copied; git needs to write in it.
    quiet(Command::new("chmod").args(["-R", "u+w"]).arg(&repo))?;
    let _ = std::fs::remove_dir_all(repo.join(".git"));
    let git = |args: &[&str]| {
        quiet(
            Command::new("git")
                .args([
                    "-c",
                    "user.name=xtask",
                    "-c",
                    "user.email=xtask@localhost",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args)
                .current_dir(&repo),
        )
    };
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "advisory database snapshot"])?;

    let policy = std::fs::read_to_string(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let config = tmp.path().join("deny.toml");
    std::fs::write(&config, with_db_path(&policy, &dbs)?).map_err(|e| e.to_string())?;

    let check = |level: &str, format: &str| {
        Command::new(cargo_deny)
            .args(["--log-level", level, "--format", format, "--color", "never", "--offline", "--locked"])
            .arg("--manifest-path")
            .arg(manifest)
            .arg("--config")
            .arg(&config)
            .args(["check", "--hide-inclusion-graph"])
            .output()
            .map_err(|e| format!("cannot run {}: {e} (run `cargo xtask peers`)", cargo_deny.display()))
    };
    if let Some(sarif) = sarif {
        let out = check("error", "sarif")?;
        std::fs::write(sarif, &out.stdout).map_err(|e| format!("{}: {e}", sarif.display()))?;
    }
    let out = check("warn", "human")?;
    // Diagnostics go to stderr, the verdict to stdout.
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    let report = summarize(&text);
    if out.status.success() { Ok(report) } else { Err(format!("cargo deny check failed\n{report}")) }
}

/// The policy with `db-path` pointing at `dbs`, set right under `[advisories]`.
fn with_db_path(policy: &str, dbs: &Path) -> Result<String> {
    let mut out = String::new();
    let mut found = false;
    for line in policy.lines() {
        if line.trim_start().starts_with("db-path") || line.trim_start().starts_with("db-urls") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.trim() == "[advisories]" {
            found = true;
            out.push_str(&format!("db-path = \"{}\"\n", dbs.display()));
        }
    }
    if found { Ok(out) } else { Err("deny.toml has no [advisories] section".to_owned()) }
}

/// Errors in full; each warning on one line (with the source line it points at), the duplicate versions as
/// one list; the closing verdict.
fn summarize(text: &str) -> String {
    let mut errors = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut duplicates = Vec::new();
    let mut verdict = String::new();
    // The block being read: (is an error, its lines).
    let mut block: Option<(bool, Vec<&str>)> = None;
    let mut flush = |block: Option<(bool, Vec<&str>)>| match block {
        Some((true, lines)) => errors.push(lines.join("\n").trim_end().to_owned()),
        Some((false, lines)) => {
            let header = lines[0];
            if let Some((_, name)) = header.split_once("duplicate entries for crate '") {
                duplicates.push(name.trim_end_matches('\'').to_owned());
                return;
            }
            // The first quoted source line, e.g. `11 │     "MIT-0",`.
            let source = lines[1..].iter().find_map(|l| {
                let (number, code) = l.split_once('│')?;
                (!number.trim().is_empty() && number.trim().chars().all(|c| c.is_ascii_digit()))
                    .then(|| code.trim().to_owned())
            });
            warnings.push(match source {
                Some(source) => format!("{header}: {source}"),
                None => header.to_owned(),
            });
        }
        None => {}
    };
    for line in text.lines() {
        if line.starts_with("error[") || line.starts_with("error:") {
            flush(block.take());
            block = Some((true, vec![line]));
        } else if line.starts_with("warning[") {
            flush(block.take());
            block = Some((false, vec![line]));
        } else if line.starts_with("advisories ") {
            flush(block.take());
            line.clone_into(&mut verdict);
        } else if let Some((_, lines)) = block.as_mut() {
            lines.push(line);
        }
    }
    flush(block.take());
    let mut report = errors.join("\n\n");
    for w in warnings {
        report.push_str(&format!("\n{w}"));
    }
    if !duplicates.is_empty() {
        report.push_str(&format!(
            "\nwarning: {} crates in two or more versions (`cargo tree -d` shows who pulls each): {}",
            duplicates.len(),
            duplicates.join(", ")
        ));
    }
    report.push_str(&format!("\n{verdict}"));
    report.trim().to_owned()
}

/// Runs a helper command, silent unless it fails.
fn quiet(cmd: &mut Command) -> Result {
    let out = cmd.output().map_err(|e| format!("cannot run {}: {e}", cmd.get_program().to_string_lossy()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{} {}` failed: {}",
            cmd.get_program().to_string_lossy(),
            cmd.get_args().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cargo_deny() -> PathBuf {
        let bin = peers::dir().join("bin/cargo-deny");
        assert!(bin.is_file(), "{} is missing: run `cargo xtask peers`", bin.display());
        bin
    }

    /// An advisory database holding one made-up advisory against every version of `krate`.
    fn crafted_db(krate: &str, id: &str) -> TempDir {
        let db = TempDir::new("advisory-db").unwrap();
        let dir = db.path().join("crates").join(krate);
        std::fs::create_dir_all(&dir).unwrap();
        let advisory = format!(
            "```toml\n[advisory]\nid = \"{id}\"\npackage = \"{krate}\"\ndate = \"2026-01-01\"\n\
             url = \"https://example.invalid/{id}\"\ncategories = [\"memory-corruption\"]\nkeywords = []\n\n\
             [versions]\npatched = [\">= 9999.0.0\"]\n```\n\n# Crafted for the audit's own test\n\n\
             Every released version is affected.\n"
        );
        std::fs::write(dir.join(format!("{id}.md")), advisory).unwrap();
        db
    }

    /// The workspace as it is, against the snapshot: the audit of main passes.
    #[test]
    fn workspace_passes_with_the_shared_snapshot() {
        let Some(db) = default_db() else {
            panic!(
                "no advisory database (../shared/advisory-db, or its copy in the peers folder: cargo xtask peers)"
            )
        };
        let report = deny(&cargo_deny(), &root().join("Cargo.toml"), &root().join("deny.toml"), &db, None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(report.contains("advisories ok, bans ok, licenses ok, sources ok"), "{report}");
    }

    /// A crafted advisory against a crate in Cargo.lock fails the audit, named.
    #[test]
    fn an_advisory_for_a_locked_crate_fails_the_audit() {
        let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
        assert!(lock.contains("name = \"itoa\""), "the test needs a crate that Cargo.lock holds");
        let db = crafted_db("itoa", "RUSTSEC-2026-9901");
        let err = deny(&cargo_deny(), &root().join("Cargo.toml"), &root().join("deny.toml"), db.path(), None)
            .expect_err("a vulnerable itoa must fail the audit");
        assert!(err.contains("RUSTSEC-2026-9901"), "{err}");
        assert!(err.contains("itoa"), "{err}");
        assert!(err.contains("advisories FAILED"), "{err}");
    }

    /// An empty library crate `name` with `rest` after its `[package]` name, version and edition, and
    /// its lockfile (resolved offline: its dependencies must be in Cargo.lock); the folder and the
    /// manifest's path.
    fn crafted_crate(name: &str, rest: &str) -> (TempDir, PathBuf) {
        let krate = TempDir::new(name).unwrap();
        std::fs::create_dir_all(krate.path().join("src")).unwrap();
        let manifest = krate.path().join("Cargo.toml");
        std::fs::write(
            &manifest,
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n{rest}"),
        )
        .unwrap();
        std::fs::write(krate.path().join("src/lib.rs"), "").unwrap();
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["generate-lockfile", "--offline", "--manifest-path"])
            .arg(&manifest)
            .status()
            .unwrap();
        assert!(status.success());
        (krate, manifest)
    }

    /// A crate under a license outside the allow-list fails the audit, naming the license.
    #[test]
    fn a_disallowed_license_fails_the_audit() {
        let (krate, manifest) = crafted_crate(
            "gpl-only",
            "license = \"GPL-3.0-only\"\ndescription = \"a crate under a license deny.toml does not allow\"\n",
        );
        let db = crafted_db("itoa", "RUSTSEC-2026-9902");
        let sarif = krate.path().join("deny.sarif");
        let err = deny(&cargo_deny(), &manifest, &root().join("deny.toml"), db.path(), Some(&sarif))
            .expect_err("a GPL-3.0-only crate must fail the audit");
        assert!(err.contains("GPL-3.0-only"), "{err}");
        assert!(err.contains("licenses FAILED"), "{err}");
        let sarif = std::fs::read_to_string(&sarif).unwrap();
        assert!(sarif.contains("\"version\": \"2.1.0\"") && sarif.contains("GPL-3.0-only"), "{sarif}");
    }

    /// A crate in two versions that deny.toml does not excuse fails the audit, named. The crafted crate
    /// depends on thiserror 1 and 2 (both in Cargo.lock, so the offline lockfile resolves); the policy is
    /// ours with thiserror 1's exception taken out.
    #[test]
    fn an_unexcused_duplicate_fails_the_audit() {
        let (krate, manifest) = crafted_crate(
            "two-thiserrors",
            "license = \"MIT\"\n\n[dependencies]\nthiserror = \"2\"\n\
             thiserror1 = { package = \"thiserror\", version = \"1\" }\n",
        );
        let ours = std::fs::read_to_string(root().join("deny.toml")).unwrap();
        let excused = |line: &str| line.contains("\"thiserror@1.") || line.contains("\"thiserror-impl@1.");
        assert!(ours.lines().any(excused), "deny.toml no longer excuses thiserror 1: pick another crate");
        let policy = krate.path().join("deny.toml");
        let stricter: String = ours.lines().filter(|l| !excused(l)).map(|l| format!("{l}\n")).collect();
        std::fs::write(&policy, stricter).unwrap();
        let db = crafted_db("itoa", "RUSTSEC-2026-9903");
        let err = deny(&cargo_deny(), &manifest, &policy, db.path(), None)
            .expect_err("thiserror 1 and 2 side by side must fail the audit");
        assert!(err.contains("duplicate entries for crate 'thiserror'"), "{err}");
        assert!(err.contains("bans FAILED"), "{err}");
        // With our policy as it is, the same graph passes: the exception is what lets it through.
        let report = deny(&cargo_deny(), &manifest, &root().join("deny.toml"), db.path(), None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(report.contains("bans ok"), "{report}");
    }

    #[test]
    fn ignored_advisories_come_from_the_advisories_section() {
        let policy = "[advisories]\nignore = [\n    { id = \"RUSTSEC-2025-0141\", reason = \"x\" },\n    \"RUSTSEC-2024-0001\",\n]\n\
                      # RUSTSEC-2099-0001 in a comment\n[bans]\nskip = [\"RUSTSEC-2023-0002\"]\n";
        assert_eq!(ignored_advisories(policy), ["RUSTSEC-2025-0141", "RUSTSEC-2024-0001"]);
        let ours = std::fs::read_to_string(root().join("deny.toml")).unwrap();
        assert_eq!(ignored_advisories(&ours), ["RUSTSEC-2025-0141"]);
    }

    #[test]
    fn db_path_goes_under_advisories() {
        let policy = "[graph]\nall-features = true\n\n[advisories]\nversion = 2\ndb-path = \"~/x\"\n";
        let got = with_db_path(policy, Path::new("/tmp/dbs")).unwrap();
        assert_eq!(
            got,
            "[graph]\nall-features = true\n\n[advisories]\ndb-path = \"/tmp/dbs\"\nversion = 2\n"
        );
        assert!(with_db_path("[bans]\n", Path::new("/tmp")).is_err());
    }
}
