//! The `mercato` command line: `mercato serve`, `bench`, `recover`,
//! `check`, `import` and `export`.
//! Kept thin: flags and environment become a [`ServerConfig`], and the
//! library does the rest.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use mercato_engine::{Durability, Engine, EngineConfig};
use mercato_server::{
    CatalogFormat, CatalogSource, ConnectionLimits, ImportError, ImportOptions, Limits,
    NotificationSettings, OnError, Progress, ServerConfig,
};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "mercato",
    version,
    about = "A commerce engine in one process: catalog, stock, reservations, events."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(Box<ServeArgs>),
    /// Measure reservation throughput (against a server, or the PostgreSQL baseline).
    Bench(Box<mercato_benches::cli::BenchArgs>),
    /// Recover a stopped server's store: replay its write-ahead log and say
    /// what was found. A damaged log is only ever dropped with --accept-loss.
    Recover(RecoverArgs),
    /// Check a stopped server's store: replay its log, check the file's
    /// integrity and the contract's invariants (stock against reservations
    /// and the event log, orders and payments, notifications). Exits 1 when
    /// anything is wrong.
    Check(CheckArgs),
    /// Promote a running follower (`mercato serve --follow`) to primary: it
    /// applies every record in the stream, takes the stream over (the old
    /// primary is fenced) and starts taking writes.
    Promote(PromoteArgs),
    /// Rebuild the search index of a stopped server's store, from the store.
    Reindex(mercato_server::ReindexArgs),
    /// Load products and stock from a catalog file (JSON Lines or CSV) into
    /// a stopped server's store.
    #[command(long_about = IMPORT_ABOUT)]
    Import(ImportArgs),
    /// Write every product with its stock to a catalog file (JSON Lines or
    /// CSV), in the format `mercato import` reads.
    #[command(long_about = EXPORT_ABOUT)]
    Export(ExportArgs),
}

const IMPORT_ABOUT: &str = "\
Load products and stock from a catalog file into a stopped server's store.

Each row makes the store match it: an unknown id is created; an existing \
product gets every field of the row (a field left out takes the default a new \
product gets) and its on_hand is set to the row's. Products not in the file \
are left alone. Every row is checked first; then the good rows are written in \
batches of 1000, each one transaction. A bad row (unreadable, a field the \
engine refuses, an id repeated, an archived product's id, on_hand below what \
is reserved) is reported as `line N: field X: reason`.

