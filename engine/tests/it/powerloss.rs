//! Power-loss test: the store and its write-ahead log on a simulated disk
//! that, at a chosen moment, forgets what a power cut would take with it.
//!
//! SIGKILL (`crash.rs`) leaves the page cache to the kernel, which writes it
//! out; a power cut does not. Here both of the engine's seams (redb's
//! `StorageBackend` and the log's `LogStorage`) go through one simulated
//! disk made of inodes (contents and length) and a directory (name to
//! inode). A workload of a few hundred operations, one at a time, runs once
//! against it while every write, set_len, sync, create, rename and remove is
//! recorded in one trace, together with the moment each operation was
//! acknowledged. The workload creates products, sets and adjusts stock,
//! reserves (one to three lines, some requests repeated), commits, releases,
//! lets reservations expire (the clock moves, then a flush), saves
//! idempotency records alone and with writes (`Write::remember`), a few of
//! them large enough to fill a log segment or to need one of their own, and
//! flushes every [`CHECKPOINT_EVERY`] operations, so checkpoints (and the
//! log's reuse of its segment) fall in the middle. After each
//! acknowledgement the state is read back (and checked against the answer):
//! that is the standard a reopened store is held to.
//!
//! Then, for every step of the trace, the disk a power cut just before that
//! step would leave is rebuilt, a fresh engine opens it, and the test checks:
//!
//! - the store opens;
//! - its state is the state after the last acknowledged operation, or after
//!   the one that was in flight (nothing acknowledged is lost, and an
//!   operation with its idempotency record is there whole or not at all);
//! - its event log is a prefix of the one written;
//! - the contract's invariants 1 to 3, the third by replaying the event log
//!   (`check_log_matches_stock`).
//!
//! Two kinds of power cut, in the manner of redb's crash-consistency test and
//! of LazyFS as Jepsen uses it:
//!
//! - [`Loss::Unsynced`]: only what was synced survives. A file's bytes and
//!   length are those of its last `sync_data`; the directory is as of its
//!   last `sync_names`.
//! - [`Loss::Torn`]: what was synced, plus some of what was not, chosen by a
//!   random generator seeded per step: a prefix of the unsynced operations,
//!   or an arbitrary subset of the unsynced writes and lengths, or all of
//!   them but one; a write kept may be torn (only a prefix of its bytes,
//!   cut at any byte, which is what redb assumes of the media). Directory
//!   operations survive as a prefix, in order, as a journaling file system
//!   keeps them.
//!
//! Every step is checked with both kinds: once with the first, and with the
//! second once per step, or [`TORN_VARIANTS_FULL`] times with different
//! choices when `MERCATO_POWERLOSS_FULL=1`.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash as _, Hasher as _};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mercato_engine::{
    Clock as _, Engine, EngineConfig, Error, EventEnvelope, LogFile, LogStorage, ManualClock,
    PAGE_LIMIT_MAX, ProductId, Reservation, ReservationStatus, Stock, StorageBackend, Timestamp,
    Write,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::{START, check_log_matches_stock, order, product, request};

/// Operations in the workload.
const OPERATIONS: usize = 300;
/// A synced commit (a checkpoint of the log) every this many operations.
const CHECKPOINT_EVERY: usize = 40;
/// Products created at the start; two more come later.
const PRODUCTS_AT_START: u64 = 6;
const PRODUCTS_MAX: u64 = 8;
/// Idempotency records outlive the workload (its clock moves a few hours).
const RECORD_TTL: Duration = Duration::from_secs(86_400);
const SEED: u64 = 0x006d_6572_6361_746f;
/// With `MERCATO_POWERLOSS_FULL=1`, torn power cuts tried at each step.
const TORN_VARIANTS_FULL: u64 = 8;
const FULL_VARIABLE: &str = "MERCATO_POWERLOSS_FULL";
/// The bytes of an idempotency record shown in messages.
const RECORD_SHOWN_MAX: usize = 80;
/// Failures listed in one line each when the test fails, and in full.
const FAILURE_SUMMARIES_MAX: usize = 100;
const FAILURES_SHOWN_MAX: usize = 10;

#[test]
fn acknowledged_writes_survive_power_loss_at_every_step() {
    let started = Instant::now();
    let recorded = record_workload();
    let recorded_in = started.elapsed();
    let full = std::env::var_os(FULL_VARIABLE).is_some_and(|value| value == "1");
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut checked = [0_usize; 2];
    let mut replay = Replay::new();
    let trace = &recorded.trace;
    for point in 0..=trace.len() {
        // A power cut just before step `point`; `trace.len()` is one after
        // the workload has shut down.
        if trace.get(point).is_none_or(Step::is_disk_operation) {
            let torn_variants = if full { TORN_VARIANTS_FULL } else { 1 };
            let losses = std::iter::once(Loss::Unsynced)
                .chain((0..torn_variants).map(|variant| Loss::Torn { variant }));
            for loss in losses {
                checked[loss.mode()] += 1;
                if let Err(problem) = check_power_loss(&recorded, &replay, point, loss, dir.path())
                {
                    let summary = format!(
                        "step {point} ({}), {loss}: {}",
                        trace
                            .get(point)
                            .map_or_else(|| "the end".to_owned(), ToString::to_string),
                        problem.lines().next().unwrap_or_default()
                    );
                    let details = describe_failure(&recorded, &replay, point, loss, &problem);
                    failures.push((summary, details));
                }
            }
        }
        if point < trace.len() {
            replay.advance(trace, point);
        }
    }
    println!(
        "power loss: {} operations, {} trace steps ({} disk operations) recorded in {:.1?}; \
         checked {} power cuts losing every unsynced write (mode 1) and {} keeping some, \
         torn (mode 2){} in {:.1?}; {} failed",
        recorded.operations.len(),
        trace.len(),
        trace.iter().filter(|step| step.is_disk_operation()).count(),
        recorded_in,
        checked[0],
        checked[1],
        if full {
            ""
        } else {
            " (one choice each; MERCATO_POWERLOSS_FULL=1 for more)"
        },
        started.elapsed(),
        failures.len(),
    );
    if !failures.is_empty() {
        let summaries = failures
            .iter()
            .take(FAILURE_SUMMARIES_MAX)
            .map(|(summary, _)| format!("- {summary}"))
            .collect::<Vec<_>>()
            .join("\n");
        let details = failures
            .iter()
            .take(FAILURES_SHOWN_MAX)
            .map(|(_, details)| details.as_str())
            .collect::<Vec<_>>()
            .join("\n\n");
        panic!(
            "{} of the power cuts lost acknowledged writes or broke an invariant:\n{summaries}\n\n\
             The first in detail:\n\n{details}",
            failures.len()
        );
    }
}
// ---------------------------------------------------------------------------
// The simulated disk.

