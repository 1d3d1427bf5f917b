//! From a verified IPN to the one event it becomes (DESIGN.md, "Type vocabulary and mapping").
//!
//! Classification reads `payment_status` and `txn_type` through closed enums and exhaustive
//! `match`es, in this order:
//! 1. `Refunded`, `Reversed`, `Canceled_Reversal`, `Voided`: about money already moved, whatever
//!    the `txn_type` (real refunds come with none).
//! 2. The subscription life-cycle types `subscr_signup`, `subscr_cancel`, `subscr_eot`,
//!    `subscr_failed`, `subscr_modify`: they are not payments, so a `payment_status` on them (seen
//!    in the wild: `subscr_failed` with `Completed`) must not turn a failed renewal into a grant.
//! 3. `Expired`, `Failed`/`Denied`/`Declined`, `Pending`/`Created`.
//! 4. `Completed`/`Processed`: Autodesk's `FREE`, `TRIAL`, `Free30DayTrial` keep their meaning;
//!    Autodesk's older free-app form (no `txn_type`, a zero gross) is a free download; anything
//!    else is a successful payment.
//! 5. No known status: Autodesk's free and trial types still say what happened; anything else is
//!    `store.unrecognized`.

use serde_json::{Map, Value};
use storehook_schema::{
    Customer, Entitlement, Environment, EventType, Product, SchemaVersion, StoreData, Subscription,
    SubscriptionPeriod, SubscriptionStatus, Transaction, event_id,
};

use super::wire::{Ipn, PaymentStatus, TxnType};
use super::{date, money};
use crate::{Context, Event, Store};

pub(super) fn event(ipn: &Ipn, ctx: &Context<'_>) -> Event {
    let txn_type = TxnType::parse(ipn.txn_type.as_deref());
    let status = PaymentStatus::parse(ipn.payment_status.as_deref());
    let event_type = classify(txn_type, status, ipn);
    let idempotency_key = idempotency_key(ctx.source, ipn, event_type);
    Event {
        schema_version: SchemaVersion,
        id: event_id(&idempotency_key),
        idempotency_key,
        event_type,
        tenant: ctx.tenant.to_owned(),
        source: ctx.source.to_owned(),
        store: Store::Autodesk,
        environment: environment(ipn),
        entitlement: entitlement(event_type),
        occurred_at: ipn
            .payment_date
            .as_deref()
            .or(ipn.subscr_date.as_deref())
            .and_then(date::parse)
            .unwrap_or(ctx.received_at),
        received_at: ctx.received_at,
        customer: customer(ipn),
        product: product(ipn),
        transaction: transaction(ipn, event_type),
        subscription: subscription(ipn, event_type),
        store_data: StoreData {
            notification_id: ipn.ipn_track_id.clone(),
            notification_type: ipn.txn_type.clone(),
            status: ipn.payment_status.clone(),
            raw: raw(ipn),
        },
    }
}

fn classify(txn_type: TxnType, status: PaymentStatus, ipn: &Ipn) -> EventType {
    use EventType as E;
    use PaymentStatus as S;
    use TxnType as T;

    let moves_money_back = matches!(
        status,
        S::Refunded | S::Reversed | S::CanceledReversal | S::Voided
    );
    if !moves_money_back && let Some(event_type) = life_cycle(txn_type, ipn) {
        return event_type;
    }
    match status {
        S::Refunded => E::TransactionRefunded,
        S::Reversed => E::TransactionChargedBack,
        S::CanceledReversal => E::TransactionChargebackReversed,
        S::Voided => E::TransactionVoided,
        S::Expired => E::TransactionExpired,
        S::Failed => E::TransactionFailed,
        S::Pending => E::TransactionPending,
        S::Completed => match txn_type {
            T::Free => E::AccessGranted,
            T::Trial | T::Free30DayTrial => E::SubscriptionTrialStarted,
            T::Absent if is_free_download(ipn) => E::AccessGranted,
            T::WebAccept
            | T::Cart
            | T::ExpressCheckout
            | T::SubscrPayment
            | T::SubscrSignup
            | T::SubscrCancel
            | T::SubscrEot
            | T::SubscrFailed
            | T::SubscrModify
            | T::Absent
            | T::Unknown => E::TransactionSucceeded,
        },
        S::Absent | S::Unknown => match txn_type {
            T::Free => E::AccessGranted,
            T::Trial | T::Free30DayTrial => E::SubscriptionTrialStarted,
            T::WebAccept
            | T::Cart
            | T::ExpressCheckout
            | T::SubscrPayment
            | T::SubscrSignup
            | T::SubscrCancel
            | T::SubscrEot
            | T::SubscrFailed
            | T::SubscrModify
            | T::Absent
            | T::Unknown => E::StoreUnrecognized,
        },
    }
}

