//! RuStore adapter behaviour beyond the golden cases: key parsing and redaction, configuration,
//! key rotation, determinism, tampering, and that no input whatsoever makes it panic.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};
use storehook_adapters::rustore::{AesKey, Config, KeySlot, RuStore};
use storehook_adapters::{Context, ErrorCategory, StoreAdapter};
use storehook_schema::{Entitlement, Environment, EventType, event_id};

/// The documented test vector of `stores/rustore.md`.
const DOC_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const DOC_ENVELOPE: &str = include_str!("../testdata/rustore/documented_vector/body");

fn key_bytes(seed: u8) -> [u8; 32] {
    std::array::from_fn(|i| seed.wrapping_add(i as u8))
}

fn key(seed: u8) -> AesKey {
    AesKey::parse(&STANDARD.encode(key_bytes(seed))).expect("base64 of 32 bytes is a key")
}

fn config(app_id: Option<&str>) -> Config {
    Config {
        key: key(0),
        previous_key: None,
        app_id: app_id.map(str::to_owned),
    }
}

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

/// Seals a plaintext as RuStore does: base64(IV ‖ ciphertext ‖ tag).
fn seal(key_seed: u8, iv: [u8; 12], plaintext: &[u8]) -> String {
    let cipher = Aes256Gcm::new(&key_bytes(key_seed).into());
    let mut sealed = iv.to_vec();
    sealed.extend(
        cipher
            .encrypt(&Nonce::from(iv), plaintext)
            .expect("AES-GCM encrypts any plaintext"),
    );
    STANDARD.encode(sealed)
}

fn envelope(id: &str, payload: &str) -> Vec<u8> {
    json!({"id": id, "timestamp": "2025-11-18T10:38:58.619Z", "payload": payload})
        .to_string()
        .into_bytes()
}

fn notification(id: &str, payload: &Value) -> Vec<u8> {
    envelope(id, &seal(0, [7; 12], payload.to_string().as_bytes()))
}

fn payment(status: &str) -> Value {
    json!({
        "notification_type": "INVOICE_STATUS",
        "app_id": 12345,
        "data": json!({"product_code": "p", "status_new": status, "invoice_id": "1"}).to_string(),
    })
}

#[test]
fn parses_rustore_key_as_base64_then_as_32_raw_characters() {
    let from_base64 = AesKey::parse(DOC_KEY).expect("the documented key");
    assert_eq!(from_base64, key(0));
    assert_eq!(
        AesKey::parse(&format!("  {DOC_KEY}\n")).ok(),
        Some(key(0)),
        "surrounding whitespace of a pasted key is ignored"
    );
    let raw = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        AesKey::parse(raw).ok(),
        AesKey::parse(&STANDARD.encode(raw)).ok()
    );
}

#[test]
fn rejects_rustore_keys_of_the_wrong_size_without_echoing_them() {
    for text in [
        "",
        "c2hvcnQ=",
        "a-raw-key-that-is-31-characters",
        "a raw key that is far too long to be 32 bytes",
    ] {
        let error = AesKey::parse(text).expect_err("not a 32-byte key");
        assert_eq!(error.category, ErrorCategory::Malformed);
        assert!(error.message.contains("32"), "{}", error.message);
        if !text.is_empty() {
            assert!(!error.message.contains(text), "{}", error.message);
        }
    }
}

#[test]
fn rustore_key_debug_is_redacted() {
    let config = Config {
        key: key(0),
        previous_key: Some(key(1)),
        app_id: Some("12345".into()),
    };
    let shown = format!("{config:?}");
    assert!(shown.contains("<redacted>"));
    assert!(!shown.contains(DOC_KEY) && !shown.contains("[0, 1, 2"));
}

#[test]
fn rustore_config_deserializes_from_json_with_app_id_as_string_or_number() {
    let config: Config =
        serde_json::from_value(json!({"key": DOC_KEY, "app_id": 12345})).expect("valid config");
    assert_eq!(config.key, key(0));
    assert_eq!(config.previous_key, None);
    assert_eq!(config.app_id.as_deref(), Some("12345"));

    let config: Config = serde_json::from_value(json!({
        "key": DOC_KEY, "previous_key": STANDARD.encode(key_bytes(1)), "app_id": "12345"
    }))
    .expect("valid config");
    assert_eq!(config.previous_key, Some(key(1)));

    let config: Config = serde_json::from_value(json!({"key": DOC_KEY, "previous_key": null}))
        .expect("previous_key and app_id are optional");
    assert_eq!(config.app_id, None);
}

