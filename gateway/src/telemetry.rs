//! Structured logs with `tracing`: human-readable or one JSON object per line.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::configuration::{LogFormat, TelemetrySettings};

/// A subscriber for `settings`; `RUST_LOG`, when set, replaces the configured filter.
pub fn get_subscriber<W>(
    settings: &TelemetrySettings,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match settings.format {
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
        LogFormat::Pretty => Box::new(builder.finish()),
    }
}

/// Install `subscriber` for the whole process; a second call (tests) leaves the first in place.
pub fn init_subscriber(subscriber: Box<dyn Subscriber + Send + Sync>) {
    let _ = tracing::subscriber::set_global_default(subscriber);
}
