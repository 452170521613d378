//! Opening the store: the redb file (or the configured backend), its tables
//! and schema, and the recovery of the write-ahead log. [`open`] is run by
//! [`Engine::open`](crate::Engine::open) and again by the writer when it
//! reopens the store after an I/O fault.

use std::fs;
use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase as _, ReadableTable as _};

use crate::config::EngineConfig;
use crate::engine::DATABASE_FILE_NAME;
use crate::error::Error;
use crate::storage;
use crate::view::Snapshot;
use crate::wal::{self, RecoveryReport};
use crate::writer::WriterState;

/// A store opened and recovered, ready for a writer.
pub(crate) struct Opened {
    pub(crate) db: Arc<Database>,
    pub(crate) state: WriterState,
    pub(crate) recovery: RecoveryReport,
    /// What reads see at first: everything recovered, which is durable.
    pub(crate) snapshot: Snapshot,
}

/// Opens the store in `config`, replays the log (see [`wal::recover`] for
/// `accept_loss`) and loads the writer's state.
///
/// `keep_records`: the store is a replicating primary's, whose replayed
/// records go back into `replication_log` too.
pub(crate) fn open(
    config: &EngineConfig,
    accept_loss: bool,
    keep_records: bool,
) -> Result<Opened, Error> {
    open_inner(config, accept_loss, keep_records).map_err(|error| match error {
        Error::StorageUnavailable(message) => Error::StorageUnavailable(format!(
            "opening the store in {}: {message}",
            config.data_dir.display()
        )),
        other => other,
    })
}

fn open_inner(
    config: &EngineConfig,
    accept_loss: bool,
    keep_records: bool,
) -> Result<Opened, Error> {
    create_private_dir(&config.data_dir)?;
    let path = config.data_dir.join(DATABASE_FILE_NAME);
    reset_unfinished_creation(config, &path)?;
    if config.storage_backend.is_none() {
        create_private_file(&path)?;
    }
    let mut builder = redb::Builder::new();
    builder.set_cache_size(config.cache_size_bytes);
    let db = match &config.storage_backend {
        Some(backend) => builder.create_with_backend(SharedBackend(backend.clone())),
        None => builder.create(&path),
    };
    let db = db.map_err(|error| match error {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::Storage(format!(
            "{} is already open in another process",
            path.display()
        )),
        redb::DatabaseError::Storage(redb::StorageError::Io(error)) => {
            Error::StorageUnavailable(format!("cannot open {}: {error}", path.display()))
        }
        other => Error::Storage(format!("cannot open {}: {other}", path.display())),
    })?;
    initialize(&db, &config.currency)?;
    let recovery = wal::recover(&db, &*config.log(), accept_loss, keep_records)?;
    let state = WriterState::load(&db)?;
    let snapshot = Arc::new(db.begin_read()?);
    Ok(Opened {
        db: Arc::new(db),
        state,
        recovery,
        snapshot,
    })
}

/// Creates the data directory (and its parents) if needed and makes it
/// readable by its owner only (0700): it holds customers' data and the
/// server's secrets.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            tracing::info!(dir = %dir.display(), "making the data directory private (0700, was {mode:o})");
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// Creates `path` empty with mode 0600 if it does not exist, else makes it
/// 0600: redb then opens (or initializes) the file as it is.
fn create_private_file(path: &Path) -> Result<(), Error> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(file) => {
            file.sync_all()?;
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                if fs::metadata(path)?.permissions().mode() & 0o077 != 0 {
                    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
                }
            }
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// redb's magic number, the first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
/// The largest file taken for a creation cut short: a new store is a few
/// pages.
const UNFINISHED_CREATION_BYTES_MAX: u64 = 1 << 20;

/// redb creates a store by writing its header, syncing, then writing the
/// magic number and syncing again. A crash (or power cut) between the two
/// leaves a file redb refuses for ever ("magic number mismatch") although
/// it never held anything. Such a file (small, its magic number absent or
/// only partly written, and no log beside it) is emptied here, so that
/// redb creates the store afresh. Anything else is left for redb to judge.
fn reset_unfinished_creation(config: &EngineConfig, path: &Path) -> Result<(), Error> {
    let unfinished = |len: u64, magic: &[u8]| {
        len > 0
            && len <= UNFINISHED_CREATION_BYTES_MAX
            && magic != REDB_MAGIC
            && magic
                .iter()
                .zip(REDB_MAGIC)
                .all(|(&byte, expected)| byte == 0 || byte == expected)
    };
    let has_log = || wal::has_segments(&*config.log());
    match &config.storage_backend {
        Some(backend) => {
            let len = backend.len()?;
            let mut magic = [0; REDB_MAGIC.len()];
            if len >= magic.len() as u64 {
                backend.read(0, &mut magic)?;
            }
            if unfinished(len, &magic) && !has_log()? {
                tracing::warn!("the store's creation was cut short; creating it afresh");
                backend.set_len(0)?;
                backend.sync_data()?;
            }
        }
        None => {
            let Ok(mut file) = fs::OpenOptions::new().read(true).write(true).open(path) else {
                return Ok(());
            };
            let len = file.metadata()?.len();
            let mut magic = [0; REDB_MAGIC.len()];
            if len >= magic.len() as u64 {
                file.read_exact(&mut magic)?;
            }
            if unfinished(len, &magic) && !has_log()? {
                tracing::warn!(
                    path = %path.display(),
                    "the store's creation was cut short; creating it afresh"
                );
                file.set_len(0)?;
                file.sync_all()?;
            }
        }
    }
    Ok(())
}

