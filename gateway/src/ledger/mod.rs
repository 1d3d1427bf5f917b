//! The database: registry (tenants, sources, endpoints) and ledger (raw notifications, events,
//! the outbox), on SQLite by default or PostgreSQL by URL.
//!
//! Both run through `sqlx::Any` with one set of migrations and queries in portable SQL: `$N`
//! placeholders (SQLite reads them as positional too), `ON CONFLICT … DO NOTHING`, `RETURNING`,
//! partial indexes, BIGINT milliseconds for times. One code path means one thing to test twice,
//! instead of two to keep in step. The one exception is the ledger writer's connection on SQLite:
//! a native `sqlx::Sqlite` connection of its own (see [`WriterConnection`]) running the same SQL.
//!
//! - [`registry`]: config-declared tenants/sources/endpoints, and the source lookup by ingest key.
//! - [`writer`]: the single ledger writer (group commit) that ingest requests go through.
//! - [`outbox`]: the relay's queries: claim unpublished events, defer, count the backlog.

pub mod outbox;
pub mod registry;
pub mod writer;

use std::borrow::Cow;
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AnyPool, ConnectOptions, Executor, SqlSafeStr};

use crate::configuration::DatabaseSettings;

/// The migrations, in order. A new one is a new numbered file in `gateway/migrations/` and a line
/// here; the binary carries them, so a deployment needs no migration files on disk.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "registry and ledger",
        include_str!("../../migrations/0001_registry_and_ledger.sql"),
    ),
    (
        2,
        "delivery attempts",
        include_str!("../../migrations/0002_delivery_attempts.sql"),
    ),
    (
        3,
        "drop events_by_notification",
        include_str!("../../migrations/0003_drop_events_by_notification.sql"),
    ),
    (
        4,
        "management api",
        include_str!("../../migrations/0004_management_api.sql"),
    ),
];

/// Which database the URL named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool to the registry and ledger database.
#[derive(Debug, Clone)]
pub struct Ledger {
    pool: AnyPool,
    backend: Backend,
    /// The URL as connected (with `mode=rwc` on SQLite), for the writer's own connection.
    url: String,
    settings: DatabaseSettings,
}

/// The connection the ledger writer commits on.
#[derive(Debug)]
pub enum WriterConnection {
    /// A native SQLite connection held for good: no `Any` conversions on the hot path, and a page
    /// cache that stays warm because no other connection's commit invalidates it.
    Sqlite(Box<SqliteConnection>),
    /// The pool (PostgreSQL): a transaction takes any free connection.
    Pool(AnyPool),
}

/// The PRAGMAs every SQLite connection runs, pooled or the writer's.
///
/// WAL lets readers (source lookups, the relay, `/readyz`) run beside the single writer;
/// `synchronous = FULL` makes every group commit survive power loss. Statement journals in memory
/// and a larger page cache keep the group commits off the disk except for the WAL itself. Each
/// notification dirties a few pages of randomly keyed indexes; a checkpoint every
/// `sqlite_wal_autocheckpoint` pages (instead of SQLite's 1000) copies a page that changed many
/// times in between only once, and `journal_size_limit` gives the disk back after a large WAL.
fn sqlite_pragmas(settings: &DatabaseSettings) -> [(&'static str, String); 6] {
    [
        ("busy_timeout", "5000".to_owned()),
        ("foreign_keys", "ON".to_owned()),
        ("temp_store", "MEMORY".to_owned()),
        ("cache_size", format!("-{}", settings.sqlite_cache_kib)),
        (
            "wal_autocheckpoint",
            settings.sqlite_wal_autocheckpoint.to_string(),
        ),
        (
            "journal_size_limit",
            // Room for a full checkpoint window of 4 KiB pages.
            (settings.sqlite_wal_autocheckpoint.saturating_mul(4096)).to_string(),
        ),
    ]
}

impl Ledger {
    /// Connect (creating the SQLite file if missing) and apply the migrations.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Ledger> {
        install_default_drivers();
        let url = settings.url.expose();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            // `mode=rwc` creates the file: zero set-up.
            Backend::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let mut pragmas = format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {};",
            settings.sqlite_synchronous.to_uppercase()
        );
        for (name, value) in sqlite_pragmas(settings) {
            pragmas.push_str(&format!(" PRAGMA {name} = {value};"));
        }
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                let pragmas = pragmas.clone();
                Box::pin(async move {
                    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                        conn.execute(sqlx::AssertSqlSafe(pragmas)).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .context("database.url: cannot connect to the database")?;
        let ledger = Ledger {
            pool,
            backend,
            url,
            settings: settings.clone(),
        };
        ledger.migrate().await?;
        Ok(ledger)
    }

    /// The ledger writer's connection (see [`WriterConnection`]); on SQLite a new connection with
    /// the same PRAGMAs as the pool's.
    pub async fn writer_connection(&self) -> anyhow::Result<WriterConnection> {
        match self.backend {
            Backend::Postgres => Ok(WriterConnection::Pool(self.pool.clone())),
            Backend::Sqlite => {
                let synchronous = match self.settings.sqlite_synchronous.as_str() {
                    "normal" => SqliteSynchronous::Normal,
                    _ => SqliteSynchronous::Full,
                };
                let mut options: SqliteConnectOptions = self
                    .url
                    .parse()
                    .context("database.url: not a usable SQLite URL")?;
                options = options
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(synchronous)
                    .disable_statement_logging();
                for (name, value) in sqlite_pragmas(&self.settings) {
                    options = options.pragma(name, value);
                }
                let connection = options
                    .connect()
                    .await
                    .context("database.url: cannot open the ledger writer's connection")?;
                Ok(WriterConnection::Sqlite(Box::new(connection)))
            }
        }
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await
            .context("cannot apply the database migrations")
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch, the ledger's time type.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Lower-case hex SHA-256 of the parts, each followed by a newline (so `["ab","c"]` and
/// `["a","bc"]` differ).
pub fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update(b"\n");
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for byte in hasher.finalize() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

impl Backend {
    /// How the big multi-row statements of the hot path number their parameters. SQLite resolves
    /// every named parameter (`$N`) by a linear search per bind, which turns a statement with
    /// hundreds of parameters quadratic; its anonymous `?` binds in order at no cost. PostgreSQL
    /// only knows `$N`. Everything else uses `$N`, which both accept.
    pub fn numbered(self) -> bool {
        self == Backend::Postgres
    }
}

/// `($1, $2, …), ($n, …)`: `rows` groups of `columns` placeholders starting at `$first`; all `?`
/// instead when not `numbered` (then every parameter of the statement must be a `?`).
pub(crate) fn placeholders(rows: usize, columns: usize, first: usize, numbered: bool) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    let mut n = first;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            if numbered {
                sql.push('$');
                sql.push_str(&n.to_string());
            } else {
                sql.push('?');
            }
            n += 1;
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_consecutively() {
        assert_eq!(placeholders(2, 2, 1, true), "($1, $2), ($3, $4)");
        assert_eq!(placeholders(1, 3, 2, true), "($2, $3, $4)");
        assert_eq!(placeholders(2, 1, 1, false), "(?), (?)");
    }

    #[test]
    fn sha256_separates_parts() {
        assert_ne!(sha256_hex(&[b"ab", b"c"]), sha256_hex(&[b"a", b"bc"]));
        assert_eq!(sha256_hex(&[]).len(), 64);
        assert_eq!(
            sha256_hex(&[b"abc"]),
            "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb"
        );
    }
}
