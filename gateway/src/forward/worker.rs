//! The delivery engine: consumes `<prefix>.forward` (events) and `<prefix>.deliveries` (retries
//! that are due), makes the attempts, and hands every failed delivery on to the ladder or to
//! `<prefix>.dead` with a confirmed publish before acknowledging what it came from.
//!
//! An event fans out into one delivery per matching endpoint; its first attempts run
//! concurrently, each bounded by `forward.timeout`, so a hanging endpoint delays nobody else. The
//! event is acknowledged once every delivery is delivered, confirmed into the ladder or confirmed
//! dead, and its attempt rows committed; if any hand-off fails the event is returned to the queue
//! and redelivered (at-least-once: an endpoint may see an attempt twice, always with the same
//! `webhook-id`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::attempt::{self, AttemptResult, Message};
use super::attempts::{AttemptLog, AttemptRecord, Outcome};
use super::config::ForwardSettings;
use super::endpoints::{Endpoint, Endpoints};
use super::metrics::ForwardMetrics;
use super::schedule::Schedule;
use super::topology::{self, Names};
use crate::configuration::BrokerSettings;
use crate::ledger::now_ms;

/// Message headers of a delivery in the ladder, in `<prefix>.deliveries` and in `<prefix>.dead`.
pub mod headers {
    /// The endpoint id.
    pub const ENDPOINT: &str = "storehook-endpoint";
    /// Attempts made so far.
    pub const ATTEMPTS: &str = "storehook-attempts";
    /// When the first attempt was made (ms since the epoch): the retry window starts there.
    pub const FIRST_ATTEMPT_AT: &str = "storehook-first-attempt-at";
    /// Not to be attempted before this time (ms): a `Retry-After` longer than the step.
    pub const NOT_BEFORE: &str = "storehook-not-before";
    /// Why the last attempt failed (and, in `<prefix>.dead`, why the delivery was given up).
    pub const LAST_ERROR: &str = "storehook-last-error";
}

/// A pause before returning a message the forwarder could not handle (database or broker
/// trouble), so a persistent problem does not spin.
const REQUEUE_PAUSE: Duration = Duration::from_secs(1);

/// A broker that accepts TCP but never finishes the handshake must not stall the forwarder.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The fields of an event the forwarder needs; the body is forwarded as is.
#[derive(Debug, Deserialize)]
struct EventHead {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    tenant: String,
}

/// Everything a delivery needs; shared by the tasks.
#[derive(Debug)]
pub struct Forwarder {
    pub names: Names,
    schedule: Schedule,
    settings: ForwardSettings,
    endpoints: Endpoints,
    log: AttemptLog,
    client: reqwest::Client,
    metrics: ForwardMetrics,
}

/// What happens to a delivery after a failed attempt.
enum Next {
    /// Wait `delay`, then attempt again.
    Retry { delay: Duration },
    /// Give up, with the reason.
    Dead(String),
}

impl Forwarder {
    pub fn new(
        names: Names,
        schedule: Schedule,
        settings: ForwardSettings,
        endpoints: Endpoints,
        log: AttemptLog,
        client: reqwest::Client,
        metrics: ForwardMetrics,
    ) -> Forwarder {
        Forwarder {
            names,
            schedule,
            settings,
            endpoints,
            log,
            client,
            metrics,
        }
    }

