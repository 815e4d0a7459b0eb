//! Scanning one buffer: keywords first (one Aho-Corasick pass over the bytes), then only the lines
//! holding a rule's keyword go through that rule's regex; every candidate secret is checked against
//! entropy, digits and the allowlists.

use std::ops::Range;

use super::rules::{Ruleset, entropy};
use crate::report::{Finding, fingerprint};

/// How far past its first line a multiline rule (a private key) may reach.
const MULTILINE_WINDOW: usize = 64 * 1024;

/// Bytes of context kept on each side of a secret in an excerpt of a long line.
const CONTEXT: usize = 48;

/// Lines up to this many bytes are shown whole (secrets redacted).
const WHOLE_LINE: usize = 160;

/// Markers that silence every finding on their line.
pub(crate) const INLINE_ALLOW: [&[u8]; 2] = [b"prodready:allow", b"gitleaks:allow"];

/// A secret found in a buffer.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub(crate) rule: u16,
    /// 1-based line of the secret's start within the buffer.
    pub(crate) line: u32,
    /// 1-based column (in characters) of the secret's start.
    pub(crate) column: u32,
    pub(crate) secret: Range<usize>,
    /// Where the finding sits: the secret's start, or a multiline match's start.
    pub(crate) anchor: usize,
    /// The line the finding sits on.
    pub(crate) line_range: Range<usize>,
    /// The line carries `prodready:allow`.
    pub(crate) allowed: bool,
}

/// Every secret in `buf`, in order.
pub(crate) fn scan(rules: &Ruleset, buf: &[u8]) -> Vec<Hit> {
    // (line start, line end, rule) for every line holding a keyword of the rule
    let mut candidates: Vec<(usize, usize, u16)> = Vec::new();
    let mut line: Option<(usize, usize)> = None;
    for m in rules.keywords.find_overlapping_iter(buf) {
        let (ls, le) = match line {
            Some((ls, le)) if m.start() >= ls && m.start() < le => (ls, le),
            _ => {
                let ls = memchr::memrchr(b'\n', &buf[..m.start()]).map_or(0, |i| i + 1);
                let le = memchr::memchr(b'\n', &buf[m.end()..]).map_or(buf.len(), |i| m.end() + i);
                line = Some((ls, le));
                (ls, le)
            }
        };
        for &rule in &rules.owners[m.pattern().as_usize()] {
            candidates.push((ls, le, rule));
        }
    }
    if !rules.keywordless.is_empty() {
        let mut ls = 0;
        while ls < buf.len() {
            let le = memchr::memchr(b'\n', &buf[ls..]).map_or(buf.len(), |i| ls + i);
            for &rule in &rules.keywordless {
                candidates.push((ls, le, rule));
            }
            ls = le + 1;
        }
    }
    if candidates.is_empty() {
        return Vec::new();
    }
    candidates.sort_unstable();
    candidates.dedup();

    let mut hits: Vec<Hit> = Vec::new();
    let mut counted = (0usize, 1u32); // (offset, line number at offset)
    for (ls, le, rule_index) in candidates {
        let rule = &rules.rules[usize::from(rule_index)];
        let hay = if rule.multiline {
            &buf[ls..buf.len().min(ls + MULTILINE_WINDOW).max(le)]
        } else {
            &buf[ls..le]
        };
        for caps in rule.regex.captures_iter(hay) {
            let whole = caps.get(0).expect("group 0 always matches");
            if whole.start() > le - ls {
                break;
            }
            let Some(secret) = caps.get(rule.group) else { continue };
            let range = ls + secret.start()..ls + secret.end();
            if range.is_empty() {
                continue;
            }
            if !keep(rules, rule_index, &buf[range.clone()]) {
                continue;
            }
            // a finding sits where its match starts (a private key: its BEGIN line)
            let anchor = if rule.multiline { ls + whole.start() } else { range.start };
            if rule.multiline && hits.iter().any(|h| h.rule == rule_index && h.secret.start == range.start) {
                continue;
            }
            let newlines = memchr::memchr_iter(b'\n', &buf[counted.0..ls]).count();
            counted = (ls, counted.1 + u32::try_from(newlines).unwrap_or(u32::MAX));
            let line_bytes = &buf[ls..le];
            hits.push(Hit {
                rule: rule_index,
                line: counted.1,
                column: chars(&buf[ls..anchor]) + 1,
                anchor,
                secret: range,
                line_range: ls..le,
                allowed: INLINE_ALLOW.iter().any(|m| memchr::memmem::find(line_bytes, m).is_some()),
            });
        }
    }
    hits.sort_by_key(|h| (h.secret.start, h.rule));
    // a generic rule stays quiet where a specific one found the same secret
    if hits.iter().any(|h| rules.rules[usize::from(h.rule)].generic) {
        let specific: Vec<Range<usize>> = hits
            .iter()
            .filter(|h| !rules.rules[usize::from(h.rule)].generic)
            .map(|h| h.secret.clone())
            .collect();
        hits.retain(|h| {
            !rules.rules[usize::from(h.rule)].generic
                || !specific.iter().any(|s| s.start < h.secret.end && h.secret.start < s.end)
        });
        // and two generic rules report one secret once
        let mut seen: Vec<Range<usize>> = Vec::new();
        hits.retain(|h| {
            if !rules.rules[usize::from(h.rule)].generic {
                return true;
            }
            let dup = seen.iter().any(|s| s.start < h.secret.end && h.secret.start < s.end);
            seen.push(h.secret.clone());
            !dup
        });
    }
    hits
}

