//! Writes the labelled secret corpus of the tests into a directory, for the benchmark's peers:
//! `cargo run -p prodready-scan --example corpus -- DIR` writes DIR/positive/..., DIR/negative/... and
//! DIR/labels.tsv (`path<TAB>line<TAB>rule`, one line per secret).

#![allow(clippy::print_stderr, dead_code)]

#[path = "../tests/it/corpus/generate.rs"]
mod generate;

use std::fmt::Write as _;

fn main() -> std::process::ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(std::path::PathBuf::from) else {
        eprintln!("usage: corpus DIR");
        return std::process::ExitCode::from(2);
    };
    let ids: Vec<String> =
        prodready_scan::secrets::Ruleset::builtin().rules().map(|r| r.id.clone()).collect();
    let samples = generate::corpus(&ids, 24, 40, 17);
    let mut labels = String::new();
    for s in &samples {
        let path = dir.join(&s.path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, &s.text).expect("write");
        for (line, rule) in &s.secrets {
            let _ = writeln!(labels, "{}\t{line}\t{rule}", s.path);
        }
    }
    std::fs::write(dir.join("labels.tsv"), labels).expect("write labels");
    eprintln!("{} files in {}", samples.len(), dir.display());
    std::process::ExitCode::SUCCESS
}
