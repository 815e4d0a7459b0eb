//! OpenMetrics text (as `prometheus-client` writes it) turned into the classic text format 0.0.4.
//!
//! The two formats share the sample syntax; they differ in the metadata: OpenMetrics names a counter
//! family without `_total` (`# TYPE requests counter`, sample `requests_total`), has `info`, `stateset`,
//! `gaugehistogram` and `unknown` types, `# UNIT` lines, exemplars after a ` # `, timestamps in seconds and
//! a final `# EOF`. The classic format names the counter by its sample (`# TYPE requests_total counter`)
//! and knows `counter`, `gauge`, `histogram`, `summary` and `untyped` only.

use std::fmt::Write as _;

/// Rewrites OpenMetrics text as classic text. Lines it does not understand are kept as they are.
pub(super) fn from_openmetrics(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // HELP comes before TYPE in OpenMetrics; the classic name depends on the type, so HELP waits.
    let mut pending_help: Option<(&str, &str)> = None;
    let mut family: Option<(&str, &str)> = None; // (name, OpenMetrics type)
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name, help));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            family = Some((name, kind));
            let (classic_name, classic_kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "stateset" => (name.to_owned(), "gauge"),
                "histogram" | "gaugehistogram" => (name.to_owned(), "histogram"),
                "summary" => (name.to_owned(), "summary"),
                _ => (name.to_owned(), "untyped"),
            };
            if let Some((_, help)) = pending_help.take().filter(|(n, _)| *n == name) {
                let _ = writeln!(out, "# HELP {classic_name} {}", classic_help(help));
            }
            let _ = writeln!(out, "# TYPE {classic_name} {classic_kind}");
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = split_sample(line);
        // A counter's creation time has no place in the classic format.
        if let Some((name, "counter")) = family
            && series.strip_prefix(name).is_some_and(|r| r == "_created" || r.starts_with("_created{"))
        {
            continue;
        }
        let _ = writeln!(out, "{series} {value}");
    }
    out
}

/// OpenMetrics escapes `"` in HELP text; the classic format does not.
fn classic_help(help: &str) -> String {
    help.replace("\\\"", "\"")
}

/// Splits a sample line into its series (name and labels) and its value with a timestamp in
/// milliseconds, dropping any exemplar.
fn split_sample(line: &str) -> (&str, String) {
    // The series ends at the first space outside a quoted label value.
    let mut in_quotes = false;
    let mut escaped = false;
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ' ' if !in_quotes => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let series = &line[..end];
    let rest = line[end..].trim_start();
    let rest = rest.split_once(" # ").map_or(rest, |(sample, _exemplar)| sample);
    let mut fields = rest.split_whitespace();
    let value = fields.next().unwrap_or_default();
    match fields.next().and_then(|t| t.parse::<f64>().ok()) {
        // OpenMetrics timestamps are seconds, classic ones milliseconds.
        #[allow(clippy::cast_possible_truncation)]
        Some(seconds) => (series, format!("{value} {}", (seconds * 1000.0).round() as i64)),
        None => (series, value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    fn check(openmetrics: &str, expected: Expect) {
        expected.assert_eq(&super::from_openmetrics(openmetrics));
    }

    #[test]
    fn counters_take_their_sample_name_and_lose_created_and_exemplars() {
        check(
            "# HELP requests Requests served.\n# TYPE requests counter\n\
             requests_total{route=\"/a b # c\"} 3 # {trace_id=\"ab\"} 1.0 1700000000.5\n\
             requests_created{route=\"/a b # c\"} 1700000000.0\n# EOF\n",
            expect![[r#"
                # HELP requests_total Requests served.
                # TYPE requests_total counter
                requests_total{route="/a b # c"} 3
            "#]],
        );
    }

    #[test]
    fn gauges_units_info_unknown_and_timestamps() {
        check(
            "# HELP size_bytes Size.\n# TYPE size_bytes gauge\n# UNIT size_bytes bytes\nsize_bytes 10 1.5\n\
             # HELP build Build \\\"x\\\".\n# TYPE build info\nbuild_info{v=\"1\"} 1\n\
             # TYPE odd unknown\nodd 2\n# EOF\n",
            expect![[r#"
                # HELP size_bytes Size.
                # TYPE size_bytes gauge
                size_bytes 10 1500
                # HELP build_info Build "x".
                # TYPE build_info gauge
                build_info{v="1"} 1
                # TYPE odd untyped
                odd 2
            "#]],
        );
    }

    #[test]
    fn histograms_keep_their_series() {
        check(
            "# HELP d Latency.\n# TYPE d histogram\nd_sum 1.5\nd_count 2\nd_bucket{le=\"+Inf\"} 2\n# EOF\n",
            expect![[r#"
                # HELP d Latency.
                # TYPE d histogram
                d_sum 1.5
                d_count 2
                d_bucket{le="+Inf"} 2
            "#]],
        );
    }
}
