//! The ledger writer: one task that commits notifications in groups.
//!
//! Every ingest request hands its notification to this task through a bounded channel and waits
//! for the commit of the group it landed in. One transaction per group (instead of one per
//! request) is what lets SQLite, which has a single writer and one fsync per commit, keep up with
//! thousands of notifications a second; PostgreSQL gains from it as well. While one group commits,
//! the next one gathers in the channel, so groups grow with load and stay at one under light load.
//!
//! The same transaction also records "published" marks sent by the publishers, so the write path
//! has one writer and marks cost no transaction of their own.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{AnyPool, Row};
use storehook_adapters::{Event, Store};
use tokio::sync::{mpsc, oneshot, watch};

use super::{Backend, now_ms, placeholders, sha256_hex};
use crate::metrics::Metrics;

/// Rows per multi-row statement: few statements per group, well under every parameter limit.
const ROWS_PER_STATEMENT: usize = 100;

/// A notification as the ledger keeps it.
#[derive(Debug)]
pub struct NewNotification {
    /// Idempotency key of the notification (see [`NewNotification::accepted`]).
    pub id: String,
    pub tenant_id: String,
    pub source_id: String,
    pub store: Store,
    pub received_at: i64,
    /// `None` when accepted; the reason when rejected as malformed.
    pub rejection: Option<String>,
    pub body: Vec<u8>,
    pub events: Vec<Arc<NewEvent>>,
}

/// An event ready to be stored and published.
#[derive(Debug)]
pub struct NewEvent {
    pub id: String,
    pub event_type: &'static str,
    pub routing_key: String,
    /// The exact JSON published.
    pub payload: String,
}

impl NewEvent {
    pub fn from_event(event: &Event) -> NewEvent {
        NewEvent {
            id: event.id.to_string(),
            event_type: event.event_type.as_str(),
            routing_key: event.routing_key(),
            payload: crate::bus::encode_event_string(event),
        }
    }
}

impl NewNotification {
    /// A verified notification and its events. Its id derives from the events' idempotency keys
    /// (the store's own notification ids), not from the body: a RuStore resend may be encrypted
    /// afresh, yet it is the same notification.
    pub fn accepted(
        tenant_id: &str,
        source_id: &str,
        store: Store,
        received_at: i64,
        body: Vec<u8>,
        events: &[Event],
    ) -> NewNotification {
        let id = if events.is_empty() {
            sha256_hex(&[source_id.as_bytes(), &body])
        } else {
            let mut keys: Vec<&[u8]> = events
                .iter()
                .map(|e| e.idempotency_key.as_bytes())
                .collect();
            keys.sort_unstable();
            keys.insert(0, source_id.as_bytes());
            sha256_hex(&keys)
        };
        NewNotification {
            id,
            tenant_id: tenant_id.to_owned(),
            source_id: source_id.to_owned(),
            store,
            received_at,
            rejection: None,
            body,
            events: events
                .iter()
                .map(|e| Arc::new(NewEvent::from_event(e)))
                .collect(),
        }
    }

    /// Malformed input from a known source, kept with the reason so an operator can replay it.
    /// The same bytes resent are the same rejected notification.
    pub fn rejected(
        tenant_id: &str,
        source_id: &str,
        store: Store,
        received_at: i64,
        body: Vec<u8>,
        reason: String,
    ) -> NewNotification {
        NewNotification {
            id: sha256_hex(&[b"rejected", source_id.as_bytes(), &body]),
            tenant_id: tenant_id.to_owned(),
            source_id: source_id.to_owned(),
            store,
            received_at,
            rejection: Some(reason),
            body,
            events: Vec::new(),
        }
    }
}

/// Why a notification was not committed; the request answers 503 and the store retries.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the ledger is busy")]
    Busy,
    #[error("the ledger did not commit in time")]
    Timeout,
    #[error("the ledger writer has stopped")]
    Stopped,
    #[error("the ledger refused the commit: {0}")]
    Database(String),
}

struct Submission {
    notification: NewNotification,
    reply: oneshot::Sender<Result<Vec<Arc<NewEvent>>, WriteError>>,
}

/// How the writer groups and waits (from `[ingest]` and `[outbox]`).
#[derive(Debug, Clone, Copy)]
pub struct WriterTuning {
    /// Notifications waiting before new ones are refused (503).
    pub queue_depth: usize,
    /// Most notifications per transaction.
    pub batch_max: usize,
    /// How long a request waits for its commit.
    pub commit_wait: Duration,
    /// How long a fresh event is left to its request before the relay may take it.
    pub relay_grace: Duration,
}

