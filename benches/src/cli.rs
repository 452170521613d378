//! `mercato bench`: the command line of the reservation benchmarks.
//!
//! `mercato bench reserve` loads a Mercato server (a running one, or one it
//! starts) with stock reservations over HTTP and checks that nothing was
//! oversold; `mercato bench compare` runs the PostgreSQL baseline and
//! Mercato back to back and tabulates the ratios; `mercato bench restart`
//! times the engine's open after a crash against the store's size;
//! `mercato bench search` measures search (benches/search/README.md);
//! `mercato bench soak` runs mixed load for hours and judges what grows.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::Error;
use crate::checkout;
use crate::client::Target;
use crate::compare::{self, CompareOptions};
use crate::load::{Bound, LoadPlan, Skew};
use crate::reserve::{self, ServerSource};
use crate::restart::{self, Case, ChildRole, Fill, RestartOptions};
use crate::search::{self, LoadMethod, Phase, SearchOptions, SearchServer};
use crate::server::SpawnedServer;
use crate::soak::{self, SoakOptions};

/// `mercato bench ...`
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Which benchmark to run.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The benchmarks.
#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Reservation throughput and latency over HTTP, with a zero-oversell check.
    ///
    /// Without --url, starts `mercato serve` (this binary, or --server-bin)
    /// on a free loopback port with an empty store in a temp dir, and stops
    /// it at the end. Exit status: 0 when the run finished and the check
    /// passed, 1 on oversell or when the server's stock disagrees with the
    /// answers, 2 when the run could not be made.
    Reserve(ReserveArgs),
    /// PostgreSQL (benches/postgres/run.sh) versus Mercato, back to back.
    ///
    /// For each workload, runs the PostgreSQL baseline at its client counts
    /// and Mercato (servers started here) at several connection counts, in
    /// immediate and periodic durability; prints a table of ratios and
    /// writes every raw result and a summary.json to --out.
    Compare(CompareArgs),
    /// Orders over HTTP, each followed to CONFIRMED: confirmed orders per
    /// second and the time from POST to CONFIRMED; with --buyers, a flash
    /// sale with exact counts.
    ///
    /// Without --url, starts `mercato serve` (this binary, or --server-bin)
    /// on a free loopback port with an empty store and the simulated
    /// gateway at zero latency. Exit status: 0 when the checks passed, 1 on
    /// oversell or inexact flash-sale counts, 2 when the run failed.
    Checkout(CheckoutArgs),
    /// Restart time after a crash (and after a clean stop) against the
    /// store's size.
    ///
    /// For each size, fills a store in --dir (default: a temp dir in /tmp),
    /// then, in fresh processes of this binary: writes, stops the writer
    /// (SIGKILL when idle, SIGKILL during writes, or a clean shutdown) and
    /// times `Engine::open`, with a warm page cache and a cold one (after
    /// `sync; echo 3 > /proc/sys/vm/drop_caches`, which needs root). Exit
    /// status: 0 when every acknowledged write was found after every
    /// restart, 1 when one was missing, 2 when the run could not be made.
    Restart(RestartArgs),
    /// Search: index build rate, query latency (open loop) and highest
    /// queries/s (closed loop) per query type, update-to-visible while
    /// reservations run at full speed, and reservations/s with the indexer
    /// against a baseline.
    ///
    /// Without --url, starts `mercato serve` (this binary, or --server-bin)
    /// on a free loopback port with a fresh store loaded with --catalog, and
    /// stops it at the end. The query set comes from
    /// benches/search/generate_queries.py; benches/postgres/search.sh runs
    /// the same queries on PostgreSQL. Exit status: 0 when every query was
    /// answered and every check passed, 1 otherwise, 2 when the run failed.
    Search(SearchArgs),
    /// A soak: hours of mixed load (reservations left to expire, commits,
    /// releases, restocks, idempotent retries, reads) at half the peak,
    /// sampling the server's memory, descriptors, data directory and p99.
    ///
    /// Starts `mercato serve` (this binary, or --server-bin) on a free
    /// loopback port with an empty store and short retentions, so the data
    /// directory can level off. Without --rate, first measures the peak:
    /// the same mix in a closed loop over the same connections. Writes
    /// samples.csv (as it goes), summary.md and soak.svg to --out. Exit
    /// status: 0 when every check passed, 1 when one failed, 2 when the
    /// run could not be made.
    Soak(SoakArgs),
    /// The processes `mercato bench restart` starts (not for direct use).
    #[command(hide = true)]
    RestartChild(RestartChildArgs),
}

