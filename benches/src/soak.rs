//! `mercato bench soak`: hours of steady mixed load on one server, watching
//! for what grows.
//!
//! A server is started with short retentions (events, finished
//! reservations, idempotency answers) so that its data directory can level
//! off within the run. The load is open loop at a fixed rate: reservations
//! with a short time-to-live (most left to expire, the rest committed or
//! released), stock restocked when a product runs out, writes re-sent with
//! the same `Idempotency-Key` (the replay must match the first answer), and
//! reads (a product, its stock, the product list, a search). Every
//! `sample_every` the server process's resident memory, open descriptors,
//! the data directory's size and that interval's latencies are written to
//! `samples.csv` as they come (a killed run keeps what it measured); at the
//! end `summary.md` and `soak.svg` (four panels over time, drawn here).
//!
//! The verdict: no 5xx or transport error, every replay matching, no
//! reservation left and `reserved <= on_hand` everywhere once the load
//! stops, `mercato check` sound on the stopped store, and, when the run is
//! long enough for retention to have cycled, memory, descriptors and disk
//! flat (the rules are in [`judge`]).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use crate::Error;
use crate::client::{Answer, Connection, Target};
use crate::load::{self, LATENCY_MAX_US};
use crate::server::SpawnedServer;

/// The fewest samples a run may take: the verdict compares quarters.
pub(crate) const SAMPLES_MIN: u64 = 8;
/// The most samples a run may take.
pub(crate) const SAMPLES_MAX: u64 = 100_000;
/// The longest run.
pub(crate) const DURATION_MAX: Duration = Duration::from_secs(7 * 86_400);
/// The highest rate, in requests per second.
pub(crate) const RATE_MAX: f64 = 100_000.0;
/// The most products.
pub(crate) const PRODUCTS_MAX: u64 = 10_000;
/// The most connections.
pub(crate) const CONNECTIONS_MAX: usize = 1_024;
/// The shortest retention the server takes (its `--event-retention`).
pub(crate) const RETENTION_MIN: Duration = Duration::from_secs(60);
/// The reservation time-to-live bounds (the contract's `ttl_seconds`).
pub(crate) const RESERVATION_TTL_MIN: Duration = Duration::from_secs(2);
pub(crate) const RESERVATION_TTL_MAX: Duration = Duration::from_secs(3_600);

/// Units a product starts with, and a restock adds: small, so that
/// products run out, get `409 insufficient_stock` and are restocked.
const STOCK_UNITS: u64 = 20;
/// The most units of one reservation line.
const LINE_QUANTITY_MAX: u64 = 3;
/// Reservations a connection holds to commit or release later; older ones
/// are left to expire.
const PENDING_MAX: usize = 256;
/// Descriptors the server may hold at the end beyond the start: the search
/// index opens a few files per segment and merges come and go, and the log
/// may briefly hold a second segment; a leak grows with the requests
/// (hundreds of thousands here), far past this.
const DESCRIPTOR_SLACK: u64 = 8;
/// The most the resident memory may grow from the first quarter's peak to
/// the last quarter's.
const MEMORY_GROWTH_MAX: f64 = 0.10;
/// The most the data directory may grow from the second quarter's peak to
/// the last quarter's.
const DISK_GROWTH_MAX: f64 = 0.10;
/// How often the writer looks for retention work when it found none
/// (`engine/src/retention.rs`, `COMPACTION_IDLE_INTERVAL`).
const COMPACTION_IDLE_INTERVAL: Duration = Duration::from_secs(60);
/// How long the drain after the load may wait beyond the reservations'
/// time-to-live for every reservation to be gone.
const DRAIN_GRACE: Duration = Duration::from_secs(30);
/// How long the load runs past the last sample.
const LOAD_OVERRUN: Duration = Duration::from_secs(1);
/// Connections used for set-up and the final check.
const SETUP_CONNECTIONS: usize = 8;
/// Words in product names, and the searches.
const WORDS: [&str; 16] = [
    "amber", "basalt", "cedar", "delta", "ember", "fjord", "granite", "harbor", "indigo",
    "juniper", "kelp", "lagoon", "meadow", "nickel", "orchid", "pebble",
];

/// Everything one run needs, already validated.
#[derive(Clone, Debug)]
pub(crate) struct SoakOptions {
    /// The `mercato` binary to start.
    pub(crate) binary: PathBuf,
    pub(crate) duration: Duration,
    pub(crate) sample_every: Duration,
    /// Requests per second; `None` measures the peak first and takes half.
    pub(crate) rate: Option<f64>,
    /// How long the closed-loop burst that measures the peak lasts.
    pub(crate) peak_duration: Duration,
    pub(crate) out: PathBuf,
    /// The store's directory; a temp dir (removed at the end) when `None`.
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) connections: usize,
    pub(crate) products: u64,
    /// `--event-retention` and `--reservation-retention` of the server.
    pub(crate) retention: Duration,
    /// `--idempotency-ttl` of the server.
    pub(crate) idempotency_ttl: Duration,
    /// The `ttl_seconds` of every reservation.
    pub(crate) reservation_ttl: Duration,
    pub(crate) durability: String,
    /// How long a request may take before it counts as a transport error.
    pub(crate) timeout: Duration,
    pub(crate) progress: bool,
}

impl SoakOptions {
    /// Checks the options; the message names the offending one.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.duration.is_zero() || self.duration > DURATION_MAX {
            return Err("--duration must be positive and at most 7 days".into());
        }
        if self.sample_every < Duration::from_secs(1) {
            return Err("--sample-every must be at least 1s".into());
        }
        let samples = self.samples();
        if samples < SAMPLES_MIN {
            return Err(format!(
                "--duration must hold at least {SAMPLES_MIN} samples of --sample-every \
                 (it holds {samples})"
            )
            .into());
        }
        if samples > SAMPLES_MAX {
            return Err(format!(
                "--duration holds {samples} samples of --sample-every, more than {SAMPLES_MAX}"
            )
            .into());
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0 && rate <= RATE_MAX)
        {
            return Err(format!("--rate must be above 0 and at most {RATE_MAX}").into());
        }
        if self.peak_duration < Duration::from_secs(1)
            || self.peak_duration > Duration::from_secs(600)
        {
            return Err("--peak-duration must be between 1s and 10m".into());
        }
        if !(1..=CONNECTIONS_MAX).contains(&self.connections) {
            return Err(format!("--connections must be between 1 and {CONNECTIONS_MAX}").into());
        }
        if !(2..=PRODUCTS_MAX).contains(&self.products) {
            return Err(format!("--products must be between 2 and {PRODUCTS_MAX}").into());
        }
        if self.retention < RETENTION_MIN {
            return Err("--retention must be at least 60s (the server's shortest)".into());
        }
        if self.idempotency_ttl < RETENTION_MIN {
            return Err("--idempotency-ttl must be at least 60s (the server's shortest)".into());
        }
        if self.reservation_ttl < RESERVATION_TTL_MIN
            || self.reservation_ttl > RESERVATION_TTL_MAX
            || self.reservation_ttl.subsec_nanos() != 0
        {
            return Err("--reservation-ttl must be whole seconds between 2s and 1h".into());
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(120) {
            return Err("--timeout must be above 0 and at most 120s".into());
        }
        Ok(())
    }

    /// Samples taken: one every `sample_every`, the last at the end.
    fn samples(&self) -> u64 {
        (self.duration.as_nanos() / self.sample_every.as_nanos().max(1)) as u64
    }

    /// How long after the start retention has surely begun removing what
    /// the load writes: the longest retention, a reservation's life, and
    /// two of the writer's idle compaction intervals.
    fn settle(&self) -> Duration {
        self.retention.max(self.idempotency_ttl)
            + self.reservation_ttl
            + COMPACTION_IDLE_INTERVAL * 2
    }
}

