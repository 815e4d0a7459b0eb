use std::path::Path;

use super::Finding;
use crate::model::Status;

async fn read(path: &Path, what: &str, fix: &str) -> Result<String, Finding> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Finding::fail(format!("no {what} at {}{fix}", path.display())))
        }
        Err(e) => Err(Finding::error(format!("{}: {e}", path.display()))),
    }
}

/// The document exists, is not empty and has a heading for every required section.
pub(super) async fn docs(path: &Path, sections: &[String]) -> Finding {
    let text = match read(path, "document", "").await {
        Ok(t) => t,
        Err(f) => return f,
    };
    let headings = headings(&text);
    if text.trim().is_empty() {
        return Finding::fail(format!("{} is empty", path.display()));
    }
    let missing: Vec<&str> = sections
        .iter()
        .filter(|s| !headings.iter().any(|h| h.contains(&s.to_lowercase())))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Finding::pass(format!(
            "{} has {} headings, every required section present",
            path.display(),
            headings.len()
        ))
    } else {
        Finding::fail(format!("{} lacks sections: {}", path.display(), missing.join(", ")))
    }
}

/// ATX headings (`#` to `######` then a space), outside fenced code blocks.
fn headings(text: &str) -> Vec<String> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            (Some(_), _) => {}
            (None, None) => {
                let level = line.chars().take_while(|c| *c == '#').count();
                if (1..=6).contains(&level) && line[level..].starts_with([' ', '\t']) {
                    out.push(line[level..].trim().trim_end_matches('#').trim().to_lowercase());
                }
            }
        }
    }
    out
}

/// Line coverage from an lcov file (`LF`/`LH` records) or `cargo llvm-cov --json` output.
pub(super) async fn coverage(path: &Path, min_percent: f64) -> Finding {
    let text =
        match read(path, "coverage report", " (write one with `cargo llvm-cov --lcov --output-path FILE`)")
            .await
        {
            Ok(t) => t,
            Err(f) => return f,
        };
    let percent = if text.trim_start().starts_with('{') {
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.pointer("/data/0/totals/lines/percent").and_then(serde_json::Value::as_f64))
    } else {
        let sum = |prefix: &str| -> u64 {
            text.lines()
                .filter_map(|l| l.strip_prefix(prefix))
                .filter_map(|n| n.trim().parse::<u64>().ok())
                .sum()
        };
        let (found, hit) = (sum("LF:"), sum("LH:"));
        #[allow(clippy::cast_precision_loss)]
        (found > 0).then(|| 100.0 * hit as f64 / found as f64)
    };
    let Some(percent) = percent else {
        return Finding::error(format!(
            "{}: neither an lcov report nor llvm-cov JSON with line totals",
            path.display()
        ));
    };
    if percent >= min_percent {
        Finding::pass(format!("{percent:.1}% of lines covered (minimum {min_percent}%)"))
    } else {
        Finding::fail(format!("{percent:.1}% of lines covered, below {min_percent}%"))
    }
}

/// Every report reaches its minimum; the evidence names each (by its name when given). The worst status
/// wins: an unreadable report is an error, one below its minimum a failure.
pub(super) async fn coverage_all(reports: &[crate::spec::CoverageReport]) -> Finding {
    if let [only] = reports
        && only.name.is_none()
    {
        return coverage(&only.path, only.min_percent).await;
    }
    let mut status = Status::Pass;
    let mut parts = Vec::new();
    for report in reports {
        let finding = coverage(&report.path, report.min_percent).await;
        let rank = |s: Status| match s {
            Status::Pass => 0,
            Status::Fail => 1,
            _ => 2,
        };
        if rank(finding.status) > rank(status) {
            status = finding.status;
        }
        let name = report.name.clone().unwrap_or_else(|| report.path.display().to_string());
        parts.push(format!("{name}: {}", finding.summary));
    }
    Finding::new(status, parts.join("; "))
}