/// When a server is started here: `mercato serve --durability ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DurabilityArg {
    /// Every answer after its batch is synced to disk (the default).
    Immediate,
    /// Batches synced at most every 100 ms.
    Periodic,
}

impl DurabilityArg {
    pub(crate) fn name(self) -> &'static str {
        match self {
            DurabilityArg::Immediate => "immediate",
            DurabilityArg::Periodic => "periodic",
        }
    }
}

/// Options of `mercato bench reserve`.
#[derive(clap::Args, Debug)]
pub struct ReserveArgs {
    /// A running server, e.g. http://127.0.0.1:8080. Without it, one is started.
    #[arg(long)]
    url: Option<String>,
    /// The admin token of the server given by --url.
    #[arg(long, env = "MERCATO_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The `mercato` binary to start when there is no --url (default: this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Seconds of measurement (after the warm-up). Default 10 unless --requests.
    #[arg(long, conflicts_with = "requests")]
    duration: Option<f64>,
    /// Stop after this many measured requests instead.
    #[arg(long)]
    requests: Option<u64>,
    /// Concurrent clients, each with its own keep-alive connection.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Products 1..=N, created when missing.
    #[arg(long, default_value_t = 1000)]
    products: u64,
    /// Units available per product at the start.
    #[arg(long, default_value_t = 1_000_000)]
    stock: u64,
    /// Lines (distinct products) per reservation.
    #[arg(long, default_value_t = 1)]
    lines: usize,
    /// Units per line.
    #[arg(long, default_value_t = 1)]
    quantity: u64,
    /// How products are chosen: uniform, or hot (--hot-fraction of the
    /// reservations on the first --hot-products products).
    #[arg(long, value_enum, default_value = "uniform")]
    skew: Skew,
    /// The hot products, 1..=K, of --skew hot.
    #[arg(long, default_value_t = 10)]
    hot_products: u64,
    /// The share of reservations on the hot products with --skew hot.
    #[arg(long, default_value_t = 0.9)]
    hot_fraction: f64,
    /// The durability of the server started here (default immediate); with
    /// --url only a label for the report.
    #[arg(long, value_enum)]
    durability: Option<DurabilityArg>,
    /// Open loop: send at this fixed total rate (requests/s); latency is
    /// measured from each request's scheduled time. Default: closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Print one JSON object of results on stdout instead of the report.
    #[arg(long)]
    json: bool,
    /// Seconds of load before the measurement starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds a request may take before it counts as a transport error.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

/// Options of `mercato bench checkout`.
#[derive(clap::Args, Debug)]
pub struct CheckoutArgs {
    /// A running server, e.g. http://127.0.0.1:8080. Without it, one is started.
    #[arg(long)]
    url: Option<String>,
    /// The admin token of the server given by --url.
    #[arg(long, env = "MERCATO_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The `mercato` binary to start when there is no --url (default: this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The durability of the server started here.
    #[arg(long, value_enum, default_value = "immediate")]
    durability: DurabilityArg,
    /// Concurrent clients, each with its own keep-alive connection.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of measurement (steady mode).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Products 1..=N (steady mode).
    #[arg(long, default_value_t = 1000)]
    products: u64,
    /// Lines per order: 1 to N, at random.
    #[arg(long, default_value_t = 3)]
    lines: u64,
    /// Flash sale: this many orders of one unit of one product ...
    #[arg(long, requires = "units")]
    buyers: Option<u64>,
    /// ... which has this many units.
    #[arg(long, requires = "buyers")]
    units: Option<u64>,
    /// Seconds a request (or an order's end) may take.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Print one JSON object of results on stdout instead of the report.
    #[arg(long)]
    json: bool,
}

/// Options of `mercato bench compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Seconds of measurement per run (every client or connection count).
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Seconds of warm-up before each Mercato run.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Mercato's connection counts, one run each.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256")]
    connections: Vec<usize>,
    /// PostgreSQL's client counts (pgbench -c), one run each.
    #[arg(long, value_delimiter = ',', default_value = "8,16,32,64")]
    pg_clients: Vec<usize>,
    /// Workloads to run.
    #[arg(long, value_delimiter = ',', value_enum, default_value = "uniform,hot")]
    workloads: Vec<Skew>,
    /// Lines per reservation to run, e.g. 1,3.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    lines: Vec<usize>,
    /// Products 1..=N.
    #[arg(long, default_value_t = 1000)]
    products: u64,
    /// Units per product at the start of each run.
    #[arg(long, default_value_t = 1_000_000)]
    stock: u64,
    /// Where results go (default: benches/results/<UTC timestamp>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The PostgreSQL baseline script (default: benches/postgres/run.sh of this repo).
    #[arg(long)]
    postgres_script: Option<PathBuf>,
    /// The `mercato` binary to start (default: this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Skip PostgreSQL (Mercato only; no ratios).
    #[arg(long)]
    skip_postgres: bool,
    /// Skip the periodic-durability runs.
    #[arg(long)]
    skip_periodic: bool,
}

