//! CycloneDX JSON SBOMs: every component (nested ones included) with a package URL.

use serde::Deserialize;

use super::{Collector, line_at};
use crate::Result;
use crate::deps::Ecosystem;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    bom_format: String,
    #[serde(default)]
    components: Vec<Component>,
}

#[derive(Deserialize)]
struct Component {
    #[serde(default)]
    purl: Option<String>,
    #[serde(default)]
    components: Vec<Component>,
}

pub(super) fn parse(text: &str, out: &mut Collector<'_>) -> Result<()> {
    let mut de = serde_json::Deserializer::from_str(text);
    let doc: Doc = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let line = (inner.line() > 0).then_some(inner.line());
        out.error(line, format!("not a valid CycloneDX JSON document: key `{key}`: {inner}"))
    })?;
    if doc.bom_format != "CycloneDX" {
        return Err(out.error(None, format!("`bomFormat` is `{}`, not `CycloneDX`", doc.bom_format)));
    }
    let mut stack: Vec<Component> = doc.components.into_iter().rev().collect();
    let mut from = 0;
    while let Some(component) = stack.pop() {
        stack.extend(component.components.into_iter().rev());
        let Some(purl) = component.purl else {
            out.skip();
            continue;
        };
        // Components appear in file order, so each purl is searched for after the previous one.
        let line = text[from..].find(&purl).map(|at| {
            from += at;
            line_at(text, from)
        });
        match package_of_purl(&purl) {
            Some((ecosystem, name, version)) => out.push(ecosystem, &name, &version, line),
            None => out.skip(),
        }
    }
    Ok(())
}

/// `(ecosystem, name, version)` of a package URL (`pkg:npm/%40scope/name@1.0.0?x=y#sub`); `None`
/// for types without an OSV ecosystem here, or without a version.
pub(crate) fn package_of_purl(purl: &str) -> Option<(Ecosystem, String, String)> {
    use prodready_stdx::text::percent_decode;
    let rest = purl.strip_prefix("pkg:")?.trim_start_matches('/');
    let rest = rest.split_once('#').map_or(rest, |(r, _subpath)| r);
    let rest = rest.split_once('?').map_or(rest, |(r, _qualifiers)| r);
    let (kind, rest) = rest.split_once('/')?;
    let (path, version) = rest.rsplit_once('@')?;
    let version = percent_decode(version);
    let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let (name, namespace) = segments.split_last()?;
    let namespace = namespace.join("/");
    let joined =
        |sep: &str| if namespace.is_empty() { name.clone() } else { format!("{namespace}{sep}{name}") };
    let (ecosystem, name, version) = match kind.to_ascii_lowercase().as_str() {
        "cargo" => (Ecosystem::CratesIo, name.clone(), version),
        "npm" => (Ecosystem::Npm, joined("/"), version),
        "maven" => (Ecosystem::Maven, joined(":"), version),
        "pypi" => (Ecosystem::PyPI, name.clone(), version),
        "golang" => (Ecosystem::Go, joined("/"), version.trim_start_matches('v').to_owned()),
        "gem" => (Ecosystem::RubyGems, name.clone(), version),
        "nuget" => (Ecosystem::NuGet, name.clone(), version),
        "composer" => (Ecosystem::Packagist, joined("/"), version),
        _ => return None,
    };
    (!version.is_empty()).then_some((ecosystem, name, version))
}
