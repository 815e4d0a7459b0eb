//! The SARIF a scan writes validates against the SARIF 2.1.0 JSON schema (the OASIS schema as
//! shipped in the npm package @microsoft/jest-sarif, provisioned by `cargo xtask peers`), with the
//! peers' Python jsonschema.

use std::process::Command;

use prodready_scan::secrets::{self, NoProgress, Options, Ruleset};
use prodready_test_support::peers_dir;

/// Validates a SARIF document against the 2.1.0 schema; the error is the validator's message.
pub(crate) fn validate(sarif: &str) -> Result<(), String> {
    let schema =
        peers_dir().join("node/node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json");
    assert!(schema.is_file(), "{} is missing: run `cargo xtask peers`", schema.display());
    let python = peers_dir().join("venv/bin/python");
    assert!(python.is_file(), "{} is missing: run `cargo xtask peers`", python.display());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.sarif");
    std::fs::write(&file, sarif).unwrap();
    let check = "import json, sys, jsonschema\n\
                 schema = json.load(open(sys.argv[2]))\n\
                 jsonschema.Draft7Validator.check_schema(schema)\n\
                 jsonschema.Draft7Validator(schema).validate(json.load(open(sys.argv[1])))\n";
    let out = Command::new(&python).args(["-c", check]).arg(&file).arg(&schema).output().unwrap();
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

#[test]
fn sarif_validates_against_the_2_1_0_schema() {
    let dir = tempfile::tempdir().unwrap();
    crate::write_tree(
        dir.path(),
        &[
            ("src/my app.py", "token = \"ghp_R8a2kQ0wLm3ZpX7vN1cT5yB9dF4hJ6sE2uGq\"\n"),
            (".env", "DATABASE_URL=postgres://app:Zq8vL2mN5xR1tY7w@db:5432/app\n"),
        ],
    );
    let report =
        secrets::scan_paths(&Ruleset::builtin(), &[dir.path().to_owned()], &Options::default(), &NoProgress)
            .unwrap();
    assert_eq!(report.findings.len(), 2);
    validate(&report.sarif()).unwrap_or_else(|e| panic!("SARIF invalid: {e}"));
    // and an invalid document is refused by the same check, so the check checks
    assert!(validate(&report.sarif().replace("\"version\": \"2.1.0\"", "\"version\": \"2.0\"")).is_err());

    // what GitHub code scanning needs: repo-relative URIs, regions, fingerprints, rule help
    let doc: serde_json::Value = serde_json::from_str(&report.sarif()).unwrap();
    let result = &doc["runs"][0]["results"][0];
    assert_eq!(result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], ".env");
    assert_eq!(
        doc["runs"][0]["results"][1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "src/my%20app.py"
    );
    assert!(result["partialFingerprints"]["primaryLocationLineHash"].is_string());
    assert_eq!(result["locations"][0]["physicalLocation"]["region"]["startLine"], 1);
    let rule = &doc["runs"][0]["tool"]["driver"]["rules"]
        [usize::try_from(result["ruleIndex"].as_u64().unwrap()).unwrap()];
    assert_eq!(rule["id"], "database-url-password");
    assert!(rule["help"]["text"].as_str().unwrap().contains("PGPASSWORD"));
    assert!(!report.sarif().contains("Zq8vL2mN5xR1tY7w"));
}