/// Options of `mercato bench search`.
#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// The catalog (JSON lines): python3 data/generate_catalog.py --count 100000.
    #[arg(long)]
    catalog: PathBuf,
    /// The query set (JSON lines): benches/search/generate_queries.py.
    #[arg(long)]
    queries: PathBuf,
    /// A running server already loaded with --catalog. Without it, one is started.
    #[arg(long)]
    url: Option<String>,
    /// The admin token of the server given by --url.
    #[arg(long, env = "MERCATO_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The `mercato` binary to start when there is no --url (default: this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// How the catalog gets into the started server's fresh store.
    #[arg(long, value_enum, default_value = "auto")]
    load: LoadMethod,
    /// The durability of the servers started here.
    #[arg(long, value_enum, default_value = "immediate")]
    durability: DurabilityArg,
    /// Phases to run.
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "build,queries,visibility,reserve"
    )]
    phases: Vec<Phase>,
    /// Query types to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "one_word,typo,prefix,facet,filtered,suggest"
    )]
    types: Vec<String>,
    /// Open-loop rates (queries/s), one run each per type.
    #[arg(long, value_delimiter = ',', default_value = "20,200")]
    rates: Vec<f64>,
    /// Connections of the open-loop runs.
    #[arg(long, default_value_t = 16)]
    open_connections: usize,
    /// Client counts of the closed-loop runs (each its own connection).
    #[arg(long, value_delimiter = ',', default_value = "2,4,8,16")]
    clients: Vec<usize>,
    /// Seconds of each measured run (after one unrecorded second).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of unrecorded load before each type's runs.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds a query may take before it counts as an error.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Stock changes of the visibility phase (half sell-outs, half restocks).
    #[arg(long, default_value_t = 50)]
    changes: usize,
    /// Products 1..=N take the reservation load (visibility and reserve phases).
    #[arg(long, default_value_t = 1000)]
    reserve_products: u64,
    /// Connections of the reservation load.
    #[arg(long, default_value_t = 64)]
    reserve_connections: usize,
    /// Seconds of each reservation run of the reserve phase.
    #[arg(long, default_value_t = 5.0)]
    reserve_duration: f64,
    /// Alternating pairs (with the indexer, baseline) of the reserve phase.
    #[arg(long, default_value_t = 3)]
    reserve_pairs: usize,
    /// The binary without the indexer to compare reservations with (e.g.
    /// the previous commit's build).
    #[arg(long)]
    baseline_bin: Option<PathBuf>,
    /// An argument of the baseline's `serve` (repeatable), e.g. one that
    /// turns the indexer off; with no --baseline-bin the baseline is this
    /// binary with these arguments.
    #[arg(long, allow_hyphen_values = true)]
    baseline_arg: Vec<String>,
    /// Print one JSON object of results on stdout instead of the report.
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

/// Options of `mercato bench soak`.
#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// How long the load runs, e.g. 2h, 30m, 40s.
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How often the server is sampled, e.g. 60s.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    sample_every: Duration,
    /// Requests per second (all kinds together). Default: half the peak,
    /// measured first.
    #[arg(long)]
    rate: Option<f64>,
    /// How long the burst that measures the peak lasts (after 1 s of
    /// warm-up).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    peak_duration: Duration,
    /// Where results go (default: benches/results/<UTC timestamp>-soak/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The server's data directory, kept at the end; it must be empty or
    /// absent (default: a temp dir, removed at the end).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The `mercato` binary to start (default: this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Connections the load is spread over, each its own keep-alive.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Products 1..=N, with a few units each.
    #[arg(long, default_value_t = 200)]
    products: u64,
    /// The server's event and finished-reservation retention (at least 60s).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    retention: Duration,
    /// The server's --idempotency-ttl (at least 60s).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    idempotency_ttl: Duration,
    /// Every reservation's ttl_seconds (whole seconds, 2s to 1h).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    reservation_ttl: Duration,
    /// The durability of the servers started here.
    #[arg(long, value_enum, default_value = "immediate")]
    durability: DurabilityArg,
    /// How long a request may take before it counts as a transport error.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

