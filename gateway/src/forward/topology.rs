//! The forwarder's RabbitMQ names and their declaration.
//!
//! ```text
//! <prefix>.events ──#──▶ <prefix>.forward            events, first attempts
//!                        <prefix>.deliveries         retries due now (the ladder dead-letters here)
//!                        <prefix>.retry.<n>.<ms>     one per ladder step, x-message-ttl = <ms>
//!                        <prefix>.dead               deliveries that exhausted the ladder
//! ```
//! Every queue is a durable quorum queue. A step's delay is part of its name, so changing the
//! schedule declares new queues instead of redeclaring old ones with other arguments; old steps
//! still dead-letter into `<prefix>.deliveries` and drain by themselves. Dead-lettering is
//! `at-least-once` (RabbitMQ ≥ 3.10), so a delivery leaving a step is never lost on the way.

use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Queue};

use super::schedule::Schedule;

/// The names of one deployment's queues.
#[derive(Debug, Clone)]
pub struct Names {
    pub exchange: String,
    pub forward: String,
    pub deliveries: String,
    pub dead: String,
    /// `(delay in ms, queue name)` for each ladder step, in order.
    pub steps: Vec<(u64, String)>,
}

impl Names {
    pub fn new(prefix: &str, schedule: &Schedule) -> Names {
        Names {
            exchange: crate::bus::events_exchange(prefix),
            forward: format!("{prefix}.forward"),
            deliveries: format!("{prefix}.deliveries"),
            dead: format!("{prefix}.dead"),
            steps: schedule
                .delays_ms()
                .iter()
                .enumerate()
                .map(|(i, &ms)| (ms, format!("{prefix}.retry.{}.{ms}", i + 1)))
                .collect(),
        }
    }

    /// Every queue name, for tools and tests that clean up.
    pub fn all_queues(&self) -> Vec<String> {
        let mut names = vec![
            self.forward.clone(),
            self.deliveries.clone(),
            self.dead.clone(),
        ];
        names.extend(self.steps.iter().map(|(_, name)| name.clone()));
        names
    }
}

fn quorum_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    arguments
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    arguments: FieldTable,
) -> lapin::Result<Queue> {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await
}

/// Declare the exchange, every queue and the `#` binding. Idempotent: the arguments of a name
/// never change.
pub async fn declare(channel: &Channel, names: &Names) -> lapin::Result<()> {
    crate::bus::connection::declare_topology(channel, &names.exchange).await?;
    declare_queue(channel, &names.forward, quorum_arguments()).await?;
    channel
        .queue_bind(
            names.forward.as_str().into(),
            names.exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    declare_queue(channel, &names.deliveries, quorum_arguments()).await?;
    declare_queue(channel, &names.dead, quorum_arguments()).await?;
    for (delay_ms, name) in &names.steps {
        let mut arguments = quorum_arguments();
        arguments.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(i64::try_from(*delay_ms).unwrap_or(i64::MAX)),
        );
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from("")),
        );
        arguments.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(LongString::from(names.deliveries.as_str())),
        );
        arguments.insert(
            "x-dead-letter-strategy".into(),
            AMQPValue::LongString(LongString::from("at-least-once")),
        );
        // At-least-once dead-lettering requires it.
        arguments.insert(
            "x-overflow".into(),
            AMQPValue::LongString(LongString::from("reject-publish")),
        );
        declare_queue(channel, name, arguments).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::schedule::RetryPolicy;

    #[test]
    fn step_names_carry_their_delay() {
        let schedule = Schedule::new(RetryPolicy::default()).expect("usable");
        let names = Names::new("storehook", &schedule);
        assert_eq!(names.forward, "storehook.forward");
        assert_eq!(names.steps[0].1, "storehook.retry.1.10000");
        assert_eq!(names.steps.len(), 16);
        assert_eq!(names.all_queues().len(), 19);
    }
}
