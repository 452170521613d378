//! `mercato bench checkout`: orders over HTTP, each followed to its end.
//!
//! Closed-loop clients, each on its own keep-alive connection, place an
//! order (1 to `lines_max` lines, the simulated gateway's `tok_visa`) and
//! then poll it until it is `CONFIRMED` (or ends otherwise); the latency of
//! an order is from its POST to the answer that shows it ended. The report
//! gives confirmed orders per second and the latency percentiles.
//!
//! The flash-sale mode puts `buyers` orders of one unit on one product that
//! has `units` in stock, and checks the exact counts: `units` orders
//! confirmed, every other one `CANCELLED` with `insufficient_stock`, the
//! product sold out and nothing left reserved (no oversell).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::{Method, StatusCode};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Error;
use crate::client::{Connection, Target};
use crate::load::LatencyMs;

/// What to run.
#[derive(Clone, Debug)]
pub(crate) struct CheckoutPlan {
    pub(crate) connections: usize,
    /// Measurement time (steady mode).
    pub(crate) duration: Duration,
    /// Products 1..=N (steady mode).
    pub(crate) products: u64,
    /// Lines per order: 1..=lines_max, chosen at random.
    pub(crate) lines_max: u64,
    /// `Some((buyers, units))`: the flash-sale mode.
    pub(crate) flash: Option<(u64, u64)>,
    /// How long a request may take.
    pub(crate) timeout: Duration,
    pub(crate) progress: bool,
}

impl CheckoutPlan {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.connections == 0 || self.connections > 4_096 {
            return Err("--connections must be between 1 and 4096".into());
        }
        if self.lines_max == 0 || self.lines_max > 100 || self.lines_max > self.products {
            return Err("--lines must be between 1 and 100, and at most --products".into());
        }
        if self.products == 0 || self.products > 100_000 {
            return Err("--products must be between 1 and 100000".into());
        }
        if self.duration.is_zero() || self.duration > Duration::from_secs(3_600) {
            return Err("--duration must be between 0 and 3600 s".into());
        }
        if let Some((buyers, units)) = self.flash
            && (buyers == 0 || buyers > 1_000_000 || units == 0 || units > buyers)
        {
            return Err("--buyers must be 1 to 1000000 and --units at most --buyers".into());
        }
        Ok(())
    }
}

/// The results of one run.
#[derive(Debug, Serialize)]
pub(crate) struct CheckoutReport {
    pub(crate) system: &'static str,
    pub(crate) workload: &'static str,
    pub(crate) connections: usize,
    pub(crate) duration_s: f64,
    pub(crate) placed: u64,
    pub(crate) confirmed: u64,
    pub(crate) cancelled_insufficient_stock: u64,
    pub(crate) other_end: u64,
    pub(crate) errors: u64,
    /// Orders that reached `CONFIRMED`, per second.
    pub(crate) confirmed_per_s: f64,
    /// From the POST to the answer that showed the order ended.
    pub(crate) latency_ms: LatencyMs,
    /// No product sold more than it had; nothing is left reserved.
    pub(crate) oversell: bool,
    /// Flash sale: confirmed == units, every other order cancelled for
    /// want of stock, the product sold out.
    pub(crate) counts_exact: Option<bool>,
    pub(crate) first_error: Option<String>,
    pub(crate) url: String,
}

const STOCK_STEADY: u64 = 1_000_000_000;
const POLL_INTERVAL: Duration = Duration::from_millis(1);
const LATENCY_MAX_US: u64 = 120_000_000;

struct Shared {
    plan: CheckoutPlan,
    target: Target,
    end: Instant,
    /// Flash sale: orders still to place.
    left: AtomicU64,
    placed: AtomicU64,
    confirmed: AtomicU64,
    cancelled: AtomicU64,
    other: AtomicU64,
    errors: AtomicU64,
}

