//! The database: registry (tenants, sources, endpoints) and ledger (raw notifications, events,
//! the outbox), on SQLite by default or PostgreSQL by URL.
//!
//! Both run through `sqlx::Any` with one set of migrations and queries in portable SQL: `$N`
//! placeholders (SQLite reads them as positional too), `ON CONFLICT … DO NOTHING`, `RETURNING`,
//! partial indexes, BIGINT milliseconds for times. One code path means one thing to test twice,
//! instead of two to keep in step.
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
use sqlx::{AnyPool, Executor, SqlSafeStr};

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
        let synchronous = settings.sqlite_synchronous.to_uppercase();
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                let synchronous = synchronous.clone();
                Box::pin(async move {
                    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                        // WAL lets readers (source lookups, the relay, /readyz) run beside the
                        // single writer; FULL makes every group commit survive power loss.
                        // Statement journals in memory and a larger page cache keep the group
                        // commits off the disk except for the WAL itself (measured with perf).
                        let pragmas = format!(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
                             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
                             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768;"
                        );
                        conn.execute(sqlx::AssertSqlSafe(pragmas)).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .context("database.url: cannot connect to the database")?;
        let ledger = Ledger { pool, backend };
        ledger.migrate().await?;
        Ok(ledger)
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
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
fn placeholders(rows: usize, columns: usize, first: usize, numbered: bool) -> String {
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
    }
}
