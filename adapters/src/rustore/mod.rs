//! RuStore server notifications: an AES-256-GCM encrypted JSON envelope.
//!
//! RuStore POSTs `{"id", "timestamp", "payload"}` where `payload` is base64 of
//! `IV (12 bytes) ‖ ciphertext ‖ GCM tag (16 bytes)` under the source's key, with no associated data.
//! The decrypted payload is `{"notification_type", "app_id", "data"}`, and `data` is a JSON document
//! serialized as a string (an object is accepted too). Store facts: `stores/rustore.md`.
//!
//! ## Layout
//! - `wire`: the envelope, payload and `data` shapes, only the fields storehook reads.
//! - `verify`: base64, decryption with the current then the previous key, the app id check.
//! - `map`: the exhaustive mapping of notification kinds and statuses to [`Event`]s.
//!
//! ## Where each rejection comes from
//! [`RuStore::verify`] fails for bodies that are not a RuStore envelope ([`ErrorCategory::Malformed`]),
//! for payloads that no configured key opens, and for another app's notifications
//! ([`ErrorCategory::Unauthenticated`]). Once verified, a notification is known to come from RuStore,
//! so [`RuStore::normalize`] turns every readable one into exactly one event: unknown kinds, statuses
//! and subscription event types become `store.unrecognized`. Its only error is a `data` field of a
//! payment or subscription notification that cannot be read (a string that is not JSON, or not an
//! object): such input is authentic but malformed.
//!
//! ## What the event holds
//! - `idempotency_key` = `rustore:<source>:<notification id>:<event type>`: RuStore resends a
//!   notification with the same `id`, so a resend yields the same key and the same event id.
//! - `occurred_at`: `change_status_time` (payments) or `event_time` (subscriptions), else the
//!   envelope `timestamp`, else the time of receipt; converted to UTC.
//! - `store_data.raw`: the decrypted payload as RuStore sent it, except that a `data` string holding
//!   a JSON object or array is replaced by that parsed value, so consumers need not parse twice.
//!
//! [`ErrorCategory::Malformed`]: crate::ErrorCategory::Malformed
//! [`ErrorCategory::Unauthenticated`]: crate::ErrorCategory::Unauthenticated

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::KeyInit as _;
use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use subtle::ConstantTimeEq as _;

use crate::{AdapterError, Context, Event, Store, StoreAdapter};

mod map;
mod verify;
mod wire;

/// A RuStore source's credentials, as read from configuration (JSON, TOML, environment).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The key shown in RuStore Console.
    pub key: AesKey,
    /// The key before the last rotation, still accepted until it is removed.
    #[serde(default)]
    pub previous_key: Option<AesKey>,
    /// RuStore Console app id; when set, notifications for any other app, or naming no app, are
    /// rejected. Accepted in configuration as a string or a number.
    #[serde(default, deserialize_with = "deserialize_app_id")]
    pub app_id: Option<String>,
}

/// A 32-byte AES-256 key. Its `Debug` never shows the key, and equality is checked in constant time.
///
/// The cipher is set up (AES key schedule, GHASH key) once, when the key is parsed, rather than for
/// every notification. It is boxed because it is large (round keys for each AES implementation
/// the CPU might use), and a configuration is moved around whole.
#[derive(Clone)]
pub struct AesKey {
    bytes: [u8; 32],
    cipher: Box<Aes256Gcm>,
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

impl PartialEq for AesKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl Eq for AesKey {}

impl AesKey {
    fn new(bytes: [u8; 32]) -> AesKey {
        AesKey {
            bytes,
            cipher: Box::new(Aes256Gcm::new(&bytes.into())),
        }
    }

    /// The AES-256-GCM cipher under this key.
    pub(crate) fn cipher(&self) -> &Aes256Gcm {
        &self.cipher
    }

    /// Parse a key as RuStore Console shows it: base64 of 32 bytes, or else 32 raw bytes.
    ///
    /// Base64 is tried first (surrounding whitespace ignored, as a key pasted into a file or an
    /// environment variable often carries a newline); a 32-byte raw key cannot be mistaken for it,
    /// since 32 base64 characters decode to 24 bytes. The error never contains the key.
    pub fn parse(text: &str) -> Result<AesKey, AdapterError> {
        let decoded = verify::BASE64.decode(text.trim().as_bytes());
        if let Ok(bytes) = &decoded
            && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
        {
            return Ok(AesKey::new(key));
        }
        if let Ok(key) = <[u8; 32]>::try_from(text.as_bytes()) {
            return Ok(AesKey::new(key));
        }
        Err(AdapterError::malformed(match decoded {
            Ok(bytes) => format!(
                "RuStore key decodes from base64 to {} bytes; expected base64 of exactly 32 bytes \
                 (44 characters, as RuStore Console shows it) or 32 raw characters",
                bytes.len()
            ),
            Err(_) => format!(
                "RuStore key is neither base64 nor 32 raw characters (it has {} bytes); expected \
                 base64 of exactly 32 bytes (44 characters, as RuStore Console shows it) or 32 raw \
                 characters",
                text.len()
            ),
        }))
    }
}

impl<'de> Deserialize<'de> for AesKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AesKey::parse(&text).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// An app id is a number in RuStore Console; TOML and environment variables may give either form.
fn deserialize_app_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum AppId {
        Text(String),
        Number(u64),
    }
    let id = match Option::<AppId>::deserialize(d)? {
        None => return Ok(None),
        Some(AppId::Text(text)) => text.trim().to_owned(),
        Some(AppId::Number(n)) => n.to_string(),
    };
    if id.is_empty() {
        return Err(serde::de::Error::custom(
            "app_id is empty: set the RuStore Console app id, or omit app_id to accept any app",
        ));
    }
    Ok(Some(id))
}

/// Which configured key opened a payload. A notification opened by the previous key means RuStore
/// (or a retry in flight) still uses it: the rotation is not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySlot {
    /// [`Config::key`].
    Current,
    /// [`Config::previous_key`].
    Previous,
}

/// The RuStore adapter.
#[derive(Debug)]
pub struct RuStore;

/// A decrypted notification whose app id matched. Only [`RuStore::verify`] makes one.
#[derive(Debug, Clone)]
pub struct Verified {
    notification_id: String,
    timestamp: Option<String>,
    notification_type: Option<String>,
    payload: serde_json::Value,
    decrypted_with: KeySlot,
}

impl Verified {
    /// The envelope `id`: RuStore's notification id, the same on every resend.
    pub fn notification_id(&self) -> &str {
        &self.notification_id
    }

    /// The payload's `notification_type` as sent, when present.
    pub fn notification_type(&self) -> Option<&str> {
        self.notification_type.as_deref()
    }

    /// The decrypted payload as sent (`data` not yet parsed): always a JSON object.
    pub fn payload(&self) -> &serde_json::Value {
        &self.payload
    }

    /// Which configured key decrypted the payload.
    pub fn decrypted_with(&self) -> KeySlot {
        self.decrypted_with
    }
}

impl StoreAdapter for RuStore {
    const STORE: Store = Store::RuStore;
    type Config = Config;
    type Verified = Verified;

    fn verify(config: &Config, body: &[u8]) -> Result<Verified, AdapterError> {
        verify::verify(config, body)
    }

    fn normalize(verified: Verified, ctx: &Context<'_>) -> Result<Vec<Event>, AdapterError> {
        map::normalize(verified, ctx).map(|event| vec![event])
    }
}
