//! In-process benchmark of the engine's reservation path: many concurrent
//! submitters calling `Engine::reserve` so the writer can batch, with group
//! commit and with `batch_max = 1` (one commit, and with immediate
//! durability one sync, per reservation), to show what group commit buys.
//!
//! Run with `cargo bench -p mercato-benches --bench reserve`. Each
//! configuration prints its achieved batch size after it is measured.
//! Names read `DURABILITY-COMMIT-sSUBMITTERS/SKEW/lLINES`, e.g.
//! `immediate-group-s64/hot/l3`; pass a regex to run some of them.
//! Tunables (environment): `MERCATO_BENCH_SECONDS` (measurement time per
//! configuration, default 3), `MERCATO_BENCH_SUBMITTERS` (concurrent
//! submitters, default 64; group commit also runs with 8 times as many),
//! `MERCATO_BENCH_PRODUCTS` (default 1000).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use mercato_engine::{
    BatchReport, Decimal, Durability, Engine, EngineConfig, NewProduct, ON_HAND_MAX, OrderId,
    ProductId, ReservationLine, ReserveRequest, Uuid, WriterObserver,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Products `1..=HOT_PRODUCTS` get `HOT_FRACTION` of the hot workload's
/// reservations, as in the HTTP and PostgreSQL benchmarks.
const HOT_PRODUCTS: u64 = 10;
const HOT_FRACTION: f64 = 0.9;

/// Counts what the writer commits, to report the achieved batch size.
/// Only batches that made reservations count, so the set-up's import does
/// not.
#[derive(Default)]
struct BatchCounter {
    commands: AtomicU64,
    batches: AtomicU64,
    syncs: AtomicU64,
    commit_nanos: AtomicU64,
}

impl WriterObserver for BatchCounter {
    fn batch_committed(&self, report: &BatchReport) {
        if report.reservations_created == 0 {
            return;
        }
        self.commands
            .fetch_add(report.commands as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.syncs
            .fetch_add(u64::from(report.synced), Ordering::Relaxed);
        self.commit_nanos.fetch_add(
            u64::try_from(report.commit_latency.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    durability: Durability,
    batch_max: Option<usize>,
    submitters: u64,
    hot: bool,
    lines: usize,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn open_engine(
    workload: &Workload,
    products: u64,
    counter: Arc<BatchCounter>,
) -> (Engine, tempfile::TempDir) {
    let directory = tempfile::tempdir().expect("a temp dir");
    let mut config = EngineConfig::new(directory.path());
    config.durability = workload.durability;
    if let Some(batch_max) = workload.batch_max {
        config.batch_max = batch_max;
    }
    config.observer = Some(counter);
    let engine = Engine::open(config).expect("the engine opens");
    let catalog = (1..=products)
        .map(|id| NewProduct {
            id: Some(ProductId(id)),
            name: format!("Bench product {id}"),
            price: Decimal::ONE,
            // Never runs out, whatever the run's length.
            on_hand: ON_HAND_MAX,
            ..NewProduct::default()
        })
        .collect();
    engine
        .import_products(catalog)
        .wait()
        .expect("the products import");
    (engine, directory)
}

fn choose_products(workload: &Workload, products: u64, rng: &mut SmallRng, lines: &mut Vec<u64>) {
    let (low, count) = if !workload.hot {
        (1, products)
    } else if rng.random_bool(HOT_FRACTION) {
        (1, HOT_PRODUCTS)
    } else {
        (HOT_PRODUCTS + 1, products - HOT_PRODUCTS)
    };
    lines.clear();
    while lines.len() < workload.lines {
        let product = low + rng.random_range(0..count);
        if !lines.contains(&product) {
            lines.push(product);
        }
    }
}

/// Makes `total` reservations from `submitters` concurrent tasks, each
/// waiting for its answer before sending the next (as HTTP clients do).
async fn reserve_many(
    engine: &Engine,
    workload: Workload,
    products: u64,
    submitters: u64,
    total: u64,
) -> Duration {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for submitter in 0..submitters {
        let count = total / submitters + u64::from(submitter < total % submitters);
        let engine = engine.clone();
        tasks.spawn(async move {
            let mut rng = SmallRng::seed_from_u64(submitter);
            let mut lines = Vec::with_capacity(workload.lines);
            for _ in 0..count {
                choose_products(&workload, products, &mut rng, &mut lines);
                let request = ReserveRequest {
                    order_id: OrderId(Uuid::now_v7()),
                    items: lines
                        .iter()
                        .map(|&product| ReservationLine {
                            product_id: ProductId(product),
                            quantity: 1,
                        })
                        .collect(),
                    ttl: Some(Duration::from_secs(86_400)),
                };
                let reserved = engine
                    .reserve(request)
                    .await
                    .expect("the reservation is made");
                assert!(reserved.created);
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("a submitter panicked");
    }
    start.elapsed()
}

/// Group commit at two concurrency levels (the batch can only be as large
/// as the number of reservations in flight), and one commit per reservation.
fn workloads(submitters: u64) -> Vec<Workload> {
    let mut all = Vec::new();
    for (durability_name, durability) in [
        ("immediate", Durability::Immediate),
        ("periodic", Durability::periodic()),
    ] {
        for (batch_name, batch_max, submitters) in [
            ("group", None, submitters),
            ("group", None, submitters * 8),
            ("batch1", Some(1), submitters),
        ] {
            for (skew_name, hot) in [("uniform", false), ("hot", true)] {
                for lines in [1, 3] {
                    let name = format!(
                        "{durability_name}-{batch_name}-s{submitters}/{skew_name}/l{lines}"
                    );
                    all.push(Workload {
                        name: Box::leak(name.into_boxed_str()),
                        durability,
                        batch_max,
                        submitters,
                        hot,
                        lines,
                    });
                }
            }
        }
    }
    all
}

fn bench_reserve(criterion: &mut Criterion) {
    let seconds = env_number("MERCATO_BENCH_SECONDS", 3);
    let submitters = env_number("MERCATO_BENCH_SUBMITTERS", 64).max(1);
    let products = env_number("MERCATO_BENCH_PRODUCTS", 1000).max(HOT_PRODUCTS + 3);
    // The submitters share one thread, as a server's handlers share few
    // cores; the writer has its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");

    let mut group = criterion.benchmark_group("reserve");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(seconds))
        .throughput(Throughput::Elements(1));
    for workload in workloads(submitters) {
        let counter = Arc::new(BatchCounter::default());
        let (engine, _directory) = open_engine(&workload, products, counter.clone());
        group.bench_function(workload.name, |bencher| {
            bencher.iter_custom(|iterations| {
                runtime.block_on(reserve_many(
                    &engine, workload, products, submitters, iterations,
                ))
            });
        });
        engine.shutdown();
        let batches = counter.batches.load(Ordering::Relaxed);
        if batches > 0 {
            let commands = counter.commands.load(Ordering::Relaxed);
            eprintln!(
                "{}: {commands} reservations in {batches} batches, {:.1} per batch, {} synced, \
                 {:.3} ms per commit ({} submitters)",
                workload.name,
                commands as f64 / batches as f64,
                counter.syncs.load(Ordering::Relaxed),
                counter.commit_nanos.load(Ordering::Relaxed) as f64 / batches as f64 / 1e6,
                workload.submitters,
            );
        }
    }
    group.finish();
}

fn main() {
    // What `criterion_main!` does, without the undocumented items it
    // generates.
    let mut criterion = Criterion::default().configure_from_args();
    bench_reserve(&mut criterion);
    criterion.final_summary();
}