/// Every threshold in a k6-format summary held, and the summary was written within `max_age`. Reads
/// both `handleSummary` data (`{"ok": bool}` per threshold) and `--summary-export` files (`true` when
/// the threshold failed).
pub(super) async fn loadtest(path: &Path, max_age: std::time::Duration, now_unix: i64) -> Finding {
    let text = match read(path, "load-test summary", " (run a load test that writes one)").await {
        Ok(t) => t,
        Err(f) => return f,
    };
    let age = age_of(path, now_unix).await;
    if age > max_age {
        return Finding::fail(format!(
            "{} is {} old (at most {} allowed): run the load test again",
            path.display(),
            humantime::format_duration(std::time::Duration::from_secs(age.as_secs() / 3600 * 3600)),
            humantime::format_duration(max_age)
        ));
    }
    let summary: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return Finding::error(format!("{}: not JSON: {e}", path.display())),
    };
    let Some(metrics) = summary.get("metrics").and_then(serde_json::Value::as_object) else {
        return Finding::error(format!(
            "{}: no `metrics` object; is it a k6-format summary?",
            path.display()
        ));
    };
    let mut total = 0;
    let mut failed = Vec::new();
    for (metric, body) in metrics {
        for (expr, result) in
            body.get("thresholds").and_then(serde_json::Value::as_object).into_iter().flatten()
        {
            total += 1;
            let ok = match result {
                serde_json::Value::Bool(crossed) => !crossed,
                other => other.get("ok").and_then(serde_json::Value::as_bool).unwrap_or(false),
            };
            if !ok {
                failed.push(format!("{metric} {expr}"));
            }
        }
    }
    failed.sort();
    match (total, failed.is_empty()) {
        (0, _) => {
            Finding::new(Status::Warn, format!("{}: the load test declared no thresholds", path.display()))
        }
        (_, true) => Finding::pass(format!("all {total} thresholds held")),
        (_, false) => {
            Finding::fail(format!("{} of {total} thresholds failed: {}", failed.len(), failed.join(", ")))
        }
    }
}

/// Security scans' SARIF reports (gitleaks, osv-scanner, Semgrep, `cargo deny`...): `path` is one
/// report, or a directory whose `*.sarif` files are all judged (a CI job writes one per scan). Each must
/// be written within `max_age` of `now_unix` and hold no result at level `error` or `warning` (SARIF's
/// default level is `warning`; `note` results are counted, not failing). Each kind of scan in `scans`
/// (`secrets`, `dependencies`) must be among the reports' runs (see [`scan_kind`]).
pub(super) async fn scan_report(
    path: &Path,
    max_age: std::time::Duration,
    scans: &[String],
    now_unix: i64,
) -> Finding {
    const FIX: &str = " (write SARIF reports of a secret scan and a dependency scan there)";
    let files = if tokio::fs::metadata(path).await.is_ok_and(|m| m.is_dir()) {
        let mut files = Vec::new();
        let mut entries = match tokio::fs::read_dir(path).await {
            Ok(entries) => entries,
            Err(e) => return Finding::error(format!("{}: {e}", path.display())),
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let p = entry.path();
            if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("sarif")) {
                files.push(p);
            }
        }
        if files.is_empty() {
            return Finding::fail(format!("no *.sarif scan report in {}{FIX}", path.display()));
        }
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut tools = Vec::new();
    let mut kinds = Vec::new();
    let mut failing = Vec::new();
    let mut notes = 0;
    for file in &files {
        let text = match read(file, "scan report", FIX).await {
            Ok(t) => t,
            Err(f) => return f,
        };
        match sarif_results(file, &text, max_age, now_unix).await {
            Ok(report) => {
                tools.extend(report.tools);
                kinds.extend(report.kinds);
                failing.extend(report.failing);
                notes += report.notes;
            }
            Err(f) => return f,
        }
    }
    tools.dedup();
    let missing: Vec<&str> = scans.iter().map(String::as_str).filter(|scan| !kinds.contains(scan)).collect();
    if !missing.is_empty() {
        return Finding::fail(format!(
            "no {} scan among the reports in {} (found: {}){FIX}",
            missing.join(" or "),
            path.display(),
            if tools.is_empty() { "none".to_owned() } else { tools.join(", ") }
        ));
    }
    let tools = if tools.is_empty() { "the scanner".to_owned() } else { tools.join(", ") };
    let reports = if files.len() > 1 { format!(" ({} reports)", files.len()) } else { String::new() };
    if failing.is_empty() {
        let notes = if notes == 0 { String::new() } else { format!(" ({notes} notes)") };
        return Finding::pass(format!("{tools}: no findings{notes}{reports}"));
    }
    let shown: Vec<&str> = failing.iter().take(5).map(String::as_str).collect();
    let more = if failing.len() > 5 { format!(" and {} more", failing.len() - 5) } else { String::new() };
    Finding::fail(format!("{tools}: {} findings: {}{more}{reports}", failing.len(), shown.join(", ")))
}

