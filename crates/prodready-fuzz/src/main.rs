//! `prodready-fuzz`: runs the fuzz targets for a fixed time each and keeps what they find.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prodready_fuzz::{Budget, Finding, TARGETS, Watch, fuzz, input_name, run_one, saved_inputs};

const USAGE: &str =
    "usage: prodready-fuzz [--seconds N] [--per-input-seconds N] [--seed N] [--root DIR] [TARGET...]

Runs each target (all by default) for N seconds (default 60) from its seeds, writing every finding to
DIR/regressions/<target>/ (DIR defaults to the workspace's fuzz/). Exit 1 when anything was found.
Targets: config, dotenv, positions, manifest, rules, loki_push_json, loki_push_protobuf";

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "error: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, String> {
    let mut seconds = 60u64;
    let mut per_input = 10u64;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_nanos() % u128::from(u64::MAX)).unwrap_or(1));
    let mut root = prodready_fuzz::default_root();
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--seconds" => seconds = value("--seconds")?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--per-input-seconds" => {
                per_input =
                    value("--per-input-seconds")?.parse().map_err(|e| format!("--per-input-seconds: {e}"))?;
            }
            "--seed" => seed = value("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--root" => root = PathBuf::from(value("--root")?),
            "-h" | "--help" => {
                let _ = writeln!(std::io::stdout(), "{USAGE}");
                return Ok(true);
            }
            name if TARGETS.iter().any(|t| t.name == name) => names.push(name.to_owned()),
            other => return Err(format!("unknown target or flag `{other}`")),
        }
    }
    let targets: Vec<_> =
        TARGETS.iter().filter(|t| names.is_empty() || names.iter().any(|n| n == t.name)).collect();
    let budget = Budget {
        duration: Duration::from_secs(seconds),
        per_input: Duration::from_secs(per_input),
        seed,
        max_len: 64 * 1024,
    };
    let _ = writeln!(std::io::stdout(), "fuzzing {} targets, {seconds} s each, seed {seed}", targets.len());

    // The watchdog: an input running past the limit is written as a finding and the process stops (a
    // hang cannot be interrupted from inside).
    let epoch = Instant::now();
    let watch = Arc::new(Watch::default());
    let current: Arc<Mutex<&'static str>> = Arc::new(Mutex::new(""));
    {
        let (watch, current, root) = (watch.clone(), current.clone(), root.clone());
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(100));
                if let Some(input) = watch.overdue(epoch, budget.per_input) {
                    let target = current.lock().map(|t| *t).unwrap_or("unknown");
                    let problem = format!("one input ran longer than {per_input} s");
                    let finding = Finding { target, input, problem };
                    let _ = save(&root, &finding);
                    std::process::exit(1);
                }
            }
        });
    }

    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut clean = true;
    for target in targets {
        if let Ok(mut slot) = current.lock() {
            *slot = target.name;
        }
        let saved = saved_inputs(&root, target).map_err(|e| format!("{}: {e}", root.display()))?;
        // Every kept input first: a regression that comes back is reported as such.
        let mut findings: Vec<Finding> =
            saved.iter().filter_map(|(_, input)| run_one(target, input).err()).collect();
        let started = Instant::now();
        let mut runs = saved.len() as u64;
        let mut accepted = 0;
        if findings.is_empty() {
            let seeds: Vec<Vec<u8>> = saved.into_iter().map(|(_, b)| b).collect();
            let outcome = fuzz(target, &seeds, budget, &watch, epoch);
            runs += outcome.runs;
            accepted = outcome.accepted;
            findings = outcome.findings;
        }
        let secs = started.elapsed().as_secs_f64();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{:<20} {runs:>9} runs in {secs:>5.1} s ({accepted} accepted)", target.name);
        for finding in &findings {
            clean = false;
            let path = save(&root, finding).map_err(|e| format!("cannot save a finding: {e}"))?;
            let _ = writeln!(
                out,
                "  FOUND {}: {} (input saved as {})",
                finding.target,
                finding.problem,
                path.display()
            );
        }
    }
    std::panic::set_hook(quiet);
    Ok(clean)
}

/// Writes a finding's input under `root/regressions/<target>/`, where the test suite replays it.
fn save(root: &std::path::Path, finding: &Finding) -> std::io::Result<PathBuf> {
    let dir = root.join("regressions").join(finding.target);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(input_name(&finding.input));
    std::fs::write(&path, &finding.input)?;
    let _ = writeln!(std::io::stderr(), "{}: {}", finding.target, finding.problem);
    Ok(path)
}
