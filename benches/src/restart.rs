//! `mercato bench restart`: how long [`Engine::open`] takes after a crash,
//! against the size of the store.
//!
//! redb marks its file as in use while a process writes to it. The open
//! after a crash must rebuild redb's allocator state: with quick repair
//! (a snapshot of that state saved by every synced commit) it loads the
//! snapshot of the last checkpoint; without, it checks the checksum of every
//! page and walks every tree, so the time grows with the file. This
//! benchmark fills stores of several sizes and, for each, times the open
//! after a SIGKILL while idle, after a SIGKILL during writes and after a
//! clean stop, with a warm and a cold page cache.
//!
//! Every process that writes to or opens a store is a fresh one (this
//! binary, re-run as the hidden `mercato bench restart-child`), so the
//! processes share nothing but the files and the kernel's page cache. The
//! fill is the exception: it runs here, before any child, and closes the
//! store cleanly. A copy of the filled file puts the store back before each
//! kill during writes, whose writes would otherwise grow the smaller
//! stores noticeably from run to run.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mercato_engine::{
    BatchReport, Decimal, Durability, Engine, EngineConfig, LogSyncReport, NewProduct, OrderId,
    PRODUCT_ATTRIBUTE_KEY_LENGTH_MAX, PRODUCT_ATTRIBUTE_VALUE_LENGTH_MAX, PRODUCT_ATTRIBUTES_MAX,
    PRODUCT_DESCRIPTION_LENGTH_MAX, ProductId, RESERVATION_LINES_MAX, ReservationLine,
    ReserveRequest, Uuid, WriterObserver,
};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The largest store one run may fill.
pub(crate) const SIZE_GIB_MAX: f64 = 16.0;
/// The most repetitions of each measurement.
pub(crate) const RUNS_MAX: usize = 20;

const GIB: f64 = (1u64 << 30) as f64;
/// The products every store holds with plenty of stock; the writes of the
/// children reserve them.
const STOCK_PRODUCTS: u64 = 1_000;
const STOCK_ON_HAND: u64 = 1_000_000_000;
/// Reservations of the orders fill: as many lines as allowed, so that each
/// command writes a few kilobytes (reservation, event, deadline).
const FILL_LINES: usize = RESERVATION_LINES_MAX;
/// Every reservation made here holds its stock for the longest time
/// allowed by default, so that none expires while the benchmark runs
/// (expiry would add writes of its own).
const RESERVATION_TTL: Duration = Duration::from_secs(86_400);
/// Commands of the fill submitted and not yet answered.
const FILL_IN_FLIGHT_MAX: usize = 2_048;
/// Products per `import_products` of the catalog fill (about 75 KB each).
const FILL_IMPORT_PRODUCTS: usize = 200;
/// The fill stops once redb's file has reached the size asked for and
/// holds about this share of it in data.
const FILL_FRACTION: f64 = 0.9;

/// Reservations a writing child makes before it idles or stops: rounds of
/// writes, each ended by a flush (a checkpoint), then writes left for the
/// engine's own checkpoint.
const WRITE_ROUNDS: usize = 20;
const WRITES_PER_ROUND: usize = 15;
const WRITES_AFTER_ROUNDS: usize = 100;
/// How long an idle child waits after its last write: three checkpoint
/// intervals, so the engine has checkpointed by itself.
const IDLE_CHECKPOINT_INTERVALS: u32 = 3;
/// Writes the busy child keeps in flight, as many clients of a server would.
const BUSY_IN_FLIGHT_MAX: usize = 256;
/// The busy child writes for at least this long before it may be killed...
const BUSY_WARMUP: Duration = Duration::from_millis(1_500);
/// ...and is killed once its last checkpoint is at least this old, so that
/// about half a checkpoint interval of log waits to be replayed.
const BUSY_KILL_AFTER_CHECKPOINT: Duration = Duration::from_millis(500);
/// How often the busy child reports what it has done.
const BUSY_STATUS_INTERVAL: Duration = Duration::from_millis(10);
/// A child exits by itself after this long, should the parent not stop it.
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(600);
/// How long the parent waits for a child's next line. Without quick repair
/// an open of a 3.6 GiB file took 26 s from a cold cache on the machine of
/// BENCHMARKS.md, so about two minutes for the largest store.
const CHILD_ANSWER_TIMEOUT: Duration = Duration::from_secs(600);

const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

/// How a child's store was left before the timed open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Case {
    /// SIGKILL once the writes are done and the engine has checkpointed.
    KillIdle,
    /// SIGKILL during writes, half a checkpoint interval after the last
    /// checkpoint: the open replays the log.
    KillBusy,
    /// `Engine::shutdown` after the writes.
    Clean,
}

