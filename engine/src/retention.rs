//! Retention: what would otherwise grow for ever is removed by the writer,
//! in bounded slices, at most once per [`COMPACTION_INTERVAL`] (once per
//! [`COMPACTION_BACKLOG_INTERVAL`] while it is behind), so a compaction
//! never holds up the commands of a batch for long.
//!
//! - **Events** older than `event_retention` that every consumer with a
//!   saved position (`consumer_positions`) has passed are removed from the
//!   front of the log. The newest event is always kept, so the next `seq`
//!   survives a restart; the log keeps no gaps except at its front.
//! - **Finished reservations** (committed, released, expired) are removed
//!   `reservation_retention` after they finished, unless their order can
//!   still change (a confirmed order can be cancelled, which reads its
//!   reservation). A sweep walks the reservations by key from a cursor kept
//!   in memory, `compactions_per_batch_max` of them a slice, wrapping
//!   around at the end.
//!
//! Idempotency records and carts have their own expiry (`idempotency`,
//! `carts::writes`).

use std::time::Duration;

use redb::ReadableTable as _;

use crate::error::Error;
use crate::ids::{OrderId, Timestamp};
use crate::inventory::ReservationStatus;
use crate::orders::OrderStatus;
use crate::storage;
use crate::writer::{Batch, WriterState};

/// The least time between two compaction slices while there is work.
pub(crate) const COMPACTION_INTERVAL: Duration = Duration::from_secs(1);
/// The time between two slices while retention is behind: the last slice
/// removed its whole budget of events, or a sweep pass under way is still
/// finding reservations to remove. With the default budget of 1,024 this
/// removes up to about 10,000 events and looks at as many reservations a
/// second, more than a steady load appends (a soak at 7,000 requests a
/// second wrote about 5,000 events a second, where one slice a second fell
/// behind for good).
pub(crate) const COMPACTION_BACKLOG_INTERVAL: Duration = Duration::from_millis(100);
/// The time between two slices once a slice found nothing to do.
pub(crate) const COMPACTION_IDLE_INTERVAL: Duration = Duration::from_secs(60);
const _: () = assert!(COMPACTION_BACKLOG_INTERVAL.as_millis() < COMPACTION_INTERVAL.as_millis());
const _: () = assert!(COMPACTION_INTERVAL.as_millis() < COMPACTION_IDLE_INTERVAL.as_millis());

/// Whether a compaction slice is due at `now`.
pub(crate) fn due(state: &WriterState, now: Timestamp) -> bool {
    now >= state.next_compaction
}

/// Runs one compaction slice if one is due: up to the budget of events
/// removed, and up to the budget of reservations looked at.
pub(crate) fn compact(b: &mut Batch<'_, '_>) -> Result<(), Error> {
    if !due(b.state, b.now) {
        return Ok(());
    }
    let budget = b.config.compactions_per_batch_max;
    let removed = match b.config.event_retention {
        Some(age) => compact_events(b, age, budget)?,
        None => 0,
    };
    // The sweep has a budget of its own: sharing the events' left-over
    // starved it whenever the log had a backlog, and the reservations grew.
    let swept = match b.config.reservation_retention {
        Some(age) => sweep_reservations(b, age, budget)?,
        None => 0,
    };
    let sweeping = b.state.reservation_sweep_from != 0;
    // Soon again while behind; a second later after a slice that did
    // something, or while a sweep is under way; otherwise a minute later.
    let behind = removed == budget || (swept > 0 && sweeping);
    let busy = removed > 0 || swept > 0 || sweeping;
    b.state.next_compaction = b.now.plus(if behind {
        COMPACTION_BACKLOG_INTERVAL
    } else if busy {
        COMPACTION_INTERVAL
    } else {
        COMPACTION_IDLE_INTERVAL
    });
    Ok(())
}

/// Removes up to `budget` events from the front of the log; how many.
fn compact_events(b: &mut Batch<'_, '_>, age: Duration, budget: usize) -> Result<usize, Error> {
    let cutoff = b
        .now
        .0
        .saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
    // Never the newest: its seq is where the next one starts.
    let mut passed = b.state.last_seq().saturating_sub(1);
    for entry in b.tables.consumer_positions()?.iter()? {
        passed = passed.min(entry?.1.value());
    }
    let mut doomed = Vec::new();
    for entry in b.tables.events()?.range(..=passed)? {
        let (seq, bytes) = entry?;
        let envelope = storage::decode_event(seq.value(), bytes.value())?;
        if envelope.created_at.0 > cutoff || doomed.len() == budget {
            break;
        }
        doomed.push(seq.value());
    }
    for &seq in &doomed {
        b.tables.events()?.remove(seq)?;
    }
    if !doomed.is_empty() {
        tracing::debug!(
            removed = doomed.len(),
            through = doomed[doomed.len() - 1],
            "events past their retention removed"
        );
    }
    Ok(doomed.len())
}

/// Looks at up to `budget` reservations from the sweep's cursor and
/// removes those finished more than `age` ago whose order cannot change;
/// how many it removed.
fn sweep_reservations(b: &mut Batch<'_, '_>, age: Duration, budget: usize) -> Result<usize, Error> {
    let cutoff = b
        .now
        .0
        .saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
    let mut looked = Vec::new();
    let mut end = true;
    for entry in b
        .tables
        .reservations()?
        .range(b.state.reservation_sweep_from..)?
    {
        if looked.len() == budget {
            end = false;
            break;
        }
        let (key, bytes) = entry?;
        looked.push((
            key.value(),
            storage::decode_reservation(key.value(), bytes.value())?,
        ));
    }
    b.state.reservation_sweep_from = match (end, looked.last()) {
        (false, Some((key, _))) => key.saturating_add(1),
        _ => 0,
    };
    let currency = b.config.currency.clone();
    let mut removed = 0;
    for (key, reservation) in looked {
        if reservation.status == ReservationStatus::Active || reservation.updated_at.0 > cutoff {
            continue;
        }
        let order = storage::read_order(&*b.tables.orders()?, OrderId::from_u128(key), &currency)?;
        let settled = order
            .is_none_or(|order| order.status.is_final() || order.status == OrderStatus::Shipped);
        if settled {
            b.tables.reservations()?.remove(key)?;
            removed += 1;
        }
    }
    Ok(removed)
}
