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
    /// The full command line.
    pub command: String,
}

/// Converts the cron forms people schedule backups with (`M H * * *`, `M H * * DOW`, `M H DOM * *`, with
/// numbers, lists and `*/N` steps) to a systemd `OnCalendar=` expression.
pub fn on_calendar(cron: &str) -> Result<String> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let bad = |why: &str| CronError(format!("cron `{cron}`: {why}; write five fields like `17 2 * * *`"));
    let [minute, hour, dom, month, dow] = fields[..] else { return Err(bad("needs five fields")) };
    let part = |field: &str, max: u32, name: &str| -> Result<String> {
        if field == "*" {
            return Ok("*".to_owned());
        }
        if let Some(step) = field.strip_prefix("*/") {
            let n: u32 = step.parse().map_err(|_| bad(&format!("{name} step `{step}` is not a number")))?;
            return Ok(format!("00/{n}"));
        }
        let values: Vec<String> = field
            .split(',')
            .map(|v| match v.parse::<u32>() {
                Ok(n) if n <= max => Ok(format!("{n:02}")),
                _ => Err(bad(&format!("{name} `{v}` is not a number from 0 to {max}"))),
            })
            .collect::<Result<_>>()?;
        Ok(values.join(","))
    };
    let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let weekday = if dow == "*" {
        String::new()
    } else {
        let names: Vec<&str> = dow
            .split(',')
            .map(|d| {
                d.parse::<usize>()
                    .ok()
                    .and_then(|i| days.get(i).copied())
                    .ok_or_else(|| bad(&format!("day of week `{d}` is not 0-7")))
            })
            .collect::<Result<_>>()?;
        format!("{} ", names.join(","))
    };
    let (dom, month) = (part(dom, 31, "day of month")?, part(month, 12, "month")?);
    let dom = if dom == "*" { "*".to_owned() } else { dom };
    Ok(format!("{weekday}*-{month}-{dom} {}:{}:00", part(hour, 23, "hour")?, part(minute, 59, "minute")?))
}

/// The crontab lines and the systemd units for `jobs`.
pub fn render(jobs: &[Job], user: &str) -> Result<String> {
    let mut out = String::from(
        "# crontab: `crontab -e` as the user that runs backups (or /etc/cron.d/prodready with a user column)\n",
    );
    for job in jobs {
        let _ = writeln!(out, "{} {}", job.cron, job.command);
    }
    for job in jobs {
        let calendar = on_calendar(&job.cron)?;
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
             OnCalendar={calendar}\n\
             Persistent=true\n\
             RandomizedDelaySec=60\n\n\
             [Install]\n\
             WantedBy=timers.target\n",
            name = job.name,
            command = job.command,
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
