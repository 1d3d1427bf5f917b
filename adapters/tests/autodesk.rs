//! Autodesk IPN adapter behaviour beyond the golden cases: money and date parsing, charset
//! decoding, allow-lists, the mapping table, idempotency keys, and that no input whatsoever makes it
//! panic.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::Value;
use storehook_adapters::autodesk::{Autodesk, Config, date, money};
use storehook_adapters::{Context, ErrorCategory, Event, StoreAdapter};
use storehook_schema::{
    Entitlement, Environment, EventType, SubscriptionPeriod, SubscriptionStatus, event_id,
};

fn received_at() -> DateTime<Utc> {
    "2026-01-02T03:04:05Z".parse().expect("a valid time")
}

fn ctx(source: &str) -> Context<'_> {
    Context {
        tenant: "acme",
        source,
        received_at: received_at(),
    }
}

fn process_with(
    config: &Config,
    body: &[u8],
    source: &str,
) -> Result<Event, (ErrorCategory, String)> {
    let verified = Autodesk::verify(config, body).map_err(|e| (e.category, e.message))?;
    let mut events =
        Autodesk::normalize(verified, &ctx(source)).map_err(|e| (e.category, e.message))?;
    assert_eq!(events.len(), 1, "an IPN is exactly one event");
    Ok(events.remove(0))
}

/// Verify and normalize with no allow-list; the one event, or the rejection.
fn process(body: &str) -> Result<Event, (ErrorCategory, String)> {
    process_with(&Config::default(), body.as_bytes(), "src_1")
}

fn event(body: &str) -> Event {
    process(body).unwrap_or_else(|e| panic!("rejected {body:?}: {e:?}"))
}

fn raw_field(event: &Event, name: &str) -> Option<String> {
    event
        .store_data
        .raw
        .to_value()
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().expect("a valid RFC 3339 time")
}

const WEB_ACCEPT: &str = "txn_type=web_accept&payment_status=Completed&txn_id=0AG18756HD086633A\
    &mc_gross=5.50&mc_fee=0.43&mc_currency=USD&payment_date=23%3A36%3A36+Jan+11%2C+2014+PST\
    &receiver_email=paypal%40redbike.com.au&business=paypal%40redbike.com.au&receiver_id=GDGRD3PAZBMD8\
    &item_number=appstore.exchange.autodesk.com%3acloudrendering%3aen&item_name=RDBK_AutoNumber+Pro\
    &payer_id=NEH6BJPL9LBYG&payer_email=mbalsom%40shoal.net.au&buyer_adsk_account=changyudu@163.com\
    &residence_country=AU&charset=windows-1252";

// ---------------------------------------------------------------------------------------------
// Money

#[test]
fn amounts_become_exact_minor_units() {
    assert_eq!(money::minor_units("5.50", "USD"), Some(550));
    assert_eq!(money::minor_units("-4.00", "USD"), Some(-400));
    assert_eq!(money::minor_units("12", "USD"), Some(1200));
    assert_eq!(money::minor_units("0.07", "EUR"), Some(7));
    assert_eq!(money::minor_units(" 5.5 ", "USD"), Some(550));
    assert_eq!(money::minor_units("+5.50", "USD"), Some(550));
    assert_eq!(money::minor_units(".5", "USD"), Some(50));
    assert_eq!(money::minor_units("5.", "USD"), Some(500));
    assert_eq!(money::minor_units("-0.00", "USD"), Some(0));
    assert_eq!(money::minor_units("5.500", "USD"), Some(550));
    assert_eq!(money::minor_units("1.234", "KWD"), Some(1234));
}

#[test]
fn zero_decimal_currencies_count_whole_units() {
    assert_eq!(money::minor_units("1500", "JPY"), Some(1500));
    assert_eq!(money::minor_units("1500.00", "JPY"), Some(1500));
    assert_eq!(money::minor_units("2500", "HUF"), Some(2500));
    assert_eq!(money::minor_units("300", "TWD"), Some(300));
    assert_eq!(money::decimals("USD"), 2);
    assert_eq!(money::decimals("JPY"), 0);
    assert_eq!(money::decimals("HUF"), 0);
    assert_eq!(money::decimals("TWD"), 0);
}

#[test]
fn unreadable_or_too_precise_amounts_are_none() {
    for text in [
        "", " ", "-", ".", "abc", "5,50", "1,234.56", "1e3", "5.5.5", "--5", "0x10", "NaN", "5 50",
        "٥",
    ] {
        assert_eq!(money::minor_units(text, "USD"), None, "{text:?}");
    }
    assert_eq!(money::minor_units("1500.5", "JPY"), None);
    assert_eq!(money::minor_units("0.005", "USD"), None);
    assert_eq!(money::minor_units("92233720368547758.08", "USD"), None);
    assert_eq!(money::minor_units("99999999999999999999999", "JPY"), None);
    assert_eq!(
        money::minor_units("92233720368547758.07", "USD"),
        Some(i64::MAX)
    );
}

#[test]
fn currency_codes_are_three_letters_upper_case() {
    assert_eq!(money::currency_code("usd").as_deref(), Some("USD"));
    assert_eq!(money::currency_code(" EUR ").as_deref(), Some("EUR"));
    for text in ["", "US", "EURO", "U$D", "12€"] {
        assert_eq!(money::currency_code(text), None, "{text:?}");
    }
}

