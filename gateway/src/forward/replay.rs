//! `storehook replay-dead`: give dead deliveries a fresh ladder.
//!
//! Each message of `<prefix>.dead` (at most as many as it held when the command started) is
//! published to `<prefix>.deliveries` with its attempt count reset, then acknowledged; a running
//! forwarder attempts it at once. Messages that are not deliveries, or are for another endpoint
//! than the one asked for, go back to the end of `<prefix>.dead` untouched.

use std::time::Duration;

use anyhow::Context as _;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};

use super::topology::Names;
use super::worker::headers;
use crate::configuration::Settings;

/// What a replay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    pub replayed: u64,
    pub kept: u64,
}

/// Replay up to `limit` dead deliveries (of `endpoint` only, when given).
pub async fn replay_dead(
    settings: &Settings,
    endpoint: Option<&str>,
    limit: Option<u64>,
) -> anyhow::Result<Replayed> {
    let schedule = settings.forward.schedule()?;
    let names = Names::new(&settings.broker.prefix, &schedule);
    let connection = tokio::time::timeout(
        Duration::from_secs(10),
        Connection::connect(
            settings.broker.url.expose(),
            ConnectionProperties::default().with_connection_name("storehook replay-dead".into()),
        ),
    )
    .await
    .context("broker.url: timed out connecting to RabbitMQ")?
    .context("broker.url: cannot connect to RabbitMQ")?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let held = channel
        .queue_declare(
            names.dead.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("{} does not exist (has the forwarder run?)", names.dead))?
        .message_count();
    let mut done = Replayed::default();
    let budget = u64::from(held).min(limit.unwrap_or(u64::MAX));
    for _ in 0..u64::from(held) {
        if done.replayed >= budget {
            break;
        }
        let Some(message) = channel
            .basic_get(names.dead.as_str().into(), BasicGetOptions::default())
            .await?
        else {
            break;
        };
        let mut table = message
            .delivery
            .properties
            .headers()
            .clone()
            .unwrap_or_default();
        let this_endpoint = match table.inner().get(headers::ENDPOINT) {
            Some(AMQPValue::LongString(s)) => {
                Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
            }
            _ => None,
        };
        let wanted =
            this_endpoint.is_some() && (endpoint.is_none() || endpoint == this_endpoint.as_deref());
        let properties = message.delivery.properties.clone();
        let target = if wanted {
            table.insert(headers::ATTEMPTS.into(), AMQPValue::LongLongInt(0));
            table.insert(
                headers::FIRST_ATTEMPT_AT.into(),
                AMQPValue::LongLongInt(crate::ledger::now_ms()),
            );
            let mut fresh = FieldTable::default();
            for (key, value) in table.inner() {
                if key.as_str() != headers::NOT_BEFORE && !key.as_str().starts_with("x-") {
                    fresh.insert(key.clone(), value.clone());
                }
            }
            table = fresh;
            names.deliveries.as_str()
        } else {
            names.dead.as_str()
        };
        publish(
            &channel,
            target,
            &message.delivery.data,
            properties.with_headers(table),
        )
        .await?;
        message
            .delivery
            .acker
            .ack(BasicAckOptions::default())
            .await?;
        if wanted {
            done.replayed += 1;
        } else {
            done.kept += 1;
        }
    }
    let _ = connection.close(200, "replayed".into()).await;
    Ok(done)
}

async fn publish(
    channel: &Channel,
    queue: &str,
    body: &[u8],
    properties: BasicProperties,
) -> anyhow::Result<()> {
    let confirm = channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            properties,
        )
        .await?;
    match confirm.await? {
        Confirmation::Ack(None) => Ok(()),
        other => anyhow::bail!("{queue} did not take the delivery: {other:?}"),
    }
}
