//! The IPN form as it arrives, decoded once, and the few fields storehook reads.
//!
//! An IPN is `application/x-www-form-urlencoded`, but its text is not UTF-8 by default: the bytes
//! behind the percent escapes are in the charset the body names in its own `charset` field
//! (windows-1252 when absent). So the body is split and percent-decoded as bytes first, and only
//! then turned into text.

use std::collections::HashSet;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// Every field of the form, decoded, in body order. A name given twice keeps its first value
/// everywhere (allow-lists, mapping and `raw`), so what is checked is what is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// Decode a body. Never fails: bytes that do not decode become U+FFFD or, for windows-1252,
    /// the character that byte stands for.
    pub(super) fn decode(body: &[u8]) -> Form {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = body
            .split(|b| *b == b'&')
            .filter_map(|pair| {
                let (name, value) = match pair.iter().position(|b| *b == b'=') {
                    Some(at) => (&pair[..at], &pair[at + 1..]),
                    None => (pair, &[][..]),
                };
                (!name.is_empty()).then(|| (percent_decode(name), percent_decode(value)))
            })
            .collect();
        // An unknown label is no reason to refuse a notification: fall back to PayPal's default.
        // `output_encoding` maps UTF-16 and the "replacement" labels to UTF-8, as browsers do for
        // forms, since a form body cannot be UTF-16.
        let encoding = pairs
            .iter()
            .find(|(name, _)| name == b"charset")
            .and_then(|(_, label)| Encoding::for_label(label))
            .map_or(WINDOWS_1252, Encoding::output_encoding);
        let mut seen = HashSet::with_capacity(pairs.len());
        let mut fields: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let name = decode_text(&name, encoding);
            if seen.insert(name.clone()) {
                fields.push((name, decode_text(&value, encoding)));
            }
        }
        Form { fields }
    }

    /// Every field, in body order.
    pub(super) fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// A field's value, trimmed; `None` when absent, empty or blank (PayPal sends `payment_fee=`
    /// for non-USD payments, meaning "not applicable").
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }
}

/// `+` is a space and `%XX` a byte (either case of hex); a `%` not followed by two hex digits is
/// kept as it is, since PayPal and Autodesk have both sent unescaped characters.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => match (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

/// Bytes to text in the declared charset, correcting the one lie seen in practice: Autodesk's
/// emulator sent UTF-8 under `charset=windows-1252`. Non-ASCII windows-1252 text is almost never
/// valid UTF-8 (`J\xF6rg` is not), so valid non-ASCII UTF-8 under a windows-1252 label is read as
/// UTF-8; and a value that is not valid UTF-8 under a UTF-8 label is read as windows-1252 rather
/// than losing its bytes to U+FFFD.
fn decode_text(bytes: &[u8], encoding: &'static Encoding) -> String {
    if encoding == WINDOWS_1252 || encoding == UTF_8 {
        match std::str::from_utf8(bytes) {
            Ok(text) if encoding == UTF_8 || !text.is_ascii() => text.to_owned(),
            _ => WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        }
    } else {
        encoding.decode_without_bom_handling(bytes).0.into_owned()
    }
}

/// PayPal's `txn_type`, with Autodesk's additions. Compared case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxnType {
    /// One-time purchase (a paid app).
    WebAccept,
    /// Shopping-cart purchase.
    Cart,
    /// Express Checkout purchase.
    ExpressCheckout,
    /// A subscription was created.
    SubscrSignup,
    /// A subscription payment (first or renewal).
    SubscrPayment,
    /// The buyer or seller cancelled a subscription: no more payments.
    SubscrCancel,
    /// The subscription's term ended.
    SubscrEot,
    /// A subscription payment attempt failed.
    SubscrFailed,
    /// The subscription's terms changed.
    SubscrModify,
    /// Autodesk: a free app was downloaded.
    Free,
    /// Autodesk: a trial app was started.
    Trial,
    /// Autodesk: a 30-day trial was started.
    Free30DayTrial,
    /// No `txn_type`: refunds, chargebacks and Autodesk's older free-app notifications.
    Absent,
    /// Any other value (PayPal has dozens: `adjustment`, `new_case`, `recurring_payment`, …).
    Unknown,
}

impl TxnType {
    pub(super) fn parse(value: Option<&str>) -> TxnType {
        let Some(value) = value else {
            return TxnType::Absent;
        };
        match value.to_ascii_lowercase().as_str() {
            "web_accept" => TxnType::WebAccept,
            "cart" => TxnType::Cart,
            "express_checkout" => TxnType::ExpressCheckout,
            "subscr_signup" => TxnType::SubscrSignup,
            "subscr_payment" => TxnType::SubscrPayment,
            "subscr_cancel" => TxnType::SubscrCancel,
            "subscr_eot" => TxnType::SubscrEot,
            "subscr_failed" => TxnType::SubscrFailed,
            "subscr_modify" => TxnType::SubscrModify,
            "free" => TxnType::Free,
            "trial" => TxnType::Trial,
            "free30daytrial" => TxnType::Free30DayTrial,
            _ => TxnType::Unknown,
        }
    }
}

