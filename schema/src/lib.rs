//! # storehook event schema, version 1
//!
//! Every store notification that storehook accepts becomes one or more [`Event`]s. The same JSON is
//! published to RabbitMQ and POSTed to webhook endpoints, so these types are a public contract: a field
//! is never renamed or removed within schema version 1, only added as optional.
//!
//! `event.v1.json` beside this crate is the JSON Schema (draft 2020-12) of exactly what
//! [`Event`] serializes to; `docs/events.md` in the repository documents every field for readers who
//! do not read Rust.
//!
//! ## Layout
//! - [`Event`]: the envelope every consumer sees, with [`event_id`] deriving its id.
//! - [`EventType`], [`Store`], [`Environment`], [`Entitlement`]: closed vocabularies.
//! - [`Customer`], [`Product`], [`Transaction`], [`Subscription`], [`StoreData`]: the parts, with
//!   [`RawJson`] carrying the store's original notification.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use uuid::Uuid;

/// The JSON Schema of [`Event`], as published at `schema/event.v1.json`.
pub const JSON_SCHEMA_V1: &str = include_str!("../event.v1.json");

/// Namespace of the UUIDv5 event ids: `uuid5(NAMESPACE_URL, "https://storehook.dev/schema/event/v1")`.
///
/// Anyone can recompute an event id from its idempotency key, e.g. in Python:
/// `uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "https://storehook.dev/schema/event/v1"), key)`.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x4ee86dbb_3705_5c78_8fed_bc4671de18bc);

/// The event id for an idempotency key: UUIDv5 in [`EVENT_ID_NAMESPACE`], so a store's resend of the
/// same notification always yields the same id.
pub fn event_id(idempotency_key: &str) -> Uuid {
    Uuid::new_v5(&EVENT_ID_NAMESPACE, idempotency_key.as_bytes())
}

/// One normalized event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Always `"1"` for this version of the schema.
    pub schema_version: SchemaVersion,
    /// UUIDv5 of `idempotency_key` (see [`event_id`]); also the `webhook-id` and AMQP `message_id`.
    pub id: Uuid,
    /// What makes this event unique, e.g. `rustore:<source>:<notification id>:<type>`.
    pub idempotency_key: String,
    /// What happened, from the closed vocabulary of [`EventType`].
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The app maker (tenant) that owns the source.
    pub tenant: String,
    /// The store connection (source) the notification arrived on.
    pub source: String,
    /// Which store sent the notification.
    pub store: Store,
    /// Real money (`production`) or a store's test mode (`sandbox`).
    pub environment: Environment,
    /// What a backend that only manages access must do.
    pub entitlement: Entitlement,
    /// When it happened at the store (falls back to `received_at` when the store gives no usable time).
    pub occurred_at: DateTime<Utc>,
    /// When storehook received the notification.
    pub received_at: DateTime<Utc>,
    /// The buyer, when the store says who it is.
    pub customer: Option<Customer>,
    /// The product (app, in-app product or subscription product), when known.
    pub product: Option<Product>,
    /// The money movement, for transaction events and subscription payments.
    pub transaction: Option<Transaction>,
    /// The subscription, for subscription events and subscription payments.
    pub subscription: Option<Subscription>,
    /// The store's own identifiers and the decoded original notification.
    pub store_data: StoreData,
}

impl Event {
    /// The RabbitMQ routing key: `<tenant>.<store>.<environment>.<type>`.
    pub fn routing_key(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.tenant,
            self.store.as_str(),
            self.environment.as_str(),
            self.event_type.as_str()
        )
    }
}

/// The buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// The store's id of the buyer (PayPal `payer_id`).
    pub id: Option<String>,
    /// The buyer's e-mail (Autodesk account e-mail when given, else PayPal `payer_email`).
    pub email: Option<String>,
    /// ISO 3166-1 alpha-2 country of residence, when the store says.
    pub country: Option<String>,
}

/// The product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// The store's product id (RuStore `product_code`, Autodesk `appId` or `item_number`).
    pub id: String,
    /// A human-readable name, when the store sends one.
    pub name: Option<String>,
}

