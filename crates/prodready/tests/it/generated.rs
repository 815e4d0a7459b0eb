//! Generated files are committed; these tests fail when they are stale. `cargo xtask docs` (which sets
//! UPDATE_EXPECT=1) rewrites them.

use std::path::Path;

fn ensure_file_contents(relative: &str, contents: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == contents {
        return;
    }
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        return;
    }
    panic!("{relative} is stale: run `cargo xtask docs` and commit the result");
}

#[test]
fn generated_cli_reference_is_current() {
    ensure_file_contents("docs/cli.md", &prodready::docs::cli_reference());
}

#[test]
fn generated_configuration_reference_is_current() {
    ensure_file_contents("docs/configuration.md", &prodready::docs::configuration_reference());
}

#[test]
fn generated_deploy_files_are_current() {
    let defaults = prodready::config::AlertsConfig::default();
    for (path, contents) in prodready::commands::alerts::generated(&defaults).unwrap() {
        ensure_file_contents(&format!("deploy/{}", path.display()), &contents);
    }
}

#[test]
fn generated_stack_is_current() {
    for (path, contents) in prodready::stack::files(&prodready::config::Config::default()).unwrap() {
        ensure_file_contents(&format!("deploy/stack/{}", path.display()), &contents);
    }
}

#[test]
fn generated_daemon_deployment_is_current() {
    for (path, contents) in prodready::deploy::files() {
        ensure_file_contents(&format!("deploy/{}", path.display()), &contents);
    }
}
