//! The attempt log: every webhook attempt becomes a row of `delivery_attempts`.
//!
//! Deliveries run by the hundred at once, so rows are written by one task in group commits (one
//! multi-row `INSERT` per batch); a delivery waits for its row to be committed before its message
//! is acknowledged, so an acknowledged delivery always has its record.

use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

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
                let committed = match insert(&pool, &batch, numbered).await {
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

async fn insert(pool: &AnyPool, batch: &[Request], numbered: bool) -> Result<(), sqlx::Error> {
    let mut query_sql = String::from(
        "INSERT INTO delivery_attempts (id, event_id, endpoint_id, tenant_id, attempt, \
         attempted_at, status_code, error, latency_ms, response_body, outcome, next_attempt_at) \
         VALUES ",
    );
    let columns = COLUMNS;
    for row in 0..batch.len() {
        if row > 0 {
            query_sql.push_str(", ");
        }
        query_sql.push('(');
        for column in 0..columns {
            if column > 0 {
                query_sql.push_str(", ");
            }
            if numbered {
                query_sql.push('$');
                query_sql.push_str(&(row * columns + column + 1).to_string());
            } else {
                query_sql.push('?');
            }
        }
        query_sql.push(')');
    }
    let mut query = sqlx::query(sqlx::AssertSqlSafe(query_sql));
    for (record, _) in batch {
        query = query
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(record.event_id.clone())
            .bind(record.endpoint_id.clone())
            .bind(record.tenant_id.clone())
            .bind(i64::from(record.attempt))
            .bind(record.attempted_at_ms)
            .bind(record.status_code.map(i64::from))
            .bind(record.error.clone())
            .bind(i64::try_from(record.latency.as_millis()).unwrap_or(i64::MAX))
            .bind(record.response_body.clone())
            .bind(record.outcome.as_str())
            .bind(record.next_attempt_at_ms);
    }
    query.execute(pool).await?;
    Ok(())
}
