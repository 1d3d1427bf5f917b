//! The ingest load harness.
//!
//! Starts the real `storehook` binary (built beside this one: `cargo build --release -p storehook`)
//! on SQLite with a fresh exchange prefix, binds a durable queue to its exchange so every event is
//! routed, drives N RuStore notifications (encrypted here with `aes-gcm`) at concurrency C and
//! reports throughput and p50/p99 latency. Then, in the same run, it measures the broker's raw
//! publish-confirm ceiling: a plain lapin publisher sending messages of the same size, persistent
//! and `mandatory`, to an exchange bound to the same kind of queue, with the same number in flight.
//!
//! The client shares the machine with storehook and the broker, so it is kept cheap: every request
//! is encrypted and serialized to its HTTP/1.1 bytes before the timed phase, and each of the C
//! keep-alive connections writes those bytes and reads the status line, headers and body with
//! nothing in between (no client library, no URL parsing, no header maps). Both phases run on
//! one single-threaded runtime.
//!
//! ```text
//! cargo build --release -p storehook
//! cargo run --release -p storehook-tests --bin loadgen -- --count 50000 --concurrency 64
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};
use storehook_tests::app::{Backend, Fixture, TestDatabase, configuration_toml, wait_until_ready};
use storehook_tests::broker::{declare_durable_queue, free_port};
use storehook_tests::stores::{RUSTORE_KEY, rustore_envelope, rustore_invoice};

#[derive(Debug, Parser)]
#[command(
    about = "Drive RuStore notifications into storehook and compare with the broker's raw publish-confirm ceiling"
)]
struct Args {
    /// Notifications to send (after the warm-up).
    #[arg(long, default_value_t = 50_000)]
    count: usize,
    /// Requests in flight at once (and publishes in flight for the raw ceiling).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Notifications sent first and not measured.
    #[arg(long, default_value_t = 2_000)]
    warmup: usize,
    /// RabbitMQ to use.
    #[arg(long, default_value = storehook_tests::AMQP_URL)]
    amqp_url: String,
    /// `database.sqlite_synchronous` of the storehook under test.
    #[arg(long, default_value = "full")]
    sqlite_synchronous: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fixture = Fixture::new(&args.amqp_url);
    let database = TestDatabase::create(Backend::Sqlite).await;
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let config = dir.path().join("storehook.toml");
    let toml = configuration_toml(&fixture, &database.url, port, "")
        .replace(
            "sqlite_synchronous = \"normal\"",
            &format!("sqlite_synchronous = \"{}\"", args.sqlite_synchronous),
        )
        .replace("workers = 2", "workers = 0");
    std::fs::write(&config, toml)?;

    let queue = format!("{}.bench", fixture.prefix);
    declare_durable_queue(&args.amqp_url, &fixture.exchange(), &queue, &["#"]).await;
    let mut storehook = Command::new(sibling_binary("storehook")?)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start storehook")?;
    let result = run(&args, &fixture, port, &queue).await;
    stop(&mut storehook);
    cleanup(&args.amqp_url, &fixture, &queue).await;
    result
}