Formats (by --format, else the extension: .jsonl/.ndjson or .csv): JSON Lines, \
one object per line with id, name, price (a string, \"4.50\"), on_hand \
(required) and sku, description, category, brand, attributes (an object of \
strings), low_stock_threshold (optional); or CSV with a header row naming \
those columns, the attributes cell holding a JSON object. A row is at most \
1 MiB, a file at most 1,000,000 rows.

Exit status: 0 when the rows were imported (with --on-error skip, also when \
some were skipped; an empty file imports nothing); 1 on failure: bad rows \
(nothing imported), a file that cannot be read, a store that cannot be opened \
(a running server holds it: stop it first), or a failed write (the batches \
before it are in: run the same import again to complete it); 2 for a wrong \
command line.";

const EXPORT_ABOUT: &str = "\
Write every product (archived ones aside) with its current on_hand to a \
catalog file, in id order, in the format `mercato import` reads: importing it \
again changes nothing. FILE `-` writes to stdout; otherwise the file appears \
only once it is complete.

Exit status: 0 when written; 1 when the store cannot be opened (a running \
server holds it: stop it first) or writing failed; 2 for a wrong command line.";

#[derive(clap::Args)]
struct ImportArgs {
    /// The catalog file (read twice, checked then written, so not a pipe).
    file: PathBuf,
    /// The file's format; by default its extension says (.jsonl, .ndjson, .csv).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// What bad rows do: abort imports nothing at all; skip imports the good
    /// rows and reports the bad ones (failing only when every row is bad).
    #[arg(long, value_enum, default_value = "abort")]
    on_error: OnErrorArg,
    /// The data directory of the stopped server (created if new).
    #[arg(long, env = "MERCATO_DATA_DIR", default_value = "data/db")]
    data_dir: PathBuf,
    /// The store's currency, as given to `mercato serve`.
    #[arg(long, env = "MERCATO_CURRENCY", default_value = "USD")]
    currency: String,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// Where to write; `-` for stdout.
    file: PathBuf,
    /// The format; by default the extension says (.jsonl, .ndjson, .csv).
    /// Required for stdout.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// The data directory of the stopped server.
    #[arg(long, env = "MERCATO_DATA_DIR", default_value = "data/db")]
    data_dir: PathBuf,
    /// The store's currency, as given to `mercato serve`.
    #[arg(long, env = "MERCATO_CURRENCY", default_value = "USD")]
    currency: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    /// JSON Lines: one product object per line.
    Jsonl,
    /// CSV with a header row.
    Csv,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnErrorArg {
    /// Import nothing when any row is bad.
    Abort,
    /// Import the good rows, report the bad ones.
    Skip,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The data directory of the stopped server.
    #[arg(long, env = "MERCATO_DATA_DIR", default_value = "data/db")]
    data_dir: PathBuf,
    /// The store's currency, as given to `mercato serve`.
    #[arg(long, env = "MERCATO_CURRENCY", default_value = "USD")]
    currency: String,
}

#[derive(clap::Args)]
struct RecoverArgs {
    /// The data directory of the stopped server.
    #[arg(long, env = "MERCATO_DATA_DIR", default_value = "data/db")]
    data_dir: PathBuf,
    /// The store's currency, as given to `mercato serve`.
    #[arg(long, env = "MERCATO_CURRENCY", default_value = "USD")]
    currency: String,
    /// When the log is damaged: keep every record before the damage, set
    /// the damaged segments aside (renamed `*.damaged`, kept) and report
    /// exactly what was dropped. Without it a damaged log changes nothing.
    #[arg(long)]
    accept_loss: bool,
}

#[derive(clap::Args)]
struct PromoteArgs {
    /// The follower's address (its --listen, or its URL).
    #[arg(long, env = "MERCATO_LISTEN", default_value = "127.0.0.1:8080")]
    url: String,
    /// The follower's admin token (else read from --data-dir's admin_token).
    #[arg(long, env = "MERCATO_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The follower's data directory, to read its admin token from.
    #[arg(long, env = "MERCATO_DATA_DIR", default_value = "data/db")]
    data_dir: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReplicationArg {
    /// Answer once the batch is synced locally; publish behind the answers.
    Async,
    /// Answer only once JetStream has also acknowledged the batch.
    Sync,
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    /// Answer after the batch is synced to disk.
    Immediate,
    /// Sync at most every --sync-interval-ms; a crash may lose that window.
    Periodic,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Where the store and the server's secrets live.
    #[arg(long, env = "MERCATO_DATA_DIR", default_value = "data/db")]
    data_dir: PathBuf,
    /// The address to listen on.
    #[arg(long, env = "MERCATO_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// When acknowledged writes reach the disk.
    #[arg(
        long,
        env = "MERCATO_DURABILITY",
        value_enum,
        default_value = "immediate"
    )]
    durability: DurabilityArg,
    /// With --durability periodic: the longest time between syncs.
    #[arg(long, env = "MERCATO_SYNC_INTERVAL_MS", default_value_t = 100)]
    sync_interval_ms: u64,
    /// With --durability immediate: how often the store is synced so that
    /// the write-ahead log starts afresh (longer: fewer syncs, longer replay
    /// after a crash). At most 60000.
    #[arg(long, env = "MERCATO_CHECKPOINT_INTERVAL_MS", default_value_t = 1_000)]
    checkpoint_interval_ms: u64,
    /// Do not load the sample catalog into an empty store
    /// (MERCATO_EMPTY takes 1/0, true/false, yes/no, on/off).
    #[arg(long, env = "MERCATO_EMPTY", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    empty: bool,
    /// Load this catalog file into an empty store instead of the sample, as
    /// `mercato import` does (JSON Lines, or CSV for a .csv file).
    #[arg(long, env = "MERCATO_CATALOG")]
    catalog: Option<PathBuf>,
    /// The store currency (ISO 4217), fixed when the store is created.
    #[arg(long, env = "MERCATO_CURRENCY", default_value = "USD")]
    currency: String,
    /// The admin token; generated and stored in the data directory when unset.
    #[arg(long, env = "MERCATO_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The largest request body in bytes.
    #[arg(long, env = "MERCATO_BODY_LIMIT_BYTES", default_value_t = 1 << 20)]
    body_limit_bytes: usize,
    /// Requests per second per client IP (off when unset).
    #[arg(long, env = "MERCATO_RATE_LIMIT")]
    rate_limit: Option<u32>,
    /// Log lines as human text or as JSON objects (one per line).
    #[arg(long, env = "MERCATO_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// The writer's queue length; a full queue answers 503 overloaded.
    #[arg(long, env = "MERCATO_QUEUE_MAX", default_value_t = 65_536)]
    queue_max: usize,
    /// Threads serving HTTP. Default: one less than the CPUs (at least 1),
    /// since under load the writer thread needs a core of its own.
    #[arg(long, env = "MERCATO_WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// Days a cart may go unchanged before it is removed (1 to 3650).
    #[arg(long, env = "MERCATO_CART_TTL_DAYS", default_value_t = 30)]
    cart_ttl_days: u64,
    /// The secret payment webhooks are signed with (HMAC-SHA256); generated
    /// and stored in the data directory (webhook_secret) when unset.
    #[arg(long, env = "MERCATO_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// How long the simulated payment gateway takes to answer each call, in
    /// milliseconds (at most 60000; above the saga runner's 10 s timeout
    /// every charge fails).
    #[arg(long, env = "MERCATO_GATEWAY_LATENCY_MS", default_value_t = 0)]
    gateway_latency_ms: u64,
    /// How long after accepting a tok_delayed charge the simulated gateway
    /// sends its signed webhook, in milliseconds (at most 3600000).
    #[arg(
        long,
        env = "MERCATO_GATEWAY_WEBHOOK_DELAY_MS",
        default_value_t = 2_000
    )]
    gateway_webhook_delay_ms: u64,
    /// The channels customers are notified through, comma-separated:
    /// store (kept in the database, read over the API), webhook, email.
    #[arg(
        long,
        env = "MERCATO_NOTIFY_CHANNELS",
        value_delimiter = ',',
        default_value = "store"
    )]
    notify_channels: Vec<mercato_engine::NotificationChannel>,
    /// Where the webhook channel POSTs notifications (http or https).
    #[arg(long, env = "MERCATO_NOTIFY_WEBHOOK_URL")]
    notify_webhook_url: Option<String>,
    /// The secret notification webhooks are signed with (HMAC-SHA256, as
    /// payment webhooks); generated and stored in the data directory
    /// (notification_webhook_secret) when unset.
    #[arg(long, env = "MERCATO_NOTIFY_WEBHOOK_SECRET", hide_env_values = true)]
    notify_webhook_secret: Option<String>,
    /// The email channel's SMTP server: smtp://[user:pass@]host[:port]
    /// (add ?tls=required for STARTTLS) or smtps://... for TLS.
    #[arg(long, env = "MERCATO_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender of notification emails.
    #[arg(
        long,
        env = "MERCATO_SMTP_FROM",
        default_value = "Mercato <orders@localhost>"
    )]
    smtp_from: String,
    /// A directory of notification templates replacing the built-in ones
    /// (order_confirmation.subject, order_confirmation.txt,
    /// order_confirmation.html, ..., _layout.html); each is checked at start.
    #[arg(long, env = "MERCATO_TEMPLATES")]
    templates: Option<PathBuf>,
    /// The shop's name, as notifications show it.
    #[arg(long, env = "MERCATO_SHOP_NAME", default_value = "Mercato")]
    shop_name: String,
    /// Delivery attempts before a notification is failed (1 to 100).
    #[arg(long, env = "MERCATO_NOTIFY_ATTEMPTS_MAX", default_value_t = 8)]
    notify_attempts_max: u32,
    /// The wait before a notification's second attempt, in milliseconds; it
    /// doubles each time, with jitter, up to 5 minutes.
    #[arg(long, env = "MERCATO_NOTIFY_BACKOFF_MS", default_value_t = 1_000)]
    notify_backoff_ms: u64,
    /// The longest one notification send may take, in milliseconds.
    #[arg(long, env = "MERCATO_NOTIFY_TIMEOUT_MS", default_value_t = 10_000)]
    notify_timeout_ms: u64,
    /// The most client connections open at once (kept below the open-files
    /// limit); more clients wait until one closes.
    #[arg(long, env = "MERCATO_CONNECTIONS_MAX", default_value_t = 4_096)]
    connections_max: usize,
    /// The longest a client may take to send a request's headers, in
    /// milliseconds; also how long an idle keep-alive connection stays open.
    #[arg(long, env = "MERCATO_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// The longest a request may take, its body included, in milliseconds
    /// (408 past it).
    #[arg(long, env = "MERCATO_REQUEST_TIMEOUT_MS", default_value_t = 60_000)]
    request_timeout_ms: u64,
    /// The most server-sent event streams open at once (the console's and
    /// the storefront's live updates); past it a new one gets 503
    /// too_many_streams.
    #[arg(long, env = "MERCATO_STREAMS_MAX", default_value_t = 256)]
    streams_max: usize,
    /// Switch off the storefront's demo sign-in (a name, no password),
    /// for a shop that signs people in with its own login
    /// (MERCATO_NO_DEMO_SIGN_IN takes 1/0, true/false, yes/no, on/off).
    #[arg(long, env = "MERCATO_NO_DEMO_SIGN_IN", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    no_demo_sign_in: bool,
    /// Run without the search index: the search routes answer 503. For a
    /// primary whose followers serve search, or to measure the indexer's
    /// cost. The index is not touched; a later start without the flag
    /// catches it up (MERCATO_NO_SEARCH takes 1/0, true/false, ...).
    #[arg(long, env = "MERCATO_NO_SEARCH", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    no_search: bool,
    /// At shutdown, how long requests in flight may finish before every
    /// connection is closed, in milliseconds.
    #[arg(long, env = "MERCATO_SHUTDOWN_GRACE_MS", default_value_t = 10_000)]
    shutdown_grace_ms: u64,
    /// How long an event is kept once every consumer has passed it, e.g.
    /// 30days, 12h, 5m (at least 60s; 0 keeps every event).
    #[arg(long, env = "MERCATO_EVENT_RETENTION", default_value = "30days", value_parser = retention)]
    event_retention: Retention,
    /// How long a finished reservation is kept, unless its order can still
    /// change, e.g. 30days, 12h, 5m (at least 60s; 0 keeps them all).
    #[arg(long, env = "MERCATO_RESERVATION_RETENTION", default_value = "30days", value_parser = retention)]
    reservation_retention: Retention,
    /// How long the first answer to an Idempotency-Key is kept for replay,
    /// e.g. 24h, 10m (60s to 365days).
    #[arg(long, env = "MERCATO_IDEMPOTENCY_TTL", default_value = "24h", value_parser = idempotency_ttl)]
    idempotency_ttl: Duration,
    /// Replicate: publish every write-ahead log record and every event to
    /// this NATS JetStream server (nats://host:port; comma-separated for a
    /// cluster). This server is the primary.
    #[arg(long, env = "MERCATO_NATS", conflicts_with = "follow")]
    nats: Option<String>,
    /// Follow the primary whose log is in this NATS JetStream server: serve
    /// reads and search, refuse writes (421 not_primary) until promoted.
    #[arg(long, env = "MERCATO_FOLLOW")]
    follow: Option<String>,
    /// The store's name in NATS subjects and streams (mercato.NAME.log, ...).
    #[arg(long, env = "MERCATO_STORE_NAME", default_value = "default")]
    store_name: String,
    /// With --nats: answer after the local sync (async) or only once
    /// JetStream has the record too (sync).
    #[arg(long, env = "MERCATO_REPLICATION", value_enum, default_value = "async")]
    replication: ReplicationArg,
    /// Replicas of the JetStream streams (3 on a three-node cluster).
    #[arg(long, env = "MERCATO_NATS_REPLICAS", default_value_t = 1)]
    nats_replicas: usize,
    /// This server's URL as followers name it in their refusals of writes
    /// (default: http:// and --listen).
    #[arg(long, env = "MERCATO_ADVERTISE")]
    advertise: Option<String>,
    /// How long a read with ?min_seq= (or Mercato-Min-Seq) waits for this
    /// server to reach that log position before answering 503, in
    /// milliseconds (at most 10000).
    #[arg(long, env = "MERCATO_MIN_SEQ_WAIT_MS", default_value_t = 2_000)]
    min_seq_wait_ms: u64,
    /// Log records between two snapshots in the object store. The log
    /// stream keeps the records after the snapshot before the newest (about
    /// twice this many); a follower behind that starts from the newest.
    #[arg(
        long,
        env = "MERCATO_SNAPSHOT_EVERY_RECORDS",
        default_value_t = 100_000
    )]
    snapshot_every_records: u64,
}

