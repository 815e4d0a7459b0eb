//! Provisioned Grafana dashboards (service RED, backups, SLO burn, PostgreSQL) as JSON, built from the same metric
//! names the exporters and rules use.

use serde_json::{Value, json};

use crate::names;

/// One panel: a title and its queries (expression, legend).
struct Panel {
    title: &'static str,
    unit: &'static str,
    queries: Vec<(String, &'static str)>,
}

fn dashboard(uid: &str, title: &str, variables: &[(&str, &str)], panels: Vec<Panel>) -> Value {
    let datasource = json!({ "type": "prometheus", "uid": "${datasource}" });
    let mut templating = vec![json!({
        "name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"
    })];
    for (name, query) in variables {
        templating.push(json!({
            "name": name, "type": "query", "datasource": datasource, "query": query,
            "refresh": 2, "includeAll": true, "multi": true, "current": {"text": "All", "value": "$__all"}
        }));
    }
    let panels: Vec<Value> = panels
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let targets: Vec<Value> = p
                .queries
                .iter()
                .enumerate()
                .map(|(j, (expr, legend))| {
                    json!({ "expr": expr, "legendFormat": legend, "refId": char::from(b'A' + u8::try_from(j).unwrap_or(0)).to_string(), "datasource": datasource })
                })
                .collect();
            let (x, y) = ((i % 2) * 12, (i / 2) * 8);
            json!({
                "id": i + 1, "type": "timeseries", "title": p.title, "datasource": datasource,
                "gridPos": { "x": x, "y": y, "w": 12, "h": 8 },
                "fieldConfig": { "defaults": { "unit": p.unit }, "overrides": [] },
                "targets": targets
            })
        })
        .collect();
    json!({
        "uid": uid, "title": title, "tags": ["prodready"], "schemaVersion": 39, "version": 1,
        "editable": false, "time": { "from": "now-6h", "to": "now" }, "refresh": "30s",
        "templating": { "list": templating }, "panels": panels
    })
}