/// One line of `samples.csv`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Sample {
    pub(crate) elapsed_s: f64,
    /// `VmRSS` of `/proc/PID/status`.
    pub(crate) rss_bytes: u64,
    /// Entries of `/proc/PID/fd`.
    pub(crate) open_fds: u64,
    /// The data directory's allocated blocks (`st_blocks` x 512), every
    /// file under it: what the disk holds.
    pub(crate) data_dir_bytes: u64,
    /// The sum of the same files' lengths (preallocated log segments count
    /// whole, sparse files count their holes).
    pub(crate) data_dir_apparent_bytes: u64,
    /// Requests answered (or failed) in this interval.
    pub(crate) requests: u64,
    /// 5xx answers and transport errors in this interval.
    pub(crate) errors: u64,
    /// Reservations answered 201 in this interval.
    pub(crate) reservations: u64,
    /// Replays of a keyed write in this interval.
    pub(crate) replays: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

/// The header of `samples.csv`.
pub(crate) const CSV_HEADER: &str = "elapsed_s,rss_bytes,open_fds,data_dir_bytes,\
    data_dir_apparent_bytes,requests,errors,reservations,replays,p50_ms,p99_ms,max_ms";

impl Sample {
    fn csv_line(&self) -> String {
        format!(
            "{:.1},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.3}\n",
            self.elapsed_s,
            self.rss_bytes,
            self.open_fds,
            self.data_dir_bytes,
            self.data_dir_apparent_bytes,
            self.requests,
            self.errors,
            self.reservations,
            self.replays,
            self.p50_ms,
            self.p99_ms,
            self.max_ms
        )
    }
}

/// Running totals, shared by the load tasks and the sampler.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    /// 5xx answers and transport errors (timeouts included).
    errors: AtomicU64,
    /// Answers no operation expects (a 404 on a product read, a 400).
    unexpected: AtomicU64,
    reserved: AtomicU64,
    /// Reservations answered `409 insufficient_stock`.
    rejected: AtomicU64,
    committed: AtomicU64,
    released: AtomicU64,
    /// Commits answered 409: the reservation expired first.
    finish_conflicts: AtomicU64,
    restocks: AtomicU64,
    replays: AtomicU64,
    /// Replays whose status, body or `Idempotent-Replayed` header differed.
    replay_mismatches: AtomicU64,
    reads: AtomicU64,
}

impl Counters {
    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

struct Shared {
    target: Target,
    options: SoakOptions,
    counters: Counters,
    /// Latencies of the current sampling interval.
    window: Mutex<Histogram<u64>>,
    /// Latencies of the whole run.
    total: Mutex<Histogram<u64>>,
    /// The first few failures, for the report.
    failures: Mutex<Vec<String>>,
}

/// How many failures are kept to show.
const FAILURES_SHOWN_MAX: usize = 10;

impl Shared {
    fn record_latency(&self, since: Instant) {
        let micros = u64::try_from(since.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, LATENCY_MAX_US);
        for histogram in [&self.window, &self.total] {
            let mut histogram = histogram
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let _ = histogram.record(micros);
        }
    }

    fn fail(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if failures.len() < FAILURES_SHOWN_MAX {
            failures.push(what);
        }
    }
}

/// A write sent with an `Idempotency-Key`, kept to be sent again.
struct KeyedWrite {
    key: HeaderValue,
    method: Method,
    path: String,
    body: Bytes,
    status: StatusCode,
    answer: Bytes,
}

/// A reservation to commit or release later.
struct Pending {
    order_id: uuid::Uuid,
    reserved_at: Instant,
}

/// What a scheduled slot does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Reserve,
    /// Commit or release a pending reservation (a read when none is).
    Finish,
    /// Send the last keyed write again (a read when there is none).
    Retry,
    ReadProduct,
    ReadStock,
    ListProducts,
    Search,
}

/// Picks an operation: 35% reservations, 15% commits and releases, 10%
/// retries, 40% reads. With 40% of the 201-answered reservations kept to
/// finish, about 60% of them are left to expire.
fn choose_operation(rng: &mut SmallRng) -> Operation {
    match rng.random_range(0..100) {
        0..35 => Operation::Reserve,
        35..50 => Operation::Finish,
        50..60 => Operation::Retry,
        60..72 => Operation::ReadProduct,
        72..84 => Operation::ReadStock,
        84..92 => Operation::ListProducts,
        _ => Operation::Search,
    }
}

/// The share of 201-answered reservations kept to commit or release.
const KEPT_TO_FINISH: f64 = 0.4;

/// One connection's open loop.
struct Worker {
    shared: Arc<Shared>,
    connection: Option<Connection>,
    rng: SmallRng,
    pending: VecDeque<Pending>,
    last_keyed: Option<KeyedWrite>,
}

