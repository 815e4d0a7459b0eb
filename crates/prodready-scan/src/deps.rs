//! Locked dependency versions against advisories read offline (OSV JSON, RustSec advisory-db).