/// Whether a candidate secret survives the rule's and the global filters.
fn keep(rules: &Ruleset, rule_index: u16, value: &[u8]) -> bool {
    let rule = &rules.rules[usize::from(rule_index)];
    if rule.entropy > 0.0 && entropy(value) < rule.entropy {
        return false;
    }
    if rule.min_digits > 0 {
        let digits = value.iter().filter(|b| b.is_ascii_digit()).count();
        if digits < usize::try_from(rule.min_digits).unwrap_or(usize::MAX) {
            return false;
        }
    }
    if rule.allow.as_ref().is_some_and(|a| a.is_match(value)) {
        return false;
    }
    !rules.allow_secrets.as_ref().is_some_and(|a| a.is_match(value))
}

fn chars(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count()).unwrap_or(u32::MAX)
}

/// Turns hits into findings at `path`, with `line_map` translating buffer lines (1-based index) into
/// the file's lines (for git hunks; identity when `None`). Returns the findings and how many an inline
/// allow silenced.
pub(crate) fn findings(
    rules: &Ruleset,
    path: &str,
    buf: &[u8],
    hits: &[Hit],
    line_map: Option<&[u32]>,
    commit: Option<&str>,
) -> (Vec<Finding>, u64) {
    let mut out = Vec::new();
    let mut allowed = 0;
    for hit in hits {
        if hit.allowed {
            allowed += 1;
            continue;
        }
        let rule = &rules.rules[usize::from(hit.rule)].rule;
        // every secret starting on this line is redacted in the excerpt, not only this one
        let others: Vec<Range<usize>> =
            hits.iter().filter(|h| h.line_range == hit.line_range).map(|h| h.secret.clone()).collect();
        let line = match line_map {
            Some(map) => {
                map.get(usize::try_from(hit.line).unwrap_or(usize::MAX) - 1).copied().unwrap_or(hit.line)
            }
            None => hit.line,
        };
        out.push(Finding {
            rule: rule.id.clone(),
            path: path.to_owned(),
            line,
            column: hit.column,
            fingerprint: fingerprint(&[rule.id.as_bytes(), path.as_bytes(), &buf[hit.secret.clone()]]),
            excerpt: excerpt(buf, hit.line_range.clone(), hit.anchor, hit.secret.clone(), &others),
            severity: rule.severity,
            commit: commit.map(str::to_owned),
            note: false,
            properties: Default::default(),
        });
    }
    (out, allowed)
}

/// The secret as shown: at most its first four characters (fewer for short ones), then `****`.
pub fn redact(secret: &[u8]) -> String {
    let text = String::from_utf8_lossy(secret);
    let n = text.chars().count();
    let keep = (n / 6).min(4);
    let mut out: String = text.chars().take(keep).collect();
    out.push_str("****");
    out
}

/// The line around `own`, cut to a window, with every secret in `secrets` redacted and control
/// characters replaced by spaces.
fn excerpt(
    buf: &[u8],
    line: Range<usize>,
    anchor: usize,
    own: Range<usize>,
    secrets: &[Range<usize>],
) -> String {
    let (mut start, mut end) = if line.len() <= WHOLE_LINE {
        (line.start, line.end)
    } else {
        let own_end = own.end.min(line.end).max(anchor);
        (anchor.saturating_sub(CONTEXT).max(line.start), (own_end + CONTEXT).min(line.end))
    };
    // a secret cut by the window would show its middle: widen the window to whole secrets
    for s in secrets {
        if s.start < start && start < s.end {
            start = s.start.max(line.start);
        }
        if s.start < end && end < s.end {
            end = s.end.min(line.end);
        }
    }
    while start > line.start && (buf[start] & 0xC0) == 0x80 {
        start -= 1;
    }
    while end < line.end && (buf[end] & 0xC0) == 0x80 {
        end += 1;
    }
    let mut spans: Vec<Range<usize>> =
        secrets.iter().map(|s| s.start.max(start)..s.end.min(end)).filter(|s| s.start < s.end).collect();
    spans.sort_by_key(|s| s.start);
    let mut out = String::new();
    if start > line.start {
        out.push('…');
    }
    let mut at = start;
    for span in spans {
        if span.start < at {
            at = at.max(span.end);
            continue;
        }
        out.push_str(&String::from_utf8_lossy(&buf[at..span.start]));
        out.push_str(&redact(&buf[span.clone()]));
        at = span.end;
    }
    if at < end {
        out.push_str(&String::from_utf8_lossy(&buf[at..end]));
    }
    let mut out: String = out.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if end < line.end {
        out.push('…');
    }
    out.trim().to_owned()
}
