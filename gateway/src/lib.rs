//! # storehook gateway
//!
//! The one binary between the app stores and an app maker's backend: it receives store
//! notifications over HTTP, verifies and normalizes them with [`storehook_adapters`], commits them
//! to a ledger, and publishes the events to RabbitMQ with publisher confirms.
//!
//! # Layout
//! - [`cli`]: the command line (`serve`, `forward`, `normalize`, `retry-schedule`, `replay-dead`,
//!   `definitions`, `healthcheck`, `ingest-key`); `main.rs` only calls [`cli::main`].
//!   [`normalize`] is the dry-run command.
//! - [`configuration`]: layered settings (defaults → file → `STOREHOOK__…`), validated at start.
//! - [`telemetry`]: structured logs.
//! - [`startup`]: [`startup::Application`] builds the shared parts and starts each role;
//!   `run_until_stopped` runs them.
//! - [`http`]: the actix-web edge: `/ingest/{store}/{ingest_key}`, `/healthz`, `/readyz`,
//!   `/metrics`, and the one error type that maps rejections to statuses.
//! - [`api`]: the management API under `/v1` (tenants, API keys, sources, endpoints, events,
//!   deliveries) and its OpenAPI document at `/openapi.json`.
//! - [`ledger`]: sqlx on SQLite or PostgreSQL: registry, group-committing ledger writer, outbox
//!   queries; migrations live in `gateway/migrations/`.
//! - [`bus`]: RabbitMQ: the connection supervisor (reconnects, re-declares the topology) and the
//!   confirm-mode publisher.
//! - [`outbox`]: the relay that publishes what was committed but not confirmed.
//! - [`metrics`]: the Prometheus metrics.
//!
//! # Ingest, step by step
//! request → source lookup by ingest-key hash (cached) → adapter verify + normalize → ledger
//! writer (group commit: the raw notification and its new events, deduplicated by idempotency
//! key) → publish the new events with confirms (bounded wait) → mark published → 200. If the
//! broker is away the request still answers 200 once committed, and the relay publishes later; if
//! the ledger cannot commit, 503 and the store retries.

pub mod api;
pub mod bus;
pub mod cli;
pub mod configuration;
pub mod forward;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod normalize;
pub mod outbox;
pub mod startup;
pub mod telemetry;