/// Grafana dashboards in `dir`: every `*.json` there must parse, and at least one must be a dashboard
/// (an object with a `title` and a non-empty `panels` list, rows' panels included).
pub(super) async fn dashboards(dir: &Path) -> Finding {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Finding::fail(format!("no dashboard directory at {}", dir.display()));
        }
        Err(e) => return Finding::error(format!("{}: {e}", dir.display())),
    };
    let mut files = Vec::new();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let p = entry.path();
        if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            files.push(p);
        }
    }
    files.sort();
    let mut found = Vec::new();
    let mut panels = 0;
    for file in &files {
        let text = match tokio::fs::read_to_string(file).await {
            Ok(t) => t,
            Err(e) => return Finding::error(format!("{}: {e}", file.display())),
        };
        let doc: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => return Finding::fail(format!("{}: not JSON: {e}", file.display())),
        };
        // Provisioned files hold the dashboard itself; exports from the UI wrap it in `dashboard`.
        let board = doc.get("dashboard").filter(|d| d.is_object()).unwrap_or(&doc);
        let count = count_panels(board.get("panels"));
        if let (Some(title), true) = (board.get("title").and_then(serde_json::Value::as_str), count > 0) {
            found.push(title.to_owned());
            panels += count;
        }
    }
    if found.is_empty() {
        return Finding::fail(format!(
            "no Grafana dashboard (a JSON file with a title and panels) in {}",
            dir.display()
        ));
    }
    Finding::pass(format!("{} dashboards, {panels} panels: {}", found.len(), found.join(", ")))
}

/// Panels of a dashboard, the panels of collapsed rows included; rows themselves do not count.
fn count_panels(panels: Option<&serde_json::Value>) -> usize {
    panels.and_then(serde_json::Value::as_array).map_or(0, |list| {
        list.iter()
            .map(|p| {
                if p.get("type").and_then(serde_json::Value::as_str) == Some("row") {
                    count_panels(p.get("panels"))
                } else {
                    1
                }
            })
            .sum()
    })
}

/// How long ago the file was last written (its modification time), as of `now_unix`.
async fn age_of(path: &Path, now_unix: i64) -> std::time::Duration {
    let modified = tokio::fs::metadata(path)
        .await
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    std::time::Duration::from_secs(u64::try_from(now_unix.saturating_sub(modified)).unwrap_or(0))
}

/// What one SARIF log holds for the gate.
struct SarifResults {
    tools: Vec<String>,
    /// The kind of each run that is a secret or a dependency scan (see [`scan_kind`]).
    kinds: Vec<&'static str>,
    /// `rule at path:line` of each result at level `error` or `warning`.
    failing: Vec<String>,
    notes: usize,
}

