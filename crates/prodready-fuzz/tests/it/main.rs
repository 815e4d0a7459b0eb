//! Every kept input replays without a panic, every target's seeds include accepted inputs, the fuzzer
//! finds a planted bug, and a short run of every target finds nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prodready_fuzz::{Budget, TARGETS, Target, Watch, default_root, fuzz, run_one, saved_inputs};

#[test]
fn every_kept_input_replays_and_every_target_has_an_accepted_seed() {
    let root = default_root();
    for target in TARGETS {
        let saved = saved_inputs(&root, target).unwrap();
        let mut accepted = 0;
        for (path, input) in &saved {
            match run_one(target, input) {
                Ok(ok) => accepted += usize::from(ok),
                Err(finding) => panic!("{} {}: {}", target.name, path.display(), finding.problem),
            }
        }
        assert!(accepted > 0, "{}: no seed is accepted, so the fuzzer starts from noise", target.name);
    }
}

fn planted(input: &[u8]) -> bool {
    assert!(!input.windows(4).any(|w| w == b"boom"), "planted bug");
    true
}

#[test]
fn the_fuzzer_finds_a_planted_panic() {
    let target = Target { name: "planted", run: planted, dictionary: &["bo", "om"], builtin: Vec::new };
    let budget = Budget {
        duration: Duration::from_secs(20),
        per_input: Duration::from_secs(5),
        seed: 7,
        max_len: 256,
    };
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = fuzz(&target, &[b"hello".to_vec()], budget, &Arc::new(Watch::default()), Instant::now());
    std::panic::set_hook(quiet);
    let finding = outcome.findings.first().expect("the planted bug was not found");
    assert!(finding.problem.contains("planted bug"), "{}", finding.problem);
    assert!(finding.input.windows(4).any(|w| w == b"boom"));
}

#[test]
fn a_short_run_of_every_target_finds_nothing() {
    let root = default_root();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut found = Vec::new();
    for (i, target) in TARGETS.iter().enumerate() {
        let seeds: Vec<Vec<u8>> = saved_inputs(&root, target).unwrap().into_iter().map(|(_, b)| b).collect();
        let budget = Budget {
            duration: Duration::from_secs(2),
            per_input: Duration::from_secs(10),
            seed: 1 + i as u64,
            max_len: 16 * 1024,
        };
        let outcome = fuzz(target, &seeds, budget, &Arc::new(Watch::default()), Instant::now());
        assert!(outcome.runs > 0);
        found.extend(
            outcome
                .findings
                .into_iter()
                .map(|f| (f.target, f.problem, String::from_utf8_lossy(&f.input).into_owned())),
        );
    }
    std::panic::set_hook(quiet);
    assert!(found.is_empty(), "run `cargo xtask fuzz` and fix: {found:#?}");
}
