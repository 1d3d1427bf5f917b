//! A storehook running the forwarder against a test's own prefix, database and receiver, and the
//! tools its tests need: events published straight to the exchange, the forwarder's queues, the
//! attempt log.

use std::time::Duration;

use base64::Engine as _;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use sqlx::{AnyPool, Row};
use storehook::configuration::Settings;
use storehook::forward::schedule::Schedule;
use storehook::forward::topology::Names;
use storehook::startup::Application;

use crate::app::{Backend, TestDatabase};

/// One endpoint of the test tenant.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    pub id: String,
    pub url: String,
    pub secrets: Vec<String>,
    pub event_types: Vec<String>,
}

impl EndpointSpec {
    pub fn new(id: &str, url: String) -> EndpointSpec {
        EndpointSpec {
            id: id.to_owned(),
            url,
            secrets: vec![new_secret()],
            event_types: Vec::new(),
        }
    }
}

/// A fresh `whsec_` secret (32 random bytes).
pub fn new_secret() -> String {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// What a forwarder test configures.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    pub prefix: String,
    pub tenant: String,
    pub endpoints: Vec<EndpointSpec>,
    /// Lines of the `[forward]` section (the ladder, the timeout, …); private targets and plain
    /// http are always allowed (the receiver is on loopback) unless `guarded` is set.
    pub forward: String,
    pub guarded: bool,
    pub ingest: bool,
    /// The broker (the shared one unless a test runs a private node).
    pub amqp_url: String,
}

impl ForwardConfig {
    pub fn new(endpoints: Vec<EndpointSpec>, forward: &str) -> ForwardConfig {
        ForwardConfig {
            prefix: crate::unique_name(),
            tenant: "acme".to_owned(),
            endpoints,
            forward: forward.to_owned(),
            guarded: false,
            ingest: false,
            amqp_url: crate::AMQP_URL.to_owned(),
        }
    }

    /// The whole configuration file.
    pub fn toml(&self, database_url: &str, port: u16) -> String {
        let mut endpoints = String::new();
        for endpoint in &self.endpoints {
            endpoints.push_str(&format!(
                "\n[[tenants.endpoints]]\nid = \"{}\"\nurl = \"{}\"\nsecrets = {:?}\nevent_types = {:?}\n",
                endpoint.id, endpoint.url, endpoint.secrets, endpoint.event_types
            ));
        }
        format!(
            r#"
[server]
host = "127.0.0.1"
port = {port}
workers = 1

[database]
url = "{database_url}"
sqlite_synchronous = "normal"

[broker]
url = "{amqp}"
prefix = "{prefix}"
reconnect_min_ms = 50
reconnect_max_ms = 500

[telemetry]
format = "pretty"
filter = "warn"

[roles]
ingest = {ingest}
forward = true

[forward]
allow_private_targets = {open}
allow_http = true
endpoint_cache = "200ms"
{forward}

[[tenants]]
id = "{tenant}"
{endpoints}
"#,
            amqp = self.amqp_url,
            prefix = self.prefix,
            ingest = self.ingest,
            open = !self.guarded,
            forward = self.forward,
            tenant = self.tenant,
        )
    }

    /// [`ForwardConfig::toml`] with a RuStore source (the test key, app id `12345`) on the tenant,
    /// then `rest` (more sections), for a real process that ingests and forwards.
    pub fn toml_with_rustore_source(
        &self,
        database_url: &str,
        port: u16,
        ingest_key: &str,
        rest: &str,
    ) -> String {
        format!(
            "{}
[[tenants.sources]]
id = \"{tenant}-rustore\"
store = \"rustore\"
ingest_key = \"{ingest_key}\"
key = \"{key}\"
app_id = \"12345\"

{rest}
",
            self.toml(database_url, port),
            tenant = self.tenant,
            key = crate::stores::rustore_key_base64(&crate::stores::RUSTORE_KEY),
        )
    }

    pub fn settings(&self, database_url: &str) -> Settings {
        Settings::from_toml(&self.toml(database_url, 0)).expect("the test configuration is valid")
    }

    /// The forwarder's queue names under this configuration.
    pub fn names(&self, database_url: &str) -> Names {
        let settings = self.settings(database_url);
        let schedule: Schedule = settings.forward.schedule().expect("a usable ladder");
        Names::new(&self.prefix, &schedule)
    }
}

