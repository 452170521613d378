//! Time and id sources, injected so tests can move time instead of sleeping.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use uuid::{ContextV7, Uuid};

use crate::ids::Timestamp;

/// Where the engine reads the time. Implemented by [`SystemClock`] for real
/// use and by [`ManualClock`] for tests that move time by hand.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            millis: Arc::new(AtomicU64::new(start.0)),
        }
    }

    /// Moves the clock forward by `duration`.
    pub fn advance(&self, duration: Duration) {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }

    /// Sets the clock to `time`. Time may go backwards; the engine copes.
    pub fn set(&self, time: Timestamp) {
        self.millis.store(time.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(Ordering::SeqCst))
    }
}

/// Makes UUID v7 ids from the engine's clock, strictly increasing within one
/// process even when many are made in the same millisecond.
pub(crate) struct IdSource {
    context: Mutex<ContextV7>,
}

impl IdSource {
    pub(crate) fn new() -> IdSource {
        IdSource {
            context: Mutex::new(ContextV7::new()),
        }
    }

    pub(crate) fn next(&self, now: Timestamp) -> Uuid {
        let context = self
            .context
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let seconds = now.0 / 1000;
        let nanos = u32::try_from((now.0 % 1000) * 1_000_000).expect("below one second");
        Uuid::new_v7(uuid::Timestamp::from_unix(&*context, seconds, nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp(1_000));
        assert_eq!(clock.now(), Timestamp(1_000));
        clock.advance(Duration::from_millis(2_500));
        assert_eq!(clock.now(), Timestamp(3_500));
    }

    #[test]
    fn ids_increase_within_one_millisecond() {
        let ids = IdSource::new();
        let first = ids.next(Timestamp(5_000));
        let second = ids.next(Timestamp(5_000));
        assert!(second > first);
    }
}