/// The inode of the store (redb's file). Its name is durable from the start:
/// it is outside the log's directory.
const STORE: usize = 0;

/// One step of the trace: an operation on the disk, or the acknowledgement
/// of a workload operation (`op` indexes [`Recorded::operations`]).
#[derive(Clone, Debug)]
enum Step {
    Write {
        inode: usize,
        offset: u64,
        data: Vec<u8>,
    },
    SetLen {
        inode: usize,
        len: u64,
    },
    SyncData {
        inode: usize,
    },
    /// A new, empty inode under `name`. (Creating over an existing name
    /// truncates that file instead, as `O_TRUNC` does: a `SetLen` to 0.)
    Create {
        name: String,
        inode: usize,
    },
    Rename {
        from: String,
        to: String,
    },
    Remove {
        name: String,
    },
    SyncNames,
    Acknowledged {
        op: usize,
    },
}

impl Step {
    fn is_disk_operation(&self) -> bool {
        !matches!(self, Step::Acknowledged { .. })
    }
}

struct File(usize);

impl fmt::Display for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            STORE => write!(f, "the store"),
            inode => write!(f, "log inode {inode}"),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Write {
                inode,
                offset,
                data,
            } => write!(
                f,
                "write of {} bytes at {offset} to {}",
                data.len(),
                File(*inode)
            ),
            Step::SetLen { inode, len } => write!(f, "set_len({len}) of {}", File(*inode)),
            Step::SyncData { inode } => write!(f, "sync_data of {}", File(*inode)),
            Step::Create { name, inode } => write!(f, "create {name} ({})", File(*inode)),
            Step::Rename { from, to } => write!(f, "rename {from} to {to}"),
            Step::Remove { name } => write!(f, "remove {name}"),
            Step::SyncNames => write!(f, "sync_names"),
            Step::Acknowledged { op } => write!(f, "acknowledgement of op {op}"),
        }
    }
}

#[derive(Debug, Default)]
struct DiskState {
    /// Each inode's contents as the running program sees them; the length
    /// is the vector's.
    inodes: Vec<Vec<u8>>,
    /// The log's directory as the running program sees it.
    names: BTreeMap<String, usize>,
    /// Every step, when recording.
    trace: Option<Vec<Step>>,
}

impl DiskState {
    fn record(&mut self, step: impl FnOnce() -> Step) {
        if let Some(trace) = &mut self.trace {
            trace.push(step());
        }
    }

    fn write(&mut self, inode: usize, offset: u64, data: &[u8]) {
        self.record(|| Step::Write {
            inode,
            offset,
            data: data.to_vec(),
        });
        write_at(&mut self.inodes[inode], offset, data);
    }

    fn set_len(&mut self, inode: usize, len: u64) {
        self.record(|| Step::SetLen { inode, len });
        resize(&mut self.inodes[inode], len);
    }

    fn inode(&self, name: &str) -> io::Result<usize> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no log file {name}")))
    }
}

fn write_at(contents: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = usize::try_from(offset).unwrap();
    let end = start + data.len();
    if contents.len() < end {
        contents.resize(end, 0);
    }
    contents[start..end].copy_from_slice(data);
}

fn resize(contents: &mut Vec<u8>, len: u64) {
    contents.resize(usize::try_from(len).unwrap(), 0);
}

/// A disk shared by the store ([`StoreFile`]) and the log ([`LogDirectory`]).
#[derive(Debug)]
struct SimDisk {
    state: Mutex<DiskState>,
}

impl SimDisk {
    /// An empty disk (an empty store file, no log files) that records.
    fn recording() -> Arc<SimDisk> {
        Arc::new(SimDisk {
            state: Mutex::new(DiskState {
                inodes: vec![Vec::new()],
                names: BTreeMap::new(),
                trace: Some(Vec::new()),
            }),
        })
    }

