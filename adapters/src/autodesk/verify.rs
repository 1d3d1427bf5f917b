//! The source's allow-lists: the only offline proof that an IPN is meant for this publisher.
//!
//! `verify_sign` and `auth` are opaque PayPal values that nothing can check offline, and Autodesk's
//! own validation service is gone, so (beside the secret ingest URL) a listener knows an IPN is its
//! own by the receiver it pays and the app it sells. Each list is checked on its own: an empty list
//! allows anything, a non-empty one requires one of its allowed fields to be present and listed.

use std::borrow::Cow;

use subtle::{Choice, ConstantTimeEq as _};

use super::Config;
use super::wire::Ipn;
use crate::AdapterError;

pub(super) fn allow_lists(config: &Config, ipn: &Ipn<'_>) -> Result<(), AdapterError> {
    check(
        &config.receiver_emails,
        &[
            ("receiver_email", ipn.receiver_email),
            ("business", ipn.business),
        ],
        Case::Insensitive,
        "receiver e-mails",
    )?;
    check(
        &config.receiver_ids,
        &[("receiver_id", ipn.receiver_id)],
        Case::Sensitive,
        "receiver ids",
    )?;
    check(
        &config.app_ids,
        &[("appId", ipn.app_id), ("item_number", ipn.item_number)],
        Case::Sensitive,
        "app ids",
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// E-mail addresses: PayPal echoes whatever case the button or account was set up with.
    Insensitive,
    /// Ids are compared exactly.
    Sensitive,
}

/// Passes when the list is empty or when any present field's value is in it.
fn check(
    allowed: &[String],
    fields: &[(&str, Option<&str>)],
    case: Case,
    what: &str,
) -> Result<(), AdapterError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let present: Vec<(&str, &str)> = fields
        .iter()
        .filter_map(|(name, value)| value.map(|value| (*name, value)))
        .collect();
    if present.is_empty() {
        let names: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
        return Err(AdapterError::unauthenticated(format!(
            "{}, but this source only accepts its {what}",
            missing(&names)
        )));
    }
    if present
        .iter()
        .any(|(_, value)| is_listed(allowed, value, case))
    {
        return Ok(());
    }
    let described: Vec<String> = present
        .iter()
        .map(|(name, value)| format!("{name} {}", quoted(value)))
        .collect();
    let verb = if described.len() == 1 {
        "is not one of"
    } else {
        "are not among"
    };
    Err(AdapterError::unauthenticated(format!(
        "{} {verb} this source's {what}",
        described.join(" and ")
    )))
}

/// Compares against every entry without stopping at the first match, each in constant time, so the
/// answer's timing does not tell how close a guess came.
fn is_listed(allowed: &[String], value: &str, case: Case) -> bool {
    fn normalize(text: &str, case: Case) -> Cow<'_, str> {
        match case {
            Case::Insensitive => Cow::Owned(text.to_lowercase()),
            Case::Sensitive => Cow::Borrowed(text),
        }
    }
    let value = normalize(value, case);
    let found = allowed.iter().fold(Choice::from(0), |found, entry| {
        found
            | normalize(entry.trim(), case)
                .as_bytes()
                .ct_eq(value.as_bytes())
    });
    bool::from(found)
}

/// `receiver_id is absent`, or `neither receiver_email nor business is present`.
fn missing(names: &[&str]) -> String {
    match names {
        [one] => format!("{one} is absent"),
        _ => format!("neither {} is present", names.join(" nor ")),
    }
}

/// A received value for an error message: quoted and escaped, and cut short, since it comes from
/// whoever posted the request.
fn quoted(value: &str) -> String {
    const LIMIT: usize = 80;
    match value.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{:?}…", &value[..cut]),
        None => format!("{value:?}"),
    }
}
