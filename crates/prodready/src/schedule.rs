//! `backup cron`: crontab lines and systemd service + timer units for run, verify and prune. Overlapping
//! runs are harmless: a backup takes a PostgreSQL advisory lock, so a second one fails fast.

use std::fmt::Write as _;

/// A cron expression this module cannot turn into a systemd calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(String);

type Result<T> = std::result::Result<T, CronError>;

/// One scheduled job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// `run`, `verify` or `prune`.
    pub name: &'static str,
    /// A five-field cron expression.
    pub cron: String,
    /// The command and its arguments, unquoted: [`render`] quotes them for crontab and for systemd.
    pub command: Vec<String>,
}

/// Converts the cron forms people schedule backups with (`M H * * *`, `M H * * DOW`, `M H DOM * *`, with
/// numbers, lists and `*/N` steps) to systemd `OnCalendar=` expressions, one per line of the timer (it
/// fires when any of them matches). Cron runs a job whose day of month and day of week are both
/// restricted (neither starts with `*`) when *either* matches, and systemd only when both do, so such a
/// schedule becomes two
/// expressions: the weekdays on any day, and the days of month on any weekday (left out when no chosen
/// month has them).
pub fn on_calendar(cron: &str) -> Result<Vec<String>> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let bad = |why: &str| CronError(format!("cron `{cron}`: {why}; write five fields like `17 2 * * *`"));
    let [minute, hour, dom, month, dow] = fields[..] else { return Err(bad("needs five fields")) };
    let values = |field: &str, min: u32, max: u32, name: &str| -> Result<Option<Vec<u32>>> {
        if field == "*" {
            return Ok(None);
        }
        if let Some(step) = field.strip_prefix("*/") {
            return match step.parse::<u32>() {
                Ok(0) => Err(bad(&format!("{name} step 0 never fires"))),
                Ok(_) => Ok(None),
                Err(_) => Err(bad(&format!("{name} step `{step}` is not a number"))),
            };
        }
        field
            .split(',')
            .map(|v| match v.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(bad(&format!("{name} `{v}` is not a number from {min} to {max}"))),
            })
            .collect::<Result<Vec<u32>>>()
            .map(Some)
    };
    // `*/N` counts from the field's first value, as cron does: minutes and hours from 0, days and months
    // from 1 (systemd has no day 0 or month 0).
    let part = |field: &str, min: u32, max: u32, name: &str| -> Result<String> {
        if let Some(step) = field.strip_prefix("*/") {
            values(field, min, max, name)?;
            return Ok(format!("{min:02}/{step}"));
        }
        Ok(match values(field, min, max, name)? {
            None => "*".to_owned(),
            Some(list) => list.iter().map(|n| format!("{n:02}")).collect::<Vec<_>>().join(","),
        })
    };
    // A day of month no chosen month has (`0 0 31 2 *`) never comes.
    let days_come = match (values(dom, 1, 31, "day of month")?, values(month, 1, 12, "month")?) {
        (Some(days), months) => {
            const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            let months = months.unwrap_or_else(|| (1..=12).collect());
            days.iter().any(|d| months.iter().any(|m| *d <= LONGEST[*m as usize - 1]))
        }
        (None, _) => true,
    };
    let names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let weekdays = if dow == "*" {
        None
    } else {
        let named: Vec<&str> = dow
            .split(',')
            .map(|d| {
                d.parse::<usize>()
                    .ok()
                    .and_then(|i| names.get(i).copied())
                    .ok_or_else(|| bad(&format!("day of week `{d}` is not 0-7")))
            })
            .collect::<Result<_>>()?;
        Some(named.join(","))
    };
    let (day, month) = (part(dom, 1, 31, "day of month")?, part(month, 1, 12, "month")?);
    let time = format!("{}:{}:00", part(hour, 0, 23, "hour")?, part(minute, 0, 59, "minute")?);
    Ok(match weekdays {
        None if !days_come => {
            return Err(bad(&format!("day {dom} of month {} never comes, so the job never runs", fields[3])));
        }
        None => vec![format!("*-{month}-{day} {time}")],
        // A day of month written with `*` (`*`, `*/2`) leaves cron's "either" rule out: both must match.
        Some(weekdays) if dom.starts_with('*') => vec![format!("{weekdays} *-{month}-{day} {time}")],
        Some(weekdays) => {
            let mut either = vec![format!("{weekdays} *-{month}-* {time}")];
            if days_come {
                either.push(format!("*-{month}-{day} {time}"));
            }
            either
        }
    })
}

