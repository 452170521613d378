//! [`Subscription`]: one consumer following the event log from its own
//! persisted position.
//!
//! Delivery is at-least-once: a consumer handles a batch, then saves its
//! position with [`Subscription::ack`]. After a crash it resumes from the
//! last saved position, so handlers must be idempotent. The writer only
//! wakes subscribers (a watch on the log's head); events are always read
//! from the store.

use tokio::sync::watch;

use crate::engine::Engine;
use crate::error::Error;
use crate::event::EventEnvelope;

/// A consumer's cursor over the event log.
pub struct Subscription {
    engine: Engine,
    consumer: String,
    /// The last `seq` handed out by [`Subscription::next_batch`].
    read_position: u64,
    /// The last `seq` saved with [`Subscription::ack`].
    saved_position: u64,
    head: watch::Receiver<u64>,
}

impl Subscription {
    pub(crate) fn new(
        engine: Engine,
        consumer: String,
        position: u64,
        head: watch::Receiver<u64>,
    ) -> Subscription {
        Subscription {
            engine,
            consumer,
            read_position: position,
            saved_position: position,
            head,
        }
    }

    /// The consumer's name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The last position saved for this consumer.
    pub fn saved_position(&self) -> u64 {
        self.saved_position
    }

    /// Waits until events past the read position exist, then answers up to
    /// `limit` of them. Answers [`Error::ShuttingDown`] once the engine
    /// stops and every event has been read.
    pub async fn next_batch(&mut self, limit: usize) -> Result<Vec<EventEnvelope>, Error> {
        let position = self.read_position;
        // Drop the watch's read guard at once: reading the head again while
        // holding it deadlocks once the log thread waits to publish (the
        // lock favours writers).
        let waited = self
            .head
            .wait_for(|&head| head > position)
            .await
            .map(|_| ());
        if waited.is_err() && self.engine.last_event_seq() <= position {
            return Err(Error::ShuttingDown);
        }
        let events = self.engine.events_after(position, limit)?;
        if let Some(last) = events.last() {
            self.read_position = last.seq;
        }
        Ok(events)
    }

    /// The events past the read position that exist now, without waiting.
    pub fn try_next_batch(&mut self, limit: usize) -> Result<Vec<EventEnvelope>, Error> {
        let events = self.engine.events_after(self.read_position, limit)?;
        if let Some(last) = events.last() {
            self.read_position = last.seq;
        }
        Ok(events)
    }

    /// Saves `seq` as handled: after a restart, delivery resumes after it.
    pub async fn ack(&mut self, seq: u64) -> Result<(), Error> {
        self.engine
            .save_consumer_position(&self.consumer, seq)
            .await?;
        self.saved_position = seq;
        self.read_position = self.read_position.max(seq);
        Ok(())
    }
}
