//! The connection supervisor: one task that owns the RabbitMQ connection.
//!
//! It connects, opens a channel in confirm mode, declares the topology (idempotently: the same
//! arguments every time) and then publishes the ready [`Link`] through a `watch` channel. When the
//! connection or the channel fails (a broker restart, `rabbitmqctl stop_app`, a channel closed by
//! an error), it withdraws the link, waits with exponential backoff and starts over. Publishers
//! never block on a reconnect: with no link they report "not connected" at once, and the ledger
//! keeps the events for the outbox relay, which wakes on every new link.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::watch;

use crate::configuration::BrokerSettings;
use crate::metrics::Metrics;

/// A broker that accepts TCP but never finishes the handshake must not stall the supervisor.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An open connection and its confirm-mode publishing channel.
#[derive(Debug)]
pub struct Link {
    pub connection: Connection,
    pub channel: Channel,
}

impl Link {
    fn is_open(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

/// The current link, if any; every change is a disconnect or a (re)connect.
pub type BusState = watch::Receiver<Option<Arc<Link>>>;

/// Start the supervisor; it runs until `shutdown` turns true.
pub fn spawn(
    settings: BrokerSettings,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> (BusState, tokio::task::JoinHandle<()>) {
    let (link_tx, link_rx) = watch::channel(None);
    let task = tokio::spawn(async move {
        let exchange = super::events_exchange(&settings.prefix);
        let min = Duration::from_millis(settings.reconnect_min_ms);
        let max = Duration::from_millis(settings.reconnect_max_ms);
        let mut backoff = min;
        loop {
            let attempt = tokio::select! {
                attempt = tokio::time::timeout(CONNECT_TIMEOUT, connect(settings.url.expose(), &exchange)) => {
                    match attempt {
                        Ok(Ok(link)) => Ok(link),
                        Ok(Err(error)) => Err(error.to_string()),
                        Err(_) => Err("timed out".to_owned()),
                    }
                }
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            match attempt {
                Ok(link) => {
                    tracing::info!(%exchange, "Connected to RabbitMQ");
                    backoff = min;
                    let link = Arc::new(link);
                    metrics.broker_connected(true);
                    link_tx.send_replace(Some(Arc::clone(&link)));
                    let stopping = tokio::select! {
                        _ = wait_until_lost(&link) => false,
                        _ = shutdown.wait_for(|stop| *stop) => true,
                    };
                    link_tx.send_replace(None);
                    metrics.broker_connected(false);
                    if stopping {
                        // Let pending confirms arrive before closing.
                        let _ = link
                            .connection
                            .close(200, "storehook stopping".into())
                            .await;
                        break;
                    }
                    tracing::warn!("Lost the RabbitMQ connection; reconnecting");
                    let _ = link.connection.close(200, "reconnecting".into()).await;
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "Cannot connect to RabbitMQ");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.wait_for(|stop| *stop) => break,
                    }
                    backoff = (backoff * 2).min(max);
                }
            }
        }
    });
    (link_rx, task)
}

async fn connect(url: &str, exchange: &str) -> lapin::Result<Link> {
    let connection = Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name("storehook".into()),
    )
    .await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    declare_topology(&channel, exchange).await?;
    Ok(Link {
        connection,
        channel,
    })
}

/// The ingest side's topology: one durable topic exchange. Declared with the same arguments every
/// time, so redeclaring after a reconnect is a no-op for the broker.
pub async fn declare_topology(channel: &Channel, exchange: &str) -> lapin::Result<()> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Resolve once the connection reports an error or the link is no longer open.
async fn wait_until_lost(link: &Link) {
    let mut events = link.connection.events_listener();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(lapin::Event::Error(error)) => {
                    tracing::warn!(%error, "RabbitMQ connection error");
                    return;
                }
                Some(_) => {}
                None => return,
            },
            _ = tick.tick() => {
                if !link.is_open() {
                    return;
                }
            }
        }
    }
}