impl Worker {
    /// Sends one request, counts it and records its latency from `since`.
    /// `None` on a transport error (the connection is dropped) or a 5xx
    /// (counted as errors).
    async fn exchange(
        &mut self,
        since: Instant,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        key: Option<&HeaderValue>,
    ) -> Option<Answer> {
        let shared = self.shared.clone();
        if self.connection.is_none() {
            match Connection::open(&shared.target).await {
                Ok(connection) => self.connection = Some(connection),
                Err(error) => {
                    shared.counters.requests.fetch_add(1, Ordering::Relaxed);
                    shared.fail(&shared.counters.errors, format!("{method} {path}: {error}"));
                    // Do not spin on a dead server.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    return None;
                }
            }
        }
        let connection = self.connection.as_mut()?;
        let sent = tokio::time::timeout(
            shared.options.timeout,
            connection.send_with_key(method.clone(), path, body, key),
        )
        .await;
        shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        shared.record_latency(since);
        let answer = match sent {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                self.connection = None;
                shared.fail(&shared.counters.errors, format!("{method} {path}: {error}"));
                return None;
            }
            Err(_) => {
                self.connection = None;
                shared.fail(
                    &shared.counters.errors,
                    format!(
                        "{method} {path}: no answer within {} ms",
                        shared.options.timeout.as_millis()
                    ),
                );
                return None;
            }
        };
        if answer.status.is_server_error() {
            shared.fail(
                &shared.counters.errors,
                describe_answer(&method, path, &answer),
            );
            return None;
        }
        Some(answer)
    }

    fn unexpected(&self, method: &Method, path: &str, answer: &Answer) {
        self.shared.fail(
            &self.shared.counters.unexpected,
            describe_answer(method, path, answer),
        );
    }

    /// A write with a fresh `Idempotency-Key`, kept for a retry.
    async fn keyed_write(
        &mut self,
        since: Instant,
        method: Method,
        path: String,
        body: String,
    ) -> Option<Answer> {
        let key = HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .expect("a UUID is a header value");
        let body = Bytes::from(body);
        let answer = self
            .exchange(since, method.clone(), &path, Some(body.clone()), Some(&key))
            .await?;
        self.last_keyed = Some(KeyedWrite {
            key,
            method,
            path,
            body,
            status: answer.status,
            answer: answer.body.clone(),
        });
        Some(answer)
    }

    async fn run_operation(&mut self, operation: Operation, since: Instant) {
        match operation {
            Operation::Reserve => self.reserve(since).await,
            Operation::Finish => {
                let ttl = self.shared.options.reservation_ttl;
                // Older ones may have expired already: leave them be.
                while self
                    .pending
                    .front()
                    .is_some_and(|pending| pending.reserved_at.elapsed() > ttl / 2)
                {
                    self.pending.pop_front();
                }
                match self.pending.pop_front() {
                    Some(pending) => self.finish(since, pending).await,
                    None => self.read(since, Operation::ReadStock).await,
                }
            }
            Operation::Retry => {
                if self.last_keyed.is_some() {
                    self.retry(since).await;
                } else {
                    self.read(since, Operation::ReadProduct).await;
                }
            }
            read => self.read(since, read).await,
        }
    }

    async fn reserve(&mut self, since: Instant) {
        let products = self.shared.options.products;
        let first = self.rng.random_range(1..=products);
        let mut lines = vec![(first, self.rng.random_range(1..=LINE_QUANTITY_MAX))];
        if self.rng.random_bool(0.3) {
            let second = first % products + 1;
            lines.push((second, self.rng.random_range(1..=LINE_QUANTITY_MAX)));
        }
        let order_id = uuid::Uuid::now_v7();
        let mut body = format!(r#"{{"order_id":"{order_id}","items":["#);
        for (position, (product, quantity)) in lines.iter().enumerate() {
            if position > 0 {
                body.push(',');
            }
            let _ = write!(body, r#"{{"product_id":{product},"quantity":{quantity}}}"#);
        }
        let _ = write!(
            body,
            r#"],"ttl_seconds":{}}}"#,
            self.shared.options.reservation_ttl.as_secs()
        );
        let path = "/api/v1/inventory/reserve";
        let Some(answer) = self
            .keyed_write(since, Method::POST, path.to_owned(), body)
            .await
        else {
            return;
        };
        let counters = &self.shared.counters;
        match answer.status {
            StatusCode::CREATED => {
                counters.reserved.fetch_add(1, Ordering::Relaxed);
                if self.rng.random_bool(KEPT_TO_FINISH) {
                    if self.pending.len() == PENDING_MAX {
                        self.pending.pop_front();
                    }
                    self.pending.push_back(Pending {
                        order_id,
                        reserved_at: Instant::now(),
                    });
                }
            }
            StatusCode::CONFLICT => match problem_field(&answer.body, "code").as_deref() {
                Some("insufficient_stock") => {
                    counters.rejected.fetch_add(1, Ordering::Relaxed);
                    let product = serde_json::from_slice::<serde_json::Value>(&answer.body)
                        .ok()
                        .and_then(|problem| problem["product_id"].as_u64())
                        .unwrap_or(first);
                    self.restock(product).await;
                }
                _ => self.unexpected(&Method::POST, path, &answer),
            },
            _ => self.unexpected(&Method::POST, path, &answer),
        }
    }

    /// Adds units to a product that ran out.
    async fn restock(&mut self, product: u64) {
        let path = format!("/api/v1/inventory/{product}/adjust");
        let body = format!(r#"{{"delta":{STOCK_UNITS}}}"#);
        let Some(answer) = self
            .keyed_write(Instant::now(), Method::POST, path.clone(), body)
            .await
        else {
            return;
        };
        if answer.status == StatusCode::OK {
            self.shared
                .counters
                .restocks
                .fetch_add(1, Ordering::Relaxed);
        } else {
            self.unexpected(&Method::POST, &path, &answer);
        }
    }

    async fn finish(&mut self, since: Instant, pending: Pending) {
        let commit = self.rng.random_bool(0.5);
        let path = if commit {
            "/api/v1/inventory/commit"
        } else {
            "/api/v1/inventory/release"
        };
        let body = format!(r#"{{"order_id":"{}"}}"#, pending.order_id);
        let Some(answer) = self
            .keyed_write(since, Method::POST, path.to_owned(), body)
            .await
        else {
            return;
        };
        let counters = &self.shared.counters;
        match (commit, answer.status) {
            (true, StatusCode::OK) => {
                counters.committed.fetch_add(1, Ordering::Relaxed);
            }
            (false, StatusCode::OK) => {
                counters.released.fetch_add(1, Ordering::Relaxed);
            }
            // Expired between the choice and the commit: a normal answer.
            (true, StatusCode::CONFLICT)
                if problem_field(&answer.body, "code").as_deref() == Some("invalid_state") =>
            {
                counters.finish_conflicts.fetch_add(1, Ordering::Relaxed);
            }
            _ => self.unexpected(&Method::POST, path, &answer),
        }
    }

    /// Sends the last keyed write again: the first answer must come back,
    /// marked as a replay.
    async fn retry(&mut self, since: Instant) {
        let Some(keyed) = self.last_keyed.take() else {
            return;
        };
        let Some(answer) = self
            .exchange(
                since,
                keyed.method.clone(),
                &keyed.path,
                Some(keyed.body.clone()),
                Some(&keyed.key),
            )
            .await
        else {
            return;
        };
        let counters = &self.shared.counters;
        counters.replays.fetch_add(1, Ordering::Relaxed);
        let replayed = answer
            .headers
            .get("idempotent-replayed")
            .is_some_and(|value| value == "true");
        if !replayed || answer.status != keyed.status || answer.body != keyed.answer {
            self.shared.fail(
                &counters.replay_mismatches,
                format!(
                    "replay of {} {}: first {} {:?}, then {} (replayed header {replayed}) {:?}",
                    keyed.method,
                    keyed.path,
                    keyed.status,
                    String::from_utf8_lossy(&keyed.answer[..keyed.answer.len().min(200)]),
                    answer.status,
                    String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]),
                ),
            );
        }
    }

    async fn read(&mut self, since: Instant, operation: Operation) {
        let product = self.rng.random_range(1..=self.shared.options.products);
        let path = match operation {
            Operation::ReadStock => format!("/api/v1/inventory/{product}"),
            Operation::ListProducts => "/api/v1/products?limit=20".to_owned(),
            Operation::Search => format!(
                "/api/v1/search?q={}",
                WORDS[self.rng.random_range(0..WORDS.len())]
            ),
            _ => format!("/api/v1/products/{product}"),
        };
        let Some(answer) = self.exchange(since, Method::GET, &path, None, None).await else {
            return;
        };
        if answer.status == StatusCode::OK {
            self.shared.counters.reads.fetch_add(1, Ordering::Relaxed);
        } else {
            self.unexpected(&Method::GET, &path, &answer);
        }
    }
}

fn describe_answer(method: &Method, path: &str, answer: &Answer) -> String {
    let body = String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)]);
    format!("{method} {path} answered {}: {body}", answer.status)
}

/// A string field of a problem document.
fn problem_field(body: &[u8], field: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value[field].as_str().map(str::to_owned)
}

/// When a load task sends.
#[derive(Clone, Copy, Debug)]
enum Pace {
    /// Open loop: one request each `interval`, latency measured from the
    /// scheduled time.
    Open { interval: Duration },
    /// Closed loop: the next request as soon as the last is answered.
    Closed,
}

