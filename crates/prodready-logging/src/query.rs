//! LogQL `query_range` against Loki's HTTP API.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One line returned by a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryLine {
    /// Unix time in nanoseconds.
    pub timestamp_ns: i64,
    pub labels: std::collections::BTreeMap<String, String>,
    pub line: String,
}

/// A `query_range` request.
#[derive(Debug, Clone)]
pub struct Query {
    pub logql: String,
    /// How far back from now.
    pub since: Duration,
    pub limit: u32,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Stream>,
}

#[derive(Deserialize)]
struct Stream {
    stream: std::collections::BTreeMap<String, String>,
    values: Vec<Vec<serde_json::Value>>,
}

/// Runs a log query (`{app="api"} |= "error"`), newest lines first, oldest first in the result.
pub async fn query_range(base_url: &str, query: &Query) -> Result<Vec<QueryLine>> {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let start = now.saturating_sub(query.since);
    let url = format!("{}/loki/api/v1/query_range", base_url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Invalid(format!("cannot build the HTTP client: {e}")))?;
    let response = client
        .get(&url)
        .query(&[
            ("query", query.logql.clone()),
            ("start", start.as_nanos().to_string()),
            ("end", now.as_nanos().to_string()),
            ("limit", query.limit.to_string()),
            ("direction", "backward".to_owned()),
        ])
        .send()
        .await
        .map_err(|e| {
            Error::Loki(format!(
                "cannot reach Loki at {}: {}",
                prodready_stdx::redact::url(base_url),
                prodready_stdx::error::chain(&e.without_url())
            ))
        })?;
    let status = response.status();
    let body = response.text().await.map_err(|e| Error::Loki(format!("reading Loki's answer: {e}")))?;
    if !status.is_success() {
        let message = body.trim();
        return Err(Error::Loki(format!("Loki refused the query ({status}): {message}")));
    }
    let answer: Answer = serde_json::from_str(&body)
        .map_err(|e| Error::Loki(format!("Loki's answer is not a query_range result: {e}")))?;
    if answer.status != "success" {
        return Err(Error::Loki(format!("Loki answered status `{}`", answer.status)));
    }
    if answer.data.result_type != "streams" {
        return Err(Error::Invalid(format!(
            "the query returns {} (a metric query), and only log lines can be shown: use a log query such as {{app=\"api\"}} |= \"error\"",
            answer.data.result_type
        )));
    }
    let mut lines = Vec::new();
    for stream in answer.data.result {
        for value in stream.values {
            let (Some(ts), Some(line)) =
                (value.first().and_then(|v| v.as_str()), value.get(1).and_then(|v| v.as_str()))
            else {
                continue;
            };
            lines.push(QueryLine {
                timestamp_ns: ts.parse().unwrap_or(0),
                labels: stream.stream.clone(),
                line: line.to_owned(),
            });
        }
    }
    lines.sort_by_key(|l| l.timestamp_ns);
    Ok(lines)
}
