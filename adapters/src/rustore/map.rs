//! From a verified RuStore notification to the one event it becomes (DESIGN.md, "Type vocabulary
//! and mapping"). Each wire vocabulary is a closed enum ending in `Unknown`, and every mapping is an
//! exhaustive `match`, so a new RuStore value is a compile-time to-do, not a silent default.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use storehook_schema::{
    Entitlement, Environment, EventType, Product, RawJson, SchemaVersion, StoreData, Subscription,
    SubscriptionPeriod, SubscriptionStatus, Transaction, event_id,
};

use super::Verified;
use super::wire::{InvoiceStatus, SubscriptionEvent};
use crate::{AdapterError, Context, Event, Store};

/// The notification kinds, without the `_SANDBOX` suffix (which only sets the environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InvoiceStatus,
    SubscriptionEvent,
    TestEvent,
    Unknown,
}

impl Kind {
    /// Kinds are matched exactly: RuStore documents them upper case, and anything else is kept as
    /// `store.unrecognized` rather than guessed at.
    fn parse(notification_type: Option<&str>) -> (Kind, Environment) {
        let Some(notification_type) = notification_type else {
            return (Kind::Unknown, Environment::Production);
        };
        let (base, environment) = match notification_type.strip_suffix("_SANDBOX") {
            Some(base) => (base, Environment::Sandbox),
            None => (notification_type, Environment::Production),
        };
        let kind = match base {
            "INVOICE_STATUS" => Kind::InvoiceStatus,
            "SUBSCRIPTION_EVENT" => Kind::SubscriptionEvent,
            "TEST_EVENT" => Kind::TestEvent,
            _ => Kind::Unknown,
        };
        (kind, environment)
    }

    fn name(self) -> &'static str {
        match self {
            Kind::InvoiceStatus => "INVOICE_STATUS",
            Kind::SubscriptionEvent => "SUBSCRIPTION_EVENT",
            Kind::TestEvent => "TEST_EVENT",
            Kind::Unknown => "unknown",
        }
    }
}

/// Finds a value, trimmed and in any ASCII case, among a vocabulary's spellings (upper case, as
/// RuStore documents them); `unknown` when absent or not listed.
fn lookup<T: Copy>(text: Option<&str>, spellings: &[(&str, T)], unknown: T) -> T {
    let Some(text) = text.map(str::trim) else {
        return unknown;
    };
    spellings
        .iter()
        .find(|(spelling, _)| spelling.eq_ignore_ascii_case(text))
        .map_or(unknown, |(_, value)| *value)
}

/// A payment (invoice) status. RuStore has spelled them lower case and upper case over time, and
/// the Pay SDK adds synonyms for the in-progress states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PaymentStatus {
    InProgress,
    Paid,
    Confirmed,
    Rejected,
    Cancelled,
    Expired,
    Reversed,
    Refunded,
    Unknown,
}

impl PaymentStatus {
    fn parse(status: Option<&str>) -> PaymentStatus {
        lookup(
            status,
            &[
                ("CREATED", PaymentStatus::InProgress),
                ("INVOICE_CREATED", PaymentStatus::InProgress),
                ("EXECUTED", PaymentStatus::InProgress),
                ("EXECUTING", PaymentStatus::InProgress),
                ("PROCESSING", PaymentStatus::InProgress),
                ("PAID", PaymentStatus::Paid),
                ("CONFIRMED", PaymentStatus::Confirmed),
                ("REJECTED", PaymentStatus::Rejected),
                ("CANCELLED", PaymentStatus::Cancelled),
                ("EXPIRED", PaymentStatus::Expired),
                ("REVERSED", PaymentStatus::Reversed),
                ("REFUNDED", PaymentStatus::Refunded),
                ("REFUNDING", PaymentStatus::Refunded),
            ],
            PaymentStatus::Unknown,
        )
    }