/// Options of `mercato bench restart`.
#[derive(clap::Args, Debug)]
pub struct RestartArgs {
    /// Store sizes in GiB, one store each (at most 16 GiB each).
    #[arg(long, value_delimiter = ',', default_value = "0.1,1,4")]
    sizes_gib: Vec<f64>,
    /// How the writer is stopped before each timed open.
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "kill-idle,kill-busy,clean"
    )]
    cases: Vec<Case>,
    /// Repetitions of each measurement (the table shows the median).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Warm page cache only (no drop_caches).
    #[arg(long)]
    no_cold: bool,
    /// What fills the stores: orders (reservations, events) or catalog (big products).
    #[arg(long, value_enum, default_value = "orders")]
    fill: Fill,
    /// Where the stores go (default: a new temp dir in /tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Leave the stores on disk at the end.
    #[arg(long)]
    keep: bool,
    /// Use a store that a past run with --keep filled in --dir, instead of
    /// filling it again.
    #[arg(long, requires = "dir")]
    reuse: bool,
    /// A label for the report (e.g. the commit measured).
    #[arg(long)]
    label: Option<String>,
    /// Print one JSON object of results on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

/// Options of the hidden `mercato bench restart-child`.
#[derive(clap::Args, Debug)]
pub struct RestartChildArgs {
    /// What the child does.
    #[arg(long, value_enum)]
    role: ChildRole,
    /// The store's directory.
    #[arg(long)]
    data_dir: PathBuf,
    /// An order whose reservation must be there after the open.
    #[arg(long)]
    expect_order: Option<uuid::Uuid>,
}

/// Runs the command; blocking (builds its own tokio runtime, except for
/// `restart`, whose engine calls block).
pub fn run(args: BenchArgs) -> ExitCode {
    match args.command {
        BenchCommand::Restart(args) => {
            exit_code(restart_options(args).and_then(|options| restart::run(&options)))
        }
        BenchCommand::RestartChild(args) => {
            exit_code(restart::child(args.role, &args.data_dir, args.expect_order).map(|()| true))
        }
        command => run_async(BenchArgs { command }),
    }
}

fn run_async(args: BenchArgs) -> ExitCode {
    // One runtime thread: the load generator shares the machine with the
    // server it measures and should take as little of it as it can.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = dispatch(args) => outcome,
            // Dropping the run stops any server it started.
            _ = tokio::signal::ctrl_c() => Err(Error::from("interrupted")),
        }
    });
    exit_code(outcome)
}

fn exit_code(outcome: Result<bool, Error>) -> ExitCode {
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// Answers whether every check passed.
async fn dispatch(args: BenchArgs) -> Result<bool, Error> {
    match args.command {
        BenchCommand::Reserve(args) => reserve_command(args).await,
        BenchCommand::Checkout(args) => checkout_command(args).await,
        BenchCommand::Compare(args) => compare::run(compare_options(args)?).await,
        BenchCommand::Search(args) => search_command(args).await,
        BenchCommand::Soak(args) => soak_command(args).await,
        BenchCommand::Restart(_) | BenchCommand::RestartChild(_) => {
            Err("restart runs without the runtime".into())
        }
    }
}

async fn checkout_command(args: CheckoutArgs) -> Result<bool, Error> {
    let seconds = |value: f64, name: &str| {
        if value.is_finite() && value > 0.0 && value <= 3_600.0 {
            Ok(Duration::from_secs_f64(value))
        } else {
            Err(Error::from(format!(
                "--{name} must be between 0 and 3600 seconds"
            )))
        }
    };
    let plan = checkout::CheckoutPlan {
        connections: args.connections,
        duration: seconds(args.duration, "duration")?,
        products: args.products,
        lines_max: args.lines,
        flash: args.buyers.zip(args.units),
        timeout: seconds(args.timeout, "timeout")?,
        progress: !args.json,
    };
    plan.validate()?;
    let spawned;
    let target = match (&args.url, &args.admin_token) {
        (Some(url), Some(token)) => Target::resolve(url, token).await?,
        (Some(_), None) => return Err("--url needs --admin-token (or MERCATO_ADMIN_TOKEN)".into()),
        (None, _) => {
            let binary = match &args.server_bin {
                Some(binary) => binary.clone(),
                None => std::env::current_exe()?,
            };
            spawned = SpawnedServer::start(&binary, args.durability.name()).await?;
            Target::resolve(&spawned.url, &spawned.admin_token).await?
        }
    };
    let report = checkout::run(&target, &plan).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", checkout::describe(&report));
    }
    Ok(!report.oversell && report.counts_exact != Some(false))
}

