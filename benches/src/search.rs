//! `mercato bench search`: the search benchmark of issue 10, over HTTP only
//! (`GET /api/v1/search`, `GET /api/v1/search/suggest`, the admin API), so
//! it measures any server that keeps the contract.
//!
//! Phases, each optional (`--phases`):
//!
//! - **build**: a fresh store loaded with the catalog (by `mercato import`
//!   when the binary has it, by `serve --catalog` for catalogs the server
//!   takes whole, else through the admin API), then the time until
//!   `/readyz` answers 200 and until a browse of the whole catalog counts
//!   every product; `mercato reindex` is timed too when the binary has it.
//! - **queries**: every query of the set once (mean total, empty answers,
//!   whether the product a query was made from is found), then per type a
//!   warm-up, open-loop runs at fixed rates (latency from each request's
//!   scheduled time: coordinated omission accounted for) and closed-loop
//!   runs at several client counts (the highest queries/s).
//! - **visibility**: while reservations run at full speed on products
//!   1..=N (the `mercato bench reserve` load), other products are set to 0
//!   units and back; the time until a search with `in_stock=true` shows
//!   each change.
//! - **reserve**: reservation throughput on this store against a baseline
//!   store without the indexer (another binary, or this one with other
//!   arguments), in alternating pairs.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hyper::{Method, StatusCode};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::Error;
use crate::client::{Connection, Target};
use crate::load::{self, Bound, LatencyMs, LoadPlan, Skew};
use crate::reserve::{self, ReserveReport, ServerSource};
use crate::server::SpawnedServer;

/// The query types of the set, in report order.
pub(crate) const TYPES: [&str; 6] = ["one_word", "typo", "prefix", "facet", "filtered", "suggest"];
/// The largest catalog `mercato serve --catalog` takes whole (the engine's
/// `IMPORT_PRODUCTS_MAX` at the time of writing).
const CATALOG_LOAD_MAX: usize = 10_000;
/// Connections that load a catalog through the admin API.
const API_LOAD_CONNECTIONS: usize = 16;
/// How long one set-up, probe or check request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an import, a reindex or an index build may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);
/// Every measured run starts with this much unrecorded load (as the
/// PostgreSQL side drops the first second of pgbench's log).
const RUN_WARMUP: Duration = Duration::from_secs(1);
/// How often the visibility probe searches.
const PROBE_INTERVAL: Duration = Duration::from_millis(5);
/// When a change counts as never seen.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which phases run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Phase {
    /// Load the catalog into a fresh store and time the index build.
    Build,
    /// Query latency and throughput per type.
    Queries,
    /// Update-to-visible under a reservation load.
    Visibility,
    /// Reservation throughput with the indexer against a baseline.
    Reserve,
}

/// How the catalog gets into a fresh store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LoadMethod {
    /// `import` if the binary has it, else `catalog` for catalogs of at
    /// most 10,000 products, else `api`.
    Auto,
    /// `mercato import FILE --data-dir DIR`, then `mercato serve`.
    Import,
    /// `mercato serve --catalog FILE`.
    Catalog,
    /// `mercato serve --empty`, then `POST /api/v1/products` and `PUT
    /// /api/v1/inventory/{id}` for every product.
    Api,
}

/// Where the measured server comes from.
#[derive(Clone, Debug)]
pub(crate) enum SearchServer {
    /// A running server, already loaded with the catalog.
    Url { url: String, admin_token: String },
    /// Started here from this binary.
    Spawn { binary: PathBuf, load: LoadMethod },
}

/// Everything `mercato bench search` was asked to do, validated.
#[derive(Clone, Debug)]
pub(crate) struct SearchOptions {
    pub(crate) catalog: PathBuf,
    pub(crate) queries: PathBuf,
    pub(crate) server: SearchServer,
    pub(crate) durability: String,
    pub(crate) phases: Vec<Phase>,
    pub(crate) types: Vec<String>,
    pub(crate) rates: Vec<f64>,
    pub(crate) open_connections: usize,
    pub(crate) clients: Vec<usize>,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    pub(crate) timeout: Duration,
    pub(crate) changes: usize,
    pub(crate) reserve_products: u64,
    pub(crate) reserve_connections: usize,
    pub(crate) reserve_duration: Duration,
    pub(crate) reserve_pairs: usize,
    pub(crate) baseline_bin: Option<PathBuf>,
    pub(crate) baseline_args: Vec<String>,
    pub(crate) progress: bool,
}

/// One line of the query set (benches/search/generate_queries.py).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub(crate) struct QuerySpec {
    pub(crate) id: u64,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) q: String,
    pub(crate) category: Option<String>,
    pub(crate) brand: Option<String>,
    pub(crate) min_price: Option<String>,
    pub(crate) max_price: Option<String>,
    #[serde(default)]
    pub(crate) in_stock: bool,
    pub(crate) sort: Option<String>,
    pub(crate) limit: Option<u32>,
    pub(crate) expect_id: Option<u64>,
}

impl QuerySpec {
    /// The request path and query string of this query.
    pub(crate) fn path(&self) -> String {
        let mut path = String::with_capacity(96);
        if self.kind == "suggest" {
            path.push_str("/api/v1/search/suggest?q=");
            encode_into(&mut path, &self.q);
            let _ = write!(path, "&limit={}", self.limit.unwrap_or(8));
            return path;
        }
        path.push_str("/api/v1/search?q=");
        encode_into(&mut path, &self.q);
        for (name, value) in [
            ("category", &self.category),
            ("brand", &self.brand),
            ("min_price", &self.min_price),
            ("max_price", &self.max_price),
        ] {
            if let Some(value) = value {
                let _ = write!(path, "&{name}=");
                encode_into(&mut path, value);
            }
        }
        if self.in_stock {
            path.push_str("&in_stock=true");
        }
        if let Some(sort) = self.sort.as_deref().filter(|sort| *sort != "relevance") {
            path.push_str("&sort=");
            encode_into(&mut path, sort);
        }
        let _ = write!(path, "&limit={}", self.limit.unwrap_or(20));
        path
    }
}

