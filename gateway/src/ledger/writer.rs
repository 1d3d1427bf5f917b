//! The ledger writer: one task that commits notifications in groups and publishes each group's
//! new events in one pipelined batch.
//!
//! Every ingest request hands its notification to this task through a bounded channel and waits
//! for its answer. One transaction per group (instead of one per request) is what lets SQLite,
//! which has a single writer and one fsync per commit, keep up with thousands of notifications a
//! second; PostgreSQL gains from it as well. While one group commits, the next one gathers in the
//! channel, so groups grow with load and stay at one under light load.
//!
//! Once a group is committed, its new events are published together: every publish of the group
//! is written to the channel before any confirm is awaited, and one task awaits the group's
//! confirms. The writer meanwhile commits the next group. A request gets its 200 right after its
//! commit (the default, `publish_wait` zero: the commit is the guarantee), or after its commit and
//! its confirms but at most `publish_wait`; the outbox relay publishes whatever was not confirmed.
//! At most `publish_in_flight` events await confirms at once: beyond that (a slow or stalled
//! broker) newly committed events are left to the relay, so memory stays bounded.
//!
//! The same transaction also records "published" marks sent by the publishers, so the write path
//! has one writer and marks cost no transaction of their own.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::{Any, AnyPool, Database, Row, Sqlite, SqliteConnection};
use storehook_adapters::{Event, Store};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::{WriterConnection, now_ms, sha256_hex};
use crate::bus::{Outgoing, PublishOutcome, Publisher};
use crate::metrics::{Metrics, PublishPath};

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
    /// The exact JSON published: serialized once, stored and published as these bytes.
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

/// One request's notification, its answer, and whether it is committed yet (so a request whose
/// commit wait runs out can tell "not committed" from "committed, still publishing").
struct Submission {
    notification: NewNotification,
    reply: oneshot::Sender<Result<(), WriteError>>,
    committed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submission")
            .field("notification", &self.notification.id)
            .finish()
    }
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
    /// How long a committed request waits for its events' confirms (zero: not at all).
    pub publish_wait: Duration,
    /// Most events awaiting confirms at once; beyond it, committed events are left to the relay.
    pub publish_in_flight: usize,
    /// How long a fresh event is left to its request before the relay may take it.
    pub relay_grace: Duration,
}

/// The handle requests and publishers use; cheap to clone.
#[derive(Debug, Clone)]
pub struct LedgerWriter {
    submissions: mpsc::Sender<Submission>,
    marks: mpsc::UnboundedSender<Vec<String>>,
    commit_wait: Duration,
    publish_wait: Duration,
}

impl LedgerWriter {
    /// Start the writer task on `connection`; it publishes with `publisher`. It ends once every
    /// handle is dropped (or `shutdown`) and the last group is committed and published.
    pub fn spawn(
        connection: WriterConnection,
        publisher: Publisher,
        metrics: Metrics,
        tuning: WriterTuning,
        shutdown: watch::Receiver<bool>,
    ) -> (LedgerWriter, tokio::task::JoinHandle<()>) {
        let (submissions, submissions_rx) = mpsc::channel(tuning.queue_depth);
        let (marks, marks_rx) = mpsc::unbounded_channel();
        let grace_ms = i64::try_from(tuning.relay_grace.as_millis()).unwrap_or(i64::MAX / 2);
        let numbered = matches!(connection, WriterConnection::Pool(_));
        let writer = Writer {
            db: Db {
                connection,
                statements: Statements::new(numbered),
            },
            publishing: Publishing {
                publisher,
                marks: marks.clone(),
                metrics: metrics.clone(),
                wait: tuning.publish_wait,
                in_flight: Arc::new(Semaphore::new(tuning.publish_in_flight)),
                in_flight_max: tuning.publish_in_flight,
                tasks: JoinSet::new(),
            },
            metrics,
            batch_max: tuning.batch_max,
            grace_ms,
        };
        let task = tokio::spawn(writer.run(submissions_rx, marks_rx, shutdown));
        (
            LedgerWriter {
                submissions,
                marks,
                commit_wait: tuning.commit_wait,
                publish_wait: tuning.publish_wait,
            },
            task,
        )
    }

