//! Leader election on a PostgreSQL session-level advisory lock.
//!
//! One connection per replica. A standby tries `pg_try_advisory_lock` every step (a fifth of the
//! lease); the leader pings every step. The session's `idle_session_timeout` is the lease, so a leader
//! cut off from the server loses the lock at most a lease after its last successful query; it gives up
//! leadership itself after half a lease without one, and aborts the connection, so it has stopped
//! scheduling before any standby can get the lock.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_postgres::Client;

use crate::Role;

/// The election's state as the scheduler sees it.
#[derive(Clone)]
pub(crate) struct Session {
    pub role: Role,
    /// The lock session, for claiming runs (only meaningful while `role` is leader) and reading history.
    pub client: Option<Arc<Client>>,
}

pub(crate) struct Elector {
    pub url: String,
    pub key: i64,
    pub lease: Duration,
    pub application_name: String,
}

impl Elector {
    fn step(&self) -> Duration {
        (self.lease / 5).max(Duration::from_millis(200))
    }

    /// Runs until `stop` turns true; then releases the lock (if held) and closes the session.
    pub(crate) async fn run(self, tx: watch::Sender<Session>, mut stop: watch::Receiver<bool>) {
        let step = self.step();
        loop {
            if *stop.borrow() {
                return;
            }
            let attempt =
                tokio::time::timeout(self.lease, prodready_pg::connect(&self.url, &self.application_name));
            let (client, driver) = match attempt.await {
                Ok(Ok(connected)) => connected,
                Ok(Err(e)) => {
                    self.unreachable(&tx, prodready_stdx::error::chain(&e));
                    if sleep_or_stop(step, &mut stop).await {
                        return;
                    }
                    continue;
                }
                Err(_) => {
                    self.unreachable(&tx, format!("no connection within {} s", self.lease.as_secs()));
                    continue;
                }
            };
            let setup = async {
                let lease_ms = self.lease.as_millis();
                // PostgreSQL 14 and later end a session idle this long (and release its locks).
                if let Err(e) = client.batch_execute(&format!("SET idle_session_timeout = {lease_ms}")).await
                {
                    tracing::warn!(
                        "the lock database does not support idle_session_timeout ({}): a partitioned leader's \
                         lock is released only when TCP gives up on it",
                        prodready_stdx::error::chain(&e)
                    );
                }
                crate::state::ensure_table(&client).await
            };
            let setup = match tokio::time::timeout(self.lease, setup).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    Err(format!("cannot use the table of runs: {}", prodready_stdx::error::chain(&e)))
                }
                Err(_) => {
                    Err(format!("no answer while preparing the session within {} s", self.lease.as_secs()))
                }
            };
            if let Err(problem) = setup {
                self.unreachable(&tx, problem);
                driver.abort();
                if sleep_or_stop(step, &mut stop).await {
                    return;
                }
                continue;
            }
            let client = Arc::new(client);
            let _ = tx.send(Session { role: Role::Standby, client: Some(client.clone()) });
            let mut leader = false;
            let mut last_ok = Instant::now();
            let stopped = loop {
                let started = Instant::now();
                let query = async {
                    if leader {
                        client.simple_query("SELECT 1").await.map(|_| true)
                    } else {
                        client
                            .query_one("SELECT pg_try_advisory_lock($1)", &[&self.key])
                            .await
                            .map(|r| r.get(0))
                    }
                };
                // Never wait past the step-down deadline: half a lease after the last answer.
                let left = (last_ok + self.lease / 2).saturating_duration_since(started);
                match tokio::time::timeout(step.min(left.max(Duration::from_millis(1))), query).await {
                    Ok(Ok(held)) => {
                        last_ok = started;
                        if held && !leader {
                            leader = true;
                            tracing::info!("elected leader: this replica runs the jobs");
                            let _ = tx.send(Session { role: Role::Leader, client: Some(client.clone()) });
                        }
                    }
                    Ok(Err(e)) if driver.is_finished() || client.is_closed() => {
                        tracing::warn!("lost the lock database: {}", prodready_stdx::error::chain(&e));
                        break false;
                    }
                    _ if last_ok.elapsed() >= self.lease / 2 => {
                        tracing::warn!("no answer from the lock database for half a lease: stepping down");
                        break false;
                    }
                    _ => {}
                }
                if sleep_or_stop(step.saturating_sub(started.elapsed()), &mut stop).await {
                    break true;
                }
            };
            if stopped && leader {
                let unlock = async { client.query_one("SELECT pg_advisory_unlock($1)", &[&self.key]).await };
                let _ = tokio::time::timeout(step, unlock).await;
            }
            // Closing the socket is what releases the lock, whoever still holds the client.
            driver.abort();
            if stopped {
                let _ = tx.send(Session { role: Role::Standby, client: None });
                return;
            }
            self.unreachable(&tx, "lost the connection to the lock database".to_owned());
        }
    }

    fn unreachable(&self, tx: &watch::Sender<Session>, problem: String) {
        let was = tx.borrow().role.clone();
        if !matches!(&was, Role::Unreachable(p) if *p == problem) {
            tracing::warn!(database = %prodready_pg::describe(&self.url), "lock database unreachable: {problem}");
        }
        let _ = tx.send(Session { role: Role::Unreachable(problem), client: None });
    }
}

/// Sleeps `d`; true when `stop` turned true meanwhile.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(d) => None,
        _ = stop.wait_for(|s| *s) => Some(true),
    };
    stopped.unwrap_or_else(|| *stop.borrow())
}
