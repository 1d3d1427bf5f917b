//! Prometheus metrics, all named `storehook_…`, served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use storehook_adapters::Store;

/// What became of one request to `/ingest/{store}/{key}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Verified, committed (new or a resend), answered 200.
    Accepted,
    /// Failed verification: counted, not stored, 401.
    Unauthenticated,
    /// From a known source but unreadable: stored as rejected, 400.
    Malformed,
    /// Unknown ingest key: 404.
    UnknownSource,
    /// Body over the limit: 413.
    TooLarge,
    /// The ledger could not commit in time: 503, the store retries.
    Unavailable,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::Malformed => "malformed",
            Outcome::UnknownSource => "unknown_source",
            Outcome::TooLarge => "too_large",
            Outcome::Unavailable => "unavailable",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    store: &'static str,
    outcome: &'static str,
}

/// Which path published an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublishPath {
    /// Published by the request that stored it.
    Inline,
    /// Published by the outbox relay.
    Relay,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: &'static str,
}

impl PublishPath {
    fn labels(self) -> PathLabels {
        PathLabels {
            path: match self {
                PublishPath::Inline => "inline",
                PublishPath::Relay => "relay",
            },
        }
    }
}

/// Every metric the ingest side records; cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct Metrics {
    notifications: Family<NotificationLabels, Counter>,
    events_published: Family<PathLabels, Counter>,
    events_unroutable: Counter,
    events_left_to_relay: Counter,
    publish_latency: Histogram,
    commit_latency: Histogram,
    commit_batch_size: Histogram,
    outbox_backlog: Gauge,
    broker_connected: Gauge,
}

impl Metrics {
    /// Create the metrics and register them in `registry`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            notifications: Family::default(),
            events_published: Family::default(),
            events_unroutable: Counter::default(),
            events_left_to_relay: Counter::default(),
            // 0.5 ms .. ~8 s
            publish_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 15)),
            commit_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 15)),
            commit_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            outbox_backlog: Gauge::default(),
            broker_connected: Gauge::default(),
        };
        registry.register(
            "storehook_notifications",
            "Store notifications received, by store and outcome",
            metrics.notifications.clone(),
        );
        registry.register(
            "storehook_events_published",
            "Events published with a routed broker confirm, by path (inline or relay)",
            metrics.events_published.clone(),
        );
        registry.register(
            "storehook_events_unroutable",
            "Publishes the broker returned because no queue was bound for the routing key",
            metrics.events_unroutable.clone(),
        );
        registry.register(
            "storehook_events_left_to_relay",
            "Committed events not published right away because ingest.publish_in_flight were awaiting confirms",
            metrics.events_left_to_relay.clone(),
        );
        registry.register(
            "storehook_publish_latency_seconds",
            "Time from publish to broker confirm",
            metrics.publish_latency.clone(),
        );
        registry.register(
            "storehook_ledger_commit_latency_seconds",
            "Time to commit one group of notifications to the ledger",
            metrics.commit_latency.clone(),
        );
        registry.register(
            "storehook_ledger_commit_batch_size",
            "Notifications and marks committed per ledger transaction",
            metrics.commit_batch_size.clone(),
        );
        registry.register(
            "storehook_outbox_backlog",
            "Events committed but not yet published",
            metrics.outbox_backlog.clone(),
        );
        registry.register(
            "storehook_broker_connected",
            "1 while a confirm-mode channel to RabbitMQ is open",
            metrics.broker_connected.clone(),
        );
        metrics
    }

    pub fn notification(&self, store: Store, outcome: Outcome) {
        self.notifications
            .get_or_create(&NotificationLabels {
                store: store.as_str(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub fn published(&self, path: PublishPath, count: u64) {
        self.events_published
            .get_or_create(&path.labels())
            .inc_by(count);
    }

    pub fn unroutable(&self) {
        self.events_unroutable.inc();
    }

    pub fn left_to_relay(&self, events: u64) {
        self.events_left_to_relay.inc_by(events);
    }

    pub fn publish_latency(&self, seconds: f64) {
        self.publish_latency.observe(seconds);
    }

    pub fn commit(&self, seconds: f64, batch: usize) {
        self.commit_latency.observe(seconds);
        self.commit_batch_size.observe(batch as f64);
    }

    pub fn outbox_backlog(&self, events: i64) {
        self.outbox_backlog.set(events);
    }

    pub fn broker_connected(&self, connected: bool) {
        self.broker_connected.set(i64::from(connected));
    }
}
