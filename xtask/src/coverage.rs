//! `cargo xtask coverage`: the whole suite under cargo-llvm-cov, an lcov report and the 80% gate.
//!
//! The tests run as `cargo xtask test` runs them (nextest over the workspace, then the doc tests), in an
//! environment from `cargo llvm-cov show-env`: every workspace crate is built with `-C instrument-coverage`
//! (dependencies are not), and every process started from that build writes a profile, so the `prodready`
//! binary that the CLI tests spawn counts like the library code they call in process. The instrumented
//! build has a target directory of its own, `llvm-cov-target` under cargo's (outside the clone, kept between
//! runs, and never mixed with plain builds).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, cargo, libraries, peers, root, run, say, target_dir};

pub(crate) const HELP: &str = "\
usage: cargo xtask coverage

Runs every test (nextest, then the doc tests) with the workspace instrumented by cargo-llvm-cov, including
the prodready processes the CLI tests start, and writes coverage/lcov.info: line coverage of the library
crates (crates/prodready-* but the test support and the fuzz targets; tests, benches, examples and code
generated under the target directory left out). Prints lines covered per crate (the binary's for
information) and fails when the library crates together cover less than 80% of their lines, or when one
of them has no line in the report.
`prodready check` reads the same file for its coverage check.

The instrumented build lives in llvm-cov-target/ under cargo's target directory. cargo-llvm-cov comes from
`cargo xtask peers`, and so do llvm-cov and llvm-profdata: rustup's llvm-tools component of the pinned
toolchain, or, where rustup cannot download it, Debian's llvm-N for rustc's LLVM major version (N = 22
for Rust 1.95), handed over as LLVM_COV and LLVM_PROFDATA.

Examples:
  cargo xtask coverage
  genhtml coverage/lcov.info -o coverage/html     # browse it (Debian: lcov)";

/// The gate: lines covered in the library crates together.
pub(crate) const MIN_PERCENT: f64 = 80.0;

/// Source files kept out of the report: the binary's and non-library crates, tests and the like.
/// (cargo-llvm-cov already leaves out dependencies and anything under the target directory, which is
/// where build scripts generate code.)
const IGNORE: &str =
    r"(crates/(prodready|prodready-test-support|prodready-fuzz)/|xtask/|/tests/|/benches/|/examples/)";

pub(crate) fn main(args: &[String]) -> Result {
    if let Some(arg) = args.first() {
        if arg == "-h" || arg == "--help" {
            say(HELP);
            return Ok(());
        }
        return Err(format!("unexpected argument `{arg}`\n\n{HELP}"));
    }
    let peers = peers::provision()?;
    peers::ensure_postgres()?;
    let env = Instrumented::new(&peers)?;
    // The workspace's instrumented binaries of an earlier run (an older checkout at the same path) would
    // count as never run: they go, and this run builds its own. Dependencies stay built.
    let mut clean = cargo();
    run(env.apply(clean.args(["llvm-cov", "clean", "--workspace"])))?;
    // Profiles of an earlier run would be merged into this one.
    if let Ok(entries) = std::fs::read_dir(&env.target) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|x| x == "profraw") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let tests = |args: &[&str]| -> Result {
        let mut cmd = cargo();
        run(env.apply(cmd.args(args)))
    };
    let started = std::time::Instant::now();
    // A failing test fails the run, after the report: what the other tests covered is still worth seeing.
    let nextest = tests(&["nextest", "run", "--workspace", "--locked", "--no-fail-fast"]);
    let doc = tests(&["test", "--workspace", "--locked", "--doc"]);
    say(&format!("coverage: tests took {} s", started.elapsed().as_secs()));
    env.drop_broken_profiles()?;

    let dir = root().join("coverage");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let lcov = dir.join("lcov.info");
    let all = dir.join("all.lcov");
    let mut report = cargo();
    report.args(["llvm-cov", "report", "--lcov", "--output-path"]).arg(&all).args([
        "--ignore-filename-regex",
        r"(crates/(prodready-test-support|prodready-fuzz)/|xtask/|/tests/|/benches/|/examples/)",
    ]);
    run(env.apply(&mut report))?;
    let mut report = cargo();
    report
        .args(["llvm-cov", "report", "--lcov", "--output-path"])
        .arg(&lcov)
        .args(["--ignore-filename-regex", IGNORE]);
    run(env.apply(&mut report))?;

    let text = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    // The instrumented build lives in the shared cache, beside test binaries built from other clones of
    // the repository: their files would count as never run. Only this checkout's files stay.
    let here = root();
    let here = here.canonicalize().unwrap_or(here);
    for report in [&all, &lcov] {
        let kept = own_records(&text(report)?, &format!("{}/", here.display()));
        std::fs::write(report, kept).map_err(|e| format!("{}: {e}", report.display()))?;
    }
    // The binary's lines, for information; the gate reads lcov.info alone.
    let whole = per_crate(&text(&all)?);
    if let Some(&(found, hit)) = whole.get("prodready") {
        say(&format!("prodready (binary, not gated): {}", line(hit, found)));
    }
    let verdict = gate(&text(&lcov)?, &libraries()?, MIN_PERCENT);
    say(&format!("coverage: {} written", lcov.display()));
    let (Ok(table) | Err(table)) = &verdict;
    say(table);
    nextest?;
    doc?;
    verdict.map(drop).map_err(|table| table.lines().last().unwrap_or_default().to_owned())
}

