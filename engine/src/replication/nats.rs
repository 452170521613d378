//! Replication over NATS JetStream: a primary's [`Publisher`] ships every
//! write-ahead log record to a stream and every event to per-type subjects;
//! a [`Follower`] starts from a snapshot in JetStream's object store and
//! applies the records after it.
//!
//! Names, for a store named `S` (`NatsConfig::store`):
//!
//! - stream `MERCATO_S_LOG`, subject `mercato.S.log`: one message per log
//!   record, in order, or, for a record larger than fits in one message
//!   (the server's `max_payload`), its consecutive chunks. Headers:
//!   `Nats-Msg-Id` (the record's number, so that JetStream's duplicate
//!   window absorbs a retried publish; a chunk's is
//!   `<lsn>:<index>/<count>@<stream sequence>`), `Mercato-Lsn`,
//!   `Mercato-Epoch` (the primary that wrote it), `Mercato-Primary` (its
//!   advertised URL), on a chunk `Mercato-Chunk: <index>/<count>` (from 1),
//!   `Mercato-Record-Bytes` and `Mercato-Record-Crc32` (of the whole
//!   record), and `Mercato-Kind: promote` on the message a new primary
//!   writes when it takes over (no payload).
//! - stream `MERCATO_S_EVENTS`, subjects `mercato.S.events.<type>`: every
//!   event as JSON (`seq`, `type`, `payload`, `created_at`), with
//!   `Nats-Msg-Id` `S:<seq>`.
//! - object store bucket `mercato_S_snapshots`, object `latest`: the newest
//!   [`ReplicaSnapshot`] (the object store chunks it, in chunks that fit the
//!   server's `max_payload`).
//!
//! **Chunks.** A follower applies a record only once it holds all its
//! chunks, in order, each checked against the record's length and CRC. A
//! record's chunks are consecutive in the stream unless abandoned: a
//! publisher that restarts (or is deposed) mid-record leaves a partial
//! record, which the next start of that record (its chunk 1, or the whole
//! record in one message) or a promotion marker abandons. Anything else (a
//! chunk out of order, of another record, of another count) is refused.
//!
//! **Trimming.** After each new snapshot the publisher purges the log
//! stream's messages up to the *older* of the last two snapshots: a new
//! follower (which starts from the newest snapshot, or from the one before
//! it if it fetched that just before) always finds the next record. A
//! follower that fell behind the purge (stopped for long) installs the
//! newest snapshot in place of its store
//! ([`Engine::bootstrap_follower`]) and follows from there.
//!
//! **Fencing.** Every publish to the log stream carries
//! `Nats-Expected-Last-Sequence`: the stream's last sequence as this
//! publisher knows it. JetStream (a Raft group) accepts it only when the
//! stream still ends there, so a publish is a compare-and-set on the
//! stream's tail. A promotion is such a publish too (the `promote` message,
//! under the new primary's epoch), so once a follower is promoted, the old
//! primary's next publish is refused; it then stops taking writes
//! ([`Engine::fence`]). A primary that restarts reads the stream's last
//! message: another epoch there means it was deposed, and it fences itself
//! before taking any write.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage as Publish, stream};
use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::io::AsyncReadExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::engine::Engine;
use crate::error::Error;
use crate::event::EventEnvelope;
use crate::replication::{ReplicaRecord, ReplicaSnapshot};

const HEADER_LSN: &str = "Mercato-Lsn";
const HEADER_EPOCH: &str = "Mercato-Epoch";
const HEADER_PRIMARY: &str = "Mercato-Primary";
const HEADER_KIND: &str = "Mercato-Kind";
const KIND_PROMOTE: &str = "promote";
const HEADER_CHUNK: &str = "Mercato-Chunk";
const HEADER_RECORD_BYTES: &str = "Mercato-Record-Bytes";
const HEADER_RECORD_CRC: &str = "Mercato-Record-Crc32";
/// Room left in a message for its headers (beyond the advertised URL),
/// under the server's `max_payload`.
const CHUNK_HEADROOM_BYTES: usize = 1_024;
/// The smallest chunk worth publishing: a server whose `max_payload`
/// leaves less is refused.
const CHUNK_BYTES_MIN: usize = 4_096;
/// The most chunks of one record a follower accepts.
const RECORD_CHUNKS_MAX: u64 = 262_144;
const _: () = assert!(
    crate::wal::RECORD_BYTES_MAX.div_ceil(CHUNK_BYTES_MIN) as u64 <= RECORD_CHUNKS_MAX,
    "a record of the largest size fits in chunks of the smallest size"
);
/// The object store's chunks of a snapshot, at most (its own default).
const SNAPSHOT_CHUNK_BYTES_MAX: usize = 128 * 1_024;
/// How long a snapshot's download may go without a byte before it is
/// started again.
const SNAPSHOT_READ_IDLE_MAX: Duration = Duration::from_secs(5);
const SNAPSHOT_OBJECT: &str = "latest";
/// The file in the data directory holding this primary's epoch.
pub const EPOCH_FILE_NAME: &str = "replication_epoch";
/// Records read from the store and published per round.
const PUBLISH_BATCH_MAX: usize = 256;
/// Events published per round.
const EVENT_BATCH_MAX: usize = 256;
/// Records applied by a follower before it waits for their answers.
const APPLY_IN_FLIGHT_MAX: usize = 64;
/// The consumer name the event publisher saves its position under.
pub const EVENTS_CONSUMER: &str = "nats-events";
/// How long a follower waits for a message before it checks that its
/// consumer still works.
const FOLLOW_IDLE_CHECK: Duration = Duration::from_secs(3);
/// Attempts at a promotion before it is given up (about a minute).
const PROMOTE_ATTEMPTS_MAX: u32 = 16;
/// The longest wait between two attempts after a NATS failure.
const RETRY_INTERVAL_MAX: Duration = Duration::from_secs(5);

/// When an answer is sent, relative to JetStream's acknowledgement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicationMode {
    /// Answers once the batch is synced locally; records are published
    /// behind the answers (the lag is reported).
    #[default]
    Async,
    /// Answers only once JetStream has also acknowledged the batch's
    /// record (with 3 replicas: a Raft majority has it).
    Sync,
}

/// How to reach JetStream and what to call things there.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    /// The NATS server(s), e.g. `nats://127.0.0.1:4222` (comma-separated
    /// for several).
    pub url: String,
    /// The store's name in subjects and stream names: letters, digits,
    /// `-` and `_`. Default: `default`.
    pub store: String,
    /// Stream (and snapshot bucket) replicas: 1, or 3 on a cluster.
    /// Default: 1.
    pub replicas: usize,
    /// Sync or async replication. Default: async.
    pub mode: ReplicationMode,
    /// This server's URL, which followers name in their refusals of writes.
    pub advertise: Option<String>,
    /// Records between two snapshots. Default: 100,000. The log stream
    /// keeps the records after the snapshot before the newest: about twice
    /// this many.
    pub snapshot_every_records: u64,
}

impl NatsConfig {
    /// The defaults for a server at `url`.
    pub fn new(url: impl Into<String>) -> NatsConfig {
        NatsConfig {
            url: url.into(),
            store: "default".to_owned(),
            replicas: 1,
            mode: ReplicationMode::Async,
            advertise: None,
            snapshot_every_records: 100_000,
        }
    }

    /// Checks the names and numbers.
    pub fn validate(&self) -> Result<(), Error> {
        let valid = !self.store.is_empty()
            && self.store.len() <= 64
            && self
                .store
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if !valid {
            return Err(Error::invalid(
                "store",
                "1 to 64 letters, digits, '-' or '_'",
            ));
        }
        server_addresses(&self.url)?;
        if !(1..=5).contains(&self.replicas) {
            return Err(Error::invalid("replicas", "between 1 and 5"));
        }
        if self.snapshot_every_records == 0 {
            return Err(Error::invalid("snapshot_every_records", "at least 1"));
        }
        Ok(())
    }

    fn log_stream(&self) -> String {
        format!("MERCATO_{}_LOG", self.store.to_ascii_uppercase())
    }

    fn log_subject(&self) -> String {
        format!("mercato.{}.log", self.store)
    }

    fn events_stream(&self) -> String {
        format!("MERCATO_{}_EVENTS", self.store.to_ascii_uppercase())
    }

    fn events_subject(&self, type_name: &str) -> String {
        format!("mercato.{}.events.{type_name}", self.store)
    }

    fn bucket(&self) -> String {
        format!("mercato_{}_snapshots", self.store)
    }
}

