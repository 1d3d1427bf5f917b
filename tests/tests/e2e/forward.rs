//! The webhook forwarder against real RabbitMQ and a scripted receiver, with the ladder shrunk to
//! fractions of a second.

use std::time::Duration;

use storehook_tests::app::Backend;
use storehook_tests::forwarding::{
    EndpointSpec, EventPublisher, ForwardApp, ForwardConfig, attempts, event, queue_depth,
    wait_for_attempts, wait_for_depth,
};
use storehook_tests::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(30);

/// Whether the `standardwebhooks` crate accepts this request as signed with `secret`.
fn verifies(secret: &str, received: &storehook_tests::receiver::Received) -> bool {
    standardwebhooks::Webhook::new(secret)
        .and_then(|webhook| webhook.verify(&received.body, &received.headers))
        .is_ok()
}

#[tokio::test]
async fn a_receiver_failing_k_times_sees_k_plus_one_attempts_with_growing_gaps() {
    failing_k_times_then_ok(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_attempt_log_works_on_postgres() {
    failing_k_times_then_ok(Backend::Postgres).await;
}

async fn failing_k_times_then_ok(backend: Backend) {
    const K: usize = 3;
    let receiver = Receiver::start(|_, n| {
        if n < K {
            Reply::status(500)
        } else {
            Reply::ok()
        }
    })
    .await;
    let endpoint = EndpointSpec::new("flaky", receiver.url("/flaky"));
    let secret = endpoint.secrets[0].clone();
    let config = ForwardConfig::new(vec![endpoint], "first_delay = \"300ms\"\nwindow = \"120s\"");
    let app = ForwardApp::spawn_with(config, backend).await;
    let (id, body) = event("acme", "subscription.renewed");
    EventPublisher::open(&app.names.exchange)
        .await
        .publish("acme", "subscription.renewed", &id, &body)
        .await;

    let received = receiver.wait_for("/flaky", K + 1, WAIT).await;
    assert_eq!(received.len(), K + 1);
    let pool = app.pool().await;
    let rows = wait_for_attempts(&pool, "flaky", K + 1, WAIT).await;
    // Nothing more arrives once delivered.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.received("/flaky").len(), K + 1);

    for request in &received {
        assert_eq!(request.header("webhook-id"), Some(id.as_str()));
        assert_eq!(request.body.as_ref(), body.as_slice());
        assert!(verifies(&secret, request), "the signature verifies");
        let agent = request.header("user-agent").unwrap_or_default();
        assert!(agent.starts_with("storehook/"), "{agent}");
    }
    let gaps: Vec<Duration> = received
        .windows(2)
        .map(|pair| pair[1].at.duration_since(pair[0].at))
        .collect();
    assert!(gaps[0] >= Duration::from_millis(300), "{gaps:?}");
    assert!(gaps.windows(2).all(|g| g[1] > g[0]), "gaps grow: {gaps:?}");

    let outcomes: Vec<(i64, Option<i64>, &str)> = rows
        .iter()
        .map(|r| (r.attempt, r.status_code, r.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (1, Some(500), "retrying"),
            (2, Some(500), "retrying"),
            (3, Some(500), "retrying"),
            (4, Some(200), "delivered"),
        ]
    );
    assert!(rows.iter().all(|r| r.event_id == id));
    assert_eq!(rows[0].response_body.as_deref(), Some(&b"ok"[..]));

    let metrics = reqwest::get(format!("{}/metrics", app.address))
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("a text body");
    assert!(
        metrics.contains("storehook_webhook_attempts_total{outcome=\"retrying\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("storehook_webhook_attempts_total{outcome=\"delivered\"} 1"));
    app.cleanup().await;
}

#[tokio::test]
async fn a_receiver_that_always_fails_sees_17_attempts_then_the_delivery_is_dead() {
    let receiver = Receiver::start(|_, _| Reply::status(503)).await;
    let config = ForwardConfig::new(
        vec![EndpointSpec::new("down", receiver.url("/down"))],
        "first_delay = \"20ms\"\nwindow = \"4s\"",
    );
    let app = ForwardApp::spawn(config).await;
    let (id, body) = event("acme", "transaction.succeeded");
    EventPublisher::open(&app.names.exchange)
        .await
        .publish("acme", "transaction.succeeded", &id, &body)
        .await;

    assert_eq!(wait_for_depth(&app.names.dead, 1, WAIT).await, 1);
    let pool = app.pool().await;
    let rows = wait_for_attempts(&pool, "down", 17, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = receiver.received("/down");
    assert_eq!(received.len(), 17);
    assert!(
        received
            .iter()
            .all(|r| r.header("webhook-id") == Some(id.as_str()))
    );
    assert_eq!(rows.len(), 17);
    assert_eq!(
        rows.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        (1..=17).collect::<Vec<i64>>()
    );
    assert!(rows[..16].iter().all(|r| r.outcome == "retrying"));
    assert_eq!(rows[16].outcome, "dead");
    assert_eq!(rows[16].status_code, Some(503));
    assert_eq!(queue_depth(&app.names.dead).await, 1);
    assert_eq!(queue_depth(&app.names.deliveries).await, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_another() {
    let receiver = Receiver::start(|path, _| {
        if path == "/hang" {
            Reply::hang()
        } else {
            Reply::ok()
        }
    })
    .await;
    let config = ForwardConfig::new(
        vec![
            EndpointSpec::new("hang", receiver.url("/hang")),
            EndpointSpec::new("fast", receiver.url("/fast")),
        ],
        "timeout = \"5s\"\nfirst_delay = \"10s\"\nwindow = \"1h\"",
    );
    let app = ForwardApp::spawn(config).await;
    let publisher = EventPublisher::open(&app.names.exchange).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (id, body) = event("acme", "test.ping");
        publisher.publish("acme", "test.ping", &id, &body).await;
        ids.push(id);
    }
    let fast = receiver.wait_for("/fast", 3, WAIT).await;
    let hanging = receiver.received("/hang");
    assert_eq!(fast.len(), 3);
    // Every fast delivery landed while the hanging attempts were still waiting for an answer.
    let first_hang = hanging
        .iter()
        .map(|r| r.at)
        .min()
        .expect("the hanging endpoint was called");
    assert!(
        fast.iter()
            .all(|r| r.at < first_hang + Duration::from_secs(5)),
        "fast deliveries waited for the hanging endpoint"
    );
    let pool = app.pool().await;
    assert!(
        attempts(&pool, "fast")
            .await
            .iter()
            .all(|r| r.outcome == "delivered")
    );
    let timed_out = wait_for_attempts(&pool, "hang", 3, WAIT).await;
    assert!(
        timed_out.iter().all(|r| r.outcome == "retrying"
            && r.error.as_deref().is_some_and(|e| e.contains("timed out"))),
        "{timed_out:?}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_forwarder_restarted_in_the_middle_of_the_ladder_loses_no_delivery() {
    let receiver = Receiver::start(|_, n| {
        if n < 2 {
            Reply::status(502)
        } else {
            Reply::ok()
        }
    })
    .await;
    let config = ForwardConfig::new(
        vec![EndpointSpec::new("later", receiver.url("/later"))],
        "first_delay = \"500ms\"\nwindow = \"2m\"",
    );
    let app = ForwardApp::spawn(config).await;
    let deliveries = app.names.deliveries.clone();
    let (id, body) = event("acme", "subscription.started");
    EventPublisher::open(&app.names.exchange)
        .await
        .publish("acme", "subscription.started", &id, &body)
        .await;
    assert_eq!(receiver.wait_for("/later", 2, WAIT).await.len(), 2);
    let pool = app.pool().await;
    wait_for_attempts(&pool, "later", 2, WAIT).await;

    // Stopped with the delivery in the ladder; it comes due while no forwarder runs.
    let (config, database) = app.stop().await;
    assert_eq!(wait_for_depth(&deliveries, 1, WAIT).await, 1);
    assert_eq!(receiver.received("/later").len(), 2);

    let app = ForwardApp::spawn_on(config, database).await;
    let received = receiver.wait_for("/later", 3, WAIT).await;
    assert_eq!(received.len(), 3);
    assert!(
        received
            .iter()
            .all(|r| r.header("webhook-id") == Some(id.as_str()))
    );
    let rows = wait_for_attempts(&pool, "later", 3, WAIT).await;
    assert_eq!(
        rows.iter()
            .map(|r| (r.attempt, r.outcome.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "retrying"), (2, "retrying"), (3, "delivered")]
    );
    pool.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn delivers_to_every_matching_endpoint_signed_with_every_active_secret() {
    let receiver = Receiver::start(|_, _| Reply::ok()).await;
    let mut rotating = EndpointSpec::new("rotating", receiver.url("/rotating"));
    let old_secret = storehook_tests::forwarding::new_secret();
    rotating.secrets.push(old_secret.clone());
    let mut subscriptions = EndpointSpec::new("subscriptions", receiver.url("/subscriptions"));
    subscriptions.event_types = vec!["subscription.*".to_owned()];
    let new_secret = rotating.secrets[0].clone();
    let config = ForwardConfig::new(vec![rotating, subscriptions], "");
    let app = ForwardApp::spawn(config).await;
    let publisher = EventPublisher::open(&app.names.exchange).await;
    let (renewed, renewed_body) = event("acme", "subscription.renewed");
    publisher
        .publish("acme", "subscription.renewed", &renewed, &renewed_body)
        .await;
    let (paid, paid_body) = event("acme", "transaction.succeeded");
    publisher
        .publish("acme", "transaction.succeeded", &paid, &paid_body)
        .await;
    // Another tenant's event reaches none of these endpoints.
    let (other, other_body) = event("globex", "subscription.renewed");
    publisher
        .publish("globex", "subscription.renewed", &other, &other_body)
        .await;

    let all = receiver.wait_for("/rotating", 2, WAIT).await;
    assert_eq!(all.len(), 2);
    for request in &all {
        let signatures = request.header("webhook-signature").unwrap_or_default();
        assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
        assert!(verifies(&new_secret, request));
        assert!(verifies(&old_secret, request));
    }
    let filtered = receiver.wait_for("/subscriptions", 1, WAIT).await;
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].header("webhook-id"), Some(renewed.as_str()));
    let pool = app.pool().await;
    wait_for_attempts(&pool, "subscriptions", 1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received("/subscriptions").len(), 1);
    assert_eq!(receiver.received("/rotating").len(), 2);
    app.cleanup().await;
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_buries_the_delivery() {
    let receiver = Receiver::start(|_, _| Reply::status(410)).await;
    let config = ForwardConfig::new(
        vec![EndpointSpec::new("gone", receiver.url("/gone"))],
        "first_delay = \"50ms\"\nwindow = \"10s\"",
    );
    let app = ForwardApp::spawn(config).await;
    let publisher = EventPublisher::open(&app.names.exchange).await;
    let (id, body) = event("acme", "test.ping");
    publisher.publish("acme", "test.ping", &id, &body).await;
    assert_eq!(wait_for_depth(&app.names.dead, 1, WAIT).await, 1);
    let pool = app.pool().await;
    let rows = wait_for_attempts(&pool, "gone", 1, WAIT).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, "dead");
    assert_eq!(rows[0].status_code, Some(410));
    let enabled: i64 = sqlx::query_scalar("SELECT enabled FROM endpoints WHERE id = 'gone'")
        .fetch_one(&pool)
        .await
        .expect("the endpoint row");
    assert_eq!(enabled, 0);

    // A later event is not delivered to a disabled endpoint.
    let (later, later_body) = event("acme", "test.ping");
    publisher
        .publish("acme", "test.ping", &later, &later_body)
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received("/gone").len(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn retry_after_lengthens_a_step() {
    let receiver = Receiver::start(|_, n| {
        if n == 0 {
            Reply::status(503).header("retry-after", "2")
        } else {
            Reply::ok()
        }
    })
    .await;
    let config = ForwardConfig::new(
        vec![EndpointSpec::new("busy", receiver.url("/busy"))],
        "first_delay = \"100ms\"\nwindow = \"1m\"",
    );
    let app = ForwardApp::spawn(config).await;
    let (id, body) = event("acme", "test.ping");
    EventPublisher::open(&app.names.exchange)
        .await
        .publish("acme", "test.ping", &id, &body)
        .await;
    let received = receiver.wait_for("/busy", 2, WAIT).await;
    assert_eq!(received.len(), 2);
    let gap = received[1].at.duration_since(received[0].at);
    assert!(
        gap >= Duration::from_secs(2),
        "Retry-After honoured: {gap:?}"
    );
    let pool = app.pool().await;
    let rows = wait_for_attempts(&pool, "busy", 2, WAIT).await;
    assert_eq!(rows[1].attempt, 2);
    assert_eq!(rows[1].outcome, "delivered");
    app.cleanup().await;
}

#[tokio::test]
async fn private_targets_are_refused_while_the_switch_is_off() {
    let receiver = Receiver::start(|_, _| Reply::ok()).await;
    let port = receiver.address.port();
    let targets = [
        ("literal", format!("http://127.0.0.1:{port}/literal")),
        ("other-loopback", format!("http://127.0.0.2:{port}/other")),
        ("short-form", format!("http://127.1:{port}/short")),
        ("name", format!("http://localhost:{port}/name")),
        ("v6", format!("http://[::1]:{port}/v6")),
        ("mapped", format!("http://[::ffff:127.0.0.1]:{port}/mapped")),
        ("unspecified", format!("http://0.0.0.0:{port}/unspecified")),
    ];
    let endpoints = targets
        .iter()
        .map(|(id, url)| EndpointSpec::new(id, url.clone()))
        .collect();
    let mut config = ForwardConfig::new(endpoints, "first_delay = \"10s\"\nwindow = \"1h\"");
    config.guarded = true;
    let app = ForwardApp::spawn(config).await;
    let (id, body) = event("acme", "test.ping");
    EventPublisher::open(&app.names.exchange)
        .await
        .publish("acme", "test.ping", &id, &body)
        .await;
    let pool = app.pool().await;
    for (endpoint, _) in &targets {
        let rows = wait_for_attempts(&pool, endpoint, 1, WAIT).await;
        assert_eq!(rows.len(), 1, "{endpoint}");
        let error = rows[0].error.clone().unwrap_or_default();
        assert!(error.contains("refused target"), "{endpoint}: {error}");
        assert_eq!(rows[0].status_code, None);
    }
    assert_eq!(receiver.total(), 0, "no request reached the receiver");
    app.cleanup().await;
}

#[tokio::test]
async fn redirects_are_never_followed() {
    // The redirect points back at this machine: private targets are allowed here, so only the
    // no-redirect policy keeps the forwarder from following it.
    let receiver = Receiver::start(|path, _| {
        if path == "/moved" {
            Reply::status(302).header("location", "/inside")
        } else {
            Reply::ok()
        }
    })
    .await;
    let config = ForwardConfig::new(
        vec![EndpointSpec::new("moved", receiver.url("/moved"))],
        "first_delay = \"10s\"\nwindow = \"1h\"",
    );
    let app = ForwardApp::spawn(config).await;
    let (id, body) = event("acme", "test.ping");
    EventPublisher::open(&app.names.exchange)
        .await
        .publish("acme", "test.ping", &id, &body)
        .await;
    let pool = app.pool().await;
    let rows = wait_for_attempts(&pool, "moved", 1, WAIT).await;
    assert_eq!(rows[0].status_code, Some(302));
    assert_eq!(rows[0].outcome, "retrying");
    assert_eq!(receiver.received("/moved").len(), 1);
    assert_eq!(receiver.received("/inside").len(), 0);
    app.cleanup().await;
}

#[tokio::test]
async fn a_dead_delivery_replayed_gets_a_fresh_ladder() {
    let receiver = Receiver::start(|_, n| {
        if n < 2 {
            Reply::status(500)
        } else {
            Reply::ok()
        }
    })
    .await;
    let config = ForwardConfig::new(
        vec![EndpointSpec::new("fixed", receiver.url("/fixed"))],
        "retries = 1\nfirst_delay = \"100ms\"\nwindow = \"100ms\"",
    );
    let app = ForwardApp::spawn(config).await;
    let (id, body) = event("acme", "test.ping");
    EventPublisher::open(&app.names.exchange)
        .await
        .publish("acme", "test.ping", &id, &body)
        .await;
    assert_eq!(wait_for_depth(&app.names.dead, 1, WAIT).await, 1);
    assert_eq!(receiver.received("/fixed").len(), 2);

    let settings = app.config.settings(&app.database.url);
    let other = storehook::forward::replay::replay_dead(&settings, Some("another"), None)
        .await
        .expect("replay runs");
    assert_eq!((other.replayed, other.kept), (0, 1));
    let done = storehook::forward::replay::replay_dead(&settings, Some("fixed"), None)
        .await
        .expect("replay runs");
    assert_eq!((done.replayed, done.kept), (1, 0));

    let received = receiver.wait_for("/fixed", 3, WAIT).await;
    assert_eq!(received.len(), 3);
    assert_eq!(received[2].header("webhook-id"), Some(id.as_str()));
    let pool = app.pool().await;
    let rows = wait_for_attempts(&pool, "fixed", 3, WAIT).await;
    assert_eq!(
        rows.iter()
            .map(|r| (r.attempt, r.outcome.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "retrying"), (1, "delivered"), (2, "dead")]
    );
    assert_eq!(queue_depth(&app.names.dead).await, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn a_delivery_waiting_in_the_ladder_survives_a_broker_restart() {
    let node = storehook_tests::broker::PrivateNode::start();
    let receiver = Receiver::start(|_, n| {
        if n == 0 {
            Reply::status(503)
        } else {
            Reply::ok()
        }
    })
    .await;
    let mut config = ForwardConfig::new(
        vec![EndpointSpec::new("patient", receiver.url("/patient"))],
        "first_delay = \"5s\"\nwindow = \"1h\"",
    );
    config.amqp_url = node.amqp_url();
    let app = ForwardApp::spawn(config).await;
    let (id, body) = event("acme", "subscription.renewed");
    EventPublisher::open_at(&node.amqp_url(), &app.names.exchange)
        .await
        .publish("acme", "subscription.renewed", &id, &body)
        .await;
    let pool = app.pool().await;
    // Recorded only once the delivery is confirmed into the first step.
    assert_eq!(wait_for_attempts(&pool, "patient", 1, WAIT).await.len(), 1);

    node.stop_app();
    node.start_app();

    let received = receiver
        .wait_for("/patient", 2, Duration::from_secs(60))
        .await;
    assert_eq!(received.len(), 2, "the retry survived the restart");
    assert!(
        received
            .iter()
            .all(|r| r.header("webhook-id") == Some(id.as_str()))
    );
    let rows = wait_for_attempts(&pool, "patient", 2, WAIT).await;
    assert_eq!(
        rows.iter()
            .map(|r| (r.attempt, r.outcome.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "retrying"), (2, "delivered")]
    );
    pool.close().await;
    app.cleanup().await;
}