    /// A disk holding `image`, all of it durable, that does not record.
    fn restored(image: Image) -> Arc<SimDisk> {
        Arc::new(SimDisk {
            state: Mutex::new(DiskState {
                inodes: image.inodes,
                names: image.names,
                trace: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn acknowledge(&self, op: usize) {
        self.lock().record(|| Step::Acknowledged { op });
    }

    fn take_trace(&self) -> Vec<Step> {
        self.lock().trace.take().expect("a recording disk")
    }
}

#[derive(Debug)]
struct StoreFile(Arc<SimDisk>);

impl StorageBackend for StoreFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.lock().inodes[STORE].len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let state = self.0.lock();
        let contents = &state.inodes[STORE];
        let start = usize::try_from(offset).unwrap();
        let bytes = contents
            .get(start..start + out.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        out.copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.lock().set_len(STORE, len);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.lock().record(|| Step::SyncData { inode: STORE });
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.lock().write(STORE, offset, data);
        Ok(())
    }
}

#[derive(Debug)]
struct LogDirectory(Arc<SimDisk>);

impl LogStorage for LogDirectory {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.0.lock().names.keys().cloned().collect())
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        let state = self.0.lock();
        Ok(state.inodes[state.inode(name)?].clone())
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn LogFile>> {
        let mut state = self.0.lock();
        let inode = match state.names.get(name) {
            Some(&inode) => {
                state.set_len(inode, 0);
                inode
            }
            None => {
                let inode = state.inodes.len();
                state.record(|| Step::Create {
                    name: name.to_owned(),
                    inode,
                });
                state.inodes.push(Vec::new());
                state.names.insert(name.to_owned(), inode);
                inode
            }
        };
        Ok(Box::new(LogFileHandle {
            disk: self.0.clone(),
            inode,
        }))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = self.0.lock();
        let inode = state.inode(from)?;
        state.record(|| Step::Rename {
            from: from.to_owned(),
            to: to.to_owned(),
        });
        state.names.remove(from);
        state.names.insert(to.to_owned(), inode);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = self.0.lock();
        state.inode(name)?;
        state.record(|| Step::Remove {
            name: name.to_owned(),
        });
        state.names.remove(name);
        Ok(())
    }

    fn sync_names(&self) -> io::Result<()> {
        self.0.lock().record(|| Step::SyncNames);
        Ok(())
    }

    fn describe(&self, name: &str) -> String {
        format!("simulated log file {name}")
    }
}

/// An open log file: its inode, whatever its name becomes.
#[derive(Debug)]
struct LogFileHandle {
    disk: Arc<SimDisk>,
    inode: usize,
}

impl LogFile for LogFileHandle {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.disk.lock().write(self.inode, offset, data);
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.disk.lock().set_len(self.inode, len);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let inode = self.inode;
        self.disk.lock().record(|| Step::SyncData { inode });
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Power cuts.

/// What a power cut keeps of what was not synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loss {
    /// Nothing (mode 1).
    Unsynced,
    /// Some of it, chosen at random, with torn writes (mode 2); the variant
    /// seeds the choice along with the step.
    Torn { variant: u64 },
}

impl Loss {
    fn mode(self) -> usize {
        match self {
            Loss::Unsynced => 0,
            Loss::Torn { .. } => 1,
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loss::Unsynced => write!(f, "mode 1 (every unsynced operation lost)"),
            Loss::Torn { variant } => write!(
                f,
                "mode 2 (some unsynced operations kept, writes torn; variant {variant})"
            ),
        }
    }
}

/// The files a power cut leaves: the store is inode 0, the log's files are
/// the rest, by name.
#[derive(Debug)]
struct Image {
    inodes: Vec<Vec<u8>>,
    names: BTreeMap<String, usize>,
}

/// The durable state of the disk, followed along the trace: what a power
/// cut at the current step keeps for certain, and what it may keep.
struct Replay {
    /// Each inode's contents as of its last sync.
    durable: Vec<Vec<u8>>,
    /// Each inode's writes and set_lens since its last sync (trace positions).
    pending: Vec<Vec<usize>>,
    /// The directory as of the last sync_names.
    names: BTreeMap<String, usize>,
    /// Creates, renames and removes since the last sync_names.
    pending_names: Vec<usize>,
    /// Workload operations acknowledged so far.
    acknowledged: usize,
}

impl Replay {
    fn new() -> Replay {
        Replay {
            durable: vec![Vec::new()],
            pending: vec![Vec::new()],
            names: BTreeMap::new(),
            pending_names: Vec::new(),
            acknowledged: 0,
        }
    }

    /// Takes step `position` of the trace into account.
    fn advance(&mut self, trace: &[Step], position: usize) {
        match &trace[position] {
            Step::Write { inode, .. } | Step::SetLen { inode, .. } => {
                self.pending[*inode].push(position);
            }
            Step::SyncData { inode } => {
                for pending in std::mem::take(&mut self.pending[*inode]) {
                    apply_to_inode(&mut self.durable[*inode], &trace[pending], None);
                }
            }
            Step::Create { inode, .. } => {
                assert_eq!(*inode, self.durable.len(), "inodes are numbered in order");
                self.durable.push(Vec::new());
                self.pending.push(Vec::new());
                self.pending_names.push(position);
            }
            Step::Rename { .. } | Step::Remove { .. } => self.pending_names.push(position),
            Step::SyncNames => {
                for pending in std::mem::take(&mut self.pending_names) {
                    apply_to_names(&mut self.names, &trace[pending]);
                }
            }
            Step::Acknowledged { op } => {
                assert_eq!(*op, self.acknowledged, "acknowledged in order");
                self.acknowledged += 1;
            }
        }
    }

    /// The disk a power cut at step `point` leaves.
    fn image(&self, trace: &[Step], point: usize, loss: Loss) -> Image {
        let kept = match loss {
            Loss::Unsynced => Vec::new(),
            Loss::Torn { variant } => {
                let seed = SEED ^ (point as u64).wrapping_mul(0x9e37_79b9) ^ variant << 48;
                self.choose_kept(trace, &mut StdRng::seed_from_u64(seed))
            }
        };
        let mut names = self.names.clone();
        for &(position, _) in &kept {
            if let Step::Create { .. } | Step::Rename { .. } | Step::Remove { .. } =
                &trace[position]
            {
                apply_to_names(&mut names, &trace[position]);
            }
        }
        // Only the store and the files with a name survive; number them
        // afresh.
        let contents = |inode: usize| {
            let mut contents = self.durable[inode].clone();
            for &(position, torn_len) in &kept {
                if let Step::Write { inode: of, .. } | Step::SetLen { inode: of, .. } =
                    &trace[position]
                    && *of == inode
                {
                    apply_to_inode(&mut contents, &trace[position], torn_len);
                }
            }
            contents
        };
        let mut image = Image {
            inodes: vec![contents(STORE)],
            names: BTreeMap::new(),
        };
        for (name, inode) in names {
            image.names.insert(name, image.inodes.len());
            image.inodes.push(contents(inode));
        }
        image
    }

    /// Picks which unsynced operations a torn power cut keeps, in trace
    /// order, each with the bytes kept of it when it is a torn write.
    fn choose_kept(&self, trace: &[Step], rng: &mut StdRng) -> Vec<(usize, Option<usize>)> {
        let data: Vec<usize> = {
            let mut data: Vec<usize> = self.pending.iter().flatten().copied().collect();
            data.sort_unstable();
            data
        };
        let mut kept: Vec<(usize, Option<usize>)> = Vec::new();
        let tear = |rng: &mut StdRng, position: usize| match &trace[position] {
            Step::Write { data, .. } if !data.is_empty() => Some(rng.random_range(0..data.len())),
            _ => None,
        };
        match rng.random_range(0..3) {
            // A prefix of everything unsynced, in the order it happened;
            // the first operation left out may be half there.
            0 => {
                let mut all: Vec<usize> = data.iter().chain(&self.pending_names).copied().collect();
                all.sort_unstable();
                let cut = rng.random_range(0..=all.len());
                kept.extend(all[..cut].iter().map(|&position| (position, None)));
                if let Some(&next) = all.get(cut)
                    && rng.random_bool(0.5)
                    && let Some(len) = tear(rng, next)
                {
                    kept.push((next, Some(len)));
                }
            }
            // Any subset of the writes and lengths, and a prefix of the
            // directory's operations; one write kept may be torn.
            1 => {
                kept.extend(
                    data.iter()
                        .filter(|_| rng.random_bool(0.5))
                        .map(|&position| (position, None)),
                );
                if !kept.is_empty() && rng.random_bool(0.5) {
                    let index = rng.random_range(0..kept.len());
                    kept[index].1 = tear(rng, kept[index].0);
                }
                let cut = rng.random_range(0..=self.pending_names.len());
                kept.extend(
                    self.pending_names[..cut]
                        .iter()
                        .map(|&position| (position, None)),
                );
            }
            // Everything, as SIGKILL would leave it, or all but one write or
            // length, lost or torn.
            _ => {
                let spoiled = (!data.is_empty() && rng.random_bool(0.8))
                    .then(|| data[rng.random_range(0..data.len())]);
                for &position in &data {
                    if Some(position) == spoiled {
                        if let Some(len) = tear(rng, position) {
                            kept.push((position, Some(len)));
                        }
                    } else {
                        kept.push((position, None));
                    }
                }
                kept.extend(self.pending_names.iter().map(|&position| (position, None)));
            }
        }
        kept.sort_unstable();
        kept
    }
}

/// Applies a write (only its first `torn_len` bytes, if given) or a set_len.
fn apply_to_inode(contents: &mut Vec<u8>, step: &Step, torn_len: Option<usize>) {
    match step {
        Step::Write { offset, data, .. } => {
            let len = torn_len.unwrap_or(data.len());
            // Nothing of a write torn to nothing arrived, not even a length.
            if len > 0 {
                write_at(contents, *offset, &data[..len]);
            }
        }
        Step::SetLen { len, .. } => resize(contents, *len),
        other => unreachable!("not a change to a file: {other}"),
    }
}

fn apply_to_names(names: &mut BTreeMap<String, usize>, step: &Step) {
    match step {
        Step::Create { name, inode } => {
            names.insert(name.clone(), *inode);
        }
        Step::Rename { from, to } => {
            let inode = names.remove(from).expect("a prefix renames what exists");
            names.insert(to.clone(), inode);
        }
        Step::Remove { name } => {
            names.remove(name);
        }
        other => unreachable!("not a change to the directory: {other}"),
    }
}

// ---------------------------------------------------------------------------
// The workload.

#[derive(Clone, Debug)]
enum Op {
    CreateProduct {
        product: u64,
        on_hand: u64,
    },
    SetStock {
        product: u64,
        on_hand: u64,
        key: Option<u64>,
    },
    AdjustStock {
        product: u64,
        delta: i64,
        key: Option<u64>,
    },
    Reserve {
        order: u128,
        lines: Vec<(u64, u64)>,
        ttl_seconds: Option<u64>,
        key: Option<u64>,
    },
    Commit {
        order: u128,
        key: Option<u64>,
    },
    Release {
        order: u128,
        key: Option<u64>,
    },
    /// `Engine::save_idempotency_record`, outside any write, of `len` bytes.
    SaveRecord {
        key: u64,
        len: usize,
    },
    /// Moves the clock, then flushes: reservations past their deadline expire.
    Expire {
        advance_seconds: u64,
    },
    /// A flush: a synced commit, so a checkpoint of the log.
    Checkpoint,
}

impl Op {
    fn key(&self) -> Option<u64> {
        match self {
            Op::SetStock { key, .. }
            | Op::AdjustStock { key, .. }
            | Op::Reserve { key, .. }
            | Op::Commit { key, .. }
            | Op::Release { key, .. } => *key,
            Op::SaveRecord { key, .. } => Some(*key),
            Op::CreateProduct { .. } | Op::Expire { .. } | Op::Checkpoint => None,
        }
    }

    fn order(&self) -> Option<u128> {
        match self {
            Op::Reserve { order, .. } | Op::Commit { order, .. } | Op::Release { order, .. } => {
                Some(*order)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::CreateProduct { product, on_hand } => {
                write!(f, "create product {product} with {on_hand} on hand")?;
            }
            Op::SetStock {
                product, on_hand, ..
            } => write!(f, "set stock of product {product} to {on_hand}")?,
            Op::AdjustStock { product, delta, .. } => {
                write!(f, "adjust stock of product {product} by {delta}")?;
            }
            Op::Reserve {
                order,
                lines,
                ttl_seconds,
                ..
            } => {
                write!(f, "reserve {lines:?} (product, quantity) for order {order}")?;
                if let Some(ttl) = ttl_seconds {
                    write!(f, " for {ttl} s")?;
                }
            }
            Op::Commit { order, .. } => write!(f, "commit order {order}")?,
            Op::Release { order, .. } => write!(f, "release order {order}")?,
            Op::SaveRecord { len, .. } => write!(f, "save an idempotency record of {len} bytes")?,
            Op::Expire { advance_seconds } => {
                write!(
                    f,
                    "advance the clock {advance_seconds} s and flush (expiries)"
                )?;
            }
            Op::Checkpoint => write!(f, "flush (a checkpoint)")?,
        }
        if let Some(key) = self.key() {
            write!(f, " with idempotency key {}", key_name(key))?;
        }
        Ok(())
    }
}

fn key_name(key: u64) -> String {
    format!("key-{key}")
}

/// The workload, chosen as it runs (commits and releases pick reservations
/// that are active in the latest state) from a fixed seed.
struct Planner {
    rng: StdRng,
    products: u64,
    orders: u128,
    keys: u64,
}

impl Planner {
    fn next(&mut self, index: usize, state: &Model) -> Op {
        if (index as u64) < PRODUCTS_AT_START
            || index == OPERATIONS / 2
            || index == OPERATIONS * 3 / 4
        {
            self.products += 1;
            return Op::CreateProduct {
                product: self.products,
                on_hand: self.rng.random_range(30..=80),
            };
        }
        if index.is_multiple_of(CHECKPOINT_EVERY) {
            return Op::Checkpoint;
        }
        // Large records: one bigger than a segment (it gets a segment of its
        // own), and a run that fills a segment (the log moves on to a new
        // one between checkpoints).
        let large = match index {
            100 => Some(100_000),
            50..=56 => Some(12_000),
            _ => None,
        };
        if let Some(len) = large {
            self.keys += 1;
            return Op::SaveRecord {
                key: self.keys,
                len,
            };
        }
        let rng = &mut self.rng;
        let kind = rng.random_range(0..100);
        // Writes (all kinds below 90) carry an idempotency key now and then.
        let key = (kind < 90 && rng.random_bool(0.3)).then(|| {
            self.keys += 1;
            self.keys
        });
        let product = rng.random_range(1..=self.products);
        let active: Vec<u128> = state
            .reservations
            .iter()
            .filter(|(_, reservation)| reservation.status == ReservationStatus::Active)
            .map(|(&order, _)| order)
            .collect();
        let pick_order = |rng: &mut StdRng| {
            if !active.is_empty() && rng.random_bool(0.85) {
                active[rng.random_range(0..active.len())]
            } else {
                rng.random_range(1..=self.orders.max(1))
            }
        };
        match kind {
            0..35 => {
                self.orders += 1;
                let first = rng.random_range(1..=self.products);
                let lines = (0..rng.random_range(1..=3_u64).min(self.products))
                    .map(|n| ((first + n - 1) % self.products + 1, rng.random_range(1..=6)))
                    .collect();
                let ttl_seconds = [None, Some(120), Some(600)][rng.random_range(0..3)];
                Op::Reserve {
                    order: self.orders,
                    lines,
                    ttl_seconds,
                    key,
                }
            }
            // The same order again: the same lines answer the existing
            // reservation, others conflict.
            35..39 => {
                let order = pick_order(rng);
                let lines = match state.reservations.get(&order) {
                    Some(reservation) if rng.random_bool(0.6) => reservation
                        .items
                        .iter()
                        .map(|line| (line.product_id.0, line.quantity))
                        .collect(),
                    _ => vec![(product, 1)],
                };
                Op::Reserve {
                    order,
                    lines,
                    ttl_seconds: None,
                    key,
                }
            }
            39..56 => Op::Commit {
                order: pick_order(rng),
                key,
            },
            56..68 => Op::Release {
                order: pick_order(rng),
                key,
            },
            68..82 => Op::AdjustStock {
                product,
                delta: rng.random_range(-5..=20),
                key,
            },
            82..90 => Op::SetStock {
                product,
                on_hand: rng.random_range(10..=90),
                key,
            },
            90..95 => {
                self.keys += 1;
                Op::SaveRecord {
                    key: self.keys,
                    len: rng.random_range(20..=400),
                }
            }
            _ => Op::Expire {
                advance_seconds: rng.random_range(100..=700),
            },
        }
    }
}

/// What an operation answered that its acknowledged effects can be
/// checked against.
#[derive(Debug)]
enum Answer {
    Stock(Stock),
    Reservation(Reservation),
    Other,
}

/// The idempotency record of a keyed write: the write's whole answer.
fn render<T: fmt::Debug>(result: &Result<T, Error>) -> Option<Vec<u8>> {
    Some(format!("{result:?}").into_bytes())
}

fn send<T: fmt::Debug + Send + 'static>(
    engine: &Engine,
    write: Write<T>,
    key: Option<u64>,
    answer: impl FnOnce(T) -> Answer,
) -> (Result<Answer, Error>, Option<Vec<u8>>) {
    let write = match key {
        Some(key) => write.remember(key_name(key), RECORD_TTL, render::<T>),
        None => write,
    };
    let result = engine.write(write).wait();
    let record = key.and_then(|_| render(&result));
    (result.map(answer), record)
}

/// Runs one operation to its answer; also answers the idempotency record it
/// must have left, if any.
fn run(engine: &Engine, clock: &ManualClock, op: &Op) -> (Result<Answer, Error>, Option<Vec<u8>>) {
    match op {
        Op::CreateProduct {
            product: id,
            on_hand,
        } => send(
            engine,
            Write::create_product(product(*id, *on_hand)),
            None,
            |_| Answer::Other,
        ),
        Op::SetStock {
            product,
            on_hand,
            key,
        } => send(
            engine,
            Write::set_stock(ProductId(*product), *on_hand),
            *key,
            Answer::Stock,
        ),
        Op::AdjustStock {
            product,
            delta,
            key,
        } => send(
            engine,
            Write::adjust_stock(ProductId(*product), *delta),
            *key,
            Answer::Stock,
        ),
        Op::Reserve {
            order: number,
            lines,
            ttl_seconds,
            key,
        } => {
            let mut request = request(order(*number), lines);
            request.ttl = ttl_seconds.map(Duration::from_secs);
            send(engine, Write::reserve(request), *key, |reserved| {
                Answer::Reservation(reserved.reservation)
            })
        }
        Op::Commit { order: number, key } => send(
            engine,
            Write::commit_reservation(order(*number)),
            *key,
            Answer::Reservation,
        ),
        Op::Release { order: number, key } => send(
            engine,
            Write::release_reservation(order(*number)),
            *key,
            Answer::Reservation,
        ),
        Op::SaveRecord { key, len } => {
            let mut value = format!("saved record {key}:").into_bytes();
            value.extend((0..*len).map(|n| (n as u64 * 31 + key) as u8));
            value.truncate(*len);
            let result = engine
                .save_idempotency_record(&key_name(*key), value.clone(), RECORD_TTL)
                .wait();
            (result.map(|()| Answer::Other), Some(value))
        }
        Op::Expire { advance_seconds } => {
            clock.advance(Duration::from_secs(*advance_seconds));
            let result = engine.flush().wait();
            (result.map(|()| Answer::Other), None)
        }
        Op::Checkpoint => (engine.flush().wait().map(|()| Answer::Other), None),
    }
}

// ---------------------------------------------------------------------------
// The state after each acknowledged operation.

/// Everything the workload can have changed, as read through the public API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Model {
    stock: BTreeMap<u64, Stock>,
    reservations: BTreeMap<u128, Reservation>,
    records: BTreeMap<u64, RecordSeen>,
    last_event_seq: u64,
}

/// An idempotency record as the model keeps it: some are large, so a
/// digest and the start, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RecordSeen {
    len: usize,
    digest: u64,
    start: String,
}

impl RecordSeen {
    fn of(value: &[u8]) -> RecordSeen {
        let mut hasher = std::hash::DefaultHasher::new();
        value.hash(&mut hasher);
        RecordSeen {
            len: value.len(),
            digest: hasher.finish(),
            start: String::from_utf8_lossy(&value[..value.len().min(RECORD_SHOWN_MAX)])
                .into_owned(),
        }
    }
}

impl fmt::Display for RecordSeen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.start)?;
        if self.len > RECORD_SHOWN_MAX {
            write!(f, "... ({} bytes)", self.len)?;
        }
        Ok(())
    }
}

