//! What RuStore sends, mirrored only as far as storehook reads it.
//!
//! Every field is optional: RuStore documents few guarantees, and an authentic notification with a
//! missing field must still become an event (or a precise error), never a deserialization failure.
//! Whatever is not mirrored here is kept in the event's `store_data.raw`.

use serde::{Deserialize, Deserializer};

/// The HTTP body: `{"id": "...", "timestamp": "...", "payload": "<base64>"}`.
#[derive(Debug, Deserialize)]
pub(super) struct Envelope {
    /// The notification id; a resend carries the same one.
    #[serde(default, deserialize_with = "string_or_number")]
    pub id: Option<String>,
    /// When RuStore sent it (RFC 3339); only a fallback for `occurred_at`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub timestamp: Option<String>,
    /// base64 of `IV (12) ‖ ciphertext ‖ GCM tag (16)`.
    #[serde(default)]
    pub payload: Option<String>,
}

/// The decrypted payload, minus `data`, which is read per notification kind in `map`.
#[derive(Debug, Deserialize)]
pub(super) struct Payload {
    /// `INVOICE_STATUS`, `SUBSCRIPTION_EVENT`, `TEST_EVENT`, each possibly with `_SANDBOX`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub notification_type: Option<String>,
    /// The RuStore Console app id: documented as a number, accepted as a string too.
    #[serde(default, deserialize_with = "string_or_number")]
    pub app_id: Option<String>,
}

/// `data` of `INVOICE_STATUS*`: a payment's status change.
#[derive(Debug, Default, Deserialize)]
pub(super) struct InvoiceStatus {
    #[serde(default, deserialize_with = "string_or_number")]
    pub product_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub change_status_time: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub status_new: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    pub invoice_id: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    pub order_id: Option<String>,
}

/// `data` of `SUBSCRIPTION_EVENT*`: something happened to a subscription.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SubscriptionEvent {
    #[serde(default, deserialize_with = "string_or_number")]
    pub product_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub event_time: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub subscription_event_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub status_new: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub period_new: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub autorenewing: Option<bool>,
    #[serde(default, deserialize_with = "string_or_number")]
    pub purchase_id: Option<String>,
}

/// A value RuStore may send as a string or as a number (ids): read as its decimal text. Anything
/// else (objects, arrays, booleans) is treated as absent rather than failing the whole
/// notification: the value stays visible in `store_data.raw`.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A text field; a value of another JSON type is treated as absent (it stays in `raw`), so that
/// one odd field does not make an authentic notification unreadable.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

/// A boolean, also accepted as the strings `"true"`/`"false"` in any case; anything else is absent.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => Some(b),
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    })
}