    fn event(self) -> (EventType, Entitlement) {
        match self {
            PaymentStatus::InProgress => (EventType::TransactionPending, Entitlement::None),
            PaymentStatus::Paid => (EventType::TransactionAuthorized, Entitlement::Grant),
            PaymentStatus::Confirmed => (EventType::TransactionSucceeded, Entitlement::Grant),
            PaymentStatus::Rejected => (EventType::TransactionFailed, Entitlement::None),
            PaymentStatus::Cancelled => (EventType::TransactionCanceled, Entitlement::None),
            PaymentStatus::Expired => (EventType::TransactionExpired, Entitlement::None),
            PaymentStatus::Reversed => (EventType::TransactionVoided, Entitlement::Revoke),
            PaymentStatus::Refunded => (EventType::TransactionRefunded, Entitlement::Revoke),
            PaymentStatus::Unknown => (EventType::StoreUnrecognized, Entitlement::None),
        }
    }
}

/// `subscription_event_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubscriptionEventType {
    Activated,
    Renewed,
    Cancelled,
    Resumed,
    PaymentFailed,
    Closed,
    Unknown,
}

impl SubscriptionEventType {
    fn parse(event_type: Option<&str>) -> SubscriptionEventType {
        lookup(
            event_type,
            &[
                ("ACTIVATED", SubscriptionEventType::Activated),
                ("RENEWED", SubscriptionEventType::Renewed),
                ("CANCELLED", SubscriptionEventType::Cancelled),
                ("RESUMED", SubscriptionEventType::Resumed),
                ("PAYMENT_FAILED", SubscriptionEventType::PaymentFailed),
                ("CLOSED", SubscriptionEventType::Closed),
            ],
            SubscriptionEventType::Unknown,
        )
    }
}

/// `status_new` of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuStoreSubscriptionStatus {
    Active,
    Paused,
    Closed,
    Terminated,
    Unknown,
}

impl RuStoreSubscriptionStatus {
    fn parse(status: Option<&str>) -> RuStoreSubscriptionStatus {
        lookup(
            status,
            &[
                ("ACTIVE", RuStoreSubscriptionStatus::Active),
                ("PAUSED", RuStoreSubscriptionStatus::Paused),
                ("CLOSED", RuStoreSubscriptionStatus::Closed),
                ("TERMINATED", RuStoreSubscriptionStatus::Terminated),
            ],
            RuStoreSubscriptionStatus::Unknown,
        )
    }

    fn schema(self) -> Option<SubscriptionStatus> {
        match self {
            RuStoreSubscriptionStatus::Active => Some(SubscriptionStatus::Active),
            RuStoreSubscriptionStatus::Paused => Some(SubscriptionStatus::Paused),
            RuStoreSubscriptionStatus::Closed | RuStoreSubscriptionStatus::Terminated => {
                Some(SubscriptionStatus::Expired)
            }
            RuStoreSubscriptionStatus::Unknown => None,
        }
    }

    /// Both mean the subscription ended with no access left.
    fn has_ended(self) -> bool {
        match self {
            RuStoreSubscriptionStatus::Closed | RuStoreSubscriptionStatus::Terminated => true,
            RuStoreSubscriptionStatus::Active
            | RuStoreSubscriptionStatus::Paused
            | RuStoreSubscriptionStatus::Unknown => false,
        }
    }
}

/// `period_new` of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Trial,
    Promo,
    Main,
    Grace,
    Hold,
    Unknown,
}

impl Period {
    fn parse(period: Option<&str>) -> Period {
        lookup(
            period,
            &[
                ("TRIAL", Period::Trial),
                ("PROMO", Period::Promo),
                ("MAIN", Period::Main),
                ("GRACE", Period::Grace),
                ("HOLD", Period::Hold),
            ],
            Period::Unknown,
        )
    }

    fn schema(self) -> Option<SubscriptionPeriod> {
        match self {
            Period::Trial => Some(SubscriptionPeriod::Trial),
            Period::Promo => Some(SubscriptionPeriod::Intro),
            Period::Main => Some(SubscriptionPeriod::Normal),
            Period::Grace => Some(SubscriptionPeriod::Grace),
            Period::Hold => Some(SubscriptionPeriod::Hold),
            Period::Unknown => None,
        }
    }
}

