//! What RuStore sends, mirrored only as far as storehook reads it.
//!
//! Every field is optional: RuStore documents few guarantees, and an authentic notification with a
//! missing field must still become an event (or a precise error), never a deserialization failure.
//! The envelope is deserialized straight from the body; the decrypted payload is parsed into a JSON
//! tree anyway (it is the event's `store_data.raw`), so its fields are read from that tree by name.
//! Whatever is not mirrored here is kept in the event's `store_data.raw`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// The HTTP body: `{"id": "...", "timestamp": "...", "payload": "<base64>"}`.
#[derive(Debug)]
pub(super) struct Envelope<'a> {
    /// The notification id; a resend carries the same one.
    pub id: Option<String>,
    /// When RuStore sent it (RFC 3339); only a fallback for `occurred_at`.
    pub timestamp: Option<String>,
    /// base64 of `IV (12) ‖ ciphertext ‖ GCM tag (16)`, borrowed from the body when it can be.
    pub payload: Option<Cow<'a, str>>,
}

impl<'a> Envelope<'a> {
    /// Reads the body in one pass, borrowing the payload (a kilobyte of base64), without a JSON
    /// tree. `None` for anything unusual: not an object, a `payload` that is not a plain string,
    /// invalid JSON… Such a body is then read by [`EnvelopeTree`], which says precisely what is
    /// wrong. Every value is read as a tree would read it, and a repeated key keeps its last
    /// value as in a tree, so that whatever this accepts, the tree reads the same way.
    pub(super) fn read(body: &'a [u8]) -> Option<Envelope<'a>> {
        serde_json::from_slice(body).ok()
    }
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Envelope<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a RuStore envelope")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
                let mut envelope = Envelope {
                    id: None,
                    timestamp: None,
                    payload: None,
                };
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Id => envelope.id = text_or_number(Some(&map.next_value()?)),
                        Key::Timestamp => envelope.timestamp = text(Some(&map.next_value()?)),
                        Key::Payload => {
                            envelope.payload = Some(Cow::Borrowed(map.next_value::<&str>()?));
                        }
                        Key::Other => {
                            map.next_value::<Value>()?;
                        }
                    }
                }
                Ok(envelope)
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// A key of the envelope, recognized without allocating it.
enum Key {
    Id,
    Timestamp,
    Payload,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
                Ok(match name {
                    "id" => Key::Id,
                    "timestamp" => Key::Timestamp,
                    "payload" => Key::Payload,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(Name)
    }
}

/// The envelope read from a JSON tree: the reference reading of the body, used when
/// [`Envelope::read`] declines, for its precise errors.
#[derive(Debug, Deserialize)]
pub(super) struct EnvelopeTree {
    #[serde(default, deserialize_with = "string_or_number")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub payload: Option<String>,
}

impl From<EnvelopeTree> for Envelope<'_> {
    fn from(tree: EnvelopeTree) -> Self {
        Envelope {
            id: tree.id,
            timestamp: tree.timestamp,
            payload: tree.payload.map(Cow::Owned),
        }
    }
}

/// The decrypted payload, minus `data`, which is read per notification kind in `map`.
#[derive(Debug)]
pub(super) struct Payload {
    /// `INVOICE_STATUS`, `SUBSCRIPTION_EVENT`, `TEST_EVENT`, each possibly with `_SANDBOX`.
    pub notification_type: Option<String>,
    /// The RuStore Console app id: documented as a number, accepted as a string too.
    pub app_id: Option<String>,
}

impl Payload {
    pub(super) fn read(payload: &Map<String, Value>) -> Payload {
        Payload {
            notification_type: text(payload.get("notification_type")),
            app_id: text_or_number(payload.get("app_id")),
        }
    }
}

/// `data` of `INVOICE_STATUS*`: a payment's status change.
#[derive(Debug, Default)]
pub(super) struct InvoiceStatus {
    pub product_code: Option<String>,
    pub change_status_time: Option<String>,
    pub status_new: Option<String>,
    pub invoice_id: Option<String>,
    pub order_id: Option<String>,
}

impl InvoiceStatus {
    pub(super) fn read(data: &Map<String, Value>) -> InvoiceStatus {
        InvoiceStatus {
            product_code: text_or_number(data.get("product_code")),
            change_status_time: text(data.get("change_status_time")),
            status_new: text(data.get("status_new")),
            invoice_id: text_or_number(data.get("invoice_id")),
            order_id: text_or_number(data.get("order_id")),
        }
    }
}

/// `data` of `SUBSCRIPTION_EVENT*`: something happened to a subscription.
#[derive(Debug, Default)]
pub(super) struct SubscriptionEvent {
    pub product_code: Option<String>,
    pub event_time: Option<String>,
    pub subscription_event_type: Option<String>,
    pub status_new: Option<String>,
    pub period_new: Option<String>,
    pub autorenewing: Option<bool>,
    pub purchase_id: Option<String>,
}

impl SubscriptionEvent {
    pub(super) fn read(data: &Map<String, Value>) -> SubscriptionEvent {
        SubscriptionEvent {
            product_code: text_or_number(data.get("product_code")),
            event_time: text(data.get("event_time")),
            subscription_event_type: text(data.get("subscription_event_type")),
            status_new: text(data.get("status_new")),
            period_new: text(data.get("period_new")),
            autorenewing: lenient_bool(data.get("autorenewing")),
            purchase_id: text_or_number(data.get("purchase_id")),
        }
    }
}

/// A value RuStore may send as a string or as a number (ids): read as its decimal text. Anything
/// else (objects, arrays, booleans) is treated as absent rather than failing the whole
/// notification: the value stays visible in `store_data.raw`.
fn text_or_number(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A text field; a value of another JSON type is treated as absent (it stays in `raw`), so that
/// one odd field does not make an authentic notification unreadable.
fn text(value: Option<&Value>) -> Option<String> {
    value?.as_str().map(str::to_owned)
}

/// A boolean, also accepted as the strings `"true"`/`"false"` in any case; anything else is absent.
fn lenient_bool(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// [`text_or_number`] for serde's `deserialize_with`.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(text_or_number(Some(&Value::deserialize(d)?)))
}

/// [`text`] for serde's `deserialize_with`.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(text(Some(&Value::deserialize(d)?)))
}
