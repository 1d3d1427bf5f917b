//! Publishing events: persistent, `mandatory`, on a confirm-mode channel, confirms pipelined.
//!
//! A batch is published in full first and its confirms awaited together, so a batch costs one
//! broker round trip rather than one per event; the publishes themselves are queued together too,
//! so the I/O loop writes the batch at once. Only an `Ack` without a returned message counts
//! as published: a `mandatory` message that no queue is bound for comes back as a `basic.return`
//! before its ack, and such an event stays unpublished for the relay to retry.

use std::sync::Arc;
use std::time::Instant;

use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Confirmation, PublisherConfirm};

use super::BusState;
use crate::metrics::Metrics;

/// One message to publish.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The event id: the AMQP `message_id`.
    pub id: &'a str,
    pub routing_key: &'a str,
    pub payload: &'a [u8],
}

/// What became of one publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Confirmed and routed to at least one queue: mark it published.
    Routed,
    /// Confirmed, but no queue was bound for its routing key.
    Unroutable,
    /// The broker refused it (`basic.nack`).
    Nacked,
    /// Not sent, or the channel failed before the confirm: no broker, or a connection loss.
    NotSent,
}

/// Publishes on whatever link the supervisor currently holds. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Publisher {
    state: BusState,
    exchange: String,
    metrics: Metrics,
    hold: bool,
    /// Held while a batch is being queued. The channel numbers publishes (delivery tags) in the
    /// order it queues them, and the broker in the order it receives them: two batches queued at
    /// once from two threads could interleave between the two and mismatch their confirms.
    sending: Arc<tokio::sync::Mutex<()>>,
}

impl Publisher {
    /// `hold` is the test-only switch `testing.hold_publish`: nothing is ever sent.
    pub fn new(state: BusState, exchange: String, metrics: Metrics, hold: bool) -> Publisher {
        Publisher {
            state,
            exchange,
            metrics,
            hold,
            sending: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Whether a confirm-mode channel is open now.
    pub fn is_connected(&self) -> bool {
        self.state.borrow().is_some()
    }

    /// A receiver that changes on every connect and disconnect (the relay wakes on it).
    pub fn changes(&self) -> BusState {
        self.state.clone()
    }

    /// Publish every message, then await all their confirms; one outcome per message, in order.
    pub async fn publish_all(&self, messages: &[Outgoing<'_>]) -> Vec<PublishOutcome> {
        let link = self.state.borrow().clone();
        let link = match link {
            Some(link) if !self.hold => link,
            _ => return vec![PublishOutcome::NotSent; messages.len()],
        };
        let started = Instant::now();
        // Every publish is queued before any is awaited: the connection's I/O loop then writes
        // the whole batch in one go instead of being woken, and waited for, once per message.
        let exchange = ShortString::from(self.exchange.as_str());
        let sends = messages.iter().map(|message| {
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(message.id.into())
                .with_app_id("storehook".into());
            link.channel.basic_publish(
                exchange.clone(),
                message.routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                message.payload,
                properties,
            )
        });
        let sent = {
            let _sending = self.sending.lock().await;
            futures_util::future::join_all(sends).await
        };
        let pending: Vec<Option<PublisherConfirm>> = sent.into_iter().map(Result::ok).collect();
        let confirms = pending.into_iter().map(|sent| async move {
            let Some(confirm) = sent else {
                return PublishOutcome::NotSent;
            };
            match confirm.await {
                Ok(Confirmation::Ack(None)) => PublishOutcome::Routed,
                Ok(Confirmation::Ack(Some(_))) => PublishOutcome::Unroutable,
                Ok(Confirmation::Nack(_)) => PublishOutcome::Nacked,
                // Without confirm mode there is no proof of delivery; treat as not sent.
                Ok(Confirmation::NotRequested) | Err(_) => PublishOutcome::NotSent,
            }
        });
        let outcomes = futures_util::future::join_all(confirms).await;
        self.metrics
            .publish_latency(started.elapsed().as_secs_f64());
        for outcome in &outcomes {
            if *outcome == PublishOutcome::Unroutable {
                self.metrics.unroutable();
            }
        }
        outcomes
    }
}