impl Case {
    fn label(self) -> &'static str {
        match self {
            Case::KillIdle => "SIGKILL, idle",
            Case::KillBusy => "SIGKILL, during writes",
            Case::Clean => "clean stop",
        }
    }

    fn role(self) -> ChildRole {
        match self {
            Case::KillIdle => ChildRole::WriteIdle,
            Case::KillBusy => ChildRole::WriteBusy,
            Case::Clean => ChildRole::WriteClean,
        }
    }
}

/// What fills the stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Fill {
    /// Reservations of 100 lines: reservations, events and deadlines, the
    /// tables that grow with a shop's traffic. `Engine::open` reads none of
    /// them in full.
    Orders,
    /// Products of about 75 KB (long descriptions, 64 attributes).
    /// `Engine::open` reads every product to load the stock ledger, so even
    /// a clean restart takes time in proportion to the catalog.
    Catalog,
}

/// The page cache before the timed open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Cache {
    /// `sync`, then every file of the store read, just before.
    Warm,
    /// `sync; echo 3 > /proc/sys/vm/drop_caches` just before.
    Cold,
}

/// What a `mercato bench restart-child` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ChildRole {
    /// Writes, waits for a checkpoint, says "ready" and waits to be killed.
    WriteIdle,
    /// Writes until killed, reporting as it goes.
    WriteBusy,
    /// Writes, waits for a checkpoint, shuts the engine down and exits.
    WriteClean,
    /// Times `Engine::open`, checks a write, shuts down and exits.
    Open,
}

impl ChildRole {
    fn name(self) -> &'static str {
        match self {
            ChildRole::WriteIdle => "write-idle",
            ChildRole::WriteBusy => "write-busy",
            ChildRole::WriteClean => "write-clean",
            ChildRole::Open => "open",
        }
    }
}

/// Everything `mercato bench restart` was asked to do.
#[derive(Debug)]
pub(crate) struct RestartOptions {
    pub(crate) sizes_gib: Vec<f64>,
    pub(crate) cases: Vec<Case>,
    pub(crate) runs: usize,
    pub(crate) cold: bool,
    pub(crate) fill: Fill,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) keep: bool,
    pub(crate) reuse: bool,
    pub(crate) label: Option<String>,
    pub(crate) json: bool,
    pub(crate) binary: PathBuf,
}

/// The results of a run: `--json` prints this.
#[derive(Debug, Serialize)]
struct RestartReport {
    label: Option<String>,
    fill: Fill,
    /// Why there are no cold-cache figures, when there are none.
    cold_cache_skipped: Option<String>,
    stores: Vec<StoreReport>,
}

#[derive(Debug, Serialize)]
struct StoreReport {
    size_gib: f64,
    file_bytes: u64,
    fill: FillReport,
    restarts: Vec<RestartRun>,
    /// The synced redb commits (checkpoints) of the children that write a
    /// little at a time: each after a flush of 15 writes, or after 100
    /// writes and a checkpoint interval. What quick repair adds to a
    /// checkpoint shows here.
    checkpoint_ms: Summary,
    /// The checkpoints of the children killed during writes: each after a
    /// checkpoint interval of writes as fast as the engine takes them.
    busy_checkpoint_ms: Summary,
    /// Log bytes synced since the last checkpoint when the busy child was
    /// killed: what the open replays.
    busy_log_bytes: Summary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FillReport {
    /// Reservations or products written.
    commands: u64,
    /// The data in the file, estimated from the file's growth: redb grows
    /// the file when it is full, so the bytes per command are the file's
    /// length at its last growth over the commands written by then.
    data_bytes_estimate: u64,
    seconds: f64,
    reused: bool,
}

#[derive(Debug, Serialize)]
struct RestartRun {
    case: Case,
    cache: Cache,
    /// `Engine::open` in the child, from the call to its return.
    open_ms: f64,
    /// From spawning the child to its answer (exec, open, the check).
    process_ms: f64,
    /// Writes acknowledged to the writing child before it was stopped.
    writes_acknowledged: u64,
    /// SIGKILL during writes: log bytes synced since the last checkpoint.
    log_bytes: Option<u64>,
    /// Whether the last write reported acknowledged was found after the open.
    write_found: bool,
    /// The machine's one-minute load average just before the open: other
    /// work on the machine shows here.
    load_average: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    count: usize,
    median: f64,
    p90: f64,
    max: f64,
}

impl Summary {
    fn of(values: &[f64]) -> Summary {
        if values.is_empty() {
            return Summary::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |quantile: f64| {
            let index = ((sorted.len() - 1) as f64 * quantile).round() as usize;
            sorted[index]
        };
        let middle = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        } else {
            sorted[middle]
        };
        Summary {
            count: sorted.len(),
            median,
            p90: at(0.9),
            max: sorted[sorted.len() - 1],
        }
    }
}

/// Runs the benchmark. Answers whether every acknowledged write was found
/// after every restart.
pub(crate) fn run(options: &RestartOptions) -> Result<bool, Error> {
    let cold_cache_skipped = if !options.cold {
        Some("--no-cold".to_owned())
    } else {
        match fs::OpenOptions::new().write(true).open(DROP_CACHES) {
            Ok(_) => None,
            Err(error) => {
                let reason = format!("cannot write {DROP_CACHES}: {error}");
                eprintln!("[restart] {reason}: cold-cache runs skipped");
                Some(reason)
            }
        }
    };
    let caches: &[Cache] = if cold_cache_skipped.is_none() {
        &[Cache::Warm, Cache::Cold]
    } else {
        &[Cache::Warm]
    };
    let root = Root::new(options)?;
    let outcome = check_free_space(root.path(), options)
        .and_then(|()| measure(root.path(), options, caches, cold_cache_skipped));
    // The stores go on failure too (a temp dir would, when dropped).
    let finished = root.finish();
    let (report, all_found) = outcome?;
    finished?;
    if options.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report, caches);
    }
    Ok(all_found)
}

