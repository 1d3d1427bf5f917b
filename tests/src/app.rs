//! A storehook to test against: in-process ([`TestApp::spawn`]) or as the real binary
//! ([`configuration_toml`] + [`storehook_binary`]).

use std::path::PathBuf;
use std::time::Duration;

use sqlx::{AnyPool, Connection, Executor};
use storehook::configuration::Settings;
use storehook::startup::Application;

use crate::stores::{AUTODESK_RECEIVER, RUSTORE_APP_ID, RUSTORE_KEY, rustore_key_base64};

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of the test's own: a SQLite file in a temp dir, or a fresh PostgreSQL database
/// (dropped by [`TestDatabase::drop_database`]).
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    postgres_name: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> TestDatabase {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("a temp dir");
        match backend {
            Backend::Sqlite => TestDatabase {
                url: format!("sqlite://{}", dir.path().join("storehook.db").display()),
                postgres_name: None,
                _dir: dir,
            },
            Backend::Postgres => {
                let name = crate::unique_name();
                let mut admin = sqlx::AnyConnection::connect(crate::POSTGRES_ADMIN_URL)
                    .await
                    .expect("PostgreSQL at 127.0.0.1:5432 accepts user postgres");
                admin
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("a test database");
                let _ = admin.close().await;
                TestDatabase {
                    url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
                    postgres_name: Some(name),
                    _dir: dir,
                }
            }
        }
    }

    /// A pool on the test's database, to look at the ledger.
    pub async fn pool(&self) -> AnyPool {
        let url = if self.url.starts_with("sqlite:") {
            format!("{}?mode=rw", self.url)
        } else {
            self.url.clone()
        };
        AnyPool::connect(&url)
            .await
            .expect("the test database opens")
    }

    pub async fn drop_database(&self) {
        if let Some(name) = &self.postgres_name
            && let Ok(mut admin) = sqlx::AnyConnection::connect(crate::POSTGRES_ADMIN_URL).await
        {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
            let _ = admin.close().await;
        }
    }
}

/// One tenant with one RuStore and one Autodesk source, keyed for this test.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub tenant: String,
    pub prefix: String,
    pub rustore_ingest_key: String,
    pub autodesk_ingest_key: String,
    pub amqp_url: String,
}

impl Fixture {
    pub fn new(amqp_url: &str) -> Fixture {
        Fixture {
            tenant: "acme".to_owned(),
            prefix: crate::unique_name(),
            rustore_ingest_key: storehook::cli::new_ingest_key(),
            autodesk_ingest_key: storehook::cli::new_ingest_key(),
            amqp_url: amqp_url.to_owned(),
        }
    }

    /// `<prefix>.events`.
    pub fn exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }
}

/// The whole configuration file of a test storehook. `extra` is appended verbatim (e.g. a
/// `[testing]` section).
pub fn configuration_toml(fixture: &Fixture, database_url: &str, port: u16, extra: &str) -> String {
    format!(
        r#"
[server]
host = "127.0.0.1"
port = {port}
workers = 2

[database]
url = "{database_url}"
sqlite_synchronous = "normal"

[broker]
url = "{amqp_url}"
prefix = "{prefix}"
reconnect_min_ms = 50
reconnect_max_ms = 500

[outbox]
grace_ms = 1000
interval_ms = 100
lease_ms = 5000
unroutable_retry_ms = 200

[telemetry]
format = "pretty"
filter = "warn"

# The ingest tests run no forwarder (its tests, in `forwarding`, start their own).
[roles]
forward = false

[[tenants]]
id = "{tenant}"

[[tenants.sources]]
id = "{tenant}-rustore"
store = "rustore"
ingest_key = "{rustore_ingest_key}"
key = "{rustore_key}"
app_id = "{app_id}"

[[tenants.sources]]
id = "{tenant}-autodesk"
store = "autodesk"
ingest_key = "{autodesk_ingest_key}"
receiver_emails = ["{receiver}"]

{extra}
"#,
        amqp_url = fixture.amqp_url,
        prefix = fixture.prefix,
        tenant = fixture.tenant,
        rustore_ingest_key = fixture.rustore_ingest_key,
        autodesk_ingest_key = fixture.autodesk_ingest_key,
        rustore_key = rustore_key_base64(&RUSTORE_KEY),
        app_id = RUSTORE_APP_ID,
        receiver = AUTODESK_RECEIVER,
    )
}

/// An in-process storehook on a free port with its own exchange prefix and database.
#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub fixture: Fixture,
    pub database: TestDatabase,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    /// Against the shared broker.
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, crate::AMQP_URL, "").await
    }

    pub async fn spawn_with(backend: Backend, amqp_url: &str, extra: &str) -> TestApp {
        let fixture = Fixture::new(amqp_url);
        let database = TestDatabase::create(backend).await;
        let settings = Settings::from_toml(&configuration_toml(&fixture, &database.url, 0, extra))
            .expect("the test configuration is valid");
        let application = Application::build(settings)
            .await
            .expect("storehook builds");
        let address = format!("http://127.0.0.1:{}", application.port());
        let server = tokio::spawn(application.run_until_stopped());
        let app = TestApp {
            address,
            fixture,
            database,
            http: reqwest::Client::new(),
            server,
        };
        app.wait_until_ready().await;
        app
    }

    /// Poll `/readyz` until the database and the broker are both ready (bounded).
    pub async fn wait_until_ready(&self) {
        wait_until_ready(&self.http, &self.address).await;
    }

    pub fn ingest_url(&self, store: &str, ingest_key: &str) -> String {
        format!("{}/ingest/{store}/{ingest_key}", self.address)
    }

    pub async fn post(&self, url: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(url)
            .body(body)
            .send()
            .await
            .expect("storehook answers")
    }

    pub async fn post_rustore(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        let url = self.ingest_url("rustore", &self.fixture.rustore_ingest_key);
        self.post(&url, body).await
    }

    pub async fn post_autodesk(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        let url = self.ingest_url("autodesk", &self.fixture.autodesk_ingest_key);
        self.post(&url, body).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("storehook answers")
    }

    /// Stop serving, delete the exchange and the test database.
    pub async fn cleanup(self) {
        self.server.abort();
        crate::broker::delete_exchange(&self.fixture.amqp_url, &self.fixture.exchange()).await;
        self.database.drop_database().await;
    }
}

/// Poll `<address>/readyz` until it answers 200, for at most 30 s.
pub async fn wait_until_ready(http: &reqwest::Client, address: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = http.get(format!("{address}/readyz")).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "storehook at {address} not ready within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `storehook` binary cargo built beside the test binary (`cargo nextest run --workspace` and
/// `cargo build` build it).
pub fn storehook_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/e2e-<hash> → target/<profile>/storehook
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("storehook"))
        .expect("a target directory");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p storehook`",
        binary.display()
    );
    binary
}