/// Percent-encodes `text` for a query string (everything but RFC 3986's
/// unreserved characters).
fn encode_into(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// The fields of a catalog line this benchmark uses.
#[derive(Clone, Debug, Deserialize)]
struct CatalogProduct {
    id: u64,
    category: String,
    brand: String,
    price: String,
    on_hand: u64,
}

// ------------------------------------------------------------------ report

/// The whole run.
#[derive(Debug, Default, Serialize)]
pub(crate) struct SearchReport {
    pub(crate) system: &'static str,
    pub(crate) catalog: String,
    pub(crate) queries_file: String,
    pub(crate) products: usize,
    pub(crate) durability: String,
    pub(crate) loadavg_before: Option<String>,
    pub(crate) loadavg_after: Option<String>,
    pub(crate) build: Option<BuildReport>,
    pub(crate) types: Vec<TypeReport>,
    pub(crate) visibility: Option<VisibilityReport>,
    pub(crate) reserve: Option<ReserveComparison>,
    pub(crate) url: String,
}

/// How long the catalog took to become searchable.
#[derive(Debug, Default, Serialize)]
pub(crate) struct BuildReport {
    pub(crate) method: String,
    pub(crate) products: usize,
    /// `mercato import` (store only), seconds.
    pub(crate) import_s: Option<f64>,
    /// `mercato reindex` on the imported store, seconds.
    pub(crate) reindex_s: Option<f64>,
    /// The API load (every POST and PUT answered), seconds from its start.
    pub(crate) api_load_s: Option<f64>,
    /// From starting `mercato serve` to `/readyz` answering 200.
    pub(crate) ready_s: f64,
    /// From starting `mercato serve` (or, for the API load, from the first
    /// write) until a browse of the catalog counts every product.
    pub(crate) searchable_s: f64,
    /// Products per second of index build: by `reindex` when timed, else
    /// products / `searchable_s`.
    pub(crate) products_per_s: f64,
    /// What products_per_s measures.
    pub(crate) rate_basis: String,
}

/// One query type.
#[derive(Debug, Default, Serialize)]
pub(crate) struct TypeReport {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) queries: usize,
    /// Mean `total` (suggest: items) over the set.
    pub(crate) mean_total: f64,
    pub(crate) no_results: usize,
    pub(crate) expect_queries: usize,
    /// The product a query was made from is among the hits (or suggestions).
    pub(crate) expect_found: usize,
    pub(crate) answer_errors: usize,
    pub(crate) open: Vec<RunReport>,
    pub(crate) closed: Vec<RunReport>,
    pub(crate) best: Option<RunReport>,
}

/// One measured run.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct RunReport {
    pub(crate) mode: &'static str,
    pub(crate) target_rate: Option<f64>,
    pub(crate) clients: usize,
    pub(crate) count: u64,
    pub(crate) errors: u64,
    /// Measured answers per second.
    pub(crate) qps: f64,
    pub(crate) latency_ms: LatencyMs,
    pub(crate) first_error: Option<String>,
}

/// Update-to-visible under reservations.
#[derive(Debug, Default, Serialize)]
pub(crate) struct VisibilityReport {
    pub(crate) changes: usize,
    pub(crate) seen: usize,
    pub(crate) timeouts: usize,
    /// From sending the `PUT /api/v1/inventory/{id}` to the answer of the
    /// first search that shows the change.
    pub(crate) from_write_ms: LatencyMs,
    /// The same, from the `PUT`'s answer.
    pub(crate) from_ack_ms: LatencyMs,
    pub(crate) sold_out_ms: LatencyMs,
    pub(crate) back_in_stock_ms: LatencyMs,
    pub(crate) searches: u64,
    /// The reservation load was still running when the last change was seen.
    pub(crate) load_outlasted_probes: bool,
    /// The reservation load that ran meanwhile.
    pub(crate) reservations: Option<ReserveReport>,
}

/// Reservations/s with the indexer against the baseline, in pairs.
#[derive(Debug, Default, Serialize)]
pub(crate) struct ReserveComparison {
    /// The server with the indexer: a fresh store of this binary.
    pub(crate) with_index: String,
    pub(crate) baseline: String,
    pub(crate) connections: usize,
    pub(crate) duration_s: f64,
    pub(crate) with_index_rps: Vec<f64>,
    pub(crate) baseline_rps: Vec<f64>,
    pub(crate) ratios: Vec<f64>,
    pub(crate) median_ratio: Option<f64>,
    pub(crate) checks_passed: bool,
}

// ------------------------------------------------------------------ run

/// Runs the benchmark. Servers started here are stopped before this
/// returns, error or not.
pub(crate) async fn run(options: &SearchOptions) -> Result<SearchReport, Error> {
    let catalog_text = tokio::fs::read_to_string(&options.catalog)
        .await
        .map_err(|error| format!("cannot read {}: {error}", options.catalog.display()))?;
    let lines: Vec<&str> = catalog_text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return Err(format!("{} holds no products", options.catalog.display()).into());
    }
    let queries = read_queries(&options.queries)?;
    let mut report = SearchReport {
        system: "mercato",
        catalog: options.catalog.display().to_string(),
        queries_file: options.queries.display().to_string(),
        products: lines.len(),
        durability: options.durability.clone(),
        loadavg_before: loadavg(),
        ..SearchReport::default()
    };

    let spawned;
    let target = match &options.server {
        SearchServer::Url { url, admin_token } => Target::resolve(url, admin_token).await?,
        SearchServer::Spawn { binary, load } => {
            // Without the build phase, the store is loaded all the same but
            // nothing waits for (or times) the index.
            let timed = options.phases.contains(&Phase::Build);
            let (server, build) = build_store(
                binary,
                *load,
                &options.durability,
                &[],
                &options.catalog,
                &lines,
                timed,
                options.progress,
            )
            .await?;
            report.build = timed.then_some(build);
            spawned = server;
            Target::resolve(&spawned.url, &spawned.admin_token).await?
        }
    };
    report.url = target.origin.clone();
    if options.phases.contains(&Phase::Build) && matches!(options.server, SearchServer::Url { .. })
    {
        note(
            options,
            "build: skipped (--url: the server is already loaded)",
        );
    }

    if options.phases.contains(&Phase::Queries) {
        for kind in &options.types {
            let set: Vec<&QuerySpec> = queries.iter().filter(|q| &q.kind == kind).collect();
            if set.is_empty() {
                note(options, &format!("{kind}: no queries in the set, skipped"));
                continue;
            }
            report
                .types
                .push(run_type(&target, options, kind, &set).await?);
        }
    }
    if options.phases.contains(&Phase::Visibility) && options.changes > 0 {
        let products: Vec<CatalogProduct> = lines
            .iter()
            .map(|line| serde_json::from_str(line))
            .collect::<Result<_, _>>()?;
        report.visibility = Some(visibility(&target, options, &products).await?);
    }
    if options.phases.contains(&Phase::Reserve) {
        report.reserve = reserve_comparison(&target, options, &lines).await?;
    }
    report.loadavg_after = loadavg();
    Ok(report)
}