/// A retention flag's value: `None` keeps for ever.
#[derive(Clone, Copy, Debug)]
struct Retention(Option<Duration>);

/// The shortest retention the engine takes (`EngineConfig::event_retention`).
const RETENTION_MIN: Duration = Duration::from_secs(60);

/// Parses a retention: a duration such as `30days` or `5m`, at least
/// [`RETENTION_MIN`], or `0` for ever.
fn retention(text: &str) -> Result<Retention, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|error| {
        format!("{error} (a duration such as 30days, 12h or 5m; 0 keeps for ever)")
    })?;
    if duration.is_zero() {
        return Ok(Retention(None));
    }
    if duration < RETENTION_MIN {
        return Err(format!(
            "{} is shorter than the shortest retention, 60s (0 keeps for ever)",
            humantime::format_duration(duration)
        ));
    }
    Ok(Retention(Some(duration)))
}

/// Parses `--idempotency-ttl`: a duration within the server's bounds.
fn idempotency_ttl(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|error| format!("{error} (a duration such as 24h or 10m)"))?;
    if duration < mercato_server::IDEMPOTENCY_TTL_MIN
        || duration > mercato_server::IDEMPOTENCY_TTL_MAX
    {
        return Err(format!(
            "{} is outside 60s to 365days",
            humantime::format_duration(duration)
        ));
    }
    Ok(duration)
}

