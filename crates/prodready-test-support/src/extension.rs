//! A tiny PostgreSQL extension for tests, `prodready_test_config`: one configuration table whose user
//! rows `pg_extension_config_dump` marks for dumping (`WHERE NOT system`), and one system row that
//! `CREATE EXTENSION` inserts. Its files go into the installed server's extension directory (files only:
//! no server setting changes); a test then runs `CREATE EXTENSION prodready_test_config`.

use std::path::PathBuf;

/// The extension's name.
pub const TEST_EXTENSION: &str = "prodready_test_config";

const CONTROL: &str = "comment = 'prodready test fixture: an extension with a configuration table'
default_version = '1.0'
relocatable = true
";

const SCRIPT: &str =
    "CREATE TABLE settings (key text PRIMARY KEY, value text, system boolean NOT NULL DEFAULT false);
INSERT INTO settings VALUES ('schema_version', '1', true);
SELECT pg_catalog.pg_extension_config_dump('settings', 'WHERE NOT system');
";

/// Installs the extension's control and script files (once; they are rewritten only when they differ).
/// Panics naming the fix when the extension directory is not writable.
pub fn install_test_extension() {
    let sharedir = sharedir();
    let dir = sharedir.join("extension");
    for (name, text) in
        [(format!("{TEST_EXTENSION}.control"), CONTROL), (format!("{TEST_EXTENSION}--1.0.sql"), SCRIPT)]
    {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
            continue;
        }
        std::fs::write(&path, text).unwrap_or_else(|e| {
            panic!(
                "cannot install the test extension into {} ({e}): run the tests as a user who may write there \
                 (root on CI machines)",
                dir.display()
            )
        });
    }
}

fn sharedir() -> PathBuf {
    let pg_config = crate::cluster::bin_dir().join("pg_config");
    let out = std::process::Command::new(&pg_config)
        .arg("--sharedir")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", pg_config.display()));
    assert!(out.status.success(), "pg_config --sharedir failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}
