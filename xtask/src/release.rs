//! `cargo xtask release VERSION [--execute]`: bump the workspace's version and its internal dependency
//! requirements, check the changelog, commit and tag. A dry run (the default) changes nothing.

use std::process::Command;

use crate::{Result, cargo, root, run, say};

pub(crate) const HELP: &str = "\
usage: cargo xtask release VERSION [--execute]

Prepares release VERSION (e.g. 0.2.0): sets [workspace.package] version and the version requirement of
every internal crate in [workspace.dependencies] of the root Cargo.toml to VERSION, refreshes Cargo.lock,
checks that CHANGELOG.md has a `## [VERSION]` section, then commits (`Release VERSION`) and tags
vVERSION (annotated). Without --execute it only says what it would do; with it, the work tree must be
clean. Pushing the tag (`git push origin vVERSION`) starts the tag workflow (dist archives, SBOM).

Examples:
  cargo xtask release 0.2.0             # dry run
  cargo xtask release 0.2.0 --execute";

pub(crate) fn main(args: &[String]) -> Result {
    let mut version = None;
    let mut execute = false;
    for arg in args {
        match arg.as_str() {
            "--execute" => execute = true,
            "-h" | "--help" => {
                say(HELP);
                return Ok(());
            }
            v if version.is_none() && !v.starts_with('-') => version = Some(v.to_owned()),
            other => return Err(format!("unexpected argument `{other}`\n\n{HELP}")),
        }
    }
    let version = version.ok_or_else(|| format!("no VERSION given\n\n{HELP}"))?;
    check_version(&version)?;
    let manifest_path = root().join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path).map_err(|e| format!("Cargo.toml: {e}"))?;
    let (bumped, changes) = bump(&manifest, &version)?;
    let changelog =
        std::fs::read_to_string(root().join("CHANGELOG.md")).map_err(|e| format!("CHANGELOG.md: {e}"))?;
    let entry = changelog_entry(&changelog, &version)?;
    let tag = format!("v{version}");
    let tag_exists = Command::new("git")
        .args(["rev-parse", "--verify", "--quiet", &format!("refs/tags/{tag}")])
        .current_dir(root())
        .output()
        .is_ok_and(|o| o.status.success());
    if tag_exists {
        return Err(format!("tag {tag} exists already"));
    }
    say(&format!("CHANGELOG.md: {entry}"));
    for change in &changes {
        say(&format!("Cargo.toml: {change}"));
    }
    if !execute {
        say(&format!(
            "dry run: would write Cargo.toml, run `cargo update --workspace --offline`, commit \
             \"Release {version}\" and tag {tag}; run again with --execute"
        ));
        return Ok(());
    }
    let status = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !status.stdout.is_empty() {
        return Err(format!(
            "the work tree has changes; commit or remove them first:\n{}",
            String::from_utf8_lossy(&status.stdout)
        ));
    }
    std::fs::write(&manifest_path, bumped).map_err(|e| format!("Cargo.toml: {e}"))?;
    run(cargo().args(["update", "--workspace", "--offline"]))?;
    let git = |args: &[&str]| run(Command::new("git").args(args).current_dir(root()));
    git(&["commit", "-m", &format!("Release {version}"), "--", "Cargo.toml", "Cargo.lock"])?;
    git(&["tag", "-a", &tag, "-m", &format!("prodready {version}")])?;
    say(&format!("tagged {tag}; publish with `git push origin HEAD {tag}`"));
    Ok(())
}

/// `MAJOR.MINOR.PATCH`, optionally `-PRERELEASE`.
fn check_version(version: &str) -> Result {
    let (core, pre) = version.split_once('-').map_or((version, None), |(c, p)| (c, Some(p)));
    let numbers: Vec<&str> = core.split('.').collect();
    let numeric = |s: &&str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let pre_ok =
        pre.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'));
    if numbers.len() == 3 && numbers.iter().all(numeric) && pre_ok {
        Ok(())
    } else {
        Err(format!("`{version}` is not a version such as 0.2.0 or 1.0.0-rc.1"))
    }
}