#[test]
fn zero_and_positive_amounts_are_recognized_whatever_the_currency() {
    assert!(money::is_zero("0.00"));
    assert!(money::is_zero("-0"));
    assert!(!money::is_zero("0.01"));
    assert!(!money::is_zero(""));
    assert!(money::is_positive("0.49"));
    assert!(!money::is_positive("-1.00"));
    assert!(!money::is_positive("0.00"));
}

#[test]
fn transaction_amount_prefers_mc_gross_then_payment_gross() {
    let e = event(
        "txn_type=web_accept&payment_status=Completed&txn_id=T1&mc_gross=3.00&payment_gross=9.99&mc_currency=EUR",
    );
    assert_eq!(e.transaction.as_ref().and_then(|t| t.amount), Some(300));
    let e = event(
        "txn_type=web_accept&payment_status=Completed&txn_id=T1&mc_gross=&payment_gross=9.99&mc_currency=USD",
    );
    assert_eq!(e.transaction.as_ref().and_then(|t| t.amount), Some(999));
}

#[test]
fn an_unreadable_amount_is_null_not_a_rejection() {
    let e = event(
        "txn_type=web_accept&payment_status=Completed&txn_id=T1&mc_gross=5%2C50&mc_fee=0.43&mc_currency=USD",
    );
    let t = e.transaction.expect("a transaction");
    assert_eq!(
        (t.amount, t.fee, t.currency.as_deref()),
        (None, Some(43), Some("USD"))
    );
}

#[test]
fn without_a_currency_there_is_no_amount() {
    let e = event("txn_type=web_accept&payment_status=Completed&txn_id=T1&mc_gross=5.50");
    let t = e.transaction.expect("a transaction");
    assert_eq!((t.amount, t.currency), (None, None));
}

#[test]
fn refunds_and_chargebacks_are_negative_and_reversals_positive_whatever_the_sent_sign() {
    let amount = |status: &str, gross: &str| {
        event(&format!(
            "payment_status={status}&txn_id=T2&parent_txn_id=T1&mc_gross={gross}&mc_currency=USD"
        ))
        .transaction
        .and_then(|t| t.amount)
    };
    assert_eq!(amount("Refunded", "-4.00"), Some(-400));
    assert_eq!(amount("Refunded", "4.00"), Some(-400));
    assert_eq!(amount("Reversed", "5.50"), Some(-550));
    assert_eq!(amount("Canceled_Reversal", "-5.50"), Some(550));
    assert_eq!(amount("Completed", "-1.00"), Some(-100));
}

// ---------------------------------------------------------------------------------------------
// Dates

#[test]
fn paypal_dates_use_fixed_pacific_offsets() {
    let cases = [
        ("23:04:06 Feb 02, 2009 PST", "2009-02-03T07:04:06Z"),
        ("15:23:54 Apr 15, 2005 PDT", "2005-04-15T22:23:54Z"),
        ("16:30:42 Feb 28, 2014 PST", "2014-03-01T00:30:42Z"),
        // The simulator's PDT in February is taken at its word.
        ("23:04:06 Feb 02, 2009 PDT", "2009-02-03T06:04:06Z"),
    ];
    for (text, expected) in cases {
        assert_eq!(date::parse(text), Some(utc(expected)), "{text:?}");
    }
}

#[test]
fn date_variants_seen_in_the_wild_are_read() {
    let cases = [
        ("08:45:12 Oct. 30, 2015 PDT", "2015-10-30T15:45:12Z"),
        ("08:45:12 30 Oct 2015 PDT", "2015-10-30T15:45:12Z"),
        ("30 Oct 2015 08:45:12 PDT", "2015-10-30T15:45:12Z"),
        (
            "Sun May 24 2015 14:32:31 GMT-0700 (PDT)",
            "2015-05-24T21:32:31Z",
        ),
        (
            "Sun May 24 2015 14:32:31 GMT+0200 (CEST)",
            "2015-05-24T12:32:31Z",
        ),
        ("Sun May 24 2015 14:32:31 (PDT)", "2015-05-24T21:32:31Z"),
        ("16:30:42 Feb 28, 2014 GMT", "2014-02-28T16:30:42Z"),
        ("16:30:42 Feb 28, 2014 UTC", "2014-02-28T16:30:42Z"),
        ("16:30:42 Feb 28, 2014 UTC+05:30", "2014-02-28T11:00:42Z"),
        ("16:30:42 Feb 28, 2014 -0800", "2014-03-01T00:30:42Z"),
        ("16:30 Feb 28, 2014 PST", "2014-03-01T00:30:00Z"),
        ("16:30:42 February 28, 2014 PST", "2014-03-01T00:30:42Z"),
        ("16:30:42 Sept 28, 2014 PDT", "2014-09-28T23:30:42Z"),
        ("  16:30:42   feb 28,2014 pst ", "2014-03-01T00:30:42Z"),
        ("2014-02-28T16:30:42-08:00", "2014-03-01T00:30:42Z"),
    ];
    for (text, expected) in cases {
        assert_eq!(date::parse(text), Some(utc(expected)), "{text:?}");
    }
}

