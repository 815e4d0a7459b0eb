//! Schedules as data: an expression, a zone and an instant in, the next runs (or the error) out.

use std::time::{Duration, SystemTime};

use expect_test::{Expect, expect};
use prodready_daemon::{Schedule, check_expression, check_zone};

use crate::{at, utc};

/// The next three runs of `expression` in `zone` strictly after `from` (UTC, then the zone's wall
/// clock), or the error.
fn check(expression: &str, zone: &str, from: &str, expected: Expect) {
    let actual = match Schedule::parse(expression, zone) {
        Err(e) => e.to_string(),
        Ok(schedule) => {
            let mut t = at(from);
            let mut lines = Vec::new();
            for _ in 0..3 {
                let Some(next) = schedule.next_after(t) else {
                    lines.push("none".to_owned());
                    break;
                };
                lines.push(format!("{}  {}", utc(next), wall_clock(next, zone)));
                t = next;
            }
            lines.join("\n")
        }
    };
    expected.assert_eq(&actual);
}

/// The last run at or before each instant.
fn check_last(expression: &str, zone: &str, instants: &[&str], expected: Expect) {
    let schedule = Schedule::parse(expression, zone).unwrap();
    let actual = instants
        .iter()
        .map(|t| {
            format!("{t} -> {}", schedule.last_at_or_before(at(t)).map_or_else(|| "none".to_owned(), utc))
        })
        .collect::<Vec<_>>()
        .join("\n");
    expected.assert_eq(&actual);
}

/// The interval measured after each instant.
fn check_interval(expression: &str, zone: &str, instants: &[&str], expected: Expect) {
    let schedule = Schedule::parse(expression, zone).unwrap();
    let actual = instants
        .iter()
        .map(|t| format!("{t} -> {:?}", schedule.interval(at(t))))
        .collect::<Vec<_>>()
        .join("\n");
    expected.assert_eq(&actual);
}

fn wall_clock(t: SystemTime, zone: &str) -> String {
    let zone: chrono_tz::Tz = zone.parse().unwrap();
    chrono::DateTime::<chrono::Utc>::from(t).with_timezone(&zone).format("%a %H:%M:%S %Z").to_string()
}

