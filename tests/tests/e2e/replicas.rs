//! Two real storehook processes on one PostgreSQL database and one RabbitMQ: their outbox relays
//! never publish an event twice, their forwarders share the deliveries, and a notification
//! ingested by one replica is delivered by whichever forwarder takes it.

use std::collections::HashMap;
use std::time::Duration;

use storehook_tests::app::{Backend, TestDatabase};
use storehook_tests::broker::{Consumer, free_port};
use storehook_tests::forwarding::{
    EndpointSpec, ForwardConfig, declare_topology, delete_queues_at, wait_for_consumers,
};
use storehook_tests::process::Storehook;
use storehook_tests::receiver::{Receiver, Reply};
use storehook_tests::stores::{RUSTORE_KEY, rustore_envelope, rustore_invoice};

/// Both roles, the test's prefix, one endpoint at the receiver, a RuStore source; small relay
/// batches and prefetch so that the work interleaves between the replicas.
fn configuration(
    config: &ForwardConfig,
    database_url: &str,
    port: u16,
    ingest_key: &str,
    extra: &str,
) -> String {
    config.toml_with_rustore_source(
        database_url,
        port,
        ingest_key,
        &format!(
            "[outbox]
grace_ms = 500
interval_ms = 50
batch = 10
lease_ms = 10000

{extra}"
        ),
    )
}

async fn ingest(http: &reqwest::Client, address: &str, ingest_key: &str, invoice: &str) {
    let body = rustore_envelope(
        &RUSTORE_KEY,
        &format!("replicas-{invoice}"),
        &rustore_invoice(invoice, "CONFIRMED", false),
    );
    let response = http
        .post(format!("{address}/ingest/rustore/{ingest_key}"))
        .body(body)
        .send()
        .await
        .expect("storehook answers");
    assert_eq!(response.status(), 200, "invoice {invoice}");
}

/// Message ids received by the consumer, with how often each came.
async fn count_by_message_id(
    consumer: &mut Consumer,
    expected: usize,
    within: Duration,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for delivery in consumer.take(expected, within).await {
        let id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string())
            .expect("every event carries its id");
        *counts.entry(id).or_insert(0) += 1;
    }
    // Anything published twice would arrive right behind.
    while let Some(delivery) = consumer.next(Duration::from_millis(1500)).await {
        let id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string())
            .unwrap_or_default();
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_outbox_and_the_deliveries() {
    let receiver = Receiver::start(|_: &str, _| Reply::ok()).await;
    let mut config = ForwardConfig::new(
        vec![EndpointSpec::new("backend", receiver.url("/hook"))],
        "prefetch = 2\nretry_prefetch = 2",
    );
    config.ingest = true;
    let ingest_key = storehook::cli::new_ingest_key();
    let database = TestDatabase::create(Backend::Postgres).await;
    let names = config.names(&database.url);
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().expect("a temp dir");
    declare_topology(storehook_tests::AMQP_URL, &names).await;
    let mut consumer = Consumer::bind(storehook_tests::AMQP_URL, &names.exchange, &["#"]).await;

    // A backlog for the relays: committed by a replica that never publishes, then killed.
    let backlog = 120;
    let port = free_port();
    let held = dir.path().join("held.toml");
    std::fs::write(
        &held,
        configuration(
            &config,
            &database.url,
            port,
            &ingest_key,
            "[testing]\nhold_publish = true\n",
        ),
    )
    .expect("the config writes");
    let mut holder = Storehook::serve(&held, port).await;
    for i in 0..backlog {
        ingest(
            &http,
            &holder.address,
            &ingest_key,
            &format!("{}", 70_000 + i),
        )
        .await;
    }
    holder.kill();

    // Two replicas on the same database and broker: both relays go for the backlog at once.
    let port_a = free_port();
    let port_b = free_port();
    let mut replicas = Vec::new();
    for (name, port) in [("a", port_a), ("b", port_b)] {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            configuration(&config, &database.url, port, &ingest_key, ""),
        )
        .expect("the config writes");
        replicas.push(path);
    }
    let (a, b) = tokio::join!(
        Storehook::serve(&replicas[0], port_a),
        Storehook::serve(&replicas[1], port_b)
    );

    wait_for_consumers(
        storehook_tests::AMQP_URL,
        &names.forward,
        2,
        Duration::from_secs(30),
    )
    .await;
    let published = count_by_message_id(&mut consumer, backlog, Duration::from_secs(60)).await;
    assert_eq!(
        published.len(),
        backlog,
        "every committed event is published"
    );
    let twice: Vec<_> = published.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "published more than once: {twice:?}");
    let relayed_a = a
        .metric("storehook_events_published_total", "path=\"relay\"")
        .await;
    let relayed_b = b
        .metric("storehook_events_published_total", "path=\"relay\"")
        .await;
    assert_eq!(relayed_a + relayed_b, backlog as f64);
    assert!(
        relayed_a > 0.0 && relayed_b > 0.0,
        "both relays published part of the backlog (a {relayed_a}, b {relayed_b})"
    );

    // The backlog's webhooks: every event once at the receiver, delivered by both forwarders.
    let received = receiver
        .wait_for("/hook", backlog, Duration::from_secs(60))
        .await;
    assert_eq!(received.len(), backlog);
    let delivered = |replica: &Storehook| {
        let replica = replica.address.clone();
        async move {
            let process_metrics = reqwest::get(format!("{replica}/metrics"))
                .await
                .expect("storehook answers")
                .text()
                .await
                .expect("a body");
            storehook_tests::process::sum_of(
                &process_metrics,
                "storehook_webhook_attempts_total",
                "outcome=\"delivered\"",
            )
        }
    };
    let (before_a, before_b) = (delivered(&a).await, delivered(&b).await);
    assert_eq!(before_a + before_b, backlog as f64);
    assert!(
        before_a > 0.0 && before_b > 0.0,
        "a {before_a}, b {before_b}"
    );

    // New notifications through replica A only: replica B's forwarder delivers some of them.
    let fresh = 40;
    for i in 0..fresh {
        ingest(&http, &a.address, &ingest_key, &format!("{}", 80_000 + i)).await;
    }
    let received = receiver
        .wait_for("/hook", backlog + fresh, Duration::from_secs(60))
        .await;
    assert_eq!(received.len(), backlog + fresh);
    let mut ids: Vec<&str> = received
        .iter()
        .filter_map(|r| r.header("webhook-id"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), backlog + fresh, "each event delivered once");
    let (after_a, after_b) = (delivered(&a).await, delivered(&b).await);
    assert_eq!(after_a + after_b, (backlog + fresh) as f64);
    assert!(
        after_b > before_b,
        "replica B delivered events that replica A ingested"
    );
    let published = count_by_message_id(&mut consumer, fresh, Duration::from_secs(30)).await;
    assert_eq!(published.len(), fresh);
    assert!(published.values().all(|n| *n == 1));

    drop(a);
    drop(b);
    delete_queues_at(storehook_tests::AMQP_URL, &names).await;
    storehook_tests::broker::delete_exchange(storehook_tests::AMQP_URL, &names.exchange).await;
    database.drop_database().await;
}