    /// Commit `notification` with the group it lands in, then wait (at most `publish_wait`) for
    /// the broker to confirm its new events. `Ok` means committed: the relay publishes whatever
    /// was not confirmed. A resend commits nothing new and publishes nothing.
    pub async fn store(&self, notification: NewNotification) -> Result<(), WriteError> {
        let (reply, mut answer) = oneshot::channel();
        let committed = Arc::new(AtomicBool::new(false));
        // A full queue means the ledger is far behind: refuse now, the store retries.
        self.submissions
            .try_send(Submission {
                notification,
                reply,
                committed: Arc::clone(&committed),
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => WriteError::Busy,
                mpsc::error::TrySendError::Closed(_) => WriteError::Stopped,
            })?;
        match tokio::time::timeout(self.commit_wait, &mut answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => stopped(&committed),
            // Committed in time, still publishing: the publish wait is the group's own, so this
            // only bounds a stalled publisher.
            Err(_) if committed.load(Ordering::Acquire) => {
                match tokio::time::timeout(self.publish_wait, answer).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(_)) => stopped(&committed),
                    Err(_) => Ok(()),
                }
            }
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

/// The answer of a request whose writer went away: committed is committed.
fn stopped(committed: &AtomicBool) -> Result<(), WriteError> {
    if committed.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err(WriteError::Stopped)
    }
}

struct Writer {
    db: Db,
    publishing: Publishing,
    metrics: Metrics,
    batch_max: usize,
    grace_ms: i64,
}

impl Writer {
    async fn run(
        mut self,
        mut submissions: mpsc::Receiver<Submission>,
        mut marks: mpsc::UnboundedReceiver<Vec<String>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut group: Vec<Submission> = Vec::with_capacity(self.batch_max);
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
            while group.len() < self.batch_max {
                match submissions.try_recv() {
                    Ok(submission) => group.push(submission),
                    Err(_) => break,
                }
            }
            while let Ok(ids) = marks.try_recv() {
                marked.extend(ids);
            }
            let committed = self.commit_group(&mut group, &mut marked).await;
            self.publishing.start(committed);
        }
        // Let the groups still publishing hand in their marks (bounded: the broker may be gone or
        // blocked), so that the relay does not publish them again after a restart.
        let drain = self.publishing.wait.max(SHUTDOWN_PUBLISH_WAIT);
        let _ = tokio::time::timeout(drain, self.publishing.finish()).await;
        while let Ok(ids) = marks.try_recv() {
            marked.extend(ids);
        }
        if !marked.is_empty() {
            let committed = self.commit_group(&mut group, &mut marked).await;
            self.publishing.start(committed);
        }
    }

    /// Commit a group; requests whose commit failed are answered here, the committed ones are
    /// returned with their new events. If the group fails, each notification is retried alone,
    /// so one that the database refuses cannot fail its neighbours.
    async fn commit_group(
        &mut self,
        group: &mut Vec<Submission>,
        marked: &mut Vec<String>,
    ) -> Vec<(Submission, Vec<Arc<NewEvent>>)> {
        let started = Instant::now();
        let notifications: Vec<&NewNotification> = group.iter().map(|s| &s.notification).collect();
        let result = self.db.write(self.grace_ms, &notifications, marked).await;
        drop(notifications);
        self.metrics
            .commit(started.elapsed().as_secs_f64(), group.len() + marked.len());
        match result {
            Ok(new_events) => {
                marked.clear();
                group.drain(..).zip(new_events).collect()
            }
            Err(error) => {
                tracing::error!(%error, notifications = group.len(), "Ledger commit failed");
                if !marked.is_empty() {
                    if let Err(error) = self.db.write(self.grace_ms, &[], marked).await {
                        // The relay republishes these; consumers see a duplicate, never a loss.
                        tracing::error!(%error, events = marked.len(), "Cannot mark events published");
                    }
                    marked.clear();
                }
                let single = group.len() > 1;
                let mut committed = Vec::new();
                for submission in group.drain(..) {
                    let result = if single {
                        self.db
                            .write(self.grace_ms, &[&submission.notification], &[])
                            .await
                            .map(|mut events| events.pop().unwrap_or_default())
                            .map_err(|e| WriteError::Database(e.to_string()))
                    } else {
                        Err(WriteError::Database(error.to_string()))
                    };
                    match result {
                        Ok(events) => committed.push((submission, events)),
                        Err(error) => {
                            let _ = submission.reply.send(Err(error));
                        }
                    }
                }
                committed
            }
        }
    }
}