/// The root manifest with `[workspace.package] version` and every internal dependency's `version` set to
/// `version`, and the changes made, one line each.
fn bump(manifest: &str, version: &str) -> Result<(String, Vec<String>)> {
    let mut section = String::new();
    let mut out = String::with_capacity(manifest.len());
    let mut changes = Vec::new();
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            trimmed.clone_into(&mut section);
        }
        let mut line = line.to_owned();
        if section == "[workspace.package]" && trimmed.starts_with("version") && trimmed.contains('=') {
            let old = trimmed.split_once('=').map(|(_, v)| v.trim().trim_matches('"')).unwrap_or_default();
            changes.push(format!("[workspace.package] version {old} -> {version}"));
            line = format!("version = \"{version}\"");
        } else if section == "[workspace.dependencies]" && trimmed.contains("path = \"crates/") {
            if let Some(start) = line.find("version = \"") {
                let from = start + "version = \"".len();
                let end = line[from..].find('"').map(|i| from + i).ok_or("unterminated version string")?;
                let name = trimmed.split_whitespace().next().unwrap_or_default();
                changes.push(format!("{name} {} -> {version}", &line[from..end]));
                line = format!("{}{version}{}", &line[..from], &line[end..]);
            } else {
                return Err(format!("Cargo.toml: internal dependency without a version: {trimmed}"));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    if !changes.iter().any(|c| c.starts_with("[workspace.package]")) {
        return Err("Cargo.toml: no version in [workspace.package]".to_owned());
    }
    Ok((out, changes))
}

/// The `## [VERSION]` heading of the changelog, or an error saying what to add.
fn changelog_entry(changelog: &str, version: &str) -> Result<String> {
    let heading = format!("## [{version}]");
    changelog.lines().find(|l| l.starts_with(&heading)).map(str::to_owned).ok_or_else(|| {
        format!(
            "CHANGELOG.md has no entry for {version}: add a `## [{version}] - YYYY-MM-DD` section listing what \
             changed (move the Unreleased items into it)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "[workspace]\nmembers = [\"crates/*\"]\n\n[workspace.package]\nversion = \"0.1.0\"\n\
        edition = \"2024\"\n\n[workspace.dependencies]\nserde = { version = \"1\", default-features = false }\n\
        prodready-pg = { path = \"crates/prodready-pg\", version = \"0.1.0\", default-features = false }\n\n\
        [profile.release]\nlto = \"thin\"\n";

    #[test]
    fn bump_sets_the_workspace_and_internal_versions_only() {
        let (bumped, changes) = bump(MANIFEST, "0.2.0").unwrap();
        assert_eq!(
            bumped,
            MANIFEST.replace("version = \"0.1.0\"\n", "version = \"0.2.0\"\n").replace(
                "\"crates/prodready-pg\", version = \"0.1.0\"",
                "\"crates/prodready-pg\", version = \"0.2.0\""
            )
        );
        assert!(bumped.contains("serde = { version = \"1\""));
        assert_eq!(changes, ["[workspace.package] version 0.1.0 -> 0.2.0", "prodready-pg 0.1.0 -> 0.2.0"]);
        // The real manifest bumps every internal crate.
        let real = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        let (_, changes) = bump(&real, "9.9.9").unwrap();
        assert!(changes.iter().any(|c| c.starts_with("prodready-stdx ")), "{changes:?}");
        let unversioned = "[workspace.package]\nversion = \"1.0.0\"\n[workspace.dependencies]\nprodready-x = { path = \"crates/x\" }\n";
        assert!(bump(unversioned, "1.0.1").unwrap_err().contains("without a version"));
    }

    #[test]
    fn versions_and_changelog_entries_are_checked() {
        for good in ["0.2.0", "1.0.0-rc.1", "10.20.30"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in ["0.2", "v0.2.0", "1.0.0-", "1.x.0", ""] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
        let changelog = "# Changelog\n\n## [Unreleased]\n\n## [0.2.0] - 2027-01-10\n- things\n";
        assert_eq!(changelog_entry(changelog, "0.2.0").unwrap(), "## [0.2.0] - 2027-01-10");
        assert!(changelog_entry(changelog, "0.3.0").unwrap_err().contains("no entry for 0.3.0"));
        // The committed changelog has an entry for the workspace's version.
        let ours = std::fs::read_to_string(root().join("CHANGELOG.md")).unwrap();
        assert!(changelog_entry(&ours, &crate::dist::workspace_version().unwrap()).is_ok());
    }
}
