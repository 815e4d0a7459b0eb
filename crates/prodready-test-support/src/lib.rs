//! Fixtures for prodready's tests: real peers, never doubles.
//!
//! - [`TestDb`]: a fresh, uniquely named PostgreSQL database, dropped afterwards.
//! - [`Cluster`]: a throwaway PostgreSQL cluster (own data directory and port) for server settings the
//!   shared server must not get (TLS, preloaded libraries such as pg_stat_statements), with streaming
//!   replicas (`Cluster::replica`) and `psql` for quick statements.
//! - [`Moto`], [`Prometheus`], [`Alertmanager`], [`Pushgateway`], [`Oteltap`], [`PostgresExporter`]: real
//!   peer processes on free loopback ports, each in its own temporary directory, killed and cleaned up on
//!   drop.
//! - [`LokiReceiver`]: a Loki-compatible push receiver (Loki does not install here), in process.
//! - [`ZipkinReceiver`]: a Zipkin v2 span receiver that checks each span against Zipkin's schema, or
//!   answers with a failure or never ([`ZipkinAnswer`]), in process.
//! - [`Proxy`]: a recording, fault-injecting HTTP proxy in front of a peer.
//! - [`check_page`]: a page loaded in Debian's headless Chromium (console errors, requests to other origins,
//!   failed requests, text, a screenshot).
//! - [`instrumented_service`]: an axum service with the RED layer and its own `/metrics`.
//! - [`peer_bin`]: where a provisioned peer binary is; a missing peer panics with the install step, so a
//!   test never passes without its peer.
//!
//! Peers are provisioned by `cargo xtask peers` (and `cargo xtask test`) into `$PRODREADY_PEERS_DIR`
//! (default `~/.cache/prodready/peers`).

// Test fixtures find their peers and the test database from the environment, as test runners set it.
#![allow(clippy::disallowed_methods)]

mod alerting;
mod browser;
mod cluster;
mod db;
mod extension;
mod loki;
mod peers;
mod process;
mod proxy;
mod service;
mod zipkin;

pub use alerting::{Mail, PagerDutyReceiver, SmtpSink, slack_receiver};
pub use browser::{CHROMIUM, PageReport, check_page, check_page_async};
pub use cluster::{Cluster, ClusterBuilder, ServerExecutable, bin_dir, give_to_server, server_dir};
pub use db::{TestDb, base_database_url};
pub use extension::{TEST_EXTENSION, install_test_extension};
pub use loki::{Failure, LOKI_CONFIG_30_DAYS, LokiReceiver, ReceivedEntry, Streams, decode_push, wait_until};
pub use peers::{Alertmanager, Moto, Oteltap, PostgresExporter, Prometheus, Pushgateway};
pub use process::{
    INSTALL_STEP, PeerProcess, Ready, advisory_db, free_port, http_status, peer_bin, peers_dir,
};
pub use proxy::{Intercept, Proxy};
pub use service::instrumented_service;
pub use zipkin::{ZipkinAnswer, ZipkinReceiver};
