//! The status page: one self-contained HTML document (inline CSS, no script, no external asset), served
//! with a Content-Security-Policy that forbids loading anything.

use std::fmt::Write as _;
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::status::{JobView, RunRecord, Section};

/// The page's Content-Security-Policy: nothing may be fetched, inline styles only.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:14px 24px}
header h1{font-size:18px;margin:0 0 4px}
header p{margin:0;color:#c9cfdb}
main{padding:8px 24px 32px;max-width:1200px}
h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e8}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eceef2;vertical-align:top}
th{background:#eef0f4;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.success,.leader,.pass{background:#dff3e4;color:#17622f}
.failure,.timeout,.abandoned,.unreachable,.fail{background:#fbe1e1;color:#8c1d1d}
.cancelled,.standby,.starting,.running,.warn{background:#fff1d6;color:#7a5300}
.none{background:#eceef2;color:#4a5263}
details{margin:4px 0}
pre{white-space:pre-wrap;margin:4px 0;font-size:12px;background:#f3f4f7;padding:6px}
p.note{color:#4a5263}
";

pub(crate) struct PageData<'a> {
    pub replica: &'a str,
    pub role: &'a crate::Role,
    pub started_at: SystemTime,
    pub now: SystemTime,
    pub jobs: &'a [JobView],
    pub sections: &'a [Section],
}

pub(crate) fn render(d: &PageData<'_>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let role = d.role.name();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Scheduler: {role}</title><style>{STYLE}</style></head><body>\n\
         <header><h1>Scheduler <span class=\"badge {role}\">{role}</span></h1>\
         <p>replica {replica} · up since {started} · page rendered {now}</p></header>\n<main>\n",
        replica = esc(d.replica),
        started = time(d.started_at),
        now = time(d.now),
    );
    if let crate::Role::Unreachable(problem) = d.role {
        let _ = writeln!(
            out,
            "<p class=\"note\"><span class=\"badge unreachable\">lock database</span> {}</p>",
            esc(problem)
        );
    }
    out.push_str(
        "<h2>Jobs</h2>\n<table><thead><tr><th>job</th><th>runs</th><th>schedule</th><th>next run</th>\
         <th>last run</th><th>result</th><th>duration</th><th>last success</th></tr></thead><tbody>\n",
    );
    for job in d.jobs {
        let result = match (&job.running_since, &job.last) {
            (Some(_), _) => badge("running"),
            (None, Some(last)) => badge(last.result.as_deref().unwrap_or("running")),
            (None, None) => badge("none"),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code> ({})</td><td>{}</td><td>{}</td><td>{result}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&job.name),
            esc(&job.kind),
            esc(&job.schedule),
            esc(&job.zone),
            job.next_run.map_or_else(|| "never".to_owned(), time),
            job.last.as_ref().map_or_else(|| "never".to_owned(), |l| time(l.started_at)),
            job.last.as_ref().and_then(RunRecord::duration).map_or_else(String::new, seconds),
            job.last_success.map_or_else(|| "never".to_owned(), time),
        );
    }
    out.push_str("</tbody></table>\n");
    for job in d.jobs.iter().filter(|j| !j.recent.is_empty()) {
        let _ = writeln!(
            out,
            "<h2>Recent runs of {}</h2>\n<table><thead><tr><th>scheduled</th><th>started</th><th>result</th>\
             <th>duration</th><th>replica</th><th>output</th></tr></thead><tbody>",
            esc(&job.name)
        );
        for run in &job.recent {
            let (first, rest) = run.detail.split_once('\n').unwrap_or((&run.detail, ""));
            let output = if rest.is_empty() {
                esc(first)
            } else {
                format!("<details><summary>{}</summary><pre>{}</pre></details>", esc(first), esc(rest))
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{output}</td></tr>",
                time(run.scheduled_at),
                time(run.started_at),
                badge(run.result.as_deref().unwrap_or("running")),
                run.duration().map_or_else(String::new, seconds),
                esc(&run.replica),
            );
        }
        out.push_str("</tbody></table>\n");
    }
    for section in d.sections {
        let _ = writeln!(out, "<h2>{}</h2>", esc(&section.title));
        if let Some(note) = &section.note {
            let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(note));
        }
        if section.headers.is_empty() && section.rows.is_empty() {
            continue;
        }
        out.push_str("<table><thead><tr>");
        for h in &section.headers {
            let _ = write!(out, "<th>{}</th>", esc(h));
        }
        out.push_str("</tr></thead><tbody>\n");
        for row in &section.rows {
            out.push_str("<tr>");
            for cell in row {
                match cell.as_str() {
                    "pass" | "fail" | "warn" | "success" | "failure" => {
                        let _ = write!(out, "<td>{}</td>", badge(cell));
                    }
                    _ => {
                        let _ = write!(out, "<td>{}</td>", esc(cell));
                    }
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</main></body></html>\n");
    out
}

fn badge(result: &str) -> String {
    let class = match result {
        "success" | "failure" | "timeout" | "cancelled" | "abandoned" | "running" | "pass" | "fail"
        | "warn" => result,
        _ => "none",
    };
    format!("<span class=\"badge {class}\">{}</span>", esc(result))
}

fn time(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn seconds(d: std::time::Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn esc(s: &str) -> String {
    prodready_stdx::text::html_escape(s)
}
