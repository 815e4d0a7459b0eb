//! `prodready check`: the readiness checklist, the scorecard and the launch gate.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use prodready_checklist::defaults::{self, Platform};
use prodready_checklist::{Check, CheckResult, Report, RunOptions, Status, Verdict, history};

use crate::cli::{CheckArgs, Format};
use crate::config::{self, Config, Source};
use crate::env::Env;
use crate::error::UsageError;
use crate::exit::Exit;
use crate::progress::Bar;

pub fn run(config_flag: Option<&Path>, env: &Env, args: &CheckArgs) -> anyhow::Result<Exit> {
    let loaded = config::load(config_flag, env)?;
    let cfg = &loaded.config;
    let checks = checklist(cfg, &loaded.source)?;
    let order: Vec<String> = checks.iter().map(|c| c.meta.id.clone()).collect();
    let (to_run, skipped) = select(checks, &args.only)?;
    let min_score = args.min_score.unwrap_or(cfg.checklist.min_score);
    if !(0.0..=10.0).contains(&min_score) {
        let source = if args.min_score.is_some() {
            "--min-score".to_owned()
        } else {
            "[checklist] min_score".to_owned()
        };
        return Err(UsageError(format!("{source} = {min_score}: must be a score between 0 and 10")).into());
    }
    let options = RunOptions::now(args.timeout.unwrap_or(cfg.checklist.timeout));

    let progress = Arc::new(Bar::units("checking", to_run.len() as u64));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut results = runtime.block_on(prodready_checklist::run(&to_run, &options, progress.clone()));
    // Abandoned probes (a DNS lookup, a hung file read) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    progress.finish();
    results.extend(skipped);
    results.sort_by_key(|r| order.iter().position(|id| *id == r.meta.id));

    // A partial run (--only) would distort the trend, so only whole runs enter the history.
    let history_file =
        cfg.checklist.history_file.as_deref().filter(|_| !args.no_history && args.only.is_empty());
    let previous = history_file.and_then(|path| {
        history::last(path).unwrap_or_else(|e| {
            warn(&format!(
                "cannot read the history ({e}); set [checklist] history_file or pass --no-history"
            ));
            None
        })
    });
    let scorecard = prodready_checklist::score(&results, min_score);
    let generated_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let report = Report::new(generated_at.clone(), scorecard, previous, results);
    let format = if args.json { Format::Json } else { args.format };
    let rendered = match format {
        Format::Text => report.text(),
        Format::Markdown => report.markdown(),
        Format::Json => report.json(),
        Format::Junit => report.junit(),
        Format::Html => report.html(),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &rendered)
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
            let verdict = report
                .text()
                .lines()
                .find(|l| l.starts_with("READY") || l.starts_with("NOT READY"))
                .map(str::to_owned);
            writeln!(std::io::stderr(), "wrote {}; {}", path.display(), verdict.unwrap_or_default())?;
        }
        // A reader that went away (`| head`) does not change the verdict.
        None => match std::io::stdout().lock().write_all(rendered.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => {}
        },
    }
    let recorded =
        history_file.map(|path| history::append(path, &history::Entry::of(&report.scorecard, &generated_at)));
    if let Some(Err(e)) = recorded {
        warn(&format!(
            "cannot record this run in the history ({e}); set [checklist] history_file or pass --no-history"
        ));
    }
    Ok(match report.scorecard.verdict {
        Verdict::Ready => Exit::Success,
        Verdict::MustHaveFailed => Exit::MustHaveFailed,
        Verdict::BelowMinimum => Exit::BelowMinimum,
    })
}

fn warn(message: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {message}");
}

