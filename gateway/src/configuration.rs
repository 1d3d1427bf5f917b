//! Layered configuration: built-in defaults → a TOML file → `STOREHOOK__<SECTION>__<KEY>`
//! environment variables, validated once at start so that a mistake names the key to fix.
//!
//! One section per concern (`server`, `database`, `broker`, `ingest`, `outbox`, `telemetry`,
//! `roles`, `forward`, `api`, `testing`), so a new concern adds its own section without touching
//! the others.
//! Tenants, their sources and endpoints may be declared under `[[tenants]]`; they are upserted into
//! the registry at start.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use storehook_adapters::{SourceConfig, Store, autodesk, rustore};

/// Everything `storehook serve` reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub broker: BrokerSettings,
    pub ingest: IngestSettings,
    pub outbox: OutboxSettings,
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub testing: TestingSettings,
    /// Which roles `storehook serve` runs; both by default.
    #[serde(default)]
    pub roles: Roles,
    /// The webhook forwarder.
    #[serde(default)]
    pub forward: crate::forward::ForwardSettings,
    /// The management API under `/v1`.
    #[serde(default)]
    pub api: ApiSettings,
    #[serde(default)]
    pub tenants: Vec<TenantSettings>,
}

/// `[api]`: the management API (`/v1`, `/openapi.json`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// The admin key (`Authorization: Bearer <admin_key>`) that manages tenants and their API
    /// keys. Empty (the default) disables the admin routes: they answer 401.
    pub admin_key: Secret,
    /// The base URL the stores reach this server at, for the ingest URL a new source is given;
    /// empty means `http://<server.host>:<server.port>`.
    pub public_url: String,
}

/// `[roles]`: what this process does. `storehook serve --role …` and `storehook forward` set it
/// from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Roles {
    /// HTTP ingest, ledger writer, publishing and the outbox relay.
    pub ingest: bool,
    /// The webhook forwarder.
    pub forward: bool,
}

