//! Integration tests of the storehook gateway crate: the `storehook` binary's command line, and
//! the management API (`management`) against an in-process gateway on SQLite and PostgreSQL.
//!
//! End-to-end behaviour over HTTP with RabbitMQ and the databases lives in the workspace's
//! `storehook-tests` crate.

mod management;
mod normalize;
