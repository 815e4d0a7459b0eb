//! The fixtures against their real peers: each test starts a peer, talks to it and checks that dropping
//! the fixture cleaned up after it.

mod browser;
mod cluster;
mod db;
mod loki;
mod peers;
mod zipkin;