/// One connection's loop until `end` or the shared budget is spent; open
/// loop at its share of the rate, phase-shifted so the connections
/// interleave, or closed loop.
async fn load_task(
    shared: Arc<Shared>,
    index: usize,
    start: Instant,
    end: Instant,
    pace: Pace,
    budget: Arc<AtomicI64>,
) {
    let connections = shared.options.connections;
    let mut worker = Worker {
        connection: Connection::open(&shared.target).await.ok(),
        shared,
        rng: SmallRng::seed_from_u64(0x50a4 + index as u64),
        pending: VecDeque::new(),
        last_keyed: None,
    };
    let mut scheduled = match pace {
        Pace::Open { interval } => start + interval.mul_f64(index as f64 / connections as f64),
        Pace::Closed => Instant::now(),
    };
    while scheduled < end {
        tokio::time::sleep_until(scheduled.into()).await;
        if budget.fetch_sub(1, Ordering::Relaxed) <= 0 {
            break;
        }
        let operation = choose_operation(&mut worker.rng);
        worker.run_operation(operation, scheduled).await;
        scheduled = match pace {
            Pace::Open { interval } => scheduled + interval,
            Pace::Closed => Instant::now(),
        };
    }
}

fn new_shared(target: &Target, options: &SoakOptions) -> Arc<Shared> {
    Arc::new(Shared {
        target: target.clone(),
        options: options.clone(),
        counters: Counters::default(),
        window: Mutex::new(load::new_histogram()),
        total: Mutex::new(load::new_histogram()),
        failures: Mutex::new(Vec::new()),
    })
}

/// The peak: this same mix in a closed loop over the same connections, on
/// the soak's server (after one unmeasured second); requests per second.
async fn measure_peak(target: &Target, options: &SoakOptions) -> Result<f64, Error> {
    if options.progress {
        eprintln!(
            "[soak] measuring the peak: 1s + {} of this mix in a closed loop",
            humantime::format_duration(options.peak_duration)
        );
    }
    let warmup = Duration::from_secs(1);
    let shared = new_shared(target, options);
    let start = Instant::now();
    let end = start + warmup + options.peak_duration;
    let budget = Arc::new(AtomicI64::new(i64::MAX));
    let mut tasks = JoinSet::new();
    for index in 0..options.connections {
        tasks.spawn(load_task(
            shared.clone(),
            index,
            start,
            end,
            Pace::Closed,
            budget.clone(),
        ));
    }
    tokio::time::sleep_until((start + warmup).into()).await;
    let before = Counters::get(&shared.counters.requests);
    let measured_from = Instant::now();
    while tasks.join_next().await.is_some() {}
    let requests = Counters::get(&shared.counters.requests) - before;
    let seconds = measured_from.elapsed().as_secs_f64().max(1e-3);
    let errors = Counters::get(&shared.counters.errors);
    let unexpected = Counters::get(&shared.counters.unexpected);
    if errors > 0 || unexpected > 0 {
        let failures = shared
            .failures
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .join("\n");
        return Err(format!(
            "the peak burst had {errors} errors and {unexpected} unexpected answers:\n{failures}"
        )
        .into());
    }
    let peak = requests as f64 / seconds;
    if peak < 2.0 {
        return Err(format!("the peak burst made only {peak:.1} requests/s").into());
    }
    Ok(peak)
}

/// What a finished run found.
#[derive(Debug)]
pub(crate) struct SoakReport {
    pub(crate) rate: f64,
    pub(crate) peak: Option<f64>,
    pub(crate) samples: Vec<Sample>,
    pub(crate) checks: Vec<CheckRow>,
    pub(crate) passed: bool,
}

/// Runs a soak; the server and its temp dir are gone when this returns.
pub(crate) async fn run(options: &SoakOptions) -> Result<SoakReport, Error> {
    options.validate()?;
    std::fs::create_dir_all(&options.out)
        .map_err(|error| format!("cannot create {}: {error}", options.out.display()))?;
    let mut server = start_server(options).await?;
    let target = Target::resolve(&server.url, &server.admin_token).await?;
    set_up(&target, options.products).await?;
    let pid = server.pid().ok_or("the server has no process id")?;
    let (rate, peak) = match options.rate {
        Some(rate) => (rate, None),
        None => {
            let peak = measure_peak(&target, options).await?;
            ((peak / 2.0).max(1.0), Some(peak))
        }
    };
    if options.progress {
        eprintln!(
            "[soak] {} at {rate:.0} requests/s{}, a sample every {}; results in {}",
            humantime::format_duration(options.duration),
            peak.map(|peak| format!(" (half of a peak of {peak:.0} requests/s)"))
                .unwrap_or_default(),
            humantime::format_duration(options.sample_every),
            options.out.display()
        );
    }
    let shared = new_shared(&target, options);
    let csv_path = options.out.join("samples.csv");
    let mut csv = File::create(&csv_path)
        .map_err(|error| format!("cannot create {}: {error}", csv_path.display()))?;
    writeln!(csv, "{CSV_HEADER}")?;

    let start = Instant::now();
    // The load runs a little past the last sample, so that sample sees it
    // running rather than its connections closing.
    let end = start + options.duration + LOAD_OVERRUN;
    // Every connection sends one request each `interval`; together `rate`.
    let pace = Pace::Open {
        interval: Duration::from_secs_f64(options.connections as f64 / rate),
    };
    let budget = Arc::new(AtomicI64::new(
        i64::try_from((rate * (options.duration + LOAD_OVERRUN).as_secs_f64()).ceil() as u64 + 1)
            .unwrap_or(i64::MAX),
    ));
    let mut tasks = JoinSet::new();
    for index in 0..options.connections {
        tasks.spawn(load_task(
            shared.clone(),
            index,
            start,
            end,
            pace,
            budget.clone(),
        ));
    }
    let sampling = sample_loop(&shared, pid, server.data_dir(), start, &mut csv);
    let (samples, ()) = tokio::join!(sampling, async {
        while tasks.join_next().await.is_some() {}
    });
    let samples = samples?;
    let counters = &shared.counters;
    if options.progress {
        eprintln!(
            "[soak] load done: {} requests; draining reservations",
            Counters::get(&counters.requests)
        );
    }

    // The checks of the stopped load, after the request and growth checks.
    let mut late = Vec::new();
    let drained = drain(&target, options).await;
    late.push(match &drained {
        Ok(products) => CheckRow::pass(
            "stock after the load",
            format!("{products} products: reserved 0, reserved <= on_hand, no active reservation"),
            "every reservation ended; reserved <= on_hand",
        ),
        Err(problem) => CheckRow::fail(
            "stock after the load",
            problem.clone(),
            "every reservation ended; reserved <= on_hand",
        ),
    });
    let status = server.shut_down();
    let stopped_cleanly = status.is_some_and(|status| status.success());
    late.push(if stopped_cleanly {
        CheckRow::pass("clean stop", "exit 0 after SIGTERM".into(), "exit 0")
    } else {
        CheckRow::fail(
            "clean stop",
            format!("{status:?}; its log:\n{}", server.log_tail()),
            "exit 0",
        )
    });
    late.push(run_check(&options.binary, server.data_dir(), &options.out));

    let whole = shared
        .total
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone();
    let ms = |us: u64| us as f64 / 1000.0;
    let errors = Counters::get(&counters.errors);
    let unexpected = Counters::get(&counters.unexpected);
    let mismatches = Counters::get(&counters.replay_mismatches);
    let mut checks = vec![
        CheckRow::verdict(
            errors == 0,
            "5xx and transport errors",
            format!("{errors} of {} requests", Counters::get(&counters.requests)),
            "0",
        ),
        CheckRow::verdict(
            unexpected == 0,
            "unexpected answers",
            format!("{unexpected}"),
            "0 (409 insufficient_stock and a commit's 409 after expiry are expected)",
        ),
        CheckRow::verdict(
            mismatches == 0 && Counters::get(&counters.replays) > 0,
            "idempotent replays",
            format!(
                "{} replays, {mismatches} differed",
                Counters::get(&counters.replays)
            ),
            "same status and body, Idempotent-Replayed: true",
        ),
    ];
    let judged = options.duration / 4 >= options.settle();
    checks.extend(judge(&samples, judged, options.settle()));
    checks.extend(late);
    let passed = checks.iter().all(|check| check.verdict != Verdict::Fail);

    let failures = shared
        .failures
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone();
    let report = SoakReport {
        rate,
        peak,
        samples,
        checks,
        passed,
    };
    let figures = Figures {
        requests: Counters::get(&counters.requests),
        reserved: Counters::get(&counters.reserved),
        rejected: Counters::get(&counters.rejected),
        committed: Counters::get(&counters.committed),
        released: Counters::get(&counters.released),
        finish_conflicts: Counters::get(&counters.finish_conflicts),
        restocks: Counters::get(&counters.restocks),
        replays: Counters::get(&counters.replays),
        reads: Counters::get(&counters.reads),
        p50_ms: ms(whole.value_at_quantile(0.50)),
        p99_ms: ms(whole.value_at_quantile(0.99)),
        p999_ms: ms(whole.value_at_quantile(0.999)),
        max_ms: ms(whole.max()),
        failures,
    };
    let summary = describe(options, &report, &figures);
    std::fs::write(options.out.join("summary.md"), &summary)?;
    std::fs::write(
        options.out.join("soak.svg"),
        render_svg(&report.samples, &title(options, &report)),
    )?;
    print!("{summary}");
    Ok(report)
}

