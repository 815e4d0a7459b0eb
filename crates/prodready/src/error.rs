//! Errors that decide the exit code. Everything else travels as `anyhow::Error` and exits 1.

use std::io;

use crate::exit::Exit;

/// The invocation or the configuration is wrong (exit 2). The message already names the file, line,
/// key and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error that ended a run.
pub fn exit_for(err: &anyhow::Error) -> Exit {
    let usage = err.chain().any(|e| {
        e.downcast_ref::<UsageError>().is_some()
            || e.downcast_ref::<prodready_backup::Error>().is_some_and(prodready_backup::Error::is_usage)
            || e.downcast_ref::<prodready_secrets::Error>().is_some_and(prodready_secrets::Error::is_usage)
            || e.downcast_ref::<prodready_logging::Error>().is_some_and(prodready_logging::Error::is_usage)
    });
    if usage { Exit::Usage } else { Exit::Failure }
}

/// A closed stdout (`prodready ... | head`) is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
}