/// The publishing half: one task per committed group that has new events to publish.
struct Publishing {
    publisher: Publisher,
    marks: mpsc::UnboundedSender<Vec<String>>,
    metrics: Metrics,
    wait: Duration,
    /// One permit per event awaiting its confirm.
    in_flight: Arc<Semaphore>,
    in_flight_max: usize,
    tasks: JoinSet<()>,
}

impl Publishing {
    /// Answer the group's requests that have nothing to wait for, and start publishing the rest.
    fn start(&mut self, committed: Vec<(Submission, Vec<Arc<NewEvent>>)>) {
        // Finished tasks are reaped here so the set does not grow.
        while self.tasks.try_join_next().is_some() {}
        let connected = self.publisher.is_connected();
        let mut waiting = Vec::new();
        let mut events = Vec::new();
        for (submission, new_events) in committed {
            submission.committed.store(true, Ordering::Release);
            if new_events.is_empty() || !connected {
                let _ = submission.reply.send(Ok(()));
            } else {
                waiting.push(submission.reply);
                events.extend(new_events);
            }
        }
        if events.is_empty() {
            return;
        }
        let wanted = u32::try_from(events.len().min(self.in_flight_max)).unwrap_or(u32::MAX);
        let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_many_owned(wanted) else {
            // The broker is not keeping up: committed is enough for a 200, the relay publishes.
            self.metrics.left_to_relay(events.len() as u64);
            for reply in waiting {
                let _ = reply.send(Ok(()));
            }
            return;
        };
        if self.wait.is_zero() {
            for reply in waiting.drain(..) {
                let _ = reply.send(Ok(()));
            }
        }
        self.tasks.spawn(publish_group(
            self.publisher.clone(),
            self.marks.clone(),
            self.metrics.clone(),
            self.wait,
            waiting,
            events,
            permit,
        ));
    }

