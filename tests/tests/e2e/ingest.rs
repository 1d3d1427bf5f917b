//! Notifications in over HTTP, events out on RabbitMQ; on SQLite and on PostgreSQL.

use std::collections::BTreeSet;
use std::time::Duration;

use lapin::message::Delivery;
use sqlx::Row;
use storehook_tests::app::{Backend, TestApp};
use storehook_tests::broker::{Consumer, routing_key};
use storehook_tests::stores::{
    RUSTORE_KEY, autodesk_web_accept, rustore_envelope, rustore_invoice, rustore_subscription,
};

const WAIT: Duration = Duration::from_secs(10);

async fn json_of(response: reqwest::Response) -> serde_json::Value {
    let text = response.text().await.expect("a body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

fn event_of(delivery: &Delivery) -> serde_json::Value {
    serde_json::from_slice(&delivery.data).expect("a delivery is one JSON event")
}

/// RuStore and Autodesk notifications in; a consumer bound by `*.rustore.*.transaction.#` gets
/// exactly the RuStore transaction events, a consumer bound by `#` gets everything, with the
/// routing keys, message ids and properties the issue specifies.
async fn notifications_reach_pattern_bound_consumers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let exchange = app.fixture.exchange();
    let mut rustore_transactions = Consumer::bind(
        storehook_tests::AMQP_URL,
        &exchange,
        &["*.rustore.*.transaction.#"],
    )
    .await;
    let mut everything = Consumer::bind(storehook_tests::AMQP_URL, &exchange, &["#"]).await;

    let bodies = [
        rustore_envelope(
            &RUSTORE_KEY,
            "n-1",
            &rustore_invoice("1001", "CONFIRMED", false),
        ),
        rustore_envelope(
            &RUSTORE_KEY,
            "n-2",
            &rustore_invoice("1002", "REFUNDED", true),
        ),
        rustore_envelope(
            &RUSTORE_KEY,
            "n-3",
            &rustore_subscription("1003", "RENEWED"),
        ),
    ];
    for body in bodies {
        let response = app.post_rustore(body).await;
        assert_eq!(response.status(), 200);
    }
    let response = app.post_autodesk(autodesk_web_accept("TXN-1")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("a body"),
        "",
        "Autodesk wants an empty 200"
    );

    let transactions = rustore_transactions.take(2, WAIT).await;
    let keys: BTreeSet<String> = transactions.iter().map(routing_key).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "acme.rustore.production.transaction.succeeded".to_owned(),
            "acme.rustore.sandbox.transaction.refunded".to_owned(),
        ])
    );
    for delivery in &transactions {
        let event = event_of(delivery);
        let properties = &delivery.properties;
        assert_eq!(
            properties.message_id().as_ref().map(|id| id.to_string()),
            event["id"].as_str().map(str::to_owned),
            "message_id is the event id"
        );
        assert_eq!(
            properties.content_type().as_ref().map(|t| t.to_string()),
            Some("application/json".to_owned())
        );
        assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
        assert_eq!(event["tenant"], "acme");
        assert_eq!(event["source"], "acme-rustore");
        assert_eq!(
            routing_key(delivery),
            format!(
                "acme.rustore.{}.{}",
                event["environment"].as_str().unwrap_or_default(),
                event["type"].as_str().unwrap_or_default()
            )
        );
    }

    let all = everything.take(4, WAIT).await;
    let keys: BTreeSet<String> = all.iter().map(routing_key).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "acme.rustore.production.transaction.succeeded".to_owned(),
            "acme.rustore.sandbox.transaction.refunded".to_owned(),
            "acme.rustore.production.subscription.renewed".to_owned(),
            "acme.autodesk.production.transaction.succeeded".to_owned(),
        ])
    );
    // Nothing beyond the expected events: a last marker notification is the very next delivery.
    let marker = rustore_envelope(
        &RUSTORE_KEY,
        "n-4",
        &rustore_invoice("1004", "CONFIRMED", false),
    );
    assert_eq!(app.post_rustore(marker).await.status(), 200);
    let next = rustore_transactions
        .next(WAIT)
        .await
        .expect("the marker arrives");
    assert_eq!(event_of(&next)["transaction"]["id"], "1004");

    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_pattern_bound_consumers_on_sqlite() {
    notifications_reach_pattern_bound_consumers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_pattern_bound_consumers_on_postgres() {
    notifications_reach_pattern_bound_consumers(Backend::Postgres).await;
}

/// A store's resend (RuStore re-encrypts: same notification id, other bytes) is answered 200,
/// stores nothing new and publishes nothing.
async fn a_resend_is_not_republished(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut consumer =
        Consumer::bind(storehook_tests::AMQP_URL, &app.fixture.exchange(), &["#"]).await;
    let payload = rustore_invoice("2001", "CONFIRMED", false);
    let first = rustore_envelope(&RUSTORE_KEY, "resent", &payload);
    let resend = rustore_envelope(&RUSTORE_KEY, "resent", &payload);
    assert_ne!(first, resend, "a fresh IV each time");

    assert_eq!(app.post_rustore(first).await.status(), 200);
    let original = consumer
        .next(WAIT)
        .await
        .expect("the original is published");
    assert_eq!(app.post_rustore(resend).await.status(), 200);
    let marker = rustore_envelope(
        &RUSTORE_KEY,
        "marker",
        &rustore_invoice("2002", "CONFIRMED", false),
    );
    assert_eq!(app.post_rustore(marker).await.status(), 200);
    let next = consumer.next(WAIT).await.expect("the marker is published");
    assert_eq!(
        event_of(&next)["transaction"]["id"],
        "2002",
        "the resend was not republished"
    );
    assert_eq!(event_of(&original)["transaction"]["id"], "2001");

    let pool = app.database.pool().await;
    let notifications: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notifications")
        .fetch_one(&pool)
        .await
        .expect("the ledger answers");
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&pool)
        .await
        .expect("the ledger answers");
    assert_eq!((notifications, events), (2, 2));
    pool.close().await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_is_not_republished_on_sqlite() {
    a_resend_is_not_republished(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_is_not_republished_on_postgres() {
    a_resend_is_not_republished(Backend::Postgres).await;
}

/// One bit flipped in the ciphertext: 401, nothing stored, nothing published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_tampered_rustore_payload() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut consumer =
        Consumer::bind(storehook_tests::AMQP_URL, &app.fixture.exchange(), &["#"]).await;
    let envelope = rustore_envelope(
        &RUSTORE_KEY,
        "tampered",
        &rustore_invoice("3001", "CONFIRMED", false),
    );
    let mut json: serde_json::Value = serde_json::from_str(&envelope).expect("JSON");
    let payload = json["payload"].as_str().unwrap_or_default().to_owned();
    // Flip a character in the middle of the base64 (the ciphertext), keeping it valid base64.
    let mut chars: Vec<char> = payload.chars().collect();
    let middle = chars.len() / 2;
    chars[middle] = if chars[middle] == 'A' { 'B' } else { 'A' };
    json["payload"] = chars.into_iter().collect::<String>().into();

    let response = app.post_rustore(json.to_string()).await;
    assert_eq!(response.status(), 401);
    let body = json_of(response).await;
    assert_eq!(body["error"]["code"], "unauthenticated");

    let marker = rustore_envelope(
        &RUSTORE_KEY,
        "marker",
        &rustore_invoice("3002", "CONFIRMED", false),
    );
    assert_eq!(app.post_rustore(marker).await.status(), 200);
    let next = consumer.next(WAIT).await.expect("the marker is published");
    assert_eq!(
        event_of(&next)["transaction"]["id"],
        "3002",
        "the tampered one published nothing"
    );

    let pool = app.database.pool().await;
    let notifications: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notifications")
        .fetch_one(&pool)
        .await
        .expect("the ledger answers");
    assert_eq!(notifications, 1, "unauthenticated requests are not stored");
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains(
            r#"storehook_notifications_total{store="rustore",outcome="unauthenticated"} 1"#
        ),
        "{metrics}"
    );
    pool.close().await;
    app.cleanup().await;
}

/// Malformed input from a known source: 400 with the reason, and the raw bytes kept as rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_kept_as_rejected() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let body = b"{\"id\": \"broken\", \"no payload\": true}".to_vec();
    let response = app.post_rustore(body.clone()).await;
    assert_eq!(response.status(), 400);
    let error = json_of(response).await;
    assert_eq!(error["error"]["code"], "malformed");
    let reason = error["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!reason.is_empty());

    let pool = app.database.pool().await;
    let row = sqlx::query("SELECT status, reason, body, source_id FROM notifications")
        .fetch_one(&pool)
        .await
        .expect("the rejected notification is in the ledger");
    assert_eq!(row.get::<String, _>(0), "rejected");
    assert_eq!(row.get::<String, _>(1), reason);
    assert_eq!(row.get::<Vec<u8>, _>(2), body, "the raw bytes, untouched");
    assert_eq!(row.get::<String, _>(3), "acme-rustore");
    pool.close().await;
    app.cleanup().await;
}

/// Unknown store, unknown key: the same plain 404, revealing nothing; oversized bodies: 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sources_get_a_plain_404_and_large_bodies_413() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let unknown_store = app
        .post(
            &app.ingest_url("googleplay", &app.fixture.rustore_ingest_key),
            "{}",
        )
        .await;
    let unknown_key = app
        .post(&app.ingest_url("rustore", "not-a-key-of-anyone-0000"), "{}")
        .await;
    let wrong_store = app
        .post(
            &app.ingest_url("autodesk", &app.fixture.rustore_ingest_key),
            "a=b",
        )
        .await;
    let mut bodies = Vec::new();
    for response in [unknown_store, unknown_key, wrong_store] {
        assert_eq!(response.status(), 404);
        bodies.push(response.text().await.expect("a body"));
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");

    let too_large = app.post_rustore(vec![b'x'; 64 * 1024 + 1]).await;
    assert_eq!(too_large.status(), 413);
    app.cleanup().await;
}

/// `/healthz`, `/readyz` and `/metrics` answer; metrics count notifications by store and outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_answer() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = json_of(app.get("/readyz").await).await;
    assert_eq!(ready, serde_json::json!({"database": "ok", "broker": "ok"}));
    let _consumer =
        Consumer::bind(storehook_tests::AMQP_URL, &app.fixture.exchange(), &["#"]).await;
    let body = rustore_envelope(
        &RUSTORE_KEY,
        "m-1",
        &rustore_invoice("4001", "CONFIRMED", false),
    );
    assert_eq!(app.post_rustore(body).await.status(), 200);
    let expected = [
        r#"storehook_notifications_total{store="rustore",outcome="accepted"} 1"#,
        r#"storehook_events_published_total{path="inline"} 1"#,
        "storehook_publish_latency_seconds_count 1",
        "storehook_outbox_backlog",
        "storehook_broker_connected 1",
    ];
    // The 200 comes once the ledger has committed; the publish is confirmed right after it.
    let deadline = tokio::time::Instant::now() + WAIT;
    let metrics = loop {
        let metrics = app.get("/metrics").await.text().await.expect("metrics");
        if expected.iter().all(|e| metrics.contains(e)) || tokio::time::Instant::now() >= deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for expected in expected {
        assert!(metrics.contains(expected), "missing {expected}:\n{metrics}");
    }
    app.cleanup().await;
}

/// The value of a counter in a `/metrics` text (0 when absent).
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// With at most one event awaiting its confirm (`ingest.publish_in_flight = 1`), bursts of
/// notifications overflow: the events that find no room are left to the outbox relay. Every
/// notification answered 200 still reaches the consumer, each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_beyond_publish_in_flight_are_published_by_the_relay() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        storehook_tests::AMQP_URL,
        "[ingest]\npublish_in_flight = 1\n",
    )
    .await;
    let mut consumer =
        Consumer::bind(storehook_tests::AMQP_URL, &app.fixture.exchange(), &["#"]).await;
    let mut sent = 0;
    let mut left_to_relay = 0;
    // Bursts until one overflows (the first almost always does).
    for round in 0..20 {
        let responses = futures_util::future::join_all((0..32).map(|i| {
            let invoice = format!("{}", 60_000 + round * 100 + i);
            app.post_rustore(rustore_envelope(
                &RUSTORE_KEY,
                &format!("burst-{invoice}"),
                &rustore_invoice(&invoice, "CONFIRMED", false),
            ))
        }))
        .await;
        assert!(responses.iter().all(|r| r.status() == 200));
        sent += responses.len();
        let metrics = app.get("/metrics").await.text().await.expect("metrics");
        left_to_relay = counter(&metrics, "storehook_events_left_to_relay_total");
        if left_to_relay > 0 {
            break;
        }
    }
    assert!(left_to_relay > 0, "no burst overflowed publish_in_flight");
    let deliveries = consumer.take(sent, WAIT).await;
    let ids: BTreeSet<String> = deliveries
        .iter()
        .filter_map(|d| d.properties.message_id().as_ref().map(|id| id.to_string()))
        .collect();
    assert_eq!(
        deliveries.len(),
        sent,
        "every event answered 200 is published"
    );
    assert_eq!(ids.len(), sent, "each event once");
    app.cleanup().await;
}