/// The environment of an instrumented build and run: cargo-llvm-cov's `show-env` variables, its own
/// target directory, the peers on PATH and, where rustup has no llvm-tools, `LLVM_COV`/`LLVM_PROFDATA`.
pub(crate) struct Instrumented {
    /// `llvm-cov-target` under cargo's target directory.
    pub(crate) target: PathBuf,
    vars: Vec<(String, String)>,
    profdata: PathBuf,
}

impl Instrumented {
    pub(crate) fn new(peers: &Path) -> Result<Self> {
        let target = target_dir().join("llvm-cov-target");
        let mut vars = vec![
            (
                "PATH".to_owned(),
                format!(
                    "{}:{}",
                    peers.join("bin").display(),
                    std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned())
                ),
            ),
            ("CARGO_TARGET_DIR".to_owned(), target.display().to_string()),
            ("PRODREADY_PEERS_DIR".to_owned(), peers.display().to_string()),
        ];
        let mut profdata = PathBuf::from("llvm-profdata");
        for (key, value) in peers::llvm_tools()? {
            if key == "LLVM_PROFDATA" {
                profdata.clone_from(&value);
            }
            vars.push((key.to_owned(), value.display().to_string()));
        }
        let mut show = cargo();
        show.args(["llvm-cov", "show-env"]).envs(vars.iter().map(|(k, v)| (k, v)));
        let out = show.output().map_err(|e| format!("cannot run cargo llvm-cov: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`cargo llvm-cov show-env` failed (is cargo-llvm-cov provisioned? `cargo xtask peers`): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        vars.extend(parse_env(&String::from_utf8_lossy(&out.stdout)));
        Ok(Self { target, vars, profdata })
    }

    /// Removes the profiles llvm-profdata cannot read, saying how many. A process killed while it writes
    /// its profile at exit (a test's SIGKILL after a grace period, a job's process group killed on
    /// timeout) leaves a truncated file, and one such file makes cargo-llvm-cov's merge refuse them all.
    /// What that one process covered is lost; the report of the rest is not.
    fn drop_broken_profiles(&self) -> Result {
        let profiles: Vec<PathBuf> = std::fs::read_dir(&self.target)
            .map_err(|e| format!("{}: {e}", self.target.display()))?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|x| x == "profraw"))
            .collect();
        if profiles.is_empty() {
            return Ok(());
        }
        let list = self.target.join("profraw-check-list");
        let merged = self.target.join("profraw-check.profdata");
        let names: String = profiles.iter().map(|p| format!("{}\n", p.display())).collect();
        std::fs::write(&list, names).map_err(|e| format!("{}: {e}", list.display()))?;
        let out = Command::new(&self.profdata)
            .args(["merge", "-sparse", "--failure-mode=all", "-f"])
            .arg(&list)
            .arg("-o")
            .arg(&merged)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.profdata.display()))?;
        let _ = std::fs::remove_file(&list);
        let _ = std::fs::remove_file(&merged);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let broken = unreadable_profiles(&stderr);
        if !out.status.success() && broken.len() < profiles.len() {
            return Err(format!("{} merge failed: {}", self.profdata.display(), stderr.trim()));
        }
        for path in &broken {
            say(&format!("coverage: dropping an unreadable profile ({path})"));
            std::fs::remove_file(path).map_err(|e| format!("{path}: {e}"))?;
        }
        if !broken.is_empty() {
            say(&format!("coverage: {} of {} profiles were unreadable", broken.len(), profiles.len()));
        }
        Ok(())
    }

    pub(crate) fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)))
    }

    /// The `prodready` binary of the instrumented build. Built as the test run builds it (the workspace's
    /// tests, so the features are the same and nothing rebuilds right after a coverage run).
    pub(crate) fn prodready(&self) -> Result<PathBuf> {
        run(self.apply(cargo().args(["test", "--workspace", "--locked", "--no-run", "--quiet"])))?;
        Ok(self.target.join("debug/prodready"))
    }
}

