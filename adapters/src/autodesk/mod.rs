//! Autodesk App Store IPN: PayPal Instant Payment Notifications relayed by Autodesk, which adds its
//! own fields (`appId`, `buyer_adsk_account`, …) and its own `txn_type`s for free and trial apps.
//! Store facts: `stores/autodesk-ipn.md`.
//!
//! ## Layout
//! - `wire`: the form decoded once (bytes, percent escapes, then the body's `charset`), and the
//!   fields storehook reads, all optional.
//! - `verify`: the source's allow-lists of receivers and apps.
//! - `map`: the exhaustive classification of `payment_status` × `txn_type` into [`Event`]s.
//! - [`money`] and [`date`]: amounts as integer minor units and PayPal's dates as UTC.
//!
//! ## Where each rejection comes from
//! [`Autodesk::verify`] rejects an empty body, and a body with none of `txn_type`,
//! `payment_status`, `txn_id` or `subscr_id`, as [`ErrorCategory::Malformed`]; and a notification
//! for another receiver or app (see [`Config`]) as [`ErrorCategory::Unauthenticated`]. Nothing else
//! is a rejection: an unknown charset falls back to windows-1252, an unreadable amount is reported
//! as no amount, an unreadable date as the time of receipt, an unknown kind as
//! `store.unrecognized`, because an authentic notification is never dropped. [`Autodesk::normalize`]
//! always gives exactly one event.
//!
//! PayPal's postback check (`cmd=_notify-validate`) is network I/O and so is not done here; it needs
//! the exact original bytes, which the caller still has.
//!
//! ## Idempotency keys
//! PayPal resends an IPN unchanged until it is acknowledged, and the same `txn_id` legitimately
//! appears in several notifications (`Pending`, then `Completed`). `ipn_track_id` cannot tell them
//! apart: Autodesk's samples reuse one value across a sign-up and its payment. So the key is built
//! from what identifies the notification's content:
//! - with a `txn_id`: `autodesk:<source>:txn:<txn_id>:<txn_type>:<payment_status>:<type>`: a
//!   payment's `Pending` and `Completed` differ by status; a refund or chargeback has its own
//!   `txn_id`; a dispute notice (`new_case`) about a payment differs by `txn_type`;
//! - else with a `subscr_id`: `autodesk:<source>:subscr:<subscr_id>:<txn_type>:<payment_status>:
//!   <date>:<type>`, the date being `payment_date`, else `subscr_date`, as sent: a sign-up and a
//!   cancellation differ by `txn_type`, two `subscr_failed` or `subscr_modify` by their date;
//! - else `autodesk:<source>:form:<uuid>:<type>`, the UUIDv5 of all decoded fields sorted by name.
//!
//! An absent part is empty, and `%` and `:` inside a part are percent-escaped, so distinct
//! notifications cannot collide through a value containing the separator. `<type>` is the event
//! type, so a notification that a later version classifies differently gets a new event.
//!
//! ## What the event holds
//! - `occurred_at`: `payment_date`, else `subscr_date`, read by [`date::parse`]; when unreadable,
//!   the time of receipt (the string stays in `store_data.raw`).
//! - `transaction.amount`: `mc_gross`, else `payment_gross`; `fee`: `mc_fee`, else `payment_fee`;
//!   both in minor units of `mc_currency` and null without it. Refunds and chargebacks are made
//!   negative and chargeback reversals positive, whatever sign the sender used.
//! - `customer.email`: `buyer_adsk_account`, else `purchase_adsk_account` (the Autodesk account that
//!   gets the app), else `payer_email`.
//! - `product.id`: `appId`, else `item_number`, else `item_number1` (carts).
//! - `store_data.raw`: every field as decoded, values untrimmed, in name order; a field given twice
//!   keeps its first value, as everywhere else.
//!
//! [`ErrorCategory::Malformed`]: crate::ErrorCategory::Malformed
//! [`ErrorCategory::Unauthenticated`]: crate::ErrorCategory::Unauthenticated

use serde::Deserialize;

use crate::{AdapterError, Context, Event, Store, StoreAdapter};

pub mod date;
mod map;
pub mod money;
mod verify;
mod wire;

/// An Autodesk source's allow-lists, as read from configuration (JSON, TOML, environment). An empty
/// list allows any value; a non-empty one rejects every notification that does not carry one of
/// the listed values in one of the list's fields, including one that carries none of those fields.
///
/// Autodesk's free and trial app notifications carry no receiver at all (only `appId`,
/// `item_number` and the buyer), so a source that receives them can only use `app_ids`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The publisher's PayPal e-mails (`receiver_email` or `business`), compared case-insensitively.
    #[serde(default)]
    pub receiver_emails: Vec<String>,
    /// The publisher's PayPal merchant ids (`receiver_id`).
    #[serde(default)]
    pub receiver_ids: Vec<String>,
    /// The publisher's apps: `appId` or `item_number` values.
    #[serde(default)]
    pub app_ids: Vec<String>,
}

/// The Autodesk IPN adapter.
#[derive(Debug)]
pub struct Autodesk;

/// A decoded IPN that passed the allow-lists; only [`Autodesk::verify`] makes one.
#[derive(Debug, Clone)]
pub struct Verified {
    form: wire::Form,
}

impl Verified {
    /// Every decoded field in body order (a repeated name keeps its first value).
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.form.fields()
    }

    /// Whether PayPal marked the notification as a sandbox one (`test_ipn=1`); a postback check
    /// must then go to PayPal's sandbox.
    pub fn is_sandbox(&self) -> bool {
        self.form.get("test_ipn") == Some("1")
    }
}

impl StoreAdapter for Autodesk {
    const STORE: Store = Store::Autodesk;
    type Config = Config;
    type Verified = Verified;

    fn verify(config: &Config, body: &[u8]) -> Result<Verified, AdapterError> {
        if body.trim_ascii().is_empty() {
            return Err(AdapterError::malformed(
                "empty body: an Autodesk IPN is a non-empty application/x-www-form-urlencoded form",
            ));
        }
        let form = wire::Form::decode(body);
        let ipn = wire::Ipn::read(&form);
        if !ipn.is_recognizable() {
            return Err(AdapterError::malformed(
                "not an IPN form: none of txn_type, payment_status, txn_id or subscr_id is present",
            ));
        }
        verify::allow_lists(config, &ipn)?;
        Ok(Verified { form })
    }

    fn normalize(verified: Verified, ctx: &Context<'_>) -> Result<Vec<Event>, AdapterError> {
        Ok(vec![map::event(verified.form, ctx)])
    }
}