/// The whole run's figures, for the summary.
struct Figures {
    requests: u64,
    reserved: u64,
    rejected: u64,
    committed: u64,
    released: u64,
    finish_conflicts: u64,
    restocks: u64,
    replays: u64,
    reads: u64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    failures: Vec<String>,
}

async fn start_server(options: &SoakOptions) -> Result<SpawnedServer, Error> {
    let seconds = |duration: Duration| format!("{}s", duration.as_secs()).into();
    let args: Vec<std::ffi::OsString> = vec![
        "--empty".into(),
        "--event-retention".into(),
        seconds(options.retention),
        "--reservation-retention".into(),
        seconds(options.retention),
        "--idempotency-ttl".into(),
        seconds(options.idempotency_ttl),
    ];
    let timeout = Duration::from_secs(60);
    match &options.data_dir {
        Some(data_dir) => {
            if data_dir.exists()
                && std::fs::read_dir(data_dir)
                    .map_err(|error| format!("cannot read {}: {error}", data_dir.display()))?
                    .next()
                    .is_some()
            {
                return Err(format!(
                    "--data-dir {} is not empty: a soak starts from an empty store",
                    data_dir.display()
                )
                .into());
            }
            SpawnedServer::start_at(
                data_dir.clone(),
                options.out.join("server.log"),
                &options.binary,
                &options.durability,
                &args,
                timeout,
            )
            .await
        }
        None => {
            let directory = tempfile::Builder::new().prefix("mercato-soak-").tempdir()?;
            SpawnedServer::start_in(
                directory,
                &options.binary,
                &options.durability,
                &args,
                timeout,
            )
            .await
        }
    }
}

