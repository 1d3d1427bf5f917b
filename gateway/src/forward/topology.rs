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

/// A queue argument's value: what both the declaration and the definitions file are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Argument {
    Text(String),
    Number(i64),
}

/// One durable queue and its arguments, exactly as storehook declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    pub arguments: Vec<(&'static str, Argument)>,
}

/// A durable quorum queue with no other arguments.
pub fn quorum(name: &str) -> QueueSpec {
    QueueSpec {
        name: name.to_owned(),
        arguments: vec![("x-queue-type", Argument::Text("quorum".to_owned()))],
    }
}

impl Names {
    /// Every queue in declaration order: `forward`, `deliveries`, `dead`, then the ladder steps.
    /// [`declare`] and [`definitions`] both read this, so a definitions file made from it declares
    /// what storehook declares, argument for argument.
    pub fn queue_specs(&self) -> Vec<QueueSpec> {
        let mut specs = vec![
            quorum(&self.forward),
            quorum(&self.deliveries),
            quorum(&self.dead),
        ];
        for (delay_ms, name) in &self.steps {
            let mut spec = quorum(name);
            spec.arguments.extend([
                (
                    "x-message-ttl",
                    Argument::Number(i64::try_from(*delay_ms).unwrap_or(i64::MAX)),
                ),
                ("x-dead-letter-exchange", Argument::Text(String::new())),
                (
                    "x-dead-letter-routing-key",
                    Argument::Text(self.deliveries.clone()),
                ),
                (
                    "x-dead-letter-strategy",
                    Argument::Text("at-least-once".to_owned()),
                ),
                // At-least-once dead-lettering requires it.
                ("x-overflow", Argument::Text("reject-publish".to_owned())),
            ]);
            specs.push(spec);
        }
        specs
    }
}

fn field_table(arguments: &[(&'static str, Argument)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in arguments {
        let value = match value {
            Argument::Text(text) => AMQPValue::LongString(LongString::from(text.as_str())),
            Argument::Number(number) => AMQPValue::LongLongInt(*number),
        };
        table.insert((*key).into(), value);
    }
    table
}

/// Declare one queue as `spec` says (durable).
pub async fn declare_queue(channel: &Channel, spec: &QueueSpec) -> lapin::Result<Queue> {
    channel
        .queue_declare(
            spec.name.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            field_table(&spec.arguments),
        )
        .await
}

/// Declare the exchange, every queue and the `#` binding. Idempotent: the arguments of a name
/// never change.
pub async fn declare(channel: &Channel, names: &Names) -> lapin::Result<()> {
    crate::bus::connection::declare_topology(channel, &names.exchange).await?;
    let specs = names.queue_specs();
    let mut specs = specs.iter();
    if let Some(forward) = specs.next() {
        declare_queue(channel, forward).await?;
        channel
            .queue_bind(
                names.forward.as_str().into(),
                names.exchange.as_str().into(),
                FORWARD_BINDING.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    for spec in specs {
        declare_queue(channel, spec).await?;
    }
    Ok(())
}

/// The routing pattern `<prefix>.forward` is bound with: every event.
pub const FORWARD_BINDING: &str = "#";

/// The topology as a RabbitMQ definitions document (the management plugin's import format,
/// `rabbitmqctl import_definitions`), in virtual host `vhost`: the exchange, every queue with its
/// arguments, the binding. Users and permissions are the operator's.
pub fn definitions(names: &Names, vhost: &str) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let queues: Vec<Value> = names
        .queue_specs()
        .iter()
        .map(|spec| {
            let arguments: Map<String, Value> = spec
                .arguments
                .iter()
                .map(|(key, value)| {
                    let value = match value {
                        Argument::Text(text) => Value::from(text.as_str()),
                        Argument::Number(number) => Value::from(*number),
                    };
                    ((*key).to_owned(), value)
                })
                .collect();
            json!({
                "name": spec.name,
                "vhost": vhost,
                "durable": true,
                "auto_delete": false,
                "arguments": arguments,
            })
        })
        .collect();
    json!({
        "vhosts": [{ "name": vhost }],
        "exchanges": [{
            "name": names.exchange,
            "vhost": vhost,
            "type": "topic",
            "durable": true,
            "auto_delete": false,
            "internal": false,
            "arguments": {},
        }],
        "queues": queues,
        "bindings": [{
            "source": names.exchange,
            "vhost": vhost,
            "destination": names.forward,
            "destination_type": "queue",
            "routing_key": FORWARD_BINDING,
            "arguments": {},
        }],
    })
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

    #[test]
    fn definitions_hold_every_queue_with_its_arguments() {
        let schedule = Schedule::new(RetryPolicy::default()).expect("usable");
        let names = Names::new("storehook", &schedule);
        let definitions = definitions(&names, "/");
        let queues = definitions["queues"].as_array().expect("queues");
        assert_eq!(queues.len(), names.all_queues().len());
        let first_step = &queues[3];
        assert_eq!(first_step["name"], "storehook.retry.1.10000");
        assert_eq!(first_step["arguments"]["x-message-ttl"], 10_000);
        assert_eq!(
            first_step["arguments"]["x-dead-letter-routing-key"],
            "storehook.deliveries"
        );
        assert_eq!(
            definitions["bindings"][0]["destination"],
            "storehook.forward"
        );
    }
}
