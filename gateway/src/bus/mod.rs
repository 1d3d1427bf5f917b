//! Everything RabbitMQ: the event wire encoding, the connection supervisor and the
//! confirm-mode publisher.
//!
//! - [`connection`]: keeps one connection and confirm-mode channel open, reconnecting with backoff
//!   and re-declaring the topology after every reconnect.
//! - [`publisher`]: publishes events (persistent, `mandatory`, confirmed) on the current channel.

pub mod connection;
pub mod publisher;

pub use connection::{BusState, Link};
pub use publisher::{Outgoing, PublishOutcome, Publisher};

use storehook_schema::Event;

/// The exact bytes published for an event (and printed by `storehook normalize`): its compact JSON.
pub fn encode_event(event: &Event) -> Vec<u8> {
    encode_event_string(event).into_bytes()
}

/// [`encode_event`] as a string (the ledger stores it as text).
pub fn encode_event_string(event: &Event) -> String {
    // An `Event` is plain data (strings, numbers, a JSON value with string keys): serializing it
    // cannot fail.
    serde_json::to_string(event).unwrap_or_default()
}

/// The topic exchange events are published to: `<prefix>.events`.
pub fn events_exchange(prefix: &str) -> String {
    format!("{prefix}.events")
}