#[test]
fn rustore_config_rejects_unknown_fields_bad_keys_and_empty_app_ids() {
    assert!(serde_json::from_value::<Config>(json!({"key": DOC_KEY, "aes_key": "x"})).is_err());
    assert!(serde_json::from_value::<Config>(json!({"key": DOC_KEY, "app_id": " "})).is_err());
    let secret = "this-is-a-secret-but-not-a-valid-key";
    let error = serde_json::from_value::<Config>(json!({"key": secret}))
        .expect_err("not a key")
        .to_string();
    assert!(!error.contains(secret), "{error}");
    assert!(error.contains("32 bytes"), "{error}");
}

#[test]
fn decrypts_the_documented_rustore_vector() {
    let verified = RuStore::verify(&config(Some("12345")), DOC_ENVELOPE.as_bytes())
        .expect("the documented vector verifies");
    assert_eq!(verified.notification_id(), "12345");
    assert_eq!(verified.notification_type(), Some("INVOICE_STATUS_SANDBOX"));
    assert_eq!(verified.decrypted_with(), KeySlot::Current);
    assert!(verified.payload()["data"].is_string(), "payload is as sent");

    let events = RuStore::normalize(verified, &ctx("src_1")).expect("maps");
    let [event] = events.as_slice() else {
        panic!("one event per notification, got {}", events.len());
    };
    assert_eq!(event.event_type, EventType::TransactionSucceeded);
    assert_eq!(event.environment, Environment::Sandbox);
    assert_eq!(event.entitlement, Entitlement::Grant);
    // The id the schema crate's own test pins, recomputable in Python.
    assert_eq!(
        event.idempotency_key,
        "rustore:src_1:12345:transaction.succeeded"
    );
    assert_eq!(event.id.to_string(), "362f037f-3e52-5766-af9d-a77d852c7771");
    assert_eq!(event.store_data.raw.to_value()["data"]["invoice_id"], "123");
}

#[test]
fn accepts_the_previous_rustore_key_during_a_rotation() {
    let rotated = Config {
        key: key(9),
        previous_key: Some(key(0)),
        app_id: None,
    };
    let verified = RuStore::verify(&rotated, DOC_ENVELOPE.as_bytes()).expect("previous key opens");
    assert_eq!(verified.decrypted_with(), KeySlot::Previous);

    let without_previous = Config {
        previous_key: None,
        ..rotated
    };
    let error = RuStore::verify(&without_previous, DOC_ENVELOPE.as_bytes()).expect_err("no key");
    assert_eq!(error.category, ErrorCategory::Unauthenticated);
}

#[test]
fn rejects_tampered_rustore_payload_whatever_bit_is_flipped() {
    let body: Value = serde_json::from_str(DOC_ENVELOPE).expect("JSON");
    let sealed = STANDARD
        .decode(body["payload"].as_str().expect("payload"))
        .expect("base64");
    for index in 0..sealed.len() {
        let mut tampered = sealed.clone();
        tampered[index] ^= 0x80;
        let error = RuStore::verify(
            &config(None),
            &envelope("12345", &STANDARD.encode(&tampered)),
        )
        .expect_err("tampered");
        assert_eq!(
            error.category,
            ErrorCategory::Unauthenticated,
            "byte {index}"
        );
        assert!(error.message.contains("current or previous key"));
    }
}

#[test]
fn rejects_rustore_notifications_for_another_app_naming_both_ids() {
    let mut payload = payment("CONFIRMED");
    payload["app_id"] = json!(777);
    let error = RuStore::verify(&config(Some("12345")), &notification("1", &payload))
        .expect_err("another app");
    assert_eq!(error.category, ErrorCategory::Unauthenticated);
    assert!(error.message.contains("777") && error.message.contains("12345"));

    payload.as_object_mut().map(|p| p.remove("app_id"));
    let error = RuStore::verify(&config(Some("12345")), &notification("1", &payload))
        .expect_err("no app id while one is configured");
    assert_eq!(error.category, ErrorCategory::Unauthenticated);
    assert!(RuStore::verify(&config(None), &notification("1", &payload)).is_ok());
}

#[test]
fn rustore_resend_yields_the_same_event_and_sources_do_not_collide() {
    let body = notification("42", &payment("PAID"));
    let once = storehook_adapters::process(
        &storehook_adapters::SourceConfig::RuStore(config(None)),
        &body,
        &ctx("src_a"),
    )
    .expect("accepted");
    let again = RuStore::normalize(
        RuStore::verify(&config(None), &body).expect("verifies"),
        &ctx("src_a"),
    )
    .expect("accepted");
    assert_eq!(once, again);
    let other = RuStore::normalize(
        RuStore::verify(&config(None), &body).expect("verifies"),
        &ctx("src_b"),
    )
    .expect("accepted");
    assert_ne!(once[0].id, other[0].id);
    assert_eq!(
        once[0].id,
        event_id("rustore:src_a:42:transaction.authorized")
    );
}