/// Creates products `1..=products` with a few units each.
async fn set_up(target: &Target, products: u64) -> Result<(), Error> {
    let next = Arc::new(AtomicU64::new(1));
    let mut tasks = JoinSet::new();
    for _ in 0..SETUP_CONNECTIONS {
        let (target, next) = (target.clone(), next.clone());
        tasks.spawn(async move {
            let mut connection = Connection::open(&target).await?;
            loop {
                let id = next.fetch_add(1, Ordering::Relaxed);
                if id > products {
                    return Ok::<(), Error>(());
                }
                let word = WORDS[(id % WORDS.len() as u64) as usize];
                let other = WORDS[(id / WORDS.len() as u64 % WORDS.len() as u64) as usize];
                let body = format!(
                    r#"{{"id":{id},"name":"Soak {word} {other} {id}","price":"{}.99","category":"{other}"}}"#,
                    id % 90 + 1
                );
                let answer = connection
                    .send_within(
                        Duration::from_secs(30),
                        Method::POST,
                        "/api/v1/products",
                        Some(body.into()),
                    )
                    .await?;
                if answer.status != StatusCode::CREATED {
                    return Err(describe_answer(&Method::POST, "/api/v1/products", &answer).into());
                }
                let path = format!("/api/v1/inventory/{id}");
                let answer = connection
                    .send_within(
                        Duration::from_secs(30),
                        Method::PUT,
                        &path,
                        Some(format!(r#"{{"on_hand":{STOCK_UNITS}}}"#).into()),
                    )
                    .await?;
                if answer.status != StatusCode::OK {
                    return Err(describe_answer(&Method::PUT, &path, &answer).into());
                }
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(())
}

/// Takes a sample every `sample_every` until the end, writing each to the
/// CSV as it comes.
async fn sample_loop(
    shared: &Shared,
    pid: u32,
    data_dir: &Path,
    start: Instant,
    csv: &mut File,
) -> Result<Vec<Sample>, Error> {
    let options = &shared.options;
    let count = options.samples();
    let mut samples = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut previous = (0, 0, 0, 0);
    for index in 1..=count {
        let at = start + options.sample_every * u32::try_from(index).unwrap_or(u32::MAX);
        tokio::time::sleep_until(at.into()).await;
        let counters = &shared.counters;
        let now = (
            Counters::get(&counters.requests),
            Counters::get(&counters.errors),
            Counters::get(&counters.reserved),
            Counters::get(&counters.replays),
        );
        let window = {
            let mut window = shared
                .window
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let taken = window.clone();
            window.reset();
            taken
        };
        let (data_dir_bytes, data_dir_apparent_bytes) = directory_size(data_dir);
        let ms = |us: u64| us as f64 / 1000.0;
        let sample = Sample {
            elapsed_s: start.elapsed().as_secs_f64(),
            rss_bytes: resident_bytes(pid)
                .ok_or("cannot read the server's VmRSS: has it exited?")?,
            open_fds: open_descriptors(pid).ok_or("cannot list the server's descriptors")?,
            data_dir_bytes,
            data_dir_apparent_bytes,
            requests: now.0 - previous.0,
            errors: now.1 - previous.1,
            reservations: now.2 - previous.2,
            replays: now.3 - previous.3,
            p50_ms: ms(window.value_at_quantile(0.50)),
            p99_ms: ms(window.value_at_quantile(0.99)),
            max_ms: ms(window.max()),
        };
        previous = now;
        csv.write_all(sample.csv_line().as_bytes())?;
        csv.flush()?;
        if options.progress {
            eprintln!(
                "[soak] {:>7.0}s  rss {:>7.1} MiB  fds {:>4}  data {:>8.1} MiB  {:>6} req  {:>3} err  p99 {:>8.3} ms",
                sample.elapsed_s,
                mib(sample.rss_bytes),
                sample.open_fds,
                mib(sample.data_dir_bytes),
                sample.requests,
                sample.errors,
                sample.p99_ms
            );
        }
        samples.push(sample);
    }
    Ok(samples)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `VmRSS` of a process, in bytes.
fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        _ => None,
    }
}

/// The number of a process's open descriptors.
fn open_descriptors(pid: u32) -> Option<u64> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(entries.count() as u64)
}

/// `(allocated, apparent)` bytes of every file under `root`, symbolic
/// links not followed; files removed during the walk are skipped.
fn directory_size(root: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let (mut allocated, mut apparent) = (0u64, 0u64);
    let mut stack = vec![root.to_path_buf()];
    while let Some(directory) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(metadata) = entry.path().symlink_metadata() else {
                continue;
            };
            if metadata.is_dir() {
                stack.push(entry.path());
            } else if metadata.is_file() {
                allocated = allocated.saturating_add(metadata.blocks().saturating_mul(512));
                apparent = apparent.saturating_add(metadata.len());
            }
        }
    }
    (allocated, apparent)
}

/// After the load: waits until no reservation is active, checking every
/// product's `reserved <= on_hand`; answers how many products were read.
async fn drain(target: &Target, options: &SoakOptions) -> Result<u64, String> {
    let deadline = Instant::now() + options.reservation_ttl + DRAIN_GRACE;
    let mut connection = Connection::open(target)
        .await
        .map_err(|error| error.to_string())?;
    loop {
        let mut held = 0;
        for product in 1..=options.products {
            let path = format!("/api/v1/inventory/{product}");
            let answer = connection
                .send_within(Duration::from_secs(30), Method::GET, &path, None)
                .await
                .map_err(|error| format!("GET {path}: {error}"))?;
            if answer.status != StatusCode::OK {
                return Err(describe_answer(&Method::GET, &path, &answer));
            }
            let stock: serde_json::Value =
                serde_json::from_slice(&answer.body).map_err(|error| error.to_string())?;
            let (Some(on_hand), Some(reserved)) =
                (stock["on_hand"].as_u64(), stock["reserved"].as_u64())
            else {
                return Err(format!("GET {path}: no on_hand or reserved in {stock}"));
            };
            if reserved > on_hand {
                return Err(format!(
                    "product {product}: reserved {reserved} > on_hand {on_hand}"
                ));
            }
            held += reserved;
        }
        let path = "/api/v1/inventory/reservations?limit=10";
        let answer = connection
            .send_within(Duration::from_secs(30), Method::GET, path, None)
            .await
            .map_err(|error| format!("GET {path}: {error}"))?;
        let listed: serde_json::Value =
            serde_json::from_slice(&answer.body).map_err(|error| error.to_string())?;
        let active = listed["items"].as_array().map_or(usize::MAX, Vec::len);
        if held == 0 && active == 0 {
            return Ok(options.products);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} after the load: {held} units still reserved, {active} active reservations listed",
                humantime::format_duration(options.reservation_ttl + DRAIN_GRACE)
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `mercato check --data-dir DIR` on the stopped store; its output goes to
/// `check.txt`.
fn run_check(binary: &Path, data_dir: &Path, out: &Path) -> CheckRow {
    let rule = "`mercato check` exits 0";
    let output = std::process::Command::new(binary)
        .arg("check")
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("MERCATO_CURRENCY")
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) => {
            return CheckRow::fail(
                "mercato check",
                format!("cannot run {}: {error}", binary.display()),
                rule,
            );
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::write(out.join("check.txt"), &text);
    let first_line = text.lines().next().unwrap_or("").to_owned();
    if output.status.success() {
        CheckRow::pass("mercato check", first_line, rule)
    } else {
        CheckRow::fail(
            "mercato check",
            format!("{}: {}", output.status, text.trim()),
            rule,
        )
    }
}

/// A check's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    Fail,
    /// The run was too short for the rule to mean anything.
    NotJudged,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::NotJudged => "not judged",
        }
    }
}

/// One row of the verdict's table.
#[derive(Clone, Debug)]
pub(crate) struct CheckRow {
    pub(crate) name: &'static str,
    pub(crate) figure: String,
    pub(crate) rule: String,
    pub(crate) verdict: Verdict,
}

impl CheckRow {
    fn verdict(passed: bool, name: &'static str, figure: String, rule: &str) -> CheckRow {
        CheckRow {
            name,
            figure,
            rule: rule.to_owned(),
            verdict: if passed { Verdict::Pass } else { Verdict::Fail },
        }
    }

    fn pass(name: &'static str, figure: String, rule: &str) -> CheckRow {
        CheckRow::verdict(true, name, figure, rule)
    }

    fn fail(name: &'static str, figure: String, rule: &str) -> CheckRow {
        CheckRow::verdict(false, name, figure, rule)
    }
}

/// The growth checks over the samples. The first sample is warm-up and
/// left out; of the rest, with `q` a quarter of them (rounded up):
///
/// - memory: the last `q` samples' peak RSS is less than 10% above the
///   first `q` samples' peak (peaks, not means: RSS moves in allocator
///   steps, and a leak raises the peak as surely as the mean);
/// - descriptors: the last `q` samples' peak is at most the first `q`
///   samples' peak + [`DESCRIPTOR_SLACK`];
/// - disk: the last `q` samples' peak is at most 10% above the peak of the
///   second `q` samples (the first quarter is the fill before retention
///   removes anything: a directory that levels off is as large in the
///   second quarter as it will stay).
///
/// `judged` false (a run shorter than four times the time retention needs
/// to begin) reports the figures without a verdict.
pub(crate) fn judge(samples: &[Sample], judged: bool, settle: Duration) -> Vec<CheckRow> {
    let rest = samples.get(1..).unwrap_or_default();
    let quarter = rest.len().div_ceil(4).max(1);
    let peak =
        |range: &[Sample], value: fn(&Sample) -> u64| range.iter().map(value).max().unwrap_or(0);
    let first = &rest[..quarter.min(rest.len())];
    let second = &rest[quarter.min(rest.len())..(2 * quarter).min(rest.len())];
    let last = &rest[rest.len().saturating_sub(quarter)..];
    let verdict = |passed: bool| match (judged, passed) {
        (false, _) => Verdict::NotJudged,
        (true, true) => Verdict::Pass,
        (true, false) => Verdict::Fail,
    };
    let why_not = if judged {
        String::new()
    } else {
        format!(
            "; not judged: the run is shorter than 4 x {} (retention's start)",
            humantime::format_duration(Duration::from_secs(settle.as_secs()))
        )
    };

    let rss_first = peak(first, |sample| sample.rss_bytes);
    let rss_last = peak(last, |sample| sample.rss_bytes);
    let growth = if rss_first == 0 {
        f64::INFINITY
    } else {
        rss_last as f64 / rss_first as f64 - 1.0
    };
    let fds_first = peak(first, |sample| sample.open_fds);
    let fds_last = peak(last, |sample| sample.open_fds);
    let disk_second = peak(second, |sample| sample.data_dir_bytes);
    let disk_last = peak(last, |sample| sample.data_dir_bytes);
    let disk_growth = if disk_second == 0 {
        f64::INFINITY
    } else {
        disk_last as f64 / disk_second as f64 - 1.0
    };
    vec![
        CheckRow {
            name: "memory (RSS)",
            figure: format!(
                "{:.1} -> {:.1} MiB ({:+.1}%){why_not}",
                mib(rss_first),
                mib(rss_last),
                growth * 100.0
            ),
            rule: "last-quarter peak < first-quarter peak + 10%".to_owned(),
            verdict: verdict(growth < MEMORY_GROWTH_MAX),
        },
        CheckRow {
            name: "open descriptors",
            figure: format!("{fds_first} -> {fds_last}{why_not}"),
            rule: format!("last-quarter peak <= first-quarter peak + {DESCRIPTOR_SLACK}"),
            verdict: verdict(fds_last <= fds_first + DESCRIPTOR_SLACK),
        },
        CheckRow {
            name: "data directory",
            figure: format!(
                "{:.1} -> {:.1} MiB ({:+.1}%){why_not}",
                mib(disk_second),
                mib(disk_last),
                disk_growth * 100.0
            ),
            rule: "last-quarter peak <= second-quarter peak + 10%".to_owned(),
            verdict: verdict(disk_growth <= DISK_GROWTH_MAX),
        },
    ]
}

fn title(options: &SoakOptions, report: &SoakReport) -> String {
    format!(
        "mercato bench soak: {} at {:.0} req/s, {}",
        humantime::format_duration(options.duration),
        report.rate,
        if report.passed { "pass" } else { "FAIL" }
    )
}

/// `summary.md`: what ran, the figures and the verdict.
fn describe(options: &SoakOptions, report: &SoakReport, figures: &Figures) -> String {
    let mut out = String::new();
    let command: Vec<String> = std::env::args().collect();
    let _ = writeln!(out, "# {}\n", title(options, report));
    let _ = writeln!(out, "- command: `{}`", command.join(" "));
    let _ = writeln!(out, "- finished: {} UTC", crate::compare::utc_timestamp());
    let _ = writeln!(out, "- server: `{}`", options.binary.display());
    let _ = writeln!(
        out,
        "- rate: {:.1} requests/s, open loop over {} connections{}",
        report.rate,
        options.connections,
        match report.peak {
            Some(peak) => format!(
                " (half of the peak, {peak:.0} requests/s of this mix in a {} closed loop over the same connections)",
                humantime::format_duration(options.peak_duration)
            ),
            None => " (given)".to_owned(),
        }
    );
    let _ = writeln!(
        out,
        "- duration {}, a sample every {}; {} products of {STOCK_UNITS} units, restocked by {STOCK_UNITS} on `insufficient_stock`",
        humantime::format_duration(options.duration),
        humantime::format_duration(options.sample_every),
        options.products
    );
    let _ = writeln!(
        out,
        "- server retentions: events and finished reservations {}, idempotency answers {}; reservations live {}; durability {}",
        humantime::format_duration(options.retention),
        humantime::format_duration(options.idempotency_ttl),
        humantime::format_duration(options.reservation_ttl),
        options.durability
    );
    let _ = writeln!(
        out,
        "- data directory size: allocated blocks (st_blocks x 512) of every file under it\n"
    );
    let _ = writeln!(out, "## Requests\n");
    let _ = writeln!(out, "| what | count |\n|---|---|");
    let expired = figures
        .reserved
        .saturating_sub(figures.committed + figures.released);
    for (what, count) in [
        ("requests", figures.requests),
        ("reservations (201)", figures.reserved),
        (
            "  of which left to expire (or expired before their commit)",
            expired,
        ),
        ("  committed", figures.committed),
        ("  released", figures.released),
        ("insufficient stock (409)", figures.rejected),
        ("restocks", figures.restocks),
        (
            "commits refused after expiry (409)",
            figures.finish_conflicts,
        ),
        ("idempotent replays", figures.replays),
        ("reads", figures.reads),
    ] {
        let _ = writeln!(out, "| {what} | {count} |");
    }
    let _ = writeln!(
        out,
        "\nLatency over the run (from each request's scheduled time): p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms.",
        figures.p50_ms, figures.p99_ms, figures.p999_ms, figures.max_ms
    );
    if let (Some(first), Some(last)) = (report.samples.first(), report.samples.last()) {
        let p99: Vec<f64> = report.samples.iter().map(|sample| sample.p99_ms).collect();
        let p99_max = p99.iter().copied().fold(0.0, f64::max);
        let mut sorted = p99.clone();
        sorted.sort_by(f64::total_cmp);
        let _ = writeln!(
            out,
            "Per-sample p99: median {:.3} ms, highest {p99_max:.3} ms. RSS {:.1} -> {:.1} MiB, descriptors {} -> {}, data directory {:.1} -> {:.1} MiB (first and last samples).",
            sorted[sorted.len() / 2],
            mib(first.rss_bytes),
            mib(last.rss_bytes),
            first.open_fds,
            last.open_fds,
            mib(first.data_dir_bytes),
            mib(last.data_dir_bytes)
        );
    }
    let _ = writeln!(out, "\n## Checks\n");
    let _ = writeln!(
        out,
        "| check | figure | rule | verdict |\n|---|---|---|---|"
    );
    for check in &report.checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            check.name,
            check.figure.replace('\n', " ").replace('|', "/"),
            check.rule,
            check.verdict.word()
        );
    }
    let _ = writeln!(
        out,
        "\nVerdict: **{}**",
        if report.passed { "pass" } else { "FAIL" }
    );
    if !figures.failures.is_empty() {
        let _ = writeln!(out, "\n## First failures\n");
        for failure in &figures.failures {
            let _ = writeln!(out, "- {}", failure.replace('\n', " "));
        }
    }
    let _ = writeln!(
        out,
        "\nFiles: `samples.csv` (one line per sample), `soak.svg` (the curves), `check.txt` (`mercato check`)."
    );
    out
}

