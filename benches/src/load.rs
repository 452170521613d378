//! The reservation load generator behind `mercato bench reserve`: set-up
//! through the admin API, closed- or open-loop load over keep-alive
//! connections, latency histograms, and the zero-oversell check against the
//! server's own stock figures.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::{Method, StatusCode};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::Error;
use crate::client::{Connection, Target};

/// The contract's limit on lines per reservation.
pub(crate) const LINES_MAX: usize = 100;
/// The longest reservation time-to-live the contract allows: reservations
/// made by a run must not expire while their sum is being checked.
const RESERVATION_TTL_SECONDS: u64 = 86_400;
/// The largest latency the histograms hold (60 s, in microseconds).
pub(crate) const LATENCY_MAX_US: u64 = 60_000_000;
/// Connections used for set-up and for the final check.
const SETUP_CONNECTIONS: usize = 16;
/// How long a set-up or check request may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How products are chosen for a reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Skew {
    /// Every product equally likely.
    Uniform,
    /// `hot_fraction` of reservations on the first `hot_products` products,
    /// the rest uniform over the others (all lines of a reservation from the
    /// same side), as in the PostgreSQL baseline.
    Hot,
}

impl Skew {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Skew::Uniform => "uniform",
            Skew::Hot => "hot",
        }
    }
}

/// When a run stops.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Bound {
    /// After this long of measurement (after the warm-up).
    Duration(Duration),
    /// After this many measured requests.
    Requests(u64),
}

/// Everything one run needs, already validated.
#[derive(Clone, Debug)]
pub(crate) struct LoadPlan {
    pub(crate) products: u64,
    pub(crate) stock: u64,
    pub(crate) lines: usize,
    pub(crate) quantity: u64,
    pub(crate) skew: Skew,
    pub(crate) hot_products: u64,
    pub(crate) hot_fraction: f64,
    pub(crate) connections: usize,
    pub(crate) bound: Bound,
    /// Open-loop arrival rate in requests per second; closed loop when `None`.
    pub(crate) rate: Option<f64>,
    pub(crate) warmup: Duration,
    pub(crate) timeout: Duration,
    /// Print a progress line every second on stderr.
    pub(crate) progress: bool,
}

impl LoadPlan {
    /// Checks the plan; the message names the offending option.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.products == 0 {
            return Err("--products must be at least 1".into());
        }
        if self.lines == 0 || self.lines > LINES_MAX {
            return Err(format!("--lines must be between 1 and {LINES_MAX}").into());
        }
        if self.quantity == 0 {
            return Err("--quantity must be at least 1".into());
        }
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        match self.skew {
            Skew::Uniform => {
                if self.products < self.lines as u64 {
                    return Err("--products must be at least --lines".into());
                }
            }
            Skew::Hot => {
                if self.hot_products < self.lines as u64 {
                    return Err("--hot-products must be at least --lines".into());
                }
                if self.products < self.hot_products + self.lines as u64 {
                    return Err("--products must be at least --hot-products + --lines".into());
                }
                if !(0.0..=1.0).contains(&self.hot_fraction) {
                    return Err("--hot-fraction must be between 0 and 1".into());
                }
            }
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err("--rate must be a positive number of requests per second".into());
        }
        match self.bound {
            Bound::Duration(duration) if duration.is_zero() => {
                Err("--duration must be positive".into())
            }
            Bound::Requests(0) => Err("--requests must be at least 1".into()),
            _ => Ok(()),
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct LatencyMs {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
}

/// What the load phase measured (after the warm-up).
#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) elapsed: Duration,
    pub(crate) requests: u64,
    pub(crate) succeeded: u64,
    pub(crate) rejected: u64,
    pub(crate) overloaded: u64,
    pub(crate) other_status: u64,
    pub(crate) transport_errors: u64,
    pub(crate) latency: LatencyMs,
    /// Reservations answered 201 during the whole run, warm-up included.
    pub(crate) succeeded_total: u64,
}