/// The crontab lines and the systemd units for `jobs`.
pub fn render(jobs: &[Job], user: &str) -> Result<String> {
    let mut out = String::from(
        "# crontab: `crontab -e` as the user that runs backups (or /etc/cron.d/prodready with a user column)\n",
    );
    for job in jobs {
        let _ = writeln!(out, "{} {}", job.cron, crontab_command(&job.command));
    }
    for job in jobs {
        let calendar =
            on_calendar(&job.cron)?.iter().map(|c| format!("OnCalendar={c}")).collect::<Vec<_>>().join("\n");
        let _ = write!(
            out,
            "\n# /etc/systemd/system/prodready-backup-{name}.service\n\
             [Unit]\n\
             Description=prodready backup {name}\n\
             Wants=network-online.target\n\
             After=network-online.target postgresql.service\n\n\
             [Service]\n\
             Type=oneshot\n\
             User={user}\n\
             ExecStart={command}\n\
             Nice=10\n\
             IOSchedulingClass=best-effort\n\
             IOSchedulingPriority=7\n\
             \n# /etc/systemd/system/prodready-backup-{name}.timer\n\
             [Unit]\n\
             Description=prodready backup {name} on schedule ({cron})\n\n\
             [Timer]\n\
             {calendar}\n\
             Persistent=true\n\
             RandomizedDelaySec=60\n\n\
             [Install]\n\
             WantedBy=timers.target\n",
            name = job.name,
            command = systemd_command(&job.command)?,
            cron = job.cron,
        );
    }
    out.push_str("\n# enable the timers: systemctl daemon-reload && systemctl enable --now");
    for job in jobs {
        let _ = write!(out, " prodready-backup-{}.timer", job.name);
    }
    out.push('\n');
    Ok(out)
}

/// A command line for crontab: each argument quoted for `/bin/sh` when it needs it, and `%` escaped (cron
/// turns an unescaped `%` into a newline).
pub fn crontab_command(argv: &[String]) -> String {
    let quoted: Vec<String> = argv
        .iter()
        .map(|arg| {
            let plain =
                !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c));
            if plain { arg.clone() } else { format!("'{}'", arg.replace('\'', "'\\''")) }
        })
        .collect();
    quoted.join(" ").replace('%', "\\%")
}

/// A command line for a systemd `ExecStart=`: each argument double-quoted when it holds a space, a quote
/// or a `;`, with `\` and `"` escaped and `%` written `%%` (specifiers); `$` is written `$$` in the
/// arguments (variables are expanded there, not in the executable's path). systemd refuses an executable
/// whose path holds a quote or a backslash, so such a path is an error.
pub fn systemd_command(argv: &[String]) -> Result<String> {
    let mut quoted = Vec::with_capacity(argv.len());
    for (i, arg) in argv.iter().enumerate() {
        if i == 0 && arg.chars().any(|c| matches!(c, '\'' | '"' | '\\') || c.is_control()) {
            return Err(CronError(format!(
                "the binary path `{arg}` holds a quote or a backslash, which systemd refuses in an executable \
                 name; install the binary under a plain path and pass --binary"
            )));
        }
        let mut escaped = arg.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%");
        if i > 0 {
            escaped = escaped.replace('$', "$$");
        }
        let needs_quotes =
            arg.is_empty() || arg.chars().any(|c| c.is_whitespace() || matches!(c, ';' | '"' | '\'' | '\\'));
        quoted.push(if needs_quotes { format!("\"{escaped}\"") } else { escaped });
    }
    Ok(quoted.join(" "))
}
