//! Verify + normalize speed per store, on the accepted golden cases (real and generated bodies);
//! and the same followed by writing each event as JSON, as ingest does before storing and
//! publishing it.
//!
//! `cargo bench -p storehook-adapters --bench normalize`; criterion reports time per pass over
//! every accepted case of the store in turn, and notifications per second (throughput in
//! elements).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use storehook_adapters::{Store, process};

mod cases;

use cases::accepted_cases;

fn bench_normalize(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize");
    for store in Store::ALL {
        let cases = accepted_cases(*store);
        assert!(!cases.is_empty(), "no accepted golden case for {store}");
        group.throughput(Throughput::Elements(cases.len() as u64));
        group.bench_function(store.as_str(), |b| {
            b.iter(|| {
                for case in &cases {
                    let events = process(&case.config, black_box(&case.body), &case.context());
                    black_box(events.ok());
                }
            })
        });
    }
    group.finish();
}

/// What ingest does with each notification: verify, normalize, and write every event as the JSON
/// it stores and publishes.
fn bench_to_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize_to_json");
    for store in Store::ALL {
        let cases = accepted_cases(*store);
        group.throughput(Throughput::Elements(cases.len() as u64));
        group.bench_function(store.as_str(), |b| {
            b.iter(|| {
                for case in &cases {
                    let events = process(&case.config, black_box(&case.body), &case.context());
                    for event in events.iter().flatten() {
                        black_box(serde_json::to_vec(event).ok());
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_normalize, bench_to_json);
criterion_main!(benches);
