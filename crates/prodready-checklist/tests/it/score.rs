use expect_test::{Expect, expect};
use prodready_checklist::{Category, CheckResult, Status, score};

use crate::result;

use Category::*;
use Status::*;

/// Scores the rows and renders overall, verdict, blocking ids and the categories that have checks.
fn check(rows: &[(Category, Status, f64, bool)], min_score: f64, expected: Expect) {
    let results: Vec<CheckResult> = rows
        .iter()
        .enumerate()
        .map(|(i, &(c, s, w, must))| result(&format!("c{i}"), c, s, w, must))
        .collect();
    let card = score(&results, min_score);
    let categories: Vec<String> = card
        .categories
        .iter()
        .filter(|c| c.total + c.excluded > 0)
        .map(|c| {
            format!(
                "{}={}({}/{}, {} excluded)",
                c.category,
                c.score.map_or("-".into(), |s| s.to_string()),
                c.passed,
                c.total,
                c.excluded
            )
        })
        .collect();
    let actual = format!(
        "overall={} verdict={:?} blocking={:?} {}",
        card.overall.map_or("-".into(), |s| s.to_string()),
        card.verdict,
        card.blocking,
        categories.join(" ")
    );
    expected.assert_eq(&actual);
}

#[test]
fn all_passing_is_ten_and_ready() {
    check(
        &[(Features, Pass, 1.0, true), (Backups, Pass, 2.0, false)],
        7.0,
        expect![[
            r#"overall=10 verdict=Ready blocking=[] Features=10(1/1, 0 excluded) Backups=10(1/1, 0 excluded)"#
        ]],
    );
}

#[test]
fn weights_shape_the_score() {
    // 3 of 4 weight passes in Monitoring: 7.5; overall (3 + 1) / (4 + 2) = 6.7.
    check(
        &[
            (Monitoring, Pass, 3.0, false),
            (Monitoring, Fail, 1.0, false),
            (Testing, Pass, 1.0, false),
            (Testing, Error, 1.0, false),
        ],
        5.0,
        expect![
            "overall=6.6 verdict=Ready blocking=[] Monitoring=7.5(1/2, 0 excluded) Testing=5(1/2, 0 excluded)"
        ],
    );
}

#[test]
fn not_applicable_and_skipped_checks_are_left_out() {
    check(
        &[(Security, Pass, 1.0, false), (Security, NotApplicable, 5.0, true), (Security, Skip, 5.0, true)],
        7.0,
        expect![[r#"overall=10 verdict=Ready blocking=[] Security=10(1/1, 2 excluded)"#]],
    );
    check(
        &[(Security, NotApplicable, 1.0, false)],
        7.0,
        expect![[r#"overall=- verdict=BelowMinimum blocking=[] Security=-(0/0, 1 excluded)"#]],
    );
}

#[test]
fn a_failed_must_have_blocks_a_high_average() {
    let mut rows = vec![(Features, Pass, 1.0, false); 19];
    rows.push((Backups, Fail, 1.0, true));
    check(
        &rows,
        7.0,
        expect![[
            r#"overall=9.5 verdict=MustHaveFailed blocking=["c19"] Features=10(19/19, 0 excluded) Backups=0(0/1, 0 excluded)"#
        ]],
    );
}

#[test]
fn below_the_minimum_without_must_have_failures() {
    check(
        &[(Logging, Pass, 1.0, true), (Logging, Fail, 1.0, false)],
        7.0,
        expect![[r#"overall=5 verdict=BelowMinimum blocking=[] Logging=5(1/2, 0 excluded)"#]],
    );
    check(
        &[(Logging, Pass, 1.0, true), (Logging, Fail, 1.0, false)],
        5.0,
        expect![[r#"overall=5 verdict=Ready blocking=[] Logging=5(1/2, 0 excluded)"#]],
    );
}

#[test]
fn warn_counts_as_passed_and_manual_states_as_failed() {
    check(
        &[
            (Security, Warn, 1.0, true),
            (Backups, ManualPending, 1.0, false),
            (Backups, ManualExpired, 1.0, true),
            (Backups, Pass, 1.0, false),
        ],
        0.0,
        expect![[
            r#"overall=5 verdict=MustHaveFailed blocking=["c2"] Security=10(1/1, 0 excluded) Backups=3.3(1/3, 0 excluded)"#
        ]],
    );
}

#[test]
fn an_error_in_a_must_have_blocks() {
    check(
        &[(CiCd, Error, 1.0, true)],
        0.0,
        expect![[r#"overall=0 verdict=MustHaveFailed blocking=["c0"] CI/CD=0(0/1, 0 excluded)"#]],
    );
}

#[test]
fn zero_weight_checks_are_shown_but_do_not_score() {
    check(
        &[(Features, Fail, 0.0, false), (Features, Pass, 1.0, false)],
        7.0,
        expect![[r#"overall=10 verdict=Ready blocking=[] Features=10(1/2, 0 excluded)"#]],
    );
}

/// The gate reads the unrounded score, and the score shown is rounded down: 30 of 43 is 6.977, below a
/// minimum of 7 (it once read 7.0 and passed).
#[test]
fn a_score_just_under_the_minimum_is_below_it_and_shows_so() {
    let mut rows = vec![(Security, Pass, 29.0, true), (Logging, Pass, 1.0, false)];
    rows.push((Logging, Fail, 13.0, false));
    check(
        &rows,
        7.0,
        expect![[
            r#"overall=6.9 verdict=BelowMinimum blocking=[] Security=10(1/1, 0 excluded) Logging=0.7(1/2, 0 excluded)"#
        ]],
    );
    // Exactly at the minimum passes, and shows the minimum.
    check(
        &[(Security, Pass, 7.0, false), (Security, Fail, 3.0, false)],
        7.0,
        expect![[r#"overall=7 verdict=Ready blocking=[] Security=7(1/2, 0 excluded)"#]],
    );
}
