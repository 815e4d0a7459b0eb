//! prodready-checklist against data (scoring, validation, reports) and against real peers (kinds).

mod kinds;
mod report;
mod runner;
mod score;
mod spec;

use prodready_checklist::{Category, CheckResult, Meta, Status};

/// A result for table-driven tests.
pub fn result(id: &str, category: Category, status: Status, weight: f64, must_have: bool) -> CheckResult {
    CheckResult {
        meta: Meta {
            id: id.to_owned(),
            title: format!("Title of {id}"),
            category,
            must_have,
            weight,
            remediation: Some(format!("fix {id}")),
            docs: None,
        },
        kind: "command".to_owned(),
        status,
        summary: format!("{id} is {status}"),
        duration_ms: 3,
    }
}
