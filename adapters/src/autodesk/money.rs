//! IPN amounts (`5.50`, `-4.00`, `12`) as exact integers of minor units, never through a float.
//!
//! The number of decimals is PayPal's for the currency, not always ISO 4217's: PayPal accepts no
//! fractional amounts in `HUF`, `JPY` and `TWD`, so for those one minor unit is one forint, yen or
//! dollar, and an IPN amount of `1500` is `1500`.

/// Currencies PayPal (or, for the few PayPal does not list, ISO 4217) counts without decimals.
const ZERO_DECIMALS: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "HUF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "TWD", "UGX",
    "VND", "VUV", "XAF", "XOF", "XPF",
];

/// Currencies ISO 4217 counts in thousandths. PayPal lists none of them, but an amount in one must
/// not be read a hundred times too large.
const THREE_DECIMALS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// An ISO 4217 code as the event carries it: three ASCII letters, upper case. `None` for anything
/// else, so a malformed `mc_currency` never reaches a consumer as if it were a currency.
pub fn currency_code(text: &str) -> Option<String> {
    let code = text.trim();
    (code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| code.to_ascii_uppercase())
}

/// How many decimals an amount in `currency` (an upper-case ISO 4217 code) has.
pub fn decimals(currency: &str) -> u32 {
    if ZERO_DECIMALS.contains(&currency) {
        0
    } else if THREE_DECIMALS.contains(&currency) {
        3
    } else {
        2
    }
}

/// A decimal string split into its parts; only ASCII digits, one optional sign and one optional
/// point are accepted.
struct Decimal<'a> {
    negative: bool,
    whole: &'a str,
    fraction: &'a str,
}

impl<'a> Decimal<'a> {
    fn parse(text: &'a str) -> Option<Decimal<'a>> {
        let text = text.trim();
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
            return None;
        }
        Some(Decimal {
            negative,
            whole,
            fraction,
        })
    }
}

/// `text` in minor units of `currency` (an upper-case ISO 4217 code): `("5.50", "USD")` → `550`,
/// `("-4.00", "USD")` → `-400`, `("1500", "JPY")` → `1500`.
///
/// `None` when the text is not a plain decimal number, when it is more precise than the currency
/// (`"1.5"` yen) or when it does not fit an `i64`: the caller then reports no amount rather than a
/// wrong one.
pub fn minor_units(text: &str, currency: &str) -> Option<i64> {
    let decimal = Decimal::parse(text)?;
    let places = usize::try_from(decimals(currency)).ok()?;
    let (kept, dropped) = decimal
        .fraction
        .split_at(decimal.fraction.len().min(places));
    if dropped.bytes().any(|b| b != b'0') {
        return None;
    }
    let mut units: i64 = 0;
    let padding = places - kept.len();
    for digit in decimal
        .whole
        .bytes()
        .chain(kept.bytes())
        .chain(std::iter::repeat_n(b'0', padding))
    {
        units = units
            .checked_mul(10)?
            .checked_add(i64::from(digit - b'0'))?;
    }
    Some(if decimal.negative { -units } else { units })
}

/// Whether `text` is a decimal number equal to zero (`0.00`, `0`, `-0.0`), whatever the currency.
pub fn is_zero(text: &str) -> bool {
    Decimal::parse(text)
        .is_some_and(|d| d.whole.bytes().chain(d.fraction.bytes()).all(|b| b == b'0'))
}

/// Whether `text` is a decimal number above zero.
pub fn is_positive(text: &str) -> bool {
    Decimal::parse(text).is_some_and(|d| {
        !d.negative && d.whole.bytes().chain(d.fraction.bytes()).any(|b| b != b'0')
    })
}
