//! The broker stopped and started during a stream of notifications.
//!
//! Runs against a private RabbitMQ node (own name, ports and data), so stopping it leaves the
//! broker the other tests share alone.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use storehook_tests::app::{Backend, TestApp};
use storehook_tests::broker::{Consumer, PrivateNode, declare_durable_queue};
use storehook_tests::stores::{RUSTORE_KEY, rustore_envelope, rustore_invoice};

const NOTIFICATIONS: usize = 120;

/// Every notification answered 200 reaches the consumer, whether it arrived before, during or
/// after `rabbitmqctl stop_app` / `start_app`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notification_answered_200_survives_a_broker_restart() {
    let node = Arc::new(
        tokio::task::spawn_blocking(PrivateNode::start)
            .await
            .expect("the private node starts"),
    );
    let app = Arc::new(TestApp::spawn_with(Backend::Sqlite, &node.amqp_url(), "").await);
    let exchange = app.fixture.exchange();
    let queue = format!("{}.consumer", app.fixture.prefix);
    declare_durable_queue(&node.amqp_url(), &exchange, &queue, &["#"]).await;

    // The stream: one notification after another, recording which were answered 200.
    let sent = Arc::new(AtomicUsize::new(0));
    let stream = {
        let app = Arc::clone(&app);
        let sent = Arc::clone(&sent);
        tokio::spawn(async move {
            let mut accepted = BTreeSet::new();
            for i in 0..NOTIFICATIONS {
                let invoice = format!("{}", 50_000 + i);
                let body = rustore_envelope(
                    &RUSTORE_KEY,
                    &format!("outage-{i}"),
                    &rustore_invoice(&invoice, "CONFIRMED", false),
                );
                if app.post_rustore(body).await.status() == 200 {
                    accepted.insert(invoice);
                }
                sent.fetch_add(1, Ordering::SeqCst);
            }
            accepted
        })
    };
    let reached = |count: usize| {
        let sent = Arc::clone(&sent);
        async move {
            while sent.load(Ordering::SeqCst) < count {
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    reached(NOTIFICATIONS / 4).await;
    let stopping = Arc::clone(&node);
    tokio::task::spawn_blocking(move || stopping.stop_app())
        .await
        .expect("stop_app");
    reached(NOTIFICATIONS / 2).await;
    let starting = Arc::clone(&node);
    tokio::task::spawn_blocking(move || starting.start_app())
        .await
        .expect("start_app");
    let accepted = stream.await.expect("the stream ends");
    assert_eq!(
        accepted.len(),
        NOTIFICATIONS,
        "the ledger kept committing: all answered 200"
    );

    let mut consumer = Consumer::durable(&node.amqp_url(), &exchange, &queue, &["#"]).await;
    let mut received = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !accepted.is_subset(&received) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(delivery) = consumer.next(left).await else {
            break;
        };
        let event: serde_json::Value =
            serde_json::from_slice(&delivery.data).expect("one JSON event");
        if let Some(invoice) = event["transaction"]["id"].as_str() {
            received.insert(invoice.to_owned());
        }
    }
    let missing: Vec<&String> = accepted.difference(&received).collect();
    assert!(
        missing.is_empty(),
        "answered 200 but never published: {missing:?}"
    );

    consumer.delete_queue().await;
    if let Ok(app) = Arc::try_unwrap(app) {
        app.cleanup().await;
    }
}
