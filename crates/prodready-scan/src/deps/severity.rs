//! Severity of an advisory: the base score of its CVSS vector (v2, v3.0, v3.1, v4.0, computed
//! by the `cvss` crate) or the database's own label (`MODERATE`, ...), on CVSS's qualitative scale
//! ([`Severity`], shared with the report).

use std::str::FromStr;

pub use crate::report::Severity;

/// A scored severity and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Rating {
    pub severity: Severity,
    /// The CVSS base score, when a vector gave it.
    pub score: Option<f64>,
    /// The CVSS vector, when there was one.
    pub vector: Option<String>,
}

/// The base score of a CVSS vector (`CVSS:3.1/AV:N/...`, `CVSS:4.0/...`, or a v2 vector).
pub fn cvss_score(vector: &str) -> Result<f64, String> {
    let parsed =
        cvss::Cvss::from_str(vector.trim()).map_err(|e| format!("invalid CVSS vector `{vector}`: {e}"))?;
    Ok(parsed.score())
}

/// Rates a CVSS vector.
pub fn rate_vector(vector: &str) -> Result<Rating, String> {
    let score = cvss_score(vector)?;
    Ok(Rating {
        severity: Severity::from_cvss(score),
        score: Some(score),
        vector: Some(vector.trim().to_owned()),
    })
}

/// Rates a database's label (GitHub's `LOW`, `MODERATE`, `HIGH`, `CRITICAL`).
pub fn rate_label(label: &str) -> Option<Rating> {
    label.parse().ok().map(|severity| Rating { severity, score: None, vector: None })
}