/// An in-process storehook with the forwarder role.
#[derive(Debug)]
pub struct ForwardApp {
    pub config: ForwardConfig,
    pub database: TestDatabase,
    pub names: Names,
    pub address: String,
    stop: actix_web::dev::ServerHandle,
    run: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl ForwardApp {
    pub async fn spawn(config: ForwardConfig) -> ForwardApp {
        ForwardApp::spawn_with(config, Backend::Sqlite).await
    }

    /// On a fresh database of `backend`.
    pub async fn spawn_with(config: ForwardConfig, backend: Backend) -> ForwardApp {
        let database = TestDatabase::create(backend).await;
        ForwardApp::spawn_on(config, database).await
    }

    /// Start on an existing database (a restart).
    pub async fn spawn_on(config: ForwardConfig, database: TestDatabase) -> ForwardApp {
        let settings = config.settings(&database.url);
        let names = config.names(&database.url);
        let application = Application::build(settings)
            .await
            .expect("storehook builds");
        let address = format!("http://127.0.0.1:{}", application.port());
        let stop = application.stop_handle();
        let run = tokio::spawn(application.run_until_stopped());
        let app = ForwardApp {
            config,
            database,
            names,
            address,
            stop,
            run,
        };
        app.wait_until_consuming().await;
        app
    }

    /// Wait (bounded) until the forwarder consumes `<prefix>.forward`.
    async fn wait_until_consuming(&self) {
        let connection = connect(&self.config.amqp_url).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let channel = connection.create_channel().await.expect("a channel");
            if let Ok(queue) = channel
                .queue_declare(
                    self.names.forward.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                && queue.consumer_count() > 0
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the forwarder did not start consuming within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = connection.close(200, "done".into()).await;
    }

    /// Stop as on SIGTERM and wait until every role has stopped; the database is kept.
    pub async fn stop(self) -> (ForwardConfig, TestDatabase) {
        self.stop.stop(true).await;
        let _ = self.run.await;
        (self.config, self.database)
    }

    pub async fn pool(&self) -> AnyPool {
        self.database.pool().await
    }

    /// Stop, then delete the queues, the exchange and the database.
    pub async fn cleanup(self) {
        let names = self.names.clone();
        let amqp_url = self.config.amqp_url.clone();
        let (_, database) = self.stop().await;
        delete_queues_at(&amqp_url, &names).await;
        crate::broker::delete_exchange(&amqp_url, &names.exchange).await;
        database.drop_database().await;
    }
}

async fn connect(amqp_url: &str) -> Connection {
    Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .expect("RabbitMQ at 127.0.0.1:5672")
}

/// Delete every queue of `names`.
pub async fn delete_queues(names: &Names) {
    delete_queues_at(crate::AMQP_URL, names).await;
}

/// Delete every queue of `names` on the broker at `amqp_url`.
pub async fn delete_queues_at(amqp_url: &str, names: &Names) {
    let connection = connect(amqp_url).await;
    for queue in names.all_queues() {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    let _ = connection.close(200, "done".into()).await;
}

/// `queue` as the broker sees it now (a passive declare), or the error if it does not exist. A
/// failed passive declare closes the channel.
async fn inspect(channel: &Channel, queue: &str) -> lapin::Result<lapin::Queue> {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// How many messages wait in `queue` now.
pub async fn queue_depth(queue: &str) -> u32 {
    let connection = connect(crate::AMQP_URL).await;
    let channel = connection.create_channel().await.expect("a channel");
    let depth = inspect(&channel, queue)
        .await
        .map(|q| q.message_count())
        .unwrap_or(0);
    let _ = connection.close(200, "done".into()).await;
    depth
}

/// Wait (bounded) until `queue` holds `count` messages.
pub async fn wait_for_depth(queue: &str, count: u32, within: Duration) -> u32 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let depth = queue_depth(queue).await;
        if depth >= count || tokio::time::Instant::now() >= deadline {
            return depth;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A schema v1 event of `tenant` and `event_type`, as the ingest side publishes it: its id and
/// its exact bytes.
pub fn event(tenant: &str, event_type: &str) -> (String, Vec<u8>) {
    let key = format!("test:{}", uuid::Uuid::new_v4());
    let id = storehook_schema::event_id(&key).to_string();
    let body = serde_json::json!({
        "schema_version": "1",
        "id": id,
        "idempotency_key": key,
        "type": event_type,
        "tenant": tenant,
        "source": format!("{tenant}-rustore"),
        "store": "rustore",
        "environment": "sandbox",
        "entitlement": "none",
        "occurred_at": "2026-01-02T03:04:05Z",
        "received_at": "2026-01-02T03:04:06Z",
        "customer": null,
        "product": {"id": "premium_month", "name": null},
        "transaction": null,
        "subscription": null,
        "store_data": {"notification_id": "1", "notification_type": "TEST", "status": null, "raw": {}}
    });
    (id, body.to_string().into_bytes())
}

/// Publishes events to `<prefix>.events` as the ingest side does (persistent, confirmed).
#[derive(Debug)]
pub struct EventPublisher {
    _connection: Connection,
    channel: Channel,
    exchange: String,
}

impl EventPublisher {
    pub async fn open(exchange: &str) -> EventPublisher {
        EventPublisher::open_at(crate::AMQP_URL, exchange).await
    }

    /// On the broker at `amqp_url`.
    pub async fn open_at(amqp_url: &str, exchange: &str) -> EventPublisher {
        let connection = connect(amqp_url).await;
        let channel = connection.create_channel().await.expect("a channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm mode");
        EventPublisher {
            _connection: connection,
            channel,
            exchange: exchange.to_owned(),
        }
    }

    /// Publish without waiting for the confirm; the returned future confirms.
    pub async fn send(
        &self,
        tenant: &str,
        event_type: &str,
        id: &str,
        body: &[u8],
    ) -> lapin::PublisherConfirm {
        let routing_key = format!("{tenant}.rustore.sandbox.{event_type}");
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                routing_key.as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into())
                    .with_message_id(id.into()),
            )
            .await
            .expect("the event publishes")
    }

    /// Publish one event and wait for the broker's confirm.
    pub async fn publish(&self, tenant: &str, event_type: &str, id: &str, body: &[u8]) {
        self.send(tenant, event_type, id, body)
            .await
            .await
            .expect("the broker confirms");
    }
}

/// One row of `delivery_attempts`.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub event_id: String,
    pub endpoint_id: String,
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub outcome: String,
    pub response_body: Option<Vec<u8>>,
}

/// The attempt log of one endpoint, in attempt order.
pub async fn attempts(pool: &AnyPool, endpoint_id: &str) -> Vec<AttemptRow> {
    sqlx::query(
        "SELECT event_id, endpoint_id, attempt, status_code, error, outcome, response_body \
         FROM delivery_attempts WHERE endpoint_id = $1 ORDER BY attempt, attempted_at",
    )
    .bind(endpoint_id)
    .fetch_all(pool)
    .await
    .expect("the attempt log reads")
    .iter()
    .map(|row| AttemptRow {
        event_id: row.get(0),
        endpoint_id: row.get(1),
        attempt: row.get(2),
        status_code: row.get(3),
        error: row.get(4),
        outcome: row.get(5),
        response_body: row.get(6),
    })
    .collect()
}

/// Wait (bounded) until the endpoint's log has `count` rows.
pub async fn wait_for_attempts(
    pool: &AnyPool,
    endpoint_id: &str,
    count: usize,
    within: Duration,
) -> Vec<AttemptRow> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let rows = attempts(pool, endpoint_id).await;
        if rows.len() >= count || tokio::time::Instant::now() >= deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Declare the forwarder's topology (exchange, queues, binding) as storehook does, before any
/// storehook runs: what importing the definitions does in production. Events published before a
/// forwarder has declared `<prefix>.forward` would otherwise never reach it.
pub async fn declare_topology(amqp_url: &str, names: &Names) {
    let connection = connect(amqp_url).await;
    let channel = connection.create_channel().await.expect("a channel");
    storehook::forward::topology::declare(&channel, names)
        .await
        .expect("the topology declares");
    let _ = connection.close(200, "declared".into()).await;
}

/// Wait (bounded) until `queue` has `count` consumers.
pub async fn wait_for_consumers(amqp_url: &str, queue: &str, count: u32, within: Duration) {
    let connection = connect(amqp_url).await;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let channel = connection.create_channel().await.expect("a channel");
        let consumers = inspect(&channel, queue)
            .await
            .map(|q| q.consumer_count())
            .unwrap_or(0);
        if consumers >= count {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{queue} has {consumers} consumers, not {count}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = connection.close(200, "done".into()).await;
}
