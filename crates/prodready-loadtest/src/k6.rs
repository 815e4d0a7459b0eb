//! A plan as a k6 script: `options.scenarios` with k6's executors and option names, thresholds,
//! one exported function per scenario sending its requests with their headers, bodies and tags,
//! templates as JavaScript expressions, CSV data in a `SharedArray`, checks and think times.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::scenario::{CheckKind, Executor, PathStep, Plan, Request, Scenario, Stage, ThinkTime, VarSource};
use crate::template::{Part, Template};
use crate::threshold::Metric;

/// The plan as a k6 script (ES module). `source` names the scenario file in the script's header.
///
/// What cannot be the same in k6 is said in the script's header: k6 has no `http_req_service_duration`
/// (its `http_req_duration` is the service time, so thresholds on ours go there) and no latency from
/// the intended start of a late open-model iteration (k6 drops late iterations instead).
pub fn export_k6(plan: &Plan, source: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "// Exported from {source} by prodready-loadtest: run it with `k6 run`.");
    out.push_str(
        "// CSV files are opened relative to this script: keep it beside the scenario file.\n\
         // k6's http_req_duration is the time from the actual send (our http_req_service_duration);\n\
         // thresholds on http_req_service_duration are judged on it here.\n",
    );
    for (selector, list) in &plan.thresholds {
        for t in list.iter().filter(|t| t.window.is_some()) {
            let _ = writeln!(
                out,
                "// Not exported: the threshold {selector} `{}` (k6 has no sliding window).",
                t.key()
            );
        }
    }
    out.push_str("import http from 'k6/http';\nimport { check, sleep } from 'k6';\n");
    out.push_str("import exec from 'k6/execution';\n");
    if !plan.vars.data.is_empty() {
        out.push_str("import { SharedArray } from 'k6/data';\n");
    }
    out.push('\n');
    let options = options(plan);
    let _ = writeln!(
        out,
        "export const options = {};\n",
        serde_json::to_string_pretty(&options).expect("options serialize")
    );
    out.push_str(HELPERS);
    if !plan.vars.data.is_empty() {
        out.push_str(CSV);
        for (i, data) in plan.vars.data.iter().enumerate() {
            let _ = writeln!(
                out,
                "const data{i} = new SharedArray({}, () => parseCsv(open({})));",
                js(&data.name),
                js(&data.file)
            );
        }
        out.push('\n');
    }
    out.push_str(&vars_function(plan));
    for scenario in &plan.scenarios {
        out.push('\n');
        out.push_str(&scenario_function(plan, scenario));
    }
    out
}

/// A JavaScript string literal (JSON's is one).
fn js(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// A duration as k6 writes one: `30s`, `1500ms`, `250us`.
fn k6_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_micros())
    }
}

/// The name of a scenario's exported function (a JavaScript identifier).
fn function_name(scenario: &str) -> String {
    let mut name: String =
        scenario.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    name.insert_str(0, "scenario_");
    name
}

fn stages(stages: &[Stage]) -> Value {
    stages.iter().map(|s| json!({"duration": k6_duration(s.duration), "target": s.target})).collect()
}