/// Runs one benchmark against `target`.
pub(crate) async fn run(target: &Target, plan: &CheckoutPlan) -> Result<CheckoutReport, Error> {
    plan.validate()?;
    let (products, stock) = match plan.flash {
        Some((_, units)) => (1, units),
        None => (plan.products, STOCK_STEADY),
    };
    set_up(target, products, stock).await?;
    let before: Vec<Value> = stock_of(target, products).await?;
    let started = Instant::now();
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        target: target.clone(),
        end: started + plan.duration,
        left: AtomicU64::new(plan.flash.map_or(u64::MAX, |(buyers, _)| buyers)),
        placed: AtomicU64::new(0),
        confirmed: AtomicU64::new(0),
        cancelled: AtomicU64::new(0),
        other: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let tasks: Vec<_> = (0..plan.connections)
        .map(|client| tokio::spawn(client_loop(shared.clone(), client)))
        .collect();
    let ticker = plan.progress.then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                eprintln!(
                    "[bench] {:.0} s: {} placed, {} confirmed, {} errors",
                    started.elapsed().as_secs_f64(),
                    shared.placed.load(Ordering::SeqCst),
                    shared.confirmed.load(Ordering::SeqCst),
                    shared.errors.load(Ordering::SeqCst)
                );
            }
        })
    });
    let mut histogram = latency_histogram();
    let mut first_error = None;
    for task in tasks {
        let (latencies, error) = task.await?;
        histogram.add(latencies)?;
        if first_error.is_none() {
            first_error = error;
        }
    }
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = stock_of(target, products).await?;
    let confirmed = shared.confirmed.load(Ordering::SeqCst);
    let cancelled = shared.cancelled.load(Ordering::SeqCst);
    let mut oversell = false;
    for (before, after) in before.iter().zip(&after) {
        let reserved = after["reserved"].as_u64().unwrap_or(u64::MAX);
        let on_hand_after = after["on_hand"].as_u64().unwrap_or(u64::MAX);
        let on_hand_before = before["on_hand"].as_u64().unwrap_or(0);
        if reserved != 0 || on_hand_after > on_hand_before {
            oversell = true;
        }
    }
    let counts_exact = plan.flash.map(|(buyers, units)| {
        let on_hand = after[0]["on_hand"].as_u64();
        confirmed == units && cancelled == buyers - units && on_hand == Some(0)
    });
    let percentile = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1_000.0;
    Ok(CheckoutReport {
        system: "mercato",
        workload: if plan.flash.is_some() {
            "flash"
        } else {
            "steady"
        },
        connections: plan.connections,
        duration_s: elapsed,
        placed: shared.placed.load(Ordering::SeqCst),
        confirmed,
        cancelled_insufficient_stock: cancelled,
        other_end: shared.other.load(Ordering::SeqCst),
        errors: shared.errors.load(Ordering::SeqCst),
        confirmed_per_s: confirmed as f64 / elapsed,
        latency_ms: LatencyMs {
            p50: percentile(0.5),
            p90: percentile(0.9),
            p99: percentile(0.99),
            p999: percentile(0.999),
            max: histogram.max() as f64 / 1_000.0,
        },
        oversell,
        counts_exact,
        first_error,
        url: target.origin.clone(),
    })
}

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds")
}

/// Creates products 1..=N with `stock` units each (existing ones are set).
async fn set_up(target: &Target, products: u64, stock: u64) -> Result<(), Error> {
    let mut connection = Connection::open(target).await?;
    for id in 1..=products {
        let body = json!({"id": id, "name": format!("Bench product {id}"), "price": "4.99"});
        let answer = connection
            .send(
                Method::POST,
                "/api/v1/products",
                Some(body.to_string().into()),
            )
            .await?;
        if answer.status != StatusCode::CREATED && answer.status != StatusCode::CONFLICT {
            return Err(format!("creating product {id}: {}", answer.status).into());
        }
        let body = json!({"on_hand": stock});
        let answer = connection
            .send(
                Method::PUT,
                &format!("/api/v1/inventory/{id}"),
                Some(body.to_string().into()),
            )
            .await?;
        if answer.status != StatusCode::OK {
            return Err(format!("setting the stock of {id}: {}", answer.status).into());
        }
    }
    Ok(())
}

async fn stock_of(target: &Target, products: u64) -> Result<Vec<Value>, Error> {
    let mut connection = Connection::open(target).await?;
    let mut stock = Vec::with_capacity(products as usize);
    for id in 1..=products {
        let answer = connection
            .send(Method::GET, &format!("/api/v1/inventory/{id}"), None)
            .await?;
        stock.push(serde_json::from_slice(&answer.body)?);
    }
    Ok(stock)
}

