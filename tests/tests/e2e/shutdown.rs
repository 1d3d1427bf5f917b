//! SIGTERM to a real storehook while notifications stream in and a webhook delivery hangs: the
//! process exits 0 within `server.shutdown_timeout`, every notification it answered 200 is
//! published, and the hanging delivery, handed back unacknowledged, is attempted again after a
//! restart.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use storehook_tests::app::{Backend, TestDatabase};
use storehook_tests::broker::{Consumer, delete_exchange, free_port};
use storehook_tests::forwarding::{
    EndpointSpec, ForwardConfig, declare_topology, delete_queues_at, wait_for_consumers,
};
use storehook_tests::process::Storehook;
use storehook_tests::receiver::{Receiver, Reply};
use storehook_tests::stores::{RUSTORE_KEY, rustore_envelope, rustore_invoice};

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(6);

fn configuration(
    config: &ForwardConfig,
    database_url: &str,
    port: u16,
    ingest_key: &str,
) -> String {
    config.toml_with_rustore_source(
        database_url,
        port,
        ingest_key,
        "[outbox]
grace_ms = 1000
interval_ms = 100",
    )
}

fn notification(invoice: &str) -> String {
    rustore_envelope(
        &RUSTORE_KEY,
        &format!("shutdown-{invoice}"),
        &rustore_invoice(invoice, "CONFIRMED", false),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_or_hands_back_in_flight_work_within_the_bound() {
    // The first webhook never gets an answer; every later one is answered at once.
    let receiver =
        Receiver::start(|_: &str, n| if n == 0 { Reply::hang() } else { Reply::ok() }).await;
    let mut config = ForwardConfig::new(
        vec![EndpointSpec::new("backend", receiver.url("/hook"))],
        // Far longer than the shutdown bound: the hanging attempt cannot finish in time.
        "timeout = \"60s\"",
    );
    config.ingest = true;
    let ingest_key = storehook::cli::new_ingest_key();
    let database = TestDatabase::create(Backend::Sqlite).await;
    let names = config.names(&database.url);
    let dir = tempfile::tempdir().expect("a temp dir");
    declare_topology(storehook_tests::AMQP_URL, &names).await;
    let mut consumer = Consumer::bind(storehook_tests::AMQP_URL, &names.exchange, &["#"]).await;
    // The bound comes from the environment, as in a container.
    let bound = format!("{}s", SHUTDOWN_TIMEOUT.as_secs());
    let env = [("STOREHOOK__SERVER__SHUTDOWN_TIMEOUT", bound.as_str())];

    let port = free_port();
    let first_config = dir.path().join("first.toml");
    std::fs::write(
        &first_config,
        configuration(&config, &database.url, port, &ingest_key),
    )
    .expect("the config writes");
    let mut first = Storehook::serve_with(&first_config, port, &env).await;
    wait_for_consumers(
        storehook_tests::AMQP_URL,
        &names.forward,
        1,
        Duration::from_secs(30),
    )
    .await;
    let ingest_url = format!("{}/ingest/rustore/{ingest_key}", first.address);
    let http = reqwest::Client::new();

    // The delivery that hangs.
    let response = http
        .post(&ingest_url)
        .body(notification("90000"))
        .send()
        .await
        .expect("storehook answers");
    assert_eq!(response.status(), 200);
    let hanging = receiver.wait_for("/hook", 1, Duration::from_secs(20)).await;
    assert_eq!(hanging.len(), 1, "the first delivery reached the receiver");
    let hanging_id = hanging[0]
        .header("webhook-id")
        .expect("a webhook-id")
        .to_owned();

    // Notifications streaming in from four clients when SIGTERM arrives.
    let stop = Arc::new(AtomicBool::new(false));
    let mut streams = Vec::new();
    for client in 0..4_u32 {
        let http = http.clone();
        let url = ingest_url.clone();
        let stop = Arc::clone(&stop);
        streams.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for i in 0..2_000_u32 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let invoice = format!("{}", 100_000 + client * 10_000 + i);
                match http.post(&url).body(notification(&invoice)).send().await {
                    Ok(response) if response.status() == 200 => accepted.push(invoice),
                    Ok(_) => {}
                    // Refused: the server has stopped accepting.
                    Err(_) => break,
                }
            }
            accepted
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let signalled = Instant::now();
    first.terminate();
    let status = first
        .wait_exit(SHUTDOWN_TIMEOUT + Duration::from_secs(5))
        .await
        .expect("storehook exits after SIGTERM");
    let took = signalled.elapsed();
    stop.store(true, Ordering::Relaxed);
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took <= SHUTDOWN_TIMEOUT + Duration::from_millis(500),
        "stopped in {took:?}, over the {SHUTDOWN_TIMEOUT:?} bound"
    );
    let mut accepted: BTreeSet<String> = BTreeSet::from(["90000".to_owned()]);
    for stream in streams {
        accepted.extend(stream.await.expect("the stream ends"));
    }
    assert!(
        accepted.len() > 10,
        "notifications streamed: {}",
        accepted.len()
    );

    // Restart on the same database and broker.
    let port = free_port();
    let second_config = dir.path().join("second.toml");
    std::fs::write(
        &second_config,
        configuration(&config, &database.url, port, &ingest_key),
    )
    .expect("the config writes");
    let mut second = Storehook::serve_with(&second_config, port, &env).await;

    // Every notification answered 200 is published (by the first life or the relay of the second).
    let mut published = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !accepted.is_subset(&published) && Instant::now() < deadline {
        if let Some(delivery) = consumer.next(Duration::from_secs(1)).await {
            let event: serde_json::Value =
                serde_json::from_slice(&delivery.data).expect("an event");
            if let Some(invoice) = event["transaction"]["id"].as_str() {
                published.insert(invoice.to_owned());
            }
        }
    }
    let lost: Vec<&String> = accepted.difference(&published).collect();
    assert!(
        lost.is_empty(),
        "answered 200 but never published: {lost:?}"
    );

    // The hanging delivery was handed back, not acknowledged: it is attempted again.
    let deadline = Instant::now() + Duration::from_secs(60);
    let attempts_of_hanging = loop {
        let attempts = receiver
            .received("/hook")
            .iter()
            .filter(|r| r.header("webhook-id") == Some(hanging_id.as_str()))
            .count();
        if attempts >= 2 || Instant::now() >= deadline {
            break attempts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        attempts_of_hanging >= 2,
        "the hanging delivery was not redelivered after the restart"
    );

    second.terminate();
    let status = second
        .wait_exit(SHUTDOWN_TIMEOUT + Duration::from_secs(5))
        .await
        .expect("the second life exits too");
    assert!(status.success(), "exit status {status:?}");
    delete_queues_at(storehook_tests::AMQP_URL, &names).await;
    delete_exchange(storehook_tests::AMQP_URL, &names.exchange).await;
    database.drop_database().await;
}
