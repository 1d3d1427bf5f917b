//! The accepted golden cases of a store, loaded for the benchmarks.

use std::fs;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;
use storehook_adapters::{Context, SourceConfig, Store};

pub struct Case {
    pub config: SourceConfig,
    pub body: Vec<u8>,
    pub tenant: String,
    pub source: String,
    pub received_at: DateTime<Utc>,
}

impl Case {
    pub fn context(&self) -> Context<'_> {
        Context {
            tenant: &self.tenant,
            source: &self.source,
            received_at: self.received_at,
        }
    }
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
pub fn accepted_cases(store: Store) -> Vec<Case> {
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