fn note(options: &SearchOptions, message: &str) {
    if options.progress {
        eprintln!("[search] {message}");
    }
}

fn read_queries(path: &Path) -> Result<Vec<QuerySpec>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let mut queries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let query: QuerySpec = serde_json::from_str(line)
            .map_err(|error| format!("{} line {}: {error}", path.display(), index + 1))?;
        queries.push(query);
    }
    if queries.is_empty() {
        return Err(format!("{} holds no queries", path.display()).into());
    }
    Ok(queries)
}

/// The load average, "1 5 15" minutes.
fn loadavg() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn seconds_since(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

// ------------------------------------------------------------------ build

/// Whether `binary SUBCOMMAND --help` succeeds.
async fn has_subcommand(binary: &Path, subcommand: &str) -> bool {
    tokio::process::Command::new(binary)
        .arg(subcommand)
        .arg("--help")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}

/// Runs `binary ARGS...` to completion (bounded), its output in `log`.
async fn run_tool(binary: &Path, args: &[OsString], log: &Path) -> Result<f64, Error> {
    let file = std::fs::File::create(log)?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .args(args)
        .env("MERCATO_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
    let status = match tokio::time::timeout(BUILD_TIMEOUT, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            let _ = child.kill().await;
            return Err(format!("{} {args:?} did not finish in time", binary.display()).into());
        }
    };
    let elapsed = seconds_since(started);
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        return Err(format!(
            "{} {args:?} failed ({status}):\n{}",
            binary.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
        .into());
    }
    Ok(elapsed)
}

/// A server on a fresh store holding the catalog, and how long that took.
#[allow(clippy::too_many_arguments)]
async fn build_store(
    binary: &Path,
    load: LoadMethod,
    durability: &str,
    extra_args: &[String],
    catalog: &Path,
    lines: &[&str],
    wait_searchable: bool,
    progress: bool,
) -> Result<(SpawnedServer, BuildReport), Error> {
    let count = lines.len();
    let method = match load {
        LoadMethod::Auto if has_subcommand(binary, "import").await => LoadMethod::Import,
        LoadMethod::Auto if count <= CATALOG_LOAD_MAX => LoadMethod::Catalog,
        LoadMethod::Auto => LoadMethod::Api,
        other => other,
    };
    let directory = tempfile::Builder::new()
        .prefix("mercato-search-bench-")
        .tempdir()?;
    let data_dir = directory.path().join("data");
    let mut build = BuildReport {
        products: count,
        ..BuildReport::default()
    };
    let mut args: Vec<OsString> = extra_args.iter().map(OsString::from).collect();
    let say = |message: String| {
        if progress {
            eprintln!("[search] {message}");
        }
    };
    match method {
        LoadMethod::Import => {
            say(format!(
                "build: {} import {}",
                binary.display(),
                catalog.display()
            ));
            let import_args: Vec<OsString> = vec![
                "import".into(),
                catalog.as_os_str().to_owned(),
                "--data-dir".into(),
                data_dir.as_os_str().to_owned(),
            ];
            let import_s =
                run_tool(binary, &import_args, &directory.path().join("import.log")).await?;
            say(format!(
                "build: imported {count} products in {import_s:.1} s"
            ));
            build.import_s = Some(import_s);
            if has_subcommand(binary, "reindex").await {
                let reindex_args: Vec<OsString> = vec![
                    "reindex".into(),
                    "--data-dir".into(),
                    data_dir.as_os_str().to_owned(),
                ];
                let reindex_s =
                    run_tool(binary, &reindex_args, &directory.path().join("reindex.log")).await?;
                say(format!("build: reindexed in {reindex_s:.1} s"));
                build.reindex_s = Some(reindex_s);
            }
            build.method = "import".to_owned();
        }
        LoadMethod::Catalog => {
            args.push("--catalog".into());
            args.push(catalog.as_os_str().to_owned());
            build.method = "serve --catalog".to_owned();
        }
        LoadMethod::Api | LoadMethod::Auto => {
            args.push("--empty".into());
            build.method = "admin API".to_owned();
        }
    }
    let started = Instant::now();
    let server =
        SpawnedServer::start_in(directory, binary, durability, &args, BUILD_TIMEOUT).await?;
    build.ready_s = seconds_since(started);
    say(format!(
        "build: {} ready in {:.1} s",
        server.url, build.ready_s
    ));
    let target = Target::resolve(&server.url, &server.admin_token).await?;
    let mut searchable_from = started;
    if method == LoadMethod::Api || method == LoadMethod::Auto {
        searchable_from = Instant::now();
        load_through_api(&target, lines, progress).await?;
        build.api_load_s = Some(seconds_since(searchable_from));
        say(format!(
            "build: {count} products written through the API in {:.1} s",
            build.api_load_s.unwrap_or_default()
        ));
    }
    if wait_searchable {
        wait_until_searchable(&target, count)
            .await
            .map_err(|error| format!("{error}; the server's log:\n{}", server.log_tail()))?;
        build.searchable_s = seconds_since(searchable_from);
        say(format!(
            "build: all {count} products searchable {:.1} s after the start",
            build.searchable_s
        ));
        (build.products_per_s, build.rate_basis) = match build.reindex_s {
            Some(seconds) => (
                count as f64 / seconds.max(1e-9),
                "mercato reindex on the imported store".to_owned(),
            ),
            None => (
                count as f64 / build.searchable_s.max(1e-9),
                match method {
                    LoadMethod::Api | LoadMethod::Auto => {
                        "from the first API write until every product is searchable (bounded by the API load)"
                    }
                    _ => "from starting mercato serve until every product is searchable",
                }
                .to_owned(),
            ),
        };
        build.products_per_s = build.products_per_s.round();
    }
    Ok((server, build))
}

/// Polls a browse of the whole catalog until it counts `count` products.
async fn wait_until_searchable(target: &Target, count: usize) -> Result<(), Error> {
    let deadline = Instant::now() + BUILD_TIMEOUT;
    let mut connection = Connection::open(target).await?;
    let mut last: String;
    loop {
        match connection
            .send_within(REQUEST_TIMEOUT, Method::GET, "/api/v1/search?limit=1", None)
            .await
        {
            Ok(answer) if answer.status == StatusCode::OK => {
                let total = total_of(&answer.body);
                if total == Some(count as u64) {
                    return Ok(());
                }
                last = format!("total {total:?}");
            }
            Ok(answer) => last = format!("status {}", answer.status),
            Err(error) => {
                last = error.to_string();
                connection = Connection::open(target).await?;
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the catalog was not searchable within {} s (last answer: {last})",
                BUILD_TIMEOUT.as_secs()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The search answer's `total`, found without parsing the hits: the last
/// `"total":` of the body (a product attribute of that name comes before).
fn total_of(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.rfind("\"total\":")? + "\"total\":".len();
    let digits: String = text[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Creates every product through the admin API and sets its stock.
async fn load_through_api(target: &Target, lines: &[&str], progress: bool) -> Result<(), Error> {
    let bodies: Arc<Vec<(u64, String, u64)>> = Arc::new(
        lines
            .iter()
            .map(|line| {
                let mut value: serde_json::Map<String, Value> = serde_json::from_str(line)?;
                let id = value
                    .get("id")
                    .and_then(Value::as_u64)
                    .ok_or("a catalog line has no id")?;
                let on_hand = value
                    .remove("on_hand")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0);
                Ok((id, serde_json::to_string(&value)?, on_hand))
            })
            .collect::<Result<_, Error>>()?,
    );
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..API_LOAD_CONNECTIONS {
        let (target, bodies, next) = (target.clone(), bodies.clone(), next.clone());
        tasks.spawn(async move {
            let mut connection = Connection::open(&target).await?;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some((id, body, on_hand)) = bodies.get(index) else {
                    return Ok::<_, Error>(());
                };
                if progress && index > 0 && index % 20_000 == 0 {
                    eprintln!("[search] build: {index} products written");
                }
                let answer = connection
                    .send_within(
                        REQUEST_TIMEOUT,
                        Method::POST,
                        "/api/v1/products",
                        Some(body.clone().into()),
                    )
                    .await?;
                if answer.status != StatusCode::CREATED && answer.status != StatusCode::CONFLICT {
                    return Err(unexpected("POST /api/v1/products", &answer));
                }
                let path = format!("/api/v1/inventory/{id}");
                let answer = connection
                    .send_within(
                        REQUEST_TIMEOUT,
                        Method::PUT,
                        &path,
                        Some(format!(r#"{{"on_hand":{on_hand}}}"#).into()),
                    )
                    .await?;
                if answer.status != StatusCode::OK {
                    return Err(unexpected(&format!("PUT {path}"), &answer));
                }
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(())
}

fn unexpected(what: &str, answer: &crate::client::Answer) -> Error {
    let body = String::from_utf8_lossy(&answer.body[..answer.body.len().min(500)]);
    format!("{what} answered {}: {body}", answer.status).into()
}

// ------------------------------------------------------------------ queries

async fn run_type(
    target: &Target,
    options: &SearchOptions,
    kind: &str,
    set: &[&QuerySpec],
) -> Result<TypeReport, Error> {
    let mut report = answer_pass(target, kind, set).await?;
    note(
        options,
        &format!(
            "{kind}: {} queries, mean total {:.1}, {} with no result, source product found in {} of {}{}",
            report.queries,
            report.mean_total,
            report.no_results,
            report.expect_found,
            report.expect_queries,
            if report.answer_errors > 0 {
                format!(", {} ERRORS", report.answer_errors)
            } else {
                String::new()
            }
        ),
    );
    let paths: Arc<Vec<String>> = Arc::new(set.iter().map(|query| query.path()).collect());
    if !options.warmup.is_zero() {
        drive(
            target,
            &paths,
            options.open_connections,
            None,
            options.warmup,
            options.timeout,
        )
        .await?;
    }
    for &rate in &options.rates {
        let run = drive(
            target,
            &paths,
            options.open_connections,
            Some(rate),
            options.duration,
            options.timeout,
        )
        .await?;
        note(
            options,
            &format!(
                "{kind} open loop at {rate}/s: {:.1}/s, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, {} errors",
                run.qps, run.latency_ms.p50, run.latency_ms.p99, run.latency_ms.max, run.errors
            ),
        );
        report.open.push(run);
    }
    for &clients in &options.clients {
        let run = drive(
            target,
            &paths,
            clients,
            None,
            options.duration,
            options.timeout,
        )
        .await?;
        note(
            options,
            &format!(
                "{kind} closed loop, {clients} clients: {:.1}/s, p50 {:.3} ms, p99 {:.3} ms, {} errors",
                run.qps, run.latency_ms.p50, run.latency_ms.p99, run.errors
            ),
        );
        report.closed.push(run);
    }
    report.best = report
        .closed
        .iter()
        .max_by(|left, right| left.qps.total_cmp(&right.qps))
        .cloned();
    Ok(report)
}

/// Every query once, one after another: what the answers hold.
async fn answer_pass(target: &Target, kind: &str, set: &[&QuerySpec]) -> Result<TypeReport, Error> {
    let mut report = TypeReport {
        kind: kind.to_owned(),
        queries: set.len(),
        ..TypeReport::default()
    };
    let mut connection = Connection::open(target).await?;
    let mut total_sum = 0u64;
    for query in set {
        let path = query.path();
        let answer = match connection
            .send_within(REQUEST_TIMEOUT, Method::GET, &path, None)
            .await
        {
            Ok(answer) => answer,
            Err(error) => {
                report.answer_errors += 1;
                eprintln!("[search] GET {path}: {error}");
                connection = Connection::open(target).await?;
                continue;
            }
        };
        if answer.status != StatusCode::OK {
            if report.answer_errors == 0 {
                eprintln!("[search] {}", unexpected(&format!("GET {path}"), &answer));
            }
            report.answer_errors += 1;
            continue;
        }
        let value: Value = serde_json::from_slice(&answer.body)?;
        let (count, ids) = if kind == "suggest" {
            let items = value["items"].as_array().cloned().unwrap_or_default();
            let ids: Vec<u64> = items
                .iter()
                .filter_map(|item| item["product_id"].as_u64())
                .collect();
            (items.len() as u64, ids)
        } else {
            let ids: Vec<u64> = value["hits"]
                .as_array()
                .map(|hits| hits.iter().filter_map(|hit| hit["id"].as_u64()).collect())
                .unwrap_or_default();
            (value["total"].as_u64().unwrap_or(0), ids)
        };
        total_sum += count;
        report.no_results += usize::from(count == 0);
        if let Some(expect) = query.expect_id {
            report.expect_queries += 1;
            report.expect_found += usize::from(ids.contains(&expect));
        }
    }
    let answered = (report.queries - report.answer_errors).max(1);
    report.mean_total = (total_sum as f64 / answered as f64 * 10.0).round() / 10.0;
    Ok(report)
}

/// One measured run over `paths` (each request picks one at random):
/// closed loop, or open loop at `rate` requests/s over all connections
/// (latency from each request's scheduled time). The first `RUN_WARMUP`
/// is not recorded.
async fn drive(
    target: &Target,
    paths: &Arc<Vec<String>>,
    connections: usize,
    rate: Option<f64>,
    duration: Duration,
    timeout: Duration,
) -> Result<RunReport, Error> {
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        opened.push(Connection::open(target).await?);
    }
    let start = Instant::now();
    let measure_start = start + RUN_WARMUP;
    let end = measure_start + duration;
    let interval = rate.map(|rate| Duration::from_secs_f64(connections as f64 / rate));
    let mut tasks = JoinSet::new();
    for (index, mut connection) in opened.into_iter().enumerate() {
        let (paths, target) = (paths.clone(), target.clone());
        tasks.spawn(async move {
            let mut rng = SmallRng::seed_from_u64(0x5345_4152_4348 ^ index as u64);
            let mut histogram = load::new_histogram();
            let (mut count, mut errors) = (0u64, 0u64);
            let mut first_error: Option<String> = None;
            let mut scheduled = interval
                .map(|interval| start + interval.mul_f64(index as f64 / connections as f64));
            let mut broken = false;
            loop {
                if let Some(at) = scheduled {
                    if at >= end {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                }
                let sent_at = scheduled.unwrap_or_else(Instant::now);
                if sent_at >= end {
                    break;
                }
                if let (Some(at), Some(interval)) = (scheduled.as_mut(), interval) {
                    *at += interval;
                }
                let measuring = sent_at >= measure_start;
                if broken {
                    match Connection::open(&target).await {
                        Ok(fresh) => {
                            connection = fresh;
                            broken = false;
                        }
                        Err(error) => {
                            errors += u64::from(measuring);
                            first_error.get_or_insert_with(|| error.to_string());
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let path = &paths[rng.random_range(0..paths.len())];
                let outcome = connection
                    .send_within(timeout, Method::GET, path, None)
                    .await;
                let latency = sent_at.elapsed();
                let ok = match outcome {
                    Ok(answer) if answer.status == StatusCode::OK => true,
                    Ok(answer) => {
                        first_error.get_or_insert_with(|| {
                            unexpected(&format!("GET {path}"), &answer).to_string()
                        });
                        false
                    }
                    Err(error) => {
                        broken = true;
                        first_error.get_or_insert_with(|| error.to_string());
                        false
                    }
                };
                if measuring {
                    count += 1;
                    errors += u64::from(!ok);
                    let _ = histogram.record(
                        u64::try_from(latency.as_micros())
                            .unwrap_or(u64::MAX)
                            .clamp(1, load::LATENCY_MAX_US),
                    );
                }
            }
            (histogram, count, errors, first_error)
        });
    }
    let mut histogram = load::new_histogram();
    let mut report = RunReport {
        mode: if rate.is_some() { "open" } else { "closed" },
        target_rate: rate,
        clients: connections,
        ..RunReport::default()
    };
    while let Some(result) = tasks.join_next().await {
        let (part, count, errors, first_error) = result?;
        histogram.add(&part)?;
        report.count += count;
        report.errors += errors;
        if report.first_error.is_none() {
            report.first_error = first_error;
        }
    }
    // Requests sent in the window, per second of the window (the PostgreSQL
    // side counts pgbench's log the same way).
    report.qps = (report.count as f64 / duration.as_secs_f64() * 10.0).round() / 10.0;
    report.latency_ms = latency_of(&histogram);
    Ok(report)
}

fn latency_of(histogram: &Histogram<u64>) -> LatencyMs {
    if histogram.is_empty() {
        return LatencyMs::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    LatencyMs {
        p50: ms(histogram.value_at_quantile(0.50)),
        p90: ms(histogram.value_at_quantile(0.90)),
        p99: ms(histogram.value_at_quantile(0.99)),
        p999: ms(histogram.value_at_quantile(0.999)),
        max: ms(histogram.max()),
    }
}

// ------------------------------------------------------------------ visibility

/// The search that shows whether `product` is in stock: its category,
/// brand and exact price, `in_stock=true`, up to 100 hits.
fn probe_path(product: &CatalogProduct) -> String {
    let mut path = String::from("/api/v1/search?category=");
    encode_into(&mut path, &product.category);
    path.push_str("&brand=");
    encode_into(&mut path, &product.brand);
    path.push_str("&min_price=");
    encode_into(&mut path, &product.price);
    path.push_str("&max_price=");
    encode_into(&mut path, &product.price);
    path.push_str("&in_stock=true&limit=100");
    path
}

/// Whether the probe's answer lists `id` (`None`: no usable answer).
async fn probe(connection: &mut Connection, path: &str, id: u64) -> Option<bool> {
    let answer = connection
        .send_within(REQUEST_TIMEOUT, Method::GET, path, None)
        .await
        .ok()?;
    if answer.status != StatusCode::OK {
        return None;
    }
    let value: Value = serde_json::from_slice(&answer.body).ok()?;
    Some(
        value["hits"]
            .as_array()?
            .iter()
            .any(|hit| hit["id"].as_u64() == Some(id)),
    )
}

async fn visibility(
    target: &Target,
    options: &SearchOptions,
    catalog: &[CatalogProduct],
) -> Result<VisibilityReport, Error> {
    // Products outside the reservation load's, in stock, picked at random
    // (seeded), whose probe finds them now.
    let mut candidates: Vec<&CatalogProduct> = catalog
        .iter()
        .filter(|product| product.id > options.reserve_products && product.on_hand > 0)
        .collect();
    candidates.shuffle(&mut SmallRng::seed_from_u64(20_261_130));
    let wanted = options.changes.div_ceil(2);
    let mut chosen = Vec::with_capacity(wanted);
    let mut connection = Connection::open(target).await?;
    for product in candidates.into_iter().take(wanted * 4) {
        if chosen.len() == wanted {
            break;
        }
        if probe(&mut connection, &probe_path(product), product.id).await == Some(true) {
            chosen.push(product);
        }
    }
    if chosen.len() < wanted {
        return Err(format!(
            "only {} of {wanted} products for the visibility probe are found by their search",
            chosen.len()
        )
        .into());
    }

    // The reservation load must outlast the probes: each change waits
    // `spacing`, then up to a second if the target is met (longer if not:
    // the report says whether the load was still running at the end).
    let spacing = Duration::from_millis(400);
    let load_duration = Duration::from_secs(5)
        + (spacing + Duration::from_secs(1)) * u32::try_from(options.changes).unwrap_or(u32::MAX);
    let plan = LoadPlan {
        products: options.reserve_products,
        stock: 1_000_000,
        lines: 1,
        quantity: 1,
        skew: Skew::Uniform,
        hot_products: 10,
        hot_fraction: 0.9,
        connections: options.reserve_connections,
        bound: Bound::Duration(load_duration),
        rate: None,
        warmup: Duration::from_secs(1),
        timeout: Duration::from_secs(10),
        progress: false,
    };
    let source = ServerSource::Url {
        url: target.origin.clone(),
        admin_token: target.admin_token(),
        durability: Some(options.durability.clone()),
    };
    note(
        options,
        &format!(
            "visibility: {} stock changes on {} products while {} connections reserve on products 1..={} for {:.0} s",
            options.changes,
            chosen.len(),
            options.reserve_connections,
            options.reserve_products,
            load_duration.as_secs_f64() + 1.0
        ),
    );
    let reservations = async {
        let run = reserve::run(&source, &plan).await;
        (run, Instant::now())
    };
    let probes = async {
        // set_up of the load writes the stock of its products first.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let probed = probe_changes(target, &chosen, options.changes, spacing).await;
        (probed, Instant::now())
    };
    let ((reservations, load_ended), (probes, probes_ended)) = tokio::join!(reservations, probes);
    let (mut report, samples) = probes?;
    let reservations = reservations?;
    report.load_outlasted_probes = load_ended >= probes_ended;
    let all: Vec<(f64, f64, bool)> = samples;
    let histogram_of = |values: &mut dyn Iterator<Item = f64>| {
        let mut histogram = load::new_histogram();
        for value in values {
            let _ = histogram.record(((value * 1000.0) as u64).clamp(1, load::LATENCY_MAX_US));
        }
        latency_of(&histogram)
    };
    report.from_write_ms = histogram_of(&mut all.iter().map(|s| s.0));
    report.from_ack_ms = histogram_of(&mut all.iter().map(|s| s.1));
    report.sold_out_ms = histogram_of(&mut all.iter().filter(|s| s.2).map(|s| s.0));
    report.back_in_stock_ms = histogram_of(&mut all.iter().filter(|s| !s.2).map(|s| s.0));
    note(
        options,
        &format!(
            "visibility: {} of {} changes seen (timeouts {}); from the write p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.0} reservations/s meanwhile",
            report.seen,
            report.changes,
            report.timeouts,
            report.from_write_ms.p50,
            report.from_write_ms.p99,
            report.from_write_ms.max,
            reservations.throughput_rps
        ),
    );
    report.reservations = Some(reservations);
    Ok(report)
}

/// Sets products to 0 units and back, `changes` times in all, one every
/// `spacing`; answers the report's counts and, per change seen, (ms from
/// the write, ms from its answer, whether it was the sell-out).
async fn probe_changes(
    target: &Target,
    products: &[&CatalogProduct],
    changes: usize,
    spacing: Duration,
) -> Result<(VisibilityReport, Vec<(f64, f64, bool)>), Error> {
    let mut report = VisibilityReport {
        changes,
        ..VisibilityReport::default()
    };
    let mut samples = Vec::with_capacity(changes);
    let mut writer = Connection::open(target).await?;
    let mut reader = Connection::open(target).await?;
    let mut next_slot = Instant::now();
    for change in 0..changes {
        tokio::time::sleep_until(next_slot.into()).await;
        next_slot = Instant::now() + spacing;
        let product = products[change / 2];
        let sell_out = change % 2 == 0;
        let on_hand = if sell_out { 0 } else { product.on_hand };
        let path = format!("/api/v1/inventory/{}", product.id);
        let search = probe_path(product);
        let written = Instant::now();
        let answer = writer
            .send_within(
                REQUEST_TIMEOUT,
                Method::PUT,
                &path,
                Some(format!(r#"{{"on_hand":{on_hand}}}"#).into()),
            )
            .await?;
        if answer.status != StatusCode::OK {
            return Err(unexpected(&format!("PUT {path}"), &answer));
        }
        let acknowledged = Instant::now();
        loop {
            let listed = probe(&mut reader, &search, product.id).await;
            report.searches += 1;
            if listed.is_none() {
                reader = Connection::open(target).await?;
            }
            if listed == Some(!sell_out) {
                let seen = Instant::now();
                report.seen += 1;
                samples.push((
                    seen.duration_since(written).as_secs_f64() * 1000.0,
                    seen.duration_since(acknowledged).as_secs_f64() * 1000.0,
                    sell_out,
                ));
                break;
            }
            if written.elapsed() >= PROBE_TIMEOUT {
                report.timeouts += 1;
                break;
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }
    Ok((report, samples))
}

// ------------------------------------------------------------------ reserve

async fn reserve_comparison(
    target: &Target,
    options: &SearchOptions,
    lines: &[&str],
) -> Result<Option<ReserveComparison>, Error> {
    let baseline_binary = match (&options.baseline_bin, &options.server) {
        (Some(binary), _) => binary.clone(),
        (None, SearchServer::Spawn { binary, .. }) if !options.baseline_args.is_empty() => {
            binary.clone()
        }
        _ => {
            note(
                options,
                "reserve: skipped (no --baseline-bin or --baseline-arg to compare with)",
            );
            return Ok(None);
        }
    };
    let label = format!(
        "{}{}",
        baseline_binary.display(),
        if options.baseline_args.is_empty() {
            String::new()
        } else {
            format!(" serve {}", options.baseline_args.join(" "))
        }
    );
    // Both sides get a fresh store with the same catalog: the measured
    // server has served the other phases (their reservations and events
    // make its store bigger), so it is not used here.
    let (fresh_server, indexed_label) = match &options.server {
        SearchServer::Spawn { binary, load } => {
            note(options, "reserve: building a fresh store with the indexer");
            // Waits until the index has caught up: the runs measure the
            // indexer following the reservations, not building the index.
            let (server, _) = build_store(
                binary,
                *load,
                &options.durability,
                &[],
                &options.catalog,
                lines,
                true,
                options.progress,
            )
            .await?;
            (Some(server), binary.display().to_string())
        }
        SearchServer::Url { url, .. } => (None, format!("{url} (as it is)")),
    };
    let indexed_target = match &fresh_server {
        Some(server) => Target::resolve(&server.url, &server.admin_token).await?,
        None => target.clone(),
    };
    note(
        options,
        &format!("reserve: building the baseline store ({label})"),
    );
    let (baseline_server, _) = build_store(
        &baseline_binary,
        LoadMethod::Auto,
        &options.durability,
        &options.baseline_args,
        &options.catalog,
        lines,
        false,
        options.progress,
    )
    .await?;
    let baseline_target =
        Target::resolve(&baseline_server.url, &baseline_server.admin_token).await?;
    let plan = LoadPlan {
        products: options.reserve_products,
        stock: 1_000_000,
        lines: 1,
        quantity: 1,
        skew: Skew::Uniform,
        hot_products: 10,
        hot_fraction: 0.9,
        connections: options.reserve_connections,
        bound: Bound::Duration(options.reserve_duration),
        rate: None,
        warmup: Duration::from_secs(1),
        timeout: Duration::from_secs(10),
        progress: false,
    };
    let mut comparison = ReserveComparison {
        with_index: indexed_label,
        baseline: label,
        connections: options.reserve_connections,
        duration_s: options.reserve_duration.as_secs_f64(),
        checks_passed: true,
        ..ReserveComparison::default()
    };
    for pair in 1..=options.reserve_pairs {
        let mut rps = [0.0; 2];
        // Alternate which side goes first, so that a drift of the machine
        // does not favour one.
        let mut order = [(0, &indexed_target), (1, &baseline_target)];
        if pair % 2 == 0 {
            order.reverse();
        }
        for (slot, which) in order {
            let source = ServerSource::Url {
                url: which.origin.clone(),
                admin_token: which.admin_token(),
                durability: Some(options.durability.clone()),
            };
            let run = reserve::run(&source, &plan).await?;
            comparison.checks_passed &= !run.oversell && run.server_agrees;
            rps[slot] = run.throughput_rps;
        }
        let ratio = rps[0] / rps[1].max(1e-9);
        note(
            options,
            &format!(
                "reserve pair {pair}: with the indexer {:.0}/s, baseline {:.0}/s, ratio {ratio:.3}",
                rps[0], rps[1]
            ),
        );
        comparison.with_index_rps.push(rps[0]);
        comparison.baseline_rps.push(rps[1]);
        comparison.ratios.push((ratio * 1000.0).round() / 1000.0);
    }
    let mut sorted = comparison.ratios.clone();
    sorted.sort_by(f64::total_cmp);
    comparison.median_ratio = sorted.get(sorted.len() / 2).copied();
    drop(baseline_server);
    drop(fresh_server);
    Ok(Some(comparison))
}

// ------------------------------------------------------------------ text

/// The human report.
pub(crate) fn describe(report: &SearchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "mercato bench search: {} ({} products, durability {}), load average before {} after {}",
        report.url,
        report.products,
        report.durability,
        report.loadavg_before.as_deref().unwrap_or("?"),
        report.loadavg_after.as_deref().unwrap_or("?"),
    );
    if let Some(build) = &report.build {
        let _ = writeln!(
            out,
            "build      {}: ready in {:.1} s, searchable after {:.1} s{}{}{} -> {:.0} products/s ({})",
            build.method,
            build.ready_s,
            build.searchable_s,
            build
                .import_s
                .map_or(String::new(), |s| format!(", import {s:.1} s")),
            build
                .reindex_s
                .map_or(String::new(), |s| format!(", reindex {s:.1} s")),
            build
                .api_load_s
                .map_or(String::new(), |s| format!(", API load {s:.1} s")),
            build.products_per_s,
            build.rate_basis,
        );
    }
    if !report.types.is_empty() {
        let _ = writeln!(
            out,
            "{:<9} {:>7} {:>9} {:>7} {:>9} {:>9} {:>7}   open loop: rate -> achieved p50/p99/max ms",
            "type", "queries", "mean_tot", "no_hits", "found", "best_qps", "clients"
        );
    }
    for kind in &report.types {
        let mut open = String::new();
        for run in &kind.open {
            let _ = write!(
                open,
                "  {}: {:.0} {:.2}/{:.2}/{:.2}",
                run.target_rate.unwrap_or_default(),
                run.qps,
                run.latency_ms.p50,
                run.latency_ms.p99,
                run.latency_ms.max
            );
        }
        let errors: u64 = kind
            .open
            .iter()
            .chain(&kind.closed)
            .map(|run| run.errors)
            .sum::<u64>()
            + kind.answer_errors as u64;
        let _ = writeln!(
            out,
            "{:<9} {:>7} {:>9.1} {:>7} {:>9} {:>9.1} {:>7} {open}{}",
            kind.kind,
            kind.queries,
            kind.mean_total,
            kind.no_results,
            format!("{}/{}", kind.expect_found, kind.expect_queries),
            kind.best.as_ref().map_or(0.0, |best| best.qps),
            kind.best.as_ref().map_or(0, |best| best.clients),
            if errors > 0 {
                format!("  ({errors} ERRORS)")
            } else {
                String::new()
            }
        );
    }
    if let Some(visibility) = &report.visibility {
        let _ = writeln!(
            out,
            "visible    {} of {} changes seen, {} timeouts; from the write p50 {:.1} p99 {:.1} max {:.1} ms (sold out p99 {:.1}, back p99 {:.1}); {} probe searches",
            visibility.seen,
            visibility.changes,
            visibility.timeouts,
            visibility.from_write_ms.p50,
            visibility.from_write_ms.p99,
            visibility.from_write_ms.max,
            visibility.sold_out_ms.p99,
            visibility.back_in_stock_ms.p99,
            visibility.searches,
        );
        if let Some(reservations) = &visibility.reservations {
            let _ = writeln!(
                out,
                "           meanwhile {:.0} reservations/s at {} connections (p99 {:.2} ms), oversell: {}{}",
                reservations.throughput_rps,
                reservations.connections,
                reservations.latency_ms.p99,
                if reservations.oversell { "YES" } else { "none" },
                if visibility.load_outlasted_probes {
                    ""
                } else {
                    "; the load ENDED before the last change was seen"
                }
            );
        }
    }
    if let Some(reserve) = &report.reserve {
        let pairs: Vec<String> = reserve
            .with_index_rps
            .iter()
            .zip(&reserve.baseline_rps)
            .map(|(with, without)| format!("{with:.0}/{without:.0}"))
            .collect();
        let _ = writeln!(
            out,
            "reserve    with the indexer / baseline ({}), {} connections, {:.0} s: {}; ratios {:?}, median {}; checks passed: {}",
            reserve.baseline,
            reserve.connections,
            reserve.duration_s,
            pairs.join(", "),
            reserve.ratios,
            reserve
                .median_ratio
                .map_or("-".to_owned(), |ratio| format!("{ratio:.3}")),
            reserve.checks_passed,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(kind: &str) -> QuerySpec {
        QuerySpec {
            id: 1,
            kind: kind.to_owned(),
            q: "wireless hea".to_owned(),
            category: None,
            brand: Some("Oak & Ember".to_owned()),
            min_price: Some("10".to_owned()),
            max_price: None,
            in_stock: true,
            sort: Some("price_asc".to_owned()),
            limit: None,
            expect_id: None,
        }
    }

    #[test]
    fn paths_follow_the_contract() {
        assert_eq!(
            query("filtered").path(),
            "/api/v1/search?q=wireless%20hea&brand=Oak%20%26%20Ember&min_price=10&in_stock=true&sort=price_asc&limit=20"
        );
        assert_eq!(
            query("suggest").path(),
            "/api/v1/search/suggest?q=wireless%20hea&limit=8"
        );
        let mut browse = query("facet");
        browse.q.clear();
        browse.brand = None;
        browse.min_price = None;
        browse.in_stock = false;
        browse.sort = Some("relevance".to_owned());
        browse.category = Some("home-kitchen".to_owned());
        assert_eq!(
            browse.path(),
            "/api/v1/search?q=&category=home-kitchen&limit=20"
        );
    }

    #[test]
    fn encodes_non_ascii() {
        let mut out = String::new();
        encode_into(&mut out, "Lumière");
        assert_eq!(out, "Lumi%C3%A8re");
    }

    #[test]
    fn finds_the_total_after_the_hits() {
        let body = br#"{"hits":[{"id":1,"attributes":{"total":"3"}}],"total":1234,"facets":{},"took_ms":1}"#;
        assert_eq!(total_of(body), Some(1234));
        assert_eq!(total_of(b"{}"), None);
    }

    #[test]
    fn reads_the_generated_query_lines() {
        let line = r#"{"id":801,"type":"filtered","q":"racing","category":null,"brand":null,"min_price":"55","max_price":"104","in_stock":true,"sort":"price_asc","limit":20,"expect_id":72547}"#;
        let query: QuerySpec = serde_json::from_str(line).unwrap();
        assert_eq!(query.kind, "filtered");
        assert_eq!(query.expect_id, Some(72547));
        assert!(query.in_stock);
    }
}
