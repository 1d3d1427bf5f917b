//! The golden-file harness.
//!
//! Every folder `testdata/<store>/<case>/` holds:
//! - `body`: the exact raw request body;
//! - `case.json`: `{description, provenance, tenant, source, received_at, config}`, where `config` is the
//!   source's adapter configuration (RuStore: `key`, `previous_key`, `app_id`; Autodesk:
//!   `receiver_emails`, `receiver_ids`, `app_ids`);
//! - `expected.json`: `{"events": [...]}` or `{"error": {"category", "message"}}`.
//!
//! One test walks them all and fails once, listing every mismatch with a diff. `BLESS=1` rewrites the
//! expectations instead; read the diff of a bless before committing it: the goldens are the spec.
//! `GOLDEN=<substring>` limits a run or a bless to the cases whose path contains it
//! (e.g. `GOLDEN=autodesk/` or `GOLDEN=rustore/payment_paid`).
//! Every expected event is also validated against `schema/event.v1.json`.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use storehook_adapters::{Context, SourceConfig, Store, process};
use storehook_schema::{Event, EventType, JSON_SCHEMA_V1, event_id};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[allow(dead_code)]
    description: String,
    #[allow(dead_code)]
    #[serde(default)]
    provenance: Option<String>,
    tenant: String,
    source: String,
    received_at: DateTime<Utc>,
    config: Value,
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn source_config(store: Store, config: Value) -> Result<SourceConfig, String> {
    let config = match store {
        Store::RuStore => serde_json::from_value(config).map(SourceConfig::RuStore),
        Store::Autodesk => serde_json::from_value(config).map(SourceConfig::Autodesk),
    };
    config.map_err(|e| format!("config: {e}"))
}

/// Runs one case and returns what `expected.json` should hold.
fn run_case(store: Store, dir: &Path) -> Result<Value, String> {
    let body = fs::read(dir.join("body")).map_err(|e| format!("body: {e}"))?;
    let case: Case = serde_json::from_slice(
        &fs::read(dir.join("case.json")).map_err(|e| format!("case.json: {e}"))?,
    )
    .map_err(|e| format!("case.json: {e}"))?;
    let config = source_config(store, case.config)?;
    let ctx = Context {
        tenant: &case.tenant,
        source: &case.source,
        received_at: case.received_at,
    };
    Ok(match process(&config, &body, &ctx) {
        Ok(events) => json!({ "events": events }),
        Err(error) => json!({
            "error": { "category": error.category.as_str(), "message": error.message }
        }),
    })
}

/// Checks what must hold of every event whatever the case: the JSON Schema, the id derivation, the
/// store, and that it reads back into the Rust type.
fn check_events(store: Store, outcome: &Value, validator: &jsonschema::Validator) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(events) = outcome.get("events").and_then(Value::as_array) else {
        return problems;
    };
    if events.is_empty() {
        problems.push("an accepted notification produced no event".to_owned());
    }
    for (i, event) in events.iter().enumerate() {
        for error in validator.iter_errors(event) {
            problems.push(format!(
                "event {i}: schema: {error} at {}",
                error.instance_path
            ));
        }
        match serde_json::from_value::<Event>(event.clone()) {
            Ok(parsed) => {
                if parsed.id != event_id(&parsed.idempotency_key) {
                    problems.push(format!("event {i}: id is not uuid5(idempotency_key)"));
                }
                if parsed.store != store {
                    problems.push(format!("event {i}: store is {}", parsed.store));
                }
            }
            Err(e) => problems.push(format!("event {i}: does not deserialize: {e}")),
        }
    }
    problems
}

fn schema_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(JSON_SCHEMA_V1).expect("event.v1.json is JSON");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .expect("event.v1.json is a valid JSON Schema")
}

