//! `prodready alerts ...`: generation, offline checks and unit tests of Prometheus rules.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use prodready_metrics_alerts::alertmanager::{self, AlertmanagerOptions};
use prodready_metrics_alerts::pack::{self, PackOptions};
use prodready_metrics_alerts::rules::RuleFile;
use prodready_metrics_alerts::{AlertsConfig, lint, promtool, slo};

use crate::cli::AlertsCommand;
use crate::config;
use crate::env::Env;
use crate::error::UsageError;
use crate::exit::Exit;

pub fn run(config_flag: Option<&Path>, env: &Env, cmd: &AlertsCommand) -> anyhow::Result<Exit> {
    let cfg = config::load(config_flag, env)?.config.alerts;
    match cmd {
        AlertsCommand::Generate { out } => {
            check_runbook(&cfg)?;
            for (path, text) in generated(&cfg)? {
                let path = out.join(path);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
                writeln!(std::io::stdout(), "wrote {}", path.display())?;
            }
            Ok(Exit::Success)
        }
        AlertsCommand::Check { files, promtool } => check(&cfg, files, promtool.as_deref()),
        AlertsCommand::Test { promtool } => {
            let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
            let options = pack_options(&cfg);
            std::fs::write(
                dir.path().join("prodready.rules.yml"),
                pack::rule_file(&options).to_yaml("built-in pack"),
            )?;
            let tests = dir.path().join("prodready.test.yml");
            std::fs::write(&tests, pack::unit_tests(&options, "prodready.rules.yml"))?;
            let outcome = promtool::test_rules(&promtool_path(promtool.as_deref()), &[&tests])?;
            writeln!(std::io::stdout(), "{}", outcome.output)?;
            Ok(if outcome.ok { Exit::Success } else { Exit::Failure })
        }
    }
}

/// When the runbook is a local file, every generated alert must have its `### Name` section there (the
/// target of its runbook_url): a link to nowhere is worse than none.
fn check_runbook(cfg: &AlertsConfig) -> anyhow::Result<()> {
    let path = Path::new(&cfg.runbook_base_url);
    if cfg.runbook_base_url.contains("://") || !path.is_file() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let sections: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("### ")).map(str::trim).collect();
    let mut names: Vec<String> = pack::alerts(&pack_options(cfg)).iter().map(|a| a.name.to_owned()).collect();
    if !cfg.slos.is_empty() {
        names.push("SloErrorBudgetBurn".to_owned());
    }
    let missing: Vec<&str> = names.iter().map(String::as_str).filter(|n| !sections.contains(n)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(UsageError(format!(
        "{}: no runbook section for {}; add a `### <AlertName>` section for each (see docs/runbook.md)",
        path.display(),
        missing.join(", ")
    ))
    .into())
}

fn pack_options(cfg: &AlertsConfig) -> PackOptions {
    PackOptions { scrape_interval: cfg.scrape_interval, runbook_base_url: cfg.runbook_base_url.clone() }
}

fn promtool_path(flag: Option<&Path>) -> PathBuf {
    flag.map_or_else(|| PathBuf::from("promtool"), Path::to_path_buf)
}

/// Every generated file, as (path under the output directory, contents).
pub fn generated(cfg: &AlertsConfig) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let options = pack_options(cfg);
    let mut files = vec![
        (
            PathBuf::from("prometheus/rules/prodready.rules.yml"),
            pack::rule_file(&options).to_yaml("built-in alert pack"),
        ),
        (
            PathBuf::from("prometheus/tests/prodready.test.yml"),
            pack::unit_tests(&options, "../rules/prodready.rules.yml"),
        ),
        (
            PathBuf::from("alertmanager/alertmanager.yml"),
            alertmanager::config(&AlertmanagerOptions {
                slack_webhook_file: cfg.slack.webhook_file.clone(),
                critical_channel: cfg.slack.critical_channel.clone(),
                warning_channel: cfg.slack.warning_channel.clone(),
            }),
        ),
    ];
    for (name, dashboard) in prodready_metrics_alerts::grafana::dashboards() {
        let mut json = serde_json::to_string_pretty(&dashboard).expect("a dashboard serializes");
        json.push('\n');
        files.push((PathBuf::from("grafana/dashboards").join(name), json));
    }
    if !cfg.slos.is_empty() {
        let rules = slo::rule_file(&cfg.slos, &cfg.runbook_base_url)
            .map_err(|e| UsageError(format!("[[alerts.slos]]: {e}")))?;
        files.push((PathBuf::from("prometheus/rules/slo.rules.yml"), rules.to_yaml("SLO burn-rate rules")));
    }
    Ok(files)
}

fn check(cfg: &AlertsConfig, files: &[PathBuf], promtool_flag: Option<&Path>) -> anyhow::Result<Exit> {
    let files: Vec<PathBuf> = if files.is_empty() {
        let dir = &cfg.rules_dir;
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| {
                format!(
                    "cannot read [alerts] rules_dir {}; run `prodready alerts generate` first",
                    dir.display()
                )
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
            .collect();
        found.sort();
        found
    } else {
        files.to_vec()
    };
    if files.is_empty() {
        return Err(UsageError("no rule files to check".to_owned()).into());
    }
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for file in &files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let problems = match RuleFile::from_yaml(&text) {
            Ok(rules) => lint::lint(&rules, cfg.scrape_interval).iter().map(ToString::to_string).collect(),
            Err(e) => vec![format!("not a Prometheus rule file: {e}")],
        };
        failed |= !problems.is_empty();
        for p in &problems {
            writeln!(out, "{}: {p}", file.display())?;
        }
    }
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    match promtool::check_rules(&promtool_path(promtool_flag), &refs) {
        Ok(outcome) if outcome.ok => writeln!(out, "promtool check rules --lint=all --lint-fatal: ok")?,
        Ok(outcome) => {
            failed = true;
            writeln!(out, "promtool check rules --lint=all --lint-fatal:\n{}", outcome.output)?;
        }
        Err(prodready_metrics_alerts::Error::PromtoolMissing) if promtool_flag.is_none() => {
            writeln!(std::io::stderr(), "note: promtool is not installed, so only the offline checks ran")?;
        }
        Err(e) => return Err(e.into()),
    }
    if !failed {
        writeln!(out, "{} rule files: no problems", files.len())?;
    }
    Ok(if failed { Exit::Failure } else { Exit::Success })
}