/// Every store and every case: the report, and whether every acknowledged
/// write was found.
fn measure(
    root: &Path,
    options: &RestartOptions,
    caches: &[Cache],
    cold_cache_skipped: Option<String>,
) -> Result<(RestartReport, bool), Error> {
    let mut report = RestartReport {
        label: options.label.clone(),
        fill: options.fill,
        cold_cache_skipped,
        stores: Vec::new(),
    };
    let mut all_found = true;
    for &size_gib in &options.sizes_gib {
        let paths = StorePaths::new(root, size_gib);
        let fill = prepare_store(&paths, size_gib, options)?;
        let file_bytes = fs::metadata(&paths.filled)?.len();
        eprintln!(
            "[restart] store of {size_gib} GiB: file {:.3} GiB, data about {:.3} GiB, {} {} ({})",
            file_bytes as f64 / GIB,
            fill.data_bytes_estimate as f64 / GIB,
            fill.commands,
            match options.fill {
                Fill::Orders => "reservations",
                Fill::Catalog => "products",
            },
            if fill.reused {
                "reused".to_owned()
            } else {
                format!("filled in {:.1} s", fill.seconds)
            },
        );
        let mut restarts = Vec::new();
        let mut checkpoints = Vec::new();
        let mut busy_checkpoints = Vec::new();
        for &case in &options.cases {
            for &cache in caches {
                for _ in 0..options.runs {
                    let run = restart_once(
                        &options.binary,
                        &paths,
                        case,
                        cache,
                        if case == Case::KillBusy {
                            &mut busy_checkpoints
                        } else {
                            &mut checkpoints
                        },
                    )?;
                    eprintln!(
                        "[restart]   {:<24} {:<5} open {:>9.1} ms  (process {:.1} ms, {} writes{}, load {:.2})",
                        case.label(),
                        format!("{cache:?}").to_lowercase(),
                        run.open_ms,
                        run.process_ms,
                        run.writes_acknowledged,
                        run.log_bytes
                            .map(|bytes| format!(", {:.1} MB of log", bytes as f64 / 1e6))
                            .unwrap_or_default(),
                        run.load_average.unwrap_or(f64::NAN),
                    );
                    if !run.write_found {
                        eprintln!("[restart]   the last acknowledged write is missing!");
                        all_found = false;
                    }
                    restarts.push(run);
                }
            }
        }
        report.stores.push(StoreReport {
            size_gib,
            file_bytes,
            fill,
            checkpoint_ms: Summary::of(&checkpoints),
            busy_checkpoint_ms: Summary::of(&busy_checkpoints),
            busy_log_bytes: Summary::of(
                &restarts
                    .iter()
                    .filter_map(|run| run.log_bytes.map(|bytes| bytes as f64))
                    .collect::<Vec<_>>(),
            ),
            restarts,
        });
    }
    Ok((report, all_found))
}

/// The directory holding the stores, removed at the end unless kept.
enum Root {
    Temporary(tempfile::TempDir),
    Given { path: PathBuf, remove: Vec<PathBuf> },
    Kept(PathBuf),
}

impl Root {
    fn new(options: &RestartOptions) -> Result<Root, Error> {
        match &options.dir {
            Some(dir) => {
                fs::create_dir_all(dir)?;
                if options.keep {
                    return Ok(Root::Kept(dir.clone()));
                }
                let remove = options
                    .sizes_gib
                    .iter()
                    .flat_map(|&size_gib| StorePaths::new(dir, size_gib).all())
                    .collect();
                Ok(Root::Given {
                    path: dir.clone(),
                    remove,
                })
            }
            None => {
                let directory = tempfile::Builder::new()
                    .prefix("mercato-restart-")
                    .tempdir_in(std::env::temp_dir())?;
                if options.keep {
                    Ok(Root::Kept(directory.keep()))
                } else {
                    Ok(Root::Temporary(directory))
                }
            }
        }
    }

    fn path(&self) -> &Path {
        match self {
            Root::Temporary(directory) => directory.path(),
            Root::Given { path, .. } | Root::Kept(path) => path,
        }
    }

