//! The `prodready` binary and its configuration, end to end.

// Tests pass PATH through to the binary and read UPDATE_EXPECT.
#![allow(clippy::disallowed_methods)]

mod alerts;
mod backup;
mod check;
mod cli;
mod config;
mod daemon;
mod db;
mod deploy;
mod generated;
mod load;
mod logs;
mod notify;
mod pitr;
mod redaction;
mod scan_deps;
mod scan_secrets;
mod schedule;
mod secrets;
mod stack;
mod trace;
mod vocabulary;
mod wal;

use std::path::Path;
use std::process::{Command, Output};

/// What a child keeps of this process's environment after `env_clear`: under `cargo xtask coverage` the
/// instrumented binary writes its profile where `LLVM_PROFILE_FILE` says (otherwise into its working
/// directory, which the test then deletes). Empty in a plain test run.
pub fn coverage_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os().filter(|(k, _)| k == "LLVM_PROFILE_FILE").collect()
}

/// Runs the real binary in `dir` with exactly `env` (plus PATH), so the developer's environment never
/// leaks into a test.
pub fn prodready(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    prodready_command(dir, env, args).output().expect("run prodready")
}

/// The command [`prodready`] runs, for a test that starts it and acts on it while it runs.
pub fn prodready_command(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prodready"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .envs(coverage_env())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .envs(env.iter().copied());
    cmd
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