impl Default for Roles {
    fn default() -> Self {
        Roles {
            ingest: true,
            forward: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest accepted request body in bytes; larger ones get 413.
    pub body_limit: usize,
    /// On SIGTERM or SIGINT the process stops accepting, finishes or hands back its in-flight work
    /// and exits within this time (`25s`); an orchestrator's grace period must be longer.
    #[serde(deserialize_with = "crate::forward::config::duration")]
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://<path>` (the file is created if missing) or `postgres://…`.
    pub url: Secret,
    pub max_connections: u32,
    /// SQLite `synchronous`: `full` (default; a commit survives power loss) or `normal` (survives a
    /// process crash only).
    pub sqlite_synchronous: String,
    /// SQLite `wal_autocheckpoint`: WAL pages between checkpoints. Larger means fewer, longer
    /// checkpoints and less writing in all (a page changed many times in between is copied once).
    pub sqlite_wal_autocheckpoint: u32,
    /// SQLite page cache per connection, in KiB.
    pub sqlite_cache_kib: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSettings {
    /// `amqp://user:password@host:port/vhost`.
    pub url: Secret,
    /// Prefix of every RabbitMQ name: the exchange is `<prefix>.events`.
    pub prefix: String,
    /// First and longest pause between reconnection attempts.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// How long a request waits for the broker's confirms before answering 200 anyway. 0 (the
    /// default) answers as soon as the ledger has committed: that commit is the guarantee, and
    /// the events are published right after it (or by the outbox relay). Keep well under
    /// RuStore's 3 s.
    pub publish_wait_ms: u64,
    /// How long a request waits for its ledger commit before answering 503 (the store retries).
    pub commit_wait_ms: u64,
    /// Most notifications committed in one ledger transaction (group commit).
    pub batch_max: usize,
    /// Notifications waiting for the ledger writer before new requests are refused with 503.
    pub queue_depth: usize,
    /// Most events published right after their commit and not yet confirmed; beyond it, newly
    /// committed events are left to the outbox relay (bounded memory when the broker is slow).
    pub publish_in_flight: usize,
    /// How long a source looked up by ingest key is cached in memory.
    pub source_cache_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    /// An event is left to the request that stored it for this long before the relay takes it.
    pub grace_ms: u64,
    /// How often the relay looks for unpublished events (it also wakes on every reconnect).
    pub interval_ms: u64,
    /// Most events one relay round claims.
    pub batch: u32,
    /// How long a claim keeps other relays (replicas) away from an event.
    pub lease_ms: u64,
    /// Pause before retrying an event the broker returned as unroutable; doubles per attempt.
    pub unroutable_retry_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `pretty` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `storehook=debug,info`; `RUST_LOG` overrides it.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Switches for the test suite only; never set them in production.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestingSettings {
    /// Commit notifications but never publish them (neither inline nor by the relay), to simulate a
    /// crash between commit and publish.
    #[serde(default)]
    pub hold_publish: bool,
}

/// An app maker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Becomes the first word of every routing key: `[a-z0-9_-]`, no dots.
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub sources: Vec<SourceSettings>,
    #[serde(default)]
    pub endpoints: Vec<EndpointSettings>,
}

/// One store connection: `POST /ingest/<store>/<ingest_key>`.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceSettings {
    pub id: String,
    /// The secret part of the URL given to the store console. Random, at least 16 characters of
    /// `[A-Za-z0-9_-]`.
    pub ingest_key: Secret,
    #[serde(flatten)]
    pub credentials: Credentials,
}

/// A source's store and its credentials; `store = "…"` selects the variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "store")]
pub enum Credentials {
    #[serde(rename = "rustore")]
    RuStore {
        /// The AES-256 key from RuStore Console (base64 of 32 bytes).
        key: Secret,
        #[serde(default)]
        previous_key: Option<Secret>,
        #[serde(default)]
        app_id: Option<String>,
    },
    #[serde(rename = "autodesk")]
    Autodesk {
        #[serde(default)]
        receiver_emails: Vec<String>,
        #[serde(default)]
        receiver_ids: Vec<String>,
        #[serde(default)]
        app_ids: Vec<String>,
    },
}

/// A webhook destination; delivered to by the forwarder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    pub id: String,
    pub url: String,
    /// Signing secrets (`whsec_<base64>`), newest first.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// Event types delivered; empty means all.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// A string that must never reach a log: `Debug` and `Display` print `<redacted>`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The defaults, as TOML: the first layer. Every key is here, so the file and the environment
/// only override.
const DEFAULTS: &str = r#"
[server]
host = "127.0.0.1"
port = 8080
workers = 0
body_limit = 65536
shutdown_timeout = "25s"

[database]
url = "sqlite://storehook.db"
max_connections = 8
sqlite_synchronous = "full"
sqlite_wal_autocheckpoint = 8192
sqlite_cache_kib = 65536

[broker]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
prefix = "storehook"
reconnect_min_ms = 100
reconnect_max_ms = 5000

[ingest]
publish_wait_ms = 0
commit_wait_ms = 1500
batch_max = 512
queue_depth = 8192
publish_in_flight = 8192
source_cache_ms = 30000

[outbox]
grace_ms = 5000
interval_ms = 1000
batch = 500
lease_ms = 30000
unroutable_retry_ms = 1000

[telemetry]
format = "pretty"
filter = "info"
"#;

/// The built-in defaults as TOML (every key of the fixed sections), e.g. for documentation checks.
pub fn defaults_toml() -> &'static str {
    DEFAULTS
}

/// A configuration that cannot be used, naming the key to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

impl Settings {
    /// Defaults, then `file` (or `storehook.toml` when present), then `STOREHOOK__…` variables;
    /// validated.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        builder = match file {
            Some(path) => builder.add_source(config::File::from(path).required(true)),
            None => builder.add_source(config::File::with_name("storehook.toml").required(false)),
        };
        let settings: Settings = builder
            .add_source(
                config::Environment::with_prefix("STOREHOOK")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Defaults overlaid with `toml` only (no file, no environment); validated. For tests and
    /// tools that build a configuration in code.
    pub fn from_toml(toml: &str) -> Result<Settings, ConfigError> {
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Every check that does not need the network; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.body_limit == 0 {
            return Err(invalid("server.body_limit", "must be at least 1 byte"));
        }
        if self.server.shutdown_timeout < Duration::from_secs(1) {
            return Err(invalid(
                "server.shutdown_timeout",
                "must be at least 1s (in-flight requests and deliveries need time to finish)",
            ));
        }
        let url = self.database.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(invalid(
                "database.url",
                "must start with sqlite:// (a file) or postgres://",
            ));
        }
        if !["full", "normal"].contains(&self.database.sqlite_synchronous.as_str()) {
            return Err(invalid(
                "database.sqlite_synchronous",
                "must be \"full\" or \"normal\"",
            ));
        }
        if self.database.sqlite_wal_autocheckpoint == 0 {
            return Err(invalid(
                "database.sqlite_wal_autocheckpoint",
                "must be at least 1 page (0 would never checkpoint and grow the WAL without end)",
            ));
        }
        if self.database.sqlite_cache_kib < 1024 {
            return Err(invalid(
                "database.sqlite_cache_kib",
                "must be at least 1024",
            ));
        }
        if self.database.max_connections < 2 {
            return Err(invalid(
                "database.max_connections",
                "must be at least 2 (the ledger writer holds one)",
            ));
        }
        if !self.broker.url.expose().starts_with("amqp://")
            && !self.broker.url.expose().starts_with("amqps://")
        {
            return Err(invalid("broker.url", "must start with amqp:// or amqps://"));
        }
        if !is_routing_word(&self.broker.prefix) {
            return Err(invalid(
                "broker.prefix",
                "use lower-case letters, digits, '_' and '-' only",
            ));
        }
        if self.broker.reconnect_min_ms == 0
            || self.broker.reconnect_max_ms < self.broker.reconnect_min_ms
        {
            return Err(invalid(
                "broker.reconnect_max_ms",
                "need 0 < reconnect_min_ms <= reconnect_max_ms",
            ));
        }
        if self.ingest.batch_max == 0 {
            return Err(invalid("ingest.batch_max", "must be at least 1"));
        }
        if self.ingest.queue_depth == 0 {
            return Err(invalid("ingest.queue_depth", "must be at least 1"));
        }
        if self.ingest.publish_in_flight == 0 {
            return Err(invalid("ingest.publish_in_flight", "must be at least 1"));
        }
        if self.ingest.publish_wait_ms + self.ingest.commit_wait_ms >= 3000 {
            return Err(invalid(
                "ingest.publish_wait_ms",
                "publish_wait_ms + commit_wait_ms must stay under RuStore's 3000 ms",
            ));
        }
        if self.outbox.grace_ms <= self.ingest.publish_wait_ms {
            return Err(invalid(
                "outbox.grace_ms",
                "must exceed ingest.publish_wait_ms, or the relay races the requests",
            ));
        }
        if self.outbox.batch == 0 || self.outbox.interval_ms == 0 {
            return Err(invalid(
                "outbox.batch",
                "outbox.batch and outbox.interval_ms must be at least 1",
            ));
        }
        if self.outbox.lease_ms <= self.ingest.publish_wait_ms {
            return Err(invalid(
                "outbox.lease_ms",
                "must exceed the time a publish may take (ingest.publish_wait_ms)",
            ));
        }
        self.forward
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        let admin_key = self.api.admin_key.expose();
        if !admin_key.is_empty() && admin_key.len() < 16 {
            return Err(invalid(
                "api.admin_key",
                "must be empty (admin routes disabled) or at least 16 characters",
            ));
        }
        if !self.api.public_url.is_empty() {
            match url::Url::parse(&self.api.public_url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
                _ => {
                    return Err(invalid(
                        "api.public_url",
                        "must be an http(s) URL such as https://hooks.example.com",
                    ));
                }
            }
        }
        self.validate_tenants()
    }