    /// Every group still publishing has its confirms (or its connection failed).
    async fn finish(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Publish a committed group's events in one batch, answer its requests once confirmed (or after
/// `wait`), and have the confirmed ones marked published.
async fn publish_group(
    publisher: Publisher,
    marks: mpsc::UnboundedSender<Vec<String>>,
    metrics: Metrics,
    wait: Duration,
    mut waiting: Vec<oneshot::Sender<Result<(), WriteError>>>,
    events: Vec<Arc<NewEvent>>,
    permit: OwnedSemaphorePermit,
) {
    let outgoing: Vec<Outgoing<'_>> = events
        .iter()
        .map(|event| Outgoing {
            id: &event.id,
            routing_key: &event.routing_key,
            payload: event.payload.as_bytes(),
        })
        .collect();
    let publishing = publisher.publish_all(&outgoing);
    tokio::pin!(publishing);
    let outcomes = match tokio::time::timeout(wait, &mut publishing).await {
        Ok(outcomes) => outcomes,
        Err(_) => {
            // Committed is enough for a 200; a confirm arriving later still marks its event.
            for reply in waiting.drain(..) {
                let _ = reply.send(Ok(()));
            }
            publishing.await
        }
    };
    for reply in waiting {
        let _ = reply.send(Ok(()));
    }
    let published: Vec<String> = events
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| **outcome == PublishOutcome::Routed)
        .map(|(event, _)| event.id.clone())
        .collect();
    drop(permit);
    metrics.published(PublishPath::Inline, published.len() as u64);
    if !published.is_empty() {
        let _ = marks.send(published);
    }
}

/// The writer's connection and its statements.
struct Db {
    connection: WriterConnection,
    statements: Statements,
}

impl Db {
    /// One transaction: insert the notifications that are new, the events of those that are new,
    /// and the published marks. Returns, per notification, its newly stored events.
    async fn write(
        &mut self,
        grace_ms: i64,
        notifications: &[&NewNotification],
        marked: &[String],
    ) -> Result<Vec<Vec<Arc<NewEvent>>>, sqlx::Error> {
        let statements = &mut self.statements;
        match &mut self.connection {
            WriterConnection::Sqlite(connection) => {
                let connection: &mut SqliteConnection = connection;
                let mut tx = sqlx::Connection::begin(connection).await?;
                let result =
                    write_in::<Sqlite>(&mut tx, statements, grace_ms, notifications, marked)
                        .await?;
                tx.commit().await?;
                Ok(result)
            }
            WriterConnection::Pool(pool) => {
                let pool: &AnyPool = pool;
                let mut tx = pool.begin().await?;
                let result =
                    write_in::<Any>(&mut tx, statements, grace_ms, notifications, marked).await?;
                tx.commit().await?;
                Ok(result)
            }
        }
    }
}

/// At shutdown, how long the publishes in flight may take to be confirmed (at least): the broker
/// connection stays open until the writer has stopped.
const SHUTDOWN_PUBLISH_WAIT: Duration = Duration::from_secs(2);

/// The rows one statement writes at most; below that, a statement is padded up to the next of
/// these sizes by repeating its last row (a repeated insert is a conflict that does nothing, a
/// repeated id in an `IN` list changes nothing). A handful of distinct statements per kind is
/// what lets each be prepared once and reused from the connection's statement cache, instead of
/// parsed anew for every group size.
const STATEMENT_ROWS: &[usize] = &[
    1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512,
];
const MAX_INSERT_ROWS: usize = 128;
const MAX_MARK_ROWS: usize = 512;

/// How many rows the statement for `rows` rows (at most the largest size) is built for.
fn statement_rows(rows: usize) -> usize {
    STATEMENT_ROWS
        .iter()
        .copied()
        .find(|&size| size >= rows)
        .unwrap_or(rows)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Notifications,
    Events,
    Marks,
}

/// The hot path's SQL, built once per kind and size.
struct Statements {
    numbered: bool,
    built: std::collections::HashMap<(Kind, usize), Arc<str>>,
}

impl Statements {
    fn new(numbered: bool) -> Statements {
        Statements {
            numbered,
            built: std::collections::HashMap::new(),
        }
    }

    fn get(&mut self, kind: Kind, rows: usize) -> sqlx::AssertSqlSafe<Arc<str>> {
        let numbered = self.numbered;
        let sql = self
            .built
            .entry((kind, rows))
            .or_insert_with(|| build_statement(kind, rows, numbered).into());
        sqlx::AssertSqlSafe(Arc::clone(sql))
    }
}

fn build_statement(kind: Kind, rows: usize, numbered: bool) -> String {
    match kind {
        Kind::Notifications => format!(
            "INSERT INTO notifications \
             (id, tenant_id, source_id, store, received_at, status, reason, body) \
             VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id",
            super::placeholders(rows, 8, 1, numbered)
        ),
        Kind::Events => format!(
            "INSERT INTO events \
             (id, notification_id, tenant_id, source_id, event_type, routing_key, payload, \
              created_at, next_attempt_at) \
             VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id",
            super::placeholders(rows, 9, 1, numbered)
        ),
        Kind::Marks => {
            let ids = super::placeholders(rows, 1, 2, numbered).replace(['(', ')'], "");
            let published_at = if numbered { "$1" } else { "?" };
            format!(
                "UPDATE events SET published_at = {published_at}, claimed_by = NULL, \
                 claimed_until = NULL WHERE id IN ({ids}) AND published_at IS NULL"
            )
        }
    }
}

/// `items` cut into statement-sized chunks, each padded (see [`STATEMENT_ROWS`]): the chunk and
/// the number of rows its statement has.
pub(crate) fn chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = (&[T], usize)> {
    items
        .chunks(max)
        .map(|chunk| (chunk, statement_rows(chunk.len())))
}

/// The body of [`Db::write`], the same SQL on either connection type.
async fn write_in<DB>(
    connection: &mut DB::Connection,
    statements: &mut Statements,
    grace_ms: i64,
    notifications: &[&NewNotification],
    marked: &[String],
) -> Result<Vec<Vec<Arc<NewEvent>>>, sqlx::Error>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'a> &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> Option<&'a str>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> &'a [u8]: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let now = now_ms();

