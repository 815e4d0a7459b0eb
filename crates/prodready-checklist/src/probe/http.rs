use std::time::Instant;

use prodready_stdx::redact;

use super::{Finding, http_error, millis};
use crate::model::Status;
use crate::spec::HttpCheck;

pub(super) async fn probe(check: &HttpCheck, http: &reqwest::Client) -> Finding {
    let method = reqwest::Method::from_bytes(check.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut request = http.request(method, &check.url);
    for (name, value) in &check.headers {
        request = request.header(name, value);
    }
    if let Some(body) = &check.body {
        request = request.body(body.clone());
    }
    let shown = format!("{} {}", check.method, redact::url(&check.url));
    let started = Instant::now();
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Finding::fail(format!("{shown}: {}", http_error(e))),
    };
    let status = response.status().as_u16();
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return Finding::fail(format!("{shown}: reading the body: {}", http_error(e)));
        }
    };
    let elapsed = started.elapsed();
    let mut problems = Vec::new();
    if !check.expect_status.allows(status) {
        problems.push(format!("status {status}, expected {}", expected(&check.expect_status)));
    }
    let text = String::from_utf8_lossy(&body);
    if let Some(needle) = check.body_contains.as_ref().filter(|n| !text.contains(n.as_str())) {
        problems.push(format!("body does not contain {needle:?}"));
    }
    if !check.json.is_empty() {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Err(e) => problems.push(format!("body is not JSON ({e})")),
            Ok(doc) => {
                for (pointer, want) in &check.json {
                    match doc.pointer(pointer) {
                        Some(got) if got == want => {}
                        Some(got) => problems.push(format!("{pointer} is {got}, expected {want}")),
                        None => problems.push(format!("{pointer} is missing")),
                    }
                }
            }
        }
    }
    if let Some(max) = check.max_response_ms.filter(|max| elapsed.as_millis() > u128::from(*max)) {
        problems.push(format!("answered in {}, over {max} ms", millis(elapsed)));
    }
    if problems.is_empty() {
        Finding::pass(format!("{status} in {}", millis(elapsed)))
    } else {
        Finding::new(Status::Fail, format!("{shown}: {}", problems.join("; ")))
    }
}

fn expected(expect: &crate::spec::ExpectStatus) -> String {
    match expect {
        crate::spec::ExpectStatus::One(s) => s.to_string(),
        crate::spec::ExpectStatus::Any(list) => {
            list.iter().map(u16::to_string).collect::<Vec<_>>().join(" or ")
        }
    }
}