#[test]
fn unreadable_dates_are_none() {
    for text in [
        "",
        "N/A",
        "2014年5月21日",
        "{0}",
        "{1}",
        "23:04:06 Feb 02, 2009",
        "23:04:06 Feb 02, 2009 XYZ",
        "25:04:06 Feb 02, 2009 PST",
        "23:04:06 Feb 30, 2009 PST",
        "23:04:06 Feb 02 03, 2009 PST",
        "23:04:06 Feb Mar 02, 2009 PST",
        "23:04:06 Feb 02, 2009 PST PDT",
        "23:04:06 Feb 02, 2009 GMT+9999",
        "23:04:06:07 Feb 02, 2009 PST",
        "((((",
        ")",
    ] {
        assert_eq!(date::parse(text), None, "{text:?}");
    }
}

#[test]
fn occurred_at_falls_back_to_subscr_date_then_to_the_time_of_receipt() {
    let e =
        event("txn_type=subscr_signup&subscr_id=S1&subscr_date=01%3A50%3A31+May+20%2C+2014+PDT");
    assert_eq!(e.occurred_at, utc("2014-05-20T08:50:31Z"));
    let e = event("txn_type=web_accept&payment_status=Completed&txn_id=T1&payment_date=N%2FA");
    assert_eq!(e.occurred_at, received_at());
    assert_eq!(raw_field(&e, "payment_date").as_deref(), Some("N/A"));
    // A payment's unreadable payment_date is not replaced by a sign-up date.
    let e = event(
        "txn_type=subscr_payment&payment_status=Completed&txn_id=T1&subscr_id=S1&payment_date=%7B0%7D&subscr_date=01%3A50%3A31+May+20%2C+2014+PDT",
    );
    assert_eq!(e.occurred_at, received_at());
}

// ---------------------------------------------------------------------------------------------
// Form and charset decoding

#[test]
fn windows_1252_is_the_default_charset() {
    let e = event("txn_id=T1&payment_status=Completed&first_name=J%F6rg");
    assert_eq!(raw_field(&e, "first_name").as_deref(), Some("Jörg"));
    let e = event("txn_id=T1&payment_status=Completed&first_name=J%F6rg&charset=windows-1252");
    assert_eq!(raw_field(&e, "first_name").as_deref(), Some("Jörg"));
}

#[test]
fn values_decode_with_the_declared_charset() {
    let e = event("txn_id=T1&payment_status=Completed&first_name=J%C3%B6rg&charset=UTF-8");
    assert_eq!(raw_field(&e, "first_name").as_deref(), Some("Jörg"));
    let e = event("txn_id=T1&payment_status=Completed&charset=Shift_JIS&item_name=%93%FA%96%7B");
    assert_eq!(raw_field(&e, "item_name").as_deref(), Some("日本"));
    let e = event(
        "charset=windows-1251&txn_id=T1&payment_status=Completed&last_name=%CF%E5%F2%F0%EE%E2",
    );
    assert_eq!(raw_field(&e, "last_name").as_deref(), Some("Петров"));
}

#[test]
fn utf8_sent_under_a_windows_1252_label_is_read_as_utf8() {
    let e = event(
        "txn_id=T1&payment_status=Completed&charset=windows-1252&payment_date=2014%E5%B9%B45%E6%9C%8821%E6%97%A5",
    );
    assert_eq!(
        raw_field(&e, "payment_date").as_deref(),
        Some("2014年5月21日")
    );
    assert_eq!(e.occurred_at, received_at());
}

#[test]
fn invalid_utf8_under_a_utf8_label_keeps_its_bytes_as_windows_1252() {
    let e = event("txn_id=T1&payment_status=Completed&charset=utf-8&first_name=J%F6rg");
    assert_eq!(raw_field(&e, "first_name").as_deref(), Some("Jörg"));
}

#[test]
fn an_unknown_charset_falls_back_to_windows_1252() {
    let e = event("txn_id=T1&payment_status=Completed&charset=klingon-8&first_name=J%F6rg");
    assert_eq!(raw_field(&e, "first_name").as_deref(), Some("Jörg"));
    assert_eq!(raw_field(&e, "charset").as_deref(), Some("klingon-8"));
}

#[test]
fn percent_escapes_plus_signs_and_stray_percents() {
    let e = event(
        "txn_id=T1&payment_status=Completed&a=%3a%3A&b=1+2%2B3&c=100%&d=%zz%4&e=@&f=%&g&h=a=b",
    );
    let field = |name| raw_field(&e, name);
    assert_eq!(field("a").as_deref(), Some("::"));
    assert_eq!(field("b").as_deref(), Some("1 2+3"));
    assert_eq!(field("c").as_deref(), Some("100%"));
    assert_eq!(field("d").as_deref(), Some("%zz%4"));
    assert_eq!(field("e").as_deref(), Some("@"));
    assert_eq!(field("f").as_deref(), Some("%"));
    assert_eq!(field("g").as_deref(), Some(""));
    assert_eq!(field("h").as_deref(), Some("a=b"));
}

#[test]
fn a_repeated_field_keeps_its_first_value_everywhere() {
    let config = Config {
        receiver_emails: vec!["seller@example.com".into()],
        ..Config::default()
    };
    let body = b"txn_id=T1&payment_status=Completed&receiver_email=attacker%40example.com&receiver_email=seller%40example.com";
    let (category, message) =
        process_with(&config, body, "src_1").expect_err("first value is checked");
    assert_eq!(category, ErrorCategory::Unauthenticated);
    assert!(message.contains("attacker@example.com"), "{message}");

    let e = event(
        "txn_id=T1&payment_status=Completed&payment_status=Refunded&item_name=first&item_name=second",
    );
    assert_eq!(e.event_type, EventType::TransactionSucceeded);
    assert_eq!(raw_field(&e, "item_name").as_deref(), Some("first"));
}

