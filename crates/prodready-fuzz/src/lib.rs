//! Fuzz targets for the parsers that read outside input, and the fuzzer that runs them.
//!
//! `cargo-fuzz` needs a nightly toolchain, which this project cannot use, so the fuzzer here is a small
//! mutation fuzzer on stable Rust: it starts from the seeds in `fuzz/corpus/<target>/` (and the cases in
//! `fuzz/regressions/<target>/`), applies random byte-level and token-level mutations (bit flips,
//! interesting bytes, insertions of the target's dictionary tokens, deletions, repeated ranges that build
//! deep nesting, splices of two inputs), and keeps inputs that parse as new starting points. It has no
//! coverage feedback. A panic is a finding, and so is one input that takes longer than the time limit (a
//! watchdog thread records it and stops the process).
//!
//! [`TARGETS`] lists the targets; `prodready-fuzz` (the binary) runs them for a fixed time and writes
//! every finding to `fuzz/regressions/<target>/`, which the test suite replays on every run.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod targets;

pub use targets::TARGETS;

/// One parser under test.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    /// Runs the parser on `input`; `true` when it accepted the input. A panic is a finding.
    pub run: fn(&[u8]) -> bool,
    /// Tokens of the input's language, inserted by mutations.
    pub dictionary: &'static [&'static str],
    /// Seeds built in code (rendered by the crate that writes such inputs), beside the corpus files.
    pub builtin: fn() -> Vec<Vec<u8>>,
}

/// Something a target did wrong on an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub target: &'static str,
    pub input: Vec<u8>,
    /// The panic message, or that the input took too long.
    pub problem: String,
}

/// Runs `target` on `input`, turning a panic into a finding.
pub fn run_one(target: &Target, input: &[u8]) -> Result<bool, Finding> {
    catch_unwind(AssertUnwindSafe(|| (target.run)(input))).map_err(|payload| {
        let problem = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Finding { target: target.name, input: input.to_vec(), problem: format!("panic: {problem}") }
    })
}

/// The workspace's `fuzz/` directory: corpus and regressions.
pub fn default_root() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    path.canonicalize().unwrap_or(path)
}

/// The inputs kept for `target` under `root`: its built-in seeds (named `builtin:N`), `corpus/<name>/*`
/// and `regressions/<name>/*`.
pub fn saved_inputs(root: &Path, target: &Target) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = (target.builtin)()
        .into_iter()
        .enumerate()
        .map(|(i, b)| (PathBuf::from(format!("builtin:{i}")), b))
        .collect();
    for kind in ["corpus", "regressions"] {
        let dir = root.join(kind).join(target.name);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.is_file()) {
            let bytes = std::fs::read(&path)?;
            out.push((path, bytes));
        }
    }
    Ok(out)
}

/// How a fuzzing run went.
#[derive(Debug, Default)]
pub struct Outcome {
    pub runs: u64,
    /// Inputs the target accepted (parsed without error).
    pub accepted: u64,
    pub findings: Vec<Finding>,
}

/// Bounds of one fuzzing run.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub duration: Duration,
    /// One input taking longer than this is a finding (the watchdog stops the process).
    pub per_input: Duration,
    pub seed: u64,
    /// The largest input made (bytes).
    pub max_len: usize,
}

/// What the watchdog needs to report a hang: the input being run and when it started.
#[derive(Debug, Default)]
pub struct Watch {
    started_ms: AtomicU64,
    running: AtomicBool,
    input: Mutex<Vec<u8>>,
}

impl Watch {
    /// The input running for longer than `limit` since the process started at `epoch`, if any.
    pub fn overdue(&self, epoch: Instant, limit: Duration) -> Option<Vec<u8>> {
        if !self.running.load(Ordering::Acquire) {
            return None;
        }
        let now = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let started = self.started_ms.load(Ordering::Acquire);
        let limit = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        (now.saturating_sub(started) > limit)
            .then(|| self.input.lock().map(|i| i.clone()).unwrap_or_default())
    }
}

/// Fuzzes `target` from `seeds` within `budget`, stopping at the first finding. `watch` is updated before
/// every input, for a watchdog thread.
pub fn fuzz(
    target: &Target,
    seeds: &[Vec<u8>],
    budget: Budget,
    watch: &Arc<Watch>,
    epoch: Instant,
) -> Outcome {
    let mut rng = Rng::new(budget.seed);
    let mut pool: Vec<Vec<u8>> = seeds.to_vec();
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let seeded = pool.len();
    let mut outcome = Outcome::default();
    let start = Instant::now();
    while start.elapsed() < budget.duration {
        let mut input = pool[rng.below(pool.len())].clone();
        for _ in 0..=rng.below(4) {
            mutate(&mut input, &pool, target.dictionary, &mut rng, budget.max_len);
        }
        if let Ok(mut slot) = watch.input.lock() {
            slot.clone_from(&input);
        }
        watch.started_ms.store(u64::try_from(epoch.elapsed().as_millis()).unwrap_or(0), Ordering::Release);
        watch.running.store(true, Ordering::Release);
        let result = run_one(target, &input);
        watch.running.store(false, Ordering::Release);
        outcome.runs += 1;
        match result {
            Ok(true) => {
                outcome.accepted += 1;
                // Accepted inputs become starting points (a bounded pool beside the seeds).
                if pool.len() < seeded + 256 {
                    pool.push(input);
                } else {
                    let slot = seeded + rng.below(256);
                    pool[slot] = input;
                }
            }
            Ok(false) => {}
            Err(finding) => {
                outcome.findings.push(finding);
                break;
            }
        }
    }
    outcome
}

/// A short stable name for an input: FNV-1a of its bytes, in hex.
pub fn input_name(input: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

const INTERESTING: &[u8] = b"\0\x01\x7f\x80\xff\n\r\t \"'\\[]{}#=:,-.0123456789";

fn mutate(input: &mut Vec<u8>, pool: &[Vec<u8>], dictionary: &[&str], rng: &mut Rng, max_len: usize) {
    let len = input.len();
    match rng.below(8) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = INTERESTING[rng.below(INTERESTING.len())];
        }
        2 | 3 if !dictionary.is_empty() => {
            let token = dictionary[rng.below(dictionary.len())].as_bytes();
            let at = rng.below(len + 1);
            input.splice(at..at, token.iter().copied());
        }
        4 if len > 0 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(16)).min(len);
            input.drain(at..end);
        }
        5 if len > 0 => {
            // Repeat a short range many times: deep nesting, long runs.
            let at = rng.below(len);
            let end = (at + 1 + rng.below(8)).min(len);
            let piece = input[at..end].to_vec();
            let most = if rng.below(4) == 0 { 2_000 } else { 16 };
            let times = 1 + rng.below(most);
            let repeated: Vec<u8> = piece.iter().copied().cycle().take(piece.len() * times).collect();
            input.splice(at..at, repeated);
        }
        6 => {
            let other = &pool[rng.below(pool.len())];
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        _ => {
            let at = rng.below(len + 1);
            input.insert(at, u8::try_from(rng.below(256)).unwrap_or(0));
        }
    }
    input.truncate(max_len);
}

/// xorshift64*: small, fast, reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}
