//! Notifications' writes, applied by the writer inside a batch: creating a
//! batch of notifications together with the runner's position in the event
//! log, recording delivery attempts, and an admin's retry.

use redb::ReadableTable as _;

use crate::error::Error;
use crate::ids::{NotificationId, OrderId, Timestamp};
use crate::notifications::{
    self, DeliveryAttempt, NOTIFICATION_ATTEMPTS_KEPT_MAX, NOTIFICATION_ATTEMPTS_MAX,
    NOTIFICATION_ERROR_LENGTH_MAX, Notification, NotificationChannel, NotificationKind,
    NotificationStatus,
};
use crate::outbox;
use crate::writer::{Answer, Batch, Reply, refuse};

/// A notification to make, rendered by the runner.
#[derive(Clone)]
pub(crate) struct NewNotification {
    pub(crate) event_seq: u64,
    pub(crate) kind: NotificationKind,
    pub(crate) order_id: OrderId,
    pub(crate) user_id: String,
    pub(crate) channel: NotificationChannel,
    pub(crate) recipient: Option<String>,
    pub(crate) subject: String,
    pub(crate) body: String,
    pub(crate) html_body: Option<String>,
    /// Why it can never be sent (an email without an address): made
    /// `failed` at once, with this as its error.
    pub(crate) undeliverable: Option<String>,
}

/// The outcome of one delivery attempt.
#[derive(Clone)]
pub(crate) struct AttemptOutcome {
    pub(crate) id: NotificationId,
    pub(crate) at: Timestamp,
    /// `None` when it was delivered.
    pub(crate) error: Option<String>,
    /// No further attempt can succeed (e.g. no recipient).
    pub(crate) permanent: bool,
    /// When to try again after a failure, if attempts are left.
    pub(crate) retry_at: Timestamp,
    /// The attempts allowed per delivery (see `attempts_base`).
    pub(crate) attempts_max: u32,
}

/// Notifications' commands.
pub(crate) enum NotificationCommand {
    /// Makes the notifications not yet made for their (event, channel),
    /// and saves `consumer`'s position as `position`, in one transaction.
    /// Answers the ones made now.
    Create {
        consumer: String,
        position: u64,
        notifications: Vec<NewNotification>,
        reply: Reply<Vec<Notification>>,
    },
    /// Records attempts. Answers the notifications as they now stand
    /// (those no longer `pending` are left alone and left out).
    Record {
        outcomes: Vec<AttemptOutcome>,
        reply: Reply<Vec<Notification>>,
    },
    /// `failed` → `pending`, due now.
    Retry {
        id: NotificationId,
        reply: Reply<Notification>,
    },
}

impl NotificationCommand {
    /// Answers the command with `error` without applying it.
    pub(crate) fn fail(self, error: Error) {
        match self {
            NotificationCommand::Create { reply, .. }
            | NotificationCommand::Record { reply, .. } => refuse(reply, error),
            NotificationCommand::Retry { reply, .. } => refuse(reply, error),
        }
    }
}

/// Applies one notification command in the batch.
pub(crate) fn apply(b: &mut Batch<'_, '_>, command: NotificationCommand) -> Answer {
    match command {
        NotificationCommand::Create {
            consumer,
            position,
            notifications,
            reply,
        } => {
            let result = create(b, &consumer, position, notifications);
            b.answer(reply, result)
        }
        NotificationCommand::Record { outcomes, reply } => {
            let result = record(b, outcomes);
            b.answer(reply, result)
        }
        NotificationCommand::Retry { id, reply } => {
            let result = retry(b, id);
            b.answer(reply, result)
        }
    }
}

fn create(
    b: &mut Batch<'_, '_>,
    consumer: &str,
    position: u64,
    notifications: Vec<NewNotification>,
) -> Result<Vec<Notification>, Error> {
    outbox::validate_consumer_name(consumer)?;
    for new in &notifications {
        if new.event_seq == 0 || new.event_seq > position {
            return Err(Error::invalid(
                "event_seq",
                format!("{} is not within the position {position}", new.event_seq),
            ));
        }
    }
    let saved = b
        .tables
        .consumer_positions()?
        .get(consumer)?
        .map_or(0, |seq| seq.value());
    let mut made = Vec::new();
    for new in notifications {
        let source = (new.event_seq, new.channel.to_u8());
        if b.tables.notification_sources()?.get(source)?.is_some() {
            continue;
        }
        let id = NotificationId(b.ids.next(b.now));
        let (status, next_attempt_at, sent_at, last_error) = match (new.channel, new.undeliverable)
        {
            (NotificationChannel::Store, _) => (NotificationStatus::Sent, None, Some(b.now), None),
            (_, Some(reason)) => (NotificationStatus::Failed, None, None, Some(reason)),
            (_, None) => (NotificationStatus::Pending, Some(b.now), None, None),
        };
        let notification = Notification {
            id,
            kind: new.kind,
            order_id: new.order_id,
            user_id: new.user_id,
            channel: new.channel,
            recipient: new.recipient,
            subject: new.subject,
            body: new.body,
            html_body: new.html_body,
            status,
            attempts: 0,
            attempts_base: 0,
            attempt_log: Vec::new(),
            last_error,
            event_seq: new.event_seq,
            created_at: b.now,
            sent_at,
            next_attempt_at,
        };
        insert(b, &notification)?;
        b.tables
            .notification_sources()?
            .insert(source, id.as_u128())?;
        made.push(notification);
    }
    // A position behind the saved one (a runner replaying after a reset)
    // never moves it back.
    if position > saved {
        outbox::save_position(b, consumer, position)?;
    }
    Ok(made)
}

