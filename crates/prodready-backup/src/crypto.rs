//! age (X25519) encryption of stored objects, so the database host holds only public keys and cannot read
//! old backups. Objects are compressed, then encrypted; hashes cover the ciphertext, so `verify --quick`
//! needs no key.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crate::store::ObjectWriter;
use crate::{Error, Result};

/// Identities (private keys) loaded from age identity files.
pub(crate) type Identities = Arc<Vec<Box<dyn age::Identity + Send + Sync>>>;

/// Parses `age1...` recipients, naming the first that is not one.
pub(crate) fn recipients(list: &[String]) -> Result<Vec<age::x25519::Recipient>> {
    list.iter()
        .map(|r| {
            r.trim()
                .parse::<age::x25519::Recipient>()
                .map_err(|e| Error::Invalid(format!("`{r}` is not an age X25519 recipient (age1...): {e}")))
        })
        .collect()
}

/// Loads every identity from age identity files (`age-keygen` output).
pub(crate) fn identities(files: &[PathBuf]) -> Result<Identities> {
    let mut out = Vec::new();
    for file in files {
        // A private key others can read is no secret: refuse it, with the fix.
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(file)
            .map_err(|e| {
                Error::Invalid(format!("{}: cannot read the age identity file: {e}", file.display()))
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Error::Invalid(format!(
                "{}: the age identity file is readable by group or others (mode {:o}); run `chmod 600 {}`",
                file.display(),
                mode & 0o777,
                file.display()
            )));
        }
        let parsed = age::IdentityFile::from_file(file.display().to_string()).map_err(|e| {
            Error::Invalid(format!("{}: cannot read the age identity file: {e}", file.display()))
        })?;
        out.extend(
            parsed
                .into_identities()
                .map_err(|e| Error::Invalid(format!("{}: not an age identity file: {e}", file.display())))?,
        );
    }
    Ok(Arc::new(out))
}

/// Where compressed bytes go: straight into the object, or through age first.
pub(crate) enum Sink {
    Plain(ObjectWriter),
    Encrypted(age::stream::StreamWriter<ObjectWriter>),
}

impl Sink {
    pub(crate) fn new(object: ObjectWriter, recipients: &[age::x25519::Recipient]) -> Result<Self> {
        if recipients.is_empty() {
            return Ok(Sink::Plain(object));
        }
        let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| Error::Invalid(format!("cannot encrypt: {e}")))?;
        let writer = encryptor.wrap_output(object).map_err(|e| Error::io("age", e))?;
        Ok(Sink::Encrypted(writer))
    }

    /// Ends the age stream (if any) and returns the object writer.
    pub(crate) fn finish(self) -> Result<ObjectWriter> {
        match self {
            Sink::Plain(o) => Ok(o),
            Sink::Encrypted(w) => w.finish().map_err(|e| Error::io("age", e)),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(o) => o.write(buf),
            Sink::Encrypted(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(o) => o.flush(),
            Sink::Encrypted(w) => w.flush(),
        }
    }
}

/// A reader of an object's plaintext (still compressed): decrypts when the backup is encrypted.
pub(crate) fn plaintext<'a, R: Read + 'a>(
    raw: R,
    encrypted: bool,
    identities: &Identities,
    id: &str,
    object: &str,
) -> Result<Box<dyn Read + 'a>> {
    if !encrypted {
        return Ok(Box::new(raw));
    }
    if identities.is_empty() {
        return Err(Error::IdentityRequired(id.to_owned()));
    }
    let corrupt = |problem: String| Error::Corrupt { id: id.to_owned(), object: object.to_owned(), problem };
    let decryptor = age::Decryptor::new(raw).map_err(|e| corrupt(format!("not an age file: {e}")))?;
    let reader = decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => Error::Invalid(format!(
            "none of the given identities can decrypt backup {id}; pass the age key of one of its recipients"
        )),
        other => corrupt(format!("cannot decrypt: {other}")),
    })?;
    Ok(Box::new(reader))
}
