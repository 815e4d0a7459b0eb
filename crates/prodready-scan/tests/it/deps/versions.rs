//! Version orderings and range evaluation per ecosystem, as tables; semver agreement by proptest.

use std::cmp::Ordering;

use prodready_scan::deps::range::{Affects, EventKind, Range, Requirement};
use prodready_scan::deps::version::{MavenVersion, Scheme, SemVer, Version};
use proptest::prelude::*;

#[track_caller]
fn check_order(scheme: Scheme, ascending: &[&str]) {
    for pair in ascending.windows(2) {
        let a = Version::parse(scheme, pair[0]).unwrap_or_else(|| panic!("{} parses", pair[0]));
        let b = Version::parse(scheme, pair[1]).unwrap_or_else(|| panic!("{} parses", pair[1]));
        assert_eq!(a.compare(&b), Some(Ordering::Less), "{} < {} ({scheme:?})", pair[0], pair[1]);
        assert_eq!(b.compare(&a), Some(Ordering::Greater), "{} > {} ({scheme:?})", pair[1], pair[0]);
    }
}

#[track_caller]
fn check_equal(scheme: Scheme, a: &str, b: &str) {
    let (x, y) = (Version::parse(scheme, a).expect("parses"), Version::parse(scheme, b).expect("parses"));
    assert_eq!(x.compare(&y), Some(Ordering::Equal), "{a} = {b} ({scheme:?})");
}

#[test]
fn semver_precedence() {
    // SemVer 2.0 section 11's own example, then the cores.
    check_order(
        Scheme::Semver,
        &[
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1-0",
            "1.0.1",
            "1.2.0",
            "1.10.0",
            "2.0.0",
        ],
    );
    check_equal(Scheme::Semver, "1.0.0+build.5", "1.0.0");
    check_equal(Scheme::Semver, "v1.2.3", "1.2.3");
    for bad in ["1.2", "1.2.3.4", "a.b.c", "1.2.3-", "1.2.3-a..b", ""] {
        assert_eq!(SemVer::parse(bad), None, "{bad}");
    }
}

#[test]
fn maven_ordering() {
    // Maven's ComparableVersion: qualifiers, separators and padding.
    check_order(
        Scheme::Maven,
        &[
            "1-alpha-1",
            "1-alpha-2",
            "1-beta-1",
            "1-milestone-1",
            "1-rc-1",
            "1-SNAPSHOT",
            "1",
            "1-sp-1",
            "1-foo",
            "1.0.1",
            "1.1",
            "1.2-jre",
            "1.10",
            "2.0",
        ],
    );
    check_order(Scheme::Maven, &["2.12.6", "2.12.6.1", "2.12.7", "2.13.0-rc1", "2.13.0"]);
    check_order(Scheme::Maven, &["31.0-android", "31.0.1-jre", "31.1-jre", "32.0.0-android"]);
    check_equal(Scheme::Maven, "1", "1.0.0");
    check_equal(Scheme::Maven, "1.0-ga", "1.0");
    check_equal(Scheme::Maven, "1.0-final", "1");
    check_equal(Scheme::Maven, "1.0-cr1", "1.0-rc1");
    check_equal(Scheme::Maven, "1.0a1", "1.0-alpha-1");
    check_equal(Scheme::Maven, "1.0.RELEASE", "1.0");
    assert_eq!(MavenVersion::parse("1.0-SNAPSHOT").cmp(&MavenVersion::parse("1.0")), Ordering::Less);
}

#[test]
fn generic_ordering() {
    check_order(Scheme::Generic, &["0.9", "1.0a", "1.0", "1.2", "1.10", "2"]);
    check_equal(Scheme::Generic, "1.0.0", "1");
}

/// `check(scheme, events, versions list, version, affected)` over OSV ranges.
#[track_caller]
fn check(scheme: Scheme, events: &[(&str, &str)], version: &str, expected: bool) {
    let events = events
        .iter()
        .map(|(kind, v)| {
            let kind = match *kind {
                "introduced" => EventKind::Introduced,
                "fixed" => EventKind::Fixed,
                "last_affected" => EventKind::LastAffected,
                "limit" => EventKind::Limit,
                other => panic!("{other}"),
            };
            (kind, (*v).to_owned())
        })
        .collect();
    let range = Range::new(scheme, events).expect("valid range");
    let affects = Affects::Osv { ranges: vec![range], versions: Vec::new() };
    assert_eq!(affects.contains(scheme, version), expected, "{version} in {affects:?}");
}

