//! The webhook forwarder: every event to every matching endpoint of its tenant, signed (Standard
//! Webhooks), retried on a RabbitMQ ladder of TTL queues, every attempt recorded.
//!
//! # Layout
//! - [`schedule`]: the retry ladder, a pure function of (retries, first delay, window).
//! - [`signature`]: Standard Webhooks signing secrets and the `webhook-signature` header.
//! - [`ssrf`]: which addresses a webhook may not reach, checked at delivery time.
//! - [`config`]: the `[forward]` settings and endpoint event-type filters.
//! - [`topology`]: the queue names and their declaration.
//! - [`endpoints`]: the registry's endpoints, parsed and cached.
//! - [`attempt`]: one signed `POST`; [`attempts`]: the attempt log (group-committed rows).
//! - [`worker`]: the consumers, the fan-out and the hand-off to the ladder or `<prefix>.dead`.
//! - [`metrics`]: the forwarder's Prometheus metrics.
//! - [`replay`]: `storehook replay-dead`, dead deliveries back for a fresh ladder.

pub mod attempt;
pub mod attempts;
pub mod config;
pub mod endpoints;
pub mod metrics;
pub mod replay;
pub mod schedule;
pub mod signature;
pub mod ssrf;
pub mod topology;
pub mod worker;

use std::sync::Arc;

use anyhow::Context as _;
use tokio::task::JoinHandle;

pub use config::ForwardSettings;

use crate::startup::Shared;

/// Start the forwarder role: the attempt log and the consumers. Its tasks end after `shutdown`
/// once in-flight deliveries are handed on.
pub fn start(
    shared: &Shared,
    registry: &mut prometheus_client::registry::Registry,
    tasks: &mut Vec<(&'static str, JoinHandle<()>)>,
) -> anyhow::Result<()> {
    let settings = shared.settings.forward.clone();
    let schedule = settings
        .schedule()
        .context("forward.window: unusable retry schedule")?;
    let names = topology::Names::new(&shared.settings.broker.prefix, &schedule);
    let client = attempt::client(settings.allow_private_targets, settings.timeout)
        .context("cannot build the webhook HTTP client")?;
    if settings.allow_private_targets {
        tracing::warn!(
            "forward.allow_private_targets is set: webhooks may reach private and loopback addresses"
        );
    }
    let numbered = shared.ledger.backend() == crate::ledger::Backend::Postgres;
    let (log, log_task) = attempts::AttemptLog::spawn(shared.ledger.pool().clone(), numbered);
    let endpoints =
        endpoints::Endpoints::new(shared.ledger.pool().clone(), settings.endpoint_cache);
    let metrics = metrics::ForwardMetrics::register(registry);
    let forwarder = Arc::new(worker::Forwarder::new(
        names, schedule, settings, endpoints, log, client, metrics,
    ));
    let drain = crate::startup::forwarder_drain(shared.settings.server.shutdown_timeout);
    let run = forwarder.run(
        shared.settings.broker.clone(),
        drain,
        shared.shutdown.clone(),
    );
    // The forwarder first: the attempt log ends when the forwarder (its last sender) is gone.
    tasks.push(("webhook forwarder", tokio::spawn(run)));
    tasks.push(("attempt log", log_task));
    Ok(())
}