/// The checks to run: declared ones, else (or also, with `include_defaults`) the embedded defaults. A
/// declared check with a default's id replaces that default.
fn checklist(cfg: &Config, source: &Source) -> anyhow::Result<Vec<Check>> {
    let locate = |path: &Path, e: &prodready_checklist::Error| match e {
        prodready_checklist::Error::InvalidCheck { id, .. } | prodready_checklist::Error::DuplicateId(id) => {
            locate_id(path, id)
                .map_or_else(|| path.display().to_string(), |line| format!("{}:{line}", path.display()))
        }
        _ => path.display().to_string(),
    };
    let mut specs = cfg.checklist.checks.clone();
    let mut from_file = None;
    if let Some(file) = &cfg.checklist.file {
        let path = match source {
            Source::File(config) if file.is_relative() => config.parent().unwrap_or(Path::new("")).join(file),
            _ => file.clone(),
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| UsageError(format!("[checklist] file = {}: cannot read it: {e}", path.display())))?;
        let named: prodready_checklist::ChecklistFile = config::parse_as(&path, &text)?;
        from_file = Some((path, specs.len()));
        specs.extend(named.checks);
    }
    let declared = prodready_checklist::validate_all(&specs).map_err(|e| {
        // Name the file the faulty check came from.
        let id = match &e {
            prodready_checklist::Error::InvalidCheck { id, .. }
            | prodready_checklist::Error::DuplicateId(id) => Some(id),
            _ => None,
        };
        let in_file = from_file.as_ref().filter(|(_, first)| {
            id.is_some_and(|id| specs.iter().skip(*first).any(|s| &s.id == id))
                && !matches!(e, prodready_checklist::Error::DuplicateId(_))
        });
        let located = match (in_file, source) {
            (Some((path, _)), _) => locate(path, &e),
            (None, Source::File(path)) => locate(path, &e),
            (None, Source::Embedded) => "configuration".to_owned(),
        };
        UsageError(format!("{located}: checklist.checks: {e}"))
    })?;
    if !declared.is_empty() && !cfg.checklist.include_defaults {
        return Ok(declared);
    }
    let defaults = defaults::checks(&platform(cfg)).map_err(|e| {
        let key = match &e {
            prodready_checklist::Error::InvalidCheck { id, .. } => match id.as_str() {
                "postgres" => "[database] url",
                "loki" => "[logging] loki_url",
                "prometheus-targets" => "[alerts] prometheus_url",
                "otlp" => "[tracing] otlp_endpoint",
                _ => "[checklist]",
            },
            _ => "[checklist]",
        };
        UsageError(format!("{key}: {e}"))
    })?;
    let mut checks: Vec<Check> =
        defaults.into_iter().filter(|d| !declared.iter().any(|c| c.meta.id == d.meta.id)).collect();
    checks.extend(declared);
    Ok(checks)
}

/// The line of `id = "ID"` in the file, for error messages.
fn locate_id(path: &Path, id: &str) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .position(|l| {
            let l = l.trim();
            l.strip_prefix("id").map(str::trim_start).and_then(|r| r.strip_prefix('=')).is_some_and(|v| {
                let v = v.trim();
                v == format!("\"{id}\"") || v == format!("'{id}'")
            })
        })
        .map(|i| i + 1)
}

fn platform(cfg: &Config) -> Platform {
    let data_dir = cfg.general.data_dir.clone().unwrap_or_default();
    Platform {
        database_url: cfg.database_url().to_owned(),
        backup_store: cfg
            .backup
            .store
            .clone()
            .unwrap_or_else(|| data_dir.join("backups").display().to_string()),
        prometheus_url: cfg.alerts.prometheus_url.clone(),
        rules_dir: cfg.alerts.rules_dir.clone(),
        loki_url: cfg.logging.loki_url.clone().unwrap_or_else(|| "http://127.0.0.1:3100".to_owned()),
        otlp_endpoint: cfg
            .tracing
            .otlp_endpoint
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:4318".to_owned()),
        docs_dir: cfg.checklist.docs_dir.clone(),
        coverage_report: cfg.checklist.coverage_report.clone(),
        loadtest_summary: cfg
            .loadtest
            .summary
            .clone()
            .unwrap_or_else(|| data_dir.join("loadtest-summary.json")),
    }
}

/// Splits the checks into those to run and those `--only` leaves out (reported as skipped).
fn select(checks: Vec<Check>, only: &[String]) -> anyhow::Result<(Vec<Check>, Vec<CheckResult>)> {
    if only.is_empty() {
        return Ok((checks, Vec::new()));
    }
    if let Some(unknown) = only.iter().find(|id| !checks.iter().any(|c| &&c.meta.id == id)) {
        let ids: Vec<&str> = checks.iter().map(|c| c.meta.id.as_str()).collect();
        return Err(UsageError(format!(
            "--only {unknown}: no such check; the checks are: {}",
            ids.join(", ")
        ))
        .into());
    }
    let (run, skip): (Vec<Check>, Vec<Check>) = checks.into_iter().partition(|c| only.contains(&c.meta.id));
    let skipped = skip
        .into_iter()
        .map(|c| CheckResult {
            kind: c.kind.name().name().to_owned(),
            meta: c.meta,
            status: Status::Skip,
            summary: "not selected by --only".to_owned(),
            duration_ms: 0,
        })
        .collect();
    Ok((run, skipped))
}
