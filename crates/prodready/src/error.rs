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

/// What to do about a library error, in the binary's own terms (a command, a flag, a configuration key).
/// Libraries speak their own vocabulary; this is where the CLI's is added.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    use prodready_backup::Error as Backup;
    use prodready_secrets::Error as Secrets;
    err.chain().find_map(|e| {
        if let Some(e) = e.downcast_ref::<Backup>() {
            return match e {
                Backup::NotFound(_) => Some("`prodready backup list` shows what there is".to_owned()),
                Backup::TargetNotEmpty(_) => Some("pass --force to restore into it anyway".to_owned()),
                Backup::IdentityRequired(_) => {
                    Some("pass --identity FILE with the age key of one of its recipients".to_owned())
                }
                _ => None,
            };
        }
        if let Some(e) = e.downcast_ref::<Secrets>() {
            return match e {
                Secrets::NotFound(_) | Secrets::UnknownVariable { .. } => {
                    Some("`prodready secrets list` shows what there is".to_owned())
                }
                Secrets::VersionNotFound { name, .. } => {
                    Some(format!("`prodready secrets history {name}` lists its versions"))
                }
                Secrets::KeyMissing { .. } => Some("[secrets] key_file says where it is".to_owned()),
                Secrets::Collision { .. } => Some("or pass --only to pick the variables".to_owned()),
                Secrets::Unsupported { backend: "env", .. } => {
                    Some("set [secrets] backend to \"file\" or \"aws\"".to_owned())
                }
                Secrets::RecoveryWindow(_) => Some("pass --force to delete without recovery".to_owned()),
                Secrets::MissingVariable(_) => Some("add it with `prodready secrets put`".to_owned()),
                _ => None,
            };
        }
        if let Some(prodready_logging::Error::NoPaths) = e.downcast_ref::<prodready_logging::Error>() {
            return Some("set [logging.ship] paths or pass --path GLOB".to_owned());
        }
        None
    })
}

/// A closed stdout (`prodready ... | head`) is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
}