#[test]
fn osv_semver_ranges() {
    let two_ranges = [("introduced", "0"), ("fixed", "1.2.3"), ("introduced", "2.0.0"), ("fixed", "2.0.5")];
    for (version, affected) in [
        ("0.0.1", true),
        ("1.2.2", true),
        ("1.2.3-beta.1", true),
        ("1.2.3", false),
        ("1.9.9", false),
        ("2.0.0-rc.1", false),
        ("2.0.0", true),
        ("2.0.4", true),
        ("2.0.5", false),
        ("3.0.0", false),
        ("not-a-version", false),
    ] {
        check(Scheme::Semver, &two_ranges, version, affected);
    }
    // npm audit treats prereleases by precedence (includePrerelease): a prerelease of the fixed
    // version is still affected, one after it is not, and one of an affected line is affected.
    let npm = [("introduced", "4.0.0"), ("fixed", "4.17.21")];
    for (version, affected) in [
        ("4.17.21-rc.0", true),
        ("4.17.21", false),
        ("4.17.22-beta", false),
        ("4.0.0-beta.3", false),
        ("4.5.0-beta.3", true),
        ("3.10.1", false),
    ] {
        check(Scheme::Semver, &npm, version, affected);
    }
    let last = [("introduced", "1.0.0"), ("last_affected", "1.4.2")];
    for (version, affected) in
        [("0.9.0", false), ("1.0.0", true), ("1.4.2", true), ("1.4.3-0", false), ("1.4.3", false)]
    {
        check(Scheme::Semver, &last, version, affected);
    }
    let limited = [("introduced", "0"), ("limit", "3.0.0")];
    for (version, affected) in [("2.9.9", true), ("3.0.0", false), ("4.0.0", false)] {
        check(Scheme::Semver, &limited, version, affected);
    }
    // Events may come in any order; OSV sorts them.
    check(Scheme::Semver, &[("fixed", "1.5.0"), ("introduced", "1.0.0")], "1.2.0", true);
    // Every version, for an empty range.
    check(Scheme::Semver, &[], "9.9.9", true);
}

#[test]
fn osv_maven_and_generic_ranges() {
    // jackson-databind style: fixed in a four-part version.
    let jackson = [("introduced", "2.10.0"), ("fixed", "2.12.6.1")];
    for (version, affected) in
        [("2.9.10.8", false), ("2.10.0", true), ("2.12.6", true), ("2.12.6.1", false), ("2.13.0-rc1", false)]
    {
        check(Scheme::Maven, &jackson, version, affected);
    }
    let guava = [("introduced", "0"), ("fixed", "32.0.0-android")];
    for (version, affected) in
        [("31.1-jre", true), ("30.0-android", true), ("32.0.0-android", false), ("32.1.2-jre", false)]
    {
        check(Scheme::Maven, &guava, version, affected);
    }
    check(Scheme::Generic, &[("introduced", "0"), ("fixed", "2.31.0")], "2.28.1", true);
    check(Scheme::Generic, &[("introduced", "0"), ("fixed", "2.31.0")], "2.31.0", false);
}

#[test]
fn explicit_versions_lists() {
    let affects = Affects::Osv { ranges: Vec::new(), versions: vec!["1.0.0".into(), "1.0.1".into()] };
    assert!(affects.contains(Scheme::Semver, "1.0.1"));
    assert!(affects.contains(Scheme::Semver, "v1.0.1"));
    assert!(!affects.contains(Scheme::Semver, "1.0.2"));
    let maven = Affects::Osv { ranges: Vec::new(), versions: vec!["2.0".into()] };
    assert!(maven.contains(Scheme::Maven, "2.0.0"), "Maven's 2.0 and 2.0.0 are one version");
    assert!(Affects::Every.contains(Scheme::Semver, "0.1.0"));
}

/// `check_rustsec(patched, unaffected, version, affected)`.
#[track_caller]
fn check_rustsec(patched: &[&str], unaffected: &[&str], version: &str, expected: bool) {
    let reqs =
        |list: &[&str]| list.iter().map(|r| Requirement::parse(r).expect("valid requirement")).collect();
    let affects = Affects::RustSec { patched: reqs(patched), unaffected: reqs(unaffected) };
    assert_eq!(
        affects.contains(Scheme::Semver, version),
        expected,
        "{version}: patched {patched:?} unaffected {unaffected:?}"
    );
}

