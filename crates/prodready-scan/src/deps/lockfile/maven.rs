//! The Maven ecosystem: Gradle lockfiles, `pom.xml` with pinned versions, and the output of
//! `mvn dependency:list` (the fully resolved list, transitive dependencies included).

use std::collections::HashMap;

use quick_xml::events::Event;

use super::{Collector, line_at};
use crate::Result;
use crate::deps::Ecosystem;

/// `group:artifact:version=configuration,...` lines; `empty=...` and comments skipped.
pub(super) fn parse_gradle(text: &str, out: &mut Collector<'_>) -> Result<()> {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("empty=") {
            continue;
        }
        let coordinates = line.split_once('=').map_or(line, |(c, _configurations)| c);
        let parts: Vec<&str> = coordinates.split(':').collect();
        match parts.as_slice() {
            [group, artifact, version]
                if !group.is_empty() && !artifact.is_empty() && !version.is_empty() =>
            {
                out.push(Ecosystem::Maven, &format!("{group}:{artifact}"), version, Some(i + 1));
            }
            _ => {
                return Err(out
                    .error(Some(i + 1), format!("`{line}` is not `group:artifact:version=configurations`")));
            }
        }
    }
    Ok(())
}

/// Lines `group:artifact:type[:classifier]:version:scope` (after an optional `[INFO]`), as
/// `mvn dependency:list` prints them or writes them with `-DoutputFile`.
pub(super) fn parse_dependency_list(text: &str, out: &mut Collector<'_>) -> Result<()> {
    let mut in_list = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let line = line.strip_prefix("[INFO]").unwrap_or(line).trim();
        if line.contains("The following files have been resolved:") {
            in_list = true;
            continue;
        }
        if !in_list {
            continue;
        }
        if line.is_empty() || line == "none" {
            in_list = !line.is_empty() && in_list;
            continue;
        }
        // `-- module name` (Java modules) and `(optional)` trail some entries.
        let entry = line.split(" -- ").next().unwrap_or(line).trim_end_matches(" (optional)").trim();
        let parts: Vec<&str> = entry.split(':').collect();
        let (group, artifact, version) = match parts.as_slice() {
            [g, a, _, v, _] | [g, a, _, _, v, _] => (*g, *a, *v),
            _ => {
                return Err(
                    out.error(Some(i + 1), format!("`{entry}` is not `group:artifact:type:version:scope`"))
                );
            }
        };
        out.push(Ecosystem::Maven, &format!("{group}:{artifact}"), version, Some(i + 1));
    }
    Ok(())
}

#[derive(Default)]
struct Dependency {
    group: String,
    artifact: String,
    version: String,
    scope: String,
    line: usize,
}

/// `<dependency>` entries of `<dependencies>` and `<dependencyManagement>` (plugins' own
/// dependencies left out), versions through `<properties>` and `${project.version}`.
pub(super) fn parse_pom(text: &str, out: &mut Collector<'_>) -> Result<()> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut value = String::new();
    let mut properties: HashMap<String, String> = HashMap::new();
    let mut dependencies: Vec<Dependency> = Vec::new();
    let mut current: Option<Dependency> = None;
    let mut root: Option<String> = None;
    loop {
        let position = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| {
            let at = usize::try_from(reader.error_position()).unwrap_or(0);
            out.error(Some(line_at(text, at)), format!("not a valid pom.xml: {e}"))
        })?;
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                root.get_or_insert_with(|| name.clone());
                path.push(name);
                value.clear();
                if is_dependency(&path) {
                    current = Some(Dependency { line: line_at(text, position), ..Dependency::default() });
                }
            }
            Event::Text(t) => value.push_str(&t.xml10_content()),
            Event::CData(t) => value.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    _ => match r.into_inner().as_ref() {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => None,
                    },
                };
                value.extend(resolved);
            }
            Event::End(_) => {
                let text_value = value.trim().to_owned();
                value.clear();
                let depth = path.len();
                let name = path.last().cloned().unwrap_or_default();
                if depth == 3 && path[1] == "properties" {
                    properties.insert(name.clone(), text_value.clone());
                } else if depth == 2 && name == "version" {
                    properties.insert("project.version".into(), text_value.clone());
                    properties.insert("version".into(), text_value.clone());
                } else if depth == 3 && path[1] == "parent" && name == "version" {
                    properties.entry("project.version".into()).or_insert_with(|| text_value.clone());
                    properties.insert("project.parent.version".into(), text_value.clone());
                } else if depth == 2 && name == "groupId" {
                    properties.insert("project.groupId".into(), text_value.clone());
                }
                if let Some(dep) = current.as_mut()
                    && depth >= 1
                    && is_dependency(&path[..depth - 1])
                {
                    match name.as_str() {
                        "groupId" => dep.group = text_value,
                        "artifactId" => dep.artifact = text_value,
                        "version" => dep.version = text_value,
                        "scope" => dep.scope = text_value,
                        _ => {}
                    }
                }
                if is_dependency(&path) {
                    dependencies.extend(current.take());
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if root.as_deref() != Some("project") {
        return Err(out.error(None, "not a pom.xml: the root element is not <project>"));
    }
    for dep in dependencies {
        let group = substitute(&dep.group, &properties);
        let artifact = substitute(&dep.artifact, &properties);
        let version = substitute(&dep.version, &properties);
        let pinned = !version.is_empty() && !version.contains("${") && !version.starts_with(['[', '(']);
        if dep.scope == "import" || !pinned || group.contains("${") || artifact.is_empty() {
            out.skip();
        } else {
            out.push(Ecosystem::Maven, &format!("{group}:{artifact}"), &version, Some(dep.line));
        }
    }
    Ok(())
}

/// `project/dependencies/dependency`, `project/dependencyManagement/dependencies/dependency`, and
/// the same inside `profiles/profile`; not `build/plugins/plugin/dependencies`.
fn is_dependency(path: &[String]) -> bool {
    let n = path.len();
    n >= 3
        && path[n - 1] == "dependency"
        && path[n - 2] == "dependencies"
        && !path.iter().any(|p| p == "plugin" || p == "build")
}

/// Replaces `${name}` with its property, repeatedly (properties may refer to properties).
fn substitute(value: &str, properties: &HashMap<String, String>) -> String {
    let mut value = value.to_owned();
    for _ in 0..8 {
        let Some(start) = value.find("${") else { break };
        let Some(len) = value[start..].find('}') else { break };
        let key = &value[start + 2..start + len];
        let Some(replacement) = properties.get(key) else { break };
        value.replace_range(start..start + len + 1, &replacement.clone());
    }
    value
}
