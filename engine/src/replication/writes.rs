//! Replication's commands. `Trim` runs in an ordinary batch; `Apply`,
//! `Bootstrap` and `Promote` change what the writer is, so the writer runs
//! them itself (`Writer::apply_follower_batch`).

use crate::error::Error;
use crate::replication::{ReplicaRecord, ReplicaSnapshot, TRIM_RECORDS_MAX};
use crate::storage;
use crate::writer::{Answer, Batch, Reply, refuse};

/// Replication's commands.
pub(crate) enum ReplicationCommand {
    /// Removes the kept records up to `upto` (they are shipped).
    Trim { upto: u64, reply: Reply<u64> },
    /// A follower applies a primary's record.
    Apply {
        record: ReplicaRecord,
        reply: Reply<()>,
    },
    /// An empty follower starts from a snapshot.
    Bootstrap {
        snapshot: ReplicaSnapshot,
        reply: Reply<()>,
    },
    /// A follower becomes the primary.
    Promote { reply: Reply<u64> },
}

impl ReplicationCommand {
    /// Answers the command with `error` without applying it.
    pub(crate) fn fail(self, error: Error) {
        match self {
            ReplicationCommand::Trim { reply, .. } | ReplicationCommand::Promote { reply } => {
                refuse(reply, error)
            }
            ReplicationCommand::Apply { reply, .. }
            | ReplicationCommand::Bootstrap { reply, .. } => refuse(reply, error),
        }
    }
}

/// Applies `Trim` in an ordinary batch; the others are refused here (the
/// writer handles them before a batch is made).
pub(crate) fn apply(b: &mut Batch<'_, '_>, command: ReplicationCommand) -> Answer {
    match command {
        ReplicationCommand::Trim { upto, reply } => {
            let result = trim(b, upto);
            b.answer(reply, result)
        }
        ReplicationCommand::Apply { reply, .. } | ReplicationCommand::Bootstrap { reply, .. } => b
            .answer(
                reply,
                Err(Error::Conflict(
                    "only a follower applies replicated records".to_owned(),
                )),
            ),
        ReplicationCommand::Promote { reply } => b.answer(
            reply,
            Err(Error::Conflict(
                "this engine is already a primary".to_owned(),
            )),
        ),
    }
}

/// Removes at most [`TRIM_RECORDS_MAX`] kept records numbered `upto` or
/// less; answers how many. Not logged: the table is the log's own copy.
fn trim(b: &mut Batch<'_, '_>, upto: u64) -> Result<u64, Error> {
    let mut table = b
        .tables
        .transaction()
        .open_table(storage::REPLICATION_LOG)?;
    let mut removed = 0;
    loop {
        let first = {
            use redb::ReadableTable as _;
            table.first()?.map(|(lsn, _)| lsn.value())
        };
        match first {
            Some(lsn) if lsn <= upto && removed < TRIM_RECORDS_MAX as u64 => {
                table.remove(lsn)?;
                removed += 1;
            }
            _ => break,
        }
    }
    Ok(removed)
}
