//! The webhook forwarder: every event to every matching endpoint, signed, retried on a RabbitMQ
//! ladder of TTL queues, every attempt recorded.
//!
//! # Layout
//! - [`schedule`]: the retry ladder, a pure function of (retries, first delay, window).
//! - [`signature`]: Standard Webhooks signing secrets and the `webhook-signature` header.
//! - [`ssrf`]: which addresses a webhook may not reach, checked at delivery time.

pub mod schedule;
pub mod signature;
pub mod ssrf;
