//! Exit codes, in one place. docs/cli.md is generated from [`Exit::ALL`].

use std::process::ExitCode;

/// How a `prodready` run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did its job (`check`: the platform is ready to launch).
    Success,
    /// The command ran but its job failed (a backup failed, a check errored, a peer was unreachable).
    Failure,
    /// The invocation or the configuration is wrong: bad flags, bad `prodready.toml`, a bad override.
    Usage,
    /// `check`: at least one must-have check did not pass.
    MustHaveFailed,
    /// `check`: every must-have passed but the overall score is below the minimum.
    BelowMinimum,
    /// `load run`: the run finished (or was aborted) and a threshold failed, k6's code.
    ThresholdsFailed,
    /// `secrets exec`: the command's own exit code (128 + N when a signal N ended it).
    Child(u8),
    /// `backup wal-fetch`: the archive could not be read or the file is corrupt. Above 125, so PostgreSQL
    /// stops recovery rather than taking the file for missing and ending recovery early.
    WalFetchFailed,
    /// `load run`: stopped by SIGINT or SIGTERM, after writing the summary of what ran, k6's code.
    Interrupted,
}

/// `backup wal-fetch`'s code for an archive it cannot read: PostgreSQL treats any code above 125 as fatal.
pub const WAL_FETCH_FAILED: u8 = 126;

/// k6's exit code for a failed threshold, which `load run` keeps.
pub const THRESHOLDS_FAILED: u8 = 99;

/// k6's exit code for a run stopped by a signal, which `load run` keeps.
pub const INTERRUPTED: u8 = 105;

impl Exit {
    /// Every exit code with its meaning, for the CLI reference.
    pub const ALL: &[Exit] = &[
        Exit::Success,
        Exit::Failure,
        Exit::Usage,
        Exit::MustHaveFailed,
        Exit::BelowMinimum,
        Exit::ThresholdsFailed,
        Exit::Interrupted,
        Exit::WalFetchFailed,
        Exit::Child(0),
    ];

    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::MustHaveFailed => 3,
            Exit::BelowMinimum => 4,
            Exit::ThresholdsFailed => THRESHOLDS_FAILED,
            Exit::WalFetchFailed => WAL_FETCH_FAILED,
            Exit::Interrupted => INTERRUPTED,
            Exit::Child(code) => code,
        }
    }

    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success: the command did its job (`check`: ready to launch)",
            Exit::Failure => {
                "the job failed: the error on stderr says what failed and how to fix it (`scan`: a new finding)"
            }
            Exit::Usage => {
                "usage or configuration error: a bad flag, a bad `prodready.toml` or a bad override"
            }
            Exit::MustHaveFailed => "`check`: not ready, a must-have check did not pass",
            Exit::BelowMinimum => {
                "`check`: not ready, every must-have passed but the overall score is below the minimum"
            }
            Exit::ThresholdsFailed => "`load run`: a threshold failed (as in k6), the summary says which",
            Exit::WalFetchFailed => {
                "`backup wal-fetch`: the archive could not be read or the file is corrupt (PostgreSQL stops recovery)"
            }
            Exit::Interrupted => {
                "`load run`: stopped by SIGINT or SIGTERM, the summary covers what ran (as in k6)"
            }
            Exit::Child(_) => "`secrets exec`: the command's own exit code, 128 + N when signal N ended it",
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}
