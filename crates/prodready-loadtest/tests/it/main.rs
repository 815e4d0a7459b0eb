//! prodready-loadtest against real HTTP servers on loopback.

mod k6;
mod parse;
mod run;
mod segment;
mod server;
#[cfg(feature = "tls")]
mod tls;
mod wire;
