//! RabbitMQ from the outside: a consumer bound by routing pattern, and a private broker node.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

/// A queue bound to an exchange by routing patterns, and its deliveries.
#[derive(Debug)]
pub struct Consumer {
    _connection: Connection,
    channel: Channel,
    queue: String,
    durable: bool,
    deliveries: lapin::Consumer,
}

/// Declare `exchange` as storehook does (durable topic), so a consumer can bind before storehook
/// has connected.
async fn declare_exchange(channel: &Channel, exchange: &str) -> lapin::Result<()> {
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

impl Consumer {
    /// An exclusive, auto-deleted queue bound with `patterns`: gone when the consumer is.
    pub async fn bind(amqp_url: &str, exchange: &str, patterns: &[&str]) -> Consumer {
        Consumer::open(amqp_url, exchange, "", false, patterns).await
    }

    /// A durable queue named `queue` bound with `patterns`: it keeps messages across a broker
    /// restart and a reconnect of the consumer. Delete it with [`Consumer::delete_queue`].
    pub async fn durable(
        amqp_url: &str,
        exchange: &str,
        queue: &str,
        patterns: &[&str],
    ) -> Consumer {
        Consumer::open(amqp_url, exchange, queue, true, patterns).await
    }

    async fn open(
        amqp_url: &str,
        exchange: &str,
        queue: &str,
        durable: bool,
        patterns: &[&str],
    ) -> Consumer {
        let connection = Connection::connect(amqp_url, ConnectionProperties::default())
            .await
            .expect("the test consumer connects to RabbitMQ");
        let channel = connection.create_channel().await.expect("a channel");
        declare_exchange(&channel, exchange)
            .await
            .expect("the exchange declares");
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable,
                    exclusive: !durable,
                    auto_delete: !durable,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("the queue declares");
        let queue = declared.name().to_string();
        for pattern in patterns {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    exchange.into(),
                    (*pattern).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("the queue binds");
        }
        let deliveries = channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("the consumer starts");
        Consumer {
            _connection: connection,
            channel,
            queue,
            durable,
            deliveries,
        }
    }

    /// The next delivery, or `None` if none arrives `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Delivery> {
        match tokio::time::timeout(within, self.deliveries.next()).await {
            Ok(Some(Ok(delivery))) => Some(delivery),
            _ => None,
        }
    }

    /// Up to `count` deliveries, waiting at most `within` in all.
    pub async fn take(&mut self, count: usize, within: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + within;
        let mut deliveries = Vec::with_capacity(count);
        while deliveries.len() < count {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(delivery) => deliveries.push(delivery),
                None => break,
            }
        }
        deliveries
    }

    /// Delete the queue if it is durable (exclusive ones go with the connection).
    pub async fn delete_queue(self) {
        if self.durable {
            let _ = self
                .channel
                .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
}

/// Declare a durable queue bound with `patterns` without consuming from it: messages wait in it
/// (across broker restarts) until a [`Consumer::durable`] on the same name takes them.
pub async fn declare_durable_queue(amqp_url: &str, exchange: &str, queue: &str, patterns: &[&str]) {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .expect("the test client connects to RabbitMQ");
    let channel = connection.create_channel().await.expect("a channel");
    declare_exchange(&channel, exchange)
        .await
        .expect("the exchange declares");
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the queue declares");
    for pattern in patterns {
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                (*pattern).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("the queue binds");
    }
    let _ = connection.close(200, "declared".into()).await;
}

/// Delete a test's exchange.
pub async fn delete_exchange(amqp_url: &str, exchange: &str) {
    if let Ok(connection) = Connection::connect(amqp_url, ConnectionProperties::default()).await {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
                .await;
        }
        let _ = connection.close(200, "done".into()).await;
    }
}

/// The routing key, message id and body of a delivery.
pub fn routing_key(delivery: &Delivery) -> String {
    delivery.routing_key.to_string()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// A RabbitMQ node of its own (own name, ports, data and log directories), so a test can stop and
/// start the broker without touching the one other tests share. Stopped when dropped.
#[derive(Debug)]
pub struct PrivateNode {
    pub name: String,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl PrivateNode {
    /// Start the node and wait until it accepts AMQP connections (a few seconds).
    pub fn start() -> PrivateNode {
        PrivateNode::start_with(|_| String::new())
    }

    /// [`PrivateNode::start`] with more `rabbitmq.conf` lines, made from the node's own directory
    /// (for files the configuration points to).
    pub fn start_with(extra_config: impl FnOnce(&std::path::Path) -> String) -> PrivateNode {
        let dir = tempfile::tempdir().expect("a temp dir");
        let extra = extra_config(dir.path());
        // rabbitmq-server started as root runs the node as the `rabbitmq` user.
        let _ = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(dir.path())
            .status();
        let port = free_port();
        let dist_port = free_port();
        let name = format!(
            "sh{}@localhost",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let config = dir.path().join("rabbitmq.conf");
        std::fs::write(
            &config,
            format!("listeners.tcp.1 = 127.0.0.1:{port}\n{extra}\n"),
        )
        .expect("the node config writes");
        let path = |name: &str| -> PathBuf { dir.path().join(name) };
        let status = Command::new("rabbitmq-server")
            .arg("-detached")
            .env("RABBITMQ_NODENAME", &name)
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", &config)
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_PID_FILE", path("pid"))
            .status()
            .expect("rabbitmq-server runs");
        assert!(status.success(), "rabbitmq-server -detached failed");
        let node = PrivateNode { name, port, dir };
        node.ctl(&["await_startup", "--timeout", "120"]);
        node
    }

    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// `rabbitmqctl stop_app`: the broker closes every connection and stops listening.
    pub fn stop_app(&self) {
        self.ctl(&["stop_app"]);
    }

    /// `rabbitmqctl start_app`, waiting until it serves again.
    pub fn start_app(&self) {
        self.ctl(&["start_app"]);
        self.ctl(&["await_startup", "--timeout", "60"]);
    }

    fn ctl(&self, args: &[&str]) {
        // `await_startup` fails at once while the node has not registered yet: retry briefly.
        for attempt in 0..120 {
            let status = Command::new("rabbitmqctl")
                .arg("-q")
                .arg("-n")
                .arg(&self.name)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .expect("rabbitmqctl runs");
            if status.success() {
                return;
            }
            if attempt == 119 {
                panic!(
                    "rabbitmqctl -n {} {args:?} failed; logs in {:?}",
                    self.name,
                    self.dir.path()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for PrivateNode {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "-n", &self.name, "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