#[test]
fn rustsec_requirements() {
    // RUSTSEC-2021-0003 (smallvec).
    let (patched, unaffected) = ([">= 0.6.14, < 1.0.0", ">= 1.6.1"], ["< 0.6.3"]);
    for (version, affected) in [
        ("0.6.2", false),
        ("0.6.3", true),
        ("0.6.13", true),
        ("0.6.14", false),
        ("1.0.0", true),
        ("1.6.0", true),
        ("1.6.1", false),
        ("1.6.1-alpha", true),
        ("2.0.0-alpha.1", false),
    ] {
        check_rustsec(&patched, &unaffected, version, affected);
    }
    // Caret and tilde, partial versions.
    for (version, affected) in [
        ("0.3.0", true),
        ("0.3.9", false),
        ("0.4.0", true),
        ("0.4.2", false),
        ("0.5.0", true),
        ("1.0.0", false),
    ] {
        check_rustsec(&["^0.3.9", "~0.4.2", ">= 1"], &[], version, affected);
    }
    check_rustsec(&["^0.0.3"], &[], "0.0.3", false);
    check_rustsec(&["^0.0.3"], &[], "0.0.4", true);
    check_rustsec(&["= 0.1.5"], &[], "0.1.5", false);
    check_rustsec(&["= 0.1"], &[], "0.1.9", false);
    check_rustsec(&["> 1.2"], &[], "1.2.9", true);
    check_rustsec(&["> 1.2"], &[], "1.3.0", false);
    check_rustsec(&["<= 1.2"], &[], "1.2.9", false);
    check_rustsec(&[], &["*"], "7.0.0", false);
    // No patched and no unaffected: every version.
    check_rustsec(&[], &[], "0.0.1", true);
    for bad in ["", ">= ", ">= 1.x.3", "1.2.3.4", "=> 1.0", "^a"] {
        assert!(Requirement::parse(bad).is_err(), "{bad:?} is refused");
    }
}

fn op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![">=", ">", "<", "<=", "=", "^", "~", ""])
}

fn partial() -> impl Strategy<Value = String> {
    (0u64..4, prop::option::of(0u64..4), prop::option::of(0u64..4)).prop_map(|(a, b, c)| match (b, c) {
        (None, _) => format!("{a}"),
        (Some(b), None) => format!("{a}.{b}"),
        (Some(b), Some(c)) => format!("{a}.{b}.{c}"),
    })
}

proptest! {
    /// Where both apply (release versions, the requirement forms RustSec writes), our requirement
    /// evaluation is the semver crate's VersionReq.
    #[test]
    fn requirements_agree_with_semver_crate(
        comparators in prop::collection::vec((op(), partial()), 1..3),
        (a, b, c) in (0u64..5, 0u64..5, 0u64..5),
    ) {
        let text = comparators.iter().map(|(op, v)| format!("{op}{v}")).collect::<Vec<_>>().join(", ");
        let ours = Requirement::parse(&text).expect("we parse it");
        let theirs = semver::VersionReq::parse(&text).expect("semver parses it");
        let version = format!("{a}.{b}.{c}");
        prop_assert_eq!(
            ours.matches(&SemVer::parse(&version).unwrap()),
            theirs.matches(&semver::Version::parse(&version).unwrap()),
            "{} against {}", version, text
        );
    }

    /// Precedence, prereleases included, is the semver crate's order (without build metadata).
    #[test]
    fn order_agrees_with_semver_crate(x in version(), y in version()) {
        let ours = SemVer::parse(&x).unwrap().cmp(&SemVer::parse(&y).unwrap());
        let theirs = semver::Version::parse(&x).unwrap().cmp(&semver::Version::parse(&y).unwrap());
        prop_assert_eq!(ours, theirs, "{} vs {}", x, y);
    }
}

fn version() -> impl Strategy<Value = String> {
    let pre = prop::collection::vec(
        prop::sample::select(vec!["alpha", "beta", "rc", "0", "1", "11", "2", "x-y"]),
        0..3,
    );
    (0u64..3, 0u64..3, 0u64..3, pre).prop_map(|(a, b, c, pre)| {
        if pre.is_empty() { format!("{a}.{b}.{c}") } else { format!("{a}.{b}.{c}-{}", pre.join(".")) }
    })
}
