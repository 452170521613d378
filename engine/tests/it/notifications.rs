//! The notification runner ([`Notifications`]): each kind made once from
//! its event, even when the event is read again or the engine restarts;
//! delivery retried with a bound; an admin's retry; a crash between a send
//! and its record. Orders are moved by hand (no gateway), and tests wait
//! for outcomes with a bounded poll, never on timing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mercato_engine::{
    ChargeOutcome, Engine, ManualClock, NewOrder, Notification, NotificationChannel,
    NotificationFilter, NotificationKind, NotificationStatus, Notifications, NotificationsConfig,
    Notifier, NotifyError, NotifyFuture, Order, OrderId, PaymentResult, ProductId, ReservationLine,
};

use crate::support::{START, open, product};

/// A notifier for tests: records every send, fails the first
/// `failures` (all of them when `u32::MAX`), and can hang forever.
struct Recorder {
    channel: NotificationChannel,
    failures: AtomicU32,
    hang: bool,
    sent: Mutex<Vec<Notification>>,
}

impl Recorder {
    fn new(channel: NotificationChannel, failures: u32) -> Arc<Recorder> {
        Arc::new(Recorder {
            channel,
            failures: AtomicU32::new(failures),
            hang: false,
            sent: Mutex::new(Vec::new()),
        })
    }

    fn sends(&self) -> Vec<Notification> {
        self.sent.lock().unwrap().clone()
    }
}

impl Notifier for Recorder {
    fn channel(&self) -> NotificationChannel {
        self.channel
    }

    fn recipient(&self, order: &Order) -> Option<String> {
        match self.channel {
            NotificationChannel::Email => order.email.clone(),
            _ => Some("http://127.0.0.1:9/hook".to_owned()),
        }
    }

    fn send<'a>(&'a self, notification: &'a Notification) -> NotifyFuture<'a> {
        Box::pin(async move {
            self.sent.lock().unwrap().push(notification.clone());
            if self.hang {
                std::future::pending::<()>().await;
            }
            let left = self.failures.load(Ordering::SeqCst);
            if left > 0 {
                if left != u32::MAX {
                    self.failures.store(left - 1, Ordering::SeqCst);
                }
                return Err(NotifyError::transient("503 from the receiver"));
            }
            Ok(())
        })
    }
}

fn config(notifiers: Vec<Arc<dyn Notifier>>) -> NotificationsConfig {
    let mut config = NotificationsConfig::default();
    config.notifiers = notifiers;
    // The engine's clock is a manual one: a retry is due at once.
    config.backoff_initial = Duration::ZERO;
    config.backoff_max = Duration::ZERO;
    config.attempts_max = 5;
    config
}

async fn place(engine: &Engine, user: &str, email: Option<&str>) -> Order {
    let mut order = NewOrder::new(
        user,
        vec![ReservationLine {
            product_id: ProductId(1),
            quantity: 1,
        }],
        "tok_visa",
    );
    order.email = email.map(str::to_owned);
    order.shipping_address = Some("1 Main St".to_owned());
    engine.place_order(order).await.unwrap()
}

async fn pay(engine: &Engine, order_id: OrderId, ok: bool) {
    let payment = engine.payment_of_order(order_id).unwrap().unwrap();
    let outcome = if ok {
        ChargeOutcome::Succeeded {
            provider_reference: format!("ch_{order_id}"),
        }
    } else {
        ChargeOutcome::Failed {
            reason: "card_declined".to_owned(),
        }
    };
    engine
        .record_payment_result(PaymentResult {
            payment_id: payment.id,
            outcome,
            webhook_event_id: None,
        })
        .await
        .unwrap();
}

/// Every notification, oldest first.
fn all(engine: &Engine) -> Vec<Notification> {
    let mut items = Vec::new();
    let mut before = None;
    loop {
        let page = engine
            .notifications(&NotificationFilter::all(), before, 500)
            .unwrap();
        items.extend(page.items);
        match page.next_before {
            Some(id) => before = Some(id),
            None => break,
        }
    }
    items.reverse();
    items
}

