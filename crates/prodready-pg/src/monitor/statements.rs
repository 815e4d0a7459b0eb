//! pg_stat_statements counters made monotonic and bounded: per statement, what the server reports is
//! accumulated across resets and evictions (a counter that went down restarted from zero), the top N by
//! total time are exported on their own, and everything else goes to one `other` total that only ever
//! grows (it accumulates the increments of the statements that are not exported at that scrape).

use std::collections::HashMap;

/// Counters of one statement or of a group.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub calls: f64,
    pub exec_seconds: f64,
    pub rows: f64,
}

impl Totals {
    fn add(&mut self, other: Totals) {
        self.calls += other.calls;
        self.exec_seconds += other.exec_seconds;
        self.rows += other.rows;
    }

    /// `self - before`, or `self` when any counter went down (the server restarted it).
    fn since(self, before: Totals) -> Totals {
        if self.calls < before.calls || self.exec_seconds < before.exec_seconds || self.rows < before.rows {
            self
        } else {
            Totals {
                calls: self.calls - before.calls,
                exec_seconds: self.exec_seconds - before.exec_seconds,
                rows: self.rows - before.rows,
            }
        }
    }
}

/// One pg_stat_statements entry: a queryid has one per user and top-level flag.
#[derive(Debug, Clone, Default)]
struct Entry {
    /// What the server said last time.
    last: Totals,
    /// Scrapes since the server last listed it.
    absent: u32,
}

/// One statement (queryid): what is exported.
#[derive(Debug, Clone, Default)]
struct Statement {
    /// The sum of every increment seen of any of its entries.
    total: Totals,
    /// Scrapes since the server last listed any of its entries.
    absent: u32,
    /// It has had a series of its own (it was in the top N once).
    exported: bool,
}

/// Statements the server stopped listing are forgotten after this many scrapes, unless they have been
/// exported: a statement that had a series keeps its total, so that if it comes back its series goes on
/// from where it stopped instead of restarting from zero (a counter never goes backwards). The others,
/// which never had a series, are forgotten (their increments were counted in `other`, which keeps them).
const FORGET_AFTER: u32 = 60;

/// Absent statements that had a series are kept up to this many times the top N (queryids churn with
/// migrations and temporary tables, and an exporter runs for months); beyond it the longest absent are
/// forgotten, and one of them that comes back restarts its series (which Prometheus' `rate` reads as a
/// counter reset).
const KEEP_ABSENT_EXPORTED: usize = 20;

/// The running state of one database's statements between scrapes.
#[derive(Debug, Default)]
pub struct Tracker {
    /// By (queryid, entry key).
    entries: HashMap<(i64, i64), Entry>,
    statements: HashMap<i64, Statement>,
    other: Totals,
    /// The server's deallocation count last time, and what is exported.
    deallocations: (i64, i64),
}

/// One scrape's result: the top statements (queryid and accumulated totals, by total time, largest
/// first) and the accumulated total of the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub top: Vec<(i64, Totals)>,
    pub other: Totals,
    /// Statements (queryids) the server listed this time.
    pub tracked: usize,
}

