//! Small helpers every prodready crate may use, with no dependency beyond `std` (in the spirit of
//! rust-analyzer's `stdx`). Each exists once here so the copies cannot drift apart:
//!
//! - [`fs::write_atomic`]: replace a file so that readers see the old or the new bytes, never a mix,
//!   and (by default) so that the new bytes survive a power cut;
//! - [`error::chain`]: an error and its causes on one line;
//! - [`redact`]: the one list of secret-looking names and the one way to hide a secret in a URL, a
//!   query string or a libpq connection string;
//! - [`text::percent_decode`] and [`text::html_escape`]: `%XX` escapes of URLs, HTML escaping.
//!
//! What belongs here: domain-free code that two crates would otherwise write twice. What does not: anything
//! that knows about PostgreSQL, metrics, the configuration file or a third-party crate.

pub mod error;
pub mod fs;
pub mod redact;
pub mod text;
