//! Version orderings per ecosystem: SemVer 2.0 precedence (crates.io, npm, Go), Maven's
//! `ComparableVersion`, and a generic digits-and-words ordering for every other ecosystem.

use std::cmp::Ordering;
use std::fmt;

/// How an ecosystem orders its versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// SemVer 2.0 precedence; build metadata ignored, prereleases ordered before their release.
    Semver,
    /// Maven's `ComparableVersion` (also Gradle's resolution order).
    Maven,
    /// Runs of digits compared as numbers, other runs as text, separators ignored.
    Generic,
}

/// A parsed version, comparable with versions of the same scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    Semver(SemVer),
    Maven(MavenVersion),
    Generic(GenericVersion),
}

impl Version {
    /// Parses `text` under `scheme`; only SemVer can refuse a version.
    pub fn parse(scheme: Scheme, text: &str) -> Option<Version> {
        match scheme {
            Scheme::Semver => SemVer::parse(text).map(Version::Semver),
            Scheme::Maven => Some(Version::Maven(MavenVersion::parse(text))),
            Scheme::Generic => Some(Version::Generic(GenericVersion::parse(text))),
        }
    }

    /// Compares two versions of the same scheme; `None` across schemes.
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        match (self, other) {
            (Version::Semver(a), Version::Semver(b)) => Some(a.cmp(b)),
            (Version::Maven(a), Version::Maven(b)) => Some(a.cmp(b)),
            (Version::Generic(a), Version::Generic(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// A SemVer 2.0 version. Parsing is lenient about a leading `v` or `=` and leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SemVer {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: Vec<Ident>,
}

/// A prerelease identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ident {
    Num(u64),
    Alpha(String),
}

impl SemVer {
    pub const fn new(major: u64, minor: u64, patch: u64) -> SemVer {
        SemVer { major, minor, patch, pre: Vec::new() }
    }

    /// Parses `MAJOR.MINOR.PATCH[-PRE][+BUILD]`.
    pub fn parse(text: &str) -> Option<SemVer> {
        let text = text.trim();
        let text = text.strip_prefix('=').unwrap_or(text).trim_start();
        let text = text.strip_prefix('v').unwrap_or(text);
        let text = text.split_once('+').map_or(text, |(core, _build)| core);
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let mut parts = core.split('.');
        let major = number(parts.next()?)?;
        let minor = number(parts.next()?)?;
        let patch = number(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        let pre = match pre {
            None => Vec::new(),
            Some(pre) => parse_pre(pre)?,
        };
        Some(SemVer { major, minor, patch, pre })
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

pub(crate) fn parse_pre(pre: &str) -> Option<Vec<Ident>> {
    pre.split('.')
        .map(|id| {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                None
            } else if id.bytes().all(|b| b.is_ascii_digit()) {
                Some(id.parse().map_or_else(|_| Ident::Alpha(id.to_owned()), Ident::Num))
            } else {
                Some(Ident::Alpha(id.to_owned()))
            }
        })
        .collect()
}

pub(crate) fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl Ord for Ident {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Ident::Num(a), Ident::Num(b)) => a.cmp(b),
            (Ident::Num(_), Ident::Alpha(_)) => Ordering::Less,
            (Ident::Alpha(_), Ident::Num(_)) => Ordering::Greater,
            (Ident::Alpha(a), Ident::Alpha(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Ident {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SemVer {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch)).then_with(
            || match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            },
        )
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SemVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (i, id) in self.pre.iter().enumerate() {
            f.write_str(if i == 0 { "-" } else { "." })?;
            match id {
                Ident::Num(n) => write!(f, "{n}")?,
                Ident::Alpha(s) => f.write_str(s)?,
            }
        }
        Ok(())
    }
}

/// A Maven version as Maven 3's `ComparableVersion` orders it: `1.0-alpha-1 < 1.0-beta < 1.0-rc1
/// < 1.0-SNAPSHOT < 1.0 = 1.0.0 = 1.0-ga < 1.0-sp1 < 1.0.1`, unknown qualifiers after `sp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MavenVersion(Vec<Item>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Int(u128),
    Str(String),
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];

impl MavenVersion {
    pub fn parse(text: &str) -> MavenVersion {
        let text = text.trim().to_ascii_lowercase();
        // A stack of lists: index 0 is the top level; `-` and digit/letter transitions open sublists.
        let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
        let bytes = text.as_bytes();
        let mut start = 0;
        let mut is_digit = false;
        for (i, &c) in bytes.iter().enumerate() {
            let top = stack.last_mut().expect("stack is never empty");
            if c == b'.' {
                top.push(if i == start { Item::Int(0) } else { item(&text[start..i], false) });
                start = i + 1;
            } else if c == b'-' {
                top.push(if i == start { Item::Int(0) } else { item(&text[start..i], false) });
                start = i + 1;
                stack.push(Vec::new());
            } else if c.is_ascii_digit() {
                if !is_digit && i > start {
                    top.push(item(&text[start..i], true));
                    start = i;
                    stack.push(Vec::new());
                }
                is_digit = true;
            } else {
                if is_digit && i > start {
                    top.push(item(&text[start..i], false));
                    start = i;
                    stack.push(Vec::new());
                }
                is_digit = false;
            }
        }
        if text.len() > start {
            stack.last_mut().expect("stack is never empty").push(item(&text[start..], false));
        }
        // Close the sublists from the innermost out, normalizing each (trailing nulls dropped).
        while stack.len() > 1 {
            let mut list = stack.pop().expect("checked length");
            normalize(&mut list);
            stack.last_mut().expect("checked length").push(Item::List(list));
        }
        let mut top = stack.pop().expect("stack is never empty");
        normalize(&mut top);
        MavenVersion(top)
    }
}

fn item(token: &str, followed_by_digit: bool) -> Item {
    if token.bytes().all(|b| b.is_ascii_digit()) {
        let digits = token.trim_start_matches('0');
        return Item::Int(digits.parse().unwrap_or(if digits.is_empty() { 0 } else { u128::MAX }));
    }
    let token = match (followed_by_digit, token) {
        (true, "a") => "alpha",
        (true, "b") => "beta",
        (true, "m") => "milestone",
        (_, "ga" | "final" | "release") => "",
        (_, "cr") => "rc",
        (_, other) => other,
    };
    Item::Str(token.to_owned())
}

fn is_null(item: &Item) -> bool {
    match item {
        Item::Int(n) => *n == 0,
        Item::Str(s) => s.is_empty(),
        Item::List(l) => l.is_empty(),
    }
}

/// Drops trailing null items (`0`, `""`, empty lists), looking behind non-null sublists as Maven does.
fn normalize(list: &mut Vec<Item>) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if is_null(&list[i]) {
            list.remove(i);
        } else if !matches!(list[i], Item::List(_)) {
            break;
        }
    }
}