/// The longest simulated gateway latency, in milliseconds.
const GATEWAY_LATENCY_MS_MAX: u64 = 60_000;
/// The longest simulated webhook delay, in milliseconds.
const GATEWAY_WEBHOOK_DELAY_MS_MAX: u64 = 3_600_000;

/// mimalloc instead of the system allocator: on the reservation path, glibc's
/// malloc and free were a quarter of the server's instructions (callgrind).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Bench(args) => mercato_benches::cli::run(*args),
        Command::Recover(args) => recover(args),
        Command::Promote(args) => promote(args),
        Command::Check(args) => check(args),
        Command::Reindex(args) => reindex(args),
        Command::Import(args) => import(args),
        Command::Export(args) => export(args),
    }
}

/// The format `--format` names, or else `path`'s extension.
fn catalog_format(format: Option<FormatArg>, path: &std::path::Path) -> Option<CatalogFormat> {
    match format {
        Some(FormatArg::Jsonl) => Some(CatalogFormat::Jsonl),
        Some(FormatArg::Csv) => Some(CatalogFormat::Csv),
        None => CatalogFormat::from_path(path),
    }
}

/// Opens the store of a stopped server for `import` or `export`.
fn open_store(data_dir: PathBuf, currency: String) -> Result<Engine, String> {
    let shown = data_dir.display().to_string();
    let mut config = EngineConfig::new(data_dir);
    config.currency = currency;
    Engine::open(config).map_err(|error| {
        let mut message = format!("cannot open the store in {shown}: {error}");
        if matches!(&error, mercato_engine::Error::Storage(text) if text.contains("already open")) {
            message.push_str(
                "\nA running `mercato serve` (or another command) holds this data directory, and \
                 only one process at a time may open it: stop it, then run this again.",
            );
        }
        message
    })
}

