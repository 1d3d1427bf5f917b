//! Load harness of the webhook forwarder, against the RabbitMQ at 127.0.0.1:5672 and a local
//! receiver on loopback (nothing else is contacted).
//!
//! 1. Raw POST rate: a plain reqwest client posting an event body to the receiver.
//! 2. Delivery throughput: `--events` events published to `<prefix>.events` first, then a
//!    forwarder (SQLite attempt log, default settings) started to drain them; deliveries per
//!    second from the first to the last receipt, every one signed and its attempt committed.
//! 3. Latency: events published at `--rate` per second for `--seconds`; time from the publish to
//!    the receiver seeing the first attempt, p50/p99/max.
//! 4. The same rate through a bare quorum queue and a plain consumer: the broker's own share of
//!    that latency.
//!
//! `cargo run --release -p storehook-tests --bin forward_bench`

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use sqlx::Row;
use storehook_tests::forwarding::{
    EndpointSpec, EventPublisher, ForwardConfig, delete_queues, event,
};
use storehook_tests::receiver::Receiver;

/// The forwarder runs in this process: the same allocator as the `storehook` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    /// Events for the throughput run.
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    /// Events per second in the latency run.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Length of the latency run and of the raw POST run, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent requests of the raw POST client.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Extra lines for the forwarder's `[forward]` section, e.g. `prefetch = 128`.
    #[arg(long, default_value = "")]
    forward: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let receiver = Receiver::counting().await;
    let (_, sample) = event("bench", "subscription.renewed");

    // 1. Raw POST rate.
    let cpu_before = Cpu::now();
    let raw_started = Instant::now();
    let raw = raw_post_rate(
        &receiver,
        &sample,
        args.concurrency,
        Duration::from_secs(args.seconds),
    )
    .await?;
    let raw_cpu = Cpu::now().since(&cpu_before);
    println!(
        "raw POST rate: {raw:.0} requests/s ({} concurrent); CPU per request: this process {}",
        args.concurrency,
        raw_cpu.per(raw * raw_started.elapsed().as_secs_f64()),
    );

    // 2. Throughput.
    let mut config = ForwardConfig::new(
        vec![EndpointSpec::new("bench", receiver.url("/bench"))],
        &args.forward.replace("\\n", "\n"),
    );
    config.tenant = "bench".to_owned();
    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let names = config.names(&database_url);
    declare(&names).await?;
    let publisher = EventPublisher::open(&names.exchange).await;
    let mut confirms = Vec::with_capacity(1000);
    for _ in 0..args.events {
        let (id, body) = event("bench", "subscription.renewed");
        confirms.push(
            publisher
                .send("bench", "subscription.renewed", &id, &body)
                .await,
        );
        if confirms.len() == 1000 {
            futures_util::future::join_all(confirms.drain(..)).await;
        }
    }
    futures_util::future::join_all(confirms.drain(..)).await;
    let before = receiver.total();
    let cpu_before = Cpu::now();
    let started = Instant::now();
    let application =
        storehook::startup::Application::build(config.settings(&database_url)).await?;
    let stop = application.stop_handle();
    let run = tokio::spawn(application.run_until_stopped());
    let target = before + args.events as u64;
    let got = receiver
        .wait_for_total(target, Duration::from_secs(600))
        .await;
    let drained = started.elapsed();
    let drain_cpu = Cpu::now().since(&cpu_before);
    let seen = receiver.first_seen();
    let times: Vec<Instant> = seen.values().copied().collect();
    let first = times.iter().min().copied();
    let last = times.iter().max().copied();
    let pool = storehook::ledger::Ledger::connect(&config.settings(&database_url).database).await?;
    let mut recorded = 0;
    for _ in 0..600 {
        recorded = sqlx::query("SELECT COUNT(*) FROM delivery_attempts")
            .fetch_one(pool.pool())
            .await?
            .try_get::<i64, _>(0)?;
        if recorded as u64 >= args.events as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let (Some(first), Some(last)) = (first, last) {
        let window = last.duration_since(first).as_secs_f64();
        let rate = (args.events.saturating_sub(1)) as f64 / window.max(1e-9);
        println!(
            "throughput: {} deliveries received ({} recorded) in {:.2} s from start ({:.2} s first to last receipt): {rate:.0} deliveries/s ({:.2} × raw)",
            got - before,
            recorded,
            drained.as_secs_f64(),
            window,
            rate / raw,
        );
        println!(
            "CPU per delivery during the drain: this process (forwarder and receiver) {}",
            drain_cpu.per((got - before) as f64),
        );
    }

    // 3. Latency at a fixed rate.
    let sent: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
    let total = args.rate * args.seconds;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let published = AtomicU64::new(0);
    let mut pending = Vec::new();
    let before = receiver.total();
    for _ in 0..total {
        tick.tick().await;
        let (id, body) = event("bench", "subscription.renewed");
        if let Ok(mut sent) = sent.lock() {
            sent.insert(id.clone(), Instant::now());
        }
        pending.push(
            publisher
                .send("bench", "subscription.renewed", &id, &body)
                .await,
        );
        published.fetch_add(1, Ordering::Relaxed);
        if pending.len() >= 100 {
            // Await confirms off the publishing path.
            let batch = std::mem::take(&mut pending);
            tokio::spawn(futures_util::future::join_all(batch));
        }
    }
    futures_util::future::join_all(pending).await;
    receiver
        .wait_for_total(before + total, Duration::from_secs(120))
        .await;
    let seen = receiver.first_seen();
    let latencies: Vec<Duration> = sent
        .lock()
        .map(|sent| {
            sent.iter()
                .filter_map(|(id, at)| seen.get(id).map(|seen| seen.duration_since(*at)))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "latency at {} events/s for {} s ({} delivered): {}",
        args.rate,
        args.seconds,
        latencies.len(),
        percentiles(latencies),
    );

    // 4. The broker alone at the same rate, for comparison.
    let broker = broker_latency(&names.exchange, args.rate, args.seconds).await?;
    println!(
        "RabbitMQ alone at {} messages/s for {} s (publish to a quorum queue, consume, ack): {}",
        args.rate,
        args.seconds,
        percentiles(broker),
    );

    stop.stop(true).await;
    let _ = run.await;
    pool.close().await;
    delete_queues(&names).await;
    storehook_tests::broker::delete_exchange(storehook_tests::AMQP_URL, &names.exchange).await;
    Ok(())
}

/// `p50 …, p99 …, max …` in milliseconds.
fn percentiles(mut latencies: Vec<Duration>) -> String {
    latencies.sort();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0
    };
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pick(0.50),
        pick(0.99),
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    )
}