/// Where replication stands, shared with whoever reports it (metrics,
/// `/readyz`). Positions are log record numbers.
#[derive(Debug, Default)]
pub struct ReplicationStatus {
    /// The last record JetStream acknowledged (primary) or this follower
    /// applied (follower).
    pub replicated_lsn: AtomicU64,
    /// The last record in the stream as last seen (follower).
    pub stream_lsn: AtomicU64,
    /// Follower: records in the stream not yet applied.
    pub lag_records: AtomicU64,
    /// Follower: how old, in milliseconds, the oldest record not yet
    /// applied is (0 when caught up).
    pub lag_ms: AtomicU64,
    /// True while connected and working.
    pub connected: AtomicBool,
    /// The last snapshot's record number.
    pub snapshot_lsn: AtomicU64,
    /// Follower: true once its store holds a snapshot (installed now or
    /// before a restart), so that it answers reads.
    pub bootstrapped: AtomicBool,
    /// True once replication stopped for good (fenced, or a fault that
    /// needs a person: see the log).
    pub stopped: AtomicBool,
}

/// What went wrong, for the retry loops.
#[derive(Debug)]
enum Failure {
    /// Another primary took over: stop for good.
    Fenced(String),
    /// Cannot go on without a person (a gap in the kept records).
    Fatal(String),
    /// NATS is unreachable or refused something: try again.
    Transient(String),
}

fn transient(error: impl std::fmt::Display) -> Failure {
    Failure::Transient(error.to_string())
}

/// The servers in `url`, comma-separated.
fn server_addresses(url: &str) -> Result<Vec<async_nats::ServerAddr>, Error> {
    url.split(',')
        .map(|one| {
            one.trim()
                .parse::<async_nats::ServerAddr>()
                .map_err(|error| Error::invalid("nats url", format!("{one:?}: {error}")))
        })
        .collect()
}

async fn connect(config: &NatsConfig) -> Result<jetstream::Context, Failure> {
    let servers =
        server_addresses(&config.url).map_err(|error| Failure::Fatal(error.to_string()))?;
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(servers)
        .await
        .map_err(transient)?;
    Ok(jetstream::new(client))
}

async fn ensure_streams(
    context: &jetstream::Context,
    config: &NatsConfig,
) -> Result<(stream::Stream, jetstream::object_store::ObjectStore), Failure> {
    let log = context
        .get_or_create_stream(stream::Config {
            name: config.log_stream(),
            subjects: vec![config.log_subject()],
            num_replicas: config.replicas,
            duplicate_window: Duration::from_secs(120),
            storage: stream::StorageType::File,
            ..stream::Config::default()
        })
        .await
        .map_err(transient)?;
    context
        .get_or_create_stream(stream::Config {
            name: config.events_stream(),
            subjects: vec![format!("mercato.{}.events.>", config.store)],
            num_replicas: config.replicas,
            duplicate_window: Duration::from_secs(120),
            storage: stream::StorageType::File,
            ..stream::Config::default()
        })
        .await
        .map_err(transient)?;
    let bucket = match context.get_object_store(config.bucket()).await {
        Ok(bucket) => bucket,
        Err(_) => context
            .create_object_store(jetstream::object_store::Config {
                bucket: config.bucket(),
                num_replicas: config.replicas,
                ..Default::default()
            })
            .await
            .map_err(transient)?,
    };
    Ok((log, bucket))
}

/// The stream's tail: its last sequence, the last whole record's number
/// (the record before a partial one at the tail) and the last message's
/// epoch (none for an empty stream).
struct Tail {
    sequence: u64,
    lsn: u64,
    epoch: Option<String>,
}

async fn tail(log: &mut stream::Stream) -> Result<Tail, Failure> {
    let info = log.info().await.map_err(transient)?;
    let sequence = info.state.last_sequence;
    if info.state.messages == 0 {
        return Ok(Tail {
            sequence,
            lsn: 0,
            epoch: None,
        });
    }
    let message = log.get_raw_message(sequence).await.map_err(transient)?;
    let lsn = header_u64(&message.headers, HEADER_LSN).map_err(Failure::Fatal)?;
    // A publisher stopped mid-record: that record is not in the stream.
    let partial = chunk_of(&message.headers)
        .map_err(Failure::Fatal)?
        .is_some_and(|(index, count)| index < count);
    Ok(Tail {
        sequence,
        lsn: if partial {
            lsn.checked_sub(1)
                .ok_or_else(|| Failure::Fatal("a chunk of record 0 in the log".to_owned()))?
        } else {
            lsn
        },
        epoch: header(&message.headers, HEADER_EPOCH).map(str::to_owned),
    })
}

/// A chunk's `(index, count)` (index from 1), `None` for a whole record.
fn chunk_of(headers: &HeaderMap) -> Result<Option<(u64, u64)>, String> {
    let Some(value) = header(headers, HEADER_CHUNK) else {
        return Ok(None);
    };
    let bad = || format!("a log message with a malformed {HEADER_CHUNK} header: {value:?}");
    let (index, count) = value.split_once('/').ok_or_else(bad)?;
    let index: u64 = index.parse().map_err(|_| bad())?;
    let count: u64 = count.parse().map_err(|_| bad())?;
    if !(2..=RECORD_CHUNKS_MAX).contains(&count) {
        return Err(format!(
            "a record in {count} chunks: between 2 and {RECORD_CHUNKS_MAX} are accepted"
        ));
    }
    if index == 0 || index > count {
        return Err(bad());
    }
    Ok(Some((index, count)))
}

/// The most bytes of a record per message: the server's `max_payload`
/// less room for the headers.
fn chunk_bytes(context: &jetstream::Context, config: &NatsConfig) -> Result<usize, Failure> {
    let max_payload = context.client().max_payload();
    let headroom = CHUNK_HEADROOM_BYTES + config.advertise.as_ref().map_or(0, String::len);
    let chunk = max_payload.saturating_sub(headroom);
    if chunk < CHUNK_BYTES_MIN {
        return Err(Failure::Fatal(format!(
            "the NATS server's max_payload ({max_payload} bytes) leaves {chunk} bytes per message \
             for the log's records after {headroom} bytes of headers; at least {CHUNK_BYTES_MIN} \
             are needed: raise max_payload"
        )));
    }
    Ok(chunk)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.as_str())
}

fn header_u64(headers: &HeaderMap, name: &str) -> Result<u64, String> {
    header(headers, name)
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| format!("a log message without a valid {name} header"))
}

/// This primary's epoch: made at its first publish, and anew at each
/// promotion, kept in the data directory.
fn epoch_path(engine: &Engine) -> PathBuf {
    engine.config().data_dir.join(EPOCH_FILE_NAME)
}

fn read_epoch(engine: &Engine) -> Result<Option<String>, Failure> {
    match std::fs::read_to_string(epoch_path(engine)) {
        Ok(epoch) => Ok(Some(epoch.trim().to_owned())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(Failure::Fatal(format!("reading the epoch: {error}"))),
    }
}

fn write_epoch(engine: &Engine, epoch: &str) -> Result<(), Failure> {
    let path = epoch_path(engine);
    let temporary = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        std::fs::write(&temporary, epoch.as_bytes())?;
        std::fs::File::open(&temporary)?.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        std::fs::File::open(&engine.config().data_dir)?.sync_all()
    };
    write().map_err(|error| Failure::Fatal(format!("writing the epoch: {error}")))
}

fn new_epoch() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn backoff(attempt: u32) -> Duration {
    (Duration::from_millis(100) * 2u32.saturating_pow(attempt.min(6))).min(RETRY_INTERVAL_MAX)
}