/// PayPal's `payment_status`, an open set. Compared case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PaymentStatus {
    /// `Completed`, or `Processed` (a payment accepted, e.g. a mass payment).
    Completed,
    /// `Pending` (see `pending_reason`) or `Created` (German ELV payment started).
    Pending,
    /// Money given back to the buyer.
    Refunded,
    /// A chargeback or other reversal took the money back.
    Reversed,
    /// A reversal was cancelled: the seller won the dispute.
    CanceledReversal,
    /// `Failed`, `Denied` or `Declined` (the simulator's spelling).
    Failed,
    /// An authorization was voided.
    Voided,
    /// An authorization expired.
    Expired,
    /// No `payment_status`: subscription sign-ups, cancellations and the like.
    Absent,
    /// Any other value, kept as sent in `store_data.status`.
    Unknown,
}

impl PaymentStatus {
    pub(super) fn parse(value: Option<&str>) -> PaymentStatus {
        let Some(value) = value else {
            return PaymentStatus::Absent;
        };
        match value.to_ascii_lowercase().as_str() {
            "completed" | "processed" => PaymentStatus::Completed,
            "pending" | "created" => PaymentStatus::Pending,
            "refunded" => PaymentStatus::Refunded,
            "reversed" => PaymentStatus::Reversed,
            "canceled_reversal" => PaymentStatus::CanceledReversal,
            "failed" | "denied" | "declined" => PaymentStatus::Failed,
            "voided" => PaymentStatus::Voided,
            "expired" => PaymentStatus::Expired,
            _ => PaymentStatus::Unknown,
        }
    }
}

/// The fields storehook reads, each optional (the free-app form has ten fields, a refund has no
/// `txn_type`, a sign-up no `txn_id`), plus the whole form for `store_data.raw`.
#[derive(Debug, Clone)]
pub(super) struct Ipn {
    pub(super) form: Form,
    pub(super) txn_type: Option<String>,
    pub(super) payment_status: Option<String>,
    pub(super) txn_id: Option<String>,
    pub(super) parent_txn_id: Option<String>,
    pub(super) invoice: Option<String>,
    pub(super) subscr_id: Option<String>,
    pub(super) ipn_track_id: Option<String>,
    pub(super) test_ipn: Option<String>,

    pub(super) receiver_email: Option<String>,
    pub(super) business: Option<String>,
    pub(super) receiver_id: Option<String>,
    /// Autodesk's 19-digit app id: kept as a string, it does not fit every consumer's integers.
    pub(super) app_id: Option<String>,
    pub(super) item_number: Option<String>,
    pub(super) item_number1: Option<String>,
    pub(super) item_name: Option<String>,
    pub(super) item_name1: Option<String>,

    pub(super) payer_id: Option<String>,
    pub(super) payer_email: Option<String>,
    pub(super) buyer_adsk_account: Option<String>,
    pub(super) purchase_adsk_account: Option<String>,
    pub(super) residence_country: Option<String>,

    pub(super) mc_currency: Option<String>,
    pub(super) mc_gross: Option<String>,
    pub(super) payment_gross: Option<String>,
    pub(super) mc_fee: Option<String>,
    pub(super) payment_fee: Option<String>,

    pub(super) payment_date: Option<String>,
    pub(super) subscr_date: Option<String>,
    pub(super) period1: Option<String>,
    pub(super) amount1: Option<String>,
    pub(super) mc_amount1: Option<String>,
    pub(super) period3: Option<String>,
    pub(super) recurring: Option<String>,
}

impl Ipn {
    pub(super) fn from_form(form: Form) -> Ipn {
        let get = |name: &str| form.get(name).map(str::to_owned);
        Ipn {
            txn_type: get("txn_type"),
            payment_status: get("payment_status"),
            txn_id: get("txn_id"),
            parent_txn_id: get("parent_txn_id"),
            invoice: get("invoice"),
            subscr_id: get("subscr_id"),
            ipn_track_id: get("ipn_track_id"),
            test_ipn: get("test_ipn"),
            receiver_email: get("receiver_email"),
            business: get("business"),
            receiver_id: get("receiver_id"),
            app_id: get("appId"),
            item_number: get("item_number"),
            item_number1: get("item_number1"),
            item_name: get("item_name"),
            item_name1: get("item_name1"),
            payer_id: get("payer_id"),
            payer_email: get("payer_email"),
            buyer_adsk_account: get("buyer_adsk_account"),
            purchase_adsk_account: get("purchase_adsk_account"),
            residence_country: get("residence_country"),
            mc_currency: get("mc_currency"),
            mc_gross: get("mc_gross"),
            payment_gross: get("payment_gross"),
            mc_fee: get("mc_fee"),
            payment_fee: get("payment_fee"),
            payment_date: get("payment_date"),
            subscr_date: get("subscr_date"),
            period1: get("period1"),
            amount1: get("amount1"),
            mc_amount1: get("mc_amount1"),
            period3: get("period3"),
            recurring: get("recurring"),
            form,
        }
    }

    /// Whether the form carries any field that makes it an IPN at all.
    pub(super) fn is_recognizable(&self) -> bool {
        self.txn_type.is_some()
            || self.payment_status.is_some()
            || self.txn_id.is_some()
            || self.subscr_id.is_some()
    }
}