/// The handle requests and publishers use; cheap to clone.
#[derive(Debug, Clone)]
pub struct LedgerWriter {
    submissions: mpsc::Sender<Submission>,
    marks: mpsc::UnboundedSender<Vec<String>>,
    commit_wait: Duration,
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submission")
            .field("notification", &self.notification.id)
            .finish()
    }
}

impl LedgerWriter {
    /// Start the writer task on `pool`. It ends once every handle is dropped and the last group
    /// is committed.
    pub fn spawn(
        pool: AnyPool,
        backend: Backend,
        metrics: Metrics,
        tuning: WriterTuning,
        shutdown: watch::Receiver<bool>,
    ) -> (LedgerWriter, tokio::task::JoinHandle<()>) {
        let WriterTuning {
            queue_depth,
            batch_max,
            commit_wait,
            relay_grace,
        } = tuning;
        let (submissions, submissions_rx) = mpsc::channel(queue_depth);
        let (marks, marks_rx) = mpsc::unbounded_channel();
        let grace_ms = i64::try_from(relay_grace.as_millis()).unwrap_or(i64::MAX / 2);
        let task = tokio::spawn(run(
            Database {
                pool,
                numbered: backend.numbered(),
            },
            metrics,
            submissions_rx,
            marks_rx,
            batch_max,
            grace_ms,
            shutdown,
        ));
        (
            LedgerWriter {
                submissions,
                marks,
                commit_wait,
            },
            task,
        )
    }

    /// Commit `notification` (with the group it lands in) and return its events that were not in
    /// the ledger before: the ones to publish. A resend returns none.
    pub async fn store(
        &self,
        notification: NewNotification,
    ) -> Result<Vec<Arc<NewEvent>>, WriteError> {
        let (reply, committed) = oneshot::channel();
        // A full queue means the ledger is far behind: refuse now, the store retries.
        self.submissions
            .try_send(Submission {
                notification,
                reply,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => WriteError::Busy,
                mpsc::error::TrySendError::Closed(_) => WriteError::Stopped,
            })?;
        match tokio::time::timeout(self.commit_wait, committed).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(WriteError::Stopped),
            // The commit may still happen; a resend then finds it and the relay publishes it.
            Err(_) => Err(WriteError::Timeout),
        }
    }

    /// Record that these events were published (confirmed and routed), in the next group commit.
    pub fn mark_published(&self, event_ids: Vec<String>) {
        if !event_ids.is_empty() {
            // Only fails when the writer has stopped; the events are then republished by the
            // relay after a restart, which at-least-once delivery allows.
            let _ = self.marks.send(event_ids);
        }
    }
}

/// The pool and its parameter style.
#[derive(Debug)]
struct Database {
    pool: AnyPool,
    numbered: bool,
}

async fn run(
    db: Database,
    metrics: Metrics,
    mut submissions: mpsc::Receiver<Submission>,
    mut marks: mpsc::UnboundedReceiver<Vec<String>>,
    batch_max: usize,
    grace_ms: i64,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut group: Vec<Submission> = Vec::with_capacity(batch_max);
    let mut marked: Vec<String> = Vec::new();
    let mut closing = false;
    loop {
        tokio::select! {
            submission = submissions.recv() => match submission {
                Some(submission) => group.push(submission),
                None => break,
            },
            Some(ids) = marks.recv() => marked.extend(ids),
            // Refuse new work but commit what is queued: those requests are still waiting.
            _ = shutdown.wait_for(|stop| *stop), if !closing => {
                closing = true;
                submissions.close();
                continue;
            }
        }
        while group.len() < batch_max {
            match submissions.try_recv() {
                Ok(submission) => group.push(submission),
                Err(_) => break,
            }
        }
        while let Ok(ids) = marks.try_recv() {
            marked.extend(ids);
        }
        commit_group(&db, &metrics, grace_ms, &mut group, &mut marked).await;
    }
    // Marks that arrive while shutting down still count.
    while let Ok(ids) = marks.try_recv() {
        marked.extend(ids);
    }
    if !marked.is_empty() {
        commit_group(&db, &metrics, grace_ms, &mut group, &mut marked).await;
    }
}

