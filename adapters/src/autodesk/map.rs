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

use storehook_schema::{
    Customer, Entitlement, Environment, EventType, Product, RawJson, SchemaVersion, StoreData,
    Subscription, SubscriptionPeriod, SubscriptionStatus, Transaction, event_id,
};

use super::wire::{Form, Ipn, PaymentStatus, TxnType};
use super::{date, money};
use crate::{Context, Event, Store};

pub(super) fn event(form: Form, ctx: &Context<'_>) -> Event {
    let mut event = event_from(&form, ctx);
    // The decoded text moves into `raw` rather than being copied, so this comes last.
    event.store_data.raw = form.into_raw();
    event
}

/// The event with `store_data.raw` still null.
fn event_from(form: &Form, ctx: &Context<'_>) -> Event {
    let ipn = &Ipn::read(form);
    let txn_type = TxnType::parse(ipn.txn_type);
    let status = PaymentStatus::parse(ipn.payment_status);
    let event_type = classify(txn_type, status, ipn);
    let idempotency_key = idempotency_key(ctx.source, form, ipn, event_type);
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
            .or(ipn.subscr_date)
            .and_then(date::parse)
            .unwrap_or(ctx.received_at),
        received_at: ctx.received_at,
        customer: customer(ipn),
        product: product(ipn),
        transaction: transaction(ipn, event_type),
        subscription: subscription(ipn, event_type),
        store_data: StoreData {
            notification_id: ipn.ipn_track_id.map(str::to_owned),
            notification_type: ipn.txn_type.map(str::to_owned),
            status: ipn.payment_status.map(str::to_owned),
            raw: RawJson::null(),
        },
    }
}

fn classify(txn_type: TxnType, status: PaymentStatus, ipn: &Ipn<'_>) -> EventType {
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
fn life_cycle(txn_type: TxnType, ipn: &Ipn<'_>) -> Option<EventType> {
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
fn has_trial(ipn: &Ipn<'_>) -> bool {
    ipn.period1.is_some() || ipn.amount1.is_some() || ipn.mc_amount1.is_some()
}

/// Autodesk's older free-app form: `Completed`, no `txn_type` and a zero gross. A PayPal payment
/// always names its `txn_type`; the only PayPal notifications without one are refunds and
/// reversals, classified before this. So a completed, typeless, zero-amount notification moved no
/// money: it is the download of a free app, as Autodesk's own sample listener documents it.
fn is_free_download(ipn: &Ipn<'_>) -> bool {
    ipn.mc_gross
        .or(ipn.payment_gross)
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

fn environment(ipn: &Ipn<'_>) -> Environment {
    if ipn.test_ipn == Some("1") {
        Environment::Sandbox
    } else {
        Environment::Production
    }
}

/// The idempotency key. See the module documentation of `autodesk` for the scheme and why.
fn idempotency_key(source: &str, form: &Form, ipn: &Ipn<'_>, event_type: EventType) -> String {
    let kind = event_type.as_str();
    let mut key = String::with_capacity(128);
    key.push_str("autodesk:");
    key.push_str(source);
    if let Some(txn_id) = ipn.txn_id {
        key.push_str(":txn");
        for part in [Some(txn_id), ipn.txn_type, ipn.payment_status] {
            key.push(':');
            push_escaped(&mut key, part.unwrap_or(""));
        }
    } else if let Some(subscr_id) = ipn.subscr_id {
        key.push_str(":subscr");
        let date = ipn.payment_date.or(ipn.subscr_date);
        for part in [Some(subscr_id), ipn.txn_type, ipn.payment_status, date] {
            key.push(':');
            push_escaped(&mut key, part.unwrap_or(""));
        }
    } else {
        let mut fields: Vec<(&str, &str)> = form.fields().collect();
        fields.sort();
        let canonical = serde_json::to_string(&fields).unwrap_or_default();
        key.push_str(":form:");
        key.push_str(&event_id(&canonical).to_string());
    }
    key.push(':');
    key.push_str(kind);
    key
}

/// Appends `value` with the key's separator escaped, so that no two different field values can
/// give the same key.
fn push_escaped(key: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '%' => key.push_str("%25"),
            ':' => key.push_str("%3A"),
            _ => key.push(c),
        }
    }
}

fn customer(ipn: &Ipn<'_>) -> Option<Customer> {
    let customer = Customer {
        id: ipn.payer_id.map(str::to_owned),
        // The Autodesk account is who gets the app; the PayPal payer may be someone else paying.
        email: ipn
            .buyer_adsk_account
            .or(ipn.purchase_adsk_account)
            .or(ipn.payer_email)
            .map(str::to_owned),
        country: ipn.residence_country.and_then(country_code),
    };
    (customer.id.is_some() || customer.email.is_some() || customer.country.is_some())
        .then_some(customer)
}

/// ISO 3166-1 alpha-2, upper case; anything else is not reported as a country.
fn country_code(text: &str) -> Option<String> {
    (text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| text.to_ascii_uppercase())
}

fn product(ipn: &Ipn<'_>) -> Option<Product> {
    let id = ipn.app_id.or(ipn.item_number).or(ipn.item_number1)?;
    Some(Product {
        id: id.to_owned(),
        name: ipn.item_name.or(ipn.item_name1).map(str::to_owned),
    })
}

/// Present whenever the notification names a transaction or an amount.
fn transaction(ipn: &Ipn<'_>, event_type: EventType) -> Option<Transaction> {
    let gross = ipn.mc_gross.or(ipn.payment_gross);
    if ipn.txn_id.is_none() && gross.is_none() {
        return None;
    }
    let currency = ipn.mc_currency.and_then(money::currency_code);
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
        id: ipn.txn_id.map(str::to_owned),
        original_id: ipn.parent_txn_id.map(str::to_owned),
        order_id: ipn.invoice.map(str::to_owned),
        amount,
        fee: in_units(ipn.mc_fee.or(ipn.payment_fee)),
        currency,
    })
}

/// Present for subscription events and for any notification naming a `subscr_id`.
fn subscription(ipn: &Ipn<'_>, event_type: EventType) -> Option<Subscription> {
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
            ipn.subscr_id?;
            (None, None)
        }
    };
    let auto_renew = match event_type {
        E::SubscriptionRenewalDisabled | E::SubscriptionExpired => Some(false),
        _ => match ipn.recurring {
            Some("1") => Some(true),
            Some("0") => Some(false),
            _ => None,
        },
    };
    Some(Subscription {
        id: ipn.subscr_id.map(str::to_owned),
        status,
        period,
        billing_period: ipn.period3.and_then(billing_period),
        auto_renew,
    })
}

/// A paid first period (`amount1` above zero) is a discounted introduction rather than a free trial.
fn trial_kind(ipn: &Ipn<'_>) -> SubscriptionPeriod {
    let paid = ipn
        .mc_amount1
        .or(ipn.amount1)
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