async fn run(args: &Args, fixture: &Fixture, port: u16, queue: &str) -> anyhow::Result<()> {
    let address = format!("http://127.0.0.1:{port}");
    wait_until_ready(&reqwest::Client::new(), &address).await;
    let path = format!("/ingest/rustore/{}", fixture.rustore_ingest_key);

    let total = args.warmup + args.count;
    eprintln!("encrypting {total} RuStore notifications…");
    let bodies: Vec<String> = (0..total)
        .map(|i| {
            rustore_envelope(
                &RUSTORE_KEY,
                &format!("bench-{i}"),
                &rustore_invoice(&format!("{}", 1_000_000 + i), "CONFIRMED", false),
            )
        })
        .collect();
    let body_bytes = bodies.first().map(String::len).unwrap_or_default();
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        bodies
            .iter()
            .map(|body| http_request(port, &path, body))
            .collect(),
    );
    drop(bodies);
    let server = std::net::SocketAddr::from(([127, 0, 0, 1], port));

    drive(server, &requests, 0..args.warmup, args.concurrency).await?;
    // The timed phase starts with the warm-up's events all in the queue.
    wait_for_queue_depth(&args.amqp_url, queue, args.warmup).await?;
    eprintln!(
        "sending {} notifications at concurrency {}…",
        args.count, args.concurrency
    );
    let metrics_url = format!("{address}/metrics");
    let before = Metrics::scrape(&metrics_url).await?;
    let started = Instant::now();
    let mut latencies = drive(server, &requests, args.warmup..total, args.concurrency).await?;
    let answered = started.elapsed();
    // End to end: until every event is in the queue (storehook answers once the ledger has
    // committed; the publish follows). Waiting is bounded; a shortfall shows in the count.
    let published = wait_for_queue_depth(&args.amqp_url, queue, total).await?;
    let end_to_end = started.elapsed();
    let during = Metrics::scrape(&metrics_url).await?.since(&before);
    latencies.sort_unstable();
    let answered_rate = args.count as f64 / answered.as_secs_f64();
    let throughput = args.count as f64 / end_to_end.as_secs_f64();
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);

    let event_bytes = sample_message_size(&args.amqp_url, queue).await?;

    eprintln!("measuring the raw publish-confirm ceiling…");
    let raw = raw_ceiling(
        &args.amqp_url,
        &fixture.prefix,
        args.count,
        args.concurrency,
        event_bytes,
    )
    .await?;

    println!(
        "storehook ingest (RuStore, SQLite, synchronous={})",
        args.sqlite_synchronous
    );
    println!(
        "  notifications     {} (+{} warm-up), concurrency {}",
        args.count, args.warmup, args.concurrency
    );
    println!("  request body      {body_bytes} bytes, event {event_bytes} bytes");
    println!(
        "  throughput        {throughput:.0} notifications/s end to end (all {} answered 200 in {:.2} s, \
         all their events in the queue at {:.2} s: {answered_rate:.0}/s answered)",
        args.count,
        answered.as_secs_f64(),
        end_to_end.as_secs_f64()
    );
    println!(
        "  latency           p50 {:.2} ms, p99 {:.2} ms (request to 200)",
        ms(p50),
        ms(p99)
    );
    println!("  events in queue   {published} of {total}");
    println!(
        "  inside storehook  {:.1} rows per ledger commit, {:.2} ms per commit, \
         {:.1} events per publish batch, {:.2} ms publish to confirms, {} events left to the relay",
        during.ratio(
            "storehook_ledger_commit_batch_size_sum",
            "storehook_ledger_commit_batch_size_count"
        ),
        1000.0
            * during.ratio(
                "storehook_ledger_commit_latency_seconds_sum",
                "storehook_ledger_commit_latency_seconds_count"
            ),
        during.ratio(
            "storehook_events_published_total{path=\"inline\"}",
            "storehook_publish_latency_seconds_count"
        ),
        1000.0
            * during.ratio(
                "storehook_publish_latency_seconds_sum",
                "storehook_publish_latency_seconds_count"
            ),
        during.value("storehook_events_published_total{path=\"relay\"}"),
    );
    println!(
        "raw lapin publish-confirm ceiling (persistent, mandatory, {event_bytes} bytes, {} in flight)",
        args.concurrency
    );
    println!("  throughput        {raw:.0} messages/s");
    println!("ratio               {:.2}", throughput / raw);
    Ok(())
}

/// The bytes of one `POST` of `body` to `path`.
fn http_request(port: u16, path: &str, body: &str) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());
    request
}

/// Send `requests[range]` over `concurrency` keep-alive connections, one request in flight on
/// each; every answer must be 200.
async fn drive(
    server: std::net::SocketAddr,
    requests: &Arc<Vec<Vec<u8>>>,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> anyhow::Result<Vec<Duration>> {
    let next = Arc::new(AtomicUsize::new(range.start));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (requests, next, end) = (Arc::clone(requests), Arc::clone(&next), range.end);
        workers.push(tokio::spawn(async move {
            let mut connection = HttpConnection::open(server).await?;
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let started = Instant::now();
                let status = connection.exchange(&requests[i]).await?;
                latencies.push(started.elapsed());
                if status != 200 {
                    bail!("notification {i} answered {status}");
                }
            }
        }));
    }
    let mut latencies = Vec::with_capacity(range.len());
    for worker in workers {
        latencies.extend(worker.await??);
    }
    Ok(latencies)
}

