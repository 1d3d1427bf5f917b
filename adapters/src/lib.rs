//! # storehook store adapters
//!
//! An adapter turns the raw bytes a store POSTed into [`Event`]s, in two steps that cannot be
//! swapped: [`StoreAdapter::verify`] proves the notification is authentic and for this source, and
//! only its output, a verified notification, can be given to [`StoreAdapter::normalize`].
//!
//! Everything here is pure: no I/O, no async, no clock. The time of receipt, the tenant and the
//! source come in through [`Context`], so the same bytes always give the same events (golden files
//! stay stable and a store's resend maps to the same event ids).
//!
//! ## Layout
//! - [`rustore`]: RuStore's AES-256-GCM encrypted JSON callbacks.
//! - [`autodesk`]: Autodesk App Store IPN (PayPal-style form posts).
//! - [`SourceConfig`] and [`process`]: the one entry point the gateway and the CLI call.
//! - [`AdapterError`]: every rejection, with an [`ErrorCategory`] the gateway maps to HTTP once.
//!
//! Adding a store: a new folder `src/<store>/` implementing [`StoreAdapter`], a variant in
//! [`storehook_schema::Store`] and in [`SourceConfig`], and fixtures under `testdata/<store>/`.

use chrono::{DateTime, Utc};
pub use storehook_schema::{Event, Store};

pub mod autodesk;
pub mod rustore;

/// What an adapter needs to know besides the bytes: who owns the source and when the notification
/// arrived. Passed in so that `normalize` is deterministic.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The tenant (app maker) that owns the source.
    pub tenant: &'a str,
    /// The source (store connection) id.
    pub source: &'a str,
    /// When storehook received the request.
    pub received_at: DateTime<Utc>,
}

/// The kind of a rejection; the gateway maps each to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// Not provably from the store for this source: a payload that fails to decrypt or authenticate,
    /// an app id or receiver that is not this source's. HTTP 401.
    Unauthenticated,
    /// Cannot be read: not the store's format, missing required fields, invalid encodings. HTTP 400.
    Malformed,
}

impl ErrorCategory {
    /// A short lower-case name for logs, metrics and the CLI.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Unauthenticated => "unauthenticated",
            ErrorCategory::Malformed => "malformed",
        }
    }
}

impl std::fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a notification was rejected, in words a person can act on. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{category}: {message}")]
pub struct AdapterError {
    /// The kind of rejection.
    pub category: ErrorCategory,
    /// What is wrong, e.g. `payload does not decrypt with the current or previous key`.
    pub message: String,
}

impl AdapterError {
    /// An [`ErrorCategory::Unauthenticated`] rejection.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        AdapterError {
            category: ErrorCategory::Unauthenticated,
            message: message.into(),
        }
    }

    /// An [`ErrorCategory::Malformed`] rejection.
    pub fn malformed(message: impl Into<String>) -> Self {
        AdapterError {
            category: ErrorCategory::Malformed,
            message: message.into(),
        }
    }
}

/// One store's adapter. Both methods are required: there is no default verification.
pub trait StoreAdapter {
    /// The store this adapter speaks for.
    const STORE: Store;
    /// The source's credentials and allow-lists.
    type Config;
    /// A notification that passed [`StoreAdapter::verify`]; the only input `normalize` accepts.
    type Verified;

    /// Decode the raw body once and prove it authentic for this source.
    fn verify(config: &Self::Config, body: &[u8]) -> Result<Self::Verified, AdapterError>;

    /// Map a verified notification to one or more events. Deterministic: same input, same output.
    fn normalize(verified: Self::Verified, ctx: &Context<'_>) -> Result<Vec<Event>, AdapterError>;
}

/// A source's store and its adapter configuration.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// A RuStore source.
    RuStore(rustore::Config),
    /// An Autodesk App Store source.
    Autodesk(autodesk::Config),
}

impl SourceConfig {
    /// Which store this source is for.
    pub fn store(&self) -> Store {
        match self {
            SourceConfig::RuStore(_) => Store::RuStore,
            SourceConfig::Autodesk(_) => Store::Autodesk,
        }
    }
}

/// Verify and normalize one raw request body for a source.
pub fn process(
    config: &SourceConfig,
    body: &[u8],
    ctx: &Context<'_>,
) -> Result<Vec<Event>, AdapterError> {
    fn run<A: StoreAdapter>(
        config: &A::Config,
        body: &[u8],
        ctx: &Context<'_>,
    ) -> Result<Vec<Event>, AdapterError> {
        A::normalize(A::verify(config, body)?, ctx)
    }
    match config {
        SourceConfig::RuStore(config) => run::<rustore::RuStore>(config, body, ctx),
        SourceConfig::Autodesk(config) => run::<autodesk::Autodesk>(config, body, ctx),
    }
}
