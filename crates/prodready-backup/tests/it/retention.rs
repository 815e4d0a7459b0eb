use expect_test::{Expect, expect};
use prodready_backup::Retention;
use prodready_backup::retention::{Candidate, plan};

/// Backups as (day offset from 2026-11-29, hour, verified); renders the kept ones with their reasons.
fn check(backups: &[(i64, i64, bool)], policy: (u32, u32, u32, u32), expected: Expect) {
    let base = 20_786 * 86_400; // 2026-11-29T00:00:00Z
    let candidates: Vec<Candidate> = backups
        .iter()
        .map(|&(day, hour, verified)| Candidate {
            id: format!("d{day:+}h{hour}"),
            created_unix: base + day * 86_400 + hour * 3600,
            verified_ok: verified,
        })
        .collect();
    let (keep_daily, keep_weekly, keep_monthly, min_keep) = policy;
    let decisions = plan(&candidates, &Retention { keep_daily, keep_weekly, keep_monthly, min_keep });
    let rendered: Vec<String> = decisions
        .iter()
        .map(|d| {
            if d.keep { format!("{} keep({})", d.id, d.reasons.join("+")) } else { format!("{} drop", d.id) }
        })
        .collect();
    expected.assert_eq(&rendered.join("\n"));
}

#[test]
fn daily_keeps_the_newest_of_each_day() {
    check(
        &[(0, 2, false), (0, 14, false), (-1, 2, false), (-2, 2, false), (-3, 2, false)],
        (2, 0, 0, 0),
        expect![[r#"
            d+0h14 keep(daily)
            d+0h2 drop
            d-1h2 keep(daily)
            d-2h2 drop
            d-3h2 drop"#]],
    );
}

#[test]
fn weekly_and_monthly_reach_further_back() {
    // 2026-11-29 is a Sunday: -6 is Monday of the same ISO week, -7 the Sunday before.
    check(
        &[(0, 1, false), (-6, 1, false), (-7, 1, false), (-20, 1, false), (-40, 1, false), (-70, 1, false)],
        (1, 2, 3, 0),
        expect![[r#"
            d+0h1 keep(daily+weekly+monthly)
            d-6h1 drop
            d-7h1 keep(weekly)
            d-20h1 drop
            d-40h1 keep(monthly)
            d-70h1 keep(monthly)"#]],
    );
}

#[test]
fn the_newest_verified_backup_is_always_kept() {
    check(
        &[(0, 1, false), (-1, 1, false), (-30, 1, true), (-31, 1, true)],
        (1, 0, 0, 0),
        expect![[r#"
            d+0h1 keep(daily)
            d-1h1 drop
            d-30h1 keep(newest verified)
            d-31h1 drop"#]],
    );
    // Even with a policy that keeps nothing.
    check(
        &[(0, 1, false), (-5, 1, true)],
        (0, 0, 0, 0),
        expect![[r#"
        d+0h1 drop
        d-5h1 keep(newest verified)"#]],
    );
}

#[test]
fn min_keep_is_a_floor() {
    check(
        &[(0, 1, false), (0, 2, false), (0, 3, false), (0, 4, false)],
        (1, 0, 0, 3),
        expect![[r#"
            d+0h4 keep(daily+minimum)
            d+0h3 keep(minimum)
            d+0h2 keep(minimum)
            d+0h1 drop"#]],
    );
}

#[test]
fn an_empty_store_plans_nothing() {
    check(&[], (7, 4, 6, 3), expect![""]);
}
