//! Building and running the gateway.
//!
//! [`Application::build`] sets up what every role shares (the ledger, metrics, the broker
//! connection supervisor, a shutdown signal), starts the roles — *ingest* (HTTP route, ledger
//! writer and its publisher, outbox relay) and *forward* (the webhook forwarder, see
//! [`crate::forward::start`]) — and binds HTTP (ingest, the management API, the operational
//! endpoints). Each role takes the [`Shared`] parts and pushes its background tasks;
//! [`Application::run_until_stopped`] stops them within `server.shutdown_timeout`.

use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::bus::{self, BusState, Publisher};
use crate::configuration::{Roles, Settings};
use crate::http::{self, IngestState, OpsState};
use crate::ledger::Ledger;
use crate::ledger::registry::{self, Registry};
use crate::ledger::writer::{LedgerWriter, WriterTuning};
use crate::metrics::Metrics;
use crate::outbox::Relay;
use crate::telemetry;

/// `storehook serve`: load the configuration, start logging, run until SIGINT/SIGTERM. `roles`,
/// when given, replaces the configuration's `[roles]`.
pub fn serve(config: Option<&Path>, roles: Option<Roles>) -> anyhow::Result<()> {
    let mut settings = Settings::load(config)?;
    if let Some(roles) = roles {
        settings.roles = roles;
    }
    telemetry::init_subscriber(telemetry::get_subscriber(
        &settings.telemetry,
        std::io::stdout,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let application = Application::build(settings).await?;
        tracing::info!(port = application.port(), "storehook is serving");
        application.stop_on_signals();
        application.run_until_stopped().await
    })
}

/// What every role shares.
#[derive(Debug)]
pub struct Shared {
    pub settings: Settings,
    pub ledger: Ledger,
    pub metrics: Metrics,
    pub bus: BusState,
    pub shutdown: watch::Receiver<bool>,
}

/// A built gateway: HTTP bound, background tasks running.
pub struct Application {
    port: u16,
    server: Server,
    ledger: Ledger,
    shutdown: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    /// Stops the broker connection supervisor, after the roles.
    bus_shutdown: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
    /// `server.shutdown_timeout`: from the stop request to the end of `run_until_stopped`.
    shutdown_timeout: Duration,
    /// When a stop was requested by a signal (the shutdown bound counts from there).
    stop_requested: Arc<OnceLock<Instant>>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish()
    }
}

impl Application {
    /// Connect to the database (migrating it) and the broker (in the background: the gateway
    /// serves and commits while the broker is away), upsert the configured tenants, bind HTTP.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let mut prometheus = prometheus_client::registry::Registry::default();
        let metrics = Metrics::register(&mut prometheus);
        let ledger = Ledger::connect(&settings.database).await?;
        registry::upsert_from_settings(ledger.pool(), &settings.tenants)
            .await
            .context("tenants: cannot store the configured tenants, sources and endpoints")?;

        let (shutdown_tx, shutdown) = watch::channel(false);
        // The publishing connection closes after the roles have stopped, so that the confirms
        // of what they published last still arrive.
        let (bus_shutdown, bus_stop) = watch::channel(false);
        let mut tasks = Vec::new();
        let (bus_state, supervisor) =
            bus::connection::spawn(settings.broker.clone(), metrics.clone(), bus_stop);
        let shared = Shared {
            settings,
            ledger,
            metrics,
            bus: bus_state,
            shutdown,
        };

        let roles = shared.settings.roles;
        if !roles.ingest && !roles.forward {
            anyhow::bail!("roles: enable ingest, forward or both");
        }
        let ingest = if roles.ingest {
            Some(start_ingest(&shared, &mut tasks).await?)
        } else {
            None
        };
        if roles.forward {
            crate::forward::start(&shared, &mut prometheus, &mut tasks)?;
        }
        let publisher = match &ingest {
            Some((_, publisher)) => publisher.clone(),
            // Without ingest nothing is published; `/readyz` still asks whether the link is up.
            None => Publisher::new(
                shared.bus.clone(),
                bus::events_exchange(&shared.settings.broker.prefix),
                shared.metrics.clone(),
                true,
            ),
        };
        let ops = web::Data::new(OpsState {
            ledger: shared.ledger.clone(),
            publisher,
            registry: prometheus,
        });

