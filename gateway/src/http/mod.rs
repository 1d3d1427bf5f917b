//! The HTTP edge (actix-web): routes, shared state and the error mapping.
//!
//! - [`ingest`]: `POST /ingest/{store}/{ingest_key}`, what the stores call.
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`error`]: [`ApiError`], every status decided in one place.
//! - [`crate::api`]: the management API under `/v1` and `/openapi.json`.

pub mod error;
pub mod health;
pub mod ingest;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

pub use error::ApiError;
pub use ingest::IngestState;

use crate::bus::Publisher;
use crate::ledger::Ledger;

/// What the operational endpoints need.
#[derive(Debug)]
pub struct OpsState {
    pub ledger: Ledger,
    pub publisher: Publisher,
    pub registry: prometheus_client::registry::Registry,
}

/// Start serving on `listener`. `workers` 0 means one per core. Signals are the caller's
/// business ([`crate::startup::Application::stop_on_signals`]); a graceful stop finishes the
/// in-flight requests for at most `drain`.
pub fn server(
    listener: TcpListener,
    workers: usize,
    drain: Duration,
    ingest: Option<web::Data<IngestState>>,
    ops: web::Data<OpsState>,
    api: web::Data<crate::api::ApiState>,
) -> std::io::Result<Server> {
    let mut server = HttpServer::new(move || {
        // Without the ingest role (`storehook forward`) only the operational endpoints are served.
        let ingest = ingest.clone();
        let api = api.clone();
        App::new()
            .configure(move |config| crate::api::configure(config, api))
            .configure(move |config| {
                if let Some(ingest) = ingest {
                    config.app_data(ingest).service(
                        web::scope(ingest::PREFIX).default_service(web::to(ingest::ingest)),
                    );
                }
            })
            .app_data(ops.clone())
            .service(health::healthz)
            .service(health::readyz)
            .service(health::metrics)
    });
    server = server
        .disable_signals()
        .shutdown_timeout(drain.as_secs().max(1));
    if workers > 0 {
        server = server.workers(workers);
    }
    Ok(server.listen(listener)?.run())
}
