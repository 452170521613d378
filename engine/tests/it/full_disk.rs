//! Full-disk tests on a real file system: the store lives on a small tmpfs,
//! and a filler file takes every byte left. Writes must answer
//! `StorageUnavailable` (never `Storage` or anything else), the engine
//! says it is unhealthy, reads keep showing what was acknowledged, and once
//! the filler is deleted the engine takes writes again by itself, with
//! every acknowledged write there exactly once. Writes answered
//! `StorageUnavailable` have an unknown outcome: each must be there whole,
//! with its idempotency record, or not at all, and sending it again the way
//! a client would (look its key up first) must apply it exactly once.
//!
//! Mounting a tmpfs needs root (as in CI); without it the tests say so on
//! stderr and pass without running.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mercato_engine::{
    Engine, EngineConfig, Error, ManualClock, ProductId, ReservationStatus, Reserved, Stock, Write,
};

use crate::support::{START, check_log_matches_stock, config, order, product, request};

/// The tmpfs's size: room for the store, its log and a filler.
const DISK_MIB: u64 = 24;
/// Small log segments, so that the log is not one big preallocated file.
const LOG_SEGMENT_BYTES: u64 = 1 << 20;
/// Every reservation holds one unit of this product.
const RESERVED_PRODUCT: ProductId = ProductId(1);
/// Every adjustment adds one unit to this product.
const ADJUSTED_PRODUCT: ProductId = ProductId(2);
const ON_HAND: u64 = 1_000_000;
/// Keyed reservations use order numbers from here on; plain ones below.
const KEYED_ORDERS: u128 = 1 << 64;
/// The order of the reservation that polls for the engine's recovery.
const RECOVERY_ORDER: u128 = 2 << 64;
/// How long the writes on a full disk may keep succeeding (the engine may
/// find room in pages it already has for a while) before the test gives up.
const FILL_TIME_MAX: Duration = Duration::from_secs(30);
/// How long the engine may take to take writes again once there is room.
const RECOVERY_TIME_MAX: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const RECORD_TTL: Duration = Duration::from_secs(3_600);
/// What the writer writes and removes to see whether the disk has room
/// before it reopens its store (`REOPEN_PROBE_BYTES` in writer.rs).
const ENGINE_PROBE_BYTES: u64 = 1 << 20;
/// A little longer than the writer waits between attempts to reopen its
/// store after a fault (`FAILURE_RETRY_INTERVAL` in writer.rs, 1 s).
const RETRY_WAIT: Duration = Duration::from_millis(1_500);

