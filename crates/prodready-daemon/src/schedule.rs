//! Cron schedules with a time zone: 5 fields, or 6 with seconds first, or an `@daily`-style alias.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Timelike as _, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::{Error, Result};

/// A parsed cron expression evaluated in a time zone (daylight-saving gaps and repeats as croner
/// resolves them: a time that does not exist runs at the end of the gap, a repeated one runs once).
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    zone: Tz,
    cron: Cron,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.zone == other.zone
    }
}

impl Schedule {
    /// Parses `expression` (`"17 2 * * *"`, `"*/10 * * * * *"`, `"@daily"`) in the IANA time zone `zone`
    /// (`"UTC"`, `"Europe/Berlin"`).
    pub fn parse(expression: &str, zone: &str) -> Result<Self> {
        let zone = parse_zone(zone)?;
        let cron = parser().parse(expression).map_err(|e| Error::Schedule {
            expression: expression.to_owned(),
            problem: e.to_string().trim_end_matches('.').to_owned(),
        })?;
        // An expression that never fires (`0 0 31 2 *`) is refused now, not discovered at run time.
        let now = Utc::now().with_timezone(&zone);
        cron.find_next_occurrence(&now, false).map_err(|_| Error::Schedule {
            expression: expression.to_owned(),
            problem: "it never matches a date".to_owned(),
        })?;
        Ok(Self { expression: expression.trim().to_owned(), zone, cron })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone's IANA name.
    pub fn zone(&self) -> &str {
        self.zone.name()
    }

    /// The first time strictly after `t`.
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        let floor = whole_second(t);
        let mut from = floor.with_timezone(&self.zone);
        // croner searches wall-clock times and gives a time that occurs twice (the hour repeated when the
        // clocks go back) its first instant: from inside the repeat, that instant is in the past. Such a
        // time already ran (a repeated time runs once), so the search goes on past it; bounded, as the
        // longest repeat of any zone holds fewer runs than this even at one a second.
        for _ in 0..100_000 {
            let next = self.cron.find_next_occurrence(&from, false).ok()?;
            if next.with_timezone(&Utc) > floor {
                return Some(SystemTime::from(next));
            }
            from = next;
        }
        None
    }

    /// The last time at or before `t`.
    pub fn last_at_or_before(&self, t: SystemTime) -> Option<SystemTime> {
        let at = whole_second(t).with_timezone(&self.zone);
        self.cron.find_previous_occurrence(&at, true).ok().map(SystemTime::from)
    }

    /// The second run strictly after `t`: with no success since `t`, two runs have come by then, whatever
    /// the gaps between them (what "overdue" is measured against).
    pub fn second_run_after(&self, t: SystemTime) -> Option<SystemTime> {
        self.next_after(self.next_after(t)?)
    }

    /// The time between the next two runs after `t`.
    pub fn interval(&self, t: SystemTime) -> Option<Duration> {
        let first = self.next_after(t)?;
        let second = self.next_after(first)?;
        second.duration_since(first).ok()
    }
}

/// Checks a cron expression without a time zone (for configuration validation).
pub fn check_expression(expression: &str) -> Result<()> {
    Schedule::parse(expression, "UTC").map(drop)
}

/// Checks an IANA time zone name.
pub fn check_zone(zone: &str) -> Result<()> {
    parse_zone(zone).map(drop)
}

/// `t` without its fraction of a second. croner keeps the fraction of the instant it starts from, and
/// a scheduled time is a run's key in the table of runs: every replica must compute the same one.
fn whole_second(t: SystemTime) -> DateTime<Utc> {
    let t = DateTime::<Utc>::from(t);
    t.with_nanosecond(0).unwrap_or(t)
}

fn parse_zone(zone: &str) -> Result<Tz> {
    zone.parse::<Tz>().map_err(|_| Error::Zone(zone.to_owned()))
}

fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build()
}