/// The parts of an event that depend on the notification kind.
struct Mapped {
    event_type: EventType,
    entitlement: Entitlement,
    /// The store's time of the change, as sent.
    occurred_at: Option<String>,
    product: Option<Product>,
    transaction: Option<Transaction>,
    subscription: Option<Subscription>,
    status: Option<String>,
}

impl Mapped {
    fn bare(event_type: EventType) -> Mapped {
        Mapped {
            event_type,
            entitlement: Entitlement::None,
            occurred_at: None,
            product: None,
            transaction: None,
            subscription: None,
            status: None,
        }
    }
}

pub(super) fn normalize(verified: Verified, ctx: &Context<'_>) -> Result<Event, AdapterError> {
    let Verified {
        notification_id,
        timestamp,
        notification_type,
        mut payload,
        decrypted_with: _,
    } = verified;
    let (kind, environment) = Kind::parse(notification_type.as_deref());

    let data = read_data(kind, &mut payload)?;
    let data = data.as_deref();
    let mapped = match kind {
        Kind::InvoiceStatus => payment(data_as(kind, data, InvoiceStatus::read)?),
        Kind::SubscriptionEvent => subscription(data_as(kind, data, SubscriptionEvent::read)?),
        // The test payload is opaque (seen as `{}`): nothing in it changes the event.
        Kind::TestEvent => Mapped::bare(EventType::TestPing),
        Kind::Unknown => Mapped::bare(EventType::StoreUnrecognized),
    };

    let occurred_at = [mapped.occurred_at.as_deref(), timestamp.as_deref()]
        .into_iter()
        .flatten()
        .find_map(parse_time)
        .unwrap_or(ctx.received_at);
    let idempotency_key = format!(
        "rustore:{}:{}:{}",
        ctx.source,
        notification_id,
        mapped.event_type.as_str()
    );
    Ok(Event {
        schema_version: SchemaVersion,
        id: event_id(&idempotency_key),
        idempotency_key,
        event_type: mapped.event_type,
        tenant: ctx.tenant.to_owned(),
        source: ctx.source.to_owned(),
        store: Store::RuStore,
        environment,
        entitlement: mapped.entitlement,
        occurred_at,
        received_at: ctx.received_at,
        customer: None,
        product: mapped.product,
        transaction: mapped.transaction,
        subscription: mapped.subscription,
        store_data: StoreData {
            notification_id: Some(notification_id),
            notification_type,
            status: mapped.status,
            raw: RawJson::from_value(payload),
        },
    })
}

/// Reads `data` and, when it is a string holding a JSON object or array, replaces it in the payload
/// by the parsed value (so `raw` shows it parsed). Returns the value to map, `None` when absent:
/// borrowed from the payload, except for a string holding some other JSON value (a number, say),
/// which stays a string in `raw` but is mapped as what it holds.
///
/// A string that is not JSON is an error only for the kinds whose `data` we must read; for the
/// others it is kept as sent.
fn read_data(kind: Kind, payload: &mut Value) -> Result<Option<Cow<'_, Value>>, AdapterError> {
    let Some(data) = payload.get_mut("data") else {
        return Ok(None);
    };
    if let Value::String(text) = data {
        match serde_json::from_str::<Value>(text) {
            Ok(parsed) if parsed.is_object() || parsed.is_array() => *data = parsed,
            Ok(parsed) => return Ok(Some(Cow::Owned(parsed))),
            Err(e) => match kind {
                Kind::InvoiceStatus | Kind::SubscriptionEvent => {
                    return Err(AdapterError::malformed(format!(
                        "`data` of the {} notification is a string but not JSON: {e}",
                        kind.name()
                    )));
                }
                Kind::TestEvent | Kind::Unknown => {}
            },
        }
    }
    Ok(match data {
        Value::Null => None,
        data => Some(Cow::Borrowed(data)),
    })
}

