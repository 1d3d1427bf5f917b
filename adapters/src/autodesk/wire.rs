//! The IPN form as it arrives, decoded once, and the few fields storehook reads.
//!
//! An IPN is `application/x-www-form-urlencoded`, but its text is not UTF-8 by default: the bytes
//! behind the percent escapes are in the charset the body names in its own `charset` field
//! (windows-1252 when absent). So the body is split and percent-decoded as bytes first, and only
//! then turned into text.

use std::ops::Range;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use storehook_schema::RawJson;

/// Every field of the form, decoded. A name given twice keeps its first value everywhere
/// (allow-lists, mapping and `raw`), so what is checked is what is used.
///
/// The decoded names and values sit in one string, so that decoding a form of forty fields makes a
/// handful of allocations rather than eighty.
#[derive(Debug, Clone)]
pub(super) struct Form {
    /// Every decoded name and value: an ASCII body as it is, followed by the pieces that needed
    /// decoding.
    text: String,
    /// In body order, each name once: where its name and its value are in `text`.
    fields: Vec<(Range<usize>, Range<usize>)>,
    /// Positions in `fields`, in name order: the order of `store_data.raw`, found once while
    /// looking for repeated names.
    by_name: Vec<usize>,
}

impl Form {
    /// Decode a body. Never fails: bytes that do not decode become U+FFFD or, for windows-1252,
    /// the character that byte stands for.
    pub(super) fn decode(body: &[u8]) -> Form {
        let pairs = pairs(body);
        let encoding = charset(body, &pairs);
        // The usual body is ASCII, everything else percent-escaped. Then it is text already, and
        // a piece without escapes reads the same in every charset a form can be in; only the
        // escaped pieces need decoding.
        let ascii = std::str::from_utf8(body)
            .ok()
            .filter(|text| text.is_ascii() && encoding.is_ascii_compatible());
        // An ASCII body is copied once, whole: a piece without escapes is then where it was in
        // the body, and only decoded pieces, never longer than their escaped form, are appended
        // after it.
        let mut text = String::with_capacity(body.len().saturating_mul(2));
        text.push_str(ascii.unwrap_or_default());
        let mut scratch = Vec::new();
        let mut push = |text: &mut String, span: &Span| match ascii {
            Some(_) if !span.escaped => span.range.clone(),
            _ => {
                let start = text.len();
                decode_text(text, span.decode(body, &mut scratch), encoding);
                start..text.len()
            }
        };
        let fields = pairs
            .iter()
            .map(|(name, value)| (push(&mut text, name), push(&mut text, value)))
            .collect();
        Form::first_of_each_name(text, fields)
    }

    /// Keeps the first field of each name, in O(n log n) however many fields a body has: sorting
    /// the positions by name, then position, puts each name's first position at the head of its
    /// run. Names are compared after decoding: two spellings of a name in the body are one name.
    fn first_of_each_name(text: String, mut fields: Vec<(Range<usize>, Range<usize>)>) -> Form {
        let name = |position: usize| {
            fields
                .get(position)
                .and_then(|(name, _)| text.get(name.clone()))
                .unwrap_or_default()
        };
        // Most names differ in their first eight bytes, so the positions are sorted by those as
        // one integer (a cheap sort of integer pairs), and only the runs that share them
        // (`payment_date`, `payment_gross`, …) are then sorted by the whole name.
        let mut keyed: Vec<(u64, usize)> = (0..fields.len())
            .map(|position| (prefix_key(name(position)), position))
            .collect();
        keyed.sort_unstable();
        for run in keyed.chunk_by_mut(|a, b| a.0 == b.0) {
            if run.len() > 1 {
                run.sort_unstable_by(|a, b| name(a.1).cmp(name(b.1)).then(a.1.cmp(&b.1)));
            }
        }
        let mut by_name: Vec<usize> = keyed.into_iter().map(|(_, position)| position).collect();
        by_name.dedup_by(|later, first| name(*later) == name(*first));
        if by_name.len() < fields.len() {
            let mut keep = vec![false; fields.len()];
            for &position in &by_name {
                keep[position] = true;
            }
            // Where each kept field moves once the repeats before it are gone.
            let mut renumbered = Vec::with_capacity(fields.len());
            let mut next = 0;
            for &kept in &keep {
                renumbered.push(next);
                next += usize::from(kept);
            }
            for position in &mut by_name {
                *position = renumbered[*position];
            }
            let mut keep = keep.into_iter();
            fields.retain(|_| keep.next().unwrap_or(true));
        }
        Form {
            text,
            fields,
            by_name,
        }
    }