/// A money movement. `amount` and `currency` are null when the store does not say (RuStore callbacks
/// carry no amount).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// The store's transaction id (RuStore `invoice_id`, PayPal `txn_id`).
    pub id: Option<String>,
    /// The transaction this one reverses (PayPal `parent_txn_id` of a refund or chargeback).
    pub original_id: Option<String>,
    /// The app's own order id (RuStore `order_id`, PayPal `invoice`).
    pub order_id: Option<String>,
    /// Integer minor units of `currency` (cents for USD); negative for refunds and chargebacks.
    pub amount: Option<i64>,
    /// ISO 4217 code, upper case.
    pub currency: Option<String>,
    /// The store's fee in minor units of `currency`, when it says.
    pub fee: Option<i64>,
}

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// The store's subscription id (RuStore `purchase_id`, PayPal `subscr_id`).
    pub id: Option<String>,
    /// Access state after this event, when it can be told.
    pub status: Option<SubscriptionStatus>,
    /// The kind of period the subscription is in after this event.
    pub period: Option<SubscriptionPeriod>,
    /// The billing period as an ISO 8601 duration (`P1M`, `P7D`, `P1Y`), when the store says.
    pub billing_period: Option<String>,
    /// Whether it renews by itself, when the store says.
    pub auto_renew: Option<bool>,
}

/// Access state of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// The buyer has access.
    Active,
    /// Paused by the buyer or the store: no access until resumed.
    Paused,
    /// Ended: no access.
    Expired,
}

/// The kind of period a subscription is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionPeriod {
    /// Free trial.
    Trial,
    /// Discounted introductory period (RuStore `PROMO`).
    Intro,
    /// Paid at the normal price (RuStore `MAIN`).
    Normal,
    /// Payment failed, access kept while the store retries (RuStore `GRACE`).
    Grace,
    /// Payment failed, access suspended while the store retries (RuStore `HOLD`).
    Hold,
}

/// The store's own view of the notification: ids, kind and status as the store spelled them, and the
/// decoded original.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreData {
    /// The store's notification id (RuStore envelope `id`, PayPal `ipn_track_id`).
    pub notification_id: Option<String>,
    /// The store's notification kind (RuStore `notification_type`, PayPal `txn_type`).
    pub notification_type: Option<String>,
    /// The store's status (RuStore `status_new` or `subscription_event_type`, PayPal `payment_status`).
    pub status: Option<String>,
    /// The decoded original: RuStore's decrypted payload (with `data` parsed when it was a JSON
    /// string), or every IPN field decoded with its charset, as a JSON object of strings.
    pub raw: RawJson,
}

/// The store's original notification as it travels in the event: JSON written as it is.
///
/// `store_data.raw` is carried, not read, by storehook, and is kept in whatever form the adapter
/// already has it, to be written when the event is: as JSON text (any event read back), as a JSON
/// tree (RuStore's decrypted payload, which the adapter parses anyway to read its fields), or, for
/// a form such as an IPN, as its decoded names and values in one string, written as a JSON object
/// of strings (no allocation per field). Equality compares the JSON text written.
#[derive(Debug, Clone)]
pub struct RawJson(Repr);

#[derive(Debug, Clone)]
enum Repr {
    /// JSON text.
    Text(Box<RawValue>),
    /// A JSON tree.
    Tree(serde_json::Value),
    /// A JSON object of strings: where each member's name and value are in `text`, in order.
    Strings {
        text: String,
        members: Vec<(Range<usize>, Range<usize>)>,
    },
}

impl RawJson {
    /// Wraps JSON text, checking that it is JSON.
    pub fn from_text(text: String) -> Result<RawJson, serde_json::Error> {
        RawValue::from_string(text).map(|raw| RawJson(Repr::Text(raw)))
    }

    /// A JSON tree.
    pub fn from_value(value: serde_json::Value) -> RawJson {
        RawJson(Repr::Tree(value))
    }

    /// A JSON object of strings whose names and values are pieces of `text`, written in the order
    /// given. `None` when a range is not a piece of `text` (out of bounds or inside a character).
    pub fn string_object(
        text: String,
        members: Vec<(Range<usize>, Range<usize>)>,
    ) -> Option<RawJson> {
        let valid = members.iter().all(|(name, value)| {
            text.get(name.clone()).is_some() && text.get(value.clone()).is_some()
        });
        valid.then_some(RawJson(Repr::Strings { text, members }))
    }

    /// The JSON `null`.
    pub fn null() -> RawJson {
        RawJson(Repr::Text(RawValue::NULL.to_owned()))
    }