async fn reserve_command(args: ReserveArgs) -> Result<bool, Error> {
    let plan = LoadPlan {
        products: args.products,
        stock: args.stock,
        lines: args.lines,
        quantity: args.quantity,
        skew: args.skew,
        hot_products: args.hot_products,
        hot_fraction: args.hot_fraction,
        connections: args.connections,
        bound: match (args.requests, args.duration) {
            (Some(requests), _) => Bound::Requests(requests),
            (None, duration) => Bound::Duration(seconds("--duration", duration.unwrap_or(10.0))?),
        },
        rate: args.rate,
        warmup: seconds("--warmup", args.warmup)?,
        timeout: seconds("--timeout", args.timeout)?,
        progress: !args.quiet,
    };
    let source = match args.url {
        Some(url) => ServerSource::Url {
            url,
            admin_token: args
                .admin_token
                .ok_or("--url needs the admin token: --admin-token or MERCATO_ADMIN_TOKEN")?,
            durability: args
                .durability
                .map(|durability| durability.name().to_owned()),
        },
        None => ServerSource::Spawn {
            binary: server_binary(args.server_bin)?,
            durability: args
                .durability
                .unwrap_or(DurabilityArg::Immediate)
                .name()
                .to_owned(),
        },
    };
    let report = reserve::run(&source, &plan).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        reserve::print_report(&report, &plan);
    }
    Ok(!report.oversell && report.server_agrees)
}

async fn soak_command(args: SoakArgs) -> Result<bool, Error> {
    let options = SoakOptions {
        binary: server_binary(args.server_bin)?,
        duration: args.duration,
        sample_every: args.sample_every,
        rate: args.rate,
        peak_duration: args.peak_duration,
        out: args.out.unwrap_or_else(|| {
            PathBuf::from("benches/results")
                .join(format!("{}-soak", crate::compare::utc_timestamp()))
        }),
        data_dir: args.data_dir,
        connections: args.connections,
        products: args.products,
        retention: args.retention,
        idempotency_ttl: args.idempotency_ttl,
        reservation_ttl: args.reservation_ttl,
        durability: args.durability.name().to_owned(),
        timeout: args.timeout,
        progress: !args.quiet,
    };
    Ok(soak::run(&options).await?.passed)
}

async fn search_command(args: SearchArgs) -> Result<bool, Error> {
    let json = args.json;
    let options = search_options(args)?;
    let report = search::run(&options).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", search::describe(&report));
    }
    let errors = report.types.iter().any(|kind| {
        kind.answer_errors > 0
            || kind
                .open
                .iter()
                .chain(&kind.closed)
                .any(|run| run.errors > 0)
    });
    let visibility_ok = report.visibility.as_ref().is_none_or(|visibility| {
        visibility.timeouts == 0
            && visibility.load_outlasted_probes
            && visibility
                .reservations
                .as_ref()
                .is_none_or(|run| !run.oversell && run.server_agrees)
    });
    let reserve_ok = report
        .reserve
        .as_ref()
        .is_none_or(|reserve| reserve.checks_passed);
    Ok(!errors && visibility_ok && reserve_ok)
}