/// Reads `data` of a payment or subscription notification. Absent `data` reads as all fields
/// missing (the event becomes `store.unrecognized`); `data` that is not an object cannot be read.
fn data_as<T: Default>(
    kind: Kind,
    data: Option<&Value>,
    read: fn(&Map<String, Value>) -> T,
) -> Result<T, AdapterError> {
    match data {
        None => Ok(T::default()),
        Some(Value::Object(data)) => Ok(read(data)),
        Some(_) => Err(AdapterError::malformed(format!(
            "`data` of the {} notification is not a JSON object",
            kind.name()
        ))),
    }
}

fn payment(data: InvoiceStatus) -> Mapped {
    let (event_type, entitlement) = PaymentStatus::parse(data.status_new.as_deref()).event();
    Mapped {
        event_type,
        entitlement,
        occurred_at: data.change_status_time,
        product: product(data.product_code),
        transaction: Some(Transaction {
            id: data.invoice_id,
            original_id: None,
            order_id: data.order_id,
            // RuStore callbacks carry no amount; only the RuStore API could tell.
            amount: None,
            currency: None,
            fee: None,
        }),
        subscription: None,
        status: data.status_new,
    }
}

fn subscription(data: SubscriptionEvent) -> Mapped {
    let event_type = SubscriptionEventType::parse(data.subscription_event_type.as_deref());
    let status = RuStoreSubscriptionStatus::parse(data.status_new.as_deref());
    let period = Period::parse(data.period_new.as_deref());
    // An ended subscription is the newest fact whatever the event says it came from.
    let (event_type, entitlement) = if status.has_ended() {
        (EventType::SubscriptionExpired, Entitlement::Revoke)
    } else {
        match event_type {
            SubscriptionEventType::Activated => match period {
                Period::Trial => (EventType::SubscriptionTrialStarted, Entitlement::Grant),
                // A paid start is the ordinary case: an activation that names no period (or
                // one not documented for activations) is treated as one.
                Period::Promo | Period::Main | Period::Grace | Period::Hold | Period::Unknown => {
                    (EventType::SubscriptionStarted, Entitlement::Grant)
                }
            },
            SubscriptionEventType::Renewed => (EventType::SubscriptionRenewed, Entitlement::Grant),
            SubscriptionEventType::Cancelled => {
                (EventType::SubscriptionRenewalDisabled, Entitlement::None)
            }
            SubscriptionEventType::Resumed => (EventType::SubscriptionResumed, Entitlement::Grant),
            SubscriptionEventType::PaymentFailed => match period {
                // HOLD suspends access; in GRACE (or when RuStore does not say) access is kept,
                // and taking it away on a guess would be worse than keeping it.
                Period::Hold => (EventType::SubscriptionBillingIssue, Entitlement::Revoke),
                Period::Trial | Period::Promo | Period::Main | Period::Grace | Period::Unknown => {
                    (EventType::SubscriptionBillingIssue, Entitlement::None)
                }
            },
            SubscriptionEventType::Closed => (EventType::SubscriptionExpired, Entitlement::Revoke),
            SubscriptionEventType::Unknown => (EventType::StoreUnrecognized, Entitlement::None),
        }
    };
    Mapped {
        event_type,
        entitlement,
        occurred_at: data.event_time,
        product: product(data.product_code),
        transaction: None,
        subscription: Some(Subscription {
            id: data.purchase_id,
            status: status.schema(),
            period: period.schema(),
            billing_period: None,
            auto_renew: data.autorenewing,
        }),
        status: data.subscription_event_type,
    }
}

fn product(product_code: Option<String>) -> Option<Product> {
    product_code.map(|id| Product { id, name: None })
}

/// RFC 3339 with any offset and up to nine fractional digits (RuStore sends 3 or 7, and `+03:00`);
/// a time that does not parse is skipped rather than failing an authentic notification.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