    /// Consume until `shutdown`, reconnecting with backoff. The forwarder has a connection of
    /// its own, so that on shutdown it can finish its in-flight deliveries (and acknowledge them)
    /// before that connection closes, whatever the other roles do with theirs. Deliveries still
    /// running `drain` after the shutdown are abandoned unacknowledged: closing their channel
    /// returns them to their queue, for this or another forwarder to attempt again.
    pub async fn run(
        self: Arc<Self>,
        broker: BrokerSettings,
        drain: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let min = Duration::from_millis(broker.reconnect_min_ms);
        let max = Duration::from_millis(broker.reconnect_max_ms);
        let mut backoff = min;
        loop {
            let properties =
                ConnectionProperties::default().with_connection_name("storehook forwarder".into());
            let connecting = Connection::connect(broker.url.expose(), properties);
            let connected = tokio::select! {
                connected = tokio::time::timeout(CONNECT_TIMEOUT, connecting) => connected,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let error = match connected {
                Ok(Ok(connection)) => {
                    let end = self.session(&connection, drain, &mut shutdown).await;
                    let _ = connection.close(200, "storehook forwarder".into()).await;
                    match end {
                        Ok(()) => return,
                        Err(error) => {
                            backoff = min;
                            error.to_string()
                        }
                    }
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => "timed out".to_owned(),
            };
            tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "Forwarder lost RabbitMQ; reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            backoff = (backoff * 2).min(max);
        }
    }

    /// Declare, consume and deliver until `shutdown` (`Ok`) or a broker failure (`Err`).
    async fn session(
        self: &Arc<Self>,
        connection: &Connection,
        drain: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let publish = connection.create_channel().await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        topology::declare(&publish, &self.names).await?;
        let (events_channel, mut events) = self
            .consume(connection, &self.names.forward, self.settings.prefetch)
            .await?;
        let (retries_channel, mut retries) = self
            .consume(
                connection,
                &self.names.deliveries,
                self.settings.retry_prefetch,
            )
            .await?;
        tracing::info!(queue = %self.names.forward, "Forwarder consuming");
        let mut in_flight = JoinSet::new();
        let mut health = tokio::time::interval(Duration::from_millis(500));
        let end = loop {
            tokio::select! {
                delivery = events.next() => match delivery {
                    Some(Ok(delivery)) => {
                        let me = Arc::clone(self);
                        let publish = publish.clone();
                        in_flight.spawn(async move { me.handle_event(delivery, &publish).await });
                    }
                    Some(Err(error)) => break Err(error.into()),
                    None => break Err(anyhow::anyhow!("the broker cancelled the consumer")),
                },
                delivery = retries.next() => match delivery {
                    Some(Ok(delivery)) => {
                        let me = Arc::clone(self);
                        let publish = publish.clone();
                        in_flight.spawn(async move { me.handle_retry(delivery, &publish).await });
                    }
                    Some(Err(error)) => break Err(error.into()),
                    None => break Err(anyhow::anyhow!("the broker cancelled the consumer")),
                },
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = health.tick() => {
                    if !connection.status().connected() {
                        break Err(anyhow::anyhow!("the connection closed"));
                    }
                }
                _ = shutdown.wait_for(|stop| *stop) => break Ok(()),
            }
        };
        // Take nothing new; finish what is in flight (each is bounded by the timeout and a
        // publish), for at most `drain`. Prefetched messages not started, and those abandoned
        // here, are returned to their queues by the close: never acknowledged unfinished.
        let finished = tokio::time::timeout(drain, async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                deliveries = in_flight.len(),
                "Deliveries still running at the shutdown bound; returning them to RabbitMQ"
            );
            in_flight.abort_all();
            while in_flight.join_next().await.is_some() {}
        }
        for channel in [&events_channel, &retries_channel, &publish] {
            let _ = channel
                .close(200, "storehook forwarder stopping".into())
                .await;
        }
        end
    }

    async fn consume(
        &self,
        connection: &Connection,
        queue: &str,
        prefetch: u16,
    ) -> Result<(Channel, lapin::Consumer), lapin::Error> {
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((channel, consumer))
    }

    /// An event from `<prefix>.forward`: one delivery per matching endpoint, first attempts.
    async fn handle_event(&self, delivery: Delivery, publish: &Channel) {
        self.metrics.event();
        let head = match serde_json::from_slice::<EventHead>(&delivery.data) {
            Ok(head) => head,
            Err(error) => {
                let reason = format!("not an event: {error}");
                let buried = self
                    .publish(
                        publish,
                        &self.names.dead,
                        &delivery.data,
                        None,
                        delivery_headers(&delivery_fields(&delivery), &reason),
                    )
                    .await;
                self.finish(&delivery, buried.is_ok()).await;
                return;
            }
        };
        let endpoints = match self.endpoints.for_tenant(&head.tenant).await {
            Ok(endpoints) => endpoints,
            Err(error) => {
                tracing::error!(%error, "Cannot read the endpoints");
                self.finish(&delivery, false).await;
                return;
            }
        };
        let first_attempt_at = now_ms();
        let deliveries = endpoints
            .iter()
            .filter(|endpoint| endpoint.filter.accepts(&head.event_type))
            .map(|endpoint| {
                self.deliver(
                    publish,
                    &delivery.data,
                    &head,
                    endpoint,
                    1,
                    first_attempt_at,
                )
            });
        let handed_on = futures_util::future::join_all(deliveries).await;
        self.finish(&delivery, handed_on.iter().all(|ok| *ok)).await;
    }

    /// A delivery from `<prefix>.deliveries`: its step in the ladder is over.
    async fn handle_retry(&self, delivery: Delivery, publish: &Channel) {
        let fields = delivery_fields(&delivery);
        let head = serde_json::from_slice::<EventHead>(&delivery.data);
        let (Some(endpoint_id), Some(attempts), Some(first_attempt_at), Ok(head)) = (
            fields.endpoint.as_deref(),
            fields.attempts,
            fields.first_attempt_at,
            head,
        ) else {
            let buried = self
                .publish(
                    publish,
                    &self.names.dead,
                    &delivery.data,
                    None,
                    delivery_headers(&fields, "not a storehook delivery"),
                )
                .await;
            self.finish(&delivery, buried.is_ok()).await;
            return;
        };
        let now = now_ms();
        if let Some(not_before) = fields.not_before
            && not_before > now
        {
            // A Retry-After longer than one step: wait on in the longest step that fits (or the
            // shortest, so it is never attempted early).
            let remaining = Duration::from_millis((not_before - now) as u64);
            let queue = self.step_for(remaining);
            let parked = self
                .publish(
                    publish,
                    queue,
                    &delivery.data,
                    Some(&head.id),
                    delivery_headers(&fields, fields.last_error.as_deref().unwrap_or("")),
                )
                .await;
            self.finish(&delivery, parked.is_ok()).await;
            return;
        }
        let endpoint = match self.endpoints.by_id(endpoint_id).await {
            Ok(endpoint) => endpoint,
            Err(error) => {
                tracing::error!(%error, "Cannot read the endpoint");
                self.finish(&delivery, false).await;
                return;
            }
        };
        let attempt = attempts.saturating_add(1);
        let handed_on = match endpoint {
            Some(endpoint) if endpoint.enabled => {
                self.deliver(
                    publish,
                    &delivery.data,
                    &head,
                    &endpoint,
                    attempt,
                    first_attempt_at,
                )
                .await
            }
            _ => {
                // Disabled or removed while the delivery waited: keep it for replay.
                let reason = "the endpoint was disabled or removed".to_owned();
                let mut fields = fields.clone();
                fields.not_before = None;
                let buried = self
                    .publish(
                        publish,
                        &self.names.dead,
                        &delivery.data,
                        Some(&head.id),
                        delivery_headers(&fields, &reason),
                    )
                    .await
                    .is_ok();
                let tenant_id = head.tenant.clone();
                buried
                    && self
                        .log
                        .record(AttemptRecord {
                            event_id: head.id.clone(),
                            endpoint_id: endpoint_id.to_owned(),
                            tenant_id,
                            attempt,
                            attempted_at_ms: now,
                            status_code: None,
                            error: Some(reason),
                            latency: Duration::ZERO,
                            response_body: None,
                            outcome: Outcome::Dead,
                            next_attempt_at_ms: None,
                        })
                        .await
            }
        };
        self.finish(&delivery, handed_on).await;
    }

    /// One attempt to one endpoint, and what follows it; `true` once the delivery is durably
    /// handed on and its record committed.
    async fn deliver(
        &self,
        publish: &Channel,
        body: &[u8],
        head: &EventHead,
        endpoint: &Endpoint,
        attempt: u32,
        first_attempt_at: i64,
    ) -> bool {
        let attempted_at = now_ms();
        let result = match &endpoint.target {
            Ok(target) => {
                attempt::attempt(
                    &self.client,
                    target,
                    Message { id: &head.id, body },
                    self.settings.timeout,
                    self.settings.allow_http,
                    self.settings.allow_private_targets,
                )
                .await
            }
            Err(problem) => AttemptResult {
                status: None,
                error: Some(format!("unusable endpoint: {problem}")),
                latency: Duration::ZERO,
                body: None,
                retry_after: None,
            },
        };
        let mut record = AttemptRecord {
            event_id: head.id.clone(),
            endpoint_id: endpoint.id.clone(),
            tenant_id: endpoint.tenant_id.clone(),
            attempt,
            attempted_at_ms: attempted_at,
            status_code: result.status,
            error: result.error.clone(),
            latency: result.latency,
            response_body: result.body.clone(),
            outcome: Outcome::Delivered,
            next_attempt_at_ms: None,
        };
        if result.delivered() {
            self.metrics
                .attempt(Outcome::Delivered, result.latency.as_secs_f64());
            return self.log.record(record).await;
        }
        let failure = match (result.status, &result.error) {
            (Some(status), _) => format!("HTTP {status}"),
            (None, Some(error)) => error.clone(),
            (None, None) => "failed".to_owned(),
        };
        let next = if result.gone() {
            if let Err(error) = self.endpoints.disable(&endpoint.id).await {
                tracing::error!(%error, endpoint = %endpoint.id, "Cannot disable the endpoint");
            } else {
                tracing::warn!(endpoint = %endpoint.id, "Endpoint answered 410 Gone: disabled");
            }
            Next::Dead("the endpoint answered 410 Gone and was disabled".to_owned())
        } else {
            match self.schedule.delay(attempt) {
                Some(scheduled) => Next::Retry {
                    delay: self.lengthen(scheduled, result.retry_after, first_attempt_at),
                },
                None => Next::Dead(format!("gave up after {attempt} attempts; last: {failure}")),
            }
        };
        let fields = Fields {
            endpoint: Some(endpoint.id.clone()),
            attempts: Some(attempt),
            first_attempt_at: Some(first_attempt_at),
            not_before: None,
            last_error: None,
        };
        let handed_on = match next {
            Next::Retry { delay } => {
                let now = now_ms();
                let due = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                let scheduled = self.schedule.delay(attempt).unwrap_or(delay);
                let (queue, fields) = if delay > scheduled {
                    (
                        self.step_for(delay),
                        Fields {
                            not_before: Some(due),
                            ..fields
                        },
                    )
                } else {
                    (self.step_queue(attempt), fields)
                };
                record.outcome = Outcome::Retrying;
                record.next_attempt_at_ms = Some(due);
                self.publish(
                    publish,
                    queue,
                    body,
                    Some(&head.id),
                    delivery_headers(&fields, &failure),
                )
                .await
            }
            Next::Dead(reason) => {
                record.outcome = Outcome::Dead;
                if record.error.is_none() && result.gone() {
                    record.error = Some(reason.clone());
                }
                self.publish(
                    publish,
                    &self.names.dead,
                    body,
                    Some(&head.id),
                    delivery_headers(&fields, &reason),
                )
                .await
            }
        };
        match handed_on {
            Ok(()) => {
                self.metrics
                    .attempt(record.outcome, result.latency.as_secs_f64());
                self.log.record(record).await
            }
            Err(error) => {
                tracing::warn!(%error, endpoint = %endpoint.id, "Cannot hand a delivery on; it will be redelivered");
                false
            }
        }
    }

    /// The scheduled delay, lengthened to the endpoint's `Retry-After` but never past the end of
    /// the window (and never shortened).
    fn lengthen(
        &self,
        scheduled: Duration,
        retry_after: Option<Duration>,
        first_attempt_at: i64,
    ) -> Duration {
        let Some(asked) = retry_after else {
            return scheduled;
        };
        let elapsed = Duration::from_millis(
            u64::try_from(now_ms().saturating_sub(first_attempt_at)).unwrap_or(0),
        );
        let remaining = self.settings.window.saturating_sub(elapsed);
        asked.min(remaining).max(scheduled)
    }

    /// The queue of ladder step `attempt` (the wait after attempt number `attempt`).
    fn step_queue(&self, attempt: u32) -> &str {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.names
            .steps
            .get(index)
            .or(self.names.steps.last())
            .map(|(_, name)| name.as_str())
            .unwrap_or(self.names.dead.as_str())
    }

    /// The longest step no longer than `wait` (or the shortest one): a delivery with a
    /// `not-before` hops through steps until it is due.
    fn step_for(&self, wait: Duration) -> &str {
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.names
            .steps
            .iter()
            .rev()
            .find(|(delay, _)| *delay <= wait_ms)
            .or(self.names.steps.first())
            .map(|(_, name)| name.as_str())
            .unwrap_or(self.names.dead.as_str())
    }

    /// Publish a delivery to `queue` and await the broker's confirm (see [`publish_confirmed`]).
    async fn publish(
        &self,
        channel: &Channel,
        queue: &str,
        body: &[u8],
        message_id: Option<&str>,
        headers: FieldTable,
    ) -> Result<(), String> {
        publish_confirmed(channel, queue, body, message_id, headers)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Why a delivery published with [`publish_confirmed`] is not in its queue.
#[derive(Debug)]
pub(crate) enum PublishError {
    /// The broker confirmed it but routed it nowhere: the queue does not exist.
    NoQueue(String),
    /// The channel failed, the broker refused it, or the channel is not in confirm mode.
    Failed(String),
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::NoQueue(queue) => write!(f, "{queue} does not exist"),
            PublishError::Failed(error) => f.write_str(error),
        }
    }
}

/// Publish a persistent JSON delivery to `queue` (through the default exchange) and await the
/// broker's confirm; only an `Ack` that was routed counts.
pub(crate) async fn publish_confirmed(
    channel: &Channel,
    queue: &str,
    body: &[u8],
    message_id: Option<&str>,
    headers: FieldTable,
) -> Result<(), PublishError> {
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_app_id("storehook".into())
        .with_headers(headers);
    if let Some(id) = message_id {
        properties = properties.with_message_id(id.into());
    }
    let confirm = channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            properties,
        )
        .await
        .map_err(|e| PublishError::Failed(e.to_string()))?;
    let confirmation = confirm
        .await
        .map_err(|e| PublishError::Failed(e.to_string()))?;
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err(PublishError::NoQueue(queue.to_owned())),
        Confirmation::Nack(_) => Err(PublishError::Failed(format!(
            "{queue} refused the delivery"
        ))),
        Confirmation::NotRequested => Err(PublishError::Failed(
            "the channel is not in confirm mode".to_owned(),
        )),
    }
}

