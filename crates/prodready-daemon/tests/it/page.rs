//! The status page at `/`, as a browser gets it: the jobs, their runs from the table and the caller's
//! sections, every outside string escaped.

use std::sync::Arc;

use expect_test::expect;
use prodready_daemon::{Job, Missed, Schedule, Section, StatusSections};
use prodready_test_support::TestDb;

use crate::{Daemon, create_runs_table, eventually, options, secs};

/// What a caller adds to the page (the binary adds its backups and scorecard).
struct Inventory;

impl StatusSections for Inventory {
    fn sections(&self) -> Vec<Section> {
        let strings = |cells: &[&str]| cells.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        vec![
            Section {
                title: "Backups & <restores>".to_owned(),
                note: Some("2 backups, the newest verified".to_owned()),
                headers: strings(&["id", "size", "verified"]),
                rows: vec![
                    strings(&["20250101T020000Z", "1.2 GiB", "pass"]),
                    strings(&["<script>alert('cell')</script>", "0 B", "fail"]),
                ],
            },
            Section {
                title: "Scorecard".to_owned(),
                note: Some("no scorecard yet".to_owned()),
                ..Section::default()
            },
        ]
    }
}

#[tokio::test]
async fn the_status_page_shows_jobs_runs_and_sections_with_outside_text_escaped() {
    let db = TestDb::create().await;
    create_runs_table(db.url()).await;
    let pg = db.connect().await;
    // A run another replica recorded long ago, whose output would be markup if it were not escaped.
    pg.batch_execute(
        "INSERT INTO prodready_daemon_runs (job, scheduled_at, started_at, finished_at, result, detail, replica)
         VALUES ('nightly-backup', '2020-01-01T01:00:00Z', '2020-01-01T01:00:02Z', '2020-01-01T01:01:32.5Z',
                 'failure', E'exited with code 1\\n<script>alert(1)</script>', 'old <replica>')",
    )
    .await
    .unwrap();
    let command = |script: &str| vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()];
    // Its 03:00 run was missed since: the new leader runs it once, at once.
    let backup = Job::new(
        "nightly-backup",
        "backup-run",
        Schedule::parse("0 3 * * *", "Europe/Berlin").unwrap(),
        command("echo '<b>done</b>'"),
    );
    let mut check =
        Job::new("weekly-check", "check", Schedule::parse("@weekly", "UTC").unwrap(), command("true"));
    check.missed = Missed::Skip;
    let daemon = Daemon::start_with(options(db.url(), "replica-1", vec![backup, check]), Arc::new(Inventory));
    eventually("the missed backup run, finished", secs(30), async || {
        let status = crate::get(daemon.addr, "/status.json", None).await?;
        let status: serde_json::Value = serde_json::from_str(&status.body).map_err(|e| e.to_string())?;
        let backup = &status["jobs"][0];
        if backup["last"]["replica"] == "replica-1" && backup["running_since"].is_null() {
            Ok(())
        } else {
            Err(format!("{status:#}"))
        }
    })
    .await;

    let page = daemon.get("/").await.body;
    daemon.stop().await;
    let (head, body) = page.split_once("<body>").unwrap();
    assert!(head.contains("<style>") && !head.contains("<link") && !head.contains("src="), "{head}");
    assert!(!page.contains("<script") && !page.contains("<b>") && !page.contains("<restores>"), "{page}");
    expect![[r#"

        <header><h1>Scheduler <span class="badge leader">leader</span></h1><p>replica replica-1 · up since <time> · page rendered <time></p></header>
        <main>
        <h2>Jobs</h2>
        <table><thead><tr><th>job</th><th>runs</th><th>schedule</th><th>next run</th><th>last run</th><th>result</th><th>duration</th><th>last success</th></tr></thead><tbody>
        <tr><td>nightly-backup</td><td>backup-run</td><td><code>0 3 * * *</code> (Europe/Berlin)</td><td><time></td><td><time></td><td><span class="badge success">success</span></td><td class="num"><seconds></td><td><time></td></tr>
        <tr><td>weekly-check</td><td>check</td><td><code>@weekly</code> (UTC)</td><td><time></td><td>never</td><td><span class="badge none">none</span></td><td class="num"></td><td>never</td></tr>
        </tbody></table>
        <h2>Recent runs of nightly-backup</h2>
        <table><thead><tr><th>scheduled</th><th>started</th><th>result</th><th>duration</th><th>replica</th><th>output</th></tr></thead><tbody>
        <tr><td><time></td><td><time></td><td><span class="badge success">success</span></td><td class="num"><seconds></td><td>replica-1</td><td><details><summary>exited with code 0</summary><pre>&lt;b&gt;done&lt;/b&gt;</pre></details></td></tr>
        <tr><td>2020-01-01T01:00:00Z</td><td>2020-01-01T01:00:02Z</td><td><span class="badge failure">failure</span></td><td class="num">90.5 s</td><td>old &lt;replica&gt;</td><td><details><summary>exited with code 1</summary><pre>&lt;script&gt;alert(1)&lt;/script&gt;</pre></details></td></tr>
        </tbody></table>
        <h2>Backups &amp; &lt;restores&gt;</h2>
        <p class="note">2 backups, the newest verified</p>
        <table><thead><tr><th>id</th><th>size</th><th>verified</th></tr></thead><tbody>
        <tr><td>20250101T020000Z</td><td>1.2 GiB</td><td><span class="badge pass">pass</span></td></tr>
        <tr><td>&lt;script&gt;alert(&#39;cell&#39;)&lt;/script&gt;</td><td>0 B</td><td><span class="badge fail">fail</span></td></tr>
        </tbody></table>
        <h2>Scorecard</h2>
        <p class="note">no scorecard yet</p>
        </main></body></html>
    "#]].assert_eq(&normalize(body));
}

/// The page with the instants of this run (not those of 2020) as `<time>`, and its durations as
/// `<seconds>` (not those of 2020's run).
fn normalize(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if is_timestamp(rest) {
            out.push_str(if rest.starts_with("2020-") { &rest[..20] } else { "<time>" });
            rest = &rest[20..];
        } else {
            out.push_str(&rest[..1]);
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    let mut cells = out.split("<td class=\"num\">");
    let mut normalized = cells.next().unwrap_or_default().to_owned();
    for cell in cells {
        let (duration, after) = cell.split_once("</td>").unwrap();
        let duration = if duration.is_empty() || duration == "90.5 s" { duration } else { "<seconds>" };
        normalized.push_str(&format!("<td class=\"num\">{duration}</td>{after}"));
    }
    normalized
}

/// Whether `s` starts with `YYYY-MM-DDTHH:MM:SSZ`.
fn is_timestamp(s: &str) -> bool {
    let shape = b"dddd-dd-ddTdd:dd:ddZ";
    s.len() >= shape.len()
        && s.bytes().zip(shape).all(|(c, &want)| if want == b'd' { c.is_ascii_digit() } else { c == want })
}