/// Polls until `done` holds, for at most 30 s.
async fn until<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = done() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The kinds made per order and channel, with their counts.
fn tally(
    notifications: &[Notification],
) -> BTreeMap<(OrderId, NotificationKind, NotificationChannel), usize> {
    let mut counts = BTreeMap::new();
    for notification in notifications {
        *counts
            .entry((
                notification.order_id,
                notification.kind,
                notification.channel,
            ))
            .or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_is_made_once_per_channel_and_survives_replay_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = open(dir.path(), &clock);
    engine.create_product(product(1, 100)).await.unwrap();
    let webhook = Recorder::new(NotificationChannel::Webhook, 0);
    let email = Recorder::new(NotificationChannel::Email, 0);
    let runner =
        Notifications::start(engine.clone(), config(vec![webhook.clone(), email.clone()])).unwrap();

    // Paid, then shipped; paid, then cancelled; declined.
    let shipped = place(&engine, "ana", Some("ana@example.com")).await;
    pay(&engine, shipped.id, true).await;
    engine
        .ship_order(shipped.id, Some("UPS".into()), Some("1Z42".into()))
        .await
        .unwrap();
    let cancelled = place(&engine, "ben", Some("ben@example.com")).await;
    pay(&engine, cancelled.id, true).await;
    engine.cancel_order(cancelled.id).await.unwrap();
    let declined = place(&engine, "cy", None).await;
    pay(&engine, declined.id, false).await;

    use NotificationKind::*;
    let expected = [
        (shipped.id, PaymentReceipt),
        (shipped.id, OrderConfirmation),
        (shipped.id, ShippingUpdate),
        (cancelled.id, PaymentReceipt),
        (cancelled.id, OrderConfirmation),
        (cancelled.id, OrderCancelled),
        (declined.id, PaymentFailed),
    ];
    let channels = [
        NotificationChannel::Store,
        NotificationChannel::Webhook,
        NotificationChannel::Email,
    ];
    let made = until("every notification made and settled", || {
        let made = all(&engine);
        let settled = made.len() == expected.len() * channels.len()
            && made
                .iter()
                .all(|notification| notification.status != NotificationStatus::Pending);
        settled.then_some(made)
    })
    .await;
    let counts = tally(&made);
    for (order_id, kind) in expected {
        for channel in channels {
            assert_eq!(
                counts.get(&(order_id, kind, channel)),
                Some(&1),
                "{kind:?} {channel:?}"
            );
        }
    }
    for notification in &made {
        let order = engine.order(notification.order_id).unwrap().unwrap();
        assert_eq!(notification.user_id, order.user_id);
        assert!(notification.body.contains(&order.id.to_string()));
        match (notification.channel, &order.email) {
            (NotificationChannel::Store, _) => {
                assert_eq!(notification.status, NotificationStatus::Sent);
                assert_eq!(
                    notification.recipient.as_deref(),
                    Some(order.user_id.as_str())
                );
                assert_eq!(notification.attempts, 0);
            }
            (NotificationChannel::Email, None) => {
                // Skipped with a recorded reason, never sent.
                assert_eq!(notification.status, NotificationStatus::Failed);
                assert!(
                    notification
                        .last_error
                        .as_deref()
                        .unwrap()
                        .contains("no recipient")
                );
                assert_eq!(notification.attempts, 0);
            }
            _ => {
                assert_eq!(
                    notification.status,
                    NotificationStatus::Sent,
                    "{notification:?}"
                );
                assert_eq!(notification.attempts, 1);
            }
        }
        if notification.kind == ShippingUpdate {
            assert!(notification.body.contains("1Z42"), "{}", notification.body);
            assert!(notification.body.contains("UPS"));
        }
    }
    let email_html = made
        .iter()
        .find(|notification| notification.channel == NotificationChannel::Email)
        .and_then(|notification| notification.html_body.clone())
        .unwrap();
    assert!(email_html.contains("<html"));
    assert_eq!(webhook.sends().len(), expected.len());
    assert_eq!(email.sends().len(), expected.len() - 1, "cy gave no email");

    // The same events read again: the position is set back to the start.
    runner.stop().await;
    engine
        .save_consumer_position("notifications", 0)
        .await
        .unwrap();
    let runner =
        Notifications::start(engine.clone(), config(vec![webhook.clone(), email.clone()])).unwrap();
    let head = engine.last_event_seq();
    until("the runner to read the log again", || {
        (engine.consumer_position("notifications").unwrap() >= head).then_some(())
    })
    .await;
    runner.stop().await;
    assert_eq!(all(&engine), made, "nothing new, nothing changed");
    assert_eq!(webhook.sends().len(), expected.len(), "nothing sent again");

    // A restart of the engine: the same.
    engine.shutdown();
    drop(engine);
    let engine = open(dir.path(), &clock);
    let runner =
        Notifications::start(engine.clone(), config(vec![webhook.clone(), email.clone()])).unwrap();
    // One more event, to know the runner has caught up.
    let late = place(&engine, "dee", Some("dee@example.com")).await;
    pay(&engine, late.id, true).await;
    until("the late order's notifications", || {
        let made = all(&engine);
        (made.len() == (expected.len() + 2) * channels.len()
            && made
                .iter()
                .all(|notification| notification.status != NotificationStatus::Pending))
        .then_some(())
    })
    .await;
    runner.stop().await;
    assert_eq!(webhook.sends().len(), expected.len() + 2);

    // Listings filter by user and by order.
    let ana = engine
        .notifications(&NotificationFilter::user("ana"), None, 500)
        .unwrap();
    assert_eq!(ana.items.len(), 3 * channels.len());
    assert!(
        ana.items
            .iter()
            .all(|notification| notification.user_id == "ana")
    );
    let by_order = engine
        .notifications(&NotificationFilter::all().order(declined.id), None, 500)
        .unwrap();
    assert_eq!(by_order.items.len(), channels.len());
    let wrong_user = engine
        .notifications(
            &NotificationFilter::user("ana").order(declined.id),
            None,
            500,
        )
        .unwrap();
    assert!(wrong_user.items.is_empty());
    // Paging: newest first, no repeats.
    let first = engine
        .notifications(&NotificationFilter::all(), None, 4)
        .unwrap();
    let second = engine
        .notifications(&NotificationFilter::all(), first.next_before, 4)
        .unwrap();
    assert_eq!(first.items.len(), 4);
    assert!(first.items[3].id > second.items[0].id);
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_is_retried_up_to_its_bound_and_an_admin_can_retry() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &ManualClock::new(START));
    engine.create_product(product(1, 100)).await.unwrap();
    // The webhook receiver fails 3 times, then takes it; the mail server
    // never does.
    let webhook = Recorder::new(NotificationChannel::Webhook, 3);
    let email = Recorder::new(NotificationChannel::Email, u32::MAX);
    let mut settings = config(vec![webhook.clone(), email.clone()]);
    settings.store = false;
    let runner = Notifications::start(engine.clone(), settings).unwrap();
    let order = place(&engine, "eve", Some("eve@example.com")).await;
    pay(&engine, order.id, false).await;

    let made = until("delivery to settle", || {
        let made = all(&engine);
        (made.len() == 2
            && made
                .iter()
                .all(|notification| notification.status != NotificationStatus::Pending))
        .then_some(made)
    })
    .await;
    let hook = made
        .iter()
        .find(|n| n.channel == NotificationChannel::Webhook)
        .unwrap();
    assert_eq!(hook.kind, NotificationKind::PaymentFailed);
    assert_eq!(hook.status, NotificationStatus::Sent);
    assert_eq!(hook.attempts, 4, "delivered on the 4th attempt");
    assert_eq!(hook.attempt_log.len(), 4);
    assert!(
        hook.attempt_log[..3]
            .iter()
            .all(|attempt| attempt.error.is_some())
    );
    assert!(hook.attempt_log[3].error.is_none());
    assert_eq!(webhook.sends().len(), 4);
    let mail = made
        .iter()
        .find(|n| n.channel == NotificationChannel::Email)
        .unwrap();
    assert_eq!(mail.status, NotificationStatus::Failed);
    assert_eq!(mail.attempts, 5, "the bound");
    assert_eq!(email.sends().len(), 5);
    assert!(mail.last_error.as_deref().unwrap().contains("503"));

    // Only a failed one can be retried.
    let error = runner.retry(hook.id).await.unwrap_err();
    assert_eq!(error.code(), "invalid_state");
    // The mail server is back; an admin retries.
    email.failures.store(0, Ordering::SeqCst);
    let retried = runner.retry(mail.id).await.unwrap();
    assert_eq!(retried.status, NotificationStatus::Pending);
    let mail = until("the retried email", || {
        engine
            .notification(mail.id)
            .unwrap()
            .filter(|n| n.status == NotificationStatus::Sent)
    })
    .await;
    assert_eq!(mail.attempts, 6);
    assert_eq!(email.sends().len(), 6);
    runner.stop().await;
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_send_and_record_sends_once_more_and_never_duplicates_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = open(dir.path(), &clock);
    engine.create_product(product(1, 100)).await.unwrap();
    // The first receiver takes the notification and never answers: the
    // process "crashes" before the attempt is recorded.
    let stuck = Arc::new(Recorder {
        channel: NotificationChannel::Webhook,
        failures: AtomicU32::new(0),
        hang: true,
        sent: Mutex::new(Vec::new()),
    });
    let mut settings = config(vec![stuck.clone()]);
    settings.send_timeout = Duration::from_secs(2);
    let runner = Notifications::start(engine.clone(), settings).unwrap();
    let order = place(&engine, "fay", None).await;
    pay(&engine, order.id, false).await;
    until("the first send", || {
        (!stuck.sends().is_empty()).then_some(())
    })
    .await;
    engine.shutdown();
    runner.stop().await;
    drop(engine);

    let engine = open(dir.path(), &clock);
    let before = all(&engine);
    assert_eq!(before.len(), 2, "{before:?}");
    let webhook = Recorder::new(NotificationChannel::Webhook, 0);
    let runner = Notifications::start(engine.clone(), config(vec![webhook.clone()])).unwrap();
    let settled = until("the resumed delivery", || {
        let made = all(&engine);
        made.iter()
            .all(|notification| notification.status == NotificationStatus::Sent)
            .then_some(made)
    })
    .await;
    runner.stop().await;
    assert_eq!(settled.len(), 2, "no second notification in the store");
    assert_eq!(stuck.sends().len(), 1);
    assert_eq!(
        webhook.sends().len(),
        1,
        "sent once more: at most one duplicate"
    );
    assert_eq!(
        stuck.sends()[0].id,
        webhook.sends()[0].id,
        "same id to deduplicate by"
    );
    engine.shutdown();
}