#[test]
fn five_fields_are_minute_hour_day_month_weekday() {
    check(
        "17 2 * * *",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![[r#"
            2025-01-16T02:17:00Z  Thu 02:17:00 UTC
            2025-01-17T02:17:00Z  Fri 02:17:00 UTC
            2025-01-18T02:17:00Z  Sat 02:17:00 UTC"#]],
    );
    check(
        "0 9 * * MON-FRI",
        "UTC",
        "2025-01-16T12:00:00Z",
        expect![[r#"
            2025-01-17T09:00:00Z  Fri 09:00:00 UTC
            2025-01-20T09:00:00Z  Mon 09:00:00 UTC
            2025-01-21T09:00:00Z  Tue 09:00:00 UTC"#]],
    );
    check(
        "*/20 8-9 1 * *",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![[r#"
            2025-02-01T08:00:00Z  Sat 08:00:00 UTC
            2025-02-01T08:20:00Z  Sat 08:20:00 UTC
            2025-02-01T08:40:00Z  Sat 08:40:00 UTC"#]],
    );
}

#[test]
fn six_fields_put_seconds_first() {
    check(
        "*/10 * * * * *",
        "UTC",
        "2025-01-15T12:00:05Z",
        expect![[r#"
            2025-01-15T12:00:10Z  Wed 12:00:10 UTC
            2025-01-15T12:00:20Z  Wed 12:00:20 UTC
            2025-01-15T12:00:30Z  Wed 12:00:30 UTC"#]],
    );
    check(
        "30 0 12 * * SUN",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![[r#"
            2025-01-19T12:00:30Z  Sun 12:00:30 UTC
            2025-01-26T12:00:30Z  Sun 12:00:30 UTC
            2025-02-02T12:00:30Z  Sun 12:00:30 UTC"#]],
    );
}

#[test]
fn aliases() {
    check(
        "@daily",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![[r#"
        2025-01-16T00:00:00Z  Thu 00:00:00 UTC
        2025-01-17T00:00:00Z  Fri 00:00:00 UTC
        2025-01-18T00:00:00Z  Sat 00:00:00 UTC"#]],
    );
    check(
        "@hourly",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![[r#"
        2025-01-15T13:00:00Z  Wed 13:00:00 UTC
        2025-01-15T14:00:00Z  Wed 14:00:00 UTC
        2025-01-15T15:00:00Z  Wed 15:00:00 UTC"#]],
    );
    check(
        "@weekly",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![[r#"
        2025-01-19T00:00:00Z  Sun 00:00:00 UTC
        2025-01-26T00:00:00Z  Sun 00:00:00 UTC
        2025-02-02T00:00:00Z  Sun 00:00:00 UTC"#]],
    );
    check(
        "@monthly",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![[r#"
        2025-02-01T00:00:00Z  Sat 00:00:00 UTC
        2025-03-01T00:00:00Z  Sat 00:00:00 UTC
        2025-04-01T00:00:00Z  Tue 00:00:00 UTC"#]],
    );
}

#[test]
fn times_are_wall_clock_times_in_the_zone() {
    // Central European Time (UTC+1) in winter, summer time (UTC+2) in summer.
    check(
        "0 2 * * *",
        "Europe/Berlin",
        "2025-01-15T12:00:00Z",
        expect![[r#"
            2025-01-16T01:00:00Z  Thu 02:00:00 CET
            2025-01-17T01:00:00Z  Fri 02:00:00 CET
            2025-01-18T01:00:00Z  Sat 02:00:00 CET"#]],
    );
    check(
        "0 2 * * *",
        "Europe/Berlin",
        "2025-07-15T12:00:00Z",
        expect![[r#"
            2025-07-16T00:00:00Z  Wed 02:00:00 CEST
            2025-07-17T00:00:00Z  Thu 02:00:00 CEST
            2025-07-18T00:00:00Z  Fri 02:00:00 CEST"#]],
    );
    check(
        "0 9 * * *",
        "America/New_York",
        "2025-01-15T12:00:00Z",
        expect![[r#"
            2025-01-15T14:00:00Z  Wed 09:00:00 EST
            2025-01-16T14:00:00Z  Thu 09:00:00 EST
            2025-01-17T14:00:00Z  Fri 09:00:00 EST"#]],
    );
}

#[test]
fn daylight_saving_changes() {
    // 30 March 2025: Berlin's clocks jump from 02:00 to 03:00, so 02:30 does not exist that day: the
    // run happens at the end of the gap.
    check(
        "30 2 * * *",
        "Europe/Berlin",
        "2025-03-28T12:00:00Z",
        expect![[r#"
            2025-03-29T01:30:00Z  Sat 02:30:00 CET
            2025-03-30T01:00:00Z  Sun 03:00:00 CEST
            2025-03-31T00:30:00Z  Mon 02:30:00 CEST"#]],
    );
    // 26 October 2025: 02:30 happens twice; a fixed time runs once.
    check(
        "30 2 * * *",
        "Europe/Berlin",
        "2025-10-24T12:00:00Z",
        expect![[r#"
            2025-10-25T00:30:00Z  Sat 02:30:00 CEST
            2025-10-26T00:30:00Z  Sun 02:30:00 CEST
            2025-10-27T01:30:00Z  Mon 02:30:00 CET"#]],
    );
    // Searching from inside the repeated hour (a start, reload or takeover at 02:10 CET, the second
    // time round): the times of the repeat ran the first time round, and the next run is after the
    // repeat, never a time in the past (which had the scheduler spinning until 03:00).
    check(
        "*/20 * * * *",
        "Europe/Berlin",
        "2025-10-26T01:10:00Z",
        expect![[r#"
            2025-10-26T02:00:00Z  Sun 03:00:00 CET
            2025-10-26T02:20:00Z  Sun 03:20:00 CET
            2025-10-26T02:40:00Z  Sun 03:40:00 CET"#]],
    );
    check(
        "*/20 * * * *",
        "Europe/Berlin",
        "2025-10-26T00:30:00Z",
        expect![[r#"
            2025-10-26T00:40:00Z  Sun 02:40:00 CEST
            2025-10-26T02:00:00Z  Sun 03:00:00 CET
            2025-10-26T02:20:00Z  Sun 03:20:00 CET"#]],
    );
    check(
        "30 2 * * *",
        "Europe/Berlin",
        "2025-10-26T01:10:00Z",
        expect![[r#"
            2025-10-27T01:30:00Z  Mon 02:30:00 CET
            2025-10-28T01:30:00Z  Tue 02:30:00 CET
            2025-10-29T01:30:00Z  Wed 02:30:00 CET"#]],
    );
    check(
        "* * * * * *",
        "Europe/Berlin",
        "2025-10-26T01:00:00Z",
        expect![[r#"
            2025-10-26T02:00:00Z  Sun 03:00:00 CET
            2025-10-26T02:00:01Z  Sun 03:00:01 CET
            2025-10-26T02:00:02Z  Sun 03:00:02 CET"#]],
    );
}

#[test]
fn next_after_is_strictly_after_and_on_whole_seconds() {
    check(
        "17 2 * * *",
        "UTC",
        "2025-01-16T02:17:00Z",
        expect![[r#"
        2025-01-17T02:17:00Z  Fri 02:17:00 UTC
        2025-01-18T02:17:00Z  Sat 02:17:00 UTC
        2025-01-19T02:17:00Z  Sun 02:17:00 UTC"#]],
    );
    check(
        "17 2 * * *",
        "UTC",
        "2025-01-16T02:16:59.999Z",
        expect![[r#"
            2025-01-16T02:17:00Z  Thu 02:17:00 UTC
            2025-01-17T02:17:00Z  Fri 02:17:00 UTC
            2025-01-18T02:17:00Z  Sat 02:17:00 UTC"#]],
    );
    // Instants are rarely on a whole second: the scheduled times still are (they are the unique key of
    // a run in the table, so every replica must compute the same ones).
    check(
        "17 2 * * *",
        "UTC",
        "2025-01-15T12:00:00.537Z",
        expect![[r#"
            2025-01-16T02:17:00Z  Thu 02:17:00 UTC
            2025-01-17T02:17:00Z  Fri 02:17:00 UTC
            2025-01-18T02:17:00Z  Sat 02:17:00 UTC"#]],
    );
    check(
        "* * * * * *",
        "UTC",
        "2025-01-15T12:00:00.537Z",
        expect![[r#"
            2025-01-15T12:00:01Z  Wed 12:00:01 UTC
            2025-01-15T12:00:02Z  Wed 12:00:02 UTC
            2025-01-15T12:00:03Z  Wed 12:00:03 UTC"#]],
    );
}

#[test]
fn last_at_or_before_includes_the_instant_itself() {
    check_last(
        "17 2 * * *",
        "UTC",
        &["2025-01-16T02:17:00Z", "2025-01-16T02:17:00.250Z", "2025-01-16T02:16:59Z", "2025-01-16T12:00:00Z"],
        expect![[r#"
            2025-01-16T02:17:00Z -> 2025-01-16T02:17:00Z
            2025-01-16T02:17:00.250Z -> 2025-01-16T02:17:00Z
            2025-01-16T02:16:59Z -> 2025-01-15T02:17:00Z
            2025-01-16T12:00:00Z -> 2025-01-16T02:17:00Z"#]],
    );
    check_last(
        "0 2 * * *",
        "Europe/Berlin",
        &["2025-01-16T01:00:00Z", "2025-07-16T00:59:59Z"],
        expect![[r#"
            2025-01-16T01:00:00Z -> 2025-01-16T01:00:00Z
            2025-07-16T00:59:59Z -> 2025-07-16T00:00:00Z"#]],
    );
    check_last(
        "*/10 * * * * *",
        "UTC",
        &["2025-01-16T02:17:09.999Z"],
        expect!["2025-01-16T02:17:09.999Z -> 2025-01-16T02:17:00Z"],
    );
}

/// The second run after a success: when two runs have come without another, whatever the gaps.
#[test]
fn the_second_run_after_a_success_is_when_a_job_is_overdue() {
    let check = |expression: &str, success: &str, expected: Expect| {
        let schedule = Schedule::parse(expression, "UTC").unwrap();
        let second = schedule
            .second_run_after(at(success))
            .map_or_else(|| "none".to_owned(), |t| format!("{}  {}", utc(t), wall_clock(t, "UTC")));
        expected.assert_eq(&second);
    };
    // A weekday job whose last success was on Friday: due Monday, overdue only after Tuesday's run (the
    // weekend is no missed run).
    check("0 9 * * MON-FRI", "2025-01-17T09:00:04Z", expect!["2025-01-21T09:00:00Z  Tue 09:00:00 UTC"]);
    check("0 9 * * MON-FRI", "2025-01-15T09:00:04Z", expect!["2025-01-17T09:00:00Z  Fri 09:00:00 UTC"]);
    check("*/10 * * * *", "2025-01-15T12:00:30Z", expect!["2025-01-15T12:20:00Z  Wed 12:20:00 UTC"]);
}

#[test]
fn interval_is_the_time_between_the_next_two_runs() {
    check_interval(
        "*/10 * * * * *",
        "UTC",
        &["2025-01-15T12:00:05Z"],
        expect!["2025-01-15T12:00:05Z -> Some(10s)"],
    );
    check_interval(
        "0 9 * * MON-FRI",
        "UTC",
        // Thursday: Friday to Monday is three days; Monday: Tuesday to Wednesday is one.
        &["2025-01-16T12:00:00Z", "2025-01-20T12:00:00Z"],
        expect![[r#"
            2025-01-16T12:00:00Z -> Some(259200s)
            2025-01-20T12:00:00Z -> Some(86400s)"#]],
    );
    check_interval(
        "0 2 * * *",
        "Europe/Berlin",
        // The night the clocks go forward is an hour shorter, the night they go back an hour longer.
        &["2025-01-15T12:00:00Z", "2025-03-29T12:00:00Z", "2025-10-25T12:00:00Z"],
        expect![[r#"
            2025-01-15T12:00:00Z -> Some(86400s)
            2025-03-29T12:00:00Z -> Some(82800s)
            2025-10-25T12:00:00Z -> Some(90000s)"#]],
    );
}

#[test]
fn bad_expressions_are_refused_with_the_problem() {
    check(
        "61 * * * *",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![
            "invalid cron expression `61 * * * *`: Component error: Number out of bounds (expected minute hour day-of-month month day-of-week, optionally with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly)"
        ],
    );
    check(
        "* * *",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![
            "invalid cron expression `* * *`: Invalid pattern: Pattern must have 5 or 6 fields when years are disallowed (expected minute hour day-of-month month day-of-week, optionally with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly)"
        ],
    );
    check(
        "",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![
            "invalid cron expression ``: CronPattern cannot be an empty string (expected minute hour day-of-month month day-of-week, optionally with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly)"
        ],
    );
    check(
        "* * * * * * *",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![
            "invalid cron expression `* * * * * * *`: Invalid pattern: Pattern must have 5 or 6 fields when years are disallowed (expected minute hour day-of-month month day-of-week, optionally with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly)"
        ],
    );
    check(
        "0 25 * * *",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![
            "invalid cron expression `0 25 * * *`: Component error: Number out of bounds (expected minute hour day-of-month month day-of-week, optionally with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly)"
        ],
    );
    check(
        "@fortnightly",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![
            "invalid cron expression `@fortnightly`: Invalid pattern: Pattern must have 5 or 6 fields when years are disallowed (expected minute hour day-of-month month day-of-week, optionally with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly)"
        ],
    );
    check(
        "0 0 31 2 *",
        "UTC",
        "2025-01-15T12:00:00Z",
        expect![
            "invalid cron expression `0 0 31 2 *`: it never matches a date (expected minute hour day-of-month month day-of-week, optionally with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly)"
        ],
    );
}

#[test]
fn bad_zones_are_refused_by_name() {
    check(
        "0 2 * * *",
        "Mars/Olympus_Mons",
        "2025-01-15T12:00:00Z",
        expect!["unknown time zone `Mars/Olympus_Mons` (an IANA name such as UTC or Europe/Berlin)"],
    );
    check(
        "0 2 * * *",
        "",
        "2025-01-15T12:00:00Z",
        expect!["unknown time zone `` (an IANA name such as UTC or Europe/Berlin)"],
    );
    check(
        "0 2 * * *",
        "CET+1",
        "2025-01-15T12:00:00Z",
        expect!["unknown time zone `CET+1` (an IANA name such as UTC or Europe/Berlin)"],
    );
}

#[test]
fn configuration_checks_give_the_same_answers() {
    let actual = [
        check_expression("@daily").map_err(|e| e.to_string()),
        check_expression("61 * * * *").map_err(|e| e.to_string()),
        check_zone("Europe/Berlin").map_err(|e| e.to_string()),
        check_zone("Europe/Atlantis").map_err(|e| e.to_string()),
    ];
    expect![[r#"
        [
            Ok(
                (),
            ),
            Err(
                "invalid cron expression `61 * * * *`: Component error: Number out of bounds (expected minute hour day-of-month month day-of-week, optionally with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly)",
            ),
            Ok(
                (),
            ),
            Err(
                "unknown time zone `Europe/Atlantis` (an IANA name such as UTC or Europe/Berlin)",
            ),
        ]
    "#]].assert_debug_eq(&actual);
}

#[test]
fn a_schedule_shows_its_expression_and_zone() {
    let schedule = Schedule::parse("  0 2 * * *  ", "Europe/Berlin").unwrap();
    assert_eq!((schedule.expression(), schedule.zone()), ("0 2 * * *", "Europe/Berlin"));
    assert_eq!(schedule, Schedule::parse("0 2 * * *", "Europe/Berlin").unwrap());
    assert_ne!(schedule, Schedule::parse("0 2 * * *", "UTC").unwrap());
    assert_eq!(
        Schedule::parse("*/1 * * * * *", "UTC").unwrap().interval(SystemTime::now()),
        Some(Duration::from_secs(1))
    );
}