fn search_options(args: SearchArgs) -> Result<SearchOptions, Error> {
    let bounded = |option: &str, value: f64, max: f64| {
        if value.is_finite() && value > 0.0 && value <= max {
            Ok(Duration::from_secs_f64(value))
        } else {
            Err(Error::from(format!(
                "{option} must be above 0 and at most {max} seconds"
            )))
        }
    };
    if args.types.is_empty() {
        return Err("--types needs at least one type".into());
    }
    for kind in &args.types {
        if !search::TYPES.contains(&kind.as_str()) {
            return Err(format!(
                "--types: unknown type {kind} (known: {})",
                search::TYPES.join(", ")
            )
            .into());
        }
    }
    if args
        .rates
        .iter()
        .any(|&rate| !(rate.is_finite() && rate > 0.0 && rate <= 100_000.0))
    {
        return Err("--rates must be between 0 and 100000 queries/s".into());
    }
    if args.clients.is_empty() || args.clients.iter().any(|&c| !(1..=1024).contains(&c)) {
        return Err("--clients needs counts between 1 and 1024".into());
    }
    if !(1..=1024).contains(&args.open_connections) {
        return Err("--open-connections must be between 1 and 1024".into());
    }
    if !(1..=4096).contains(&args.reserve_connections) {
        return Err("--reserve-connections must be between 1 and 4096".into());
    }
    if args.changes > 1000 {
        return Err("--changes must be at most 1000".into());
    }
    if !(1..=100_000).contains(&args.reserve_products) {
        return Err("--reserve-products must be between 1 and 100000".into());
    }
    if !(1..=20).contains(&args.reserve_pairs) {
        return Err("--reserve-pairs must be between 1 and 20".into());
    }
    let server = match (args.url, args.admin_token) {
        (Some(url), Some(admin_token)) => SearchServer::Url { url, admin_token },
        (Some(_), None) => {
            return Err("--url needs the admin token: --admin-token or MERCATO_ADMIN_TOKEN".into());
        }
        (None, _) => SearchServer::Spawn {
            binary: server_binary(args.server_bin)?,
            load: args.load,
        },
    };
    Ok(SearchOptions {
        catalog: args.catalog,
        queries: args.queries,
        server,
        durability: args.durability.name().to_owned(),
        phases: args.phases,
        types: args.types,
        rates: args.rates,
        open_connections: args.open_connections,
        clients: args.clients,
        duration: bounded("--duration", args.duration, 600.0)?,
        warmup: if args.warmup == 0.0 {
            Duration::ZERO
        } else {
            bounded("--warmup", args.warmup, 60.0)?
        },
        timeout: bounded("--timeout", args.timeout, 120.0)?,
        changes: args.changes,
        reserve_products: args.reserve_products,
        reserve_connections: args.reserve_connections,
        reserve_duration: bounded("--reserve-duration", args.reserve_duration, 600.0)?,
        reserve_pairs: args.reserve_pairs,
        baseline_bin: args.baseline_bin,
        baseline_args: args.baseline_arg,
        progress: !args.quiet,
    })
}

fn compare_options(args: CompareArgs) -> Result<CompareOptions, Error> {
    if args.duration == 0 {
        return Err("--duration must be at least 1".into());
    }
    if args.connections.is_empty() || args.connections.contains(&0) {
        return Err("--connections needs counts of at least 1".into());
    }
    if args.pg_clients.is_empty()
        || args
            .pg_clients
            .iter()
            .any(|&clients| !(1..=290).contains(&clients))
    {
        return Err("--pg-clients needs counts between 1 and 290".into());
    }
    Ok(CompareOptions {
        duration: Duration::from_secs(args.duration),
        warmup: seconds("--warmup", args.warmup)?,
        connections: args.connections,
        pg_clients: args.pg_clients,
        workloads: args.workloads,
        lines: args.lines,
        products: args.products,
        stock: args.stock,
        out: args.out,
        postgres_script: args.postgres_script,
        server_bin: server_binary(args.server_bin)?,
        skip_postgres: args.skip_postgres,
        skip_periodic: args.skip_periodic,
    })
}

fn restart_options(args: RestartArgs) -> Result<RestartOptions, Error> {
    if args.sizes_gib.is_empty()
        || args
            .sizes_gib
            .iter()
            .any(|&size| !(size > 0.0 && size <= restart::SIZE_GIB_MAX))
    {
        return Err(format!(
            "--sizes-gib needs sizes above 0 and at most {} GiB",
            restart::SIZE_GIB_MAX
        )
        .into());
    }
    if args.cases.is_empty() {
        return Err("--cases needs at least one case".into());
    }
    if !(1..=restart::RUNS_MAX).contains(&args.runs) {
        return Err(format!("--runs must be between 1 and {}", restart::RUNS_MAX).into());
    }
    Ok(RestartOptions {
        sizes_gib: args.sizes_gib,
        cases: args.cases,
        runs: args.runs,
        cold: !args.no_cold,
        fill: args.fill,
        dir: args.dir,
        keep: args.keep,
        reuse: args.reuse,
        label: args.label,
        json: args.json,
        binary: server_binary(None)?,
    })
}

fn server_binary(given: Option<PathBuf>) -> Result<PathBuf, Error> {
    match given {
        Some(path) => Ok(path),
        None => {
            Ok(std::env::current_exe()
                .map_err(|error| format!("cannot find this binary: {error}"))?)
        }
    }
}

fn seconds(option: &str, value: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{option} must be a number of seconds >= 0").into())
}
