//! # storehook end-to-end support
//!
//! What the end-to-end suite (`tests/e2e`) and the load harness (`loadgen`) share.
//!
//! # Layout
//! - [`stores`]: store notifications made independently of the adapters: RuStore envelopes
//!   encrypted with the `aes-gcm` crate, Autodesk IPN form bodies.
//! - [`app`]: a storehook [`app::TestApp`] started in-process on port 0 with its own exchange prefix
//!   and database (a SQLite temp file or a fresh PostgreSQL database), or the real binary.
//! - [`broker`]: a RabbitMQ [`broker::Consumer`] bound by routing pattern, and a private RabbitMQ
//!   node ([`broker::PrivateNode`]) for tests that stop and start the broker.
//! - [`forwarding`]: a storehook running the webhook forwarder ([`forwarding::ForwardApp`]) with its
//!   own prefix, database and endpoints; events published straight to the exchange; the attempt
//!   log and the forwarder's queues.
//! - [`receiver`]: a scripted webhook receiver (hyper on port 0).
//! - [`process`]: the real `storehook` binary as a child process (SIGTERM, `/metrics`).

pub mod app;
pub mod broker;
pub mod forwarding;
pub mod process;
pub mod receiver;
pub mod stores;

/// RabbitMQ as the machine runs it (guest/guest).
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// PostgreSQL as the machine runs it (trust auth); each test makes its own database.
pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A name no other test run uses: `t_<32 hex>`.
pub fn unique_name() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}
