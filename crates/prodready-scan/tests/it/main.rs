//! prodready-scan end to end.

#![allow(clippy::print_stderr)]

mod deps;