/// What the final check found.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Check {
    /// Some product had more units reserved (per the 201 answers, or per the
    /// server) than it had stock.
    pub(crate) oversell: bool,
    /// For every product, the server's `reserved` grew by exactly the units
    /// of the 201-answered reservations (or, where requests failed on the
    /// client's side, by at most their units more).
    pub(crate) server_agrees: bool,
    /// Products whose server figure exceeded the 201 sum, explained by
    /// requests whose answer was lost (timeouts, transport errors).
    pub(crate) products_explained_by_lost_answers: u64,
    /// Products whose server figure contradicts the answers.
    pub(crate) products_mismatched: u64,
    /// Units the server holds beyond the 201 answers, over all products.
    pub(crate) units_from_lost_answers: u64,
}

/// Per-product bookkeeping shared by the load tasks.
struct Ledger {
    /// Units of 201-answered reservations, per product (index = id - 1).
    confirmed: Vec<AtomicU64>,
    /// Units of requests whose answer never came (may or may not be held).
    uncertain: Vec<AtomicU64>,
}

/// Counters for the progress line (all phases).
#[derive(Default)]
struct Progress {
    requests: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
}

struct Shared {
    plan: LoadPlan,
    target: Target,
    measure_start: Instant,
    /// The end of the measurement in duration mode.
    end: Option<Instant>,
    /// Measured requests still to send in requests mode.
    requests_left: AtomicI64,
    ledger: Ledger,
    progress: Progress,
}

/// One task's measured results, merged at the end.
struct TaskResult {
    histogram: Histogram<u64>,
    requests: u64,
    succeeded: u64,
    rejected: u64,
    overloaded: u64,
    other_status: u64,
    transport_errors: u64,
    succeeded_total: u64,
    first_error: Option<String>,
}

/// The stock of the products before the run: `reserved` per product.
pub(crate) struct Baseline {
    reserved: Vec<u64>,
}

