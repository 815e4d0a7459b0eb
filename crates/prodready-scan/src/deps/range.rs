//! Which versions an advisory affects: OSV ranges (`introduced`, `fixed`, `last_affected`,
//! `limit` events), explicit version lists, and RustSec's `patched`/`unaffected` requirements.
//!
//! Every comparison is by the ecosystem's precedence ([`Scheme`]). Prereleases are not set apart
//! (as OSV prescribes and as `npm audit` does with `includePrerelease`): `2.0.0-rc.1` lies inside
//! `introduced 1.0.0, fixed 2.0.0`, and inside RustSec's `unaffected = ["< 2.0.0"]`.

use std::cmp::Ordering;

use super::version::{Ident, Scheme, SemVer, Version, number, parse_pre};

/// The kind of an OSV range event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Introduced,
    Fixed,
    LastAffected,
    Limit,
}

/// One event of an OSV range: its kind, the version as written, and the version parsed by the
/// range's scheme (`None` only for `introduced: "0"`, the start of time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub raw: String,
    version: Option<Version>,
}

/// An OSV `SEMVER` or `ECOSYSTEM` range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub scheme: Scheme,
    /// Sorted by version, `introduced: "0"` first.
    events: Vec<Event>,
}

impl Range {
    /// Builds a range from `(kind, version)` events, sorting them as OSV's evaluation requires.
    /// The error names the version the scheme refuses.
    pub fn new(scheme: Scheme, events: Vec<(EventKind, String)>) -> Result<Range, String> {
        let mut parsed = Vec::with_capacity(events.len());
        for (kind, raw) in events {
            let version = if kind == EventKind::Introduced && raw == "0" {
                None
            } else {
                Some(
                    Version::parse(scheme, &raw)
                        .ok_or_else(|| format!("`{raw}` is not a valid {} version", scheme_name(scheme)))?,
                )
            };
            parsed.push(Event { kind, raw, version });
        }
        parsed.sort_by(|a, b| match (&a.version, &b.version) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.compare(y).unwrap_or(Ordering::Equal),
        });
        Ok(Range { scheme, events: parsed })
    }

    /// OSV's evaluation: the last event at or below `version` decides; `limit` caps the range.
    /// A range without events (as older Go entries wrote "every version") affects everything.
    pub fn contains(&self, version: &Version) -> bool {
        if self.events.is_empty() {
            return true;
        }
        let cmp = |e: &Event| e.version.as_ref().and_then(|v| version.compare(v));
        let at_or_above = |e: &Event| e.version.is_none() || cmp(e).is_some_and(|o| o != Ordering::Less);
        if self.events.iter().any(|e| e.kind == EventKind::Limit && at_or_above(e)) {
            return false;
        }
        let mut affected = false;
        for event in &self.events {
            match event.kind {
                EventKind::Introduced if at_or_above(event) => affected = true,
                EventKind::Fixed if at_or_above(event) => affected = false,
                EventKind::LastAffected if cmp(event) == Some(Ordering::Greater) => affected = false,
                _ => {}
            }
        }
        affected
    }

    /// The `fixed` versions of this range, as written.
    pub fn fixed(&self) -> impl Iterator<Item = &str> {
        self.events.iter().filter(|e| e.kind == EventKind::Fixed).map(|e| e.raw.as_str())
    }
}

fn scheme_name(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Semver => "SemVer",
        Scheme::Maven => "Maven",
        Scheme::Generic => "",
    }
}

/// A Cargo-style version requirement as RustSec writes them (`>= 1.2, < 1.4`, `^0.3`, `= 0.1.0`,
/// `~1.2`, `*`), evaluated by precedence as intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    text: String,
    /// Every comparator's interval; a version matches when it lies in all of them.
    bounds: Vec<Interval>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Interval {
    /// Lower bound and whether it is inclusive.
    low: Option<(SemVer, bool)>,
    /// Upper bound and whether it is inclusive.
    high: Option<(SemVer, bool)>,
}

impl Interval {
    fn contains(&self, v: &SemVer) -> bool {
        self.low.as_ref().is_none_or(|(low, inclusive)| if *inclusive { v >= low } else { v > low })
            && self
                .high
                .as_ref()
                .is_none_or(|(high, inclusive)| if *inclusive { v <= high } else { v < high })
    }
}

impl Requirement {
    /// Parses a requirement; the error says which comparator is wrong.
    pub fn parse(text: &str) -> Result<Requirement, String> {
        let mut bounds = Vec::new();
        for comparator in text.split(',') {
            bounds.push(parse_comparator(comparator.trim()).ok_or_else(|| {
                format!(
                    "`{}` is not a version requirement (expected e.g. `>= 1.2.3` or `^0.4`)",
                    comparator.trim()
                )
            })?);
        }
        Ok(Requirement { text: text.trim().to_owned(), bounds })
    }