fn case_dirs(store: Store) -> Vec<PathBuf> {
    let root = testdata().join(store.as_str());
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

#[test]
fn golden_cases_match_their_expected_outcome() {
    let bless = std::env::var_os("BLESS").is_some_and(|v| v == "1");
    // `GOLDEN=<substring>` limits a run (and a bless) to the cases whose path contains it.
    let only = std::env::var("GOLDEN").unwrap_or_default();
    let validator = schema_validator();
    let mut failures = Vec::new();
    let mut ran = 0;
    for store in Store::ALL {
        for dir in case_dirs(*store) {
            ran += 1;
            let name = dir
                .strip_prefix(testdata())
                .unwrap_or(&dir)
                .display()
                .to_string();
            if !name.contains(&only) {
                continue;
            }
            let actual = match run_case(*store, &dir) {
                Ok(actual) => actual,
                Err(e) => {
                    failures.push(format!("{name}: cannot run: {e}"));
                    continue;
                }
            };
            for problem in check_events(*store, &actual, &validator) {
                failures.push(format!("{name}: {problem}"));
            }
            let actual_text = format!("{:#}\n", actual);
            let expected_path = dir.join("expected.json");
            if bless {
                if let Err(e) = fs::write(&expected_path, &actual_text) {
                    failures.push(format!("{name}: cannot write expected.json: {e}"));
                }
                continue;
            }
            let expected_text = fs::read_to_string(&expected_path).unwrap_or_default();
            let expected: Option<Value> = serde_json::from_str(&expected_text).ok();
            if expected.as_ref() != Some(&actual) {
                let diff = similar::TextDiff::from_lines(&expected_text, &actual_text);
                failures.push(format!(
                    "{name}: outcome differs from expected.json (rerun with BLESS=1 to accept)\n{}",
                    diff.unified_diff()
                        .context_radius(3)
                        .header("expected", "actual")
                ));
            }
        }
    }
    assert!(
        ran > 0,
        "no golden case found under {}",
        testdata().display()
    );
    assert!(
        failures.is_empty(),
        "{} of {ran} golden cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_store_has_golden_cases() {
    for store in Store::ALL {
        assert!(
            !case_dirs(*store).is_empty(),
            "no golden case for {store} under testdata/{store}/"
        );
    }
}

#[test]
fn json_schema_type_vocabulary_is_the_rust_one() {
    let schema: Value = serde_json::from_str(JSON_SCHEMA_V1).expect("event.v1.json is JSON");
    let listed: Vec<&str> = schema["properties"]["type"]["enum"]
        .as_array()
        .expect("type enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let rust: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(listed, rust);
    let stores: Vec<&str> = schema["properties"]["store"]["enum"]
        .as_array()
        .expect("store enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        stores,
        Store::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()
    );
}

#[test]
fn json_schema_rejects_an_event_missing_a_contract_field() {
    let validator = schema_validator();
    let mut event = json!({
        "schema_version": "1",
        "id": event_id("k").to_string(),
        "idempotency_key": "k",
        "type": "test.ping",
        "tenant": "acme",
        "source": "src",
        "store": "rustore",
        "environment": "sandbox",
        "entitlement": "none",
        "occurred_at": "2026-01-02T03:04:05Z",
        "received_at": "2026-01-02T03:04:05.123Z",
        "customer": null,
        "product": null,
        "transaction": {"id": null, "original_id": null, "order_id": null,
                        "amount": 550, "currency": "USD", "fee": null},
        "subscription": null,
        "store_data": {"notification_id": null, "notification_type": null,
                       "status": null, "raw": {}}
    });
    assert!(validator.is_valid(&event));
    event["transaction"]["currency"] = Value::Null;
    assert!(!validator.is_valid(&event), "an amount needs a currency");
    event["transaction"]["currency"] = "USD".into();
    event["transaction"]["amount"] = json!(5.5);
    assert!(
        !validator.is_valid(&event),
        "amounts are integer minor units"
    );
    event["transaction"]["amount"] = json!(550);
    event["occurred_at"] = "2026-01-02T03:04:05+03:00".into();
    assert!(!validator.is_valid(&event), "times are UTC");
    event["occurred_at"] = "2026-01-02T03:04:05Z".into();
    event.as_object_mut().map(|o| o.remove("entitlement"));
    assert!(!validator.is_valid(&event), "entitlement is required");
}