impl Tracker {
    /// Folds in what the server lists now and ranks. One row per pg_stat_statements entry: its queryid,
    /// a key that tells apart the entries of one queryid (its user and top-level flag), and its counters.
    /// Each entry is followed on its own, so one user's entry evicted or reset
    /// (`pg_stat_statements_reset(userid, dbid, queryid)`) costs the statement's total nothing and adds
    /// nothing twice.
    pub fn update(&mut self, rows: &[(i64, i64, Totals)], top_n: usize) -> Ranked {
        let mut increments: HashMap<i64, Totals> = HashMap::with_capacity(rows.len());
        for entry in self.entries.values_mut() {
            entry.absent = entry.absent.saturating_add(1);
        }
        for statement in self.statements.values_mut() {
            statement.absent = statement.absent.saturating_add(1);
        }
        for (queryid, key, now) in rows {
            let entry = self.entries.entry((*queryid, *key)).or_default();
            let increment = now.since(entry.last);
            entry.last = *now;
            entry.absent = 0;
            let statement = self.statements.entry(*queryid).or_default();
            statement.total.add(increment);
            statement.absent = 0;
            increments.entry(*queryid).or_default().add(increment);
        }
        // Gone from the server (reset or evicted): when it comes back it starts from zero.
        for entry in self.entries.values_mut().filter(|e| e.absent > 0) {
            entry.last = Totals::default();
        }
        // An absent entry already counts from zero when it comes back, so forgetting it changes nothing.
        self.entries.retain(|_, e| e.absent < FORGET_AFTER);
        self.statements.retain(|_, s| s.exported || s.absent < FORGET_AFTER);
        let keep = KEEP_ABSENT_EXPORTED * top_n.max(1);
        let mut absent: Vec<(u32, i64)> = self
            .statements
            .iter()
            .filter(|(_, s)| s.absent >= FORGET_AFTER)
            .map(|(id, s)| (s.absent, *id))
            .collect();
        if absent.len() > keep {
            absent.sort_unstable_by(|a, b| b.cmp(a));
            for (_, queryid) in &absent[..absent.len() - keep] {
                self.statements.remove(queryid);
            }
        }
        let mut listed: Vec<(i64, Totals)> =
            self.statements.iter().filter(|(_, s)| s.absent == 0).map(|(id, s)| (*id, s.total)).collect();
        let tracked = listed.len();
        listed.sort_by(|a, b| b.1.exec_seconds.total_cmp(&a.1.exec_seconds).then(a.0.cmp(&b.0)));
        listed.truncate(top_n);
        for (queryid, _) in &listed {
            if let Some(statement) = self.statements.get_mut(queryid) {
                statement.exported = true;
            }
        }
        for (queryid, increment) in &increments {
            if !listed.iter().any(|(id, _)| id == queryid) {
                self.other.add(*increment);
            }
        }
        Ranked { top: listed, other: self.other, tracked }
    }

    /// The server's count of evicted entries (`pg_stat_statements_info.dealloc`) made monotonic: a reset
    /// (`pg_stat_statements_reset()` zeroes it) restarts the increments from zero.
    pub fn deallocations(&mut self, now: i64) -> i64 {
        let (last, total) = self.deallocations;
        let increment = if now >= last { now - last } else { now };
        self.deallocations = (now, total + increment);
        total + increment
    }
}

/// A statement's text fit for a label or a table: literals a utility statement may still carry
/// (pg_stat_statements replaces those of planned statements with `$n`) masked as `?`, whitespace
/// collapsed, at most `max_chars` characters.
pub fn normalize(query: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(query.len().min(max_chars + 4));
    let chars: Vec<char> = query.chars().collect();
    let mut i = 0;
    let mut last_space = true;
    while i < chars.len() {
        let c = chars[i];
        let prev_ident =
            i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == '$');
        if c == '\'' || ((c == 'E' || c == 'e') && chars.get(i + 1) == Some(&'\'') && !prev_ident) {
            // A string literal, '' as an escaped quote (and \' in E'' strings).
            let escape = c != '\'';
            i += if escape { 2 } else { 1 };
            while i < chars.len() {
                if escape && chars[i] == '\\' {
                    i += 2;
                    continue;
                }
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            out.push('?');
            last_space = false;
        } else if c == '$'
            && !prev_ident
            && let Some(tag_end) = dollar_tag(&chars, i)
        {
            // A dollar-quoted string: $tag$ ... $tag$.
            let tag: String = chars[i..=tag_end].iter().collect();
            let body_start = tag_end + 1;
            let rest: String = chars[body_start..].iter().collect();
            let skip = rest
                .find(&tag)
                .map_or(chars.len() - body_start, |at| rest[..at].chars().count() + tag.chars().count());
            i = body_start + skip;
            out.push('?');
            last_space = false;
        } else if c.is_ascii_digit() && !prev_ident {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push('?');
            last_space = false;
        } else if c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
            i += 1;
        } else {
            out.push(c);
            last_space = false;
            i += 1;
        }
    }
    let trimmed = out.trim_end();
    match trimmed.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_owned(),
    }
}

/// The index of the closing `$` of a dollar-quote tag starting at `start` (`$$` or `$name$`); `None` for
/// a parameter such as `$1`.
fn dollar_tag(chars: &[char], start: usize) -> Option<usize> {
    let mut j = start + 1;
    if chars.get(j).is_some_and(char::is_ascii_digit) {
        return None;
    }
    while let Some(&c) = chars.get(j) {
        if c == '$' {
            return Some(j);
        }
        if !(c.is_alphanumeric() || c == '_') {
            return None;
        }
        j += 1;
    }
    None
}
