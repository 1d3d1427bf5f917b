//! RuStore server notifications: an AES-256-GCM encrypted JSON envelope.
//!
//! STUB: the real adapter replaces this file (see `stores/rustore.md`).

use crate::{AdapterError, Context, Event, Store, StoreAdapter};

/// A RuStore source's credentials.
#[derive(Debug, Clone)]
pub struct Config {
    /// The key shown in RuStore Console.
    pub key: AesKey,
    /// The key before the last rotation, still accepted until it is removed.
    pub previous_key: Option<AesKey>,
    /// RuStore Console app id; when set, notifications for any other app are rejected.
    pub app_id: Option<String>,
}

/// A 32-byte AES-256 key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct AesKey([u8; 32]);

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

impl AesKey {
    /// Parse a key as RuStore Console shows it: base64 of 32 bytes, or else 32 raw bytes.
    pub fn parse(_text: &str) -> Result<AesKey, AdapterError> {
        Err(AdapterError::malformed("not implemented"))
    }
}

/// The RuStore adapter.
#[derive(Debug)]
pub struct RuStore;

/// A decrypted notification whose app id matched.
#[derive(Debug)]
pub struct Verified;

impl StoreAdapter for RuStore {
    const STORE: Store = Store::RuStore;
    type Config = Config;
    type Verified = Verified;

    fn verify(_config: &Config, _body: &[u8]) -> Result<Verified, AdapterError> {
        Err(AdapterError::malformed("not implemented"))
    }

    fn normalize(_verified: Verified, _ctx: &Context<'_>) -> Result<Vec<Event>, AdapterError> {
        Err(AdapterError::malformed("not implemented"))
    }
}