    pub fn matches(&self, version: &SemVer) -> bool {
        self.bounds.iter().all(|b| b.contains(version))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn parse_comparator(text: &str) -> Option<Interval> {
    let (op, rest) = ["<=", ">=", "<", ">", "=", "^", "~"]
        .iter()
        .find_map(|op| text.strip_prefix(op).map(|rest| (*op, rest.trim())))
        .unwrap_or(("^", text));
    if rest == "*" && op == "^" {
        return Some(Interval { low: None, high: None });
    }
    let rest = rest.split_once('+').map_or(rest, |(core, _)| core);
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, parse_pre(pre)?),
        None => (rest, Vec::new()),
    };
    let mut parts = core.split('.');
    let major = number(parts.next()?)?;
    let minor = match parts.next() {
        None | Some("*" | "x" | "X") => None,
        Some(m) => Some(number(m)?),
    };
    let patch = match parts.next() {
        None | Some("*" | "x" | "X") => None,
        Some(p) if minor.is_some() => Some(number(p)?),
        Some(_) => return None,
    };
    if parts.next().is_some() || (!pre.is_empty() && patch.is_none()) {
        return None;
    }
    let start = SemVer { major, minor: minor.unwrap_or(0), patch: patch.unwrap_or(0), pre };
    // Below every version of the next unit, its prereleases included: `X.Y.Z-0`.
    let unit = |major, minor, patch| SemVer { major, minor, patch, pre: vec![Ident::Num(0)] };
    // The first version past the precision given: `1.2` -> `1.3.0-0`, `1` -> `2.0.0-0`.
    let past = match (minor, patch) {
        (None, _) => unit(major + 1, 0, 0),
        (Some(m), None) => unit(major, m + 1, 0),
        (Some(_), Some(_)) => start.clone(),
    };
    let exact = patch.is_some();
    let (low, high) = match op {
        ">=" => (Some((start, true)), None),
        ">" if exact => (Some((start, false)), None),
        ">" => (Some((past, true)), None),
        "<" => (None, Some((start, false))),
        "<=" if exact => (None, Some((start, true))),
        "<=" => (None, Some((past, false))),
        "=" if exact => (Some((start.clone(), true)), Some((start, true))),
        "=" => (Some((start, true)), Some((past, false))),
        "~" => {
            let high = match minor {
                None => unit(major + 1, 0, 0),
                Some(m) => unit(major, m + 1, 0),
            };
            (Some((start, true)), Some((high, false)))
        }
        _ => {
            // Caret: the left-most non-zero component given may not change.
            let high = match (major, minor, patch) {
                (0, None, _) => unit(1, 0, 0),
                (0, Some(0), None) => unit(0, 1, 0),
                (0, Some(0), Some(p)) => unit(0, 0, p + 1),
                (0, Some(m), _) => unit(0, m + 1, 0),
                (x, _, _) => unit(x + 1, 0, 0),
            };
            (Some((start, true)), Some((high, false)))
        }
    };
    Some(Interval { low, high })
}

/// Which versions of a package an advisory affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Affects {
    /// Every version (an OSV entry with neither ranges nor versions).
    Every,
    /// OSV: any range contains the version, or it is listed.
    Osv { ranges: Vec<Range>, versions: Vec<String> },
    /// RustSec: affected unless a `patched` or an `unaffected` requirement matches.
    RustSec { patched: Vec<Requirement>, unaffected: Vec<Requirement> },
}

impl Affects {
    /// Whether `raw` (as locked) parsed under `scheme` is affected. A version the scheme cannot
    /// parse is affected only when an explicit list names it.
    pub fn contains(&self, scheme: Scheme, raw: &str) -> bool {
        let parsed = Version::parse(scheme, raw);
        match self {
            Affects::Every => true,
            Affects::Osv { ranges, versions } => {
                versions.iter().any(|listed| {
                    listed == raw
                        || parsed.as_ref().is_some_and(|p| {
                            Version::parse(scheme, listed).and_then(|l| p.compare(&l))
                                == Some(Ordering::Equal)
                        })
                }) || parsed.as_ref().is_some_and(|p| ranges.iter().any(|r| r.contains(p)))
            }
            Affects::RustSec { patched, unaffected } => match SemVer::parse(raw) {
                Some(v) => !patched.iter().chain(unaffected).any(|req| req.matches(&v)),
                None => false,
            },
        }
    }

    /// The versions that fix it, as the database writes them (`>= 1.2.3` for RustSec).
    pub fn fixed_versions(&self) -> Vec<String> {
        match self {
            Affects::Every => Vec::new(),
            Affects::Osv { ranges, .. } => ranges.iter().flat_map(|r| r.fixed()).map(str::to_owned).collect(),
            Affects::RustSec { patched, .. } => patched.iter().map(|r| r.as_str().to_owned()).collect(),
        }
    }
}
