//! prodready-loadtest against real HTTP servers on loopback.

mod k6;
mod parse;
mod run;
mod segment;
mod server;
mod wire;