/// The ids the workload has used so far, which are all there is to read.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    orders: u128,
    keys: u64,
}

impl Bounds {
    fn of(operations: &[Op]) -> Bounds {
        Bounds {
            orders: operations.iter().filter_map(Op::order).max().unwrap_or(0),
            keys: operations.iter().filter_map(Op::key).max().unwrap_or(0),
        }
    }
}

fn read_events(engine: &Engine) -> Result<Vec<EventEnvelope>, Error> {
    let mut events: Vec<EventEnvelope> = Vec::new();
    loop {
        let after = events.last().map_or(0, |event| event.seq);
        let page = engine.events_after(after, PAGE_LIMIT_MAX)?;
        if page.is_empty() {
            return Ok(events);
        }
        events.extend(page);
    }
}

fn observe(engine: &Engine, bounds: Bounds) -> Result<Model, Error> {
    let mut model = Model {
        last_event_seq: engine.last_event_seq(),
        ..Model::default()
    };
    for id in 1..=PRODUCTS_MAX {
        if let Some(stock) = engine.stock(ProductId(id))? {
            model.stock.insert(id, stock);
        }
    }
    for number in 1..=bounds.orders {
        if let Some(reservation) = engine.reservation(order(number))? {
            model.reservations.insert(number, reservation);
        }
    }
    for key in 1..=bounds.keys {
        if let Some(record) = engine.idempotency_record(&key_name(key))? {
            model.records.insert(key, RecordSeen::of(&record));
        }
    }
    Ok(model)
}