/// Publish-to-consume latency of a bare quorum queue at `rate` for `seconds`: persistent messages
/// of the events' size, confirmed, consumed and acknowledged one by one by a plain consumer. What
/// the forwarder's latency is built on.
async fn broker_latency(prefix: &str, rate: u64, seconds: u64) -> anyhow::Result<Vec<Duration>> {
    use futures_util::StreamExt;
    use lapin::options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, QueueDeleteOptions,
    };
    use lapin::types::FieldTable;

    let connection = lapin::Connection::connect(
        storehook_tests::AMQP_URL,
        lapin::ConnectionProperties::default(),
    )
    .await?;
    let publish = connection.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let queue = format!("{prefix}.broker-latency");
    // Declared as storehook declares `<prefix>.forward`.
    storehook::forward::topology::declare_queue(
        &publish,
        &storehook::forward::topology::quorum(&queue),
    )
    .await?;
    let consume = connection.create_channel().await?;
    consume.basic_qos(512, BasicQosOptions::default()).await?;
    let mut consumer = consume
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let total = usize::try_from(rate * seconds)?;
    let origin = Instant::now();
    let reader = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(total);
        while latencies.len() < total {
            let Some(Ok(delivery)) = consumer.next().await else {
                break;
            };
            let sent = delivery
                .data
                .get(..8)
                .and_then(|bytes| bytes.try_into().ok())
                .map(u64::from_le_bytes)
                .unwrap_or_default();
            latencies.push(origin.elapsed().saturating_sub(Duration::from_micros(sent)));
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
        }
        latencies
    });
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut pending = Vec::new();
    for _ in 0..total {
        tick.tick().await;
        let mut body = vec![b' '; 520];
        let sent = u64::try_from(origin.elapsed().as_micros())?;
        body[..8].copy_from_slice(&sent.to_le_bytes());
        pending.push(
            publish
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    lapin::BasicProperties::default().with_delivery_mode(2),
                )
                .await?,
        );
        if pending.len() >= 100 {
            tokio::spawn(futures_util::future::join_all(std::mem::take(&mut pending)));
        }
    }
    futures_util::future::join_all(pending).await;
    let latencies = tokio::time::timeout(Duration::from_secs(120), reader).await??;
    publish
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    connection.close(200, "measured".into()).await?;
    Ok(latencies)
}

/// Declare the forwarder's topology before it starts, so events can wait in its queue.
async fn declare(names: &storehook::forward::topology::Names) -> anyhow::Result<()> {
    let connection = lapin::Connection::connect(
        storehook_tests::AMQP_URL,
        lapin::ConnectionProperties::default(),
    )
    .await?;
    let channel = connection.create_channel().await?;
    storehook::forward::topology::declare(&channel, names).await?;
    connection.close(200, "declared".into()).await?;
    Ok(())
}

/// Requests per second a plain client gets from the receiver.
async fn raw_post_rate(
    receiver: &Receiver,
    body: &[u8],
    concurrency: usize,
    length: Duration,
) -> anyhow::Result<f64> {
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let url = receiver.url("/raw");
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            let body = body.to_vec();
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    if let Ok(response) = sent {
                        let _ = response.bytes().await;
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    futures_util::future::join_all(workers).await;
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// CPU time used so far (user + system) by this process and by the local RabbitMQ node, read from
/// `/proc` (Linux, where a clock tick is 10 ms); the broker's is `None` when it does not run here.
#[derive(Debug)]
struct Cpu {
    this: Duration,
    broker: Option<Duration>,
}

impl Cpu {
    fn now() -> Cpu {
        Cpu {
            this: cpu_time("self").unwrap_or_default(),
            broker: broker_pid().and_then(|pid| cpu_time(&pid)),
        }
    }

    fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            this: self.this.saturating_sub(earlier.this),
            broker: self
                .broker
                .zip(earlier.broker)
                .map(|(now, then)| now.saturating_sub(then)),
        }
    }

    /// `"N µs, RabbitMQ M µs"`: the CPU time per one of `count` operations.
    fn per(&self, count: f64) -> String {
        let micros = |cpu: Duration| cpu.as_secs_f64() * 1e6 / count.max(1.0);
        match self.broker {
            Some(broker) => format!(
                "{:.0} µs, RabbitMQ {:.0} µs",
                micros(self.this),
                micros(broker)
            ),
            None => format!("{:.0} µs", micros(self.this)),
        }
    }
}

/// utime + stime of `/proc/<pid>/stat`.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: the state is
    // field 3, utime field 14 and stime field 15.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The process id of the local Erlang VM running RabbitMQ.
fn broker_pid() -> Option<String> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().into_string().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim() == "beam.smp").then_some(pid)
        })
}