fn qualifier_rank(s: &str) -> (usize, &str) {
    match QUALIFIERS.iter().position(|q| *q == s) {
        Some(i) => (i, ""),
        None => (QUALIFIERS.len(), s),
    }
}

/// Compares an item with an absent one (the shorter list's padding).
fn cmp_null(item: &Item) -> Ordering {
    match item {
        Item::Int(n) => n.cmp(&0),
        Item::Str(s) => qualifier_rank(s).cmp(&qualifier_rank("")),
        Item::List(l) => l.first().map_or(Ordering::Equal, cmp_null),
    }
}

fn cmp_item(a: &Item, b: &Item) -> Ordering {
    match (a, b) {
        (Item::Int(x), Item::Int(y)) => x.cmp(y),
        (Item::Int(_), _) => Ordering::Greater,
        (Item::Str(_), Item::Int(_)) => Ordering::Less,
        (Item::Str(x), Item::Str(y)) => qualifier_rank(x).cmp(&qualifier_rank(y)),
        (Item::Str(_), Item::List(_)) => Ordering::Less,
        (Item::List(_), Item::Int(_)) => Ordering::Less,
        (Item::List(_), Item::Str(_)) => Ordering::Greater,
        (Item::List(x), Item::List(y)) => cmp_list(x, y),
    }
}

fn cmp_list(a: &[Item], b: &[Item]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let ord = match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => cmp_item(x, y),
            (Some(x), None) => cmp_null(x),
            (None, Some(y)) => cmp_null(y).reverse(),
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

impl Ord for MavenVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_list(&self.0, &other.0)
    }
}

impl PartialOrd for MavenVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Any other ecosystem's version: runs of digits compared as numbers, runs of letters as text
/// (a number sorts after text at the same position), separators ignored; see [`Ord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericVersion(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Text(String),
    Num(u128),
}

impl GenericVersion {
    pub fn parse(text: &str) -> GenericVersion {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if c.is_ascii_digit() {
                let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
                parts.push(Part::Num(rest[..end].parse().unwrap_or(u128::MAX)));
                rest = &rest[end..];
            } else if c.is_alphanumeric() {
                let end =
                    rest.find(|c: char| !c.is_alphanumeric() || c.is_ascii_digit()).unwrap_or(rest.len());
                parts.push(Part::Text(rest[..end].to_lowercase()));
                rest = &rest[end..];
            } else {
                rest = &rest[c.len_utf8()..];
            }
        }
        GenericVersion(parts)
    }
}

impl Ord for GenericVersion {
    /// Part by part; past the shorter one's end a number counts against zero (`1.0 = 1`) and a
    /// word sorts first, as a prerelease does (`1.0a < 1.0`).
    fn cmp(&self, other: &Self) -> Ordering {
        let missing = |p: &Part| match p {
            Part::Num(n) => n.cmp(&0),
            Part::Text(_) => Ordering::Less,
        };
        for i in 0..self.0.len().max(other.0.len()) {
            let ord = match (self.0.get(i), other.0.get(i)) {
                (Some(a), Some(b)) => a.cmp(b),
                (Some(a), None) => missing(a),
                (None, Some(b)) => missing(b).reverse(),
                (None, None) => Ordering::Equal,
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for GenericVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