    fn validate_tenants(&self) -> Result<(), ConfigError> {
        let mut tenant_ids = HashSet::new();
        let mut source_ids = HashSet::new();
        let mut ingest_keys = HashSet::new();
        let mut endpoint_ids = HashSet::new();
        for (t, tenant) in self.tenants.iter().enumerate() {
            let at = format!("tenants[{t}]");
            if !is_routing_word(&tenant.id) {
                return Err(invalid(
                    format!("{at}.id"),
                    format!(
                        "{:?} cannot be a routing-key word: use lower-case letters, digits, '_' and '-' only",
                        tenant.id
                    ),
                ));
            }
            if !tenant_ids.insert(tenant.id.as_str()) {
                return Err(invalid(format!("{at}.id"), "declared twice"));
            }
            for (s, source) in tenant.sources.iter().enumerate() {
                let at = format!("{at}.sources[{s}]");
                if !is_routing_word(&source.id) {
                    return Err(invalid(
                        format!("{at}.id"),
                        "use lower-case letters, digits, '_' and '-' only",
                    ));
                }
                if !source_ids.insert(source.id.as_str()) {
                    return Err(invalid(format!("{at}.id"), "declared twice"));
                }
                let key = source.ingest_key.expose();
                if key.len() < 16
                    || !key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(invalid(
                        format!("{at}.ingest_key"),
                        "must be at least 16 random characters of [A-Za-z0-9_-] (try `storehook ingest-key`)",
                    ));
                }
                if !ingest_keys.insert(key) {
                    return Err(invalid(
                        format!("{at}.ingest_key"),
                        "already used by another source",
                    ));
                }
                source
                    .credentials
                    .adapter_config()
                    .map_err(|(field, message)| invalid(format!("{at}.{field}"), message))?;
            }
            for (e, endpoint) in tenant.endpoints.iter().enumerate() {
                let at = format!("{at}.endpoints[{e}]");
                if !is_routing_word(&endpoint.id) {
                    return Err(invalid(
                        format!("{at}.id"),
                        "use lower-case letters, digits, '_' and '-' only",
                    ));
                }
                if !endpoint_ids.insert(endpoint.id.as_str()) {
                    return Err(invalid(format!("{at}.id"), "declared twice"));
                }
                if !(endpoint.url.starts_with("https://") || endpoint.url.starts_with("http://")) {
                    return Err(invalid(format!("{at}.url"), "must be an http(s) URL"));
                }
                for (i, secret) in endpoint.secrets.iter().enumerate() {
                    crate::forward::signature::SigningSecret::parse(secret.expose()).map_err(
                        |e| {
                            invalid(
                                format!("{at}.secrets[{i}]"),
                                format!("must look like whsec_<base64>: {e}"),
                            )
                        },
                    )?;
                }
                for (i, event_type) in endpoint.event_types.iter().enumerate() {
                    crate::forward::config::TypeFilter::parse(std::slice::from_ref(event_type))
                        .map_err(|message| invalid(format!("{at}.event_types[{i}]"), message))?;
                }
            }
        }
        Ok(())
    }

    /// The base of the ingest URLs handed out: `api.public_url` without its trailing `/`, or
    /// `http://<server.host>:<server.port>`.
    pub fn public_url(&self) -> String {
        if self.api.public_url.is_empty() {
            format!("http://{}:{}", self.server.host, self.server.port)
        } else {
            self.api.public_url.trim_end_matches('/').to_owned()
        }
    }

    pub fn publish_wait(&self) -> Duration {
        Duration::from_millis(self.ingest.publish_wait_ms)
    }

    pub fn commit_wait(&self) -> Duration {
        Duration::from_millis(self.ingest.commit_wait_ms)
    }
}