    fn finish(self) -> Result<(), Error> {
        match self {
            Root::Temporary(directory) => directory.close()?,
            Root::Given { remove, .. } => {
                for path in remove {
                    if path.is_dir() {
                        fs::remove_dir_all(path)?;
                    } else if path.exists() {
                        fs::remove_file(path)?;
                    }
                }
            }
            Root::Kept(path) => eprintln!("[restart] stores kept in {}", path.display()),
        }
        Ok(())
    }
}

/// Where one store's files go.
struct StorePaths {
    /// The store the children write to and open.
    live: PathBuf,
    /// A copy of redb's file as the fill left it.
    filled: PathBuf,
    /// The fill's report, written once the fill is complete (`--reuse`).
    marker: PathBuf,
}

impl StorePaths {
    fn new(root: &Path, size_gib: f64) -> StorePaths {
        let name = format!("store-{size_gib}gib");
        StorePaths {
            live: root.join(&name),
            filled: root.join(format!("{name}.filled.redb")),
            marker: root.join(format!("{name}.fill.json")),
        }
    }

    fn all(self) -> [PathBuf; 3] {
        [self.live, self.filled, self.marker]
    }

    /// Puts the store back as the fill left it, synced, so that the writes
    /// of the children killed during writes (tens of megabytes each) do not
    /// grow it from run to run.
    fn restore(&self) -> Result<(), Error> {
        fs::remove_dir_all(&self.live)?;
        fs::create_dir_all(&self.live)?;
        let file = self.live.join(mercato_engine::DATABASE_FILE_NAME);
        fs::copy(&self.filled, &file)?;
        File::open(&file)?.sync_all()?;
        Ok(())
    }
}

/// Refuses to start when the stores might not fit: redb's file can reach
/// twice its data (it grows by doubling, then by 4 GiB regions), and each
/// store is kept twice (the live one and the copy of the fill).
fn check_free_space(root: &Path, options: &RestartOptions) -> Result<(), Error> {
    let statistics = nix::sys::statvfs::statvfs(root)
        .map_err(|error| format!("cannot read the free space of {}: {error}", root.display()))?;
    let free_bytes = statistics.blocks_available() as f64 * statistics.fragment_size() as f64;
    let needed_bytes = options
        .sizes_gib
        .iter()
        .map(|size_gib| (size_gib * 4.0 + 0.5) * GIB)
        .sum::<f64>();
    if free_bytes < needed_bytes {
        return Err(format!(
            "{} has {:.1} GiB free; these stores may need {:.1} GiB",
            root.display(),
            free_bytes / GIB,
            needed_bytes / GIB
        )
        .into());
    }
    Ok(())
}

/// Fills `store` to `size_gib`, or with `--reuse` takes the store a past
/// run filled.
fn prepare_store(
    paths: &StorePaths,
    size_gib: f64,
    options: &RestartOptions,
) -> Result<FillReport, Error> {
    if options.reuse && paths.marker.exists() && paths.filled.exists() {
        let mut fill: FillReport = serde_json::from_slice(&fs::read(&paths.marker)?)?;
        fill.reused = true;
        paths.restore()?;
        return Ok(fill);
    }
    for path in [&paths.marker, &paths.filled] {
        if path.exists() {
            fs::remove_file(path)?;
        }
    }
    if paths.live.exists() {
        fs::remove_dir_all(&paths.live)?;
    }
    eprintln!(
        "[restart] filling a store of {size_gib} GiB in {}",
        paths.live.display()
    );
    let fill = fill_store(&paths.live, (size_gib * GIB) as u64, options.fill)?;
    fs::copy(
        paths.live.join(mercato_engine::DATABASE_FILE_NAME),
        &paths.filled,
    )?;
    File::open(&paths.filled)?.sync_all()?;
    fs::write(&paths.marker, serde_json::to_vec(&fill)?)?;
    Ok(fill)
}