    /// One field's name and value.
    fn field(&self, (name, value): &(Range<usize>, Range<usize>)) -> (&str, &str) {
        let piece = |range: &Range<usize>| self.text.get(range.clone()).unwrap_or_default();
        (piece(name), piece(value))
    }

    /// Every field, in body order.
    pub(super) fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.fields.iter().map(|field| self.field(field))
    }

    /// Every decoded field, as sent (untrimmed), as a JSON object of strings in name order:
    /// `store_data.raw`. The decoded text moves into it.
    pub(super) fn into_raw(self) -> RawJson {
        let members = self
            .by_name
            .iter()
            .map(|&position| self.fields.get(position).cloned().unwrap_or_default())
            .collect();
        // The ranges are pieces of the text by construction.
        RawJson::string_object(self.text, members).unwrap_or_else(RawJson::null)
    }

    /// A field's value, trimmed; `None` when absent, empty or blank (PayPal sends `payment_fee=`
    /// for non-USD payments, meaning "not applicable").
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.fields()
            .find(|(field, _)| *field == name)
            .and_then(|(_, value)| present(value))
    }
}

/// A value trimmed, `None` when that leaves nothing.
fn present(value: &str) -> Option<&str> {
    Some(value.trim()).filter(|value| !value.is_empty())
}

/// The first eight bytes of a name as a big-endian integer, zero-padded: integers compare as the
/// names do, except that names equal in their first eight bytes, or equal but for trailing zero
/// bytes, compare equal and need a full comparison.
fn prefix_key(name: &str) -> u64 {
    let mut key = [0; 8];
    for (slot, byte) in key.iter_mut().zip(name.bytes()) {
        *slot = byte;
    }
    u64::from_be_bytes(key)
}

/// Where a name or a value is in the body, and whether it holds escapes (`+`, `%`) to decode.
#[derive(Debug, Clone)]
struct Span {
    range: Range<usize>,
    escaped: bool,
}

impl Span {
    /// The bytes it stands for: `+` is a space and `%XX` a byte (either case of hex); a `%` not
    /// followed by two hex digits is kept as it is, since PayPal and Autodesk have both sent
    /// unescaped characters. Borrowed from the body when there is nothing to decode, else decoded
    /// into `scratch`.
    fn decode<'a>(&self, body: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
        let raw = body.get(self.range.clone()).unwrap_or_default();
        if self.escaped {
            scratch.clear();
            percent_decode(raw, scratch);
            scratch
        } else {
            raw
        }
    }
}

/// The `name=value` pairs of the body, skipping pairs without a name (a pair without `=` has an
/// empty value), found in one pass over the bytes that also notes which pieces hold escapes.
fn pairs(body: &[u8]) -> Vec<(Span, Span)> {
    let mut pairs = Vec::with_capacity(body.iter().filter(|&&b| b == b'&').count() + 1);
    let mut start = 0;
    let mut equals = None;
    // Whether the name, then the value, of the current pair holds an escape.
    let mut escaped = [false; 2];
    let mut finish = |end: usize, equals: Option<usize>, escaped: [bool; 2]| {
        let (name, value) = match equals {
            Some(at) => (start..at, at + 1..end),
            None => (start..end, end..end),
        };
        if !name.is_empty() {
            pairs.push((
                Span {
                    range: name,
                    escaped: escaped[0],
                },
                Span {
                    range: value,
                    escaped: escaped[1],
                },
            ));
        }
        start = end + 1;
    };
    for (at, &b) in body.iter().enumerate() {
        match b {
            b'&' => {
                finish(at, equals.take(), escaped);
                escaped = [false; 2];
            }
            b'=' if equals.is_none() => equals = Some(at),
            b'+' | b'%' => escaped[usize::from(equals.is_some())] = true,
            _ => {}
        }
    }
    finish(body.len(), equals, escaped);
    pairs
}