impl Credentials {
    pub fn store(&self) -> Store {
        match self {
            Credentials::RuStore { .. } => Store::RuStore,
            Credentials::Autodesk { .. } => Store::Autodesk,
        }
    }

    /// The adapter's configuration; on error, the offending field and why.
    pub fn adapter_config(&self) -> Result<SourceConfig, (&'static str, String)> {
        match self {
            Credentials::RuStore {
                key,
                previous_key,
                app_id,
            } => {
                let key = rustore::AesKey::parse(key.expose()).map_err(|e| ("key", e.message))?;
                let previous_key = previous_key
                    .as_ref()
                    .map(|k| rustore::AesKey::parse(k.expose()))
                    .transpose()
                    .map_err(|e| ("previous_key", e.message))?;
                Ok(SourceConfig::RuStore(rustore::Config {
                    key,
                    previous_key,
                    app_id: app_id.clone(),
                }))
            }
            Credentials::Autodesk {
                receiver_emails,
                receiver_ids,
                app_ids,
            } => Ok(SourceConfig::Autodesk(autodesk::Config {
                receiver_emails: receiver_emails.clone(),
                receiver_ids: receiver_ids.clone(),
                app_ids: app_ids.clone(),
            })),
        }
    }
}

/// A word that can stand between the dots of a routing key and in RabbitMQ names.
pub fn is_routing_word(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 64
        && word
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let settings = Settings::from_toml("").expect("defaults validate");
        assert_eq!(settings.broker.prefix, "storehook");
        assert_eq!(settings.server.body_limit, 64 * 1024);
    }

    #[test]
    fn a_dotted_tenant_id_names_the_key() {
        let error = Settings::from_toml(
            r#"
            [[tenants]]
            id = "acme.inc"
            "#,
        )
        .expect_err("a dot cannot be in a routing-key word");
        assert!(error.to_string().starts_with("tenants[0].id: "), "{error}");
    }

    #[test]
    fn a_short_ingest_key_names_the_key() {
        let error = Settings::from_toml(
            r#"
            [[tenants]]
            id = "acme"
            [[tenants.sources]]
            id = "acme-autodesk"
            store = "autodesk"
            ingest_key = "short"
            "#,
        )
        .expect_err("short keys are guessable");
        assert!(
            error
                .to_string()
                .starts_with("tenants[0].sources[0].ingest_key: "),
            "{error}"
        );
    }

    #[test]
    fn a_short_admin_key_names_the_key() {
        let error = Settings::from_toml("[api]\nadmin_key = \"short\"\n")
            .expect_err("short admin keys are guessable");
        assert!(error.to_string().starts_with("api.admin_key: "), "{error}");
        let error =
            Settings::from_toml("[api]\npublic_url = \"ftp://x\"\n").expect_err("not an http URL");
        assert!(error.to_string().starts_with("api.public_url: "), "{error}");
        let settings = Settings::from_toml("").expect("defaults validate");
        assert_eq!(settings.public_url(), "http://127.0.0.1:8080");
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "<redacted>");
    }
}
