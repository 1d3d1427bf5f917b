//! IPN dates: `payment_date`, `subscr_date` and friends.
//!
//! PayPal writes `HH:MM:SS Mon DD, YYYY PST` (or `PDT`). The label is read as a fixed offset
//! (PST = −08:00, PDT = −07:00), even when it does not match the season: PayPal's simulator sends
//! `PDT` in February, and the label is the only statement of the offset the sender used.
//!
//! Real and simulated bodies also carry `Mon.` with a dot, day-first dates (`30 Oct 2015`),
//! JavaScript's `Sun May 24 2015 14:32:31 GMT-0700 (PDT)`, GMT/UTC labels and numeric offsets.
//! So the text is read as a bag of tokens (a time, a month name, a day, a four-digit year, a zone,
//! an optional weekday) in any order, which covers all of these without one pattern per variant.
//! Anything else (`N/A`, `2014年5月21日`, an unfilled `{0}`) is `None`: the caller falls back to the
//! time of receipt, because a date is never a reason to drop an authentic notification.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone as _, Utc};

/// Parse an IPN date into UTC; `None` when it is not recognizably a date, a time and a zone.
///
/// ```
/// use storehook_adapters::autodesk::date::parse;
/// let t = parse("23:04:06 Feb 02, 2009 PST").map(|t| t.to_rfc3339());
/// assert_eq!(t.as_deref(), Some("2009-02-03T07:04:06+00:00"));
/// ```
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) {
        return Some(at.with_timezone(&Utc));
    }
    // A parenthesized part is JavaScript's zone name, `(PDT)`; it only counts when no other zone
    // was given, since the numeric offset before it is the more precise statement.
    let (outside, inside) = split_parentheses(text);
    let mut parts = Parts::default();
    for token in outside.split(|c: char| c.is_whitespace() || c == ',') {
        if !token.is_empty() {
            parts.take(token)?;
        }
    }
    if parts.offset.is_none() {
        let label = inside.trim();
        if !label.is_empty() {
            parts.offset = Some(zone(label)?);
        }
    }
    parts.finish()
}

/// The text outside parentheses, and the text inside them. Most dates have no parentheses, and
/// are then borrowed as they are.
fn split_parentheses(text: &str) -> (Cow<'_, str>, Cow<'_, str>) {
    if !text.contains(['(', ')']) {
        return (Cow::Borrowed(text), Cow::Borrowed(""));
    }
    let mut outside = String::with_capacity(text.len());
    let mut inside = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => {
                depth += 1;
                outside.push(' ');
            }
            ')' => {
                depth = depth.saturating_sub(1);
                inside.push(' ');
            }
            _ if depth > 0 => inside.push(c),
            _ => outside.push(c),
        }
    }
    (Cow::Owned(outside), Cow::Owned(inside))
}

/// What the tokens said so far; each part may be given once.
#[derive(Debug, Default)]
struct Parts {
    time: Option<NaiveTime>,
    month: Option<u32>,
    day: Option<u32>,
    year: Option<i32>,
    offset: Option<FixedOffset>,
    weekday: bool,
}

impl Parts {
    /// Record one token; `None` when it is not a date part or repeats one.
    fn take(&mut self, token: &str) -> Option<()> {
        fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
            slot.is_none().then(|| *slot = Some(value))
        }
        if token.starts_with(['+', '-']) {
            return set(&mut self.offset, zone(token)?);
        }
        if token.contains(':') && !starts_with_zone_name(token) {
            return set(&mut self.time, time(token)?);
        }
        if token.bytes().all(|b| b.is_ascii_digit()) {
            return match token.len() {
                1 | 2 => set(&mut self.day, token.parse().ok()?),
                4 => set(&mut self.year, token.parse().ok()?),
                _ => None,
            };
        }
        let word = token.strip_suffix('.').unwrap_or(token);
        if let Some(month) = month(word) {
            return set(&mut self.month, month);
        }
        if is_weekday(word) && !self.weekday {
            self.weekday = true;
            return Some(());
        }
        set(&mut self.offset, zone(token)?)
    }

    fn finish(self) -> Option<DateTime<Utc>> {
        let date = NaiveDate::from_ymd_opt(self.year?, self.month?, self.day?)?;
        let local = date.and_time(self.time?);
        let at = self.offset?.from_local_datetime(&local).single()?;
        Some(at.with_timezone(&Utc))
    }
}

/// `HH:MM:SS` or `HH:MM`, one or two digits each.
fn time(token: &str) -> Option<NaiveTime> {
    let mut numbers = token.split(':').map(|part| {
        (!part.is_empty() && part.len() <= 2 && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    });
    let hour = numbers.next()??;
    let minute = numbers.next()??;
    let second = numbers.next().unwrap_or(Some(0))?;
    if numbers.next().is_some() {
        return None;
    }
    NaiveTime::from_hms_opt(hour, minute, second)
}

fn month(word: &str) -> Option<u32> {
    const NAMES: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if word.eq_ignore_ascii_case("sept") {
        return Some(9);
    }
    let index = NAMES
        .iter()
        .position(|name| word.len() >= 3 && starts_with_ignore_case(name, word))?;
    u32::try_from(index + 1).ok()
}

fn is_weekday(word: &str) -> bool {
    const NAMES: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    word.len() >= 3 && NAMES.iter().any(|name| starts_with_ignore_case(name, word))
}

/// Whether `text` starts with `prefix`, ASCII letters compared in either case.
fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// `token` without a leading zone name (`GMT`, `UTC`, `UT`, in any case), when it has one.
fn strip_zone_name(token: &str) -> Option<&str> {
    ["GMT", "UTC", "UT"]
        .iter()
        .find(|name| starts_with_ignore_case(token, name))
        .map(|name| &token[name.len()..])
}

fn starts_with_zone_name(token: &str) -> bool {
    strip_zone_name(token).is_some()
}

/// A zone: `PST`, `PDT`, `GMT`, `UTC`, `Z`, optionally followed (GMT/UTC) or replaced by a numeric
/// offset `±HHMM`, `±HH:MM` or `±H`.
fn zone(token: &str) -> Option<FixedOffset> {
    let is = |name: &str| token.eq_ignore_ascii_case(name);
    if is("PST") {
        return FixedOffset::west_opt(8 * 3600);
    }
    if is("PDT") {
        return FixedOffset::west_opt(7 * 3600);
    }
    if is("GMT") || is("UTC") || is("UT") || is("Z") {
        return FixedOffset::east_opt(0);
    }
    let numeric = strip_zone_name(token).unwrap_or(token);
    let (sign, digits) = match numeric.as_bytes().split_first() {
        Some((b'+', rest)) => (1, rest),
        Some((b'-', rest)) => (-1, rest),
        _ => return None,
    };
    // Up to four digits, colons ignored (`+05:30` is `+0530`).
    let mut value = [0i32; 4];
    let mut count = 0;
    for &b in digits.iter().filter(|b| **b != b':') {
        if !b.is_ascii_digit() || count == value.len() {
            return None;
        }
        value[count] = i32::from(b - b'0');
        count += 1;
    }
    let (hours, minutes) = match value[..count] {
        [h] => (h, 0),
        [h1, h2] => (h1 * 10 + h2, 0),
        [h, m1, m2] => (h, m1 * 10 + m2),
        [h1, h2, m1, m2] => (h1 * 10 + h2, m1 * 10 + m2),
        _ => return None,
    };
    if hours > 14 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}
