//! Tenants, sources and endpoints: upserted from the configuration at start, and the lookup of a
//! source by store and ingest key that every ingest request makes.
//!
//! Ingest keys are stored and looked up only as SHA-256 hashes: the database never holds a key
//! that would let its reader post notifications, and an index lookup on a hash reveals nothing
//! about near-miss keys. Found sources (and misses) are cached for a short while, so a busy
//! source costs no query per request and a flood of bad keys costs one query per key per period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::{AnyPool, Row};
use storehook_adapters::{SourceConfig, Store};

use super::{now_ms, sha256_hex};
use crate::configuration::{Credentials, TenantSettings};

/// A source ready for ingest: who owns it and its adapter configuration.
#[derive(Debug)]
pub struct Source {
    pub id: String,
    pub tenant_id: String,
    pub store: Store,
    pub adapter: SourceConfig,
}

/// The hash under which an ingest key is stored.
pub fn ingest_key_hash(ingest_key: &str) -> String {
    sha256_hex(&[ingest_key.as_bytes()])
}

/// Upsert the configuration's tenants, sources and endpoints in one transaction. Entries that are
/// no longer in the configuration are left as they are (the management API owns their life).
pub async fn upsert_from_settings(
    pool: &AnyPool,
    tenants: &[TenantSettings],
) -> anyhow::Result<()> {
    let now = now_ms();
    let mut tx = pool.begin().await?;
    for tenant in tenants {
        sqlx::query(
            "INSERT INTO tenants (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at",
        )
        .bind(tenant.id.as_str())
        .bind(tenant.name.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for source in &tenant.sources {
            sqlx::query(
                "INSERT INTO sources \
                 (id, tenant_id, store, ingest_key_hash, credentials, enabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 1, $6, $6) \
                 ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, \
                 store = excluded.store, ingest_key_hash = excluded.ingest_key_hash, \
                 credentials = excluded.credentials, enabled = 1, updated_at = excluded.updated_at",
            )
            .bind(source.id.as_str())
            .bind(tenant.id.as_str())
            .bind(source.credentials.store().as_str())
            .bind(ingest_key_hash(source.ingest_key.expose()))
            .bind(credentials_json(&source.credentials))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for endpoint in &tenant.endpoints {
            let secrets: Vec<&str> = endpoint.secrets.iter().map(|s| s.expose()).collect();
            sqlx::query(
                "INSERT INTO endpoints \
                 (id, tenant_id, url, secrets, event_types, enabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, \
                 url = excluded.url, secrets = excluded.secrets, \
                 event_types = excluded.event_types, enabled = excluded.enabled, \
                 updated_at = excluded.updated_at",
            )
            .bind(endpoint.id.as_str())
            .bind(tenant.id.as_str())
            .bind(endpoint.url.as_str())
            .bind(json!(secrets).to_string())
            .bind(json!(endpoint.event_types).to_string())
            .bind(i64::from(endpoint.enabled))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The stored form of a source's credentials: the same shape as the configuration file's, so one
/// parser (and one validation) serves both.
pub fn credentials_json(credentials: &Credentials) -> String {
    match credentials {
        Credentials::RuStore {
            key,
            previous_key,
            app_id,
        } => json!({
            "store": "rustore",
            "key": key.expose(),
            "previous_key": previous_key.as_ref().map(|k| k.expose()),
            "app_id": app_id,
        }),
        Credentials::Autodesk {
            receiver_emails,
            receiver_ids,
            app_ids,
        } => json!({
            "store": "autodesk",
            "receiver_emails": receiver_emails,
            "receiver_ids": receiver_ids,
            "app_ids": app_ids,
        }),
    }
    .to_string()
}

/// Source lookups by store and ingest key, cached.
#[derive(Debug)]
pub struct Registry {
    pool: AnyPool,
    ttl: Duration,
    cache: Mutex<HashMap<CacheKey, CacheEntry>>,
}

/// Store and ingest-key hash.
type CacheKey = (Store, String);
/// When looked up, and what was found.
type CacheEntry = (Instant, Option<Arc<Source>>);

/// Most cached lookups; past it the cache starts afresh (a flood of random keys cannot grow it).
const CACHE_CAPACITY: usize = 10_000;

impl Registry {
    pub fn new(pool: AnyPool, ttl: Duration) -> Registry {
        Registry {
            pool,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The enabled source of `store` with this ingest key, if any.
    pub async fn find_source(
        &self,
        store: Store,
        ingest_key: &str,
    ) -> Result<Option<Arc<Source>>, sqlx::Error> {
        let hash = ingest_key_hash(ingest_key);
        let key = (store, hash);
        if let Some((at, source)) = self.cache_get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(source);
        }
        let row = sqlx::query(
            "SELECT id, tenant_id, credentials FROM sources \
             WHERE ingest_key_hash = $1 AND store = $2 AND enabled = 1",
        )
        .bind(key.1.as_str())
        .bind(store.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let source = match row {
            None => None,
            Some(row) => {
                let id: String = row.try_get(0)?;
                let tenant_id: String = row.try_get(1)?;
                let credentials: String = row.try_get(2)?;
                match parse_credentials(&credentials) {
                    Ok(adapter) if adapter.store() == store => Some(Arc::new(Source {
                        id,
                        tenant_id,
                        store,
                        adapter,
                    })),
                    Ok(_) => None,
                    Err(message) => {
                        // A row this binary cannot use; answer as for an unknown key, and say why.
                        tracing::error!(source = %id, %message, "Unusable source credentials");
                        None
                    }
                }
            }
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), source.clone()));
        }
        Ok(source)
    }

    fn cache_get(&self, key: &CacheKey) -> Option<CacheEntry> {
        self.cache.lock().ok()?.get(key).cloned()
    }
}

fn parse_credentials(text: &str) -> Result<SourceConfig, String> {
    let credentials: Credentials = serde_json::from_str(text).map_err(|e| e.to_string())?;
    credentials
        .adapter_config()
        .map_err(|(field, message)| format!("{field}: {message}"))
}
