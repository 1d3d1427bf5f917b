//! Verify + normalize speed per store, on the accepted golden cases (real and generated bodies).
//!
//! `cargo bench -p storehook-adapters --bench normalize`; criterion reports time per notification
//! (throughput in elements), over every accepted case of the store in turn.

use std::fs;
use std::hint::black_box;
use std::path::Path;

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use storehook_adapters::{Context, SourceConfig, Store, process};

struct Case {
    config: SourceConfig,
    body: Vec<u8>,
    tenant: String,
    source: String,
    received_at: DateTime<Utc>,
}

fn config(store: Store, c: &Value) -> Option<SourceConfig> {
    match store {
        Store::RuStore => serde_json::from_value(c.clone())
            .ok()
            .map(SourceConfig::RuStore),
        Store::Autodesk => serde_json::from_value(c.clone())
            .ok()
            .map(SourceConfig::Autodesk),
    }
}

/// The store's golden cases whose expected outcome is a list of events.
fn accepted_cases(store: Store) -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(store.as_str());
    let mut dirs: Vec<_> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs.iter()
        .filter_map(|dir| {
            let expected: Value =
                serde_json::from_slice(&fs::read(dir.join("expected.json")).ok()?).ok()?;
            expected.get("events")?;
            let case: Value =
                serde_json::from_slice(&fs::read(dir.join("case.json")).ok()?).ok()?;
            Some(Case {
                config: config(store, &case["config"])?,
                body: fs::read(dir.join("body")).ok()?,
                tenant: case["tenant"].as_str()?.to_owned(),
                source: case["source"].as_str()?.to_owned(),
                received_at: case["received_at"].as_str()?.parse().ok()?,
            })
        })
        .collect()
}

fn bench_normalize(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize");
    for store in Store::ALL {
        let cases = accepted_cases(*store);
        assert!(!cases.is_empty(), "no accepted golden case for {store}");
        group.throughput(Throughput::Elements(cases.len() as u64));
        group.bench_function(store.as_str(), |b| {
            b.iter(|| {
                for case in &cases {
                    let ctx = Context {
                        tenant: &case.tenant,
                        source: &case.source,
                        received_at: case.received_at,
                    };
                    let events = process(&case.config, black_box(&case.body), &ctx);
                    black_box(events.ok());
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_normalize);
criterion_main!(benches);
