//! Freshness rules shared by the checklist's backup check and backup status: verification staleness
//! and the newest recovery drill.

use std::time::Duration;

use prodready_backup::catalog::{self, BackupInfo, BaseInfo};
use prodready_backup::freshness::{Freshness, Limits, Verdict};

/// 2026-11-29T00:00:00Z
const NOW: i64 = 20_786 * 86_400;
const HOUR: Duration = Duration::from_secs(3600);

fn backup(id: &str, created_at: &str, last_verified_ok_at: Option<&str>) -> BackupInfo {
    BackupInfo {
        kind: "logical".to_owned(),
        id: id.to_owned(),
        created_at: created_at.to_owned(),
        database: "app".to_owned(),
        size_bytes: 1,
        rows: 1,
        verified_at: last_verified_ok_at.map(str::to_owned),
        verify_ok: last_verified_ok_at.map(|_| true),
        verify_mode: last_verified_ok_at.map(|_| "restore".to_owned()),
        last_verified_ok_at: last_verified_ok_at.map(str::to_owned),
    }
}

fn base(id: &str, drills: (Option<(&str, bool)>, Option<&str>)) -> BaseInfo {
    let (newest, last_ok) = drills;
    BaseInfo {
        kind: "base".to_owned(),
        id: id.to_owned(),
        created_at: "2026-11-20T00:00:00Z".to_owned(),
        finished_at: "2026-11-20T00:05:00Z".to_owned(),
        system_identifier: "7300000000000000000".to_owned(),
        server_version: "17.0".to_owned(),
        timeline: 1,
        start_lsn: "0/2000028".to_owned(),
        stop_lsn: "0/2000100".to_owned(),
        size_bytes: 1,
        verified_at: newest.map(|(at, _)| at.to_owned()),
        verify_ok: newest.map(|(_, ok)| ok),
        verify_mode: newest.map(|_| "drill".to_owned()),
        last_verified_ok_at: last_ok.map(str::to_owned),
    }
}

#[test]
fn verification_staleness_follows_the_verdict() {
    let limits = Limits { max_age: 26 * HOUR, max_verify_age: 48 * HOUR };
    let never = Freshness::of(&[backup("b1", "2026-11-28T23:00:00Z", None)], None, NOW);
    assert!(never.verification_stale(limits.max_verify_age));
    assert!(matches!(never.judge(&limits), Verdict::NeverVerified { .. }));

    // Verified exactly at the limit: still fresh; a second older: stale.
    let backups = [
        backup("b2", "2026-11-28T23:00:00Z", None),
        backup("b1", "2026-11-26T22:00:00Z", Some("2026-11-27T00:00:00Z")),
    ];
    let at_limit = Freshness::of(&backups, Some("app"), NOW);
    assert_eq!(at_limit.verified_age, Some(48 * HOUR));
    assert!(!at_limit.verification_stale(limits.max_verify_age));
    assert!(matches!(at_limit.judge(&limits), Verdict::Fresh { .. }));
    assert!(at_limit.verification_stale(48 * HOUR - Duration::from_secs(1)));
    let tighter = Limits { max_verify_age: 47 * HOUR, ..limits };
    assert!(matches!(at_limit.judge(&tighter), Verdict::VerificationTooOld { .. }));

    // Another database's verification does not count.
    let other = Freshness::of(&backups, Some("other"), NOW);
    assert!(other.verification_stale(Duration::MAX));
    assert_eq!(other.judge(&limits), Verdict::NoBackup);
}

#[test]
fn the_last_drill_is_the_newest_that_passed() {
    assert_eq!(catalog::last_drill(&[]), None);
    let bases = [
        // Newest base, never drilled.
        base("base-3", (None, None)),
        // Its last drill failed; the one before passed, and is the newest pass.
        base("base-2", (Some(("2026-11-28T12:00:00Z", false)), Some("2026-11-27T12:00:00Z"))),
        base("base-1", (Some(("2026-11-25T12:00:00Z", true)), Some("2026-11-25T12:00:00Z"))),
    ];
    let (drilled, at) = catalog::last_drill(&bases).unwrap();
    assert_eq!((drilled.id.as_str(), at), ("base-2", "2026-11-27T12:00:00Z"));
    assert_eq!(catalog::last_drill(&bases[..1]), None);
    let (drilled, _) = catalog::last_drill(&bases[2..]).unwrap();
    assert_eq!(drilled.id, "base-1");
}
