use std::path::{Path, PathBuf};
use std::time::Duration;

use prodready_metrics_alerts::rules::RuleFile;
use prodready_metrics_alerts::{lint, promtool};

use super::Finding;
use crate::model::Status;

/// The scrape interval rules are linted for (rate() ranges of at least 4 of them).
/// The scrape interval rules are linted against: the rule pack's own default.
fn scrape_interval() -> Duration {
    prodready_metrics_alerts::pack::PackOptions::default().scrape_interval
}

/// Every rule file under `path` parses, passes the offline linter and, when promtool is installed,
/// `promtool check rules --lint=all --lint-fatal`. Without promtool the result is a warning.
pub(super) async fn probe(path: &Path, promtool: &Path) -> Finding {
    let (path, promtool) = (path.to_path_buf(), promtool.to_path_buf());
    tokio::task::spawn_blocking(move || check(&path, &promtool))
        .await
        .unwrap_or_else(|e| Finding::error(format!("the rule check stopped: {e}")))
}

fn check(path: &Path, promtool_path: &Path) -> Finding {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
            .collect();
        files.sort();
        files
    } else if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        return Finding::fail(format!("no rule files at {}", path.display()));
    };
    if files.is_empty() {
        return Finding::fail(format!("no .yml rule files in {}", path.display()));
    }
    let mut problems = Vec::new();
    let mut alerts = 0;
    for file in &files {
        let too_large = std::fs::metadata(file)
            .is_ok_and(|m| m.len() > prodready_metrics_alerts::rules::MAX_FILE_BYTES as u64);
        let parsed = if too_large {
            Err(format!(
                "larger than {} MiB: not a rule file",
                prodready_metrics_alerts::rules::MAX_FILE_BYTES >> 20
            ))
        } else {
            std::fs::read_to_string(file)
                .map_err(|e| e.to_string())
                .and_then(|t| RuleFile::from_yaml(&t).map_err(|e| format!("not a rule file: {e}")))
        };
        match parsed {
            Err(e) => problems.push(format!("{}: {e}", file.display())),
            Ok(rules) => {
                alerts += rules.alerts().count();
                let name = file.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                problems.extend(lint::lint(&rules, scrape_interval()).iter().map(|p| format!("{name}: {p}")));
            }
        }
    }
    if !problems.is_empty() {
        let shown: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
        let more = problems.len().saturating_sub(3);
        let tail = if more > 0 { format!(" (and {more} more)") } else { String::new() };
        return Finding::fail(format!("{} problems: {}{tail}", problems.len(), shown.join("; ")));
    }
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    match promtool::check_rules(promtool_path, &refs) {
        Ok(outcome) if outcome.ok => Finding::pass(format!(
            "{} files, {alerts} alerts: offline checks and promtool --lint=all pass",
            files.len()
        )),
        Ok(outcome) => {
            let first = outcome
                .output
                .lines()
                .find(|l| l.contains("FAILED") || l.contains("error"))
                .unwrap_or("failed");
            Finding::fail(format!("promtool check rules: {}", first.trim()))
        }
        Err(prodready_metrics_alerts::Error::PromtoolMissing) => Finding::new(
            Status::Warn,
            format!(
                "{} files, {alerts} alerts pass the offline checks; promtool is not installed",
                files.len()
            ),
        ),
        Err(e) => Finding::error(e.to_string()),
    }
}
