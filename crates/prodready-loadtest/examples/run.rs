//! Runs one scenario file with the library alone, on a current-thread runtime, and prints the request
//! count: a quick build for profiling the generator (`valgrind --tool=callgrind`), without the binary's
//! link time. `cargo run --release -p prodready-loadtest --example run -- SCENARIO.toml`

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::sync::Arc;

fn main() {
    let path = std::env::args().nth(1).expect("usage: run SCENARIO.toml");
    let text = std::fs::read_to_string(&path).expect("the scenario file reads");
    let mut read = |p: &Path| std::fs::read_to_string(p);
    let plan = match prodready_loadtest::parse(Path::new(&path), &text, &mut read) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let options = prodready_loadtest::RunOptions { shards: 1, ..Default::default() };
    let report = runtime.block_on(prodready_loadtest::run(Arc::new(plan), options));
    let s = &report.summary;
    println!(
        "http_reqs {} iterations {} dropped {} thresholds_ok {}",
        s.value("http_reqs", "count").unwrap_or(0.0),
        s.value("iterations", "count").unwrap_or(0.0),
        s.value("dropped_iterations", "count").unwrap_or(0.0),
        report.thresholds_ok()
    );
}