/// A panel of the plot: its label and what it shows of a sample.
type Panel = (&'static str, fn(&Sample) -> f64);

/// The plot: four panels sharing the time axis (RSS, descriptors, data
/// directory, p99), each from 0 to a round top with labelled ticks.
pub(crate) fn render_svg(samples: &[Sample], title: &str) -> String {
    const WIDTH: f64 = 900.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 40.0;
    const PANEL: f64 = 130.0;
    const GAP: f64 = 45.0;
    let panels: [Panel; 4] = [
        ("RSS (MiB)", |sample| mib(sample.rss_bytes)),
        ("open descriptors", |sample| sample.open_fds as f64),
        ("data directory (MiB)", |sample| mib(sample.data_dir_bytes)),
        ("p99 latency (ms)", |sample| sample.p99_ms),
    ];
    let height = TOP + 4.0 * (PANEL + GAP) + 10.0;
    let plot_width = WIDTH - LEFT - RIGHT;
    let end_s = samples
        .iter()
        .map(|sample| sample.elapsed_s)
        .fold(0.0, f64::max)
        .max(1.0);
    // Minutes on the axis unless the run is short.
    let (unit, scale) = if end_s >= 600.0 {
        ("minutes", 60.0)
    } else {
        ("seconds", 1.0)
    };
    let (x_top, x_step) = nice_axis(end_s / scale);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    for (index, (label, value)) in panels.iter().enumerate() {
        let top = TOP + index as f64 * (PANEL + GAP);
        let bottom = top + PANEL;
        let highest = samples.iter().map(value).fold(0.0, f64::max);
        let (y_top, y_step) = nice_axis(highest);
        let x_of = |seconds: f64| LEFT + plot_width * (seconds / scale) / x_top;
        let y_of = |value: f64| bottom - PANEL * value / y_top;
        let _ = writeln!(
            svg,
            r#"<text x="{LEFT}" y="{}" font-size="12" font-weight="bold">{}</text>"#,
            top - 6.0,
            escape(label)
        );
        // Grid and y ticks.
        let mut tick = 0.0;
        while tick <= y_top * 1.000_001 {
            let y = y_of(tick);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/>"##,
                WIDTH - RIGHT
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 4.0,
                tick_label(tick, y_step)
            );
            tick += y_step;
        }
        // x ticks on every panel, labels on every panel's axis.
        let mut tick = 0.0;
        while tick <= x_top * 1.000_001 {
            let x = LEFT + plot_width * tick / x_top;
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}" stroke="#444"/>"##,
                bottom + 4.0
            );
            let _ = writeln!(
                svg,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                bottom + 16.0,
                tick_label(tick, x_step)
            );
            tick += x_step;
        }
        let _ = writeln!(
            svg,
            r##"<polyline fill="none" stroke="#444" points="{LEFT},{top:.1} {LEFT},{bottom:.1} {:.1},{bottom:.1}"/>"##,
            WIDTH - RIGHT
        );
        let mut points = String::new();
        for sample in samples {
            let _ = write!(
                points,
                "{:.1},{:.1} ",
                x_of(sample.elapsed_s),
                y_of(value(sample))
            );
        }
        let _ = writeln!(
            svg,
            r##"<polyline fill="none" stroke="#1f5fa8" stroke-width="1.5" points="{}"/>"##,
            points.trim_end()
        );
        if index == panels.len() - 1 {
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time ({unit})</text>"#,
                LEFT + plot_width / 2.0,
                bottom + 32.0
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// A round top for an axis holding `highest` (at least 1) and a step of
/// 1, 2 or 5 times a power of ten giving 4 to 10 ticks.
fn nice_axis(highest: f64) -> (f64, f64) {
    let highest = if highest.is_finite() && highest > 0.0 {
        highest
    } else {
        1.0
    };
    let rough = highest / 5.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * power)
        .find(|step| highest / step <= 8.0)
        .unwrap_or(10.0 * power);
    ((highest / step).ceil().max(1.0) * step, step)
}