/// Invariants 1 and 2: `0 <= reserved <= on_hand`, and `reserved` is the
/// sum of the product's active reservations.
fn check_invariants(model: &Model) -> Result<(), String> {
    let mut held: BTreeMap<u64, u64> = BTreeMap::new();
    for reservation in model.reservations.values() {
        if reservation.status == ReservationStatus::Active {
            for line in &reservation.items {
                *held.entry(line.product_id.0).or_default() += line.quantity;
            }
        }
    }
    for (id, stock) in &model.stock {
        if stock.reserved > stock.on_hand {
            return Err(format!(
                "invariant 1: product {id} has {} reserved of {} on hand",
                stock.reserved, stock.on_hand
            ));
        }
        let active = held.get(id).copied().unwrap_or(0);
        if stock.reserved != active {
            return Err(format!(
                "invariant 2: product {id} has {} reserved but its active reservations hold {active}",
                stock.reserved
            ));
        }
    }
    Ok(())
}

/// The workload's run on the recording disk.
struct Recorded {
    trace: Vec<Step>,
    /// The whole event log at the end: a reopened store's log is a prefix.
    events: Vec<EventEnvelope>,
    operations: Vec<Op>,
    /// `models[k]`: the state once `k` operations were acknowledged.
    models: Vec<Model>,
    /// `times[k]`: the clock when `models[k]` was read.
    times: Vec<Timestamp>,
}