/// One client: place, follow, repeat. Answers its latencies and its first
/// error.
async fn client_loop(shared: Arc<Shared>, client: usize) -> (Histogram<u64>, Option<String>) {
    let mut histogram = latency_histogram();
    let mut first_error = None;
    let mut connection = None;
    let mut rng = rand::rngs::StdRng::from_os_rng();
    loop {
        match shared.plan.flash {
            Some(_) => {
                let taken = shared
                    .left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                        left.checked_sub(1)
                    });
                if taken.is_err() {
                    break;
                }
            }
            None if Instant::now() >= shared.end => break,
            None => {}
        }
        if connection.is_none() {
            match Connection::open(&shared.target).await {
                Ok(opened) => connection = Some(opened),
                Err(error) => {
                    shared.errors.fetch_add(1, Ordering::SeqCst);
                    first_error.get_or_insert(error.to_string());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let items = match shared.plan.flash {
            Some(_) => json!([{"product_id": 1, "quantity": 1}]),
            None => {
                let lines = rng.random_range(1..=shared.plan.lines_max);
                let first = rng.random_range(1..=shared.plan.products);
                let items: Vec<Value> = (0..lines)
                    .map(|n| {
                        let product = (first + n - 1) % shared.plan.products + 1;
                        json!({"product_id": product, "quantity": 1})
                    })
                    .collect();
                Value::from(items)
            }
        };
        let body = json!({
            "user_id": format!("bench-{client}"),
            "items": items,
            "payment": {"method": "card", "token": "tok_visa"},
        });
        let started = Instant::now();
        let open = connection.as_mut().expect("opened above");
        match follow(open, &shared, body.to_string().into()).await {
            Ok(End::Confirmed) => {
                shared.confirmed.fetch_add(1, Ordering::SeqCst);
                let micros = started
                    .elapsed()
                    .as_micros()
                    .min(u128::from(LATENCY_MAX_US));
                let _ = histogram.record(micros as u64);
            }
            Ok(End::InsufficientStock) => {
                shared.cancelled.fetch_add(1, Ordering::SeqCst);
            }
            Ok(End::Other) => {
                shared.other.fetch_add(1, Ordering::SeqCst);
            }
            Err(error) => {
                shared.errors.fetch_add(1, Ordering::SeqCst);
                first_error.get_or_insert(error.to_string());
                connection = None;
            }
        }
    }
    (histogram, first_error)
}

enum End {
    Confirmed,
    InsufficientStock,
    Other,
}

/// Places one order and polls it until it ends.
async fn follow(connection: &mut Connection, shared: &Shared, body: Bytes) -> Result<End, Error> {
    let timeout = shared.plan.timeout;
    let answer = connection
        .send_within(timeout, Method::POST, "/api/v1/orders", Some(body))
        .await?;
    if answer.status != StatusCode::CREATED {
        return Err(format!(
            "POST /api/v1/orders answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        )
        .into());
    }
    shared.placed.fetch_add(1, Ordering::SeqCst);
    let mut order: Value = serde_json::from_slice(&answer.body)?;
    let id = order["id"].as_str().unwrap_or_default().to_owned();
    let deadline = Instant::now() + timeout;
    loop {
        match order["status"].as_str() {
            Some("CONFIRMED") => return Ok(End::Confirmed),
            Some("CANCELLED") if order["failure_reason"].as_str() == Some("insufficient_stock") => {
                return Ok(End::InsufficientStock);
            }
            Some("AWAITING_PAYMENT" | "PENDING") => {}
            _ => return Ok(End::Other),
        }
        if Instant::now() >= deadline {
            return Err(format!("order {id} did not end within {} s", timeout.as_secs()).into());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
        let answer = connection
            .send_within(timeout, Method::GET, &format!("/api/v1/orders/{id}"), None)
            .await?;
        if answer.status != StatusCode::OK {
            return Err(format!("GET order {id}: {}", answer.status).into());
        }
        order = serde_json::from_slice(&answer.body)?;
    }
}

/// The report as text.
pub(crate) fn describe(report: &CheckoutReport) -> String {
    let mut text = format!(
        "checkout ({}), {} connections, {:.1} s: {} placed, {} confirmed ({:.0}/s), \
         {} cancelled for want of stock, {} other ends, {} errors\n\
         time from POST to CONFIRMED: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms\n\
         oversell: {}",
        report.workload,
        report.connections,
        report.duration_s,
        report.placed,
        report.confirmed,
        report.confirmed_per_s,
        report.cancelled_insufficient_stock,
        report.other_end,
        report.errors,
        report.latency_ms.p50,
        report.latency_ms.p90,
        report.latency_ms.p99,
        report.latency_ms.p999,
        report.latency_ms.max,
        if report.oversell { "YES" } else { "none" },
    );
    if let Some(exact) = report.counts_exact {
        text.push_str(&format!(
            "\nflash-sale counts exact: {}",
            if exact { "yes" } else { "NO" }
        ));
    }
    if let Some(error) = &report.first_error {
        text.push_str(&format!("\nfirst error: {error}"));
    }
    text
}
