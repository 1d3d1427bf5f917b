//! `Authorization: Bearer <key>`: the admin key from `api.admin_key`, or a tenant's API key.
//!
//! A tenant key is `sk_<prefix>_<secret>`: the prefix (8 characters) finds its row, the SHA-256 of
//! the whole key is compared with the stored one in constant time. The admin key is compared by
//! its SHA-256 too, so that neither its content nor its length shows in the time an answer takes.

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use sqlx::Row;
use subtle::ConstantTimeEq;

use super::ApiState;
use super::error::Error;
use crate::ledger::sha256_hex;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Tenant(String),
}

/// The prefix of every tenant API key.
pub const KEY_PREFIX: &str = "sk_";
/// Length of a key's public prefix (the part after `sk_`).
pub const PREFIX_LEN: usize = 8;

/// A new tenant key: `(key, prefix)`. 8 + 64 hex characters from two UUIDv4s and a third's
/// randomness (the OS generator).
pub fn new_key() -> (String, String) {
    let prefix: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(PREFIX_LEN)
        .collect();
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    (format!("{KEY_PREFIX}{prefix}_{secret}"), prefix)
}

/// The stored hash of a key.
pub fn key_hash(key: &str) -> String {
    sha256_hex(&[key.as_bytes()])
}

fn bearer(request: &HttpRequest) -> Result<&str, Error> {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(|| Error::unauthorized("missing Authorization: Bearer <key>"))?;
    let value = header
        .to_str()
        .map_err(|_| Error::unauthorized("unreadable Authorization header"))?;
    let (scheme, key) = value
        .split_once(' ')
        .ok_or_else(|| Error::unauthorized("expected Authorization: Bearer <key>"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || key.trim().is_empty() {
        return Err(Error::unauthorized("expected Authorization: Bearer <key>"));
    }
    Ok(key.trim())
}

fn same(a: &str, b: &str) -> bool {
    bool::from(key_hash(a).as_bytes().ct_eq(key_hash(b).as_bytes()))
}

/// Check the caller's key.
pub async fn authenticate(request: &HttpRequest, state: &ApiState) -> Result<Principal, Error> {
    let key = bearer(request)?;
    let wrong = || Error::unauthorized("unknown or revoked API key");
    if let Some(rest) = key.strip_prefix(KEY_PREFIX)
        && let Some((prefix, _)) = rest.split_once('_')
        && prefix.len() == PREFIX_LEN
    {
        let row = sqlx::query(
            "SELECT tenant_id, hash FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL",
        )
        .bind(prefix)
        .fetch_optional(&state.pool)
        .await?;
        let Some(row) = row else {
            return Err(wrong());
        };
        let tenant: String = row.try_get(0)?;
        let hash: String = row.try_get(1)?;
        if bool::from(key_hash(key).as_bytes().ct_eq(hash.as_bytes())) {
            return Ok(Principal::Tenant(tenant));
        }
        return Err(wrong());
    }
    let admin = state.admin_key.expose();
    if admin.is_empty() {
        return Err(Error::unauthorized(
            "unknown API key (the admin key is not configured: set api.admin_key)",
        ));
    }
    if same(key, admin) {
        Ok(Principal::Admin)
    } else {
        Err(wrong())
    }
}

/// The admin key, or 401/403.
pub async fn admin(request: &HttpRequest, state: &ApiState) -> Result<(), Error> {
    match authenticate(request, state).await? {
        Principal::Admin => Ok(()),
        Principal::Tenant(_) => Err(Error::forbidden(
            "a tenant API key cannot manage tenants; use the admin key",
        )),
    }
}

/// A tenant key: its tenant, or 401/403.
pub async fn tenant(request: &HttpRequest, state: &ApiState) -> Result<String, Error> {
    match authenticate(request, state).await? {
        Principal::Tenant(tenant) => Ok(tenant),
        Principal::Admin => Err(Error::forbidden(
            "the admin key manages tenants only; use one of the tenant's API keys",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_prefix() {
        let (key, prefix) = new_key();
        assert!(key.starts_with(&format!("sk_{prefix}_")));
        assert_eq!(prefix.len(), PREFIX_LEN);
        assert_eq!(key.len(), 3 + 8 + 1 + 64);
        assert_ne!(new_key().0, key);
    }
}
