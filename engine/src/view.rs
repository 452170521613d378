//! [`View`]: what reads see, the newest durable snapshot of the store.
//!
//! A redb read transaction started right after a batch commits sees that
//! batch; with immediate durability the batch is not yet durable then (its
//! log record is being synced). So the writer takes that read transaction,
//! hands it to the log thread with the batch, and the log thread publishes
//! it only once the sync is done. Every read clones the published snapshot
//! (an `Arc`) and never waits for the writer or the disk, and never shows a
//! state that a crash could undo (a dirty read).

use std::sync::{Arc, RwLock};

use redb::ReadTransaction;

/// A read snapshot that may be published.
pub(crate) type Snapshot = Arc<ReadTransaction>;

/// The published snapshot.
pub(crate) struct View {
    current: RwLock<Snapshot>,
}

impl View {
    pub(crate) fn new(snapshot: Snapshot) -> View {
        View {
            current: RwLock::new(snapshot),
        }
    }

    /// The newest published snapshot. While the writer reopens the store
    /// after a fault (a moment), reads of it may fail.
    pub(crate) fn current(&self) -> Snapshot {
        self.current
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// Makes `snapshot` what reads see from now on.
    pub(crate) fn publish(&self, snapshot: Snapshot) {
        let old = {
            let mut current = self
                .current
                .write()
                .unwrap_or_else(|poison| poison.into_inner());
            std::mem::replace(&mut *current, snapshot)
        };
        // The old read transaction ends outside the lock.
        drop(old);
    }
}
