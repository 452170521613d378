//! Idempotency records' writes: saving a record (alone, or with the write
//! it answers, see [`Batch::answer`]) and deleting expired ones.

use redb::ReadableTable as _;

use crate::error::Error;
use crate::ids::Timestamp;
use crate::storage;
use crate::writer::{Answer, Batch, Reply, refuse};

/// The longest idempotency key, in bytes.
pub(crate) const IDEMPOTENCY_KEY_LENGTH_MAX: usize = 1_024;
/// The largest idempotency record value, in bytes.
pub(crate) const IDEMPOTENCY_VALUE_LENGTH_MAX: usize = 4 << 20;

/// Idempotency records' commands.
pub(crate) enum IdempotencyCommand {
    Save {
        key: String,
        value: Vec<u8>,
        expires_at: Timestamp,
        reply: Reply<()>,
    },
}

impl IdempotencyCommand {
    /// Answers the command with `error` without applying it.
    pub(crate) fn fail(self, error: Error) {
        match self {
            IdempotencyCommand::Save { reply, .. } => refuse(reply, error),
        }
    }
}

/// Applies one idempotency command in the batch.
pub(crate) fn apply(b: &mut Batch<'_, '_>, command: IdempotencyCommand) -> Answer {
    match command {
        IdempotencyCommand::Save {
            key,
            value,
            expires_at,
            reply,
        } => {
            let result = save(b, &key, &value, expires_at);
            b.answer(reply, result)
        }
    }
}

pub(crate) fn save(
    b: &mut Batch<'_, '_>,
    key: &str,
    value: &[u8],
    expires_at: Timestamp,
) -> Result<(), Error> {
    validate_idempotency_key(key)?;
    if value.len() > IDEMPOTENCY_VALUE_LENGTH_MAX {
        return Err(Error::invalid(
            "value",
            format!("at most {IDEMPOTENCY_VALUE_LENGTH_MAX} bytes"),
        ));
    }
    let old = match b.tables.idempotency()?.get(key)? {
        Some(bytes) => Some(storage::decode_idempotency(bytes.value())?.0),
        None => None,
    };
    if let Some(old_expiry) = old {
        b.tables.idempotency_expiry()?.remove((old_expiry.0, key))?;
    }
    let record = storage::encode_idempotency(expires_at, value);
    b.tables.idempotency()?.insert(key, record.as_slice())?;
    b.tables
        .idempotency_expiry()?
        .insert((expires_at.0, key), ())?;
    let next = &mut b.state.next_idempotency_expiry;
    *next = Some(next.map_or(expires_at, |expiry| expiry.min(expires_at)));
    Ok(())
}

/// Deletes idempotency records past their expiry, oldest first, at most
/// `expiries_per_batch_max` per batch.
pub(crate) fn purge(b: &mut Batch<'_, '_>) -> Result<(), Error> {
    match b.state.next_idempotency_expiry {
        Some(expiry) if expiry <= b.now => {}
        _ => return Ok(()),
    }
    let mut due = Vec::new();
    for entry in b
        .tables
        .idempotency_expiry()?
        .range((0, "")..(b.now.0.saturating_add(1), ""))?
    {
        let (key, _) = entry?;
        let (expiry, name) = key.value();
        due.push((expiry, name.to_owned()));
        if due.len() == b.config.expiries_per_batch_max {
            break;
        }
    }
    for (expiry, key) in due {
        b.tables
            .idempotency_expiry()?
            .remove((expiry, key.as_str()))?;
        b.tables.idempotency()?.remove(key.as_str())?;
    }
    b.state.next_idempotency_expiry = b
        .tables
        .idempotency_expiry()?
        .first()?
        .map(|(key, _)| Timestamp(key.value().0));
    Ok(())
}

pub(crate) fn validate_idempotency_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_LENGTH_MAX {
        return Err(Error::invalid(
            "key",
            format!("between 1 and {IDEMPOTENCY_KEY_LENGTH_MAX} bytes"),
        ));
    }
    Ok(())
}
