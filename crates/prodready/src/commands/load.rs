//! `prodready load run / validate / export-k6 / merge`: k6's scenarios and thresholds on our generator;
//! segments of one run (`--segment I/N --result FILE`) merged into the whole run's summary.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use prodready_loadtest::{Plan, Report, RunOptions};

use crate::cli::{LoadCommand, LoadOutput};
use crate::config;
use crate::env::Env;
use crate::error::UsageError;
use crate::exit::Exit;
use crate::progress::Bar;

pub(super) fn run(config_flag: Option<&Path>, env: &Env, cmd: &LoadCommand) -> anyhow::Result<Exit> {
    let cfg = config::load(config_flag, env)?.config;
    match cmd {
        LoadCommand::Validate { scenario } => {
            let path = scenario_path(scenario.as_deref(), cfg.loadtest.scenario.as_deref())?;
            let plan = read_plan(&path)?;
            let _ = writeln!(
                std::io::stderr(),
                "{}: {} scenario(s), {} threshold(s), at most {} and {} VUs",
                path.display(),
                plan.scenarios.len(),
                plan.thresholds.iter().map(|(_, t)| t.len()).sum::<usize>(),
                humantime::format_duration(plan.max_duration()),
                plan.max_vus()
            );
            Ok(Exit::Success)
        }
        LoadCommand::ExportK6 { scenario } => {
            let path = scenario_path(scenario.as_deref(), cfg.loadtest.scenario.as_deref())?;
            let plan = read_plan(&path)?;
            let source = path
                .file_name()
                .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            write!(std::io::stdout(), "{}", prodready_loadtest::export_k6(&plan, &source))?;
            Ok(Exit::Success)
        }
        LoadCommand::Run { scenario, summary_export, out, segment, result, cacert } => {
            let path = scenario_path(scenario.as_deref(), cfg.loadtest.scenario.as_deref())?;
            let plan = Arc::new(read_plan(&path)?);
            let segment = segment.unwrap_or_default();
            segment.check(&plan).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
            // A segment's summary is a part of the run: it goes where the checklist reads only when asked.
            let export = match summary_export {
                Some(file) => Some(file.clone()),
                None if segment.is_whole() => Some(cfg.loadtest_summary().to_path_buf()),
                None => None,
            };
            let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
            let bar = Arc::new(Bar::units("load", plan.max_duration().as_secs().max(1)));
            let progress_bar = bar.clone();
            let options = RunOptions {
                progress: Some(Box::new(move |p: &prodready_loadtest::Progress| {
                    progress_bar.set_position(p.elapsed.as_secs());
                    progress_bar.message(format!(
                        "{} requests, {} failed, {} iterations, {} dropped, {}/{} VUs",
                        p.requests, p.failed_requests, p.iterations, p.dropped_iterations, p.vus, p.vus_max
                    ));
                })),
                shards: workers,
                segment,
                tls_roots: tls_roots(cacert.as_deref())?,
                interrupt: Some(Box::pin(super::interrupted())),
                ..RunOptions::default()
            };
            let report = super::runtime(workers.max(2))?.block_on(prodready_loadtest::run(plan, options));
            bar.finish();
            if let Some(file) = result {
                let mut json = serde_json::to_string(&report.result.to_json())?;
                json.push('\n');
                write_file(file, json.as_bytes(), "the result")?;
                let what = if segment.is_whole() { String::new() } else { format!("segment {segment} ") };
                let _ = writeln!(std::io::stderr(), "{what}result written to {}", file.display());
            }
            // An interrupted run proves nothing to the checklist: its summary goes only where asked.
            let export = if report.interrupted && summary_export.is_none() { None } else { export };
            let exit = finish(&report, export.as_deref(), *out)?;
            if report.interrupted {
                let _ = writeln!(
                    std::io::stderr(),
                    "interrupted: the summary covers what ran until the signal (not written for the checklist: \
                     --summary-export FILE keeps it)"
                );
                return Ok(Exit::Interrupted);
            }
            if segment.is_whole() {
                Ok(exit)
            } else {
                let _ = writeln!(
                    std::io::stderr(),
                    "segment {segment} done: the run's thresholds are judged by `prodready load merge` over every segment's result"
                );
                Ok(Exit::Success)
            }
        }
        LoadCommand::Merge { results, summary_export, out } => {
            let mut read = Vec::new();
            for file in results {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| UsageError(format!("{}: cannot read the result: {e}", file.display())))?;
                let name = file.display().to_string();
                let result = prodready_loadtest::RunResult::from_json(&name, &text)
                    .map_err(|e| UsageError(e.to_string()))?;
                read.push((name, result));
            }
            let report = prodready_loadtest::merge(&read).map_err(|e| UsageError(e.to_string()))?;
            let _ = writeln!(std::io::stderr(), "merged {} segment result(s)", read.len());
            let export = summary_export.clone().unwrap_or_else(|| cfg.loadtest_summary().to_path_buf());
            finish(&report, Some(&export), *out)
        }
    }
}

