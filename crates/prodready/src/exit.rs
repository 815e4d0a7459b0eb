//! Exit codes, in one place. docs/cli.md is generated from [`Exit::ALL`].

use std::process::ExitCode;

/// How a `prodready` run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did its job.
    Success,
    /// The command ran but its job failed (a backup failed, a check errored, a peer was unreachable).
    Failure,
    /// The invocation or the configuration is wrong: bad flags, bad `prodready.toml`, a bad override.
    Usage,
}

impl Exit {
    /// Every exit code with its meaning, for the CLI reference.
    pub const ALL: &[Exit] = &[Exit::Success, Exit::Failure, Exit::Usage];

    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
        }
    }

    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success: the command did its job",
            Exit::Failure => "the job failed: the error on stderr says what failed and how to fix it",
            Exit::Usage => {
                "usage or configuration error: a bad flag, a bad `prodready.toml` or a bad override"
            }
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}