/// Writes a new notification and its index entries.
fn insert(b: &mut Batch<'_, '_>, notification: &Notification) -> Result<(), Error> {
    let key = notification.id.as_u128();
    b.tables
        .notifications()?
        .insert(key, notifications::encode(notification).as_slice())?;
    b.tables
        .notifications_by_user()?
        .insert((notification.user_id.as_str(), key), ())?;
    b.tables
        .notifications_by_order()?
        .insert((notification.order_id.as_u128(), key), ())?;
    if let Some(due) = notification.next_attempt_at {
        b.tables.notification_due()?.insert((due.0, key), ())?;
    }
    Ok(())
}

/// Rewrites a notification whose due time may have changed from `was_due`.
fn update(
    b: &mut Batch<'_, '_>,
    notification: &Notification,
    was_due: Option<Timestamp>,
) -> Result<(), Error> {
    let key = notification.id.as_u128();
    if was_due != notification.next_attempt_at {
        if let Some(due) = was_due {
            b.tables.notification_due()?.remove((due.0, key))?;
        }
        if let Some(due) = notification.next_attempt_at {
            b.tables.notification_due()?.insert((due.0, key), ())?;
        }
    }
    b.tables
        .notifications()?
        .insert(key, notifications::encode(notification).as_slice())?;
    Ok(())
}

fn load(b: &mut Batch<'_, '_>, id: NotificationId) -> Result<Notification, Error> {
    let table = b.tables.notifications()?;
    notifications::read(&*table, id.as_u128())?.ok_or(Error::NotificationNotFound(id))
}

fn record(
    b: &mut Batch<'_, '_>,
    outcomes: Vec<AttemptOutcome>,
) -> Result<Vec<Notification>, Error> {
    let mut answers = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        if outcome.attempts_max == 0 || outcome.attempts_max > NOTIFICATION_ATTEMPTS_MAX {
            return Err(Error::invalid(
                "attempts_max",
                format!("between 1 and {NOTIFICATION_ATTEMPTS_MAX}"),
            ));
        }
        let mut notification = match load(b, outcome.id) {
            Ok(notification) => notification,
            Err(Error::NotificationNotFound(_)) => continue,
            Err(error) => return Err(error),
        };
        if notification.status != NotificationStatus::Pending {
            continue;
        }
        let was_due = notification.next_attempt_at;
        let error = outcome
            .error
            .map(|error| notifications::cut(error, NOTIFICATION_ERROR_LENGTH_MAX));
        notification.attempts = notification.attempts.saturating_add(1);
        notification.attempt_log.push(DeliveryAttempt {
            at: outcome.at,
            error: error.clone(),
        });
        if notification.attempt_log.len() > NOTIFICATION_ATTEMPTS_KEPT_MAX {
            notification.attempt_log.remove(0);
        }
        match error {
            None => {
                notification.status = NotificationStatus::Sent;
                notification.sent_at = Some(outcome.at);
                notification.next_attempt_at = None;
                notification.last_error = None;
            }
            Some(error) => {
                let used = notification.attempts - notification.attempts_base;
                if outcome.permanent || used >= outcome.attempts_max {
                    notification.status = NotificationStatus::Failed;
                    notification.next_attempt_at = None;
                } else {
                    notification.next_attempt_at = Some(outcome.retry_at);
                }
                notification.last_error = Some(error);
            }
        }
        update(b, &notification, was_due)?;
        answers.push(notification);
    }
    Ok(answers)
}

fn retry(b: &mut Batch<'_, '_>, id: NotificationId) -> Result<Notification, Error> {
    let mut notification = load(b, id)?;
    if notification.status != NotificationStatus::Failed {
        return Err(Error::InvalidNotificationState {
            notification_id: id,
            status: notification.status.as_str(),
        });
    }
    notification.status = NotificationStatus::Pending;
    notification.attempts_base = notification.attempts;
    notification.next_attempt_at = Some(b.now);
    update(b, &notification, None)?;
    Ok(notification)
}