fn engine_config(dir: &Path, clock: &ManualClock, disk: &Arc<SimDisk>) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.clock = Arc::new(clock.clone());
    config.storage_backend = Some(Arc::new(StoreFile(disk.clone())));
    config.log_storage = Some(Arc::new(LogDirectory(disk.clone())));
    config.log_segment_bytes = mercato_engine::LOG_SEGMENT_BYTES_MIN;
    // Checkpoints only where the workload asks for them (a flush): the
    // longest interval allowed, far more than the workload takes.
    config.checkpoint_interval = Duration::from_secs(60);
    config.cache_size_bytes = 16 << 20;
    // The clock only moves when the workload moves it, and then it
    // flushes at once: the idle writer has nothing to do on its tick.
    config.tick_interval = Duration::from_secs(1);
    config
}

fn record_workload() -> Recorded {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::recording();
    let clock = ManualClock::new(START);
    let engine = Engine::open(engine_config(dir.path(), &clock, &disk)).unwrap();
    let mut planner = Planner {
        rng: StdRng::seed_from_u64(SEED),
        products: 0,
        orders: 0,
        keys: 0,
    };
    let mut operations = Vec::with_capacity(OPERATIONS);
    let mut models = vec![observe(&engine, Bounds::of(&[])).unwrap()];
    let mut times = vec![clock.now()];
    for index in 0..OPERATIONS {
        let op = planner.next(index, models.last().unwrap());
        let (answer, record) = run(&engine, &clock, &op);
        // Only business rejections: the disk never fails.
        if let Err(error) = &answer
            && !matches!(
                error.code(),
                "not_found" | "conflict" | "insufficient_stock" | "invalid_state"
            )
        {
            panic!("op {index} ({op}) failed: {error}");
        }
        disk.acknowledge(index);
        operations.push(op);
        let model = observe(&engine, Bounds::of(&operations)).unwrap();
        let op = &operations[index];
        // The state read back holds what was acknowledged: it is the
        // standard the reopened stores are held to.
        match &answer {
            Ok(Answer::Stock(stock)) => {
                assert_eq!(
                    model.stock.get(&stock.product_id.0),
                    Some(stock),
                    "op {index}: {op}"
                );
            }
            Ok(Answer::Reservation(reservation)) => {
                let number = op.order().unwrap();
                assert_eq!(
                    model.reservations.get(&number),
                    Some(reservation),
                    "op {index}: {op}"
                );
            }
            _ => {}
        }
        if let Some(key) = op.key() {
            let record = record.as_deref().map(RecordSeen::of);
            assert_eq!(model.records.get(&key), record.as_ref(), "op {index}: {op}");
        }
        if let Err(problem) = check_invariants(&model) {
            panic!("after op {index} ({op}): {problem}");
        }
        models.push(model);
        times.push(clock.now());
    }
    check_log_matches_stock(&engine);
    let events = read_events(&engine).unwrap();
    engine.shutdown();
    drop(engine);
    Recorded {
        trace: disk.take_trace(),
        events,
        operations,
        models,
        times,
    }
}