/// Commit a group and answer every request in it. If the group fails, each notification is
/// retried alone, so one that the database refuses cannot fail its neighbours.
async fn commit_group(
    db: &Database,
    metrics: &Metrics,
    grace_ms: i64,
    group: &mut Vec<Submission>,
    marked: &mut Vec<String>,
) {
    let started = Instant::now();
    let notifications: Vec<&NewNotification> = group.iter().map(|s| &s.notification).collect();
    let result = write(db, grace_ms, &notifications, marked).await;
    metrics.commit(started.elapsed().as_secs_f64(), group.len() + marked.len());
    match result {
        Ok(new_events) => {
            for (submission, events) in group.drain(..).zip(new_events) {
                let _ = submission.reply.send(Ok(events));
            }
            marked.clear();
        }
        Err(error) => {
            tracing::error!(%error, notifications = group.len(), "Ledger commit failed");
            if !marked.is_empty() {
                if let Err(error) = write(db, grace_ms, &[], marked).await {
                    // The relay republishes these; consumers see a duplicate, never a loss.
                    tracing::error!(%error, events = marked.len(), "Cannot mark events published");
                }
                marked.clear();
            }
            let single = group.len() > 1;
            for submission in group.drain(..) {
                let result = if single {
                    write(db, grace_ms, &[&submission.notification], &[])
                        .await
                        .map(|mut events| events.pop().unwrap_or_default())
                        .map_err(|e| WriteError::Database(e.to_string()))
                } else {
                    Err(WriteError::Database(error.to_string()))
                };
                let _ = submission.reply.send(result);
            }
        }
    }
}

/// One transaction: insert the notifications that are new, the events of those that are new,
/// and the published marks. Returns, per notification, its newly stored events.
async fn write(
    db: &Database,
    grace_ms: i64,
    notifications: &[&NewNotification],
    marked: &[String],
) -> Result<Vec<Vec<Arc<NewEvent>>>, sqlx::Error> {
    let now = now_ms();
    let numbered = db.numbered;
    let mut tx = db.pool.begin().await?;

    let mut new_notifications: HashSet<String> = HashSet::new();
    for chunk in notifications.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO notifications \
             (id, tenant_id, source_id, store, received_at, status, reason, body) \
             VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id",
            placeholders(chunk.len(), 8, 1, numbered)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for n in chunk {
            query = query
                .bind(n.id.as_str())
                .bind(n.tenant_id.as_str())
                .bind(n.source_id.as_str())
                .bind(n.store.as_str())
                .bind(n.received_at)
                .bind(if n.rejection.is_some() {
                    "rejected"
                } else {
                    "accepted"
                })
                .bind(n.rejection.as_deref())
                .bind(n.body.as_slice());
        }
        for row in query.fetch_all(&mut *tx).await? {
            new_notifications.insert(row.try_get::<String, _>(0)?);
        }
    }

    // The first notification of the group with a new id owns it (a resend racing the original in
    // the same group owns nothing); likewise for event ids.
    let mut candidates: Vec<(usize, &NewNotification, &Arc<NewEvent>)> = Vec::new();
    let mut seen_events: HashSet<&str> = HashSet::new();
    for (index, n) in notifications.iter().enumerate() {
        if new_notifications.remove(&n.id) {
            for event in &n.events {
                if seen_events.insert(event.id.as_str()) {
                    candidates.push((index, n, event));
                }
            }
        }
    }
    let mut new_events: HashSet<String> = HashSet::new();
    for chunk in candidates.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO events \
             (id, notification_id, tenant_id, source_id, event_type, routing_key, payload, \
              created_at, next_attempt_at) \
             VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id",
            placeholders(chunk.len(), 9, 1, numbered)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (_, n, event) in chunk {
            query = query
                .bind(event.id.as_str())
                .bind(n.id.as_str())
                .bind(n.tenant_id.as_str())
                .bind(n.source_id.as_str())
                .bind(event.event_type)
                .bind(event.routing_key.as_str())
                .bind(event.payload.as_str())
                .bind(now)
                // Left to the request that stored it for the grace period, then to the relay.
                .bind(now.saturating_add(grace_ms));
        }
        for row in query.fetch_all(&mut *tx).await? {
            new_events.insert(row.try_get::<String, _>(0)?);
        }
    }
    let mut result: Vec<Vec<Arc<NewEvent>>> = vec![Vec::new(); notifications.len()];
    for (index, _, event) in candidates {
        if new_events.contains(&event.id) {
            result[index].push(Arc::clone(event));
        }
    }

    for chunk in marked.chunks(ROWS_PER_STATEMENT * 5) {
        let ids = placeholders(chunk.len(), 1, 2, numbered).replace(['(', ')'], "");
        let published_at = if numbered { "$1" } else { "?" };
        let sql = format!(
            "UPDATE events SET published_at = {published_at}, claimed_by = NULL, \
             claimed_until = NULL WHERE id IN ({ids}) AND published_at IS NULL"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        query.execute(&mut *tx).await?;
    }

    tx.commit().await?;
    Ok(result)
}