/// Writes until redb's file is at least `size_bytes` long and about
/// [`FILL_FRACTION`] of it holds data. Periodic durability: nothing waits
/// for the disk, and a clean shutdown ends the fill.
fn fill_store(store: &Path, size_bytes: u64, fill: Fill) -> Result<FillReport, Error> {
    let started = Instant::now();
    let mut config = EngineConfig::new(store);
    config.durability = Durability::periodic();
    let engine = Engine::open(config)?;
    let stock_products = (1..=STOCK_PRODUCTS)
        .map(|id| NewProduct {
            id: Some(ProductId(id)),
            name: format!("Product {id}"),
            price: Decimal::new(100, 2),
            on_hand: STOCK_ON_HAND,
            ..NewProduct::default()
        })
        .collect();
    engine.import_products(stock_products).wait()?;
    let file = store.join(mercato_engine::DATABASE_FILE_NAME);
    let mut growth = Growth::new(fs::metadata(&file)?.len());
    let mut in_flight = VecDeque::new();
    let mut commands = 0u64;
    let mut next_check = 0u64;
    loop {
        if commands >= next_check {
            // Every answered command is committed, so the file's length
            // covers it; only those count.
            let answered = commands - in_flight.len() as u64;
            let length = fs::metadata(&file)?.len();
            growth.observe(length, answered);
            if length >= size_bytes
                && growth.data_bytes(answered) as f64 >= FILL_FRACTION * length as f64
            {
                break;
            }
            next_check = commands
                + match fill {
                    Fill::Orders => 1_024,
                    Fill::Catalog => FILL_IMPORT_PRODUCTS as u64,
                };
        }
        match fill {
            Fill::Orders => {
                let first = commands % STOCK_PRODUCTS;
                let items = (0..FILL_LINES as u64)
                    .map(|line| ReservationLine {
                        product_id: ProductId((first + line) % STOCK_PRODUCTS + 1),
                        quantity: 1,
                    })
                    .collect();
                in_flight.push_back(engine.reserve(ReserveRequest {
                    order_id: OrderId(Uuid::now_v7()),
                    items,
                    ttl: Some(RESERVATION_TTL),
                }));
                commands += 1;
                if in_flight.len() >= FILL_IN_FLIGHT_MAX
                    && let Some(pending) = in_flight.pop_front()
                {
                    pending.wait()?;
                }
            }
            Fill::Catalog => {
                let products = (0..FILL_IMPORT_PRODUCTS as u64)
                    .map(|n| catalog_product(STOCK_PRODUCTS + commands + n + 1))
                    .collect();
                // One import at a time: each is tens of megabytes.
                engine.import_products(products).wait()?;
                commands += FILL_IMPORT_PRODUCTS as u64;
            }
        }
    }
    for pending in in_flight {
        pending.wait()?;
    }
    engine.flush().wait()?;
    engine.shutdown();
    drop(engine);
    let length = fs::metadata(&file)?.len();
    growth.observe(length, commands);
    Ok(FillReport {
        commands,
        data_bytes_estimate: growth.data_bytes(commands),
        seconds: started.elapsed().as_secs_f64(),
        reused: false,
    })
}

/// The file's growth, from which the data it holds is estimated.
struct Growth {
    length: u64,
    bytes_per_command: Option<f64>,
}

impl Growth {
    /// Growths of smaller files say more about redb's fixed overhead than
    /// about the commands.
    const CALIBRATION_LENGTH_MIN: u64 = 16 << 20;

    fn new(length: u64) -> Growth {
        Growth {
            length,
            bytes_per_command: None,
        }
    }

    /// `length` is the file's length once `commands` were committed.
    fn observe(&mut self, length: u64, commands: u64) {
        if length > self.length {
            // redb grows the file when it has no room left: the old length
            // was about full.
            if commands > 0 && self.length >= Self::CALIBRATION_LENGTH_MIN {
                self.bytes_per_command = Some(self.length as f64 / commands as f64);
            }
            self.length = length;
        }
    }

    fn data_bytes(&self, commands: u64) -> u64 {
        self.bytes_per_command
            .map_or(0, |bytes| (bytes * commands as f64) as u64)
    }
}

/// A product of about 75 KB: the longest description and the most
/// attributes, each as long as allowed.
fn catalog_product(id: u64) -> NewProduct {
    let text = |length: usize| -> String {
        format!("{id} lorem ipsum dolor sit amet ")
            .chars()
            .cycle()
            .take(length)
            .collect()
    };
    let attributes = (0..PRODUCT_ATTRIBUTES_MAX)
        .map(|index| {
            let key: String = format!("attribute {index} ")
                .chars()
                .chain(std::iter::repeat('k'))
                .take(PRODUCT_ATTRIBUTE_KEY_LENGTH_MAX)
                .collect();
            (key, text(PRODUCT_ATTRIBUTE_VALUE_LENGTH_MAX))
        })
        .collect();
    NewProduct {
        id: Some(ProductId(id)),
        name: format!("Catalog product {id}"),
        description: Some(text(PRODUCT_DESCRIPTION_LENGTH_MAX)),
        category: Some(format!("category {}", id % 100)),
        price: Decimal::new(999, 2),
        attributes,
        ..NewProduct::default()
    }
}