/// The subscription life-cycle notifications, which say what happened by their `txn_type` alone.
fn life_cycle(txn_type: TxnType, ipn: &Ipn) -> Option<EventType> {
    use EventType as E;
    use TxnType as T;
    match txn_type {
        T::SubscrSignup if has_trial(ipn) => Some(E::SubscriptionTrialStarted),
        T::SubscrSignup => Some(E::SubscriptionStarted),
        T::SubscrCancel => Some(E::SubscriptionRenewalDisabled),
        T::SubscrEot => Some(E::SubscriptionExpired),
        T::SubscrFailed => Some(E::SubscriptionBillingIssue),
        T::SubscrModify => Some(E::SubscriptionModified),
        T::WebAccept
        | T::Cart
        | T::ExpressCheckout
        | T::SubscrPayment
        | T::Free
        | T::Trial
        | T::Free30DayTrial
        | T::Absent
        | T::Unknown => None,
    }
}

/// A PayPal subscription starts with a trial when the button defined a first period
/// (`period1`, priced by `amount1`/`mc_amount1`).
fn has_trial(ipn: &Ipn) -> bool {
    ipn.period1.is_some() || ipn.amount1.is_some() || ipn.mc_amount1.is_some()
}

/// Autodesk's older free-app form: `Completed`, no `txn_type` and a zero gross. A PayPal payment
/// always names its `txn_type`; the only PayPal notifications without one are refunds and
/// reversals, classified before this. So a completed, typeless, zero-amount notification moved no
/// money: it is the download of a free app, as Autodesk's own sample listener documents it.
fn is_free_download(ipn: &Ipn) -> bool {
    ipn.mc_gross
        .as_deref()
        .or(ipn.payment_gross.as_deref())
        .is_some_and(money::is_zero)
}

/// What a backend that only manages access must do, per the normative table. Types this adapter
/// never produces still get their table value, so the match stays exhaustive and honest.
fn entitlement(event_type: EventType) -> Entitlement {
    use EventType as E;
    match event_type {
        E::TransactionAuthorized
        | E::TransactionSucceeded
        | E::TransactionChargebackReversed
        | E::SubscriptionStarted
        | E::SubscriptionTrialStarted
        | E::SubscriptionRenewed
        | E::SubscriptionResumed
        | E::AccessGranted => Entitlement::Grant,
        E::TransactionVoided
        | E::TransactionRefunded
        | E::TransactionChargedBack
        | E::SubscriptionExpired => Entitlement::Revoke,
        // PayPal keeps retrying a failed subscription payment (`reattempt`), and the buyer keeps
        // access meanwhile: a grace period, not a hold.
        E::SubscriptionBillingIssue
        | E::TransactionPending
        | E::TransactionFailed
        | E::TransactionCanceled
        | E::TransactionExpired
        | E::SubscriptionRenewalDisabled
        | E::SubscriptionModified
        | E::TestPing
        | E::StoreUnrecognized => Entitlement::None,
    }
}

fn environment(ipn: &Ipn) -> Environment {
    if ipn.test_ipn.as_deref() == Some("1") {
        Environment::Sandbox
    } else {
        Environment::Production
    }
}

/// The idempotency key. See the module documentation of `autodesk` for the scheme and why.
fn idempotency_key(source: &str, ipn: &Ipn, event_type: EventType) -> String {
    let part = |value: Option<&str>| escape(value.unwrap_or(""));
    let kind = event_type.as_str();
    if let Some(txn_id) = ipn.txn_id.as_deref() {
        format!(
            "autodesk:{source}:txn:{}:{}:{}:{kind}",
            escape(txn_id),
            part(ipn.txn_type.as_deref()),
            part(ipn.payment_status.as_deref()),
        )
    } else if let Some(subscr_id) = ipn.subscr_id.as_deref() {
        format!(
            "autodesk:{source}:subscr:{}:{}:{}:{}:{kind}",
            escape(subscr_id),
            part(ipn.txn_type.as_deref()),
            part(ipn.payment_status.as_deref()),
            part(ipn.payment_date.as_deref().or(ipn.subscr_date.as_deref())),
        )
    } else {
        let mut fields = ipn.form.fields().to_vec();
        fields.sort();
        let canonical = serde_json::to_string(&fields).unwrap_or_default();
        format!("autodesk:{source}:form:{}:{kind}", event_id(&canonical))
    }
}

/// Escapes the key's separator, so that no two different field values can give the same key.
fn escape(value: &str) -> String {
    value.replace('%', "%25").replace(':', "%3A")
}

fn customer(ipn: &Ipn) -> Option<Customer> {
    let customer = Customer {
        id: ipn.payer_id.clone(),
        // The Autodesk account is who gets the app; the PayPal payer may be someone else paying.
        email: ipn
            .buyer_adsk_account
            .as_ref()
            .or(ipn.purchase_adsk_account.as_ref())
            .or(ipn.payer_email.as_ref())
            .cloned(),
        country: ipn.residence_country.as_deref().and_then(country_code),
    };
    (customer.id.is_some() || customer.email.is_some() || customer.country.is_some())
        .then_some(customer)
}

/// ISO 3166-1 alpha-2, upper case; anything else is not reported as a country.
fn country_code(text: &str) -> Option<String> {
    (text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| text.to_ascii_uppercase())
}

