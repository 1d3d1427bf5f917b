//! The command line: `storehook serve`, `storehook forward`, `storehook normalize <store>`,
//! `storehook retry-schedule`, `storehook replay-dead`, `storehook definitions`,
//! `storehook healthcheck` and `storehook ingest-key`.
//!
//! Exit codes are part of the interface: 0 success, 1 usage or I/O error, 2 a notification the
//! adapter rejected (so a script can tell "my command is wrong" from "the store's body is bad").

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::configuration::Roles;
use crate::forward::schedule::{RetryPolicy, Schedule};
use crate::normalize;

/// storehook: a normalizing webhook gateway between app stores and your backend.
#[derive(Debug, Parser)]
#[command(name = "storehook", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway: ingest (HTTP, ledger, publishing, outbox relay) and the webhook forwarder,
    /// or one of them with `--role`.
    Serve(ServeArgs),
    /// Run only the webhook forwarder (same as `serve --role forward`).
    Forward(ForwardArgs),
    /// Print the retry ladder: step, delay, cumulative time.
    RetrySchedule(RetryScheduleArgs),
    /// Move dead deliveries back for a fresh ladder of attempts (e.g. after fixing an endpoint).
    ReplayDead(ReplayDeadArgs),
    /// Dry run: verify and normalize one raw notification body and print its events, one JSON
    /// object per line, exactly as the gateway would publish them.
    Normalize(NormalizeArgs),
    /// Print a new random ingest key for a source's `ingest_key`.
    IngestKey,
    /// Print the RabbitMQ topology this configuration declares (exchange, queues with their
    /// arguments, binding) as a definitions file for the management plugin or
    /// `rabbitmqctl import_definitions`.
    Definitions(DefinitionsArgs),
    /// Ask a running storehook whether it is ready (`GET /readyz`); exit 0 if so, 1 if not. For
    /// container health checks where no curl is installed.
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Args)]
pub struct DefinitionsArgs {
    /// Configuration file (TOML), as for `serve`: the prefix and the retry ladder.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The RabbitMQ virtual host the definitions are for.
    #[arg(long, default_value = "/")]
    pub vhost: String,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The URL to ask.
    #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
    pub url: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML). Without it, `storehook.toml` in the working directory is read
    /// when present. `STOREHOOK__<SECTION>__<KEY>` environment variables override both.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run only this role (default: the configuration's `[roles]`, both unless set otherwise).
    #[arg(long, value_enum)]
    pub role: Option<Role>,
}

/// One role of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// HTTP ingest, ledger, publishing, outbox relay.
    Ingest,
    /// The webhook forwarder.
    Forward,
}

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// Configuration file (TOML), as for `serve`.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RetryScheduleArgs {
    /// Retries after the initial attempt.
    #[arg(long, default_value_t = 16)]
    pub retries: u32,
    /// The first retry's delay, e.g. `10s`, `500ms`.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub first_delay: std::time::Duration,
    /// The total of all delays, e.g. `36h`, `1h30m`.
    #[arg(long, value_name = "DUR", default_value = "36h", value_parser = parse_duration)]
    pub window: std::time::Duration,
    /// Print a JSON array of the delays in seconds instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReplayDeadArgs {
    /// Configuration file (TOML), as for `serve`: the broker, the prefix and the ladder.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only the deliveries of this endpoint id.
    #[arg(long, value_name = "ID")]
    pub endpoint: Option<String>,
    /// At most this many deliveries.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::forward::schedule::parse_duration(text)
}

#[derive(Debug, Args)]
pub struct NormalizeArgs {
    #[command(subcommand)]
    pub store: NormalizeStore,
}

#[derive(Debug, Subcommand)]
pub enum NormalizeStore {
    /// A RuStore server notification (the JSON envelope with the encrypted payload).
    #[command(name = "rustore")]
    RuStore(RuStoreArgs),
    /// An Autodesk App Store IPN (the form-encoded body).
    #[command(name = "autodesk")]
    Autodesk(AutodeskArgs),
}