/// One measurement: a writing child leaves the store as `case` says, the
/// page cache is made `cache`, and an opening child times `Engine::open`.
fn restart_once(
    binary: &Path,
    paths: &StorePaths,
    case: Case,
    cache: Cache,
    checkpoints: &mut Vec<f64>,
) -> Result<RestartRun, Error> {
    if case == Case::KillBusy {
        paths.restore()?;
    }
    let store = paths.live.as_path();
    let mut writer = ChildProcess::spawn(binary, case.role(), store, None)?;
    let status = match case {
        Case::KillIdle => {
            let status: WriterStatus = writer.answer()?;
            writer.kill()?;
            status
        }
        Case::KillBusy => loop {
            let status: WriterStatus = writer.answer()?;
            if status.writing_ms >= BUSY_WARMUP.as_millis() as u64
                && status.since_checkpoint_ms >= BUSY_KILL_AFTER_CHECKPOINT.as_millis() as u64
            {
                writer.kill()?;
                break status;
            }
        },
        Case::Clean => {
            let status: WriterStatus = writer.answer()?;
            writer.wait_success()?;
            status
        }
    };
    checkpoints.extend_from_slice(&status.checkpoint_ms);
    // Both start with `sync`, so that neither open waits for the write-back
    // of what the writing child left (on this machine that added up to
    // tens of milliseconds to a warm open).
    sync()?;
    match cache {
        Cache::Warm => read_all(store)?,
        Cache::Cold => drop_caches()?,
    }
    let load_average = load_average();
    let started = Instant::now();
    let mut opener = ChildProcess::spawn(binary, ChildRole::Open, store, status.last_order)?;
    let opened: OpenStatus = opener.answer()?;
    let process_ms = started.elapsed().as_secs_f64() * 1e3;
    opener.wait_success()?;
    Ok(RestartRun {
        case,
        cache,
        open_ms: opened.open_ms,
        process_ms,
        writes_acknowledged: status.acknowledged,
        log_bytes: (case == Case::KillBusy).then_some(status.log_bytes),
        write_found: opened.write_found,
        load_average,
    })
}

fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads every file of the store, so that the open finds it in the cache.
fn read_all(store: &Path) -> Result<(), Error> {
    for entry in fs::read_dir(store)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::io::copy(&mut File::open(entry.path())?, &mut std::io::sink())?;
        }
    }
    Ok(())
}

/// Writes back every dirty page of the machine.
fn sync() -> Result<(), Error> {
    let synced = Command::new("sync").status()?;
    if !synced.success() {
        return Err(format!("sync failed: {synced}").into());
    }
    Ok(())
}

/// Empties the page cache (after [`sync`], nothing in it is dirty).
fn drop_caches() -> Result<(), Error> {
    fs::write(DROP_CACHES, "3\n")
        .map_err(|error| format!("cannot write {DROP_CACHES}: {error}"))?;
    Ok(())
}

/// A `mercato bench restart-child`, killed on drop if still running.
struct ChildProcess {
    child: Child,
    lines: Receiver<String>,
}

impl ChildProcess {
    fn spawn(
        binary: &Path,
        role: ChildRole,
        store: &Path,
        expect_order: Option<Uuid>,
    ) -> Result<ChildProcess, Error> {
        let mut command = Command::new(binary);
        command
            .args(["bench", "restart-child", "--role"])
            .arg(role.name())
            .arg("--data-dir")
            .arg(store)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(order) = expect_order {
            command.arg("--expect-order").arg(order.to_string());
        }
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("the child has no stdout")?;
        let (sender, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("restart-child-stdout".to_owned())
            .spawn(move || forward_lines(stdout, &sender))?;
        Ok(ChildProcess { child, lines })
    }

    /// The child's next line, as JSON.
    fn answer<T: for<'de> Deserialize<'de>>(&mut self) -> Result<T, Error> {
        match self.lines.recv_timeout(CHILD_ANSWER_TIMEOUT) {
            Ok(line) => Ok(serde_json::from_str(&line)
                .map_err(|error| format!("the child said {line:?}: {error}"))?),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "no answer from the child within {} s",
                CHILD_ANSWER_TIMEOUT.as_secs()
            )
            .into()),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait()?;
                Err(format!("the child exited ({status}) without answering").into())
            }
        }
    }

    fn kill(&mut self) -> Result<(), Error> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Waits for the child to exit by itself, with success.
    fn wait_success(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + CHILD_ANSWER_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if status.success() {
                    return Ok(());
                }
                return Err(format!("the child exited with {status}").into());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the child did not exit within {} s",
                    CHILD_ANSWER_TIMEOUT.as_secs()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn forward_lines(stdout: ChildStdout, sender: &mpsc::Sender<String>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else {
            return;
        };
        if sender.send(line).is_err() {
            return;
        }
    }
}

/// What a writing child reports: once when ready (idle, clean), or every
/// few milliseconds (busy).
#[derive(Debug, Default, Serialize, Deserialize)]
struct WriterStatus {
    acknowledged: u64,
    /// The last write acknowledged, which must survive the restart.
    last_order: Option<Uuid>,
    writing_ms: u64,
    since_checkpoint_ms: u64,
    /// Log bytes synced since the last checkpoint.
    log_bytes: u64,
    /// The time of every synced redb commit so far.
    checkpoint_ms: Vec<f64>,
}

/// What the opening child reports.
#[derive(Debug, Serialize, Deserialize)]
struct OpenStatus {
    open_ms: f64,
    write_found: bool,
}