#[test]
fn raw_keeps_every_field_untrimmed_as_strings() {
    let e = event(WEB_ACCEPT);
    let raw = e.store_data.raw.to_value();
    let raw = raw.as_object().expect("an object");
    assert_eq!(raw.len(), WEB_ACCEPT.split('&').count());
    assert!(raw.values().all(Value::is_string));
    let e = event("txn_id=T1&payment_status=Completed&custom=+padded+");
    assert_eq!(raw_field(&e, "custom").as_deref(), Some(" padded "));
}

#[test]
fn empty_and_unrecognizable_bodies_are_malformed() {
    for body in [
        "",
        "   ",
        "&&&",
        "foo=bar",
        "{\"txn_type\":\"web_accept\"}",
        "txn_type=&payment_status=+",
    ] {
        let (category, message) = process(body).expect_err(body);
        assert_eq!(category, ErrorCategory::Malformed, "{body:?}");
        assert!(!message.is_empty());
    }
    let (_, message) = process("").expect_err("empty");
    assert!(message.contains("empty body"), "{message}");
    let (_, message) = process("foo=bar").expect_err("no IPN field");
    assert!(message.contains("txn_type"), "{message}");
}

#[test]
fn any_one_ipn_field_is_enough_to_be_read() {
    for body in [
        "txn_type=adjustment",
        "payment_status=Completed",
        "txn_id=T1",
        "subscr_id=S1",
    ] {
        assert!(process(body).is_ok(), "{body:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Allow-lists and configuration

#[test]
fn empty_allow_lists_accept_anything() {
    assert!(process(WEB_ACCEPT).is_ok());
}

#[test]
fn receiver_emails_match_receiver_email_or_business_case_insensitively() {
    let config = |email: &str| Config {
        receiver_emails: vec!["nobody@example.com".into(), email.into()],
        ..Config::default()
    };
    assert!(process_with(&config("PayPal@RedBike.COM.au"), WEB_ACCEPT.as_bytes(), "s").is_ok());
    let only_business = WEB_ACCEPT.replace(
        "receiver_email=paypal%40redbike.com.au",
        "receiver_email=primary%40redbike.com.au",
    );
    assert!(
        process_with(
            &config("paypal@redbike.com.au"),
            only_business.as_bytes(),
            "s"
        )
        .is_ok()
    );
    let (category, message) =
        process_with(&config("x@y"), WEB_ACCEPT.as_bytes(), "s").expect_err("not listed");
    assert_eq!(category, ErrorCategory::Unauthenticated);
    assert!(
        message.contains("receiver_email \"paypal@redbike.com.au\""),
        "{message}"
    );
    assert!(message.contains("receiver e-mails"), "{message}");
}

#[test]
fn receiver_ids_are_compared_exactly() {
    let config = Config {
        receiver_ids: vec!["GDGRD3PAZBMD8".into()],
        ..Config::default()
    };
    assert!(process_with(&config, WEB_ACCEPT.as_bytes(), "s").is_ok());
    let lower = WEB_ACCEPT.replace("GDGRD3PAZBMD8", "gdgrd3pazbmd8");
    let (category, message) =
        process_with(&config, lower.as_bytes(), "s").expect_err("case differs");
    assert_eq!(category, ErrorCategory::Unauthenticated);
    assert_eq!(
        message,
        "receiver_id \"gdgrd3pazbmd8\" is not one of this source's receiver ids"
    );
}

#[test]
fn app_ids_match_app_id_or_item_number() {
    let config = |id: &str| Config {
        app_ids: vec![id.into()],
        ..Config::default()
    };
    let legacy = config("appstore.exchange.autodesk.com:cloudrendering:en");
    assert!(process_with(&legacy, WEB_ACCEPT.as_bytes(), "s").is_ok());
    let with_app_id = format!("{WEB_ACCEPT}&appId=2024453975166401172");
    assert!(process_with(&config("2024453975166401172"), with_app_id.as_bytes(), "s").is_ok());
    let (category, message) =
        process_with(&config("1"), with_app_id.as_bytes(), "s").expect_err("other app");
    assert_eq!(category, ErrorCategory::Unauthenticated);
    assert!(
        message.contains("appId \"2024453975166401172\""),
        "{message}"
    );
}

#[test]
fn a_listed_field_that_is_absent_is_a_rejection() {
    let free = "txn_id=F1&payment_status=Completed&txn_type=FREE&appId=42";
    let cases = [
        (
            Config {
                receiver_emails: vec!["a@b".into()],
                ..Config::default()
            },
            "neither receiver_email nor business is present",
        ),
        (
            Config {
                receiver_ids: vec!["X".into()],
                ..Config::default()
            },
            "receiver_id is absent",
        ),
    ];
    for (config, expected) in cases {
        let (category, message) = process_with(&config, free.as_bytes(), "s").expect_err("absent");
        assert_eq!(category, ErrorCategory::Unauthenticated);
        assert!(message.starts_with(expected), "{message}");
    }
    let apps = Config {
        app_ids: vec!["42".into()],
        ..Config::default()
    };
    assert!(process_with(&apps, free.as_bytes(), "s").is_ok());
    let (_, message) =
        process_with(&apps, b"txn_id=F1&payment_status=Completed", "s").expect_err("no app");
    assert!(
        message.starts_with("neither appId nor item_number is present"),
        "{message}"
    );
}

#[test]
fn error_messages_quote_and_shorten_what_was_received() {
    let config = Config {
        receiver_ids: vec!["X".into()],
        ..Config::default()
    };
    let long = "A".repeat(500);
    let body = format!("txn_id=T1&receiver_id={long}%22%0A");
    let (_, message) = process_with(&config, body.as_bytes(), "s").expect_err("not listed");
    assert!(message.len() < 200, "{message}");
    assert!(!message.contains('\n'));
}

#[test]
fn config_reads_from_json_with_defaults_and_rejects_unknown_keys() {
    let config: Config = serde_json::from_str(r#"{"app_ids": ["1"]}"#).expect("valid config");
    assert_eq!(config.app_ids, vec!["1".to_owned()]);
    assert!(config.receiver_emails.is_empty() && config.receiver_ids.is_empty());
    let empty: Config = serde_json::from_str("{}").expect("all lists default");
    assert_eq!(empty, Config::default());
    assert!(serde_json::from_str::<Config>(r#"{"receiver_email": ["a@b"]}"#).is_err());
}

// ---------------------------------------------------------------------------------------------
// Mapping

#[test]
fn every_row_of_the_mapping_table() {
    use Entitlement::{Grant, None as Nothing, Revoke};
    use EventType as E;
    let rows: &[(&str, E, Entitlement)] = &[
        (
            "txn_type=web_accept&payment_status=Pending",
            E::TransactionPending,
            Nothing,
        ),
        (
            "txn_type=web_accept&payment_status=Created",
            E::TransactionPending,
            Nothing,
        ),
        (
            "txn_type=web_accept&payment_status=Completed",
            E::TransactionSucceeded,
            Grant,
        ),
        (
            "txn_type=cart&payment_status=Completed",
            E::TransactionSucceeded,
            Grant,
        ),
        (
            "txn_type=express_checkout&payment_status=Completed",
            E::TransactionSucceeded,
            Grant,
        ),
        (
            "txn_type=subscr_payment&payment_status=Completed&subscr_id=S",
            E::TransactionSucceeded,
            Grant,
        ),
        (
            "txn_type=recurring_payment&payment_status=Processed",
            E::TransactionSucceeded,
            Grant,
        ),
        (
            "payment_status=Completed&txn_id=T&mc_gross=5.00",
            E::TransactionSucceeded,
            Grant,
        ),
        (
            "txn_type=web_accept&payment_status=Failed",
            E::TransactionFailed,
            Nothing,
        ),
        (
            "txn_type=web_accept&payment_status=Denied",
            E::TransactionFailed,
            Nothing,
        ),
        (
            "txn_type=web_accept&payment_status=Declined",
            E::TransactionFailed,
            Nothing,
        ),
        (
            "txn_type=web_accept&payment_status=Expired",
            E::TransactionExpired,
            Nothing,
        ),
        (
            "txn_type=web_accept&payment_status=Voided",
            E::TransactionVoided,
            Revoke,
        ),
        ("payment_status=Refunded", E::TransactionRefunded, Revoke),
        (
            "txn_type=web_accept&payment_status=Refunded",
            E::TransactionRefunded,
            Revoke,
        ),
        ("payment_status=Reversed", E::TransactionChargedBack, Revoke),
        (
            "payment_status=Canceled_Reversal",
            E::TransactionChargebackReversed,
            Grant,
        ),
        (
            "txn_type=subscr_signup&subscr_id=S",
            E::SubscriptionStarted,
            Grant,
        ),
        (
            "txn_type=subscr_signup&subscr_id=S&period1=7+D&mc_amount1=0.00",
            E::SubscriptionTrialStarted,
            Grant,
        ),
        (
            "txn_type=subscr_signup&subscr_id=S&amount1=0.00",
            E::SubscriptionTrialStarted,
            Grant,
        ),
        (
            "txn_type=subscr_cancel&subscr_id=S",
            E::SubscriptionRenewalDisabled,
            Nothing,
        ),
        (
            "txn_type=subscr_eot&subscr_id=S",
            E::SubscriptionExpired,
            Revoke,
        ),
        (
            "txn_type=subscr_failed&subscr_id=S",
            E::SubscriptionBillingIssue,
            Nothing,
        ),
        (
            "txn_type=subscr_failed&subscr_id=S&payment_status=Completed",
            E::SubscriptionBillingIssue,
            Nothing,
        ),
        (
            "txn_type=subscr_modify&subscr_id=S",
            E::SubscriptionModified,
            Nothing,
        ),
        (
            "txn_type=FREE&txn_id=F&payment_status=Completed",
            E::AccessGranted,
            Grant,
        ),
        ("txn_type=FREE&txn_id=F", E::AccessGranted, Grant),
        (
            "txn_type=TRIAL&txn_id=F&payment_status=Completed",
            E::SubscriptionTrialStarted,
            Grant,
        ),
        (
            "txn_type=Free30DayTrial&txn_id=F",
            E::SubscriptionTrialStarted,
            Grant,
        ),
        (
            "txn_id=F&payment_status=Completed&mc_gross=0.00",
            E::AccessGranted,
            Grant,
        ),
        ("txn_type=new_case&txn_id=T", E::StoreUnrecognized, Nothing),
        (
            "txn_type=web_accept&txn_id=T",
            E::StoreUnrecognized,
            Nothing,
        ),
        (
            "txn_type=web_accept&payment_status=In-Progress",
            E::StoreUnrecognized,
            Nothing,
        ),
        (
            "payment_status=%7B2%7D&txn_id=%7B0%7D&mc_gross=0.00",
            E::StoreUnrecognized,
            Nothing,
        ),
    ];
    for (body, event_type, entitlement) in rows {
        let e = event(body);
        assert_eq!(
            (e.event_type, e.entitlement),
            (*event_type, *entitlement),
            "{body}"
        );
    }
}

#[test]
fn statuses_and_txn_types_are_compared_case_insensitively() {
    assert_eq!(
        event("txn_type=WEB_ACCEPT&payment_status=completed").event_type,
        EventType::TransactionSucceeded
    );
    assert_eq!(
        event("txn_type=free&txn_id=F").event_type,
        EventType::AccessGranted
    );
    assert_eq!(
        event("payment_status=REFUNDED").event_type,
        EventType::TransactionRefunded
    );
}

#[test]
fn store_data_keeps_the_store_spelling() {
    let e = event("txn_type=web_accept&payment_status=completed&ipn_track_id=abc");
    assert_eq!(
        e.store_data.notification_type.as_deref(),
        Some("web_accept")
    );
    assert_eq!(e.store_data.status.as_deref(), Some("completed"));
    assert_eq!(e.store_data.notification_id.as_deref(), Some("abc"));
}

#[test]
fn test_ipn_means_sandbox() {
    assert_eq!(
        event(&format!("{WEB_ACCEPT}&test_ipn=1")).environment,
        Environment::Sandbox
    );
    assert_eq!(
        event(&format!("{WEB_ACCEPT}&test_ipn=0")).environment,
        Environment::Production
    );
    assert_eq!(event(WEB_ACCEPT).environment, Environment::Production);
}

#[test]
fn event_parts_come_from_their_fields() {
    let e = event(WEB_ACCEPT);
    let customer = e.customer.expect("a customer");
    assert_eq!(customer.id.as_deref(), Some("NEH6BJPL9LBYG"));
    assert_eq!(customer.email.as_deref(), Some("changyudu@163.com"));
    assert_eq!(customer.country.as_deref(), Some("AU"));
    let product = e.product.expect("a product");
    assert_eq!(
        product.id,
        "appstore.exchange.autodesk.com:cloudrendering:en"
    );
    assert_eq!(product.name.as_deref(), Some("RDBK_AutoNumber Pro"));
    let t = e.transaction.expect("a transaction");
    assert_eq!(
        (t.amount, t.fee, t.currency.as_deref()),
        (Some(550), Some(43), Some("USD"))
    );
    assert_eq!(t.id.as_deref(), Some("0AG18756HD086633A"));
    assert_eq!(e.occurred_at, utc("2014-01-12T07:36:36Z"));
    assert!(e.subscription.is_none());
}

#[test]
fn app_id_wins_over_item_number_and_carts_fall_back_to_item_number1() {
    let e = event(&format!("{WEB_ACCEPT}&appId=2024453975166401172"));
    assert_eq!(
        e.product.map(|p| p.id).as_deref(),
        Some("2024453975166401172")
    );
    let e = event(
        "txn_type=cart&payment_status=Completed&txn_id=T&item_number1=SKU-1&item_name1=Thing",
    );
    let product = e.product.expect("a product");
    assert_eq!(
        (product.id.as_str(), product.name.as_deref()),
        ("SKU-1", Some("Thing"))
    );
}

#[test]
fn customer_email_prefers_the_autodesk_account() {
    let e =
        event("txn_id=T&payment_status=Completed&payer_email=p%40x&purchase_adsk_account=a%40x");
    assert_eq!(e.customer.and_then(|c| c.email).as_deref(), Some("a@x"));
    let e = event("txn_id=T&payment_status=Completed&payer_email=p%40x&residence_country=usa");
    let customer = e.customer.expect("a customer");
    assert_eq!(
        (customer.email.as_deref(), customer.country),
        (Some("p@x"), None)
    );
}

#[test]
fn subscriptions_carry_period_status_billing_period_and_auto_renew() {
    let sub = |body: &str| event(body).subscription.expect("a subscription");
    let s = sub("txn_type=subscr_signup&subscr_id=S1&period3=1+M&recurring=1");
    assert_eq!(s.id.as_deref(), Some("S1"));
    assert_eq!(
        (s.status, s.period),
        (
            Some(SubscriptionStatus::Active),
            Some(SubscriptionPeriod::Normal)
        )
    );
    assert_eq!(
        (s.billing_period.as_deref(), s.auto_renew),
        (Some("P1M"), Some(true))
    );

    let s =
        sub("txn_type=subscr_signup&subscr_id=S1&period1=7+D&amount1=0.00&period3=1+Y&recurring=0");
    assert_eq!(s.period, Some(SubscriptionPeriod::Trial));
    assert_eq!(
        (s.billing_period.as_deref(), s.auto_renew),
        (Some("P1Y"), Some(false))
    );
    let s = sub("txn_type=subscr_signup&subscr_id=S1&period1=1+M&mc_amount1=0.49");
    assert_eq!(s.period, Some(SubscriptionPeriod::Intro));

    let s = sub("txn_type=subscr_cancel&subscr_id=S1&recurring=1&period3=7+D");
    assert_eq!(
        (s.status, s.auto_renew),
        (Some(SubscriptionStatus::Active), Some(false))
    );
    assert_eq!(s.billing_period.as_deref(), Some("P7D"));
    let s = sub("txn_type=subscr_eot&subscr_id=S1");
    assert_eq!(
        (s.status, s.auto_renew),
        (Some(SubscriptionStatus::Expired), Some(false))
    );
    let s = sub("txn_type=subscr_failed&subscr_id=S1");
    assert_eq!(s.period, Some(SubscriptionPeriod::Grace));
    let s = sub("txn_type=subscr_payment&payment_status=Completed&txn_id=T&subscr_id=S1");
    assert_eq!(
        (s.status, s.period),
        (
            Some(SubscriptionStatus::Active),
            Some(SubscriptionPeriod::Normal)
        )
    );
    let s = sub("payment_status=Refunded&txn_id=T2&subscr_id=S1");
    assert_eq!((s.status, s.period), (None, None));
    let s = sub("txn_type=TRIAL&txn_id=T");
    assert_eq!((s.id, s.period), (None, Some(SubscriptionPeriod::Trial)));
    assert!(event(WEB_ACCEPT).subscription.is_none());
}

#[test]
fn billing_periods_become_iso_8601_durations() {
    let period = |p: &str| {
        event(&format!("txn_type=subscr_signup&subscr_id=S&period3={p}"))
            .subscription
            .and_then(|s| s.billing_period)
    };
    assert_eq!(period("1+M").as_deref(), Some("P1M"));
    assert_eq!(period("7+D").as_deref(), Some("P7D"));
    assert_eq!(period("2+W").as_deref(), Some("P2W"));
    assert_eq!(period("1+y").as_deref(), Some("P1Y"));
    assert_eq!(period("12M").as_deref(), Some("P12M"));
    for bad in [
        "",
        "M",
        "0+M",
        "1+X",
        "-1+M",
        "%2B1+M",
        "1.5+M",
        "1+%C3%A9",
        "99999999999+D",
    ] {
        assert_eq!(period(bad), None, "{bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Idempotency

#[test]
fn a_resend_gives_the_same_event() {
    let first = event(WEB_ACCEPT);
    let again = event(WEB_ACCEPT);
    assert_eq!(first, again);
    assert_eq!(first.id, event_id(&first.idempotency_key));
    assert!(first.idempotency_key.starts_with("autodesk:src_1:"));
}

#[test]
fn field_order_does_not_change_the_event_id() {
    for body in [
        WEB_ACCEPT,
        "txn_type=subscr_cancel&subscr_id=S1&subscr_date=01%3A50%3A31+May+20%2C+2014+PDT",
        "txn_type=new_case&case_id=C1&case_type=dispute",
    ] {
        let mut fields: Vec<&str> = body.split('&').collect();
        let forward = event(&fields.join("&"));
        fields.reverse();
        let backward = event(&fields.join("&"));
        assert_eq!(forward.id, backward.id, "{body}");
    }
}

#[test]
fn distinct_notifications_get_distinct_ids() {
    let id = |body: &str| event(body).id;
    let pairs = [
        // One payment, pending then completed.
        (
            "txn_type=web_accept&txn_id=T1&payment_status=Pending",
            "txn_type=web_accept&txn_id=T1&payment_status=Completed",
        ),
        // A payment and its refund.
        (
            "txn_type=web_accept&txn_id=T1&payment_status=Completed",
            "txn_id=T2&parent_txn_id=T1&payment_status=Refunded",
        ),
        // A sign-up and a cancellation of one subscription.
        (
            "txn_type=subscr_signup&subscr_id=S1&subscr_date=01%3A50%3A31+May+20%2C+2014+PDT",
            "txn_type=subscr_cancel&subscr_id=S1&subscr_date=01%3A50%3A31+May+20%2C+2014+PDT",
        ),
        // Two failed renewals of one subscription.
        (
            "txn_type=subscr_failed&subscr_id=S1&payment_date=03%3A00%3A00+Jun+20%2C+2014+PDT",
            "txn_type=subscr_failed&subscr_id=S1&payment_date=03%3A00%3A00+Jun+25%2C+2014+PDT",
        ),
        // A payment and a dispute opened about it.
        (
            "txn_type=web_accept&txn_id=T1&payment_status=Completed",
            "txn_type=new_case&txn_id=T1",
        ),
        // A separator inside a value cannot make two keys equal.
        (
            "txn_id=A%3AB&payment_status=Completed",
            "txn_id=A&txn_type=B&payment_status=Completed",
        ),
        // Notifications without txn_id or subscr_id, told apart by content.
        (
            "txn_type=masspay&payer_id=P1",
            "txn_type=masspay&payer_id=P2",
        ),
    ];
    for (a, b) in pairs {
        assert_ne!(id(a), id(b), "{a} vs {b}");
    }
}

#[test]
fn the_same_notification_on_two_sources_gets_two_ids() {
    let a = process_with(&Config::default(), WEB_ACCEPT.as_bytes(), "src_a").expect("accepted");
    let b = process_with(&Config::default(), WEB_ACCEPT.as_bytes(), "src_b").expect("accepted");
    assert_ne!(a.id, b.id);
}

#[test]
fn verified_exposes_the_decoded_fields_and_the_sandbox_flag() {
    let verified = Autodesk::verify(
        &Config::default(),
        b"txn_id=T1&test_ipn=1&first_name=J%F6rg",
    )
    .expect("accepted");
    assert!(verified.is_sandbox());
    assert_eq!(
        verified.fields().collect::<Vec<_>>(),
        [("txn_id", "T1"), ("test_ipn", "1"), ("first_name", "Jörg")]
    );
}

// ---------------------------------------------------------------------------------------------
// No panics, whatever the input

/// What must hold of every event, whatever the body.
fn check_invariants(e: &Event) {
    assert_eq!(e.id, event_id(&e.idempotency_key));
    assert!(e.idempotency_key.starts_with("autodesk:src_1:"));
    assert!(e.store_data.raw.to_value().is_object());
    if let Some(t) = &e.transaction {
        if t.amount.is_some() || t.fee.is_some() {
            assert!(t.currency.is_some(), "an amount without a currency");
        }
        if let Some(c) = &t.currency {
            assert!(
                c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()),
                "{c:?}"
            );
        }
    }
    if let Some(country) = e.customer.as_ref().and_then(|c| c.country.as_ref()) {
        assert!(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()));
    }
    if let Some(period) = e
        .subscription
        .as_ref()
        .and_then(|s| s.billing_period.as_ref())
    {
        assert!(period.starts_with('P') && period.len() >= 3, "{period:?}");
    }
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "txn_type",
            "payment_status",
            "txn_id",
            "subscr_id",
            "parent_txn_id",
            "mc_gross",
            "payment_gross",
            "mc_fee",
            "payment_fee",
            "mc_currency",
            "payment_date",
            "subscr_date",
            "charset",
            "receiver_email",
            "business",
            "receiver_id",
            "appId",
            "item_number",
            "item_number1",
            "item_name",
            "residence_country",
            "period1",
            "amount1",
            "mc_amount1",
            "period3",
            "recurring",
            "test_ipn",
            "ipn_track_id",
            "buyer_adsk_account",
            "payer_email",
        ])
        .prop_map(str::to_owned),
        "[a-z_%+=&]{0,8}",
    ]
}

fn field_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            "web_accept",
            "subscr_signup",
            "subscr_payment",
            "subscr_cancel",
            "subscr_eot",
            "subscr_failed",
            "subscr_modify",
            "FREE",
            "TRIAL",
            "Free30DayTrial",
            "Completed",
            "Refunded",
            "Reversed",
            "Canceled_Reversal",
            "Pending",
            "Denied",
            "Voided",
            "Expired",
            "5.50",
            "-4.00",
            "12",
            "",
            "0.00",
            "1e9",
            "9223372036854775807.99",
            "USD",
            "JPY",
            "HUF",
            "usd",
            "UTF-8",
            "windows-1252",
            "Shift_JIS",
            "utf-16",
            "replacement",
            "x-bogus",
            "23:04:06 Feb 02, 2009 PST",
            "Sun May 24 2015 14:32:31 GMT-0700 (PDT)",
            "N/A",
            "{0}",
            "1 M",
            "7 D",
            "1",
            "0",
            "US",
            "%",
            "%zz",
            "+",
            "a@b",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..24),
        "\\PC{0,12}".prop_map(String::into_bytes),
    ]
}

/// A form of known and random names, values escaped or sent raw, in any order.
fn near_valid_form() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((field_name(), field_value(), any::<bool>()), 0..14).prop_map(|fields| {
        let mut body = Vec::new();
        for (i, (name, value, escape)) in fields.into_iter().enumerate() {
            if i > 0 {
                body.push(b'&');
            }
            body.extend_from_slice(name.as_bytes());
            body.push(b'=');
            if escape {
                for b in value {
                    if b.is_ascii_alphanumeric() {
                        body.push(b);
                    } else {
                        body.extend_from_slice(format!("%{b:02X}").as_bytes());
                    }
                }
            } else {
                body.extend_from_slice(&value);
            }
        }
        body
    })
}

fn strict_config() -> Config {
    Config {
        receiver_emails: vec!["a@b".into()],
        receiver_ids: vec!["1".into()],
        app_ids: vec!["12".into()],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        for config in [Config::default(), strict_config()] {
            if let Ok(e) = process_with(&config, &body, "src_1") {
                check_invariants(&e);
            }
        }
    }

    #[test]
    fn near_valid_forms_never_panic_and_keep_the_invariants(body in near_valid_form()) {
        for config in [Config::default(), strict_config()] {
            match process_with(&config, &body, "src_1") {
                Ok(e) => {
                    check_invariants(&e);
                    // Deterministic: the same bytes give the same event.
                    prop_assert_eq!(process_with(&config, &body, "src_1").ok(), Some(e));
                }
                Err((category, message)) => {
                    prop_assert!(!message.is_empty());
                    prop_assert!(matches!(category, ErrorCategory::Malformed | ErrorCategory::Unauthenticated));
                }
            }
        }
    }

    #[test]
    fn money_and_date_parsers_never_panic(text in "\\PC{0,40}", currency in "[A-Z]{3}") {
        let _ = money::minor_units(&text, &currency);
        let _ = money::is_zero(&text);
        let _ = date::parse(&text);
    }
}