async fn sarif_results(
    path: &Path,
    text: &str,
    max_age: std::time::Duration,
    now_unix: i64,
) -> Result<SarifResults, Finding> {
    let sarif: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Finding::error(format!("{}: not SARIF JSON: {e}", path.display())))?;
    let Some(runs) = sarif.get("runs").and_then(serde_json::Value::as_array) else {
        return Err(Finding::error(format!("{}: not a SARIF log (no `runs`)", path.display())));
    };
    // No run is no scan: a clean report must come from a scanner that ran.
    if runs.is_empty() {
        return Err(Finding::error(format!("{}: the SARIF log holds no run: no scan ran", path.display())));
    }
    // A run whose invocation says it did not finish proves nothing, findings or not.
    if let Some(run) = runs.iter().find(|r| {
        r.get("invocations").and_then(serde_json::Value::as_array).is_some_and(|invocations| {
            invocations
                .iter()
                .any(|i| i.get("executionSuccessful").and_then(serde_json::Value::as_bool) == Some(false))
        })
    }) {
        let tool =
            run.pointer("/tool/driver/name").and_then(serde_json::Value::as_str).unwrap_or("the scanner");
        return Err(Finding::fail(format!(
            "{}: {tool} did not finish (executionSuccessful is false): run it again",
            path.display()
        )));
    }
    let age = age_of(path, now_unix).await;
    let kinds = runs.iter().filter_map(scan_kind).collect();
    let tools: Vec<String> = runs
        .iter()
        .filter_map(|r| r.pointer("/tool/driver/name").and_then(serde_json::Value::as_str))
        .map(str::to_owned)
        .collect();
    if age > max_age {
        let shown = if tools.is_empty() { "the scanner".to_owned() } else { tools.join(", ") };
        return Err(Finding::fail(format!(
            "{} is {} old (at most {} allowed): run {shown} again",
            path.display(),
            humantime::format_duration(std::time::Duration::from_secs(age.as_secs() / 3600 * 3600)),
            humantime::format_duration(max_age)
        )));
    }
    let mut failing = Vec::new();
    let mut notes = 0;
    for result in
        runs.iter().flat_map(|r| r.get("results").and_then(serde_json::Value::as_array).into_iter().flatten())
    {
        let level = result.get("level").and_then(serde_json::Value::as_str).unwrap_or("warning");
        if level == "error" || level == "warning" {
            let rule = result.get("ruleId").and_then(serde_json::Value::as_str).unwrap_or("a rule");
            let place = result
                .pointer("/locations/0/physicalLocation/artifactLocation/uri")
                .and_then(serde_json::Value::as_str)
                .map(|uri| {
                    let line = result
                        .pointer("/locations/0/physicalLocation/region/startLine")
                        .and_then(serde_json::Value::as_u64);
                    line.map_or_else(|| uri.to_owned(), |l| format!("{uri}:{l}"))
                })
                .unwrap_or_default();
            failing.push(if place.is_empty() { rule.to_owned() } else { format!("{rule} at {place}") });
        } else {
            notes += 1;
        }
    }
    Ok(SarifResults { tools, kinds, failing, notes })
}

/// The kind of scan a SARIF run is, from its automation id (prodready writes `prodready/scan/secrets/`
/// and `prodready/scan/deps/`) or its tool's name: `secrets` (gitleaks, TruffleHog, detect-secrets,
/// ripsecrets) or `dependencies` (osv-scanner, cargo-deny, cargo-audit, Trivy, Grype, Snyk,
/// Dependency-Check). `None` for another scanner (Semgrep's code findings are neither).
fn scan_kind(run: &serde_json::Value) -> Option<&'static str> {
    let text = |pointer: &str| run.pointer(pointer).and_then(serde_json::Value::as_str).unwrap_or("");
    let about = format!("{} {}", text("/automationDetails/id"), text("/tool/driver/name")).to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| about.contains(w));
    if has(&["/secrets/", "secret", "gitleaks", "trufflehog", "ripsecrets"]) {
        Some("secrets")
    } else if has(&["/deps/", "depend", "osv", "cargo-deny", "cargo-audit", "trivy", "grype", "snyk"]) {
        Some("dependencies")
    } else {
        None
    }
}