    let mut new_notifications: HashSet<String> = HashSet::new();
    for (chunk, rows) in chunks(notifications, MAX_INSERT_ROWS) {
        let mut query = sqlx::query::<DB>(statements.get(Kind::Notifications, rows));
        for n in padded(chunk, rows) {
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
        for row in query.fetch_all(&mut *connection).await? {
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
    // Left to the request that stored it for the grace period, then to the relay.
    let next_attempt_at = now.saturating_add(grace_ms);
    for (chunk, rows) in chunks(&candidates, MAX_INSERT_ROWS) {
        let mut query = sqlx::query::<DB>(statements.get(Kind::Events, rows));
        for (_, n, event) in padded(chunk, rows) {
            query = query
                .bind(event.id.as_str())
                .bind(n.id.as_str())
                .bind(n.tenant_id.as_str())
                .bind(n.source_id.as_str())
                .bind(event.event_type)
                .bind(event.routing_key.as_str())
                .bind(event.payload.as_str())
                .bind(now)
                .bind(next_attempt_at);
        }
        for row in query.fetch_all(&mut *connection).await? {
            new_events.insert(row.try_get::<String, _>(0)?);
        }
    }
    let mut result: Vec<Vec<Arc<NewEvent>>> = vec![Vec::new(); notifications.len()];
    for (index, _, event) in candidates {
        if new_events.contains(&event.id) {
            result[index].push(Arc::clone(event));
        }
    }

    for (chunk, rows) in chunks(marked, MAX_MARK_ROWS) {
        let mut query = sqlx::query::<DB>(statements.get(Kind::Marks, rows)).bind(now);
        for id in padded(chunk, rows) {
            query = query.bind(id.as_str());
        }
        query.execute(&mut *connection).await?;
    }
    Ok(result)
}

/// `chunk` followed by its last item repeated up to `rows` items.
pub(crate) fn padded<T>(chunk: &[T], rows: usize) -> impl Iterator<Item = &T> {
    let last = chunk.last();
    chunk
        .iter()
        .chain(std::iter::repeat_n(last, rows - chunk.len()).flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_come_in_few_sizes() {
        assert_eq!(statement_rows(1), 1);
        assert_eq!(statement_rows(5), 6);
        assert_eq!(statement_rows(64), 64);
        assert_eq!(statement_rows(65), 96);
        assert_eq!(statement_rows(MAX_INSERT_ROWS), MAX_INSERT_ROWS);
        assert_eq!(statement_rows(MAX_MARK_ROWS), MAX_MARK_ROWS);
        let sizes: HashSet<usize> = (1..=MAX_MARK_ROWS).map(statement_rows).collect();
        assert!(sizes.len() <= STATEMENT_ROWS.len());
    }

    #[test]
    fn padding_repeats_the_last_row() {
        let rows: Vec<&u32> = padded(&[1, 2, 3], 6).collect();
        assert_eq!(rows, [&1, &2, &3, &3, &3, &3]);
        assert_eq!(padded(&[7], 1).count(), 1);
    }

    #[test]
    fn statements_number_their_parameters_per_backend() {
        let sqlite = build_statement(Kind::Marks, 2, false);
        assert!(sqlite.contains("published_at = ?") && sqlite.contains("IN (?, ?)"));
        let postgres = build_statement(Kind::Marks, 2, true);
        assert!(postgres.contains("published_at = $1") && postgres.contains("IN ($2, $3)"));
    }
}
