//! The forwarder's Prometheus metrics, beside the ingest side's at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::attempts::Outcome;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct ForwardMetrics {
    attempts: Family<OutcomeLabels, Counter>,
    attempt_latency: Histogram,
    events: Counter,
    requeued: Counter,
}

impl ForwardMetrics {
    /// Create the metrics and register them in `registry`.
    pub fn register(registry: &mut Registry) -> ForwardMetrics {
        let metrics = ForwardMetrics {
            attempts: Family::default(),
            // 1 ms .. ~16 s
            attempt_latency: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            events: Counter::default(),
            requeued: Counter::default(),
        };
        registry.register(
            "storehook_webhook_attempts",
            "Webhook attempts, by what followed (delivered, retrying, dead)",
            metrics.attempts.clone(),
        );
        registry.register(
            "storehook_webhook_attempt_latency_seconds",
            "Time of one webhook attempt, from the request to the answer or the failure",
            metrics.attempt_latency.clone(),
        );
        registry.register(
            "storehook_forward_events",
            "Events taken from the forward queue and fanned out to their endpoints",
            metrics.events.clone(),
        );
        registry.register(
            "storehook_forward_requeued",
            "Messages returned to their queue because a hand-off or a record failed",
            metrics.requeued.clone(),
        );
        metrics
    }

    pub fn attempt(&self, outcome: Outcome, seconds: f64) {
        self.attempts
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
        self.attempt_latency.observe(seconds);
    }

    pub fn event(&self) {
        self.events.inc();
    }

    pub fn requeued(&self) {
        self.requeued.inc();
    }
}
