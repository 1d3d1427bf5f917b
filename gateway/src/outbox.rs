//! The outbox relay: publishes events that were committed but never confirmed.
//!
//! That happens when the broker was down or slow during the request, or the process died between
//! commit and confirm. The relay wakes on a timer and on every (re)connect, claims due events
//! (older than the grace period left to the requests, see `outbox.grace_ms`), publishes them with
//! confirms and hands the routed ones to the ledger writer to be marked published. An event the
//! broker returns as unroutable is retried later with a doubling pause; one that was not sent
//! because the connection went away is released at once for the next connection.

use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::watch;

use crate::bus::{Outgoing, PublishOutcome, Publisher};
use crate::configuration::OutboxSettings;
use crate::ledger::writer::LedgerWriter;
use crate::ledger::{now_ms, outbox};
use crate::metrics::{Metrics, PublishPath};

/// The longest pause between two attempts at an unroutable event.
const MAX_RETRY_MS: i64 = 10 * 60 * 1000;

#[derive(Debug)]
pub struct Relay {
    pub pool: AnyPool,
    pub publisher: Publisher,
    pub writer: LedgerWriter,
    pub metrics: Metrics,
    pub settings: OutboxSettings,
    /// PostgreSQL: claims skip the rows other replicas' relays are claiming at the moment.
    pub skip_locked: bool,
    /// Written into claims; unique per process so replicas tell their claims apart.
    pub relay_id: String,
    /// `testing.hold_publish`: never publish.
    pub hold: bool,
}

impl Relay {
    pub fn spawn(self, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut changes = self.publisher.changes();
        let mut tick = tokio::time::interval(Duration::from_millis(self.settings.interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = changes.changed() => if changed.is_err() { break },
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
            if !self.hold && self.publisher.is_connected() {
                loop {
                    match self.round().await {
                        Ok(claimed) if claimed >= self.settings.batch as usize => continue,
                        Ok(_) => break,
                        Err(error) => {
                            tracing::warn!(%error, "Outbox relay round failed");
                            break;
                        }
                    }
                }
            }
            match outbox::backlog(&self.pool).await {
                Ok(backlog) => self.metrics.outbox_backlog(backlog),
                Err(error) => tracing::warn!(%error, "Cannot count the outbox backlog"),
            }
        }
    }

    /// Claim one batch and publish it; returns how many events were claimed.
    async fn round(&self) -> Result<usize, sqlx::Error> {
        let now = now_ms();
        let claimed = outbox::claim(
            &self.pool,
            self.skip_locked,
            &self.relay_id,
            now,
            i64::try_from(self.settings.lease_ms).unwrap_or(i64::MAX / 2),
            i64::from(self.settings.batch),
        )
        .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let outgoing: Vec<Outgoing<'_>> = claimed
            .iter()
            .map(|event| Outgoing {
                id: &event.id,
                routing_key: &event.routing_key,
                payload: event.payload.as_bytes(),
            })
            .collect();
        let outcomes = self.publisher.publish_all(&outgoing).await;
        let mut published = Vec::new();
        let mut retries = Vec::new();
        let mut released = Vec::new();
        for (event, outcome) in claimed.iter().zip(outcomes) {
            match outcome {
                PublishOutcome::Routed => published.push(event.id.clone()),
                PublishOutcome::Unroutable | PublishOutcome::Nacked => {
                    let pause = retry_pause_ms(self.settings.unroutable_retry_ms, event.attempts);
                    retries.push((event.id.clone(), now_ms().saturating_add(pause)));
                }
                PublishOutcome::NotSent => released.push(event.id.clone()),
            }
        }
        tracing::info!(
            claimed = claimed.len(),
            published = published.len(),
            retrying = retries.len(),
            released = released.len(),
            "Outbox relay published"
        );
        self.metrics
            .published(PublishPath::Relay, published.len() as u64);
        self.writer.mark_published(published);
        outbox::defer(&self.pool, &self.relay_id, &retries).await?;
        outbox::release(&self.pool, &self.relay_id, &released).await?;
        Ok(claimed.len())
    }
}

/// `base`, doubled per earlier attempt, at most [`MAX_RETRY_MS`].
fn retry_pause_ms(base_ms: u64, attempts: i64) -> i64 {
    let base = i64::try_from(base_ms).unwrap_or(MAX_RETRY_MS);
    let doublings = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    base.saturating_mul(1_i64 << doublings).min(MAX_RETRY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unroutable_retries_double_up_to_ten_minutes() {
        assert_eq!(retry_pause_ms(1000, 0), 1000);
        assert_eq!(retry_pause_ms(1000, 3), 8000);
        assert_eq!(retry_pause_ms(1000, 60), MAX_RETRY_MS);
    }
}
