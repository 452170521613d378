//! The event log's writes that are not events: a consumer's saved position.
//! Events themselves are appended by [`Batch::emit`], in the transaction of
//! the change they describe.

use crate::error::Error;
use crate::writer::{Answer, Batch, Reply, refuse};

/// The longest consumer name, in bytes.
pub(crate) const CONSUMER_NAME_LENGTH_MAX: usize = 64;

/// The event log's commands.
pub(crate) enum OutboxCommand {
    SavePosition {
        consumer: String,
        seq: u64,
        reply: Reply<()>,
    },
}

impl OutboxCommand {
    /// Answers the command with `error` without applying it.
    pub(crate) fn fail(self, error: Error) {
        match self {
            OutboxCommand::SavePosition { reply, .. } => refuse(reply, error),
        }
    }
}

/// Applies one event-log command in the batch.
pub(crate) fn apply(b: &mut Batch<'_, '_>, command: OutboxCommand) -> Answer {
    match command {
        OutboxCommand::SavePosition {
            consumer,
            seq,
            reply,
        } => {
            let result = save_position(b, &consumer, seq);
            b.answer(reply, result)
        }
    }
}

pub(crate) fn save_position(b: &mut Batch<'_, '_>, consumer: &str, seq: u64) -> Result<(), Error> {
    validate_consumer_name(consumer)?;
    if seq > b.state.last_seq() {
        return Err(Error::invalid(
            "seq",
            format!("the log ends at {}", b.state.last_seq()),
        ));
    }
    b.tables.consumer_positions()?.insert(consumer, seq)?;
    Ok(())
}

pub(crate) fn validate_consumer_name(consumer: &str) -> Result<(), Error> {
    if consumer.is_empty() || consumer.len() > CONSUMER_NAME_LENGTH_MAX {
        return Err(Error::invalid(
            "consumer",
            format!("between 1 and {CONSUMER_NAME_LENGTH_MAX} bytes"),
        ));
    }
    Ok(())
}