    /// The JSON text.
    pub fn json(&self) -> Cow<'_, str> {
        match &self.0 {
            Repr::Text(raw) => Cow::Borrowed(raw.get()),
            // Writing a tree or strings into a string cannot fail.
            Repr::Tree(_) | Repr::Strings { .. } => {
                Cow::Owned(serde_json::to_string(self).unwrap_or_default())
            }
        }
    }

    /// The document as a JSON tree, for readers that look inside it.
    pub fn to_value(&self) -> serde_json::Value {
        match &self.0 {
            Repr::Tree(value) => value.clone(),
            // The text is JSON by construction (every constructor checks it or wrote it).
            Repr::Text(_) | Repr::Strings { .. } => {
                serde_json::from_str(&self.json()).unwrap_or(serde_json::Value::Null)
            }
        }
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Text(raw) => raw.serialize(serializer),
            Repr::Tree(value) => value.serialize(serializer),
            Repr::Strings { text, members } => {
                // The ranges were checked when the value was made.
                let piece = |range: &Range<usize>| text.get(range.clone()).unwrap_or_default();
                serializer.collect_map(
                    members
                        .iter()
                        .map(|(name, value)| (piece(name), piece(value))),
                )
            }
        }
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(|raw| RawJson(Repr::Text(raw)))
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

/// The schema version marker; serializes as the string `"1"` and accepts nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SchemaVersion;

impl Serialize for SchemaVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("1")
    }
}

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let version = String::deserialize(deserializer)?;
        if version == "1" {
            Ok(SchemaVersion)
        } else {
            Err(serde::de::Error::custom(format!(
                "unsupported schema_version {version:?}, expected \"1\""
            )))
        }
    }
}

/// Declares a closed string vocabulary: the enum, its wire strings, `ALL`, `as_str`, `Display` and
/// `FromStr`, so the list of values is written once.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(UnknownValue { kind: stringify!($name), value: s.to_owned() }),
                }
            }
        }
    };
}

/// A string that is not in one of the closed vocabularies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// Which vocabulary was asked.
    pub kind: &'static str,
    /// The string given.
    pub value: String,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.kind, self.value)
    }
}

impl std::error::Error for UnknownValue {}

vocabulary! {
    /// The stores storehook speaks to. The slug is the same in URLs, config, metrics and fixtures.
    Store {
        /// RuStore (AES-GCM encrypted JSON callbacks).
        RuStore = "rustore",
        /// Autodesk App Store (PayPal-style IPN forms).
        Autodesk = "autodesk",
    }
}

vocabulary! {
    /// Real money or a store's test mode.
    Environment {
        /// Real purchases.
        Production = "production",
        /// Test purchases (RuStore `_SANDBOX` types, PayPal `test_ipn=1`).
        Sandbox = "sandbox",
    }
}

vocabulary! {
    /// What a backend that only manages access must do.
    Entitlement {
        /// Give (or keep giving) access.
        Grant = "grant",
        /// Take access away.
        Revoke = "revoke",
        /// Nothing changes.
        None = "none",
    }
}

