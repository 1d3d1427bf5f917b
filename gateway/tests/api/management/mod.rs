//! The management API over HTTP against an in-process gateway (ingest role only, no broker
//! needed), on SQLite and PostgreSQL. Each test has its own database; the broker URL points at a
//! closed port, so nothing is declared on a shared RabbitMQ.
//!
//! Routes that need the forwarder (ping, replay, recover) are exercised end to end in the
//! `storehook-tests` crate; here they are checked for auth, isolation and validation.

mod auth;
mod endpoints;
mod events;
mod openapi;
mod secrets;
mod sources;
mod tenants;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{AnyPool, Connection, Executor};
use storehook::configuration::Settings;
use storehook::startup::Application;

pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const ADMIN_KEY: &str = "admin-key-for-the-management-tests";
/// RuStore's documented test key (base64 of 0..32).
pub const RUSTORE_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const OTHER_RUSTORE_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Run an `async fn(Backend)` test on both databases.
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::management::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::management::Backend::Postgres).await;
            }
        }
    };
}
pub(crate) use both_backends;

/// An answer: status, JSON body (Null when empty), raw text.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn field(&self) -> Option<&str> {
        self.body["error"]["field"].as_str()
    }
}

/// An in-process gateway with the management API.
#[derive(Debug)]
pub struct Server {
    pub address: String,
    pub http: reqwest::Client,
    pub pool: AnyPool,
    postgres_name: Option<String>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
    /// Every answer, to check afterwards that no secret leaked.
    pub log: std::sync::Mutex<Vec<(String, String)>>,
}

impl Server {
    pub async fn spawn(backend: Backend) -> Server {
        Server::spawn_with(backend, "").await
    }

    /// `extra` is appended to the configuration (e.g. `[forward]` keys).
    pub async fn spawn_with(backend: Backend, extra: &str) -> Server {
        Server::spawn_configured(backend, ADMIN_KEY, extra).await
    }

    /// With this `api.admin_key` (empty: admin routes off).
    pub async fn spawn_configured(backend: Backend, admin_key: &str, extra: &str) -> Server {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("a temp dir");
        let (database_url, postgres_name) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("storehook.db").display()),
                None,
            ),
            Backend::Postgres => {
                let name = format!("m_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::AnyConnection::connect(POSTGRES_ADMIN_URL)
                    .await
                    .expect("PostgreSQL at 127.0.0.1:5432 accepts user postgres");
                admin
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("a test database");
                let _ = admin.close().await;
                (
                    format!("postgres://postgres@127.0.0.1:5432/{name}"),
                    Some(name),
                )
            }
        };
        let toml = format!(
            r#"
[server]
host = "127.0.0.1"
port = 0
workers = 2

[database]
url = "{database_url}"
sqlite_synchronous = "normal"

[broker]
# A closed port: these tests need no broker (ingest commits without one).
url = "amqp://guest:guest@127.0.0.1:1/%2f"
prefix = "management"
reconnect_min_ms = 1000
reconnect_max_ms = 5000

[ingest]
source_cache_ms = 0

[telemetry]
format = "pretty"
filter = "error"

[roles]
forward = false

[api]
admin_key = "{admin_key}"
public_url = "https://hooks.example.com/"

{extra}
"#
        );
        let settings = Settings::from_toml(&toml).expect("the test configuration is valid");
        let application = Application::build(settings)
            .await
            .expect("storehook builds");
        let address = format!("http://127.0.0.1:{}", application.port());
        let server = tokio::spawn(application.run_until_stopped());
        let pool_url = if database_url.starts_with("sqlite:") {
            format!("{database_url}?mode=rw")
        } else {
            database_url.clone()
        };
        let pool = AnyPool::connect(&pool_url)
            .await
            .expect("the test database opens");
        Server {
            address,
            http: reqwest::Client::new(),
            pool,
            postgres_name,
            server,
            _dir: dir,
            log: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// `method path` with `key` as the bearer (none when `None`) and `body` as JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.address));
        if let Some(key) = key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("storehook answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        self.log
            .lock()
            .expect("log")
            .push((format!("{method} {path}"), text.clone()));
        Answer { status, body, text }
    }

    pub async fn get(&self, path: &str, key: &str) -> Answer {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(key), Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Answer {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    /// The status ingest answers an unreadable notification to `/ingest/<store>/<ingest_key>`
    /// with: 400 from a source it knows, 404 otherwise.
    pub async fn ingest_garbage(&self, store: &str, ingest_key: &str) -> u16 {
        self.http
            .post(format!("{}/ingest/{store}/{ingest_key}", self.address))
            .body("not an envelope")
            .send()
            .await
            .expect("an answer")
            .status()
            .as_u16()
    }

    /// Create a tenant and one API key for it: the key.
    pub async fn tenant(&self, id: &str) -> String {
        let created = self
            .post("/v1/tenants", ADMIN_KEY, json!({ "id": id }))
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let key = self
            .post(
                &format!("/v1/tenants/{id}/api-keys"),
                ADMIN_KEY,
                json!({ "name": "test" }),
            )
            .await;
        assert_eq!(key.status, 201, "{}", key.text);
        key.body["key"].as_str().expect("a key").to_owned()
    }

    pub async fn cleanup(self) {
        self.server.abort();
        self.pool.close().await;
        if let Some(name) = &self.postgres_name
            && let Ok(mut admin) = sqlx::AnyConnection::connect(POSTGRES_ADMIN_URL).await
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
