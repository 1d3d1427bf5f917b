//! The attempt log: every webhook attempt becomes a row of `delivery_attempts`.
//!
//! Deliveries run by the hundred at once, so rows are written by one task in group commits (one
//! multi-row `INSERT` per batch, in one of a few prepared sizes); a delivery waits for its row to
//! be committed before its message is acknowledged, so an acknowledged delivery always has its
//! record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use crate::ledger::placeholders;
use crate::ledger::writer::{chunks, padded};

/// Most response-body bytes kept per attempt.
pub const BODY_LIMIT: usize = 1024;
/// Most rows per `INSERT` (12 placeholders each: well under SQLite's and PostgreSQL's limits).
const BATCH_MAX: usize = 256;
const COLUMNS: usize = 12;

/// What became of the delivery after this attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Waiting in the ladder for the next attempt.
    Retrying,
    /// In `<prefix>.dead`.
    Dead,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retrying => "retrying",
            Outcome::Dead => "dead",
        }
    }
}

/// One row.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub event_id: String,
    pub endpoint_id: String,
    pub tenant_id: String,
    pub attempt: u32,
    pub attempted_at_ms: i64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub latency: Duration,
    pub response_body: Option<Vec<u8>>,
    pub outcome: Outcome,
    pub next_attempt_at_ms: Option<i64>,
}

type Request = (AttemptRecord, oneshot::Sender<bool>);

/// Hands records to the writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AttemptLog {
    sender: mpsc::Sender<Request>,
}

impl AttemptLog {
    /// Start the writer; it stops once every [`AttemptLog`] is dropped and the queue is empty.
    /// `numbered`: write `$N` placeholders (PostgreSQL) rather than `?` (SQLite, which looks each
    /// `$N` up by a linear search and so slows down quadratically on a long multi-row insert).
    pub fn spawn(pool: AnyPool, numbered: bool) -> (AttemptLog, tokio::task::JoinHandle<()>) {
        let (sender, mut receiver) = mpsc::channel::<Request>(8192);
        let task = tokio::spawn(async move {
            let mut batch: Vec<Request> = Vec::with_capacity(BATCH_MAX);
            let mut statements = Statements::default();
            loop {
                let Some(first) = receiver.recv().await else {
                    break;
                };
                batch.push(first);
                while batch.len() < BATCH_MAX {
                    match receiver.try_recv() {
                        Ok(request) => batch.push(request),
                        Err(_) => break,
                    }
                }
                let committed = match insert(&pool, &mut statements, &batch, numbered).await {
                    Ok(()) => true,
                    Err(error) => {
                        tracing::error!(%error, rows = batch.len(), "Cannot record delivery attempts");
                        false
                    }
                };
                for (_, done) in batch.drain(..) {
                    let _ = done.send(committed);
                }
            }
        });
        (AttemptLog { sender }, task)
    }

    /// Queue a record and wait for its commit; `false` if it could not be stored.
    pub async fn record(&self, record: AttemptRecord) -> bool {
        let (done, committed) = oneshot::channel();
        if self.sender.send((record, done)).await.is_err() {
            return false;
        }
        committed.await.unwrap_or(false)
    }
}

/// The statements of the batch sizes met so far (see [`crate::ledger::writer::chunks`]): a few
/// sizes, each prepared once and then reused from the connection's statement cache.
#[derive(Debug, Default)]
struct Statements(HashMap<usize, Arc<str>>);

impl Statements {
    fn get(&mut self, rows: usize, numbered: bool) -> sqlx::AssertSqlSafe<Arc<str>> {
        let sql = self.0.entry(rows).or_insert_with(|| {
            format!(
                "INSERT INTO delivery_attempts (id, event_id, endpoint_id, tenant_id, attempt, \
                 attempted_at, status_code, error, latency_ms, response_body, outcome, \
                 next_attempt_at) VALUES {} ON CONFLICT (id) DO NOTHING",
                placeholders(rows, COLUMNS, 1, numbered)
            )
            .into()
        });
        sqlx::AssertSqlSafe(Arc::clone(sql))
    }
}

/// Write the batch, padded to a statement size by repeating its last row (the same id again, a
/// conflict that does nothing).
async fn insert(
    pool: &AnyPool,
    statements: &mut Statements,
    batch: &[Request],
    numbered: bool,
) -> Result<(), sqlx::Error> {
    let ids: Vec<String> = batch
        .iter()
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let rows: Vec<(&str, &AttemptRecord)> = ids
        .iter()
        .zip(batch)
        .map(|(id, (record, _))| (id.as_str(), record))
        .collect();
    for (chunk, size) in chunks(&rows, BATCH_MAX) {
        let mut query = sqlx::query(statements.get(size, numbered));
        for &(id, record) in padded(chunk, size) {
            query = query
                .bind(id)
                .bind(record.event_id.as_str())
                .bind(record.endpoint_id.as_str())
                .bind(record.tenant_id.as_str())
                .bind(i64::from(record.attempt))
                .bind(record.attempted_at_ms)
                .bind(record.status_code.map(i64::from))
                .bind(record.error.as_deref())
                .bind(i64::try_from(record.latency.as_millis()).unwrap_or(i64::MAX))
                .bind(record.response_body.as_deref())
                .bind(record.outcome.as_str())
                .bind(record.next_attempt_at_ms);
        }
        query.execute(pool).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::{DatabaseSettings, Secret};
    use crate::ledger::Ledger;

    fn record(n: u32) -> AttemptRecord {
        AttemptRecord {
            event_id: format!("event-{n}"),
            endpoint_id: "endpoint".to_owned(),
            tenant_id: "tenant".to_owned(),
            attempt: n,
            attempted_at_ms: 1_700_000_000_000 + i64::from(n),
            status_code: Some(200),
            error: None,
            latency: Duration::from_millis(3),
            response_body: Some(b"ok".to_vec()),
            outcome: Outcome::Delivered,
            next_attempt_at_ms: None,
        }
    }

    /// Five records at once make one batch, written by the six-row statement: the padding row
    /// repeats the fifth and adds nothing.
    #[tokio::test]
    async fn a_padded_batch_writes_each_record_once() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ledger = Ledger::connect(&DatabaseSettings {
            url: Secret::new(format!("sqlite://{}", dir.path().join("log.db").display())),
            max_connections: 2,
            sqlite_synchronous: "normal".to_owned(),
            sqlite_wal_autocheckpoint: 1000,
            sqlite_cache_kib: 2048,
        })
        .await
        .expect("the ledger opens");
        let (log, writer) = AttemptLog::spawn(ledger.pool().clone(), false);
        let committed =
            futures_util::future::join_all((1..=5).map(|n| log.record(record(n)))).await;
        assert_eq!(committed, vec![true; 5]);
        drop(log);
        writer.await.expect("the writer stops");

        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT id, event_id, attempt FROM delivery_attempts ORDER BY attempt")
                .fetch_all(ledger.pool())
                .await
                .expect("the rows read");
        let attempts: Vec<i64> = rows.iter().map(|(_, _, attempt)| *attempt).collect();
        assert_eq!(attempts, vec![1, 2, 3, 4, 5]);
        assert_eq!(rows[4].1, "event-5");
        let ids: std::collections::HashSet<&str> =
            rows.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(ids.len(), 5);
    }
}