/// Creates products `1..=N` (an existing id is fine) and sets each one's
/// `on_hand` so that `available` is the plan's stock. Answers what was
/// already reserved, which the final check subtracts.
pub(crate) async fn set_up(target: &Target, plan: &LoadPlan) -> Result<Baseline, Error> {
    let started = Instant::now();
    let products = plan.products;
    let stock = plan.stock;
    let reserved = for_each_product(target, products, move |mut connection, id| async move {
        let body = format!(r#"{{"id":{id},"name":"Bench product {id}","price":"1.00"}}"#);
        let answer = connection
            .send_within(
                SETUP_TIMEOUT,
                Method::POST,
                "/api/v1/products",
                Some(body.into()),
            )
            .await?;
        if answer.status != StatusCode::CREATED && answer.status != StatusCode::CONFLICT {
            return Err(unexpected(
                "POST /api/v1/products",
                &answer.status,
                &answer.body,
            ));
        }
        let path = format!("/api/v1/inventory/{id}");
        let (_, before) = read_stock(&mut connection, &path).await?;
        let on_hand = before
            .checked_add(stock)
            .ok_or("--stock is too large for the reservations already held")?;
        let answer = connection
            .send_within(
                SETUP_TIMEOUT,
                Method::PUT,
                &path,
                Some(format!(r#"{{"on_hand":{on_hand}}}"#).into()),
            )
            .await?;
        if answer.status != StatusCode::OK {
            return Err(unexpected(
                &format!("PUT {path}"),
                &answer.status,
                &answer.body,
            ));
        }
        Ok((connection, before))
    })
    .await?;
    let held: u64 = reserved.iter().sum();
    if held > 0 {
        eprintln!(
            "[bench] note: {held} units were already reserved on these products; the check \
             counts only this run's, and fails if older reservations expire during the run"
        );
    }
    if plan.progress {
        eprintln!(
            "[bench] set-up: {products} products with {stock} units available each, in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(Baseline { reserved })
}

/// A product's `(on_hand, reserved)`, read through the API.
async fn read_stock(connection: &mut Connection, path: &str) -> Result<(u64, u64), Error> {
    let answer = connection
        .send_within(SETUP_TIMEOUT, Method::GET, path, None)
        .await?;
    if answer.status != StatusCode::OK {
        return Err(unexpected(
            &format!("GET {path}"),
            &answer.status,
            &answer.body,
        ));
    }
    let stock: serde_json::Value = serde_json::from_slice(&answer.body)?;
    match (stock["on_hand"].as_u64(), stock["reserved"].as_u64()) {
        (Some(on_hand), Some(reserved)) => Ok((on_hand, reserved)),
        _ => Err(format!("GET {path}: no `on_hand` or `reserved` in {stock}").into()),
    }
}

fn unexpected(what: &str, status: &StatusCode, body: &[u8]) -> Error {
    let body = String::from_utf8_lossy(&body[..body.len().min(500)]);
    format!("{what} answered {status}: {body}").into()
}

/// Runs the load and answers what was measured plus the ledger the check
/// needs.
pub(crate) async fn run_load(
    target: &Target,
    plan: &LoadPlan,
) -> Result<(Measured, LedgerSnapshot), Error> {
    let start = Instant::now();
    let measure_start = start + plan.warmup;
    let end = match plan.bound {
        Bound::Duration(duration) => Some(measure_start + duration),
        Bound::Requests(_) => None,
    };
    let requests_left = match plan.bound {
        Bound::Requests(count) => i64::try_from(count).unwrap_or(i64::MAX),
        Bound::Duration(_) => i64::MAX,
    };
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        target: target.clone(),
        measure_start,
        end,
        requests_left: AtomicI64::new(requests_left),
        ledger: Ledger {
            confirmed: (0..plan.products).map(|_| AtomicU64::new(0)).collect(),
            uncertain: (0..plan.products).map(|_| AtomicU64::new(0)).collect(),
        },
        progress: Progress::default(),
    });

    // Open every connection before the clock matters, so connection set-up
    // is not measured.
    let mut connections = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        connections.push(Connection::open(target).await?);
    }

    let done = Arc::new(AtomicBool::new(false));
    let progress_task = plan.progress.then(|| {
        let shared = shared.clone();
        let done = done.clone();
        tokio::spawn(report_progress(shared, done, start))
    });

    let mut tasks = JoinSet::new();
    for (index, connection) in connections.into_iter().enumerate() {
        let shared = shared.clone();
        tasks.spawn(load_task(shared, connection, index, start));
    }
    let mut results = Vec::with_capacity(plan.connections);
    while let Some(result) = tasks.join_next().await {
        results.push(result?);
    }
    let finished = Instant::now();
    done.store(true, Ordering::Relaxed);
    if let Some(task) = progress_task {
        let _ = task.await;
    }

    let mut histogram = new_histogram();
    let mut measured = Measured {
        elapsed: finished.saturating_duration_since(measure_start),
        requests: 0,
        succeeded: 0,
        rejected: 0,
        overloaded: 0,
        other_status: 0,
        transport_errors: 0,
        latency: LatencyMs::default(),
        succeeded_total: 0,
    };
    let mut first_error = None;
    for result in results {
        histogram.add(&result.histogram)?;
        measured.requests += result.requests;
        measured.succeeded += result.succeeded;
        measured.rejected += result.rejected;
        measured.overloaded += result.overloaded;
        measured.other_status += result.other_status;
        measured.transport_errors += result.transport_errors;
        measured.succeeded_total += result.succeeded_total;
        if first_error.is_none() {
            first_error = result.first_error;
        }
    }
    if let Some(error) = first_error {
        eprintln!("[bench] first failed request: {error}");
    }
    if !histogram.is_empty() {
        let ms = |us: u64| us as f64 / 1000.0;
        measured.latency = LatencyMs {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        };
    }
    let snapshot = LedgerSnapshot {
        confirmed: shared
            .ledger
            .confirmed
            .iter()
            .map(|units| units.load(Ordering::Relaxed))
            .collect(),
        uncertain: shared
            .ledger
            .uncertain
            .iter()
            .map(|units| units.load(Ordering::Relaxed))
            .collect(),
    };
    Ok((measured, snapshot))
}

/// The per-product units after the run.
pub(crate) struct LedgerSnapshot {
    confirmed: Vec<u64>,
    uncertain: Vec<u64>,
}

pub(crate) fn new_histogram() -> Histogram<u64> {
    // Three significant digits from 1 us to 60 s: a fixed size, allocated
    // once per task.
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds")
}

/// One connection's loop: closed loop (send, wait, repeat) or open loop
/// (send at scheduled times; latency from the scheduled time, so a slow
/// answer that delays later sends is charged to them too).
async fn load_task(
    shared: Arc<Shared>,
    mut connection: Connection,
    index: usize,
    start: Instant,
) -> TaskResult {
    let plan = &shared.plan;
    let mut rng = SmallRng::seed_from_u64(0x6d65_7263_6174_6f00 ^ index as u64);
    let mut result = TaskResult {
        histogram: new_histogram(),
        requests: 0,
        succeeded: 0,
        rejected: 0,
        overloaded: 0,
        other_status: 0,
        transport_errors: 0,
        succeeded_total: 0,
        first_error: None,
    };
    // Open loop: this connection's share of the rate, phase-shifted so the
    // connections' sends interleave evenly.
    let interval = plan
        .rate
        .map(|rate| Duration::from_secs_f64(plan.connections as f64 / rate));
    let mut scheduled =
        interval.map(|interval| start + interval.mul_f64(index as f64 / plan.connections as f64));
    let mut lines = Vec::with_capacity(plan.lines);
    let mut body_text = String::with_capacity(128);
    let mut broken = false;

    loop {
        if let Some(at) = scheduled {
            tokio::time::sleep_until(at.into()).await;
        }
        let sent_at = scheduled.unwrap_or_else(Instant::now);
        let measuring = sent_at >= shared.measure_start;
        if measuring {
            if shared.end.is_some_and(|end| sent_at >= end) {
                break;
            }
            if shared.requests_left.fetch_sub(1, Ordering::Relaxed) <= 0 {
                break;
            }
        }
        if let (Some(at), Some(interval)) = (scheduled.as_mut(), interval) {
            *at += interval;
        }
        if broken {
            match Connection::open(&shared.target).await {
                Ok(fresh) => {
                    connection = fresh;
                    broken = false;
                }
                Err(error) => {
                    note_error(&mut result, measuring, &shared, error.to_string());
                    // Do not spin on a dead server.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }

        choose_products(plan, &mut rng, &mut lines);
        body_text.clear();
        write_reserve_body(&mut body_text, uuid::Uuid::now_v7(), &lines, plan.quantity);
        let body = Bytes::copy_from_slice(body_text.as_bytes());

        let answer = connection
            .send_within(
                plan.timeout,
                Method::POST,
                "/api/v1/inventory/reserve",
                Some(body),
            )
            .await;
        let latency = sent_at.elapsed();
        shared.progress.requests.fetch_add(1, Ordering::Relaxed);
        let status = match answer {
            Ok(answer) => answer.status,
            Err(error) => {
                // The server may or may not have committed it.
                for &product in &lines {
                    shared.ledger.uncertain[(product - 1) as usize]
                        .fetch_add(plan.quantity, Ordering::Relaxed);
                }
                broken = true;
                note_error(&mut result, measuring, &shared, error.to_string());
                continue;
            }
        };
        if status == StatusCode::CREATED {
            for &product in &lines {
                shared.ledger.confirmed[(product - 1) as usize]
                    .fetch_add(plan.quantity, Ordering::Relaxed);
            }
            shared.progress.succeeded.fetch_add(1, Ordering::Relaxed);
            result.succeeded_total += 1;
        } else if !(status == StatusCode::CONFLICT || status == StatusCode::SERVICE_UNAVAILABLE) {
            shared.progress.failed.fetch_add(1, Ordering::Relaxed);
            if result.first_error.is_none() {
                result.first_error =
                    Some(format!("POST /api/v1/inventory/reserve answered {status}"));
            }
        }
        if !measuring {
            continue;
        }
        result.requests += 1;
        let _ = result.histogram.record(
            u64::try_from(latency.as_micros())
                .unwrap_or(u64::MAX)
                .clamp(1, LATENCY_MAX_US),
        );
        match status {
            StatusCode::CREATED => result.succeeded += 1,
            StatusCode::CONFLICT => result.rejected += 1,
            StatusCode::SERVICE_UNAVAILABLE => result.overloaded += 1,
            _ => result.other_status += 1,
        }
    }
    result
}

fn note_error(result: &mut TaskResult, measuring: bool, shared: &Shared, error: String) {
    shared.progress.failed.fetch_add(1, Ordering::Relaxed);
    if measuring {
        result.requests += 1;
        result.transport_errors += 1;
    }
    if result.first_error.is_none() {
        result.first_error = Some(error);
    }
}

/// Fills `lines` with `plan.lines` distinct product ids chosen by the skew.
fn choose_products(plan: &LoadPlan, rng: &mut SmallRng, lines: &mut Vec<u64>) {
    let (low, count) = match plan.skew {
        Skew::Uniform => (1, plan.products),
        Skew::Hot if rng.random_bool(plan.hot_fraction) => (1, plan.hot_products),
        Skew::Hot => (plan.hot_products + 1, plan.products - plan.hot_products),
    };
    debug_assert!(count >= plan.lines as u64);
    lines.clear();
    while lines.len() < plan.lines {
        let product = low + rng.random_range(0..count);
        if !lines.contains(&product) {
            lines.push(product);
        }
    }
}

/// The reserve request body, written into a reused buffer.
fn write_reserve_body(out: &mut String, order_id: uuid::Uuid, lines: &[u64], quantity: u64) {
    let mut uuid_text = uuid::Uuid::encode_buffer();
    let order_id = order_id.hyphenated().encode_lower(&mut uuid_text);
    let _ = write!(out, r#"{{"order_id":"{order_id}","items":["#);
    for (position, product) in lines.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        let _ = write!(out, r#"{{"product_id":{product},"quantity":{quantity}}}"#);
    }
    let _ = write!(out, r#"],"ttl_seconds":{RESERVATION_TTL_SECONDS}}}"#);
}

async fn report_progress(shared: Arc<Shared>, done: Arc<AtomicBool>, start: Instant) {
    let mut ticker = tokio::time::interval_at(
        (start + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    let (mut requests, mut succeeded, mut failed) = (0, 0, 0);
    let mut line = Vec::with_capacity(160);
    while !done.load(Ordering::Relaxed) {
        ticker.tick().await;
        if done.load(Ordering::Relaxed) {
            break;
        }
        let now_requests = shared.progress.requests.load(Ordering::Relaxed);
        let now_succeeded = shared.progress.succeeded.load(Ordering::Relaxed);
        let now_failed = shared.progress.failed.load(Ordering::Relaxed);
        // The second just past is warm-up if most of it came before the
        // measurement's start.
        let midpoint = Instant::now().checked_sub(Duration::from_millis(500));
        let phase = if midpoint.is_some_and(|midpoint| midpoint < shared.measure_start) {
            "warm-up"
        } else {
            "measure"
        };
        line.clear();
        let _ = writeln!(
            line,
            "[bench] {:>4.0}s {phase}: {:>8} req/s {:>8} reserved/s {:>6} failed/s",
            start.elapsed().as_secs_f64(),
            now_requests - requests,
            now_succeeded - succeeded,
            now_failed - failed,
        );
        let _ = std::io::stderr().write_all(&line);
        (requests, succeeded, failed) = (now_requests, now_succeeded, now_failed);
    }
}

/// Runs `work` for every product id `1..=products`, over up to
/// `SETUP_CONNECTIONS` connections at once, and answers the results in id
/// order. `work` takes a connection and gives it back with its result.
async fn for_each_product<T, F, Fut>(
    target: &Target,
    products: u64,
    work: F,
) -> Result<Vec<T>, Error>
where
    T: Send + 'static,
    F: Fn(Connection, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(Connection, T), Error>> + Send + 'static,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicU64::new(1));
    let mut tasks = JoinSet::new();
    for _ in 0..SETUP_CONNECTIONS.min(products as usize) {
        let (target, work, next) = (target.clone(), work.clone(), next.clone());
        tasks.spawn(async move {
            let mut connection = Connection::open(&target).await?;
            let mut results = Vec::new();
            loop {
                let id = next.fetch_add(1, Ordering::Relaxed);
                if id > products {
                    return Ok::<_, Error>(results);
                }
                let (returned, value) = work(connection, id).await?;
                connection = returned;
                results.push((id, value));
            }
        });
    }
    let mut all = Vec::with_capacity(usize::try_from(products).unwrap_or(0));
    while let Some(result) = tasks.join_next().await {
        all.extend(result??);
    }
    all.sort_unstable_by_key(|(id, _)| *id);
    Ok(all.into_iter().map(|(_, value)| value).collect())
}

/// Reads every product's stock back and checks it against the answers.
pub(crate) async fn check(
    target: &Target,
    plan: &LoadPlan,
    baseline: &Baseline,
    ledger: &LedgerSnapshot,
) -> Result<Check, Error> {
    let products = plan.products;
    let figures = for_each_product(target, products, |mut connection, id| async move {
        let figures = read_stock(&mut connection, &format!("/api/v1/inventory/{id}")).await?;
        Ok((connection, figures))
    })
    .await?;

    let mut check = Check {
        server_agrees: true,
        ..Check::default()
    };
    let mut reported = 0;
    for (index, &(on_hand, reserved)) in figures.iter().enumerate() {
        let confirmed = ledger.confirmed[index];
        let uncertain = ledger.uncertain[index];
        let before = baseline.reserved[index];
        let product = index + 1;
        if confirmed > plan.stock || reserved > on_hand {
            check.oversell = true;
            eprintln!(
                "[bench] OVERSELL on product {product}: {confirmed} units confirmed of {} available; \
                 server on_hand {on_hand}, reserved {reserved}",
                plan.stock
            );
        }
        let held = reserved.wrapping_sub(before);
        if reserved >= before && held == confirmed {
            continue;
        }
        if reserved >= before && held > confirmed && held - confirmed <= uncertain {
            check.products_explained_by_lost_answers += 1;
            check.units_from_lost_answers += held - confirmed;
            continue;
        }
        check.server_agrees = false;
        check.products_mismatched += 1;
        if reported < 10 {
            reported += 1;
            eprintln!(
                "[bench] MISMATCH on product {product}: the server holds {reserved} reserved \
                 ({before} before the run), the 201 answers add up to {confirmed}, \
                 {uncertain} more units had no answer"
            );
        }
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(skew: Skew, lines: usize) -> LoadPlan {
        LoadPlan {
            products: 1000,
            stock: 10,
            lines,
            quantity: 1,
            skew,
            hot_products: 10,
            hot_fraction: 0.9,
            connections: 4,
            bound: Bound::Requests(10),
            rate: None,
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(1),
            progress: false,
        }
    }

    #[test]
    fn the_body_matches_the_contract() {
        let mut out = String::new();
        let id = uuid::Uuid::now_v7();
        write_reserve_body(&mut out, id, &[3, 17], 2);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["order_id"], id.to_string());
        assert_eq!(value["items"][0]["product_id"], 3);
        assert_eq!(value["items"][1]["product_id"], 17);
        assert_eq!(value["items"][1]["quantity"], 2);
        assert_eq!(value["ttl_seconds"], RESERVATION_TTL_SECONDS);
    }

    #[test]
    fn lines_are_distinct_and_in_range() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut lines = Vec::new();
        let plan = plan(Skew::Uniform, 3);
        for _ in 0..10_000 {
            choose_products(&plan, &mut rng, &mut lines);
            assert_eq!(lines.len(), 3);
            assert!(lines.iter().all(|&product| (1..=1000).contains(&product)));
            assert!(lines[0] != lines[1] && lines[1] != lines[2] && lines[0] != lines[2]);
        }
    }

    #[test]
    fn the_hot_skew_puts_its_fraction_on_the_hot_products() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut lines = Vec::new();
        let plan = plan(Skew::Hot, 2);
        let mut hot = 0;
        for _ in 0..100_000 {
            choose_products(&plan, &mut rng, &mut lines);
            let on_hot_side = lines[0] <= 10;
            // All lines of a reservation come from the same side.
            assert!(lines.iter().all(|&product| (product <= 10) == on_hot_side));
            hot += u32::from(on_hot_side);
        }
        assert!((89_000..91_000).contains(&hot), "{hot}");
    }

    #[test]
    fn plans_are_validated() {
        assert!(plan(Skew::Uniform, 1).validate().is_ok());
        assert!(plan(Skew::Uniform, 0).validate().is_err());
        assert!(plan(Skew::Hot, 11).validate().is_err());
        let mut open = plan(Skew::Uniform, 1);
        open.rate = Some(0.0);
        assert!(open.validate().is_err());
    }
}