fn options(plan: &Plan) -> Value {
    let mut scenarios = Map::new();
    for s in &plan.scenarios {
        let mut o = Map::new();
        o.insert("executor".into(), s.executor.name().into());
        o.insert("exec".into(), function_name(&s.name).into());
        match &s.executor {
            Executor::ConstantVus { vus, duration } => {
                o.insert("vus".into(), (*vus).into());
                o.insert("duration".into(), k6_duration(*duration).into());
            }
            Executor::RampingVus { start_vus, stages: st, graceful_ramp_down } => {
                o.insert("startVUs".into(), (*start_vus).into());
                o.insert("stages".into(), stages(st));
                o.insert("gracefulRampDown".into(), k6_duration(*graceful_ramp_down).into());
            }
            Executor::SharedIterations { vus, iterations, max_duration }
            | Executor::PerVuIterations { vus, iterations, max_duration } => {
                o.insert("vus".into(), (*vus).into());
                o.insert("iterations".into(), (*iterations).into());
                o.insert("maxDuration".into(), k6_duration(*max_duration).into());
            }
            Executor::ConstantArrivalRate { rate, time_unit, duration, pre_allocated_vus, max_vus } => {
                o.insert("rate".into(), (*rate).into());
                o.insert("timeUnit".into(), k6_duration(*time_unit).into());
                o.insert("duration".into(), k6_duration(*duration).into());
                o.insert("preAllocatedVUs".into(), (*pre_allocated_vus).into());
                o.insert("maxVUs".into(), (*max_vus).into());
            }
            Executor::RampingArrivalRate {
                start_rate,
                time_unit,
                stages: st,
                pre_allocated_vus,
                max_vus,
            } => {
                o.insert("startRate".into(), (*start_rate).into());
                o.insert("timeUnit".into(), k6_duration(*time_unit).into());
                o.insert("stages".into(), stages(st));
                o.insert("preAllocatedVUs".into(), (*pre_allocated_vus).into());
                o.insert("maxVUs".into(), (*max_vus).into());
            }
        }
        o.insert("startTime".into(), k6_duration(s.start_time).into());
        o.insert("gracefulStop".into(), k6_duration(s.graceful_stop).into());
        if !s.tags.is_empty() {
            let tags: Map<String, Value> =
                s.tags.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
            o.insert("tags".into(), Value::Object(tags));
        }
        scenarios.insert(s.name.clone(), Value::Object(o));
    }
    let mut thresholds = Map::new();
    for (selector, list) in &plan.thresholds {
        if list.iter().all(|t| t.window.is_some()) {
            continue;
        }
        let mut selector = selector.clone();
        if selector.metric == Metric::HttpReqServiceDuration {
            selector.metric = Metric::HttpReqDuration;
        }
        let entry = thresholds.entry(selector.to_string()).or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(entry) = entry else { unreachable!("thresholds are arrays") };
        // k6 judges thresholds over the whole run only: a windowed one is left out (the header says so).
        for t in list.iter().filter(|t| t.window.is_none()) {
            if t.abort_on_fail {
                let mut o = Map::new();
                o.insert("threshold".into(), t.expr.source.clone().into());
                o.insert("abortOnFail".into(), true.into());
                if !t.delay_abort_eval.is_zero() {
                    o.insert("delayAbortEval".into(), k6_duration(t.delay_abort_eval).into());
                }
                entry.push(Value::Object(o));
            } else {
                entry.push(t.expr.source.clone().into());
            }
        }
    }
    let stats: Vec<Value> = plan.summary_trend_stats.iter().map(|a| a.to_string().into()).collect();
    let mut options = json!({"scenarios": scenarios, "thresholds": thresholds, "summaryTrendStats": stats});
    if plan.insecure_skip_tls_verify {
        options["insecureSkipTLSVerify"] = true.into();
    }
    options
}

/// `vars()`: this iteration's values of `[vars]` and the data rows, drawn once per iteration.
fn vars_function(plan: &Plan) -> String {
    let mut out = String::from(
        "// This iteration's variables: random values and data rows, drawn once.\nfunction vars() {\n",
    );
    let vars = &plan.vars;
    for (i, data) in vars.data.iter().enumerate() {
        let index = if data.random {
            format!("Math.floor(Math.random() * data{i}.length)")
        } else {
            format!("exec.scenario.iterationInTest % data{i}.length")
        };
        let _ = writeln!(out, "  const row{i} = data{i}[{index}];");
    }
    out.push_str("  return {\n");
    for (name, source) in vars.names.iter().zip(&vars.sources) {
        let value = match source {
            VarSource::Const(text) => js(text),
            VarSource::RandomInt(lo, hi) => format!("String(randomInt({lo}, {hi}))"),
            VarSource::OneOf(values) => {
                format!("oneOf({})", serde_json::to_string(values).expect("strings serialize"))
            }
            VarSource::Column { data, column } => format!("row{data}[{column}]"),
            VarSource::Vu | VarSource::Iter | VarSource::ScenarioName => continue,
        };
        let _ = writeln!(out, "    {}: {value},", js(name));
    }
    out.push_str("  };\n}\n");
    out
}

/// A template as a JavaScript expression.
fn expr(plan: &Plan, template: &Template) -> String {
    let parts: Vec<String> = template
        .parts()
        .iter()
        .map(|part| match part {
            Part::Literal(text) => js(text),
            Part::Var(index) => match &plan.vars.sources[*index] {
                VarSource::Vu => "String(__VU)".to_owned(),
                VarSource::Iter => "String(exec.vu.iterationInScenario)".to_owned(),
                VarSource::ScenarioName => "exec.scenario.name".to_owned(),
                _ => format!("v[{}]", js(&plan.vars.names[*index])),
            },
        })
        .collect();
    if parts.is_empty() { "\"\"".to_owned() } else { parts.join(" + ") }
}

fn think(t: Option<ThinkTime>, indent: &str) -> String {
    match t {
        None => String::new(),
        Some(t) if t.min == t.max => format!("{indent}sleep({});\n", t.min.as_secs_f64()),
        Some(t) => format!("{indent}pause({}, {});\n", t.min.as_secs_f64(), t.max.as_secs_f64()),
    }
}