impl Forwarder {
    /// Acknowledge, or return the message to its queue after a pause.
    async fn finish(&self, delivery: &Delivery, handed_on: bool) {
        if !handed_on {
            self.metrics.requeued();
        }
        finish(delivery, handed_on).await;
    }
}

async fn finish(delivery: &Delivery, handed_on: bool) {
    if handed_on {
        if let Err(error) = delivery.acker.ack(BasicAckOptions::default()).await {
            tracing::warn!(%error, "Cannot acknowledge; the message will be redelivered");
        }
    } else {
        tokio::time::sleep(REQUEUE_PAUSE).await;
        let _ = delivery
            .acker
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await;
    }
}

/// The storehook headers of a delivery message.
#[derive(Debug, Clone, Default)]
struct Fields {
    endpoint: Option<String>,
    attempts: Option<u32>,
    first_attempt_at: Option<i64>,
    not_before: Option<i64>,
    last_error: Option<String>,
}

fn delivery_fields(delivery: &Delivery) -> Fields {
    let Some(table) = delivery.properties.headers() else {
        return Fields::default();
    };
    let table = table.inner();
    let text = |key: &str| {
        table.get(key).and_then(|v| match v {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
            _ => None,
        })
    };
    let number = |key: &str| {
        table.get(key).and_then(|v| match v {
            AMQPValue::LongLongInt(n) => Some(*n),
            AMQPValue::LongInt(n) => Some(i64::from(*n)),
            AMQPValue::LongUInt(n) => Some(i64::from(*n)),
            _ => None,
        })
    };
    Fields {
        endpoint: text(headers::ENDPOINT),
        attempts: number(headers::ATTEMPTS).and_then(|n| u32::try_from(n).ok()),
        first_attempt_at: number(headers::FIRST_ATTEMPT_AT),
        not_before: number(headers::NOT_BEFORE),
        last_error: text(headers::LAST_ERROR),
    }
}

fn delivery_headers(fields: &Fields, last_error: &str) -> FieldTable {
    let mut table = FieldTable::default();
    if let Some(endpoint) = &fields.endpoint {
        table.insert(
            headers::ENDPOINT.into(),
            AMQPValue::LongString(LongString::from(endpoint.as_str())),
        );
    }
    if let Some(attempts) = fields.attempts {
        table.insert(
            headers::ATTEMPTS.into(),
            AMQPValue::LongLongInt(i64::from(attempts)),
        );
    }
    if let Some(at) = fields.first_attempt_at {
        table.insert(headers::FIRST_ATTEMPT_AT.into(), AMQPValue::LongLongInt(at));
    }
    if let Some(at) = fields.not_before {
        table.insert(headers::NOT_BEFORE.into(), AMQPValue::LongLongInt(at));
    }
    if !last_error.is_empty() {
        // Bounded: an endpoint's error text ends up in a message header.
        let mut text = last_error.to_owned();
        if text.len() > 512 {
            let mut cut = 512;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        table.insert(
            headers::LAST_ERROR.into(),
            AMQPValue::LongString(LongString::from(text)),
        );
    }
    table
}