vocabulary! {
    /// What happened. The normative mapping from each store lives in `DESIGN.md` and `docs/events.md`.
    EventType {
        /// A payment was started and is in progress.
        TransactionPending = "transaction.pending",
        /// Money is on hold, waiting for confirmation (two-stage payment).
        TransactionAuthorized = "transaction.authorized",
        /// Money was charged.
        TransactionSucceeded = "transaction.succeeded",
        /// The payment was declined.
        TransactionFailed = "transaction.failed",
        /// The buyer cancelled before paying.
        TransactionCanceled = "transaction.canceled",
        /// The payment timed out.
        TransactionExpired = "transaction.expired",
        /// A hold was released; no money was taken.
        TransactionVoided = "transaction.voided",
        /// Money was given back.
        TransactionRefunded = "transaction.refunded",
        /// The buyer's bank reversed the payment.
        TransactionChargedBack = "transaction.charged_back",
        /// A chargeback was decided in the seller's favour.
        TransactionChargebackReversed = "transaction.chargeback_reversed",
        /// A paid subscription began.
        SubscriptionStarted = "subscription.started",
        /// A subscription began with a free trial.
        SubscriptionTrialStarted = "subscription.trial_started",
        /// A subscription renewed for another period.
        SubscriptionRenewed = "subscription.renewed",
        /// Auto-renewal was turned off; access lasts until the period ends.
        SubscriptionRenewalDisabled = "subscription.renewal_disabled",
        /// A renewal payment failed.
        SubscriptionBillingIssue = "subscription.billing_issue",
        /// A paused or held subscription is active again.
        SubscriptionResumed = "subscription.resumed",
        /// The subscription ended; no access.
        SubscriptionExpired = "subscription.expired",
        /// The subscription's terms changed.
        SubscriptionModified = "subscription.modified",
        /// Access was granted without a payment (free app).
        AccessGranted = "access.granted",
        /// A store's connectivity test.
        TestPing = "test.ping",
        /// An authentic notification of a kind storehook does not know yet; `store_data.raw` has it all.
        StoreUnrecognized = "store.unrecognized",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_matches_python_uuid5() {
        // python3 -c "import uuid; ns=uuid.uuid5(uuid.NAMESPACE_URL,'https://storehook.dev/schema/event/v1');
        //             print(ns, uuid.uuid5(ns,'rustore:src_1:12345:transaction.succeeded'))"
        assert_eq!(
            Uuid::new_v5(
                &Uuid::NAMESPACE_URL,
                b"https://storehook.dev/schema/event/v1"
            ),
            EVENT_ID_NAMESPACE
        );
        assert_eq!(
            event_id("rustore:src_1:12345:transaction.succeeded").to_string(),
            "362f037f-3e52-5766-af9d-a77d852c7771"
        );
    }

    #[test]
    fn vocabularies_round_trip_through_their_wire_strings() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
            assert_eq!(serde_json::to_value(t).ok(), Some(t.as_str().into()));
        }
        assert_eq!(EventType::ALL.len(), 21);
        assert!("transaction.unknown".parse::<EventType>().is_err());
        assert_eq!("rustore".parse::<Store>(), Ok(Store::RuStore));
    }

    #[test]
    fn schema_version_rejects_other_versions() {
        assert!(serde_json::from_str::<SchemaVersion>("\"1\"").is_ok());
        assert!(serde_json::from_str::<SchemaVersion>("\"2\"").is_err());
    }

    #[test]
    fn raw_json_is_written_as_its_text_and_read_back_equal() {
        let text = r#"{"b": [1, 2.50], "a": "\u00e9"}"#;
        let raw = RawJson::from_text(text.to_owned()).expect("JSON");
        assert_eq!(raw.json(), text);
        assert_eq!(raw.to_value(), serde_json::json!({"a": "é", "b": [1, 2.5]}));
        let data = StoreData {
            notification_id: None,
            notification_type: None,
            status: None,
            raw,
        };
        let written = serde_json::to_string(&data).expect("serializes");
        assert!(
            written.ends_with(&format!(r#""raw":{text}}}"#)),
            "{written}"
        );
        assert_eq!(serde_json::from_str::<StoreData>(&written).ok(), Some(data));
        assert!(RawJson::from_text("{".to_owned()).is_err());
        let from_tree: StoreData = serde_json::from_value(serde_json::json!({
            "notification_id": null, "notification_type": null, "status": null, "raw": {"a": 1}
        }))
        .expect("read from a JSON tree too");
        assert_eq!(from_tree.raw.to_value(), serde_json::json!({"a": 1}));
        assert_eq!(RawJson::null().json(), "null");
        let tree = RawJson::from_value(serde_json::json!({"b": 1, "a": [true]}));
        assert_eq!(tree.json(), r#"{"a":[true],"b":1}"#);
        assert_eq!(
            tree,
            RawJson::from_text(r#"{"a":[true],"b":1}"#.to_owned()).expect("JSON")
        );
    }

    #[test]
    fn raw_json_string_object_is_written_as_a_json_object_of_strings() {
        let mut text = String::new();
        let mut piece = |part: &str| {
            let start = text.len();
            text.push_str(part);
            start..text.len()
        };
        let members = vec![
            (piece("amount"), piece("\"é\"\n")),
            (piece("txn_id"), piece("1")),
        ];
        let raw = RawJson::string_object(text.clone(), members).expect("pieces of the text");
        assert_eq!(raw.json(), r#"{"amount":"\"é\"\n","txn_id":"1"}"#);
        assert_eq!(
            raw.to_value(),
            serde_json::json!({"amount": "\"é\"\n", "txn_id": "1"})
        );
        let read: RawJson = serde_json::from_str(&serde_json::to_string(&raw).expect("writes"))
            .expect("reads back");
        assert_eq!(read, raw);
        // Out of bounds, or inside the two bytes of `é`.
        assert!(RawJson::string_object(text.clone(), vec![(0..6, 20..30)]).is_none());
        assert!(RawJson::string_object(text, vec![(0..6, 7..8)]).is_none());
    }
}