fn product(ipn: &Ipn) -> Option<Product> {
    let id = ipn
        .app_id
        .as_ref()
        .or(ipn.item_number.as_ref())
        .or(ipn.item_number1.as_ref())?;
    Some(Product {
        id: id.clone(),
        name: ipn.item_name.as_ref().or(ipn.item_name1.as_ref()).cloned(),
    })
}

/// Present whenever the notification names a transaction or an amount.
fn transaction(ipn: &Ipn, event_type: EventType) -> Option<Transaction> {
    let gross = ipn.mc_gross.as_deref().or(ipn.payment_gross.as_deref());
    if ipn.txn_id.is_none() && gross.is_none() {
        return None;
    }
    let currency = ipn.mc_currency.as_deref().and_then(money::currency_code);
    // Without a currency an amount cannot be read (its decimals depend on it) nor reported (the
    // schema pairs every amount with its currency): the text stays in `raw`.
    let in_units = |text: Option<&str>| {
        text.zip(currency.as_deref())
            .and_then(|(text, currency)| money::minor_units(text, currency))
    };
    let amount = in_units(gross).and_then(|amount| match event_type {
        // The schema's sign convention, whatever the sender's: PayPal's simulator sends
        // chargebacks with positive amounts, live refunds come negative.
        EventType::TransactionRefunded | EventType::TransactionChargedBack => {
            Some(if amount > 0 { -amount } else { amount })
        }
        EventType::TransactionChargebackReversed => amount.checked_abs(),
        _ => Some(amount),
    });
    Some(Transaction {
        id: ipn.txn_id.clone(),
        original_id: ipn.parent_txn_id.clone(),
        order_id: ipn.invoice.clone(),
        amount,
        fee: in_units(ipn.mc_fee.as_deref().or(ipn.payment_fee.as_deref())),
        currency,
    })
}

/// Present for subscription events and for any notification naming a `subscr_id`.
fn subscription(ipn: &Ipn, event_type: EventType) -> Option<Subscription> {
    use EventType as E;
    use SubscriptionPeriod as P;
    use SubscriptionStatus as S;

    let (status, period) = match event_type {
        E::SubscriptionStarted => (Some(S::Active), Some(P::Normal)),
        E::SubscriptionTrialStarted => (Some(S::Active), Some(trial_kind(ipn))),
        // Cancelling stops the payments, not the access: that ends with `subscr_eot`.
        E::SubscriptionRenewalDisabled | E::SubscriptionModified => (Some(S::Active), None),
        E::SubscriptionBillingIssue => (Some(S::Active), Some(P::Grace)),
        E::SubscriptionExpired => (Some(S::Expired), None),
        E::TransactionSucceeded if ipn.subscr_id.is_some() => (Some(S::Active), Some(P::Normal)),
        E::TransactionSucceeded
        | E::TransactionPending
        | E::TransactionAuthorized
        | E::TransactionFailed
        | E::TransactionCanceled
        | E::TransactionExpired
        | E::TransactionVoided
        | E::TransactionRefunded
        | E::TransactionChargedBack
        | E::TransactionChargebackReversed
        | E::SubscriptionRenewed
        | E::SubscriptionResumed
        | E::AccessGranted
        | E::TestPing
        | E::StoreUnrecognized => {
            // Only a notification about a subscription carries one; its state is not told here.
            ipn.subscr_id.as_ref()?;
            (None, None)
        }
    };
    let auto_renew = match event_type {
        E::SubscriptionRenewalDisabled | E::SubscriptionExpired => Some(false),
        _ => match ipn.recurring.as_deref() {
            Some("1") => Some(true),
            Some("0") => Some(false),
            _ => None,
        },
    };
    Some(Subscription {
        id: ipn.subscr_id.clone(),
        status,
        period,
        billing_period: ipn.period3.as_deref().and_then(billing_period),
        auto_renew,
    })
}

/// A paid first period (`amount1` above zero) is a discounted introduction rather than a free trial.
fn trial_kind(ipn: &Ipn) -> SubscriptionPeriod {
    let paid = ipn
        .mc_amount1
        .as_deref()
        .or(ipn.amount1.as_deref())
        .is_some_and(money::is_positive);
    if paid {
        SubscriptionPeriod::Intro
    } else {
        SubscriptionPeriod::Trial
    }
}

/// PayPal's `period3` (`1 M`, `7 D`, `1 Y`, `2 W`) as an ISO 8601 duration.
fn billing_period(text: &str) -> Option<String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let unit = compact.chars().last()?;
    let count = &compact[..compact.len() - unit.len_utf8()];
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let count: u32 = count.parse().ok()?;
    let unit = unit.to_ascii_uppercase();
    (count > 0 && matches!(unit, 'D' | 'W' | 'M' | 'Y')).then(|| format!("P{count}{unit}"))
}

/// Every decoded field, as sent (untrimmed), as a JSON object of strings.
fn raw(ipn: &Ipn) -> Value {
    Value::Object(
        ipn.form
            .fields()
            .iter()
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect::<Map<String, Value>>(),
    )
}
