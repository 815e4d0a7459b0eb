//! `prodready check`: the readiness checklist, the scorecard and the launch gate.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use prodready_checklist::{Check, Report, RunOptions, StoreOpener, Verdict, history};

use crate::cli::{CheckArgs, Format};
use crate::config::{self, Config, Source};
use crate::env::Env;
use crate::error::UsageError;
use crate::exit::Exit;
use crate::progress::Bar;

pub(super) fn run(config_flag: Option<&Path>, env: &Env, args: &CheckArgs) -> anyhow::Result<Exit> {
    let loaded = config::load(config_flag, env)?;
    let cfg = &loaded.config;
    let checks = checklist(cfg, &loaded.source)?;
    let order: Vec<String> = checks.iter().map(|c| c.meta.id.clone()).collect();
    // `attestations` judges every manual check, also those --only leaves out.
    let whole = (!args.only.is_empty()).then(|| checks.clone());
    let (to_run, skipped) = prodready_checklist::select(checks, &args.only, "not selected by --only")
        .map_err(|e| UsageError(format!("--only {e}")))?;
    let min_score = args.min_score.unwrap_or(cfg.checklist.min_score);
    if !(0.0..=10.0).contains(&min_score) {
        let source = if args.min_score.is_some() {
            "--min-score".to_owned()
        } else {
            "[checklist] min_score".to_owned()
        };
        return Err(UsageError(format!("{source} = {min_score}: must be a score between 0 and 10")).into());
    }

    let progress = Arc::new(Bar::units("checking", to_run.len() as u64));
    let runtime = super::runtime(2)?;
    // `backup` checks open stores as `prodready backup` does: directories and S3 alike.
    let stores = {
        let (backup, env, handle) = (cfg.backup.clone(), env.clone(), runtime.handle().clone());
        StoreOpener::new(move |location| {
            super::backup::open_location(&backup, &env, &handle, location)
                .map_err(|e| prodready_stdx::error::chain(e.as_ref()).into())
        })
    };
    let options = RunOptions {
        stores,
        checklist: whole,
        ..RunOptions::now(args.timeout.unwrap_or(cfg.checklist.timeout))
    };
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
        Format::Junit => report.junit("prodready check"),
        Format::Html => report.html(),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &rendered)
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
            writeln!(std::io::stderr(), "wrote {}; {}", path.display(), report.verdict_line())?;
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
        let named: config::ChecklistFile = config::parse_as(&path, &text)?;
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
    let defaults = crate::default_checklist::checks(&platform(cfg)).map_err(|e| {
        let key = match &e {
            prodready_checklist::Error::InvalidCheck { id, .. } => match id.as_str() {
                "postgres" => "[database] url",
                "loki" => "[logging] loki_url",
                "prometheus-targets" => "[alerts] prometheus_url",
                "alerting" => "[alerts] alertmanager_url",
                "log-retention" => "[logging] loki_url",
                "otlp" => "[tracing] otlp_endpoint",
                _ => "[checklist]",
            },
            _ => "[checklist]",
        };
        UsageError(format!("{key}: {e}"))
    })?;
    Ok(prodready_checklist::merge(defaults, declared))
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

fn platform(cfg: &Config) -> crate::default_checklist::Platform {
    crate::default_checklist::Platform {
        database_url: cfg.database_url().to_owned(),
        backup_store: cfg.backup_store().to_owned(),
        prometheus_url: cfg.alerts.prometheus_url.clone(),
        alertmanager_url: cfg.alerts.alertmanager_url.clone(),
        log_retention_days: u32::try_from(cfg.logging.retention.as_secs() / 86_400).unwrap_or(u32::MAX),
        rules_dir: cfg.alerts.rules_dir.clone(),
        loki_url: cfg.logging.loki_url.clone().unwrap_or_else(|| config::LOCAL_LOKI_URL.to_owned()),
        otlp_endpoint: cfg
            .tracing
            .otlp_endpoint
            .clone()
            .unwrap_or_else(|| config::LOCAL_OTLP_ENDPOINT.to_owned()),
        docs_dir: cfg.checklist.docs_dir.clone(),
        coverage_report: cfg.checklist.coverage_report.clone(),
        frontend_coverage_report: cfg.checklist.frontend_coverage_report.clone(),
        scan_report: cfg.checklist.scan_report.clone(),
        ci_path: cfg.checklist.ci_path.clone(),
        dashboards_dir: cfg.checklist.dashboards_dir.clone(),
        loadtest_summary: cfg.loadtest_summary().to_path_buf(),
    }
}