/// Runs a `mercato bench restart-child`.
pub(crate) fn child(
    role: ChildRole,
    store: &Path,
    expect_order: Option<Uuid>,
) -> Result<(), Error> {
    // Should the parent die, the child does not outlive it by much.
    std::thread::Builder::new()
        .name("restart-child-lifetime".to_owned())
        .spawn(|| {
            std::thread::sleep(CHILD_LIFETIME_MAX);
            eprintln!(
                "[restart-child] lived {} s: exiting",
                CHILD_LIFETIME_MAX.as_secs()
            );
            std::process::exit(3);
        })?;
    match role {
        ChildRole::Open => open_child(store, expect_order),
        ChildRole::WriteIdle | ChildRole::WriteClean => quiet_writer_child(role, store),
        ChildRole::WriteBusy => busy_writer_child(store),
    }
}

fn say<T: Serialize>(status: &T) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, status)?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

fn open_child(store: &Path, expect_order: Option<Uuid>) -> Result<(), Error> {
    let started = Instant::now();
    let engine = Engine::open(EngineConfig::new(store))?;
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    let write_found = match expect_order {
        Some(order) => engine.reservation(OrderId(order))?.is_some(),
        None => true,
    };
    engine.shutdown();
    drop(engine);
    say(&OpenStatus {
        open_ms,
        write_found,
    })
}

/// Records every synced commit and the log synced since the last one.
#[derive(Default)]
struct CheckpointObserver {
    state: Mutex<CheckpointState>,
}

#[derive(Default)]
struct CheckpointState {
    commit_ms: Vec<f64>,
    last: Option<Instant>,
    log_bytes: u64,
}

impl CheckpointObserver {
    fn status(&self, started: Instant) -> WriterStatus {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        WriterStatus {
            writing_ms: started.elapsed().as_millis() as u64,
            since_checkpoint_ms: state
                .last
                .map_or(started, |last| last.max(started))
                .elapsed()
                .as_millis() as u64,
            log_bytes: state.log_bytes,
            checkpoint_ms: state.commit_ms.clone(),
            ..WriterStatus::default()
        }
    }
}

impl WriterObserver for CheckpointObserver {
    fn batch_committed(&self, report: &BatchReport) {
        if report.synced {
            let mut state = self
                .state
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            state
                .commit_ms
                .push(report.commit_latency.as_secs_f64() * 1e3);
            state.last = Some(Instant::now());
            state.log_bytes = 0;
        }
    }

    fn log_synced(&self, report: &LogSyncReport) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        state.log_bytes += report.bytes as u64;
    }
}

/// Opens the store as `mercato serve` would (immediate durability, default
/// checkpoint interval), watched by a [`CheckpointObserver`].
fn open_observed(store: &Path) -> Result<(Engine, Arc<CheckpointObserver>), Error> {
    let observer = Arc::new(CheckpointObserver::default());
    let mut config = EngineConfig::new(store);
    config.observer = Some(observer.clone());
    Ok((Engine::open(config)?, observer))
}

/// A reservation of one unit of one of the stock products.
fn reserve_one(engine: &Engine, n: u64) -> Result<Uuid, Error> {
    let order = Uuid::now_v7();
    engine
        .reserve(ReserveRequest {
            order_id: OrderId(order),
            items: vec![ReservationLine {
                product_id: ProductId(n % STOCK_PRODUCTS + 1),
                quantity: 1,
            }],
            ttl: Some(RESERVATION_TTL),
        })
        .wait()?;
    Ok(order)
}

/// Writes, lets the engine checkpoint, then says so and waits to be killed
/// (`WriteIdle`) or shuts down and exits (`WriteClean`).
fn quiet_writer_child(role: ChildRole, store: &Path) -> Result<(), Error> {
    let started = Instant::now();
    let (engine, observer) = open_observed(store)?;
    let mut acknowledged = 0u64;
    let mut last_order = None;
    for _ in 0..WRITE_ROUNDS {
        for _ in 0..WRITES_PER_ROUND {
            last_order = Some(reserve_one(&engine, acknowledged)?);
            acknowledged += 1;
        }
        // With immediate durability a flush is a checkpoint.
        engine.flush().wait()?;
    }
    for _ in 0..WRITES_AFTER_ROUNDS {
        last_order = Some(reserve_one(&engine, acknowledged)?);
        acknowledged += 1;
    }
    std::thread::sleep(engine.config().checkpoint_interval * IDLE_CHECKPOINT_INTERVALS);
    let mut status = observer.status(started);
    status.acknowledged = acknowledged;
    status.last_order = last_order;
    if role == ChildRole::WriteClean {
        engine.shutdown();
        drop(engine);
        return say(&status);
    }
    say(&status)?;
    // The parent kills this process now.
    std::thread::sleep(CHILD_LIFETIME_MAX);
    Err("not killed".into())
}

