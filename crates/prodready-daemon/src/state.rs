//! The table of runs in the lock database: one row per job and scheduled time. The unique key is what
//! makes a scheduled time run at most once, whichever replica leads.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tokio_postgres::Client;

use crate::status::{RunRecord, unix_seconds};
use crate::{RUNS_KEPT, RUNS_TABLE};

pub(crate) type PgResult<T> = Result<T, tokio_postgres::Error>;

/// Creates the table when it is missing (two replicas racing to create it is harmless: the loser's
/// error is retried by the caller's next connection attempt).
pub(crate) async fn ensure_table(client: &Client) -> PgResult<()> {
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (
                id bigserial PRIMARY KEY,
                job text NOT NULL,
                scheduled_at timestamptz NOT NULL,
                started_at timestamptz NOT NULL DEFAULT now(),
                finished_at timestamptz,
                result text,
                detail text NOT NULL DEFAULT '',
                replica text NOT NULL,
                UNIQUE (job, scheduled_at)
            )"
        ))
        .await
}

/// Claims `job`'s run at `scheduled`: `Some(id)` when this replica got it, `None` when it was run
/// already (by any replica).
pub(crate) async fn claim(
    client: &Client,
    job: &str,
    scheduled: SystemTime,
    replica: &str,
) -> PgResult<Option<i64>> {
    let row = client
        .query_opt(
            &format!(
                "INSERT INTO {RUNS_TABLE} (job, scheduled_at, replica) VALUES ($1, to_timestamp($2), $3)
                 ON CONFLICT (job, scheduled_at) DO NOTHING RETURNING id"
            ),
            &[&job, &unix_seconds(scheduled), &replica],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Marks the start of a claimed run (after its jitter).
pub(crate) async fn started(client: &Client, id: i64) -> PgResult<()> {
    client
        .execute(&format!("UPDATE {RUNS_TABLE} SET started_at = now() WHERE id = $1"), &[&id])
        .await
        .map(drop)
}

/// Records how a run ended, and trims the job's history to [`RUNS_KEPT`] rows.
pub(crate) async fn finish(client: &Client, id: i64, job: &str, result: &str, detail: &str) -> PgResult<()> {
    client
        .execute(
            &format!("UPDATE {RUNS_TABLE} SET finished_at = now(), result = $2, detail = $3 WHERE id = $1"),
            &[&id, &result, &detail],
        )
        .await?;
    client
        .execute(
            &format!(
                "DELETE FROM {RUNS_TABLE} WHERE job = $1 AND scheduled_at < (
                    SELECT scheduled_at FROM {RUNS_TABLE} WHERE job = $1
                    ORDER BY scheduled_at DESC OFFSET $2 LIMIT 1)"
            ),
            &[&job, &(RUNS_KEPT - 1)],
        )
        .await
        .map(drop)
}

/// Runs left unfinished by other replicas, or by this one for jobs it is not running now: only the
/// leader runs jobs, so when a replica becomes leader they belong to a replica that lost the lock
/// (usually by dying), or to a run of its own whose end could not be recorded. A replica that lost only its lock
/// connection and finishes later overwrites this with the real result.
pub(crate) async fn abandon_others(client: &Client, replica: &str, running: &[String]) -> PgResult<u64> {
    client
        .execute(
            &format!(
                "UPDATE {RUNS_TABLE} SET finished_at = now(), result = 'abandoned',
                    detail = 'its replica stopped leading before the run finished'
                 WHERE finished_at IS NULL AND (replica <> $1 OR job <> ALL($2))"
            ),
            &[&replica, &running],
        )
        .await
}

/// The newest scheduled time recorded for each of `jobs`.
pub(crate) async fn last_scheduled(
    client: &Client,
    jobs: &[String],
) -> PgResult<HashMap<String, SystemTime>> {
    let rows = client
        .query(
            &format!(
                "SELECT job, extract(epoch FROM max(scheduled_at))::float8 FROM {RUNS_TABLE}
                 WHERE job = ANY($1) GROUP BY job"
            ),
            &[&jobs],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get::<_, String>(0), from_unix(r.get(1)))).collect())
}

/// What the page and the metrics show of each job: the `n` most recent runs (newest first) and the
/// start of the last successful one.
pub(crate) async fn history(
    client: &Client,
    jobs: &[String],
    n: i64,
) -> PgResult<HashMap<String, (Vec<RunRecord>, Option<SystemTime>)>> {
    let rows = client
        .query(
            &format!(
                "SELECT job, extract(epoch FROM scheduled_at)::float8, extract(epoch FROM started_at)::float8,
                        extract(epoch FROM finished_at)::float8, result, detail, replica
                 FROM (SELECT *, row_number() OVER (PARTITION BY job ORDER BY scheduled_at DESC) AS n
                       FROM {RUNS_TABLE} WHERE job = ANY($1)) AS recent
                 WHERE n <= $2 ORDER BY job, scheduled_at DESC"
            ),
            &[&jobs, &n],
        )
        .await?;
    let mut out: HashMap<String, (Vec<RunRecord>, Option<SystemTime>)> = HashMap::new();
    for row in rows {
        let job: String = row.get(0);
        out.entry(job).or_default().0.push(RunRecord {
            scheduled_at: from_unix(row.get(1)),
            started_at: from_unix(row.get(2)),
            finished_at: row.get::<_, Option<f64>>(3).map(from_unix),
            result: row.get(4),
            detail: row.get(5),
            replica: row.get(6),
        });
    }
    let successes = client
        .query(
            &format!(
                "SELECT job, extract(epoch FROM max(started_at))::float8 FROM {RUNS_TABLE}
                 WHERE job = ANY($1) AND result = 'success' GROUP BY job"
            ),
            &[&jobs],
        )
        .await?;
    for row in successes {
        out.entry(row.get(0)).or_default().1 = Some(from_unix(row.get(1)));
    }
    Ok(out)
}

fn from_unix(seconds: f64) -> SystemTime {
    if seconds.is_finite() && seconds > 0.0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds)
    } else {
        SystemTime::UNIX_EPOCH
    }
}