// ---------------------------------------------------------------------------
// Checking one power cut.

fn check_power_loss(
    recorded: &Recorded,
    replay: &Replay,
    point: usize,
    loss: Loss,
    dir: &Path,
) -> Result<(), String> {
    let image = replay.image(&recorded.trace, point, loss);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        check_reopened(recorded, replay.acknowledged, image, dir)
    }));
    outcome.unwrap_or_else(|panic| Err(format!("panicked: {}", panic_message(&*panic))))
}

fn check_reopened(
    recorded: &Recorded,
    acknowledged: usize,
    image: Image,
    dir: &Path,
) -> Result<(), String> {
    let disk = SimDisk::restored(image);
    let clock = ManualClock::new(recorded.times[acknowledged]);
    let engine = Engine::open(engine_config(dir, &clock, &disk))
        .map_err(|error| format!("the store does not reopen: {error}"))?;
    let in_flight = (acknowledged + 1).min(recorded.operations.len());
    let bounds = Bounds::of(&recorded.operations[..in_flight]);
    let found = observe(&engine, bounds).map_err(|error| format!("a read failed: {error}"))?;
    let before = &recorded.models[acknowledged];
    let after = recorded.models.get(acknowledged + 1);
    if found != *before && after != Some(&found) {
        return Err(describe_difference(recorded, acknowledged, &found));
    }
    check_invariants(&found)?;
    let events =
        read_events(&engine).map_err(|error| format!("reading the log failed: {error}"))?;
    if let Some(index) = (0..events.len()).find(|&i| recorded.events.get(i) != Some(&events[i])) {
        return Err(format!(
            "the event log is not the one written: at seq {} it holds {:?}, the workload wrote {:?}",
            index + 1,
            events[index],
            recorded.events.get(index)
        ));
    }
    panic::catch_unwind(AssertUnwindSafe(|| check_log_matches_stock(&engine))).map_err(
        |panic| {
            format!(
                "invariant 3 (the event log against the stock): {}",
                panic_message(&*panic)
            )
        },
    )?;
    engine.shutdown();
    Ok(())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else {
        "(no message)".to_owned()
    }
}