#[test]
fn rustore_data_as_string_or_object_gives_the_same_event() {
    let as_string = payment("REFUNDED");
    let mut as_object = as_string.clone();
    as_object["data"] =
        serde_json::from_str(as_string["data"].as_str().expect("string")).expect("JSON");
    let map = |payload: &Value| {
        RuStore::normalize(
            RuStore::verify(&config(Some("12345")), &notification("7", payload)).expect("verifies"),
            &ctx("src"),
        )
        .expect("maps")
    };
    let events = map(&as_string);
    assert_eq!(events, map(&as_object));
    assert_eq!(events[0].event_type, EventType::TransactionRefunded);
    assert_eq!(events[0].entitlement, Entitlement::Revoke);
}

#[test]
fn rustore_payment_data_that_is_not_an_object_is_malformed_not_dropped_silently() {
    for data in [json!("[1,2]"), json!(17), json!("{\"status_new\":")] {
        let mut payload = payment("CONFIRMED");
        payload["data"] = data.clone();
        let verified = RuStore::verify(&config(None), &notification("8", &payload))
            .expect("authentic, so verification passes");
        let error = RuStore::normalize(verified, &ctx("src")).expect_err("unreadable data");
        assert_eq!(error.category, ErrorCategory::Malformed, "{data}");
        assert!(
            error.message.contains("INVOICE_STATUS"),
            "{}",
            error.message
        );
    }
}

#[test]
fn rustore_notification_without_type_or_data_becomes_unrecognized() {
    for payload in [
        json!({"app_id": 12345}),
        json!({"notification_type": "INVOICE_STATUS", "app_id": 12345}),
        json!({"notification_type": 5, "app_id": 12345, "data": [1]}),
        json!({"notification_type": "SUBSCRIPTION_EVENT", "data": "{}"}),
    ] {
        let verified =
            RuStore::verify(&config(None), &notification("9", &payload)).expect("authentic");
        let events = RuStore::normalize(verified, &ctx("src")).expect("never dropped");
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].event_type,
            EventType::StoreUnrecognized,
            "{payload}"
        );
        assert_eq!(events[0].entitlement, Entitlement::None);
    }
}

/// `store_data.raw` as a JSON tree should read it: the payload, with a `data` string that holds a
/// JSON object or array replaced by what it holds. Every number is read from the text that was
/// sent, once, as the raw is (serde_json's float parsing does not always give back the float that
/// was written).
fn expected_raw(payload: &Value) -> Value {
    let mut raw: Value = serde_json::from_str(&payload.to_string()).expect("JSON");
    if let Some(data) = raw.get_mut("data")
        && let Some(text) = data.as_str()
        && let Ok(parsed) = serde_json::from_str::<Value>(text)
        && (parsed.is_object() || parsed.is_array())
    {
        *data = parsed;
    }
    raw
}

#[test]
fn rustore_raw_is_the_payload_with_data_unwrapped() {
    let cases = [
        // A repeated name keeps its last value, as a JSON tree has it; escapes in names and
        // values are read, line breaks between tokens dropped.
        (
            "{ \"notification_type\" : \"TEST_EVENT\", \"app_id\": 1, \"app_id\": 2.50,\r\n \
             \"d\\u0061ta\": {\n\t\"b\" : [1,\r\n 2], \"a\": \"\\u00e9\\n\" } }",
            json!({"notification_type": "TEST_EVENT", "app_id": 2.5,
                   "data": {"a": "é\n", "b": [1, 2]}}),
        ),
        // A string holding an array is unwrapped; one holding a number stays a string.
        (
            r#"{"notification_type": "SOMETHING_NEW", "data": "[1, {\"x\": null}]"}"#,
            json!({"notification_type": "SOMETHING_NEW", "data": [1, {"x": null}]}),
        ),
        (
            r#"{"notification_type": "TEST_EVENT", "data": "42"}"#,
            json!({"notification_type": "TEST_EVENT", "data": "42"}),
        ),
        // A string holding an object with a repeated name: the last value, as for the payload.
        (
            r#"{"notification_type": "INVOICE_STATUS", "data": "{\"status_new\": \"PAID\", \"status_new\": \"CONFIRMED\"}"}"#,
            json!({"notification_type": "INVOICE_STATUS", "data": {"status_new": "CONFIRMED"}}),
        ),
    ];
    for (payload, expected) in cases {
        let body = envelope("7", &seal(0, [7; 12], payload.as_bytes()));
        let verified = RuStore::verify(&config(None), &body).expect("authentic");
        let events = RuStore::normalize(verified, &ctx("src")).expect("maps");
        let raw = &events[0].store_data.raw;
        assert_eq!(raw.to_value(), expected, "{payload}");
        assert!(
            !raw.json().contains(['\n', '\r']),
            "one line: {}",
            raw.json()
        );
        assert_eq!(
            serde_json::to_value(&events[0]).expect("serializes")["store_data"]["raw"],
            expected,
            "the event's JSON carries the same"
        );
    }
}

