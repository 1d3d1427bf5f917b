//! Verify + normalize speed per store, on the accepted golden cases (real and generated bodies).
//!
//! `cargo bench -p storehook-adapters --bench normalize`; criterion reports time per notification
//! (throughput in elements), over every accepted case of the store in turn.

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

criterion_group!(benches, bench_normalize);
criterion_main!(benches);