/// What each CI step looks like in a workflow file: commands of the common tools, lower-case.
const CI_STEPS: &[(&str, &[&str])] = &[
    (
        "test",
        &[
            "cargo test",
            "cargo nextest",
            "xtask test",
            "xtask ci",
            "npm test",
            "npm run test",
            "pnpm test",
            "yarn test",
            "pytest",
            "go test",
            "mvn test",
            "gradle test",
            "make test",
            "vitest",
            "jest",
        ],
    ),
    (
        "scan",
        &[
            "gitleaks",
            "trufflehog",
            "prodready scan",
            "cargo audit",
            "cargo deny",
            "xtask audit",
            "npm audit",
            "osv-scanner",
            "trivy",
            "semgrep",
            "snyk",
            "codeql",
        ],
    ),
    (
        "coverage",
        &[
            "llvm-cov",
            "tarpaulin",
            "xtask coverage",
            "--coverage",
            "coverage run",
            "jacoco",
            "nyc ",
            "c8 ",
            "codecov",
        ],
    ),
    (
        "deploy",
        &[
            "kubectl apply",
            "helm upgrade",
            "terraform apply",
            "docker push",
            "update-service",
            "xtask dist",
            // Deployment commands and release tools, not the bare words (`cargo build --release`, a job
            // named "deploy-docs" that builds them).
            "make deploy",
            "npm run deploy",
            "fly deploy",
            "flyctl deploy",
            "vercel deploy",
            "firebase deploy",
            "serverless deploy",
            "kamal deploy",
            "gcloud run deploy",
            "gcloud app deploy",
            "eb deploy",
            "./deploy",
            "deploy.sh",
            "aws ecs update",
            "argocd app sync",
            "goreleaser",
            "semantic-release",
            "cargo release",
            "gh release create",
            "environment: production",
        ],
    ),
];

/// `line` without its YAML/shell comment (a `#` at the start or after white space).
fn without_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let at = (0..bytes.len()).find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()));
    at.map_or(line, |i| &line[..i])
}

/// The CI configuration at `path` (a file, or a directory of workflow files such as `.github/workflows`)
/// runs each of `steps` (`test`, `scan`, `coverage`, `deploy`), recognised by the commands of the usual
/// tools; the evidence names the command found for each.
pub(super) async fn ci_workflow(path: &Path, steps: &[String]) -> Finding {
    let mut files = Vec::new();
    match tokio::fs::metadata(path).await {
        Ok(meta) if meta.is_dir() => {
            let Ok(mut entries) = tokio::fs::read_dir(path).await else {
                return Finding::error(format!("{}: cannot list the directory", path.display()));
            };
            while let Ok(Some(entry)) = entries.next_entry().await {
                files.push(entry.path());
            }
            files.sort();
        }
        Ok(_) => files.push(path.to_path_buf()),
        Err(_) => return Finding::fail(format!("no CI configuration at {}", path.display())),
    }
    // In a directory, the workflow files (YAML); a file named in `path` is read whatever it is.
    if files.len() > 1 || path.is_dir() {
        files.retain(|f| {
            f.extension().is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"))
        });
    }
    let mut text = String::new();
    for file in &files {
        if let Ok(content) = tokio::fs::read_to_string(file).await {
            // Comments are not steps: `# TODO: cargo test, deploy` runs nothing.
            for line in content.lines() {
                text.push_str(&without_comment(line).to_lowercase());
                text.push('\n');
            }
        }
    }
    if text.trim().is_empty() {
        return Finding::fail(format!("no CI configuration at {}", path.display()));
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for step in steps {
        let patterns = CI_STEPS.iter().find(|(name, _)| *name == step.as_str()).map_or(&[][..], |(_, p)| *p);
        match patterns.iter().find(|p| text.contains(*p)) {
            Some(p) => found.push(format!("{step} ({})", p.trim())),
            None => missing.push(step.as_str()),
        }
    }
    let files = files.len();
    if missing.is_empty() {
        Finding::pass(format!("{} ({files} files) runs {}", path.display(), found.join(", ")))
    } else {
        let has = if found.is_empty() { String::new() } else { format!(" (it runs {})", found.join(", ")) };
        Finding::fail(format!(
            "{} ({files} files) runs no {} step{has}",
            path.display(),
            missing.join(", no ")
        ))
    }
}
