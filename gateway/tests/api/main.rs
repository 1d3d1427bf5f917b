//! Integration tests of the storehook gateway crate: the `storehook` binary's command line.
//!
//! End-to-end behaviour over HTTP with RabbitMQ and the databases lives in the workspace's
//! `storehook-tests` crate.

mod normalize;