/// One thing the state holds, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Stock(u64),
    Reservation(u128),
    Record(u64),
    LastEventSeq,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Stock(id) => write!(f, "the stock of product {id}"),
            Item::Reservation(number) => write!(f, "the reservation of order {number}"),
            Item::Record(key) => write!(f, "the idempotency record {}", key_name(*key)),
            Item::LastEventSeq => write!(f, "the last event's seq"),
        }
    }
}

impl Model {
    fn items(&self) -> Vec<Item> {
        let mut items: Vec<Item> = self.stock.keys().map(|&id| Item::Stock(id)).collect();
        items.extend(
            self.reservations
                .keys()
                .map(|&number| Item::Reservation(number)),
        );
        items.extend(self.records.keys().map(|&key| Item::Record(key)));
        items.push(Item::LastEventSeq);
        items
    }

    fn get(&self, item: Item) -> String {
        let value = match item {
            Item::Stock(id) => self
                .stock
                .get(&id)
                .map(|stock| format!("{} on hand, {} reserved", stock.on_hand, stock.reserved)),
            Item::Reservation(number) => self.reservations.get(&number).map(|reservation| {
                format!(
                    "{} {:?}, updated at {}",
                    reservation.status.as_str(),
                    reservation
                        .items
                        .iter()
                        .map(|line| (line.product_id.0, line.quantity))
                        .collect::<Vec<_>>(),
                    reservation.updated_at
                )
            }),
            Item::Record(key) => self.records.get(&key).map(ToString::to_string),
            Item::LastEventSeq => Some(self.last_event_seq.to_string()),
        };
        value.unwrap_or_else(|| "absent".to_owned())
    }
}

/// Says, item by item, how the reopened state differs from the state after
/// the last acknowledged operation, naming the acknowledged operation that
/// last changed each item.
fn describe_difference(recorded: &Recorded, acknowledged: usize, found: &Model) -> String {
    let before = &recorded.models[acknowledged];
    let after = recorded.models.get(acknowledged + 1);
    let mut items = before.items();
    items.extend(found.items());
    items.sort_unstable();
    items.dedup();
    let mut lines = vec![
        "the reopened state is neither the state after the last acknowledged op nor the state \
         after the op in flight:"
            .to_owned(),
    ];
    for item in items {
        let expected = before.get(item);
        let actual = found.get(item);
        if expected == actual {
            continue;
        }
        let changed_by = (1..=acknowledged)
            .rev()
            .find(|&k| recorded.models[k].get(item) != recorded.models[k - 1].get(item));
        let source = match changed_by {
            Some(k) => format!(
                "acknowledged op {} ({}) left it {expected}",
                k - 1,
                recorded.operations[k - 1]
            ),
            None => format!("it was {expected} when the store was opened"),
        };
        let in_flight = match after {
            Some(after) if after.get(item) == actual => {
                " (as the op in flight would leave it)".to_owned()
            }
            _ => String::new(),
        };
        lines.push(format!(
            "  {item}: {source}; reopened it is {actual}{in_flight}"
        ));
    }
    if let Some(after) = after {
        // What the op in flight changes: all of it or none must be there.
        let mut changed = after.items();
        changed.extend(before.items());
        changed.retain(|&item| after.get(item) != before.get(item));
        changed.sort_unstable();
        changed.dedup();
        let applied = changed
            .iter()
            .any(|&item| found.get(item) == after.get(item));
        let missing: Vec<String> = changed
            .iter()
            .filter(|&&item| found.get(item) == before.get(item))
            .map(ToString::to_string)
            .collect();
        if applied && !missing.is_empty() {
            lines.push(format!(
                "  the op in flight, {}, would also change {}: it is applied in part",
                recorded.operations[acknowledged],
                missing.join(", ")
            ));
        }
    }
    lines.join("\n")
}

fn describe_failure(
    recorded: &Recorded,
    replay: &Replay,
    point: usize,
    loss: Loss,
    problem: &str,
) -> String {
    let trace = &recorded.trace;
    let step = trace
        .get(point)
        .map_or_else(|| "the end of the trace".to_owned(), ToString::to_string);
    let acknowledged = replay.acknowledged;
    let last = match acknowledged {
        0 => "no operation acknowledged yet".to_owned(),
        n => format!(
            "last acknowledged: op {} ({})",
            n - 1,
            recorded.operations[n - 1]
        ),
    };
    let in_flight = recorded
        .operations
        .get(acknowledged)
        .map_or_else(|| "none".to_owned(), ToString::to_string);
    // The disk operations around the crash point.
    let window = point.saturating_sub(6)..(point + 3).min(trace.len());
    let around = window
        .map(|position| {
            let marker = if position == point { ">>" } else { "  " };
            format!("    {marker} {position}: {}", trace[position])
        })
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "power cut before trace step {point} of {} ({step}), {loss}\n  {last}; in flight: op {acknowledged} ({in_flight})\n  trace around it:\n{around}\n  {problem}",
        trace.len()
    )
}