/// A tmpfs mounted on a fresh directory under /tmp, unmounted (lazily if it
/// is still busy) and removed on drop, however the test ends.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts one of `size_mib`, or says why it cannot.
    fn mount(size_mib: u64) -> Result<Tmpfs, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = PathBuf::from(format!(
            "/tmp/mercato-engine-full-disk-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path)
            .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(&path)
            .output();
        let why = match mounted {
            Ok(output) if output.status.success() => return Ok(Tmpfs { path }),
            Ok(output) => format!(
                "`mount -t tmpfs` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Err(error) => format!("cannot run `mount`: {error}"),
        };
        let _ = std::fs::remove_dir(&path);
        Err(why)
    }

    /// Mounts one, or tells the person running the tests why this test is
    /// skipped (on stderr itself, which the test harness does not capture).
    fn mount_or_skip(test: &str) -> Option<Tmpfs> {
        match Tmpfs::mount(DISK_MIB) {
            Ok(disk) => Some(disk),
            Err(why) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED full_disk::{test}: it needs a tmpfs, which needs root: {why}"
                );
                None
            }
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.path.join("data")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            // A file is still open (a failed test left an engine behind):
            // detach the mount now; the kernel frees it once it is unused.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// A file that takes whatever room is left on the disk.
struct Filler {
    path: PathBuf,
    file: File,
}

impl Filler {
    fn create(disk: &Tmpfs) -> Filler {
        let path = disk.path.join("filler");
        let file = File::create(&path).expect("the filler is created");
        Filler { path, file }
    }

    /// Writes until the file system answers ENOSPC; answers the bytes added.
    fn top_up(&mut self) -> u64 {
        let chunk = vec![0xA5; 64 << 10];
        let mut added = 0;
        loop {
            match self.file.write(&chunk) {
                Ok(0) => return added,
                Ok(written) => added += written as u64,
                Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => return added,
                Err(error) => panic!("filling the disk: {error}"),
            }
        }
    }

    /// Gives `bytes` of its room back.
    fn give_back(&mut self, bytes: u64) {
        let len = self.file.metadata().expect("the filler's length").len();
        self.file
            .set_len(len.checked_sub(bytes).expect("the filler holds that much"))
            .expect("the filler shrinks");
    }

    /// Gives all its room back.
    fn remove(self) {
        drop(self.file);
        std::fs::remove_file(&self.path).expect("the filler is removed");
    }
}

fn disk_config(dir: &Path, clock: &ManualClock) -> EngineConfig {
    let mut config = config(dir, clock);
    config.log_segment_bytes = LOG_SEGMENT_BYTES;
    config
}

/// One write the test sent.
#[derive(Clone, Debug)]
enum Sent {
    /// One unit of `RESERVED_PRODUCT` for order `order`, with an
    /// idempotency record under `key` when there is one.
    Reserve { order: u128, key: Option<String> },
    /// One more unit of `ADJUSTED_PRODUCT`, remembered under `key`.
    Adjust { key: String },
}

/// What the test knows of the writes it sent.
#[derive(Default)]
struct Model {
    /// Answered with success: each must be there exactly once.
    acknowledged: Vec<Sent>,
    /// Answered `StorageUnavailable`: each is there whole or not at all.
    in_doubt: Vec<Sent>,
}

impl Model {
    /// Files `sent` by its answer; true when it was `StorageUnavailable`.
    fn answer(&mut self, sent: Sent, outcome: Result<(), Error>) -> bool {
        match outcome {
            Ok(()) => {
                self.acknowledged.push(sent);
                false
            }
            Err(Error::StorageUnavailable(_)) => {
                self.in_doubt.push(sent);
                true
            }
            Err(other) => panic!(
                "{sent:?}: a full disk must answer storage_unavailable, not {} ({other:?})",
                other.code()
            ),
        }
    }
}

fn one_unit(order_number: u128) -> mercato_engine::ReserveRequest {
    request(order(order_number), &[(RESERVED_PRODUCT.0, 1)])
}

/// The idempotency record of a keyed reservation: its reservation id.
fn reservation_answer(outcome: &Result<Reserved, Error>) -> Option<Vec<u8>> {
    outcome
        .as_ref()
        .ok()
        .map(|reserved| reserved.reservation.reservation_id.to_string().into_bytes())
}

fn keyed_reserve(order_number: u128, key: &str) -> Write<Reserved> {
    Write::reserve(one_unit(order_number)).remember(key, RECORD_TTL, reservation_answer)
}

fn keyed_adjust(key: &str) -> Write<Stock> {
    Write::adjust_stock(ADJUSTED_PRODUCT, 1).remember(key, RECORD_TTL, |outcome| {
        outcome
            .as_ref()
            .ok()
            .map(|stock| format!("on_hand {}", stock.on_hand).into_bytes())
    })
}

/// Writes sent together by one step, of each kind.
const STEP_WIDTH: u64 = 8;

/// Sends [`STEP_WIDTH`] plain reservations, as many keyed reservations and
/// as many keyed adjustments at once (so that they share batches and the
/// log has batches in flight when the disk fills), then waits for their
/// answers. True when any answered `StorageUnavailable`.
fn step(engine: &Engine, step: u64, model: &mut Model) -> bool {
    let mut pending = Vec::new();
    for number in step * STEP_WIDTH..(step + 1) * STEP_WIDTH {
        let plain_order = u128::from(number);
        let keyed_order = KEYED_ORDERS + u128::from(number);
        let reserve_key = format!("reserve-{number}");
        let adjust_key = format!("adjust-{number}");
        let keyed = engine.write(keyed_reserve(keyed_order, &reserve_key));
        pending.push((
            Sent::Reserve {
                order: plain_order,
                key: None,
            },
            Answer::Reserved(engine.reserve(one_unit(plain_order))),
        ));
        pending.push((
            Sent::Reserve {
                order: keyed_order,
                key: Some(reserve_key),
            },
            Answer::Reserved(keyed),
        ));
        pending.push((
            Sent::Adjust {
                key: adjust_key.clone(),
            },
            Answer::Adjusted(engine.write(keyed_adjust(&adjust_key))),
        ));
    }
    let mut refused = false;
    for (sent, answer) in pending {
        let outcome = match answer {
            Answer::Reserved(pending) => pending.wait().map(|reserved| {
                assert!(
                    reserved.created,
                    "{sent:?}: a new order's reservation is new"
                );
            }),
            Answer::Adjusted(pending) => pending.wait().map(drop),
        };
        refused |= model.answer(sent, outcome);
    }
    refused
}

enum Answer {
    Reserved(mercato_engine::Pending<Reserved>),
    Adjusted(mercato_engine::Pending<Stock>),
}

/// Creates the two products and makes `steps` steps, all acknowledged.
fn start(engine: &Engine, steps: u64, model: &mut Model) {
    engine
        .create_product(product(RESERVED_PRODUCT.0, ON_HAND))
        .wait()
        .unwrap();
    engine
        .create_product(product(ADJUSTED_PRODUCT.0, ON_HAND))
        .wait()
        .unwrap();
    for number in 1..=steps {
        assert!(!step(engine, number, model), "the disk has room");
    }
    assert!(engine.is_healthy());
}

/// Fills the disk, then makes steps (topping the filler up before each, as
/// the engine may free some room of its own) until a write is refused.
/// Answers the next step number.
fn fill_until_refused(
    engine: &Engine,
    filler: &mut Filler,
    mut number: u64,
    model: &mut Model,
) -> u64 {
    let started = Instant::now();
    loop {
        filler.top_up();
        number += 1;
        if step(engine, number, model) {
            return number;
        }
        assert!(
            started.elapsed() < FILL_TIME_MAX,
            "the engine kept acknowledging writes on a full disk for {FILL_TIME_MAX:?} ({} writes)",
            model.acknowledged.len()
        );
    }
}

/// Reads during the fault: the products, their stock and every
/// acknowledged reservation and record are readable, and the stock counts
/// the acknowledged writes plus whichever writes in doubt the reads show.
fn check_reads_during_fault(engine: &Engine, model: &Model) {
    if let Err(failure) = reads_during_fault(engine, model) {
        panic!("{failure}");
    }
}

/// [`check_reads_during_fault`], answering what failed first.
fn reads_during_fault(engine: &Engine, model: &Model) -> Result<(), String> {
    let failed = |what: String, read: &dyn std::fmt::Debug| {
        format!("reading {what} during the fault: {read:?}")
    };
    for product_id in [RESERVED_PRODUCT, ADJUSTED_PRODUCT] {
        let product = engine.product(product_id);
        if !matches!(product, Ok(Some(_))) {
            return Err(failed(format!("product {product_id}"), &product));
        }
    }
    let mut reservations = 0;
    let mut adjustments = 0;
    for sent in &model.acknowledged {
        match sent {
            Sent::Reserve { order: number, key } => {
                let read = engine.reservation(order(*number));
                if !matches!(read, Ok(Some(_))) {
                    return Err(failed(format!("acknowledged {sent:?}"), &read));
                }
                if let Some(key) = key {
                    let record = engine.idempotency_record(key);
                    if !matches!(record, Ok(Some(_))) {
                        return Err(failed(format!("the record of {sent:?}"), &record));
                    }
                }
                reservations += 1;
            }
            Sent::Adjust { .. } => adjustments += 1,
        }
    }
    let mut shown_adjustments = 0;
    for sent in &model.in_doubt {
        match sent {
            Sent::Reserve { order: number, .. } => match engine.reservation(order(*number)) {
                Ok(read) => reservations += u64::from(read.is_some()),
                Err(error) => return Err(failed(format!("{sent:?}"), &error)),
            },
            Sent::Adjust { key } => match engine.idempotency_record(key) {
                Ok(record) => shown_adjustments += u64::from(record.is_some()),
                Err(error) => return Err(failed(format!("the record of {sent:?}"), &error)),
            },
        }
    }
    let mut stocks = Vec::new();
    for product_id in [RESERVED_PRODUCT, ADJUSTED_PRODUCT] {
        match engine.stock(product_id) {
            Ok(Some(stock)) => stocks.push(stock),
            other => return Err(failed(format!("the stock of {product_id}"), &other)),
        }
    }
    assert_eq!(
        stocks[0].reserved, reservations,
        "reserved during the fault: the acknowledged reservations and those in doubt shown"
    );
    assert_eq!(
        stocks[1].on_hand,
        ON_HAND + adjustments + shown_adjustments,
        "on_hand during the fault: the acknowledged adjustments and those in doubt shown"
    );
    Ok(())
}

/// Polls (bounded) with one reservation, always for the same order, until
/// the engine takes it: refusals meanwhile must be `StorageUnavailable`.
/// Answers how long it took.
fn wait_for_writes(engine: &Engine, model: &mut Model) -> Duration {
    let started = Instant::now();
    loop {
        match engine.reserve(one_unit(RECOVERY_ORDER)).wait() {
            Ok(_) => {
                model.acknowledged.push(Sent::Reserve {
                    order: RECOVERY_ORDER,
                    key: None,
                });
                return started.elapsed();
            }
            Err(Error::StorageUnavailable(_)) => {}
            Err(other) => panic!(
                "while the engine recovers, writes answer storage_unavailable, not {} ({other:?})",
                other.code()
            ),
        }
        assert!(
            started.elapsed() < RECOVERY_TIME_MAX,
            "the disk has room again, but writes were still refused after {RECOVERY_TIME_MAX:?}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Settles every write in doubt the way a client would: a keyed write is
/// looked up by its key and sent again only when no answer is stored; a
/// plain reservation is sent again (a reservation is idempotent per order).
/// Each must have been there whole, with its record, or not at all; after
/// this every write sent is acknowledged. Answers how many were there.
fn settle_in_doubt(engine: &Engine, model: &mut Model) -> usize {
    let mut there = 0;
    for sent in std::mem::take(&mut model.in_doubt) {
        let present = match &sent {
            Sent::Reserve {
                order: number,
                key: None,
            } => {
                let present = engine.reservation(order(*number)).unwrap().is_some();
                let retried = engine.reserve(one_unit(*number)).wait().unwrap();
                assert_eq!(
                    retried.created, !present,
                    "{sent:?} sent again: new exactly when it was not there"
                );
                present
            }
            Sent::Reserve {
                order: number,
                key: Some(key),
            } => {
                let present = engine.reservation(order(*number)).unwrap();
                let stored = engine.idempotency_record(key).unwrap();
                assert_eq!(
                    present.is_some(),
                    stored.is_some(),
                    "{sent:?}: a write and its idempotency record are there together or not at all"
                );
                match (present, stored) {
                    (Some(reservation), Some(stored)) => {
                        assert_eq!(
                            stored,
                            reservation.reservation_id.to_string().into_bytes(),
                            "{sent:?}: the stored answer is the reservation's"
                        );
                        true
                    }
                    _ => {
                        let retried = engine.write(keyed_reserve(*number, key)).wait().unwrap();
                        assert!(retried.created, "{sent:?} sent again is applied afresh");
                        false
                    }
                }
            }
            Sent::Adjust { key } => {
                let present = engine.idempotency_record(key).unwrap().is_some();
                if !present {
                    engine.write(keyed_adjust(key)).wait().unwrap();
                }
                present
            }
        };
        there += usize::from(present);
        model.acknowledged.push(sent);
    }
    there
}

/// Every acknowledged write is there exactly once, with its record, and
/// the event log agrees with the stock.
fn check_exactly_once(engine: &Engine, model: &Model) {
    assert!(model.in_doubt.is_empty(), "settled first");
    let mut reservations = 0;
    let mut adjustments = 0;
    for sent in &model.acknowledged {
        match sent {
            Sent::Reserve { order: number, key } => {
                let reservation = engine
                    .reservation(order(*number))
                    .unwrap()
                    .unwrap_or_else(|| panic!("acknowledged {sent:?} is lost"));
                assert_eq!(reservation.status, ReservationStatus::Active);
                assert_eq!(reservation.items, one_unit(*number).items);
                if let Some(key) = key {
                    assert_eq!(
                        engine.idempotency_record(key).unwrap(),
                        Some(reservation.reservation_id.to_string().into_bytes()),
                        "acknowledged {sent:?} has its record"
                    );
                }
                reservations += 1;
            }
            Sent::Adjust { key } => {
                assert!(
                    engine.idempotency_record(key).unwrap().is_some(),
                    "acknowledged {sent:?} has its record"
                );
                adjustments += 1;
            }
        }
    }
    let reserved = engine.stock(RESERVED_PRODUCT).unwrap().unwrap();
    assert_eq!(
        (reserved.on_hand, reserved.reserved),
        (ON_HAND, reservations),
        "every reservation is held exactly once"
    );
    let adjusted = engine.stock(ADJUSTED_PRODUCT).unwrap().unwrap();
    assert_eq!(
        (adjusted.on_hand, adjusted.reserved),
        (ON_HAND + adjustments, 0),
        "every adjustment is applied exactly once"
    );
    check_log_matches_stock(engine);
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_recovers_by_itself() {
    let Some(disk) =
        Tmpfs::mount_or_skip("a_full_disk_refuses_writes_keeps_reads_and_recovers_by_itself")
    else {
        return;
    };
    let clock = ManualClock::new(START);
    let dir = disk.data_dir();
    let mut model = Model::default();
    let engine = Engine::open(disk_config(&dir, &clock)).unwrap();
    start(&engine, 20, &mut model);

    let mut filler = Filler::create(&disk);
    let mut number = fill_until_refused(&engine, &mut filler, 20, &mut model);
    assert!(
        !engine.is_healthy(),
        "unhealthy once a write is refused for want of room"
    );
    check_reads_during_fault(&engine, &model);
    // Still full, past the engine's next attempt to reopen its store:
    // writes stay refused, reads keep working.
    std::thread::sleep(RETRY_WAIT);
    for _ in 0..3 {
        filler.top_up();
        number += 1;
        assert!(step(&engine, number, &mut model), "refused while full");
        assert!(!engine.is_healthy());
    }
    check_reads_during_fault(&engine, &model);

    filler.remove();
    let took = wait_for_writes(&engine, &mut model);
    assert!(engine.is_healthy(), "healthy once writes succeed again");
    let (acknowledged, in_doubt) = (model.acknowledged.len(), model.in_doubt.len());
    let there = settle_in_doubt(&engine, &mut model);
    let _ = writeln!(
        std::io::stderr(),
        "full_disk: {acknowledged} writes acknowledged, {in_doubt} refused ({there} of them there \
         after all); writes resumed {took:?} after the disk had room"
    );
    check_exactly_once(&engine, &model);
    // And the engine goes on as before.
    number += 1;
    assert!(!step(&engine, number, &mut model));
    check_exactly_once(&engine, &model);
    engine.shutdown();
    drop(engine);

    let engine = Engine::open(disk_config(&dir, &clock)).unwrap();
    assert!(engine.is_healthy());
    check_exactly_once(&engine, &model);
    number += 1;
    assert!(!step(&engine, number, &mut model));
    check_exactly_once(&engine, &model);
    engine.shutdown();
}

#[test]
fn a_restart_on_a_full_disk_opens_or_says_storage_unavailable_and_loses_nothing() {
    let Some(disk) = Tmpfs::mount_or_skip(
        "a_restart_on_a_full_disk_opens_or_says_storage_unavailable_and_loses_nothing",
    ) else {
        return;
    };
    let clock = ManualClock::new(START);
    let dir = disk.data_dir();
    let mut model = Model::default();
    let engine = Engine::open(disk_config(&dir, &clock)).unwrap();
    start(&engine, 20, &mut model);
    let mut filler = Filler::create(&disk);
    let mut number = fill_until_refused(&engine, &mut filler, 20, &mut model);
    engine.shutdown();
    drop(engine);

    // Restarts while the disk is still full: each either opens, with every
    // acknowledged write readable, or is refused as storage_unavailable.
    for attempt in 1..=2 {
        filler.top_up();
        match Engine::open(disk_config(&dir, &clock)) {
            Ok(engine) => {
                check_reads_during_fault(&engine, &model);
                number += 1;
                step(&engine, number, &mut model);
                engine.shutdown();
            }
            Err(error @ Error::StorageUnavailable(_)) => {
                assert_eq!(error.code(), "storage_unavailable");
                let _ = writeln!(
                    std::io::stderr(),
                    "full_disk: restart {attempt} on a full disk refused: {error}"
                );
            }
            Err(other) => panic!(
                "a restart on a full disk must open or answer storage_unavailable, not {} ({other:?})",
                other.code()
            ),
        }
    }

    filler.remove();
    let engine = Engine::open(disk_config(&dir, &clock)).expect("opens once the disk has room");
    assert!(engine.is_healthy());
    let (acknowledged, in_doubt) = (model.acknowledged.len(), model.in_doubt.len());
    let there = settle_in_doubt(&engine, &mut model);
    let _ = writeln!(
        std::io::stderr(),
        "full_disk: {acknowledged} writes acknowledged, {in_doubt} refused ({there} of them there \
         after all)"
    );
    check_exactly_once(&engine, &model);
    number += 1;
    assert!(!step(&engine, number, &mut model));
    check_exactly_once(&engine, &model);
    engine.shutdown();
    drop(engine);

    let engine = Engine::open(disk_config(&dir, &clock)).unwrap();
    check_exactly_once(&engine, &model);
    engine.shutdown();
}

/// The room that comes back may be enough for the writer's probe of the
/// disk but not for the reopen that follows it, which replays the log (a
/// long one here: no checkpoint for a minute). The reopen then fails; reads
/// must keep working meanwhile, and once there is room the engine recovers
/// with every acknowledged write.
#[test]
fn reads_keep_working_when_a_reopen_fails_for_want_of_room() {
    let Some(disk) =
        Tmpfs::mount_or_skip("reads_keep_working_when_a_reopen_fails_for_want_of_room")
    else {
        return;
    };
    let clock = ManualClock::new(START);
    let dir = disk.data_dir();
    let mut model = Model::default();
    let mut long_log = disk_config(&dir, &clock);
    long_log.checkpoint_interval = Duration::from_secs(60);
    let engine = Engine::open(long_log).unwrap();
    start(&engine, 300, &mut model);
    let mut filler = Filler::create(&disk);
    fill_until_refused(&engine, &mut filler, 300, &mut model);
    check_reads_during_fault(&engine, &model);

    filler.give_back(ENGINE_PROBE_BYTES + (16 << 10));
    // Past two attempts to reopen: reads work throughout; writes succeed
    // (should the engine manage in that room) or are refused. Failed reads
    // are counted, so that the rest of the test still runs.
    let until = Instant::now() + 2 * RETRY_WAIT;
    let mut recovered = false;
    let mut failed_reads = Vec::new();
    let mut polls = 0;
    while Instant::now() < until {
        polls += 1;
        if let Err(failure) = reads_during_fault(&engine, &model) {
            failed_reads.push(failure);
        }
        if !recovered {
            match engine.reserve(one_unit(RECOVERY_ORDER)).wait() {
                Ok(_) => {
                    recovered = true;
                    model.acknowledged.push(Sent::Reserve {
                        order: RECOVERY_ORDER,
                        key: None,
                    });
                }
                Err(Error::StorageUnavailable(_)) => {}
                Err(other) => panic!(
                    "with too little room, writes answer storage_unavailable, not {} ({other:?})",
                    other.code()
                ),
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }

    filler.remove();
    if !recovered {
        wait_for_writes(&engine, &mut model);
    }
    assert!(engine.is_healthy());
    settle_in_doubt(&engine, &mut model);
    check_exactly_once(&engine, &model);
    engine.shutdown();
    drop(engine);
    let engine = Engine::open(disk_config(&dir, &clock)).unwrap();
    check_exactly_once(&engine, &model);
    engine.shutdown();
    assert!(
        failed_reads.is_empty(),
        "reads failed in {} of {polls} polls with a little room back (enough for the writer's \
         probe, not for its reopen); nothing was lost once there was room. First: {}",
        failed_reads.len(),
        failed_reads[0]
    );
}
