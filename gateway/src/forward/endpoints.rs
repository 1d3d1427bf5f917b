//! Endpoints as the forwarder sees them: read from the registry's `endpoints` table, parsed once
//! (URL, signing secrets, type filter) and cached for `forward.endpoint_cache`. A secret may carry
//! an expiry (a rotation's overlap, see [`StoredSecret`]); every secret not yet expired signs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};

use super::config::TypeFilter;
use super::signature::SigningSecret;
use crate::ledger::now_ms;

/// A webhook destination ready to deliver to.
#[derive(Debug)]
pub struct Endpoint {
    pub id: String,
    pub tenant_id: String,
    pub enabled: bool,
    /// The URL and secrets, or why the stored row cannot be delivered to (every attempt then
    /// fails with that reason, so the deliveries wait in the ladder and are kept when dead).
    pub target: Result<Target, String>,
    pub filter: TypeFilter,
}

/// Where and how to sign.
#[derive(Debug)]
pub struct Target {
    pub url: Url,
    /// Newest first; every one signs during a rotation.
    pub secrets: Vec<SigningSecret>,
}

type Cached<T> = (Instant, T);
/// A tenant's enabled endpoints.
pub type TenantEndpoints = Arc<Vec<Arc<Endpoint>>>;

/// The endpoint lookups the forwarder makes, cached.
#[derive(Debug)]
pub struct Endpoints {
    pool: AnyPool,
    ttl: Duration,
    by_tenant: Mutex<HashMap<String, Cached<TenantEndpoints>>>,
    by_id: Mutex<HashMap<String, Cached<Option<Arc<Endpoint>>>>>,
}

/// Most cached entries per map; past it the map starts afresh.
const CACHE_CAPACITY: usize = 10_000;

const COLUMNS: &str = "id, tenant_id, url, secrets, event_types, enabled";

impl Endpoints {
    pub fn new(pool: AnyPool, ttl: Duration) -> Endpoints {
        Endpoints {
            pool,
            ttl,
            by_tenant: Mutex::new(HashMap::new()),
            by_id: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's enabled endpoints.
    pub async fn for_tenant(&self, tenant: &str) -> Result<TenantEndpoints, sqlx::Error> {
        if let Some(found) = cached(&self.by_tenant, tenant, self.ttl) {
            return Ok(found);
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM endpoints WHERE tenant_id = $1 AND enabled = 1 ORDER BY id"
        )))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        let endpoints = rows
            .iter()
            .map(|row| parse_row(row).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let endpoints = Arc::new(endpoints);
        store(&self.by_tenant, tenant, Arc::clone(&endpoints));
        Ok(endpoints)
    }

    /// One endpoint by id, enabled or not; `None` when it no longer exists.
    pub async fn by_id(&self, id: &str) -> Result<Option<Arc<Endpoint>>, sqlx::Error> {
        if let Some(found) = cached(&self.by_id, id, self.ttl) {
            return Ok(found);
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM endpoints WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let endpoint = row.as_ref().map(parse_row).transpose()?.map(Arc::new);
        store(&self.by_id, id, endpoint.clone());
        Ok(endpoint)
    }

    /// Disable an endpoint (it answered `410 Gone`) and forget what the caches knew.
    pub async fn disable(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE endpoints SET enabled = 0, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        if let Ok(mut map) = self.by_tenant.lock() {
            map.clear();
        }
        if let Ok(mut map) = self.by_id.lock() {
            map.clear();
        }
        Ok(())
    }
}

fn cached<T: Clone>(
    map: &Mutex<HashMap<String, Cached<T>>>,
    key: &str,
    ttl: Duration,
) -> Option<T> {
    let map = map.lock().ok()?;
    let (at, value) = map.get(key)?;
    (at.elapsed() < ttl).then(|| value.clone())
}

fn store<T>(map: &Mutex<HashMap<String, Cached<T>>>, key: &str, value: T) {
    if let Ok(mut map) = map.lock() {
        if map.len() >= CACHE_CAPACITY {
            map.clear();
        }
        map.insert(key.to_owned(), (Instant::now(), value));
    }
}

fn parse_row(row: &sqlx::any::AnyRow) -> Result<Endpoint, sqlx::Error> {
    let id: String = row.try_get(0)?;
    let tenant_id: String = row.try_get(1)?;
    let url: String = row.try_get(2)?;
    let secrets: String = row.try_get(3)?;
    let event_types: String = row.try_get(4)?;
    let enabled: i64 = row.try_get(5)?;
    let target = parse_target(&url, &secrets);
    if let Err(problem) = &target {
        tracing::error!(endpoint = %id, %problem, "Endpoint cannot be delivered to");
    }
    let filter = serde_json::from_str::<Vec<String>>(&event_types)
        .map_err(|e| e.to_string())
        .and_then(|types| TypeFilter::parse(&types))
        .unwrap_or_else(|problem| {
            // A filter this binary cannot read delivers everything rather than nothing: the
            // receiver can ignore an event, it cannot recover one never sent.
            tracing::error!(endpoint = %id, %problem, "Unreadable endpoint event_types; delivering every type");
            TypeFilter::default()
        });
    Ok(Endpoint {
        id,
        tenant_id,
        enabled: enabled != 0,
        target,
        filter,
    })
}

/// One element of an endpoint's `secrets` column: a plain `whsec_…` string (the configuration's
/// form), or an object with an expiry (a secret rotated out by the management API keeps signing
/// until `expires_at`, in ms since the epoch).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoredSecret {
    Plain(String),
    Expiring {
        secret: String,
        #[serde(default)]
        expires_at: Option<i64>,
    },
}

impl StoredSecret {
    pub fn secret(&self) -> &str {
        match self {
            StoredSecret::Plain(secret) | StoredSecret::Expiring { secret, .. } => secret,
        }
    }

    pub fn expires_at(&self) -> Option<i64> {
        match self {
            StoredSecret::Plain(_) => None,
            StoredSecret::Expiring { expires_at, .. } => *expires_at,
        }
    }

    /// Whether it still signs at `now` (ms).
    pub fn active(&self, now: i64) -> bool {
        self.expires_at().is_none_or(|at| at > now)
    }
}

/// Parse an endpoint's `secrets` column.
pub fn parse_secrets(text: &str) -> Result<Vec<StoredSecret>, String> {
    serde_json::from_str(text).map_err(|_| "secrets: not a JSON array".to_owned())
}

fn parse_target(url: &str, secrets: &str) -> Result<Target, String> {
    let url = Url::parse(url).map_err(|e| format!("url: {e}"))?;
    let now = now_ms();
    let secrets = parse_secrets(secrets)?
        .iter()
        .enumerate()
        .filter(|(_, s)| s.active(now))
        .map(|(i, s)| SigningSecret::parse(s.secret()).map_err(|e| format!("secrets[{i}]: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if secrets.is_empty() {
        return Err("secrets: the endpoint has no signing secret".to_owned());
    }
    Ok(Target { url, secrets })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn expired_secrets_no_longer_sign() {
        let now = now_ms();
        let text = serde_json::json!([
            {"secret": SECRET, "expires_at": null},
            {"secret": SECRET, "expires_at": now + 60_000},
            {"secret": SECRET, "expires_at": now - 1},
            SECRET,
        ])
        .to_string();
        let target = parse_target("https://example.com/hook", &text).expect("usable");
        assert_eq!(target.secrets.len(), 3);
        let expired = serde_json::json!([{"secret": SECRET, "expires_at": now - 1}]).to_string();
        assert!(parse_target("https://example.com/hook", &expired).is_err());
    }
}