/// Writes until killed, with many writes in flight (as a loaded server
/// has), reporting every few milliseconds.
fn busy_writer_child(store: &Path) -> Result<(), Error> {
    let started = Instant::now();
    let (engine, observer) = open_observed(store)?;
    let acknowledged = Arc::new(AtomicU64::new(0));
    let last_order = Arc::new(Mutex::new(None));
    let failed = Arc::new(AtomicBool::new(false));
    {
        let engine = engine.clone();
        let acknowledged = acknowledged.clone();
        let last_order = last_order.clone();
        let failed = failed.clone();
        std::thread::Builder::new()
            .name("restart-writer".to_owned())
            .spawn(move || {
                if let Err(error) = write_pipelined(&engine, &acknowledged, &last_order) {
                    eprintln!("[restart-child] a write failed: {error}");
                    failed.store(true, Ordering::SeqCst);
                }
            })?;
    }
    loop {
        std::thread::sleep(BUSY_STATUS_INTERVAL);
        if failed.load(Ordering::SeqCst) {
            return Err("a write failed".into());
        }
        let mut status = observer.status(started);
        // The order is set once acknowledged, so the one named here was.
        status.last_order = *last_order
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        status.acknowledged = acknowledged.load(Ordering::SeqCst);
        say(&status)?;
    }
}

/// Reserves one unit at a time, [`BUSY_IN_FLIGHT_MAX`] reservations in
/// flight, until the process is killed.
fn write_pipelined(
    engine: &Engine,
    acknowledged: &AtomicU64,
    last_order: &Mutex<Option<Uuid>>,
) -> Result<(), Error> {
    let mut in_flight = VecDeque::with_capacity(BUSY_IN_FLIGHT_MAX);
    for n in 0u64.. {
        let order = Uuid::now_v7();
        let pending = engine.reserve(ReserveRequest {
            order_id: OrderId(order),
            items: vec![ReservationLine {
                product_id: ProductId(n % STOCK_PRODUCTS + 1),
                quantity: 1,
            }],
            ttl: Some(RESERVATION_TTL),
        });
        in_flight.push_back((order, pending));
        if in_flight.len() >= BUSY_IN_FLIGHT_MAX
            && let Some((order, pending)) = in_flight.pop_front()
        {
            pending.wait()?;
            *last_order
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()) = Some(order);
            acknowledged.fetch_add(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

/// The table: one row per store and case, warm and cold columns, each the
/// median of the runs (with the range when there were several).
fn print_report(report: &RestartReport, caches: &[Cache]) {
    println!();
    println!(
        "Restart time (Engine::open){}; fill: {}",
        report
            .label
            .as_deref()
            .map(|label| format!(", {label}"))
            .unwrap_or_default(),
        match report.fill {
            Fill::Orders => "orders",
            Fill::Catalog => "catalog",
        }
    );
    if let Some(reason) = &report.cold_cache_skipped {
        println!("no cold-cache runs: {reason}");
    }
    print!(
        "{:>9} {:>10} {:>10}  {:<24}",
        "size GiB", "file GiB", "data GiB", "after"
    );
    for cache in caches {
        print!(" {:>24}", format!("{cache:?} cache, ms").to_lowercase());
    }
    println!();
    for store in &report.stores {
        let cases: Vec<Case> = {
            let mut cases: Vec<Case> = Vec::new();
            for run in &store.restarts {
                if !cases.contains(&run.case) {
                    cases.push(run.case);
                }
            }
            cases
        };
        for case in cases {
            print!(
                "{:>9} {:>10.3} {:>10.3}  {:<24}",
                store.size_gib,
                store.file_bytes as f64 / GIB,
                store.fill.data_bytes_estimate as f64 / GIB,
                case.label()
            );
            for &cache in caches {
                let times: Vec<f64> = store
                    .restarts
                    .iter()
                    .filter(|run| run.case == case && run.cache == cache)
                    .map(|run| run.open_ms)
                    .collect();
                print!(" {:>24}", format_times(&times));
            }
            println!();
        }
        for (name, summary) in [
            ("checkpoints", &store.checkpoint_ms),
            ("checkpoints during writes", &store.busy_checkpoint_ms),
        ] {
            if summary.count > 0 {
                println!(
                    "{:>9} {name}: {}, median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
                    "", summary.count, summary.median, summary.p90, summary.max
                );
            }
        }
        if store.busy_log_bytes.count > 0 {
            println!(
                "{:>9} log to replay after SIGKILL during writes: median {:.1} MB, max {:.1} MB",
                "",
                store.busy_log_bytes.median / 1e6,
                store.busy_log_bytes.max / 1e6
            );
        }
    }
}

fn format_times(times: &[f64]) -> String {
    let summary = Summary::of(times);
    match times.len() {
        0 => "-".to_owned(),
        1 => format!("{:.1}", summary.median),
        _ => {
            let min = times.iter().copied().fold(f64::INFINITY, f64::min);
            format!("{:.1} ({:.1}-{:.1})", summary.median, min, summary.max)
        }
    }
}