/// Closes a store so that it can be opened again in this process: redb
/// releases the file at once, even while read snapshots of it live on
/// (their reads then fail).
pub(crate) fn close(db: Arc<Database>) {
    match Arc::try_unwrap(db) {
        Ok(db) => {
            if let Err(error) = db.close() {
                tracing::warn!(%error, "closing the failed store");
            }
        }
        Err(_) => {
            tracing::error!("the store is still shared; it closes when the last user drops it")
        }
    }
}

/// Lets an `Arc`ed backend from [`EngineConfig`] be handed to redb, which
/// takes its backend by value.
#[derive(Debug)]
struct SharedBackend(Arc<dyn redb::StorageBackend>);

impl redb::StorageBackend for SharedBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.0.read(offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write(offset, data)
    }

    fn close(&self) -> std::io::Result<()> {
        self.0.close()
    }
}

/// Creates the tables and checks (or, on a new store, writes) the schema
/// version and currency.
fn initialize(db: &Database, currency: &str) -> Result<(), Error> {
    let mut txn = db.begin_write()?;
    storage::make_durable(&mut txn)?;
    {
        let mut meta = txn.open_table(storage::META)?;
        let version = meta
            .get(storage::META_SCHEMA_VERSION)?
            .map(|bytes| bytes.value().to_vec());
        match version {
            None => {
                meta.insert(
                    storage::META_SCHEMA_VERSION,
                    storage::SCHEMA_VERSION.to_le_bytes().as_slice(),
                )?;
                meta.insert(storage::META_CURRENCY, currency.as_bytes())?;
            }
            Some(bytes) => {
                let stored = <[u8; 8]>::try_from(bytes.as_slice())
                    .map(u64::from_le_bytes)
                    .map_err(|_| Error::corrupt("meta", "schema version"))?;
                if stored != storage::SCHEMA_VERSION {
                    return Err(Error::Storage(format!(
                        "the store has schema version {stored}; this build reads version {}",
                        storage::SCHEMA_VERSION
                    )));
                }
                let stored = meta
                    .get(storage::META_CURRENCY)?
                    .map(|bytes| String::from_utf8_lossy(bytes.value()).into_owned())
                    .ok_or_else(|| Error::corrupt("meta", "no currency"))?;
                if stored != currency {
                    return Err(Error::invalid(
                        "currency",
                        format!("the store was created with currency {stored}, not {currency}"),
                    ));
                }
            }
        }
        txn.open_table(storage::PRODUCTS)?;
        txn.open_table(storage::PRODUCTS_BY_CATEGORY)?;
        txn.open_table(storage::STOCK)?;
        txn.open_table(storage::RESERVATIONS)?;
        txn.open_table(storage::RESERVATION_DEADLINES)?;
        txn.open_table(storage::EVENTS)?;
        txn.open_table(storage::CONSUMER_POSITIONS)?;
        txn.open_table(storage::IDEMPOTENCY)?;
        txn.open_table(storage::IDEMPOTENCY_EXPIRY)?;
        txn.open_table(storage::ORDERS)?;
        txn.open_table(storage::ORDERS_BY_USER)?;
        txn.open_table(storage::SAGA_LOG)?;
        txn.open_table(storage::PAYMENTS)?;
        txn.open_table(storage::PAYMENTS_BY_ORDER)?;
        txn.open_table(storage::WEBHOOK_EVENTS)?;
        txn.open_table(storage::CARTS)?;
        txn.open_table(storage::CARTS_BY_USER)?;
        txn.open_table(storage::CART_EXPIRY)?;
        txn.open_table(storage::NOTIFICATIONS)?;
        txn.open_table(storage::NOTIFICATIONS_BY_USER)?;
        txn.open_table(storage::NOTIFICATIONS_BY_ORDER)?;
        txn.open_table(storage::NOTIFICATION_SOURCES)?;
        txn.open_table(storage::NOTIFICATION_DUE)?;
        txn.open_table(storage::REPLICATION_LOG)?;
    }
    txn.commit()?;
    Ok(())
}