fn path_js(path: &[PathStep]) -> String {
    let steps: Vec<Value> = path
        .iter()
        .map(|s| match s {
            PathStep::Key(k) => Value::from(k.clone()),
            PathStep::Index(i) => Value::from(*i),
        })
        .collect();
    serde_json::to_string(&steps).expect("a path serializes")
}

fn request_js(plan: &Plan, request: &Request) -> String {
    let mut out = String::new();
    let mut params = Vec::new();
    if !request.headers.is_empty() {
        let headers: Vec<String> = request
            .headers
            .iter()
            .map(|(name, value)| format!("{}: {}", js(name.as_str()), expr(plan, value)))
            .collect();
        params.push(format!("headers: {{ {} }}", headers.join(", ")));
    }
    if let Some(timeout) = request.timeout {
        params.push(format!("timeout: {}", js(&k6_duration(timeout))));
    }
    let mut tags = vec![format!("name: {}", js(&request.name))];
    tags.extend(request.tags.iter().map(|(k, v)| format!("{}: {}", js(k), js(v))));
    params.push(format!("tags: {{ {} }}", tags.join(", ")));
    let body = request.body.as_ref().map_or_else(|| "null".to_owned(), |b| expr(plan, b));
    let _ = writeln!(
        out,
        "  r = http.request({}, {}, {body}, {{ {} }});",
        js(request.method.as_str()),
        expr(plan, &request.url),
        params.join(", ")
    );
    if !request.checks.is_empty() {
        out.push_str("  check(r, {\n");
        for c in &request.checks {
            let test = match &c.kind {
                CheckKind::Status(list) => {
                    format!("{}.includes(r.status)", serde_json::to_string(list).expect("numbers serialize"))
                }
                CheckKind::BodyContains(text) => {
                    format!("typeof r.body === 'string' && r.body.includes({})", js(text))
                }
                CheckKind::Json { path, equals: None, .. } => {
                    format!("present(jsonAt(r, {}))", path_js(path))
                }
                CheckKind::Json { path, equals: Some(want), .. } => {
                    format!("same(jsonAt(r, {}), {want})", path_js(path))
                }
                CheckKind::Header { name, contains } => {
                    format!("headerContains(r, {}, {})", js(name.as_str()), js(contains))
                }
                CheckKind::MaxDuration(max) => {
                    format!("r.status !== 0 && r.timings.duration <= {}", max.as_secs_f64() * 1000.0)
                }
            };
            let _ = writeln!(out, "    {}: (r) => {test},", js(&plan.check_names[c.id]));
        }
        out.push_str("  });\n");
    }
    out.push_str(&think(request.think_time, "  "));
    out
}

fn scenario_function(plan: &Plan, scenario: &Scenario) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "// Scenario {}.", js(&scenario.name));
    let _ = writeln!(out, "export function {}() {{", function_name(&scenario.name));
    out.push_str("  const v = vars();\n  let r;\n");
    for request in &scenario.requests {
        out.push_str(&request_js(plan, request));
    }
    out.push_str(&think(scenario.think_time, "  "));
    out.push_str("}\n");
    out
}

const HELPERS: &str = r#"function randomInt(lo, hi) {
  return Math.floor(Math.random() * (hi - lo + 1)) + lo;
}

function oneOf(values) {
  return values[Math.floor(Math.random() * values.length)];
}

function pause(min, max) {
  sleep(min + Math.random() * (max - min));
}

// The value at a path in a JSON body, undefined when there is none.
function jsonAt(r, path) {
  let value;
  try {
    value = JSON.parse(r.body);
  } catch (e) {
    return undefined;
  }
  for (const step of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = value[step];
  }
  return value;
}

function present(value) {
  return value !== undefined && value !== null;
}

function same(found, want) {
  if (typeof found === 'number' && typeof want === 'number') return found === want;
  return found !== undefined && JSON.stringify(found) === JSON.stringify(want);
}

function headerContains(r, name, text) {
  return Object.keys(r.headers).some(
    (k) => k.toLowerCase() === name && String(r.headers[k]).includes(text),
  );
}

"#;

const CSV: &str = r#"// RFC 4180 CSV (quoted fields, "" for a quote), the header row left out.
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += c;
    }
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows.slice(1).filter((r) => !(r.length === 1 && r[0] === ''));
}

"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_k6_writes_them() {
        assert_eq!(k6_duration(Duration::from_secs(90)), "90s");
        assert_eq!(k6_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(k6_duration(Duration::from_micros(250)), "250us");
        assert_eq!(k6_duration(Duration::ZERO), "0s");
        assert_eq!(function_name("browse-2"), "scenario_browse_2");
    }
}