/// A primary's publisher: ships log records and events to JetStream.
pub struct Publisher {
    status: Arc<ReplicationStatus>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Publisher {
    /// Starts publishing `engine`'s records (it must have been opened with
    /// [`ReplicationRole::Primary`](crate::ReplicationRole::Primary), or
    /// promoted) and events. Runs until [`Publisher::stop`]; NATS failures
    /// are retried with backoff; a fencing stops it and fences the engine.
    pub fn start(engine: Engine, config: NatsConfig) -> Result<Publisher, Error> {
        config.validate()?;
        engine.hold_writes(
            "this primary is checking with JetStream that it is still the primary; retry shortly",
        );
        let status = Arc::new(ReplicationStatus::default());
        status
            .replicated_lsn
            .store(engine.last_lsn(), Ordering::SeqCst);
        let fenced = Arc::new(AtomicBool::new(false));
        let feed = match config.mode {
            ReplicationMode::Async => None,
            ReplicationMode::Sync => {
                let Some(gate) = engine.take_replication_gate() else {
                    engine.release_writes();
                    return Err(Error::invalid(
                        "mode",
                        "sync replication needs an engine opened with replication_sync",
                    ));
                };
                Some(Arc::new(tokio::sync::Mutex::new(SyncFeed::start(
                    gate,
                    fenced.clone(),
                ))))
            }
        };
        let (stop, stopped) = watch::channel(false);
        let records = tokio::spawn(publish_records_loop(
            engine.clone(),
            config.clone(),
            status.clone(),
            feed,
            fenced.clone(),
            stopped.clone(),
        ));
        let events = tokio::spawn(publish_events_loop(engine, config, stopped));
        Ok(Publisher {
            status,
            stop,
            tasks: vec![records, events],
        })
    }

    /// Where replication stands.
    pub fn status(&self) -> Arc<ReplicationStatus> {
        self.status.clone()
    }

    /// Stops after the round in hand.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Sync mode's feed: the gate's batches, moved from the engine's blocking
/// channel by a thread of their own, and those taken but not yet
/// released (kept across reconnections).
struct SyncFeed {
    receiver: tokio::sync::mpsc::Receiver<crate::replication::GatedBatch>,
    pending: std::collections::VecDeque<crate::replication::GatedBatch>,
}

impl SyncFeed {
    fn start(gate: crate::replication::ReplicationGate, fenced: Arc<AtomicBool>) -> SyncFeed {
        let (sender, receiver) = tokio::sync::mpsc::channel(crate::replication::GATE_BATCHES_MAX);
        // The thread lives as long as the gate: once fenced or once the
        // publisher is gone it fails what arrives, so that the log thread
        // never waits on a gate nobody reads.
        let spawned = std::thread::Builder::new()
            .name("mercato-gate".to_owned())
            .spawn(move || {
                while let Ok(batch) = gate.receiver.recv() {
                    if fenced.load(Ordering::SeqCst) {
                        batch.fail(&fenced_error());
                        continue;
                    }
                    if let Err(unsent) = sender.blocking_send(batch) {
                        unsent.0.fail(&Error::ShuttingDown);
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the replication gate's thread");
        }
        SyncFeed {
            receiver,
            pending: std::collections::VecDeque::new(),
        }
    }
}

fn fenced_error() -> Error {
    Error::NotPrimary {
        reason: "this primary was deposed before the write was replicated; its outcome is \
                 unknown: read it back from the new primary"
            .to_owned(),
        primary: None,
    }
}

async fn publish_records_loop(
    engine: Engine,
    config: NatsConfig,
    status: Arc<ReplicationStatus>,
    feed: Option<Arc<tokio::sync::Mutex<SyncFeed>>>,
    fenced: Arc<AtomicBool>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut attempt = 0;
    loop {
        let started = Instant::now();
        let outcome = tokio::select! {
            outcome = publish_records(&engine, &config, &status, feed.as_deref(), &mut attempt) => outcome,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        status.connected.store(false, Ordering::SeqCst);
        match outcome {
            Failure::Fenced(reason) => {
                fenced.store(true, Ordering::SeqCst);
                engine.fence(reason);
                if let Some(feed) = &feed {
                    let mut feed = feed.lock().await;
                    for batch in feed.pending.drain(..) {
                        batch.fail(&fenced_error());
                    }
                    while let Ok(batch) = feed.receiver.try_recv() {
                        batch.fail(&fenced_error());
                    }
                }
                return;
            }
            Failure::Fatal(reason) => {
                tracing::error!(%reason, "replication stopped; records are kept until it is fixed");
                status.stopped.store(true, Ordering::SeqCst);
                return;
            }
            Failure::Transient(reason) => {
                if started.elapsed() > Duration::from_secs(10) {
                    attempt = 0;
                }
                let wait = backoff(attempt);
                attempt += 1;
                tracing::warn!(%reason, ?wait, "publishing the log failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
            }
        }
    }
}

/// Publishes until something fails; answers the failure.
async fn publish_records(
    engine: &Engine,
    config: &NatsConfig,
    status: &ReplicationStatus,
    feed: Option<&tokio::sync::Mutex<SyncFeed>>,
    attempt: &mut u32,
) -> Failure {
    match publish_records_inner(engine, config, status, feed, attempt).await {
        Ok(never) => match never {},
        Err(failure) => failure,
    }
}

async fn publish_records_inner(
    engine: &Engine,
    config: &NatsConfig,
    status: &ReplicationStatus,
    feed: Option<&tokio::sync::Mutex<SyncFeed>>,
    attempt: &mut u32,
) -> Result<std::convert::Infallible, Failure> {
    let context = connect(config).await?;
    let chunk_bytes = chunk_bytes(&context, config)?;
    let (mut log, bucket) = ensure_streams(&context, config).await?;
    let tail = tail(&mut log).await?;
    let epoch = match (read_epoch(engine)?, &tail.epoch) {
        (Some(ours), Some(theirs)) if ours != *theirs => {
            return Err(Failure::Fenced(format!(
                "the replicated log's last record ({}) was written by another primary (epoch {theirs}); \
                 this one (epoch {ours}) was deposed",
                tail.lsn
            )));
        }
        (Some(ours), _) => ours,
        (None, Some(theirs)) => {
            return Err(Failure::Fenced(format!(
                "the replicated log belongs to another primary (epoch {theirs}); start this server \
                 as a follower, or promote a follower"
            )));
        }
        (None, None) => {
            let epoch = new_epoch();
            write_epoch(engine, &epoch)?;
            epoch
        }
    };
    // Sync mode: batches taken from the gate before a failure are synced
    // here but not yet released (so not in `last_lsn`); some of their
    // records may be in the stream already.
    let mut local_last = engine.last_lsn();
    if let Some(feed) = feed {
        let feed = feed.lock().await;
        for batch in &feed.pending {
            if let Some(record) = batch.records.last() {
                local_last = local_last.max(record.lsn);
            }
        }
    }
    if tail.lsn > local_last {
        return Err(Failure::Fenced(format!(
            "the replicated log reaches record {} but this store only {local_last}",
            tail.lsn,
        )));
    }
    let mut published = tail.lsn;
    let mut expected = tail.sequence;
    // The newest snapshot's record, `None` when there is none yet.
    let mut snapshot_lsn = match bucket.info(SNAPSHOT_OBJECT).await {
        Ok(info) => Some(
            info.headers
                .as_ref()
                .and_then(|headers| header_u64(headers, HEADER_LSN).ok())
                .unwrap_or(0),
        ),
        Err(_) => None,
    };
    status
        .snapshot_lsn
        .store(snapshot_lsn.unwrap_or(0), Ordering::SeqCst);
    status.replicated_lsn.store(published, Ordering::SeqCst);
    status.connected.store(true, Ordering::SeqCst);
    // The stream's tail is ours: writes may go on.
    engine.release_writes();
    tracing::info!(published, expected, %epoch, "publishing the log to JetStream");
    let mut lsn_watch = engine.watch_lsn();
    let mut last_trim = Instant::now();
    let mut trimmed = 0;
    // The log stream's messages up to this record are to be purged.
    let mut purge_due = None;
    loop {
        let records = engine
            .replication_records_after(published, PUBLISH_BATCH_MAX)
            .map_err(transient)?;
        if let Some(first) = records.first()
            && first.lsn != published + 1
        {
            return Err(Failure::Fatal(format!(
                "records {} to {} are not kept (the store ran without replication?): \
                 start followers afresh from a new snapshot",
                published + 1,
                first.lsn - 1
            )));
        }
        if records.is_empty() && engine.last_lsn() > published {
            // The record is durable but the view that holds it may be a
            // moment behind: wait for the next publish of the view.
            let first_kept = engine.first_kept_lsn().map_err(transient)?;
            if first_kept.is_none_or(|first| first > published + 1) {
                return Err(Failure::Fatal(format!(
                    "record {} is not kept (the store ran without replication?): \
                     start followers afresh from a new snapshot",
                    published + 1
                )));
            }
        }
        if !records.is_empty() {
            // (acknowledgement, record, whether its last message)
            let mut acks = Vec::with_capacity(records.len());
            for record in &records {
                let messages = record_messages(
                    record,
                    &epoch,
                    config,
                    chunk_bytes,
                    expected + acks.len() as u64,
                );
                let last = messages.len() - 1;
                for (index, (headers, payload)) in messages.into_iter().enumerate() {
                    let publish = Publish::build().headers(headers).payload(payload);
                    let ack = context
                        .send_publish(config.log_subject(), publish)
                        .await
                        .map_err(|error| publish_failure(error, record.lsn))?;
                    acks.push((ack, record.lsn, index == last));
                }
            }
            for (ack, lsn, whole) in acks {
                let ack = ack.await.map_err(|error| publish_failure(error, lsn))?;
                if ack.duplicate {
                    return Err(Failure::Fenced(format!(
                        "record {lsn} was already in the replicated log: another primary wrote it"
                    )));
                }
                expected = ack.sequence;
                if whole {
                    published = lsn;
                }
            }
            status.replicated_lsn.store(published, Ordering::SeqCst);
            *attempt = 0;
        }
        // Sync mode, once the kept records are shipped: the batches waiting
        // at the gate, released as JetStream acknowledges them.
        let mut gated_round = false;
        if let Some(feed) = feed
            && records.is_empty()
        {
            let mut feed = feed.lock().await;
            gated_round = publish_gated(
                &context,
                config,
                &epoch,
                chunk_bytes,
                &mut feed,
                &mut published,
                &mut expected,
            )
            .await?;
            status.replicated_lsn.store(published, Ordering::SeqCst);
            *attempt = 0;
        }
        if snapshot_lsn.is_none_or(|lsn| published >= lsn + config.snapshot_every_records) {
            let snapshot = engine.replication_snapshot().map_err(transient)?;
            // Only a state the stream holds every record of: a follower
            // started from it finds the next record in the stream.
            if snapshot.lsn <= published {
                upload_snapshot(&bucket, &snapshot, chunk_bytes).await?;
                // The records up to the snapshot before this one are no
                // longer needed by a follower that starts now.
                if snapshot_lsn.is_some() {
                    purge_due = snapshot_lsn;
                }
                snapshot_lsn = Some(snapshot.lsn);
                status.snapshot_lsn.store(snapshot.lsn, Ordering::SeqCst);
                tracing::info!(
                    lsn = snapshot.lsn,
                    bytes = snapshot.payload.len(),
                    "snapshot uploaded"
                );
            }
        }
        if let Some(older) = purge_due {
            match purge_through(&mut log, older).await {
                Ok(_) => purge_due = None,
                Err(failure) => tracing::warn!(
                    ?failure,
                    older,
                    "trimming the log stream failed; retried after the next round"
                ),
            }
        }
        if published > trimmed
            && (last_trim.elapsed() >= Duration::from_secs(1) || records.is_empty())
        {
            // Not awaited here: with sync replication the trim's own
            // batch waits at the gate this task releases.
            let trim = engine.trim_replication_log(published);
            tokio::spawn(async move {
                if let Err(error) = trim.await {
                    tracing::warn!(%error, "trimming the shipped records failed; retried later");
                }
            });
            trimmed = published;
            last_trim = Instant::now();
        }
        if feed.is_some() {
            // The gate's own wait paces sync mode.
            let _ = gated_round;
        } else if records.len() < PUBLISH_BATCH_MAX {
            let wait = lsn_watch.wait_for(|&lsn| lsn > published);
            match tokio::time::timeout(Duration::from_secs(1), wait).await {
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(_)) => return Err(Failure::Fatal("the engine stopped".to_owned())),
            }
        }
    }
}

/// Publishes the records of the batches waiting at the gate (those taken
/// before a failure first), pipelined, and releases each batch once its
/// records are acknowledged. Waits up to a second for a first batch.
/// Answers whether there was anything to do. On a failure, the batches
/// not yet released are kept for the next attempt.
async fn publish_gated(
    context: &jetstream::Context,
    config: &NatsConfig,
    epoch: &str,
    chunk_bytes: usize,
    feed: &mut SyncFeed,
    published: &mut u64,
    expected: &mut u64,
) -> Result<bool, Failure> {
    let mut round: std::collections::VecDeque<_> = feed.pending.drain(..).collect();
    if round.is_empty() {
        match tokio::time::timeout(Duration::from_secs(1), feed.receiver.recv()).await {
            Ok(Some(batch)) => round.push_back(batch),
            Ok(None) => return Err(Failure::Fatal("the engine stopped".to_owned())),
            Err(_) => return Ok(false),
        }
    }
    let mut count: usize = round.iter().map(|batch| batch.records.len()).sum();
    while count < PUBLISH_BATCH_MAX {
        match feed.receiver.try_recv() {
            Ok(batch) => {
                count += batch.records.len();
                round.push_back(batch);
            }
            Err(_) => break,
        }
    }
    let outcome = publish_round(
        context,
        config,
        epoch,
        chunk_bytes,
        &mut round,
        published,
        expected,
    )
    .await;
    // What was not released waits for the next attempt, in order.
    while let Some(batch) = round.pop_back() {
        feed.pending.push_front(batch);
    }
    outcome.map(|()| true)
}

async fn publish_round(
    context: &jetstream::Context,
    config: &NatsConfig,
    epoch: &str,
    chunk_bytes: usize,
    round: &mut std::collections::VecDeque<crate::replication::GatedBatch>,
    published: &mut u64,
    expected: &mut u64,
) -> Result<(), Failure> {
    // Send everything, then take the acknowledgements in order.
    let mut acks = Vec::new();
    let mut sent_lsn = *published;
    for (index, batch) in round.iter().enumerate() {
        for record in &batch.records {
            if record.lsn <= sent_lsn {
                continue; // already in the stream (acknowledged before a failure)
            }
            if record.lsn != sent_lsn + 1 {
                return Err(Failure::Fatal(format!(
                    "record {} cannot follow record {sent_lsn} in the replicated log",
                    record.lsn
                )));
            }
            let messages = record_messages(
                record,
                epoch,
                config,
                chunk_bytes,
                *expected + acks.len() as u64,
            );
            let last = messages.len() - 1;
            for (chunk, (headers, payload)) in messages.into_iter().enumerate() {
                let publish = Publish::build().headers(headers).payload(payload);
                let ack = context
                    .send_publish(config.log_subject(), publish)
                    .await
                    .map_err(|error| publish_failure(error, record.lsn))?;
                acks.push((index, record.lsn, chunk == last, ack));
            }
            sent_lsn = record.lsn;
        }
    }
    let mut released = 0;
    for (index, lsn, whole, ack) in acks {
        // Batches before this one's are wholly acknowledged.
        while released < index {
            round.pop_front().expect("a batch per index").release();
            released += 1;
        }
        let ack = ack.await.map_err(|error| publish_failure(error, lsn))?;
        if ack.duplicate {
            return Err(Failure::Fenced(format!(
                "record {lsn} was already in the replicated log: another primary wrote it"
            )));
        }
        *expected = ack.sequence;
        if whole {
            *published = lsn;
        }
    }
    while let Some(batch) = round.pop_front() {
        batch.release();
    }
    Ok(())
}

/// A record's messages, as headers and payload: the record whole when it
/// fits in `chunk_bytes`, else its chunks. Each expects the one before it
/// at the stream's tail, the first `expected`.
fn record_messages(
    record: &ReplicaRecord,
    epoch: &str,
    config: &NatsConfig,
    chunk_bytes: usize,
    expected: u64,
) -> Vec<(HeaderMap, Bytes)> {
    use async_nats::header::{NATS_EXPECTED_LAST_SEQUENCE, NATS_MESSAGE_ID};
    assert!(chunk_bytes >= CHUNK_BYTES_MIN, "chunks are never tiny");
    let lsn = record.lsn.to_string();
    let headers = |id: &str, expected: u64| {
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MESSAGE_ID, id);
        headers.insert(NATS_EXPECTED_LAST_SEQUENCE, expected.to_string().as_str());
        headers.insert(HEADER_LSN, lsn.as_str());
        headers.insert(HEADER_EPOCH, epoch);
        if let Some(advertise) = &config.advertise {
            headers.insert(HEADER_PRIMARY, advertise.as_str());
        }
        headers
    };
    let payload = Bytes::from(record.payload.clone());
    if payload.len() <= chunk_bytes {
        return vec![(headers(&lsn, expected), payload)];
    }
    let count = payload.len().div_ceil(chunk_bytes);
    assert!(count >= 2, "a record split in chunks has several");
    assert!(
        count as u64 <= RECORD_CHUNKS_MAX,
        "a record fits in the chunks a follower accepts"
    );
    let bytes = payload.len().to_string();
    let crc = crc32fast::hash(&payload).to_string();
    (0..count)
        .map(|index| {
            let start = index * chunk_bytes;
            let end = (start + chunk_bytes).min(payload.len());
            let sequence = expected + index as u64 + 1;
            let chunk = format!("{}/{count}", index + 1);
            let mut headers = headers(&format!("{lsn}:{chunk}@{sequence}"), sequence - 1);
            headers.insert(HEADER_CHUNK, chunk.as_str());
            headers.insert(HEADER_RECORD_BYTES, bytes.as_str());
            headers.insert(HEADER_RECORD_CRC, crc.as_str());
            (headers, payload.slice(start..end))
        })
        .collect()
}

fn publish_failure(error: async_nats::jetstream::context::PublishError, lsn: u64) -> Failure {
    use async_nats::jetstream::context::PublishErrorKind;
    match error.kind() {
        PublishErrorKind::WrongLastSequence => Failure::Fenced(format!(
            "JetStream refused record {lsn}: the replicated log moved on without this primary \
             (another one was promoted)"
        )),
        // Split to fit the server connected to at the start: another
        // server (a reconnection in a cluster) may have a smaller limit.
        // Reconnecting splits again for the server found then.
        PublishErrorKind::MaxPayloadExceeded => transient(format!(
            "a message of record {lsn} is larger than the NATS server's max_payload ({error}); \
             give every server of the cluster the same max_payload"
        )),
        _ => transient(format!("publishing record {lsn}: {error}")),
    }
}

/// Removes the log stream's messages of records up to `lsn` (and the
/// promotion markers among them): every message before the first whose
/// record follows `lsn`. Answers how many went.
async fn purge_through(log: &mut stream::Stream, lsn: u64) -> Result<u64, Failure> {
    let Some(first_kept) = first_after(log, lsn).await? else {
        // Nothing after it yet: the stream's last record is still needed
        // to find the tail.
        return Ok(0);
    };
    let purged = log
        .purge()
        .sequence(first_kept)
        .await
        .map_err(transient)?
        .purged;
    if purged > 0 {
        tracing::info!(lsn, purged, first_kept, "trimmed the log stream");
    }
    Ok(purged)
}

async fn upload_snapshot(
    bucket: &jetstream::object_store::ObjectStore,
    snapshot: &ReplicaSnapshot,
    chunk_bytes: usize,
) -> Result<(), Failure> {
    let bytes = snapshot.encode();
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_LSN, snapshot.lsn.to_string().as_str());
    let meta = jetstream::object_store::ObjectMetadata {
        name: SNAPSHOT_OBJECT.to_owned(),
        headers: Some(headers),
        chunk_size: Some(chunk_bytes.min(SNAPSHOT_CHUNK_BYTES_MAX)),
        ..Default::default()
    };
    bucket
        .put(meta, &mut bytes.as_slice())
        .await
        .map_err(transient)?;
    Ok(())
}

async fn publish_events_loop(
    engine: Engine,
    config: NatsConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let mut attempt = 0;
    loop {
        let outcome = tokio::select! {
            outcome = publish_events(&engine, &config) => outcome,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        let wait = backoff(attempt);
        attempt += 1;
        match outcome {
            Err(Failure::Fenced(_) | Failure::Fatal(_)) => return,
            Err(Failure::Transient(reason)) => {
                if engine.fenced().is_some() {
                    return;
                }
                tracing::warn!(%reason, ?wait, "publishing events failed; retrying");
            }
            Ok(()) => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

/// Publishes every event after the consumer's saved position, then saves
/// it: at least once; JetStream's duplicate window (keyed by the event's
/// seq) makes a repeat after a restart a no-op.
async fn publish_events(engine: &Engine, config: &NatsConfig) -> Result<(), Failure> {
    let context = connect(config).await?;
    ensure_streams(&context, config).await?;
    let mut subscription = engine.subscribe(EVENTS_CONSUMER).map_err(transient)?;
    loop {
        let events = match subscription.next_batch(EVENT_BATCH_MAX).await {
            Ok(events) => events,
            Err(Error::ShuttingDown) => return Ok(()),
            Err(error) => return Err(transient(error)),
        };
        let mut acks = Vec::with_capacity(events.len());
        for event in &events {
            let publish = Publish::build()
                .payload(Bytes::from(event_body(event)))
                .message_id(format!("{}:{}", config.store, event.seq));
            let ack = context
                .send_publish(config.events_subject(event.event.type_name()), publish)
                .await
                .map_err(transient)?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(transient)?;
        }
        if let Some(last) = events.last() {
            match subscription.ack(last.seq).await {
                Ok(()) => {}
                // Deposed: the new primary publishes from the replicated
                // position. (Held writes at start are retried.)
                Err(Error::NotPrimary { .. }) if engine.fenced().is_some() => {
                    return Err(Failure::Fenced("deposed".into()));
                }
                Err(error) => return Err(transient(error)),
            }
        }
    }
}

/// An event as JSON: `{"seq", "type", "payload", "created_at"}`, the shape
/// of `GET /api/v1/events`'s items.
pub fn event_body(event: &EventEnvelope) -> Vec<u8> {
    let payload = match serde_json::to_value(&event.event) {
        Ok(serde_json::Value::Object(map)) if map.len() == 1 => map
            .into_iter()
            .next()
            .map(|(_, fields)| fields)
            .unwrap_or(serde_json::Value::Null),
        Ok(other) => other,
        Err(_) => serde_json::Value::Null,
    };
    let body = serde_json::json!({
        "seq": event.seq,
        "type": event.event.type_name(),
        "payload": payload,
        "created_at": event.created_at.to_rfc3339(),
    });
    serde_json::to_vec(&body).expect("JSON values serialize")
}

/// A follower: applies a primary's records from JetStream.
pub struct Follower {
    engine: Engine,
    config: NatsConfig,
    status: Arc<ReplicationStatus>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Follower {
    /// Starts following with `engine`, opened with
    /// [`ReplicationRole::Follower`](crate::ReplicationRole::Follower). An
    /// empty store first waits for the snapshot in the object store and
    /// installs it. Then records are applied as they come; NATS failures
    /// are retried with backoff.
    pub async fn start(engine: Engine, config: NatsConfig) -> Result<Follower, Error> {
        config.validate()?;
        if !engine.is_follower() {
            return Err(Error::invalid(
                "engine",
                "a follower's engine is opened as a follower",
            ));
        }
        let status = Arc::new(ReplicationStatus::default());
        status
            .replicated_lsn
            .store(engine.last_lsn(), Ordering::SeqCst);
        // A store that holds records was bootstrapped before a restart.
        status
            .bootstrapped
            .store(engine.last_lsn() > 0, Ordering::SeqCst);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(follow_loop(
            engine.clone(),
            config.clone(),
            status.clone(),
            stopped,
        ));
        Ok(Follower {
            engine,
            config,
            status,
            stop,
            task: Some(task),
        })
    }

    /// Where replication stands.
    pub fn status(&self) -> Arc<ReplicationStatus> {
        self.status.clone()
    }

    /// Stops applying.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Makes this follower the primary: stops following, applies every
    /// record the stream holds, writes the promotion into the stream under
    /// a new epoch (refused, and the follower left as it was, if the old
    /// primary published meanwhile: try again), promotes the engine and
    /// starts publishing. Answers the new primary's publisher.
    pub async fn promote(mut self) -> Result<Publisher, (Follower, Error)> {
        self.halt().await;
        // A JetStream cluster electing a stream leader (a node just died)
        // times requests out for a few seconds: retried, within bounds.
        let mut outcome = Err(Failure::Transient("not tried".to_owned()));
        for attempt in 0..PROMOTE_ATTEMPTS_MAX {
            outcome = promote_inner(&self.engine, &self.config, &self.status).await;
            match &outcome {
                Err(Failure::Transient(reason)) => {
                    tracing::warn!(%reason, attempt, "promotion attempt failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                _ => break,
            }
        }
        match outcome {
            Ok(()) => {}
            Err(failure) => {
                let error = match failure {
                    Failure::Fenced(reason)
                    | Failure::Fatal(reason)
                    | Failure::Transient(reason) => {
                        Error::Conflict(format!("promotion failed: {reason}"))
                    }
                };
                let (stop, stopped) = watch::channel(false);
                self.stop = stop;
                self.task = Some(tokio::spawn(follow_loop(
                    self.engine.clone(),
                    self.config.clone(),
                    self.status.clone(),
                    stopped,
                )));
                return Err((self, error));
            }
        }
        Publisher::start(self.engine.clone(), self.config.clone()).map_err(|error| (self, error))
    }
}

async fn promote_inner(
    engine: &Engine,
    config: &NatsConfig,
    status: &ReplicationStatus,
) -> Result<(), Failure> {
    let context = connect(config).await?;
    let (mut log, _bucket) = ensure_streams(&context, config).await?;
    // Catch up with everything the stream holds (the sender lives until
    // then: a closed watch reads as "stop").
    let (_stop, stopped) = watch::channel(false);
    let tail = tail(&mut log).await?;
    if engine.last_lsn() < tail.lsn {
        follow(engine, config, status, stopped, Some(tail.sequence)).await?;
    }
    if engine.last_lsn() != tail.lsn {
        return Err(Failure::Transient(format!(
            "caught up to record {} but the stream ends at {}",
            engine.last_lsn(),
            tail.lsn
        )));
    }
    let epoch = new_epoch();
    let mut publish = Publish::build()
        .payload(Bytes::new())
        .message_id(format!("promote:{epoch}"))
        .header(HEADER_LSN, tail.lsn.to_string().as_str())
        .header(HEADER_EPOCH, epoch.as_str())
        .header(HEADER_KIND, KIND_PROMOTE)
        .expected_last_sequence(tail.sequence);
    if let Some(advertise) = &config.advertise {
        publish = publish.header(HEADER_PRIMARY, advertise.as_str());
    }
    context
        .send_publish(config.log_subject(), publish)
        .await
        .map_err(|error| publish_failure(error, tail.lsn))?
        .await
        .map_err(|error| publish_failure(error, tail.lsn))?;
    // The stream is ours from here: the epoch must survive a crash.
    write_epoch(engine, &epoch)?;
    let lsn = engine.promote().await.map_err(transient)?;
    engine.set_primary_hint(config.advertise.clone());
    tracing::info!(lsn, %epoch, "promoted to primary");
    Ok(())
}

async fn follow_loop(
    engine: Engine,
    config: NatsConfig,
    status: Arc<ReplicationStatus>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut attempt = 0;
    loop {
        let started = Instant::now();
        let outcome = follow(&engine, &config, &status, stopped.clone(), None).await;
        status.connected.store(false, Ordering::SeqCst);
        if *stopped.borrow() {
            return;
        }
        let reason = match outcome {
            Ok(()) => return,
            Err(Failure::Fenced(reason) | Failure::Fatal(reason)) => {
                tracing::error!(%reason, "following stopped");
                status.stopped.store(true, Ordering::SeqCst);
                return;
            }
            Err(Failure::Transient(reason)) => reason,
        };
        if started.elapsed() > Duration::from_secs(10) {
            attempt = 0;
        }
        let wait = backoff(attempt);
        attempt += 1;
        tracing::warn!(%reason, ?wait, "following the primary failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

/// Applies records until stopped (or, with `until`, until the message at
/// that stream sequence is applied).
async fn follow(
    engine: &Engine,
    config: &NatsConfig,
    status: &ReplicationStatus,
    mut stopped: watch::Receiver<bool>,
    until: Option<u64>,
) -> Result<(), Failure> {
    let context = connect(config).await?;
    let (mut log, bucket) = loop {
        match context.get_stream(config.log_stream()).await {
            Ok(log) => match context.get_object_store(config.bucket()).await {
                Ok(bucket) => break (log, bucket),
                Err(error) => {
                    tracing::info!(%error, "no snapshot bucket yet; waiting for the primary")
                }
            },
            Err(error) => tracing::info!(%error, "no log stream yet; waiting for the primary"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stopped.wait_for(|stop| *stop) => return Ok(()),
        }
    };
    status.connected.store(true, Ordering::SeqCst);
    if engine.last_lsn() == 0 && engine.last_event_seq() == 0 {
        bootstrap(engine, &bucket, &mut stopped).await?;
    }
    status.bootstrapped.store(true, Ordering::SeqCst);
    status
        .replicated_lsn
        .store(engine.last_lsn(), Ordering::SeqCst);
    let mut start = start_sequence(&mut log, engine.last_lsn()).await?;
    if let Start::Trimmed(reason) = &start {
        // Behind the stream's trim: the newest snapshot is past this
        // follower (the trim keeps what follows the one before it).
        tracing::warn!(%reason, "starting again from the newest snapshot");
        bootstrap(engine, &bucket, &mut stopped).await?;
        status
            .replicated_lsn
            .store(engine.last_lsn(), Ordering::SeqCst);
        start = start_sequence(&mut log, engine.last_lsn()).await?;
    }
    let start = match start {
        Start::At(start) => start,
        // Nothing after our position yet: start from the next message.
        Start::AfterTail => log.info().await.map_err(transient)?.state.last_sequence + 1,
        Start::Trimmed(reason) => return Err(Failure::Fatal(reason)),
    };
    follow_from(engine, config, status, &log, start, stopped, until).await
}

async fn bootstrap(
    engine: &Engine,
    bucket: &jetstream::object_store::ObjectStore,
    stopped: &mut watch::Receiver<bool>,
) -> Result<(), Failure> {
    let mut object = loop {
        match bucket.get(SNAPSHOT_OBJECT).await {
            Ok(object) => break object,
            Err(error) => tracing::info!(%error, "no snapshot yet; waiting for the primary"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stopped.wait_for(|stop| *stop) => return Err(transient("stopped")),
        }
    };
    // The publisher may replace the object meanwhile, purging the chunks
    // being read: a download that stalls is started again.
    let mut bytes = Vec::new();
    let mut buffer = vec![0; SNAPSHOT_CHUNK_BYTES_MAX];
    loop {
        let read = tokio::time::timeout(SNAPSHOT_READ_IDLE_MAX, object.read(&mut buffer))
            .await
            .map_err(|_| {
                transient(format!(
                    "the snapshot's download stalled for {SNAPSHOT_READ_IDLE_MAX:?} after {} \
                     bytes (replaced meanwhile?)",
                    bytes.len()
                ))
            })?
            .map_err(transient)?;
        if read == 0 {
            break;
        }
        bytes.extend_from_slice(&buffer[..read]);
    }
    let snapshot =
        ReplicaSnapshot::decode(&bytes).map_err(|error| Failure::Fatal(error.to_string()))?;
    let lsn = snapshot.lsn;
    let ours = engine.last_lsn();
    if ours > 0 && lsn <= ours {
        return Err(Failure::Fatal(format!(
            "this follower (at record {ours}) needs records the log stream no longer holds, and \
             the newest snapshot (record {lsn}) is not past it: stop it, empty its data directory \
             and start it again"
        )));
    }
    tracing::info!(
        lsn,
        bytes = bytes.len(),
        replaces = ours,
        "installing the primary's snapshot"
    );
    engine
        .bootstrap_follower(snapshot)
        .await
        .map_err(|error| Failure::Fatal(format!("installing the snapshot: {error}")))?;
    Ok(())
}

/// The stream sequence of the first message whose record follows `lsn`
/// (binary search over the stream; record numbers never decrease in it),
/// or `None` when the stream holds nothing after it. A stream whose first
/// message is already past `lsn + 1` lost what this follower needs.
/// Where a follower at a record starts reading the stream.
enum Start {
    /// At this stream sequence.
    At(u64),
    /// After the stream's last message: nothing newer yet.
    AfterTail,
    /// Its next record was trimmed from the stream (why, for a person).
    Trimmed(String),
}

async fn start_sequence(log: &mut stream::Stream, lsn: u64) -> Result<Start, Failure> {
    let Some(start) = first_after(log, lsn).await? else {
        return Ok(Start::AfterTail);
    };
    let message = log.get_raw_message(start).await.map_err(transient)?;
    let at = header_u64(&message.headers, HEADER_LSN).map_err(Failure::Fatal)?;
    // A marker names the record before it; a chunk past the first lost its
    // beginning (both only after a trim of the stream).
    let promotion = header(&message.headers, HEADER_KIND) == Some(KIND_PROMOTE);
    let chunk = chunk_of(&message.headers).map_err(Failure::Fatal)?;
    let missing = if promotion {
        at > lsn
    } else {
        at > lsn + 1 || chunk.is_some_and(|(index, _)| index > 1)
    };
    if missing {
        return Ok(Start::Trimmed(format!(
            "the log stream no longer holds record {} (it was trimmed after newer snapshots; it \
             starts at record {at}) and this follower is at record {lsn}",
            lsn + 1
        )));
    }
    Ok(Start::At(start))
}

/// The stream sequence of the first message whose record follows `lsn`
/// (binary search: record numbers never decrease in the stream), `None`
/// when there is none. (One dip: a promotion marker after a deposed
/// primary's unfinished record names the record before it. The search
/// then lands on the unfinished record's first chunk or on the message
/// after the marker, never inside a record, and both are sound starts.)
async fn first_after(log: &mut stream::Stream, lsn: u64) -> Result<Option<u64>, Failure> {
    let info = log.info().await.map_err(transient)?;
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    if info.state.messages == 0 {
        return Ok(None);
    }
    let (mut low, mut high) = (first, last + 1);
    while low < high {
        let middle = low + (high - low) / 2;
        let message = log.get_raw_message(middle).await.map_err(transient)?;
        let at = header_u64(&message.headers, HEADER_LSN).map_err(Failure::Fatal)?;
        if at > lsn {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    Ok((low <= last).then_some(low))
}

#[allow(clippy::too_many_arguments)]
async fn follow_from(
    engine: &Engine,
    config: &NatsConfig,
    status: &ReplicationStatus,
    log: &stream::Stream,
    start: u64,
    mut stopped: watch::Receiver<bool>,
    until: Option<u64>,
) -> Result<(), Failure> {
    if until.is_some_and(|until| start > until) {
        return Ok(());
    }
    let consumer = log
        .create_consumer(jetstream::consumer::push::OrderedConfig {
            deliver_subject: format!("_INBOX.mercato.{}", uuid::Uuid::now_v7().simple()),
            filter_subject: config.log_subject(),
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await
        .map_err(transient)?;
    let mut messages = consumer.messages().await.map_err(transient)?;
    let mut in_flight = std::collections::VecDeque::new();
    let mut chunks = Reassembly::default();
    let mut last_sequence = start.saturating_sub(1);
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(FOLLOW_IDLE_CHECK, messages.next()) => next,
            _ = stopped.wait_for(|stop| *stop) => Ok(None),
        };
        let next = match next {
            Ok(next) => next,
            Err(_) => {
                // Quiet for a while: fine when nothing is published, but a
                // consumer cut off by a dying node stays quiet too. Start
                // afresh when the stream has moved on without us.
                drain(&mut in_flight, status).await?;
                let stream_last = log.get_info().await.map_err(transient)?.state.last_sequence;
                if stream_last > last_sequence {
                    return Err(transient(format!(
                        "no message for {FOLLOW_IDLE_CHECK:?} although the stream holds {stream_last} and this follower is at {last_sequence}"
                    )));
                }
                continue;
            }
        };
        let Some(message) = next else {
            drain(&mut in_flight, status).await?;
            return Ok(());
        };
        let message = message.map_err(transient)?;
        let (sequence, pending, published) = {
            let info = message.info().map_err(transient)?;
            (info.stream_sequence, info.pending, info.published)
        };
        last_sequence = sequence;
        let headers = message.headers.clone().unwrap_or_default();
        let lsn = header_u64(&headers, HEADER_LSN).map_err(Failure::Fatal)?;
        if let Some(primary) = header(&headers, HEADER_PRIMARY) {
            engine.set_primary_hint(Some(primary.to_owned()));
        }
        status.stream_lsn.fetch_max(lsn, Ordering::SeqCst);
        status.lag_records.store(pending, Ordering::SeqCst);
        let lag_ms = if pending == 0 {
            0
        } else {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos() as i128);
            ((now - published.unix_timestamp_nanos()).max(0) / 1_000_000) as u64
        };
        status.lag_ms.store(lag_ms, Ordering::SeqCst);
        if let Some(record) = chunks
            .take(sequence, &headers, &message.payload)
            .map_err(Failure::Fatal)?
        {
            in_flight.push_back((lsn, engine.apply_replicated(record)));
            if in_flight.len() >= APPLY_IN_FLIGHT_MAX || pending == 0 {
                drain(&mut in_flight, status).await?;
            }
        }
        if until.is_some_and(|until| sequence >= until) {
            drain(&mut in_flight, status).await?;
            return Ok(());
        }
    }
}

/// A follower's record in chunks, put back together: a record is handed
/// on only whole and checked.
#[derive(Debug, Default)]
struct Reassembly {
    partial: Option<Partial>,
}

#[derive(Debug)]
struct Partial {
    lsn: u64,
    /// The next chunk expected, from 1.
    next: u64,
    count: u64,
    bytes: u64,
    crc: u32,
    payload: Vec<u8>,
}

impl Reassembly {
    /// Takes the log message at stream `sequence`: answers a whole record
    /// when it completes one, `None` for a chunk short of the last or a
    /// promotion marker, an error for a chunk that does not continue the
    /// record in hand (a gap or a mismatch).
    fn take(
        &mut self,
        sequence: u64,
        headers: &HeaderMap,
        payload: &[u8],
    ) -> Result<Option<ReplicaRecord>, String> {
        let lsn = header_u64(headers, HEADER_LSN)?;
        let refuse = |why: String| format!("log message {sequence} (record {lsn}): {why}");
        if header(headers, HEADER_KIND) == Some(KIND_PROMOTE) {
            // A deposed primary's unfinished record is not in the log.
            if let Some(partial) = self.partial.take() {
                if partial.lsn <= lsn {
                    return Err(refuse(format!(
                        "a promotion after record {lsn} interrupts record {}, which it names as \
                         finished",
                        partial.lsn
                    )));
                }
                tracing::warn!(
                    lsn = partial.lsn,
                    "a record's chunks abandoned at a promotion"
                );
            }
            return Ok(None);
        }
        let Some((index, count)) = chunk_of(headers).map_err(refuse)? else {
            self.abandon(lsn).map_err(refuse)?;
            return Ok(Some(ReplicaRecord {
                lsn,
                payload: payload.to_vec(),
            }));
        };
        let bytes = header_u64(headers, HEADER_RECORD_BYTES).map_err(refuse)?;
        let crc = header_u64(headers, HEADER_RECORD_CRC)
            .ok()
            .and_then(|crc| u32::try_from(crc).ok())
            .ok_or_else(|| refuse(format!("no valid {HEADER_RECORD_CRC} header")))?;
        if bytes > crate::wal::RECORD_BYTES_MAX as u64 {
            return Err(refuse(format!(
                "a record of {bytes} bytes; at most {} are accepted",
                crate::wal::RECORD_BYTES_MAX
            )));
        }
        if index == 1 {
            // A publisher that restarted mid-record starts it again.
            self.abandon(lsn).map_err(refuse)?;
            self.partial = Some(Partial {
                lsn,
                next: 1,
                count,
                bytes,
                crc,
                payload: Vec::new(),
            });
        }
        let Some(partial) = self.partial.as_mut() else {
            return Err(refuse(format!(
                "chunk {index} of {count} without the chunks before it"
            )));
        };
        if partial.lsn != lsn || partial.next != index {
            return Err(refuse(format!(
                "chunk {index} of {count} where chunk {} of {} of record {} was expected",
                partial.next, partial.count, partial.lsn
            )));
        }
        if (partial.count, partial.bytes, partial.crc) != (count, bytes, crc) {
            return Err(refuse(format!(
                "chunk {index} describes another record ({count} chunks, {bytes} bytes, crc \
                 {crc}) than the chunks before it ({} chunks, {} bytes, crc {})",
                partial.count, partial.bytes, partial.crc
            )));
        }
        if (partial.payload.len() + payload.len()) as u64 > bytes {
            return Err(refuse(format!(
                "chunk {index} of {count} goes past the record's {bytes} bytes"
            )));
        }
        partial.payload.extend_from_slice(payload);
        partial.next += 1;
        if index < count {
            return Ok(None);
        }
        let partial = self.partial.take().expect("a record in hand");
        if partial.payload.len() as u64 != partial.bytes {
            return Err(refuse(format!(
                "its chunks hold {} bytes; the record has {}",
                partial.payload.len(),
                partial.bytes
            )));
        }
        if crc32fast::hash(&partial.payload) != partial.crc {
            return Err(refuse("its chunks fail the record's CRC".to_owned()));
        }
        Ok(Some(ReplicaRecord {
            lsn,
            payload: partial.payload,
        }))
    }

    /// A record `lsn` starts: a partial record of the same number is
    /// abandoned (its publisher restarted), of another is a gap.
    fn abandon(&mut self, lsn: u64) -> Result<(), String> {
        match self.partial.take() {
            None => Ok(()),
            Some(partial) if partial.lsn == lsn => {
                tracing::warn!(
                    lsn,
                    "a record's chunks abandoned: its publisher started it again"
                );
                Ok(())
            }
            Some(partial) => Err(format!(
                "record {lsn} starts while record {} has {} of its {} chunks",
                partial.lsn,
                partial.next - 1,
                partial.count
            )),
        }
    }
}

async fn drain(
    in_flight: &mut std::collections::VecDeque<(u64, crate::engine::Pending<()>)>,
    status: &ReplicationStatus,
) -> Result<(), Failure> {
    while let Some((lsn, pending)) = in_flight.pop_front() {
        match pending.await {
            Ok(()) => {
                status.replicated_lsn.fetch_max(lsn, Ordering::SeqCst);
            }
            Err(Error::Conflict(reason)) => return Err(Failure::Fatal(reason)),
            Err(error) => return Err(transient(format!("applying record {lsn}: {error}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(lsn: u64, index: u64, count: u64, record: &[u8]) -> (HeaderMap, Vec<u8>) {
        let size = record.len().div_ceil(count as usize);
        let start = (index as usize - 1) * size;
        let end = (start + size).min(record.len());
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_LSN, lsn.to_string().as_str());
        headers.insert(HEADER_CHUNK, format!("{index}/{count}").as_str());
        headers.insert(HEADER_RECORD_BYTES, record.len().to_string().as_str());
        headers.insert(
            HEADER_RECORD_CRC,
            crc32fast::hash(record).to_string().as_str(),
        );
        (headers, record[start..end].to_vec())
    }

    fn whole(lsn: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_LSN, lsn.to_string().as_str());
        headers
    }

    fn promotion(lsn: u64) -> HeaderMap {
        let mut headers = whole(lsn);
        headers.insert(HEADER_KIND, KIND_PROMOTE);
        headers
    }

    fn feed(
        reassembly: &mut Reassembly,
        message: &(HeaderMap, Vec<u8>),
    ) -> Result<Option<ReplicaRecord>, String> {
        reassembly.take(1, &message.0, &message.1)
    }

    #[test]
    fn chunks_in_order_make_the_record_once() {
        let record: Vec<u8> = (0..=255).cycle().take(1_000).collect();
        let mut reassembly = Reassembly::default();
        for index in 1..3 {
            assert_eq!(
                feed(&mut reassembly, &chunk(5, index, 3, &record)),
                Ok(None)
            );
        }
        let done = feed(&mut reassembly, &chunk(5, 3, 3, &record)).unwrap();
        assert_eq!(
            done,
            Some(ReplicaRecord {
                lsn: 5,
                payload: record.clone()
            })
        );
        assert!(reassembly.partial.is_none());
        // A whole record after it.
        assert_eq!(
            reassembly.take(9, &whole(6), b"six").unwrap(),
            Some(ReplicaRecord {
                lsn: 6,
                payload: b"six".to_vec()
            })
        );
    }

    #[test]
    fn a_gap_or_a_mismatch_is_refused() {
        let record = vec![7_u8; 900];
        let other = vec![8_u8; 900];
        // A chunk without its beginning.
        let mut reassembly = Reassembly::default();
        let refused = feed(&mut reassembly, &chunk(5, 2, 3, &record)).unwrap_err();
        assert!(
            refused.contains("without the chunks before it"),
            "{refused}"
        );
        // A chunk skipped.
        let mut reassembly = Reassembly::default();
        feed(&mut reassembly, &chunk(5, 1, 3, &record)).unwrap();
        let refused = feed(&mut reassembly, &chunk(5, 3, 3, &record)).unwrap_err();
        assert!(
            refused.contains("chunk 2 of 3 of record 5 was expected"),
            "{refused}"
        );
        // The next record while one is unfinished.
        let mut reassembly = Reassembly::default();
        feed(&mut reassembly, &chunk(5, 1, 3, &record)).unwrap();
        let refused = reassembly.take(2, &whole(6), b"six").unwrap_err();
        assert!(refused.contains("starts while record 5"), "{refused}");
        let mut reassembly = Reassembly::default();
        feed(&mut reassembly, &chunk(5, 1, 3, &record)).unwrap();
        assert!(feed(&mut reassembly, &chunk(6, 1, 3, &record)).is_err());
        // Another record's chunk under the same number.
        let mut reassembly = Reassembly::default();
        feed(&mut reassembly, &chunk(5, 1, 3, &record)).unwrap();
        let refused = feed(&mut reassembly, &chunk(5, 2, 3, &other)).unwrap_err();
        assert!(refused.contains("describes another record"), "{refused}");
        // Damaged bytes: the CRC.
        let mut reassembly = Reassembly::default();
        feed(&mut reassembly, &chunk(5, 1, 3, &record)).unwrap();
        feed(&mut reassembly, &chunk(5, 2, 3, &record)).unwrap();
        let (headers, mut bytes) = chunk(5, 3, 3, &record);
        bytes[0] ^= 1;
        let refused = reassembly.take(3, &headers, &bytes).unwrap_err();
        assert!(refused.contains("CRC"), "{refused}");
        // Malformed chunk numbers.
        for value in ["0/3", "4/3", "1/1", "x/3", "3"] {
            let (mut headers, bytes) = chunk(5, 1, 3, &record);
            headers.insert(HEADER_CHUNK, value);
            let mut reassembly = Reassembly::default();
            assert!(reassembly.take(1, &headers, &bytes).is_err(), "{value}");
        }
        // A record declared larger than any record.
        let (mut headers, bytes) = chunk(5, 1, 3, &record);
        headers.insert(
            HEADER_RECORD_BYTES,
            (crate::wal::RECORD_BYTES_MAX + 1).to_string().as_str(),
        );
        assert!(Reassembly::default().take(1, &headers, &bytes).is_err());
    }

    #[test]
    fn a_restart_or_a_promotion_abandons_an_unfinished_record() {
        let record = vec![7_u8; 900];
        let again = vec![9_u8; 700];
        // The publisher restarted mid-record: chunk 1 again (here with
        // another count), or the record whole.
        let mut reassembly = Reassembly::default();
        feed(&mut reassembly, &chunk(5, 1, 3, &record)).unwrap();
        feed(&mut reassembly, &chunk(5, 2, 3, &record)).unwrap();
        feed(&mut reassembly, &chunk(5, 1, 2, &again)).unwrap();
        let done = feed(&mut reassembly, &chunk(5, 2, 2, &again)).unwrap();
        assert_eq!(done.map(|record| record.payload), Some(again.clone()));
        feed(&mut reassembly, &chunk(6, 1, 3, &record)).unwrap();
        let done = reassembly.take(4, &whole(6), b"six").unwrap();
        assert_eq!(done.map(|record| record.lsn), Some(6));
        // Deposed mid-record: the marker names the record before.
        let mut reassembly = Reassembly::default();
        feed(&mut reassembly, &chunk(7, 1, 3, &record)).unwrap();
        assert_eq!(reassembly.take(2, &promotion(6), b"").unwrap(), None);
        assert!(reassembly.partial.is_none());
        // A marker that names the unfinished record as done is refused.
        let mut reassembly = Reassembly::default();
        feed(&mut reassembly, &chunk(7, 1, 3, &record)).unwrap();
        assert!(reassembly.take(2, &promotion(7), b"").is_err());
    }

    #[test]
    fn a_record_goes_whole_when_it_fits_and_in_chunks_when_not() {
        let config = NatsConfig::new("nats://127.0.0.1:4222");
        let small = ReplicaRecord {
            lsn: 3,
            payload: vec![1; CHUNK_BYTES_MIN],
        };
        let messages = record_messages(&small, "epoch", &config, CHUNK_BYTES_MIN, 10);
        assert_eq!(messages.len(), 1);
        assert_eq!(header(&messages[0].0, "Nats-Msg-Id"), Some("3"));
        assert_eq!(
            header(&messages[0].0, "Nats-Expected-Last-Sequence"),
            Some("10")
        );
        assert!(messages[0].0.get(HEADER_CHUNK).is_none());
        let large = ReplicaRecord {
            lsn: 4,
            payload: (0..=255).cycle().take(CHUNK_BYTES_MIN * 2 + 1).collect(),
        };
        let messages = record_messages(&large, "epoch", &config, CHUNK_BYTES_MIN, 10);
        assert_eq!(messages.len(), 3);
        let mut reassembly = Reassembly::default();
        let mut made = None;
        for (index, (headers, payload)) in messages.iter().enumerate() {
            assert_eq!(
                header(headers, "Nats-Msg-Id"),
                Some(format!("4:{}/3@{}", index + 1, 11 + index).as_str())
            );
            assert_eq!(
                header(headers, "Nats-Expected-Last-Sequence"),
                Some((10 + index).to_string().as_str())
            );
            assert!(payload.len() <= CHUNK_BYTES_MIN);
            made = reassembly
                .take(11 + index as u64, headers, payload)
                .unwrap();
        }
        assert_eq!(made, Some(large));
    }
}
