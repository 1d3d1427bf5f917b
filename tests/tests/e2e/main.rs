//! End-to-end tests: real HTTP, real RabbitMQ, real SQLite and PostgreSQL.
//!
//! Each test has its own exchange prefix (`t_<uuid>`), its own database (a SQLite temp file or a
//! fresh PostgreSQL database) and cleans up what it declared, so tests run in parallel and rerun.

mod crash;
mod deploy;
mod forward;
mod ingest;
mod management;
mod outage;
mod replicas;
mod shutdown;
