//! The process killed with SIGKILL between commit and publish: the relay publishes on restart.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sqlx::AnyPool;
use storehook_tests::app::{
    Backend, Fixture, TestDatabase, configuration_toml, storehook_binary, wait_until_ready,
};
use storehook_tests::broker::{Consumer, delete_exchange, free_port};
use storehook_tests::stores::{RUSTORE_KEY, rustore_envelope, rustore_invoice};

fn serve(config: &std::path::Path) -> Child {
    Command::new(storehook_binary())
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("storehook serve starts")
}

async fn unpublished(pool: &AnyPool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
        .expect("the ledger answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_publishes_after_a_kill_between_commit_and_publish() {
    let fixture = Fixture::new(storehook_tests::AMQP_URL);
    let database = TestDatabase::create(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let http = reqwest::Client::new();
    let mut consumer = Consumer::bind(storehook_tests::AMQP_URL, &fixture.exchange(), &["#"]).await;

    // First life: commits, never publishes (test-only switch), then SIGKILL.
    let port = free_port();
    let held = dir.path().join("held.toml");
    std::fs::write(
        &held,
        configuration_toml(
            &fixture,
            &database.url,
            port,
            "[testing]\nhold_publish = true\n",
        ),
    )
    .expect("the config writes");
    let mut first = serve(&held);
    let address = format!("http://127.0.0.1:{port}");
    wait_until_ready(&http, &address).await;
    let invoices: Vec<String> = (0..5).map(|i| format!("{}", 60_000 + i)).collect();
    for (i, invoice) in invoices.iter().enumerate() {
        let body = rustore_envelope(
            &RUSTORE_KEY,
            &format!("crash-{i}"),
            &rustore_invoice(invoice, "CONFIRMED", false),
        );
        let response = http
            .post(format!(
                "{address}/ingest/rustore/{}",
                fixture.rustore_ingest_key
            ))
            .body(body)
            .send()
            .await
            .expect("storehook answers");
        assert_eq!(response.status(), 200);
    }
    let pool = database.pool().await;
    assert_eq!(unpublished(&pool).await, 5, "committed, not published");
    first.kill().expect("SIGKILL");
    let _ = first.wait();

    // Second life, same database, no switch: the relay publishes what the first one left.
    let port = free_port();
    let normal = dir.path().join("normal.toml");
    std::fs::write(
        &normal,
        configuration_toml(&fixture, &database.url, port, ""),
    )
    .expect("the config writes");
    let mut second = serve(&normal);
    let deliveries = consumer.take(5, Duration::from_secs(30)).await;
    let mut received: Vec<String> = deliveries
        .iter()
        .filter_map(|d| {
            let event: serde_json::Value = serde_json::from_slice(&d.data).ok()?;
            event["transaction"]["id"].as_str().map(str::to_owned)
        })
        .collect();
    received.sort();
    assert_eq!(received, invoices);

    let _ = second.kill();
    let _ = second.wait();
    pool.close().await;
    delete_exchange(storehook_tests::AMQP_URL, &fixture.exchange()).await;
    database.drop_database().await;
}