fn tick_label(value: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{value:.0}")
    } else {
        let decimals = (-step.log10().floor()) as usize;
        format!("{value:.decimals$}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(rss: &[u64], fds: &[u64], disk: &[u64]) -> Vec<Sample> {
        rss.iter()
            .zip(fds)
            .zip(disk)
            .enumerate()
            .map(|(index, ((&rss, &fds), &disk))| Sample {
                elapsed_s: (index + 1) as f64 * 60.0,
                rss_bytes: rss << 20,
                open_fds: fds,
                data_dir_bytes: disk << 20,
                p99_ms: 1.5,
                ..Sample::default()
            })
            .collect()
    }

    fn verdicts(rows: &[CheckRow]) -> Vec<Verdict> {
        rows.iter().map(|row| row.verdict).collect()
    }

    #[test]
    fn flat_curves_pass() {
        let rows = judge(
            &samples(
                &[10, 50, 52, 51, 53, 52, 54, 53, 52],
                &[20, 30, 31, 30, 32, 30, 31, 33, 30],
                &[1, 40, 60, 62, 61, 63, 60, 62, 64],
            ),
            true,
            Duration::from_secs(60),
        );
        assert_eq!(verdicts(&rows), [Verdict::Pass; 3]);
    }

    #[test]
    fn growth_fails_each_check() {
        let rows = judge(
            &samples(
                &[10, 50, 52, 55, 58, 60, 62, 64, 66],
                &[20, 30, 31, 35, 38, 40, 45, 50, 60],
                &[1, 40, 60, 70, 80, 90, 100, 110, 120],
            ),
            true,
            Duration::from_secs(60),
        );
        assert_eq!(verdicts(&rows), [Verdict::Fail; 3]);
    }

    #[test]
    fn a_short_run_is_not_judged() {
        let rows = judge(
            &samples(
                &[10, 50, 52, 55, 58, 60, 62, 64, 66],
                &[20; 9],
                &[1, 40, 60, 70, 80, 90, 100, 110, 120],
            ),
            false,
            Duration::from_secs(300),
        );
        assert_eq!(verdicts(&rows), [Verdict::NotJudged; 3]);
        assert!(rows[0].figure.contains("not judged"), "{}", rows[0].figure);
    }

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tmercato\nVmPeak:\t  100 kB\nVmRSS:\t   2048 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("VmRSS: 12\n"), None);
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert!(resident_bytes(std::process::id()).is_some_and(|bytes| bytes > 0));
        assert!(open_descriptors(std::process::id()).is_some_and(|fds| fds > 0));
    }

    #[test]
    fn sizes_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("inner")).unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 10_000]).unwrap();
        std::fs::write(dir.path().join("inner/b"), vec![1u8; 5_000]).unwrap();
        let (allocated, apparent) = directory_size(dir.path());
        assert_eq!(apparent, 15_000);
        assert!(allocated >= 15_000, "{allocated}");
    }

    #[test]
    fn axes_are_round() {
        assert_eq!(nice_axis(47.0), (50.0, 10.0));
        assert_eq!(nice_axis(0.0), (1.0, 0.2));
        assert_eq!(nice_axis(120.0), (120.0, 20.0));
        let (top, step) = nice_axis(3.3);
        assert!(top >= 3.3 && (top / step) <= 10.0, "{top} {step}");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(40.0, 10.0), "40");
    }

    #[test]
    fn the_svg_is_balanced_and_escaped() {
        let svg = render_svg(
            &samples(&[10, 20, 30], &[5, 6, 7], &[1, 2, 3]),
            "a <title> & more",
        );
        assert!(svg.starts_with("<svg "));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;title&gt; &amp; more"));
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert_eq!(svg.matches("<polyline").count(), 8);
    }

    #[test]
    fn options_are_validated() {
        let options = SoakOptions {
            binary: PathBuf::from("mercato"),
            duration: Duration::from_secs(40),
            sample_every: Duration::from_secs(5),
            rate: Some(200.0),
            peak_duration: Duration::from_secs(10),
            out: PathBuf::from("out"),
            data_dir: None,
            connections: 8,
            products: 100,
            retention: Duration::from_secs(120),
            idempotency_ttl: Duration::from_secs(120),
            reservation_ttl: Duration::from_secs(10),
            durability: "immediate".to_owned(),
            timeout: Duration::from_secs(10),
            progress: false,
        };
        assert!(options.validate().is_ok());
        let with = |change: fn(&mut SoakOptions)| {
            let mut changed = options.clone();
            change(&mut changed);
            changed.validate().unwrap_err().to_string()
        };
        assert!(with(|o| o.sample_every = Duration::from_secs(6)).contains("at least 8 samples"));
        assert!(with(|o| o.rate = Some(0.0)).contains("--rate"));
        assert!(with(|o| o.retention = Duration::from_secs(59)).contains("--retention"));
        assert!(
            with(|o| o.reservation_ttl = Duration::from_millis(2500)).contains("whole seconds")
        );
        assert!(with(|o| o.products = 1).contains("--products"));
        assert!(with(|o| o.duration = Duration::ZERO).contains("--duration"));
    }
}