/// Runs both steps; the property is that this returns at all.
fn run(config: &Config, body: &[u8]) {
    if let Ok(verified) = RuStore::verify(config, body) {
        let _ = RuStore::normalize(verified, &ctx("src"));
    }
}

/// JSON values of any shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "CONFIRMED",
            "paid",
            "ACTIVATED",
            "PAYMENT_FAILED",
            "HOLD",
            "TRIAL",
            "CLOSED",
            "TERMINATED",
            "2025-11-18T13:38:58.6191234+03:00",
            "{}",
            "{\"status_new\":1}",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "status_new",
                    "subscription_event_type",
                    "period_new",
                    "status_new",
                    "change_status_time",
                    "event_time",
                    "invoice_id",
                    "purchase_id",
                    "product_code",
                    "autorenewing",
                    "order_id",
                    "x",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Decrypted payloads that look like RuStore's, with every part randomized.
fn near_valid_payload() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop_oneof![
            prop::sample::select(vec![
                "INVOICE_STATUS",
                "INVOICE_STATUS_SANDBOX",
                "SUBSCRIPTION_EVENT",
                "SUBSCRIPTION_EVENT_SANDBOX",
                "TEST_EVENT",
                "TEST_EVENT_SANDBOX",
                "_SANDBOX",
            ])
            .prop_map(Value::from),
            any_json(),
        ]),
        prop::option::of(prop_oneof![
            Just(json!(12345)),
            Just(json!("12345")),
            any_json()
        ]),
        prop::option::of(prop_oneof![
            any_json().prop_map(|data| Value::from(data.to_string())),
            any_json(),
        ]),
    )
        .prop_map(|(notification_type, app_id, data)| {
            let mut payload = serde_json::Map::new();
            for (name, value) in [
                ("notification_type", notification_type),
                ("app_id", app_id),
                ("data", data),
            ] {
                if let Some(value) = value {
                    payload.insert(name.to_owned(), value);
                }
            }
            Value::Object(payload)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rustore_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        run(&config(Some("12345")), &body);
    }

    #[test]
    fn rustore_never_panics_on_envelopes_with_random_payload_bytes(
        id in prop::option::of(any_json()),
        timestamp in prop::option::of(any_json()),
        sealed in prop::collection::vec(any::<u8>(), 0..96),
        payload_is_base64 in any::<bool>(),
    ) {
        let mut body = serde_json::Map::new();
        if let Some(id) = id { body.insert("id".into(), id); }
        if let Some(timestamp) = timestamp { body.insert("timestamp".into(), timestamp); }
        let payload = if payload_is_base64 {
            STANDARD.encode(&sealed)
        } else {
            String::from_utf8_lossy(&sealed).into_owned()
        };
        body.insert("payload".into(), payload.into());
        let body = Value::Object(body).to_string();
        let error = RuStore::verify(&config(None), body.as_bytes()).expect_err("no key opens it");
        prop_assert!(matches!(error.category, ErrorCategory::Malformed | ErrorCategory::Unauthenticated));
    }

    #[test]
    fn rustore_never_panics_on_valid_ciphertext_of_random_plaintext(
        plaintext in prop::collection::vec(any::<u8>(), 0..256),
        iv in any::<[u8; 12]>(),
    ) {
        run(&config(Some("12345")), &envelope("1", &seal(0, iv, &plaintext)));
    }

    #[test]
    fn rustore_maps_every_authentic_readable_payload_to_exactly_one_event(
        payload in near_valid_payload(),
        iv in any::<[u8; 12]>(),
    ) {
        let body = envelope("1", &seal(0, iv, payload.to_string().as_bytes()));
        let verified = RuStore::verify(&config(None), &body);
        prop_assert!(verified.is_ok(), "authentic JSON object payloads verify: {:?}", verified.err());
        if let Ok(verified) = verified {
            match RuStore::normalize(verified, &ctx("src")) {
                Ok(events) => {
                    prop_assert_eq!(events.len(), 1);
                    prop_assert_eq!(events[0].store_data.raw.to_value(), expected_raw(&payload));
                }
                Err(error) => prop_assert_eq!(error.category, ErrorCategory::Malformed),
            }
        }
    }
}