/// One keep-alive HTTP/1.1 client connection that understands just what storehook answers: a
/// status line, headers with a `Content-Length`, and that many bytes of body.
struct HttpConnection {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl HttpConnection {
    async fn open(server: std::net::SocketAddr) -> anyhow::Result<HttpConnection> {
        let stream = tokio::net::TcpStream::connect(server).await?;
        stream.set_nodelay(true)?;
        Ok(HttpConnection {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    /// Write `request`, read the whole response; its status.
    async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<u16> {
        let mut written = 0;
        while written < request.len() {
            self.stream.writable().await?;
            match self.stream.try_write(&request[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.buffer.clear();
        loop {
            if let Some((status, length)) = parse_response(&self.buffer)?
                && self.buffer.len() >= length
            {
                return Ok(status);
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 4096];
        loop {
            self.stream.readable().await?;
            match self.stream.try_read(&mut chunk) {
                Ok(0) => bail!("storehook closed the connection"),
                Ok(n) => {
                    self.buffer.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Once the head is complete: the status and the length of the whole response.
fn parse_response(buffer: &[u8]) -> anyhow::Result<Option<(u16, usize)>> {
    let Some(head_end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..head_end])?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .context("no status line")?;
    let mut length = 0;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse()?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("a chunked response: {head}");
            }
        }
    }
    Ok(Some((status, head_end + 4 + length)))
}

/// A few of storehook's own metrics, to tell where the time went.
struct Metrics(std::collections::HashMap<String, f64>);

impl Metrics {
    async fn scrape(url: &str) -> anyhow::Result<Metrics> {
        let text = reqwest::get(url).await?.text().await?;
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect();
        Ok(Metrics(samples))
    }

    fn since(&self, earlier: &Metrics) -> Metrics {
        Metrics(
            self.0
                .iter()
                .map(|(name, value)| (name.clone(), value - earlier.value(name)))
                .collect(),
        )
    }

    fn value(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or_default()
    }

    fn ratio(&self, numerator: &str, denominator: &str) -> f64 {
        self.value(numerator) / self.value(denominator).max(1.0)
    }
}

/// Publish `count` messages of `size` bytes with `in_flight` publishers, each awaiting its
/// confirm before the next publish: `in_flight` unconfirmed messages at any time, as with
/// `in_flight` concurrent ingest requests.
async fn raw_ceiling(
    amqp_url: &str,
    prefix: &str,
    count: usize,
    in_flight: usize,
    size: usize,
) -> anyhow::Result<f64> {
    let exchange = format!("{prefix}.raw");
    let queue = format!("{prefix}.raw");
    let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    declare_durable_queue(amqp_url, &exchange, &queue, &["#"]).await;
    let payload = Arc::new(vec![b'x'; size]);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut publishers = Vec::with_capacity(in_flight);
    for _ in 0..in_flight {
        let (channel, exchange, payload, next) = (
            channel.clone(),
            exchange.clone(),
            Arc::clone(&payload),
            Arc::clone(&next),
        );
        publishers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                let confirm = channel
                    .basic_publish(
                        exchange.as_str().into(),
                        "bench.rustore.production.transaction.succeeded".into(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..BasicPublishOptions::default()
                        },
                        &payload,
                        BasicProperties::default()
                            .with_delivery_mode(2)
                            .with_content_type("application/json".into())
                            .with_message_id(uuid::Uuid::new_v4().to_string().into())
                            .with_app_id("storehook".into()),
                    )
                    .await?
                    .await?;
                if confirm != Confirmation::Ack(None) {
                    bail!("raw publish {i} not routed: {confirm:?}");
                }
            }
        }));
    }
    for publisher in publishers {
        publisher.await??;
    }
    let elapsed = started.elapsed();
    let _ = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = connection.close(200, "done".into()).await;
    Ok(count as f64 / elapsed.as_secs_f64())
}

/// Poll the queue's depth until it holds `expected` messages (at most 60 s); returns the depth.
async fn wait_for_queue_depth(amqp_url: &str, queue: &str, expected: usize) -> anyhow::Result<u32> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let depth = declared.message_count();
        if depth as usize >= expected || Instant::now() > deadline {
            let _ = connection.close(200, "done".into()).await;
            return Ok(depth);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The size of one event as published.
async fn sample_message_size(amqp_url: &str, queue: &str) -> anyhow::Result<usize> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let message = channel
        .basic_get(
            queue.into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await?
        .context("the bench queue is empty")?;
    let _ = connection.close(200, "done".into()).await;
    Ok(message.delivery.data.len())
}

async fn cleanup(amqp_url: &str, fixture: &Fixture, queue: &str) {
    if let Ok(connection) = Connection::connect(amqp_url, ConnectionProperties::default()).await {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await;
            let _ = channel
                .exchange_delete(
                    fixture.exchange().as_str().into(),
                    ExchangeDeleteOptions::default(),
                )
                .await;
        }
        let _ = connection.close(200, "done".into()).await;
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .map(|dir| dir.join(name))
        .context("no directory for the loadgen binary")?;
    if !binary.exists() {
        bail!(
            "{} is missing: build it first with `cargo build --release -p storehook`",
            binary.display()
        );
    }
    Ok(binary)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