fn write_file(file: &Path, bytes: &[u8], what: &str) -> anyhow::Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    prodready_stdx::fs::write_atomic(file, bytes)
        .with_context(|| format!("cannot write {what} to {}", file.display()))
}

/// Writes the summary export, prints the summary and judges the thresholds (exit 99 when one failed).
fn finish(report: &Report, export: Option<&Path>, out: LoadOutput) -> anyhow::Result<Exit> {
    let summary = &report.summary;
    if let Some(export) = export {
        let mut json = serde_json::to_string_pretty(&summary.to_export_json())?;
        json.push('\n');
        write_file(export, json.as_bytes(), "the summary")?;
    }
    match out {
        LoadOutput::Text => write!(std::io::stdout(), "{}", summary.to_text())?,
        LoadOutput::Json => {
            writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&summary.to_json())?)?;
        }
    }
    let mut err = std::io::stderr();
    if let Some(export) = export {
        let _ = writeln!(err, "summary written to {}", export.display());
    }
    if let Some(threshold) = &report.aborted_by {
        let _ = writeln!(err, "aborted: the threshold {threshold} failed (abortOnFail)");
    }
    // An aborted run failed its aborting threshold (the summary marks it so): exit 99, as k6.
    if report.thresholds_ok() {
        Ok(Exit::Success)
    } else {
        let _ = writeln!(err, "thresholds failed: {}", summary.failed_thresholds().join(", "));
        Ok(Exit::ThresholdsFailed)
    }
}

fn scenario_path(flag: Option<&Path>, configured: Option<&Path>) -> Result<PathBuf, UsageError> {
    flag.or(configured).map(Path::to_path_buf).ok_or_else(|| {
        UsageError(
            "no scenario file: pass one (prodready load run FILE) or set [loadtest] scenario".to_owned(),
        )
    })
}

/// Reads and validates a scenario file; data files it names are read relative to it.
fn read_plan(path: &Path) -> Result<Plan, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("{}: cannot read the scenario file: {e}", path.display())))?;
    let mut read = |p: &Path| std::fs::read_to_string(p);
    prodready_loadtest::parse(path, &text, &mut read).map_err(|e| UsageError(e.to_string()))
}

/// The CA certificates https targets must chain to: the system's (as `SSL_CERT_FILE`/`SSL_CERT_DIR` or
/// the usual places say) and those of `--cacert`.
fn tls_roots(cacert: Option<&Path>) -> anyhow::Result<Vec<Vec<u8>>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let mut roots: Vec<Vec<u8>> =
        rustls_native_certs::load_native_certs().certs.into_iter().map(|c| c.to_vec()).collect();
    if let Some(path) = cacert {
        let shown = path.display();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| UsageError(format!("--cacert {shown}: cannot read it: {e}")))?
            .collect::<Result<_, _>>()
            .map_err(|e| UsageError(format!("--cacert {shown}: not a PEM certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(UsageError(format!("--cacert {shown}: holds no PEM certificate")).into());
        }
        roots.extend(certs.into_iter().map(|c| c.to_vec()));
    }
    Ok(roots)
}
