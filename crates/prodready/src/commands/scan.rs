//! `prodready scan`: security scans for CI (secrets in files or git history; dependencies against
//! advisories), reported as text, JSON, SARIF or JUnit.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use prodready_scan::Report;
use prodready_scan::secrets::{self, Baseline, Options, RulesFile, RulesetBuilder};

use crate::cli::{ScanCommand, ScanFormat, ScanReportArgs, ScanSecretsArgs};
use crate::config::{self, ScanConfig};
use crate::env::Env;
use crate::error::UsageError;
use crate::exit::Exit;
use crate::progress::Bar;

mod deps;

pub(super) fn run(config_flag: Option<&Path>, env: &Env, cmd: &ScanCommand) -> anyhow::Result<Exit> {
    let cfg = config::load(config_flag, env)?.config;
    match cmd {
        ScanCommand::Secrets(args) => scan_secrets(&cfg.scan, args),
        ScanCommand::Deps(args) => deps::run(args),
    }
}

fn scan_secrets(cfg: &ScanConfig, args: &ScanSecretsArgs) -> anyhow::Result<Exit> {
    let rules = ruleset(cfg)?;
    if args.list_rules {
        let mut out = std::io::stdout().lock();
        for rule in rules.rules() {
            writeln!(out, "{:<32} {:<9} {}", rule.id, rule.severity, rule.title)?;
        }
        return Ok(Exit::Success);
    }
    let baseline = match args.baseline.as_ref().or(cfg.baseline.as_ref()) {
        // Writing the baseline itself (regenerating it): every finding goes in, the accepted ones too,
        // or the new file would drop them and the next run fail on each.
        Some(path) if args.report.output.as_deref().is_some_and(|out| same_path(out, path)) => {
            let _ = writeln!(
                std::io::stderr(),
                "note: the report is written to the baseline ({}): every finding is listed, none taken as accepted",
                path.display()
            );
            Baseline::default()
        }
        Some(path) => Baseline::load(path).map_err(|e| {
            UsageError(format!(
                "{e} (write a baseline with `prodready scan secrets --format json --output FILE`)"
            ))
        })?,
        None => Baseline::default(),
    };
    let options =
        Options { max_file_size: args.max_file_size.unwrap_or(cfg.max_file_size), threads: 0, baseline };
    for path in &args.paths {
        if !path.exists() {
            return Err(UsageError(format!("{}: no such file or directory", path.display())).into());
        }
    }
    let bar = Bar::bytes("scanning");
    let report = if args.git {
        let [repo] = args.paths.as_slice() else {
            return Err(UsageError("--git scans one repository: give one PATH".to_owned()).into());
        };
        bar.message("git history".to_owned());
        secrets::scan_git(&rules, repo, args.since.as_deref(), &options, &bar)?
    } else {
        secrets::scan_paths(&rules, &args.paths, &options, &bar)?
    };
    bar.finish();
    emit(&report, &args.report)
}

/// Whether two paths name the same file (which need not exist yet).
fn same_path(a: &Path, b: &Path) -> bool {
    let resolve =
        |p: &Path| p.canonicalize().or_else(|_| std::path::absolute(p)).unwrap_or_else(|_| p.to_path_buf());
    resolve(a) == resolve(b)
}

/// The built-in rules plus `[scan]`'s rules file, allowlists and disabled rules.
fn ruleset(cfg: &ScanConfig) -> anyhow::Result<secrets::Ruleset> {
    let mut builder = RulesetBuilder::new();
    if let Some(path) = &cfg.rules {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("[scan] rules: {}: {e}", path.display())))?;
        builder = builder.file(&path.display().to_string(), &text).map_err(usage)?;
    }
    let mut extra = RulesFile::default();
    extra.allow.secrets.clone_from(&cfg.allow_secrets);
    extra.allow.paths.clone_from(&cfg.allow_paths);
    builder = builder.rules("[scan] allow_secrets / allow_paths", extra);
    for id in &cfg.disable_rules {
        builder = builder.disable(id.clone());
    }
    builder.build().map_err(|e| {
        let hint = if cfg.disable_rules.is_empty() {
            ""
        } else {
            " ([scan] disable_rules; `--list-rules` lists the ids)"
        };
        UsageError(format!("{e}{hint}")).into()
    })
}

fn usage(e: prodready_scan::Error) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

/// Writes the report (stdout, or `--output` with a summary on stderr) and picks the exit code: 1 when a
/// finding is new, 0 otherwise.
pub(super) fn emit(report: &Report, args: &ScanReportArgs) -> anyhow::Result<Exit> {
    let format = match args.format {
        ScanFormat::Text => prodready_scan::Format::Text,
        ScanFormat::Json => prodready_scan::Format::Json,
        ScanFormat::Sarif => prodready_scan::Format::Sarif,
        ScanFormat::Junit => prodready_scan::Format::Junit,
    };
    let rendered = report.render(format);
    match &args.output {
        Some(path) => {
            write_report(path, &rendered)?;
            let _ = writeln!(std::io::stderr(), "{} (report in {})", report.summary(), path.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(rendered.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(if report.findings.is_empty() { Exit::Success } else { Exit::Failure })
}

fn write_report(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    prodready_stdx::fs::write_atomic(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