/// (file name, dashboard) for every provisioned dashboard.
pub fn dashboards() -> Vec<(&'static str, Value)> {
    let req = names::HTTP_REQUESTS_TOTAL;
    let dur = names::HTTP_REQUEST_DURATION_SECONDS;
    let sel = r#"job=~"$job""#;
    let red = dashboard(
        "prodready-service-red",
        "Service: rate, errors, duration",
        &[("job", &format!("label_values({req}, job)"))],
        vec![
            Panel {
                title: "Requests per second by route",
                unit: "reqps",
                queries: vec![(format!("sum by (route) (rate({req}{{{sel}}}[$__rate_interval]))"), "{{route}}")],
            },
            Panel {
                title: "Share of requests failing (5xx)",
                unit: "percentunit",
                queries: vec![(
                    format!(r#"sum by (job) (rate({req}{{{sel},status="5xx"}}[$__rate_interval])) / sum by (job) (rate({req}{{{sel}}}[$__rate_interval]))"#),
                    "{{job}}",
                )],
            },
            Panel {
                title: "Latency percentiles",
                unit: "s",
                queries: ["0.5", "0.95", "0.99"]
                    .iter()
                    .map(|q| {
                        (format!("histogram_quantile({q}, sum by (le) (rate({dur}_bucket{{{sel}}}[$__rate_interval])))"), match *q {
                            "0.5" => "p50",
                            "0.95" => "p95",
                            _ => "p99",
                        })
                    })
                    .collect(),
            },
            Panel {
                title: "CPU and open file descriptors",
                unit: "short",
                queries: vec![
                    (format!("rate({}{{{sel}}}[$__rate_interval])", names::PROCESS_CPU_SECONDS_TOTAL), "cpu {{instance}}"),
                    (format!("{}{{{sel}}} / {}{{{sel}}}", names::PROCESS_OPEN_FDS, names::PROCESS_MAX_FDS), "fds used {{instance}}"),
                ],
            },
        ],
    );
    let db = r#"database=~"$database""#;
    let backups = dashboard(
        "prodready-backups",
        "Backups",
        &[("database", &format!("label_values({}, database)", names::BACKUP_LAST_SUCCESS))],
        vec![
            Panel {
                title: "Age of the newest backup",
                unit: "s",
                queries: vec![(format!("time() - {}{{{db}}}", names::BACKUP_LAST_SUCCESS), "{{database}}")],
            },
            Panel {
                title: "Age of the newest verified backup",
                unit: "s",
                queries: vec![(
                    format!("time() - {}{{{db}}}", names::BACKUP_LAST_VERIFY_SUCCESS),
                    "{{database}}",
                )],
            },
            Panel {
                title: "Backup duration and size",
                unit: "short",
                queries: vec![
                    (format!("{}{{{db}}}", names::BACKUP_DURATION_SECONDS), "seconds {{database}}"),
                    (format!("{}{{{db}}}", names::BACKUP_BYTES), "bytes {{database}}"),
                ],
            },
            Panel {
                title: "Last run succeeded (1) or failed (0)",
                unit: "short",
                queries: vec![(format!("{}{{{db}}}", names::BACKUP_LAST_RUN_SUCCESS), "{{database}}")],
            },
        ],
    );
    let slo = r#"sloth_service=~"$service""#;
    let burn = dashboard(
        "prodready-slo-burn",
        "SLO error budget burn",
        &[("service", "label_values(sloth_slo_info, sloth_service)")],
        vec![
            Panel {
                title: "Current burn rate (1 = on budget)",
                unit: "short",
                queries: vec![(
                    format!("slo:current_burn_rate:ratio{{{slo}}}"),
                    "{{sloth_service}} {{sloth_slo}}",
                )],
            },
            Panel {
                title: "Error budget remaining in the period",
                unit: "percentunit",
                queries: vec![(
                    format!("slo:period_error_budget_remaining:ratio{{{slo}}}"),
                    "{{sloth_service}} {{sloth_slo}}",
                )],
            },
            Panel {
                title: "Error ratio by window",
                unit: "percentunit",
                queries: ["5m", "1h", "6h", "3d"]
                    .iter()
                    .map(|w| {
                        (format!("slo:sli_error:ratio_rate{w}{{{slo}}}"), "{{sloth_slo}} {{sloth_window}}")
                    })
                    .collect(),
            },
            Panel {
                title: "Objective",
                unit: "percentunit",
                queries: vec![(format!("slo:objective:ratio{{{slo}}}"), "{{sloth_service}} {{sloth_slo}}")],
            },
        ],
    );
    vec![
        ("service-red.json", red),
        ("backups.json", backups),
        ("slo-burn.json", burn),
        ("postgres.json", postgres()),
    ]
}

/// The database dashboard, on `prodready db exporter`'s series. Server-wide series (server connections,
/// replication, slots, WAL) repeat under every database of a server, so they take the max per server.
fn postgres() -> Value {
    let sel = r#"server=~"$server",database=~"$database""#;
    let srv = r#"server=~"$server""#;
    let rate = |metric: &str| format!("rate({metric}{{{sel}}}[$__rate_interval])");
    let statement = "server, database, queryid";
    let seconds = names::PG_STATEMENT_SECONDS_TOTAL;
    let calls = names::PG_STATEMENT_CALLS_TOTAL;
    // The statement's text, one per queryid even if two texts were seen in the lookback.
    let text = format!(
        "on ({statement}) group_left (query) topk by ({statement}) (1, max by ({statement}, query) ({}{{{sel}}}))",
        names::PG_STATEMENT_INFO
    );
    let top = |by: &str| {
        format!(r#"sum by ({statement}) (rate({by}{{{sel},queryid!="other"}}[$__rate_interval]))"#)
    };
    let (hit, read) = (names::PG_BLOCKS_HIT_TOTAL, names::PG_BLOCKS_READ_TOTAL);
    let (slot_retained, slot_active) = (names::PG_SLOT_RETAINED_WAL, names::PG_SLOT_ACTIVE);
    dashboard(
        "prodready-postgres",
        "PostgreSQL",
        &[
            ("server", &format!("label_values({}, server)", names::PG_UP)),
            ("database", &format!("label_values({}{{{srv}}}, database)", names::PG_UP)),
        ],
        vec![
            Panel {
                title: "Connections against max_connections",
                unit: "short",
                queries: vec![
                    (
                        format!("sum by (server, database, state) ({}{{{sel}}})", names::PG_CONNECTIONS),
                        "{{database}} {{state}}",
                    ),
                    (
                        format!("max by (server) ({}{{{srv}}})", names::PG_SERVER_CONNECTIONS),
                        "{{server}} all databases",
                    ),
                    (
                        format!("max by (server) ({}{{{srv}}})", names::PG_MAX_CONNECTIONS),
                        "{{server}} max_connections",
                    ),
                ],
            },
            Panel {
                title: "Transactions per second",
                unit: "ops",
                queries: vec![
                    (
                        format!("sum by (server, database) ({})", rate(names::PG_COMMITS_TOTAL)),
                        "committed {{database}}",
                    ),
                    (
                        format!("sum by (server, database) ({})", rate(names::PG_ROLLBACKS_TOTAL)),
                        "rolled back {{database}}",
                    ),
                ],
            },
            Panel {
                title: "Cache hit ratio (blocks found in shared buffers)",
                unit: "percentunit",
                queries: vec![(
                    format!(
                        "sum by (server, database) ({h}) / (sum by (server, database) ({h}) + sum by (server, database) ({r}))",
                        h = rate(hit),
                        r = rate(read)
                    ),
                    "{{database}}",
                )],
            },
            Panel {
                title: "Longest transaction and longest idle in transaction",
                unit: "s",
                queries: vec![
                    (
                        format!("max by (server, database) ({}{{{sel}}})", names::PG_LONGEST_TRANSACTION),
                        "transaction {{database}}",
                    ),
                    (
                        format!(
                            "max by (server, database) ({}{{{sel}}})",
                            names::PG_LONGEST_IDLE_IN_TRANSACTION
                        ),
                        "idle in transaction {{database}}",
                    ),
                ],
            },
            Panel {
                title: "Locks held and sessions waiting for a lock",
                unit: "short",
                queries: vec![
                    (
                        format!("sum by (server, database, mode) ({}{{{sel}}})", names::PG_LOCKS),
                        "{{database}} {{mode}}",
                    ),
                    (
                        format!("sum by (server, database) ({}{{{sel}}})", names::PG_WAITING_SESSIONS),
                        "waiting {{database}}",
                    ),
                ],
            },
            Panel {
                title: "Deadlocks",
                unit: "short",
                queries: vec![(
                    format!(
                        "sum by (server, database) (increase({}{{{sel}}}[$__rate_interval]))",
                        names::PG_DEADLOCKS_TOTAL
                    ),
                    "{{database}}",
                )],
            },
            Panel {
                title: "Replication lag (bytes of WAL not replayed)",
                unit: "bytes",
                queries: vec![(
                    format!(
                        "max by (server, application_name, client_addr) ({}{{{srv}}})",
                        names::PG_REPLICATION_LAG_BYTES
                    ),
                    "{{server}} to {{application_name}} ({{client_addr}})",
                )],
            },
            Panel {
                title: "Replication lag (seconds)",
                unit: "s",
                queries: vec![
                    (
                        format!(
                            "max by (server, application_name, client_addr) ({}{{{srv}}})",
                            names::PG_REPLICATION_LAG_SECONDS
                        ),
                        "{{server}} to {{application_name}} ({{client_addr}})",
                    ),
                    (
                        format!("max by (server) ({}{{{srv}}})", names::PG_REPLAY_DELAY_SECONDS),
                        "standby {{server}} replay delay",
                    ),
                ],
            },
            Panel {
                title: "Replication slots: WAL retained",
                unit: "bytes",
                queries: vec![
                    (
                        format!("max by (server, slot, slot_type) ({slot_retained}{{{srv}}})"),
                        "{{server}} {{slot}}",
                    ),
                    (
                        format!(
                            "max by (server, slot, slot_type) ({slot_retained}{{{srv}}}) and on (server, slot, slot_type) \
                             max by (server, slot, slot_type) ({slot_active}{{{srv}}}) == 0"
                        ),
                        "{{server}} {{slot}} (inactive)",
                    ),
                ],
            },
            Panel {
                title: "WAL generated",
                unit: "Bps",
                queries: vec![(
                    format!(
                        "max by (server) (rate({}{{{srv}}}[$__rate_interval]))",
                        names::PG_WAL_BYTES_TOTAL
                    ),
                    "{{server}}",
                )],
            },
            Panel {
                title: "Top statements by execution time (seconds per second)",
                unit: "s",
                queries: vec![
                    (format!("topk(10, {}) * {text}", top(seconds)), "{{database}} {{queryid}}: {{query}}"),
                    (
                        format!(
                            r#"sum by (server, database) (rate({seconds}{{{sel},queryid="other"}}[$__rate_interval]))"#
                        ),
                        "{{database}} all other statements",
                    ),
                ],
            },
            Panel {
                title: "Top statements by mean execution time",
                unit: "s",
                queries: vec![(
                    format!("topk(10, {} / ({} > 0)) * {text}", top(seconds), top(calls)),
                    "{{database}} {{queryid}}: {{query}}",
                )],
            },
        ],
    )
}

/// Every PromQL expression of a dashboard, with Grafana's variables replaced so the text parses.
pub fn expressions(dashboard: &Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect()
}
