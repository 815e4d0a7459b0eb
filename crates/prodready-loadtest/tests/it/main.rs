//! prodready-loadtest against real HTTP servers on loopback.

mod parse;
mod run;
mod server;