fn init_command_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("MERCATO_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

fn import(args: ImportArgs) -> ExitCode {
    init_command_logging();
    let Some(format) = catalog_format(args.format, &args.file) else {
        eprintln!(
            "error: cannot tell the format of {} from its extension; give --format jsonl or --format csv",
            args.file.display()
        );
        return ExitCode::from(2);
    };
    // Before the store is opened (and perhaps created): a mistyped path
    // should leave no empty store behind.
    if let Err(error) = std::fs::File::open(&args.file) {
        eprintln!("error: cannot read {}: {error}", args.file.display());
        return ExitCode::FAILURE;
    }
    let engine = match open_store(args.data_dir, args.currency) {
        Ok(engine) => engine,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let mut options = ImportOptions::new(format);
    options.on_error = match args.on_error {
        OnErrorArg::Abort => OnError::Abort,
        OnErrorArg::Skip => OnError::Skip,
    };
    let result = mercato_server::import_catalog(
        &engine,
        CatalogSource::Path(&args.file),
        &options,
        &Progress::stderr(),
    );
    engine.shutdown();
    match result {
        Ok(report) => {
            eprint!("{}", report.bad_rows_text());
            if report.rows == 0 {
                println!(
                    "{} holds no products: nothing imported",
                    args.file.display()
                );
            } else {
                println!("{}: {report}", args.file.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            if let ImportError::Write { report, .. } | ImportError::Changed { report, .. } = &error
            {
                eprintln!("written before the failure: {report}");
            }
            ExitCode::FAILURE
        }
    }
}

fn export(args: ExportArgs) -> ExitCode {
    init_command_logging();
    let to_stdout = args.file.as_os_str() == "-";
    let Some(format) = catalog_format(args.format, &args.file) else {
        eprintln!(
            "error: cannot tell the format of {} from its extension; give --format jsonl or --format csv",
            args.file.display()
        );
        return ExitCode::from(2);
    };
    if !args
        .data_dir
        .join(mercato_engine::DATABASE_FILE_NAME)
        .is_file()
    {
        eprintln!("error: there is no store in {}", args.data_dir.display());
        return ExitCode::FAILURE;
    }
    let engine = match open_store(args.data_dir, args.currency) {
        Ok(engine) => engine,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let progress = Progress::stderr();
    let result = if to_stdout {
        mercato_server::export_catalog(&engine, std::io::stdout().lock(), format, &progress)
    } else {
        mercato_server::export_catalog_to_path(&engine, &args.file, format, &progress)
    };
    engine.shutdown();
    match result {
        Ok(count) => {
            if !to_stdout {
                println!("exported {count} products to {}", args.file.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn reindex(args: mercato_server::ReindexArgs) -> ExitCode {
    init_command_logging();
    mercato_server::reindex(args)
}

fn check(args: CheckArgs) -> ExitCode {
    init_command_logging();
    if !args
        .data_dir
        .join(mercato_engine::DATABASE_FILE_NAME)
        .is_file()
    {
        eprintln!(
            "error: {} holds no store ({} is missing)",
            args.data_dir.display(),
            mercato_engine::DATABASE_FILE_NAME
        );
        return ExitCode::from(2);
    }
    let mut config = mercato_engine::EngineConfig::new(&args.data_dir);
    config.currency = args.currency;
    match mercato_engine::Engine::check(config) {
        Ok(report) => {
            println!(
                "checked {}: {} products, {} active reservations, {} events, {} orders, {} notifications; \
                 {} log record(s) replayed{}",
                args.data_dir.display(),
                report.products,
                report.active_reservations,
                report.events,
                report.orders,
                report.notifications,
                report.recovery.replayed_records,
                if report.repaired {
                    "; redb repaired the file"
                } else {
                    ""
                }
            );
            if report.is_sound() {
                println!("every invariant holds");
                ExitCode::SUCCESS
            } else {
                for problem in &report.problems {
                    println!("PROBLEM: {problem}");
                }
                println!("{} problem(s)", report.problem_count);
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn promote(args: PromoteArgs) -> ExitCode {
    init_command_logging();
    let token = match args.admin_token {
        Some(token) => token,
        None => match std::fs::read_to_string(args.data_dir.join(mercato_server::ADMIN_TOKEN_FILE))
        {
            Ok(token) => token.trim().to_owned(),
            Err(error) => {
                eprintln!(
                    "error: no --admin-token, and cannot read {}: {error}",
                    args.data_dir
                        .join(mercato_server::ADMIN_TOKEN_FILE)
                        .display()
                );
                return ExitCode::from(2);
            }
        },
    };
    let base = if args.url.starts_with("http://") || args.url.starts_with("https://") {
        args.url.trim_end_matches('/').to_owned()
    } else {
        format!("http://{}", args.url)
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        let response = client
            .post(format!("{base}/api/v1/replication/promote"))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        Ok::<_, reqwest::Error>((status, body))
    });
    match outcome {
        Ok((status, body)) if status.is_success() => {
            println!("promoted {base}: {body}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("error: the promotion was refused ({status}): {body}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: cannot reach {base}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn recover(args: RecoverArgs) -> ExitCode {
    init_command_logging();
    if !args.data_dir.is_dir() {
        eprintln!("error: {} is not a directory", args.data_dir.display());
        return ExitCode::from(2);
    }
    let mut config = mercato_engine::EngineConfig::new(&args.data_dir);
    config.currency = args.currency;
    match mercato_engine::Engine::recover(config, args.accept_loss) {
        Ok(report) => {
            println!(
                "recovered {}: {} segment(s) read, {} record(s) replayed, the store holds the log up to record {}",
                args.data_dir.display(),
                report.segments,
                report.replayed_records,
                report.last_lsn
            );
            if report.torn_records > 0 {
                println!(
                    "the last write to the log was cut short by a crash: {} record(s) of it dropped (never acknowledged)",
                    report.torn_records
                );
            }
            match report.loss {
                Some(loss) => {
                    println!("DATA LOST, as accepted with --accept-loss: {loss}");
                    for name in &loss.set_aside {
                        println!("set aside (kept, never read again): {name}");
                    }
                }
                None => println!("nothing was lost"),
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("MERCATO_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    // Variables of flags that took days before they took durations: a
    // setting that is silently ignored is worse than a refusal.
    for (old, new) in [
        ("MERCATO_EVENT_RETENTION_DAYS", "MERCATO_EVENT_RETENTION"),
        (
            "MERCATO_RESERVATION_RETENTION_DAYS",
            "MERCATO_RESERVATION_RETENTION",
        ),
    ] {
        if std::env::var_os(old).is_some() {
            eprintln!(
                "error: {old} is no longer read: set {new} to a duration instead \
                 (for example {new}=30days; 0 keeps for ever)"
            );
            return ExitCode::from(2);
        }
    }
    if args.sync_interval_ms == 0
        || args.checkpoint_interval_ms == 0
        || args.worker_threads == Some(0)
        || args.queue_max == 0
        || args.body_limit_bytes == 0
        || args.cart_ttl_days == 0
        || args.connections_max == 0
        || args.header_timeout_ms == 0
        || args.request_timeout_ms == 0
        || args.streams_max == 0
    {
        eprintln!(
            "error: --sync-interval-ms, --checkpoint-interval-ms, --queue-max, \
             --body-limit-bytes, --worker-threads, --cart-ttl-days, --connections-max, \
             --header-timeout-ms, --request-timeout-ms and --streams-max must be at least 1"
        );
        return ExitCode::from(2);
    }
    if args.gateway_latency_ms > GATEWAY_LATENCY_MS_MAX
        || args.gateway_webhook_delay_ms > GATEWAY_WEBHOOK_DELAY_MS_MAX
    {
        eprintln!(
            "error: --gateway-latency-ms must be at most {GATEWAY_LATENCY_MS_MAX} and \
             --gateway-webhook-delay-ms at most {GATEWAY_WEBHOOK_DELAY_MS_MAX}"
        );
        return ExitCode::from(2);
    }
    if args.notify_attempts_max == 0
        || args.notify_attempts_max > mercato_engine::NOTIFICATION_ATTEMPTS_MAX
        || args.notify_timeout_ms == 0
    {
        eprintln!(
            "error: --notify-attempts-max must be between 1 and {} and --notify-timeout-ms at least 1",
            mercato_engine::NOTIFICATION_ATTEMPTS_MAX
        );
        return ExitCode::from(2);
    }
    if args.notify_webhook_secret.as_deref() == Some("") {
        eprintln!("error: --notify-webhook-secret must not be empty");
        return ExitCode::from(2);
    }
    if args.webhook_secret.as_deref() == Some("") {
        eprintln!("error: --webhook-secret must not be empty");
        return ExitCode::from(2);
    }
    if args.min_seq_wait_ms > 10_000 || args.snapshot_every_records == 0 {
        eprintln!(
            "error: --min-seq-wait-ms must be at most 10000 and --snapshot-every-records at least 1"
        );
        return ExitCode::from(2);
    }
    let replication = match (args.nats.clone(), args.follow.clone()) {
        (None, None) => None,
        (url, follow) => {
            let follow_mode = follow.is_some();
            let mut nats = mercato_engine::nats::NatsConfig::new(
                url.or(follow).expect("one of them is given"),
            );
            nats.store = args.store_name.clone();
            nats.replicas = args.nats_replicas;
            nats.mode = match args.replication {
                ReplicationArg::Async => mercato_engine::nats::ReplicationMode::Async,
                ReplicationArg::Sync => mercato_engine::nats::ReplicationMode::Sync,
            };
            nats.advertise = Some(
                args.advertise
                    .clone()
                    .unwrap_or_else(|| format!("http://{}", args.listen)),
            );
            nats.snapshot_every_records = args.snapshot_every_records;
            if let Err(error) = nats.validate() {
                eprintln!("error: --store-name or --nats-replicas: {error}");
                return ExitCode::from(2);
            }
            if !matches!(args.durability, DurabilityArg::Immediate) {
                eprintln!("error: replication needs --durability immediate");
                return ExitCode::from(2);
            }
            Some(mercato_server::ReplicationSettings {
                nats,
                follow: follow_mode,
                min_seq_wait: Duration::from_millis(args.min_seq_wait_ms),
            })
        }
    };
    let config = ServerConfig {
        replication,
        data_dir: args.data_dir,
        listen: args.listen,
        durability: match args.durability {
            DurabilityArg::Immediate => Durability::Immediate,
            DurabilityArg::Periodic => Durability::Periodic {
                sync_interval: Duration::from_millis(args.sync_interval_ms),
            },
        },
        empty: args.empty,
        demo_sign_in: !args.no_demo_sign_in,
        search: !args.no_search,
        catalog: args.catalog,
        currency: args.currency,
        admin_token: args.admin_token,
        limits: Limits {
            body_bytes_max: args.body_limit_bytes,
            rate_limit_per_second: args.rate_limit,
            request_timeout: Duration::from_millis(args.request_timeout_ms),
            streams_max: args.streams_max,
            idempotency_ttl: args.idempotency_ttl,
            ..Limits::default()
        },
        event_retention: args.event_retention.0,
        reservation_retention: args.reservation_retention.0,
        connections: ConnectionLimits {
            connections_max: args.connections_max,
            header_timeout: Duration::from_millis(args.header_timeout_ms),
            shutdown_grace: Duration::from_millis(args.shutdown_grace_ms),
        },
        queue_max: args.queue_max,
        checkpoint_interval: Duration::from_millis(args.checkpoint_interval_ms),
        cart_ttl: Duration::from_secs(args.cart_ttl_days.saturating_mul(86_400)),
        webhook_secret: args.webhook_secret,
        gateway_latency: Duration::from_millis(args.gateway_latency_ms),
        gateway_webhook_delay: Duration::from_millis(args.gateway_webhook_delay_ms),
        notifications: NotificationSettings {
            channels: {
                let mut channels = args.notify_channels;
                channels.sort();
                channels.dedup();
                channels
            },
            webhook_url: args.notify_webhook_url,
            webhook_secret: args.notify_webhook_secret,
            smtp_url: args.smtp_url,
            smtp_from: args.smtp_from,
            templates: args.templates,
            shop_name: args.shop_name,
            attempts_max: args.notify_attempts_max,
            backoff_initial: Duration::from_millis(args.notify_backoff_ms),
            send_timeout: Duration::from_millis(args.notify_timeout_ms),
        },
    };
    // On 2 cores one HTTP worker beside the writer and log threads served
    // 15-20% more reservations/s than two (BENCHMARKS.md).
    let worker_threads = args.worker_threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |cpus| cpus.get().saturating_sub(1).max(1))
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(mercato_server::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retentions_are_durations_of_a_minute_or_more() {
        assert_eq!(
            retention("30days").unwrap().0,
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(retention("2m").unwrap().0, Some(Duration::from_secs(120)));
        assert_eq!(retention("60s").unwrap().0, Some(Duration::from_secs(60)));
        assert_eq!(retention("0").unwrap().0, None);
        assert_eq!(retention("0s").unwrap().0, None);
        assert!(retention("59s").unwrap_err().contains("shortest retention"));
        assert!(retention("30").is_err());
        assert!(retention("soon").is_err());
    }

    #[test]
    fn idempotency_ttls_are_bounded() {
        assert_eq!(idempotency_ttl("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(idempotency_ttl("1m").unwrap(), Duration::from_secs(60));
        assert!(idempotency_ttl("59s").unwrap_err().contains("outside"));
        assert!(idempotency_ttl("0").is_err());
        assert!(idempotency_ttl("366days").is_err());
        assert!(idempotency_ttl("a while").is_err());
    }

    #[test]
    fn the_flags_parse() {
        let cli = Cli::try_parse_from([
            "mercato",
            "serve",
            "--event-retention",
            "2m",
            "--reservation-retention",
            "0",
            "--idempotency-ttl",
            "90s",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.event_retention.0, Some(Duration::from_secs(120)));
        assert_eq!(args.reservation_retention.0, None);
        assert_eq!(args.idempotency_ttl, Duration::from_secs(90));
        assert!(Cli::try_parse_from(["mercato", "serve", "--event-retention", "10s"]).is_err());
    }
}