/// The profiles llvm-profdata's merge warned about: `warning: PATH.profraw: REASON` lines.
fn unreadable_profiles(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix("warning: "))
        .filter_map(|rest| rest.split_once(".profraw: "))
        .map(|(path, _)| format!("{path}.profraw"))
        .collect()
}

/// `KEY=VALUE` lines of `cargo llvm-cov show-env`, values unquoted as a POSIX shell would.
fn parse_env(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches("export ");
        let Some((key, raw)) = line.split_once('=') else { continue };
        let mut value = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            match c {
                '\'' => value.extend(chars.by_ref().take_while(|c| *c != '\'')),
                '"' => {
                    while let Some(c) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' => value.extend(chars.next()),
                            c => value.push(c),
                        }
                    }
                }
                '\\' => value.extend(chars.next()),
                c => value.push(c),
            }
        }
        out.push((key.to_owned(), value));
    }
    out
}

/// The records of an lcov report whose source file is under `root` (a path ending in `/`).
pub(crate) fn own_records(lcov: &str, root: &str) -> String {
    let mut out = String::new();
    let mut keep = false;
    for line in lcov.lines() {
        if let Some(path) = line.strip_prefix("SF:") {
            keep = path.starts_with(root);
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
        if line == "end_of_record" {
            keep = false;
        }
    }
    out
}

/// Crate name -> (lines found, lines hit), from an lcov report's `SF:`, `LF:` and `LH:` records. A file
/// belongs to the crate whose directory under crates/ holds it.
pub(crate) fn per_crate(lcov: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::<String, (u64, u64)>::new();
    let mut current: Option<String> = None;
    for line in lcov.lines() {
        if let Some(path) = line.strip_prefix("SF:") {
            current =
                path.split_once("crates/").and_then(|(_, rest)| rest.split('/').next()).map(str::to_owned);
        } else if let (Some(name), Some(n)) = (&current, line.strip_prefix("LF:")) {
            out.entry(name.clone()).or_default().0 += n.trim().parse::<u64>().unwrap_or(0);
        } else if let (Some(name), Some(n)) = (&current, line.strip_prefix("LH:")) {
            out.entry(name.clone()).or_default().1 += n.trim().parse::<u64>().unwrap_or(0);
        } else if line == "end_of_record" {
            current = None;
        }
    }
    out
}

#[allow(clippy::cast_precision_loss)]
fn percent(hit: u64, found: u64) -> f64 {
    if found == 0 { 100.0 } else { 100.0 * hit as f64 / found as f64 }
}

fn line(hit: u64, found: u64) -> String {
    format!("{:5.1}% ({hit} of {found} lines)", percent(hit, found))
}

/// The gate over the `libraries`' lines together: Ok with the per-crate table when they reach
/// `min_percent`, Err with the same table otherwise. Crates under the minimum on their own are marked. A
/// library crate without a line in the report fails the gate: counted as 0 of 0 lines, it would pass
/// unseen however little of it the tests run.
pub(crate) fn gate(lcov: &str, libraries: &[String], min_percent: f64) -> Result<String> {
    let crates = per_crate(lcov);
    let mut table = String::from("line coverage of the library crates:\n");
    let (mut found, mut hit) = (0, 0);
    let mut missing = Vec::new();
    for name in libraries {
        let (f, h) = crates.get(name).copied().unwrap_or_default();
        found += f;
        hit += h;
        let mark = if f == 0 {
            missing.push(name.as_str());
            "  (no line in the report)"
        } else if percent(h, f) < min_percent {
            "  (under the minimum)"
        } else {
            ""
        };
        table.push_str(&format!("  {name:<26} {}{mark}\n", line(h, f)));
    }
    if found == 0 {
        return Err(format!(
            "{table}no line of a library crate in the report: was it written by cargo llvm-cov?"
        ));
    }
    let total = percent(hit, found);
    table.push_str(&format!("  {:<26} {}", "total", line(hit, found)));
    if !missing.is_empty() {
        return Err(format!(
            "{table}\ncoverage gate failed: no line of {} in the report (did the tests build it?)",
            missing.join(", ")
        ));
    }
    if total >= min_percent {
        Ok(format!("{table}\ncoverage gate passed: {total:.1}% >= {min_percent}%"))
    } else {
        Err(format!(
            "{table}\ncoverage gate failed: {total:.1}% of library lines covered, below {min_percent}%"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An lcov report with one file per (crate, found, hit).
    fn lcov(files: &[(&str, u64, u64)]) -> String {
        files
            .iter()
            .map(|(krate, found, hit)| {
                format!("SF:/src/prodready/crates/{krate}/src/lib.rs\nDA:1,1\nLF:{found}\nLH:{hit}\nend_of_record\n")
            })
            .collect()
    }

    fn libs() -> Vec<String> {
        vec!["prodready-a".to_owned(), "prodready-b".to_owned()]
    }

    #[test]
    fn records_of_other_checkouts_are_left_out() {
        let report = "TN:\nSF:/a/prodready/crates/prodready-x/src/lib.rs\nDA:1,1\nLF:1\nLH:1\nend_of_record\n\
                      TN:\nSF:/b/clone/crates/prodready-x/src/lib.rs\nDA:1,0\nLF:1\nLH:0\nend_of_record\n";
        let kept = own_records(report, "/a/prodready/");
        assert_eq!(
            kept,
            "SF:/a/prodready/crates/prodready-x/src/lib.rs\nDA:1,1\nLF:1\nLH:1\nend_of_record\n"
        );
        assert_eq!(per_crate(&kept).get("prodready-x"), Some(&(1, 1)));
    }

    #[test]
    fn above_the_threshold_passes() {
        let report = lcov(&[("prodready-a", 100, 90), ("prodready-b", 100, 75), ("prodready", 1000, 0)]);
        let summary = gate(&report, &libs(), 80.0).unwrap();
        assert_eq!(
            summary,
            "line coverage of the library crates:\n\
             \x20 prodready-a                 90.0% (90 of 100 lines)\n\
             \x20 prodready-b                 75.0% (75 of 100 lines)  (under the minimum)\n\
             \x20 total                       82.5% (165 of 200 lines)\n\
             coverage gate passed: 82.5% >= 80%"
        );
    }

    #[test]
    fn below_the_threshold_fails() {
        let report = lcov(&[("prodready-a", 100, 80), ("prodready-a", 100, 79), ("prodready-b", 100, 80)]);
        let err = gate(&report, &libs(), 80.0).unwrap_err();
        assert!(err.ends_with("coverage gate failed: 79.7% of library lines covered, below 80%"), "{err}");
        assert!(
            err.contains("prodready-a                 79.5% (159 of 200 lines)  (under the minimum)"),
            "{err}"
        );
    }

    /// A library crate the report has no line of (left out of the run, or listed with none) fails the
    /// gate by name, whatever the others cover.
    #[test]
    fn a_library_crate_without_lines_fails_naming_it() {
        let libraries = ["prodready-a", "prodready-b", "prodready-c"].map(str::to_owned);
        let report = lcov(&[("prodready-a", 100, 100), ("prodready-c", 0, 0)]);
        let err = gate(&report, &libraries, 80.0).unwrap_err();
        assert_eq!(
            err,
            "line coverage of the library crates:\n\
             \x20 prodready-a                100.0% (100 of 100 lines)\n\
             \x20 prodready-b                100.0% (0 of 0 lines)  (no line in the report)\n\
             \x20 prodready-c                100.0% (0 of 0 lines)  (no line in the report)\n\
             \x20 total                      100.0% (100 of 100 lines)\n\
             coverage gate failed: no line of prodready-b, prodready-c in the report \
             (did the tests build it?)"
        );
    }

    #[test]
    fn exactly_the_threshold_passes_and_an_empty_report_fails() {
        assert!(gate(&lcov(&[("prodready-a", 10, 8), ("prodready-b", 10, 8)]), &libs(), 80.0).is_ok());
        let err = gate("", &libs(), 80.0).unwrap_err();
        assert!(err.ends_with("no line of a library crate in the report: was it written by cargo llvm-cov?"));
    }

    #[test]
    fn unreadable_profiles_are_read_off_the_merge_warnings() {
        let stderr = "warning: /t/main-20696-2360151981580981624_0.profraw: invalid instrumentation profile \
                      data (file header is corrupt)\nwarning: /t/a b.profraw: truncated\n\
                      error: no profile can be merged\nwarning: something else\n";
        assert_eq!(
            unreadable_profiles(stderr),
            vec!["/t/main-20696-2360151981580981624_0.profraw".to_owned(), "/t/a b.profraw".to_owned()]
        );
    }

    /// A real profile from a real instrumented program, and a truncated copy of it, as a process killed
    /// while writing its profile leaves: the copy goes, the profile stays.
    #[test]
    fn a_truncated_profile_is_dropped_and_a_good_one_kept() {
        let dir = std::env::temp_dir().join(format!("xtask-profiles-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("m.rs"), "fn main() {}\n").unwrap();
        let built = Command::new("rustc")
            .args(["-C", "instrument-coverage", "m.rs", "-o", "m"])
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(built.success());
        let good = dir.join("good.profraw");
        assert!(Command::new(dir.join("m")).env("LLVM_PROFILE_FILE", &good).status().unwrap().success());
        let bytes = std::fs::read(&good).unwrap();
        std::fs::write(dir.join("cut.profraw"), &bytes[..bytes.len() / 2]).unwrap();
        let tools = peers::llvm_tools().unwrap();
        let profdata = tools.iter().find(|(k, _)| *k == "LLVM_PROFDATA").unwrap().1.clone();
        let env = Instrumented { target: dir.clone(), vars: Vec::new(), profdata };
        env.drop_broken_profiles().unwrap();
        assert!(good.is_file());
        assert!(!dir.join("cut.profraw").exists());
        env.drop_broken_profiles().unwrap();
        assert!(good.is_file(), "a second pass over readable profiles removes nothing");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn show_env_output_is_unquoted() {
        let text = "LLVM_PROFILE_FILE='/t/x-%p-%2m.profraw'\nexport RUSTC_WRAPPER=\"/a b/c\"\nCARGO_LLVM_COV=1\n\
                    FLAGS='-C'\\''x'\n";
        assert_eq!(
            parse_env(text),
            vec![
                ("LLVM_PROFILE_FILE".to_owned(), "/t/x-%p-%2m.profraw".to_owned()),
                ("RUSTC_WRAPPER".to_owned(), "/a b/c".to_owned()),
                ("CARGO_LLVM_COV".to_owned(), "1".to_owned()),
                ("FLAGS".to_owned(), "-C'x".to_owned()),
            ]
        );
    }
}