/// The charset the body names in its first `charset` field. An unknown label is no reason to
/// refuse a notification: it falls back to PayPal's default, windows-1252. `output_encoding` maps
/// UTF-16 and the "replacement" labels to UTF-8, as browsers do for forms, since a form body
/// cannot be UTF-16.
fn charset(body: &[u8], pairs: &[(Span, Span)]) -> &'static Encoding {
    // A name without escapes is itself, so only one of the right length can be `charset`.
    let may_be_charset = |name: &Span| name.escaped || name.range.len() == b"charset".len();
    let mut scratch = Vec::new();
    let label = pairs
        .iter()
        .find(|(name, _)| may_be_charset(name) && name.decode(body, &mut scratch) == b"charset")
        .map(|(_, label)| label);
    label
        .and_then(|label| Encoding::for_label(label.decode(body, &mut scratch)))
        .map_or(WINDOWS_1252, Encoding::output_encoding)
}

/// Decodes `+` and `%XX` (see [`Span::decode`]).
fn percent_decode(input: &[u8], out: &mut Vec<u8>) {
    fn hex(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    out.reserve(input.len());
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
}

/// Bytes to text in the declared charset, correcting the one lie seen in practice: Autodesk's
/// emulator sent UTF-8 under `charset=windows-1252`. Non-ASCII windows-1252 text is almost never
/// valid UTF-8 (`J\xF6rg` is not), so valid non-ASCII UTF-8 under a windows-1252 label is read as
/// UTF-8; and a value that is not valid UTF-8 under a UTF-8 label is read as windows-1252 rather
/// than losing its bytes to U+FFFD. ASCII reads the same under both labels. The text is appended
/// to `out`.
fn decode_text(out: &mut String, bytes: &[u8], encoding: &'static Encoding) {
    if encoding != WINDOWS_1252 && encoding != UTF_8 {
        out.push_str(&encoding.decode_without_bom_handling(bytes).0);
        return;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => out.push_str(text),
        Err(_) => out.push_str(&WINDOWS_1252.decode_without_bom_handling(bytes).0),
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
    const NAMES: [(&'static str, TxnType); 12] = [
        ("web_accept", TxnType::WebAccept),
        ("cart", TxnType::Cart),
        ("express_checkout", TxnType::ExpressCheckout),
        ("subscr_signup", TxnType::SubscrSignup),
        ("subscr_payment", TxnType::SubscrPayment),
        ("subscr_cancel", TxnType::SubscrCancel),
        ("subscr_eot", TxnType::SubscrEot),
        ("subscr_failed", TxnType::SubscrFailed),
        ("subscr_modify", TxnType::SubscrModify),
        ("free", TxnType::Free),
        ("trial", TxnType::Trial),
        ("free30daytrial", TxnType::Free30DayTrial),
    ];

    pub(super) fn parse(value: Option<&str>) -> TxnType {
        let Some(value) = value else {
            return TxnType::Absent;
        };
        Self::NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(value))
            .map_or(TxnType::Unknown, |(_, txn_type)| *txn_type)
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
    const NAMES: [(&'static str, PaymentStatus); 12] = [
        ("completed", PaymentStatus::Completed),
        ("processed", PaymentStatus::Completed),
        ("pending", PaymentStatus::Pending),
        ("created", PaymentStatus::Pending),
        ("refunded", PaymentStatus::Refunded),
        ("reversed", PaymentStatus::Reversed),
        ("canceled_reversal", PaymentStatus::CanceledReversal),
        ("failed", PaymentStatus::Failed),
        ("denied", PaymentStatus::Failed),
        ("declined", PaymentStatus::Failed),
        ("voided", PaymentStatus::Voided),
        ("expired", PaymentStatus::Expired),
    ];

    pub(super) fn parse(value: Option<&str>) -> PaymentStatus {
        let Some(value) = value else {
            return PaymentStatus::Absent;
        };
        Self::NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(value))
            .map_or(PaymentStatus::Unknown, |(_, status)| *status)
    }
}

/// The fields storehook reads, each optional (the free-app form has ten fields, a refund has no
/// `txn_type`, a sign-up no `txn_id`), trimmed and borrowed from the form, which stays whole for
/// `store_data.raw`.
#[derive(Debug, Clone, Default)]
pub(super) struct Ipn<'a> {
    pub(super) txn_type: Option<&'a str>,
    pub(super) payment_status: Option<&'a str>,
    pub(super) txn_id: Option<&'a str>,
    pub(super) parent_txn_id: Option<&'a str>,
    pub(super) invoice: Option<&'a str>,
    pub(super) subscr_id: Option<&'a str>,
    pub(super) ipn_track_id: Option<&'a str>,
    pub(super) test_ipn: Option<&'a str>,

    pub(super) receiver_email: Option<&'a str>,
    pub(super) business: Option<&'a str>,
    pub(super) receiver_id: Option<&'a str>,
    /// Autodesk's 19-digit app id: kept as a string, it does not fit every consumer's integers.
    pub(super) app_id: Option<&'a str>,
    pub(super) item_number: Option<&'a str>,
    pub(super) item_number1: Option<&'a str>,
    pub(super) item_name: Option<&'a str>,
    pub(super) item_name1: Option<&'a str>,

    pub(super) payer_id: Option<&'a str>,
    pub(super) payer_email: Option<&'a str>,
    pub(super) buyer_adsk_account: Option<&'a str>,
    pub(super) purchase_adsk_account: Option<&'a str>,
    pub(super) residence_country: Option<&'a str>,

    pub(super) mc_currency: Option<&'a str>,
    pub(super) mc_gross: Option<&'a str>,
    pub(super) payment_gross: Option<&'a str>,
    pub(super) mc_fee: Option<&'a str>,
    pub(super) payment_fee: Option<&'a str>,

    pub(super) payment_date: Option<&'a str>,
    pub(super) subscr_date: Option<&'a str>,
    pub(super) period1: Option<&'a str>,
    pub(super) amount1: Option<&'a str>,
    pub(super) mc_amount1: Option<&'a str>,
    pub(super) period3: Option<&'a str>,
    pub(super) recurring: Option<&'a str>,
}

impl<'a> Ipn<'a> {
    /// Reads the known fields in one pass over the form (its names are already unique). A blank
    /// value counts as absent, as [`Form::get`] has it.
    pub(super) fn read(form: &'a Form) -> Ipn<'a> {
        let mut ipn = Ipn::default();
        for (name, value) in form.fields() {
            let slot = match name {
                "txn_type" => &mut ipn.txn_type,
                "payment_status" => &mut ipn.payment_status,
                "txn_id" => &mut ipn.txn_id,
                "parent_txn_id" => &mut ipn.parent_txn_id,
                "invoice" => &mut ipn.invoice,
                "subscr_id" => &mut ipn.subscr_id,
                "ipn_track_id" => &mut ipn.ipn_track_id,
                "test_ipn" => &mut ipn.test_ipn,
                "receiver_email" => &mut ipn.receiver_email,
                "business" => &mut ipn.business,
                "receiver_id" => &mut ipn.receiver_id,
                "appId" => &mut ipn.app_id,
                "item_number" => &mut ipn.item_number,
                "item_number1" => &mut ipn.item_number1,
                "item_name" => &mut ipn.item_name,
                "item_name1" => &mut ipn.item_name1,
                "payer_id" => &mut ipn.payer_id,
                "payer_email" => &mut ipn.payer_email,
                "buyer_adsk_account" => &mut ipn.buyer_adsk_account,
                "purchase_adsk_account" => &mut ipn.purchase_adsk_account,
                "residence_country" => &mut ipn.residence_country,
                "mc_currency" => &mut ipn.mc_currency,
                "mc_gross" => &mut ipn.mc_gross,
                "payment_gross" => &mut ipn.payment_gross,
                "mc_fee" => &mut ipn.mc_fee,
                "payment_fee" => &mut ipn.payment_fee,
                "payment_date" => &mut ipn.payment_date,
                "subscr_date" => &mut ipn.subscr_date,
                "period1" => &mut ipn.period1,
                "amount1" => &mut ipn.amount1,
                "mc_amount1" => &mut ipn.mc_amount1,
                "period3" => &mut ipn.period3,
                "recurring" => &mut ipn.recurring,
                _ => continue,
            };
            *slot = present(value);
        }
        ipn
    }

    /// Whether the form carries any field that makes it an IPN at all.
    pub(super) fn is_recognizable(&self) -> bool {
        self.txn_type.is_some()
            || self.payment_status.is_some()
            || self.txn_id.is_some()
            || self.subscr_id.is_some()
    }
}
