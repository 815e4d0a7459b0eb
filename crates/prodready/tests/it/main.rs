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

/// Stores `value` as secret `name` with `prodready secrets put NAME` (the value on stdin), in the store
/// `dir`'s configuration names (by default a file store under `dir`).
pub fn put_secret(dir: &Path, name: &str, value: &str) {
    use std::io::Write as _;
    let mut child = prodready_command(dir, &[], &["secrets", "put", name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run prodready");
    child.stdin.take().expect("stdin").write_all(value.as_bytes()).expect("write the value");
    let out = child.wait_with_output().expect("run prodready");
    assert!(out.status.success(), "secrets put {name}: {}", stderr(&out));
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