        let server_settings = &shared.settings.server;
        let listener = TcpListener::bind((server_settings.host.as_str(), server_settings.port))
            .with_context(|| {
                format!(
                    "server.port: cannot listen on {}:{}",
                    server_settings.host, server_settings.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let mut api =
            crate::api::ApiState::new(&shared.settings, &shared.ledger, shared.bus.clone())
                .context("api: cannot set up the management API")?;
        if shared.settings.api.public_url.is_empty() {
            // The port bound, which differs from the configured one with `server.port = 0`.
            api.public_url = format!("http://{}:{port}", server_settings.host);
        }
        let api = web::Data::new(api);
        let shutdown_timeout = server_settings.shutdown_timeout;
        let server = http::server(
            listener,
            server_settings.workers,
            http_drain(shutdown_timeout),
            ingest.map(|(state, _)| web::Data::new(state)),
            ops,
            api,
        )?;
        Ok(Application {
            port,
            server,
            ledger: shared.ledger,
            shutdown: shutdown_tx,
            tasks,
            bus_shutdown,
            supervisor,
            shutdown_timeout,
            stop_requested: Arc::new(OnceLock::new()),
        })
    }

    /// The bound HTTP port (useful with `server.port = 0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the HTTP server; [`Application::run_until_stopped`] then stops every role as on
    /// SIGTERM (tests use it to stop a gateway in-process).
    pub fn stop_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Stop gracefully on SIGTERM or SIGINT (the binary; in-process tests use
    /// [`Application::stop_handle`]).
    pub fn stop_on_signals(&self) {
        let handle = self.server.handle();
        let requested = Arc::clone(&self.stop_requested);
        tokio::spawn(async move {
            let signal = stop_signal().await;
            let _ = requested.set(Instant::now());
            tracing::info!(
                signal,
                "Stopping: no new requests, finishing in-flight work"
            );
            handle.stop(true).await;
        });
    }

    /// Serve until stopped, then stop within `server.shutdown_timeout` of the stop request:
    /// HTTP stops accepting and finishes its in-flight requests (at most half the bound), then
    /// every role stops: queued notifications are committed, the forwarder takes nothing new and
    /// finishes its in-flight deliveries or hands them back to RabbitMQ, claims are left to
    /// expire. A task still running at the bound is abandoned; nothing it held was acknowledged.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        let since = self
            .stop_requested
            .get()
            .copied()
            .unwrap_or_else(Instant::now);
        // Leave a moment to close the database and exit.
        let deadline = since
            + self
                .shutdown_timeout
                .saturating_sub(Duration::from_millis(500));
        self.shutdown.send_replace(true);
        for (name, task) in self.tasks {
            stop_task(name, task, deadline).await;
        }
        self.bus_shutdown.send_replace(true);
        stop_task("broker connection", self.supervisor, deadline).await;
        let closing = since + self.shutdown_timeout;
        if tokio::time::timeout_at(closing, self.ledger.close())
            .await
            .is_err()
        {
            tracing::warn!("The database pool did not close in time");
        }
        tracing::info!(
            took_ms = since.elapsed().as_millis() as u64,
            "storehook stopped"
        );
        served.context("the HTTP server failed")
    }
}

/// Wait for a background task that was told to stop; abort it if it is still running at
/// `deadline`.
async fn stop_task(name: &'static str, mut task: JoinHandle<()>, deadline: Instant) {
    if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
        tracing::warn!(task = name, "Background task did not stop in time");
        task.abort();
    }
}

/// How long HTTP may take to finish its in-flight requests: half the shutdown bound (requests are
/// short; the other half is for the background tasks), at least a second.
fn http_drain(shutdown_timeout: Duration) -> Duration {
    (shutdown_timeout / 2).max(Duration::from_secs(1))
}

/// How long the forwarder may take to finish its in-flight deliveries after the stop reached it
/// before it hands them back: a third of the shutdown bound, so that HTTP's drain, this and
/// closing the channels fit in it.
pub fn forwarder_drain(shutdown_timeout: Duration) -> Duration {
    shutdown_timeout / 3
}

/// The first SIGTERM or SIGINT.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut terminate), Ok(mut interrupt)) => tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            },
            _ => {
                tracing::error!("Cannot listen for SIGTERM and SIGINT");
                std::future::pending().await
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// The ingest role: ledger writer (which publishes), outbox relay; returns the HTTP route's state
/// and the publisher.
async fn start_ingest(
    shared: &Shared,
    tasks: &mut Vec<(&'static str, JoinHandle<()>)>,
) -> anyhow::Result<(IngestState, Publisher)> {
    let settings = &shared.settings;
    let hold = settings.testing.hold_publish;
    if hold {
        tracing::warn!("testing.hold_publish is set: events are committed but never published");
    }
    let publisher = Publisher::new(
        shared.bus.clone(),
        bus::events_exchange(&settings.broker.prefix),
        shared.metrics.clone(),
        hold,
    );
    let (writer, writer_task) = LedgerWriter::spawn(
        shared.ledger.writer_connection().await?,
        publisher.clone(),
        shared.metrics.clone(),
        WriterTuning {
            queue_depth: settings.ingest.queue_depth,
            batch_max: settings.ingest.batch_max,
            commit_wait: settings.commit_wait(),
            publish_wait: settings.publish_wait(),
            publish_in_flight: settings.ingest.publish_in_flight,
            relay_grace: Duration::from_millis(settings.outbox.grace_ms),
        },
        shared.shutdown.clone(),
    );
    tasks.push(("ledger writer", writer_task));
    let relay = Relay {
        pool: shared.ledger.pool().clone(),
        publisher: publisher.clone(),
        writer: writer.clone(),
        metrics: shared.metrics.clone(),
        settings: settings.outbox.clone(),
        skip_locked: shared.ledger.backend() == crate::ledger::Backend::Postgres,
        relay_id: uuid::Uuid::new_v4().to_string(),
        hold,
    };
    tasks.push(("outbox relay", relay.spawn(shared.shutdown.clone())));
    let state = IngestState {
        registry: Registry::new(
            shared.ledger.pool().clone(),
            Duration::from_millis(settings.ingest.source_cache_ms),
        ),
        writer,
        metrics: shared.metrics.clone(),
        body_limit: settings.server.body_limit,
    };
    Ok((state, publisher))
}