#[derive(Debug, Args)]
pub struct RuStoreArgs {
    /// The source's AES-256 key as RuStore Console shows it (base64 of 32 bytes).
    #[arg(long, value_name = "BASE64")]
    pub key: String,
    /// The key before the last rotation, still accepted.
    #[arg(long, value_name = "BASE64")]
    pub previous_key: Option<String>,
    /// RuStore Console app id; notifications for another app are rejected.
    #[arg(long, value_name = "ID")]
    pub app_id: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct AutodeskArgs {
    /// An allowed PayPal receiver e-mail (repeat for several; none allows any).
    #[arg(long = "receiver-email", value_name = "EMAIL")]
    pub receiver_emails: Vec<String>,
    /// An allowed PayPal receiver (merchant) id (repeat for several; none allows any).
    #[arg(long = "receiver-id", value_name = "ID")]
    pub receiver_ids: Vec<String>,
    /// An allowed app id (`appId` or `item_number`; repeat for several; none allows any).
    #[arg(long = "app-id", value_name = "ID")]
    pub app_ids: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// What every `normalize` command shares: who owns the notification, when it arrived, and where
/// the body comes from.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Tenant id written into the events.
    #[arg(long, default_value = "cli")]
    pub tenant: String,
    /// Source id written into the events (and their idempotency keys).
    #[arg(long, default_value = "cli")]
    pub source: String,
    /// Time of receipt (RFC 3339), for reproducible output; default: now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    pub received_at: Option<DateTime<Utc>>,
    /// The raw request body; `-` or nothing reads standard input.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

fn parse_rfc3339(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 time: {e}"))
}

/// Parse the command line and run it; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on usage errors, but 2 means "rejected notification" here.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Normalize(args) => normalize::run(args),
        Command::IngestKey => {
            println!("{}", new_ingest_key());
            ExitCode::SUCCESS
        }
        Command::Serve(args) => {
            let roles = args.role.map(|role| Roles {
                ingest: role == Role::Ingest,
                forward: role == Role::Forward,
            });
            run_gateway(args.config.as_deref(), roles)
        }
        Command::Forward(args) => run_gateway(
            args.config.as_deref(),
            Some(Roles {
                ingest: false,
                forward: true,
            }),
        ),
        Command::RetrySchedule(args) => retry_schedule(&args),
        Command::ReplayDead(args) => replay_dead(&args),
        Command::Definitions(args) => definitions(&args),
        Command::Healthcheck(args) => healthcheck(&args),
    }
}

/// `storehook definitions`: the topology of the configuration as a definitions document.
fn definitions(args: &DefinitionsArgs) -> ExitCode {
    match definitions_json(args.config.as_deref(), &args.vhost) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The text `storehook definitions` prints (pretty JSON, keys sorted).
pub fn definitions_json(config: Option<&std::path::Path>, vhost: &str) -> anyhow::Result<String> {
    let settings = crate::configuration::Settings::load(config)?;
    let schedule = settings.forward.schedule()?;
    let names = crate::forward::topology::Names::new(&settings.broker.prefix, &schedule);
    let document = crate::forward::topology::definitions(&names, vhost);
    Ok(serde_json::to_string_pretty(&document)?)
}

/// `storehook healthcheck`: 0 when the URL answers 2xx within two seconds.
fn healthcheck(args: &HealthcheckArgs) -> ExitCode {
    let asked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                let client = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(2))
                    .build()?;
                Ok(client.get(&args.url).send().await?.status())
            })
        });
    match asked {
        Ok(status) if status.is_success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("{}: {status}", args.url);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{}: {e:#}", args.url);
            ExitCode::from(1)
        }
    }
}

fn run_gateway(config: Option<&std::path::Path>, roles: Option<Roles>) -> ExitCode {
    match crate::startup::serve(config, roles) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `storehook replay-dead`: prints how many deliveries were replayed and how many stayed dead.
fn replay_dead(args: &ReplayDeadArgs) -> ExitCode {
    let replayed = crate::configuration::Settings::load(args.config.as_deref())
        .map_err(anyhow::Error::from)
        .and_then(|settings| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(crate::forward::replay::replay_dead(
                &settings,
                args.endpoint.as_deref(),
                args.limit,
            ))
        });
    match replayed {
        Ok(done) => {
            println!("replayed {}, left dead {}", done.replayed, done.kept);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `storehook retry-schedule`: the ladder as a table, or its delays in seconds as JSON.
fn retry_schedule(args: &RetryScheduleArgs) -> ExitCode {
    let policy = RetryPolicy {
        retries: args.retries,
        first_delay: args.first_delay,
        window: args.window,
    };
    match Schedule::new(policy) {
        Ok(schedule) if args.json => {
            let seconds: Vec<f64> = schedule.delays().map(|d| d.as_secs_f64()).collect();
            println!("{}", serde_json::Value::from(seconds));
            ExitCode::SUCCESS
        }
        Ok(schedule) => {
            print!("{schedule}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// 244 random bits (two v4 UUIDs, from the OS generator) as 64 hex characters.
pub fn new_ingest_key() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
