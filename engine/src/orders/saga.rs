//! [`Checkout`]: the saga runner, which takes orders from `AWAITING_PAYMENT`
//! to an end through a [`PaymentGateway`].
//!
//! It is a loop over the event log from its own persisted position (the
//! consumer `saga`), in batches. For each event it looks at where the order
//! and its payment stand now (a durable read) and does what is still to
//! do: charge a pending payment, refund a captured payment whose order was
//! cancelled. Gateway calls run outside the writer, with a timeout, bounded
//! retries with backoff and jitter, and the payment's id as the idempotency
//! key, so a call repeated after a crash or a timeout never charges twice;
//! their outcomes come back as writer commands
//! ([`Engine::record_payment_result`], [`Engine::record_refund`]). The
//! position is saved only after every action of a batch is done (and, for
//! batches that needed none, at most once a second), so a restart repeats
//! only what was read since (at-least-once; every action is idempotent). An order whose outcome never comes (a webhook lost with a
//! gateway) ends when its reservation expires.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::engine::Engine;
use crate::engine::Write;
use crate::error::Error;
use crate::event::Event;
use crate::ids::{OrderId, PaymentId};
use crate::orders::writes::refund_key;
use crate::orders::{OrderStatus, Payment, PaymentResult, PaymentStatus};
use crate::payments::gateway::{
    ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway, RefundRequest, VoidOutcome,
    VoidRequest,
};
use crate::payments::retry::{RetryPolicy, call_with_retries};

/// How the saga runner works. A plain struct with documented defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CheckoutConfig {
    /// Timeouts, attempts and backoff of every gateway call. Default:
    /// [`RetryPolicy::default`].
    pub retry: RetryPolicy,
    /// The consumer name under which the runner saves its position in the
    /// event log. Default: `saga`.
    pub consumer: String,
    /// The most events read (and so the most gateway calls made at once)
    /// per batch. Default: 256.
    pub events_per_batch_max: usize,
}

impl Default for CheckoutConfig {
    fn default() -> CheckoutConfig {
        CheckoutConfig {
            retry: RetryPolicy::default(),
            consumer: "saga".to_owned(),
            events_per_batch_max: 256,
        }
    }
}

/// The saga runner: started once per engine, on a Tokio runtime.
#[derive(Clone)]
pub struct Checkout {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    gateway: Arc<dyn PaymentGateway>,
    config: CheckoutConfig,
    stop: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Pause after the writer answered `Overloaded` or `StorageUnavailable`.
const WRITE_RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// Pause after the runner's loop failed (a read, the position's save).
const LOOP_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// The longest a read position goes unsaved while events come in.
const POSITION_SAVE_INTERVAL: Duration = Duration::from_secs(1);
/// The most events read past the saved position before it is saved.
const POSITION_SAVE_EVENTS_MAX: usize = 65_536;

impl Checkout {
    /// Starts the runner on the current Tokio runtime: it resumes from its
    /// saved position, so every order left in flight by a crash is taken
    /// up again. Fails when `config` is out of range.
    pub fn start(
        engine: Engine,
        gateway: Arc<dyn PaymentGateway>,
        config: CheckoutConfig,
    ) -> Result<Checkout, Error> {
        let checkout = Checkout::standby(engine, gateway, config)?;
        checkout.activate()?;
        Ok(checkout)
    }

    /// The runner, not running: a follower's (which must not charge
    /// anyone; its primary's runner does), until [`Checkout::activate`]
    /// when it is promoted. Refunds through it work as with a running one.
    pub fn standby(
        engine: Engine,
        gateway: Arc<dyn PaymentGateway>,
        config: CheckoutConfig,
    ) -> Result<Checkout, Error> {
        if config.events_per_batch_max == 0 || config.events_per_batch_max > 10_000 {
            return Err(Error::invalid(
                "checkout.events_per_batch_max",
                "between 1 and 10000",
            ));
        }
        Ok(Checkout {
            inner: Arc::new(Inner {
                engine,
                gateway,
                config,
                stop: Notify::new(),
                task: Mutex::new(None),
            }),
        })
    }

    /// Starts the runner on the current Tokio runtime, if it is not
    /// running: it resumes from its saved position.
    pub fn activate(&self) -> Result<(), Error> {
        let mut task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if task.is_none() {
            let subscription = self.inner.engine.subscribe(&self.inner.config.consumer)?;
            *task = Some(tokio::spawn(run(self.inner.clone(), subscription)));
        }
        Ok(())
    }

    /// The gateway the runner uses (the server verifies its webhooks with it).
    pub fn gateway(&self) -> &Arc<dyn PaymentGateway> {
        &self.inner.gateway
    }

    /// Refunds `amount` of a captured payment (everything left when
    /// `None`) at the gateway, then records it. More than is left is
    /// [`Error::RefundExceedsCaptured`]; a payment never captured is
    /// [`Error::InvalidState`]; a gateway that refuses or keeps failing is
    /// [`Error::Gateway`].
    ///
    /// `request_key` names the caller's request (an `Idempotency-Key`): the
    /// gateway call is keyed by it, so the same request retried, even
    /// after a crash between the refund and its record, is never paid
    /// twice. Without one, two refunds started from the same state share a
    /// key.
    pub async fn refund(
        &self,
        payment_id: PaymentId,
        amount: Option<Decimal>,
        request_key: Option<&str>,
    ) -> Result<Payment, Error> {
        let engine = &self.inner.engine;
        let payment = engine
            .payment(payment_id)?
            .ok_or(Error::PaymentNotFound(payment_id))?;
        if !payment.status.was_captured() {
            return Err(Error::InvalidState {
                order_id: payment.order_id,
                state: payment.status.as_str(),
            });
        }
        let amount = amount.unwrap_or_else(|| payment.refundable());
        if amount <= Decimal::ZERO {
            return Err(Error::invalid("amount", "must be positive"));
        }
        if amount > payment.refundable() {
            return Err(Error::RefundExceedsCaptured {
                refundable: payment.refundable(),
            });
        }
        let key = match request_key {
            Some(request) => format!("refund-{payment_id}-request-{request}"),
            None => format!("refund-{payment_id}-after-{}", payment.refunded_amount),
        };
        refund_at_gateway(&self.inner, &payment, key, amount).await
    }

    /// Stops the runner after the batch in hand and waits for it.
    pub async fn stop(&self) {
        self.inner.stop.notify_one();
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn run(inner: Arc<Inner>, mut subscription: crate::Subscription) {
    // The position is saved after a batch whose actions wrote something,
    // and otherwise at most every POSITION_SAVE_INTERVAL or
    // POSITION_SAVE_EVENTS_MAX events: most events need no action, and a
    // save per batch would add a writer command to every batch of every
    // other workload. Reading them again after a crash costs a scan.
    let mut unsaved: Option<u64> = None;
    let mut unsaved_events = 0usize;
    let mut last_save = Instant::now();
    loop {
        let batch = tokio::select! {
            batch = subscription.next_batch(inner.config.events_per_batch_max) => batch,
            () = inner.stop.notified() => break,
            () = tokio::time::sleep(POSITION_SAVE_INTERVAL), if unsaved.is_some() => {
                if let Some(seq) = unsaved.take()
                    && save_position(&mut subscription, seq).await.is_err()
                {
                    return;
                }
                unsaved_events = 0;
                last_save = Instant::now();
                continue;
            }
        };
        let events = match batch {
            Ok(events) => events,
            Err(Error::ShuttingDown) => break,
            Err(error) => {
                tracing::warn!(%error, "the saga runner cannot read the log; retrying");
                tokio::time::sleep(LOOP_RETRY_INTERVAL).await;
                continue;
            }
        };
        let Some(last) = events.last().map(|envelope| envelope.seq) else {
            continue;
        };
        // One action per order, whatever its events in the batch: each
        // action reads where the order stands now.
        let orders: BTreeSet<OrderId> = events
            .iter()
            .filter(|envelope| {
                matches!(
                    envelope.event,
                    Event::OrderCreated { .. }
                        | Event::OrderCancelled { .. }
                        | Event::PaymentSucceeded { .. }
                )
            })
            .filter_map(|envelope| envelope.event.order_id())
            .collect();
        let acted = !orders.is_empty();
        let actions: Vec<_> = orders
            .into_iter()
            .map(|order_id| tokio::spawn(advance(inner.clone(), order_id)))
            .collect();
        let mut stopped = false;
        for action in actions {
            match action.await {
                Ok(Ok(())) => {}
                Ok(Err(Error::ShuttingDown)) => stopped = true,
                Ok(Err(error)) => {
                    tracing::error!(%error, "a saga step failed; it is retried after a restart")
                }
                Err(error) => tracing::error!(%error, "a saga step panicked"),
            }
        }
        if stopped {
            return;
        }
        unsaved = Some(last);
        unsaved_events += events.len();
        if acted
            || unsaved_events >= POSITION_SAVE_EVENTS_MAX
            || last_save.elapsed() >= POSITION_SAVE_INTERVAL
        {
            if save_position(&mut subscription, last).await.is_err() {
                return;
            }
            unsaved = None;
            unsaved_events = 0;
            last_save = Instant::now();
        }
    }
    if let Some(seq) = unsaved {
        let _ = save_position(&mut subscription, seq).await;
    }
    tracing::debug!("saga runner stopped");
}

/// Saves the runner's position, retrying until it is saved; `Err` once the
/// engine is shutting down.
async fn save_position(subscription: &mut crate::Subscription, seq: u64) -> Result<(), Error> {
    loop {
        match subscription.ack(seq).await {
            Ok(()) => return Ok(()),
            Err(Error::ShuttingDown) => return Err(Error::ShuttingDown),
            Err(error) => {
                tracing::warn!(%error, "the saga runner cannot save its position; retrying");
                tokio::time::sleep(LOOP_RETRY_INTERVAL).await;
            }
        }
    }
}

/// Does what is still to do for an order, from where it stands now.
async fn advance(inner: Arc<Inner>, order_id: OrderId) -> Result<(), Error> {
    let engine = &inner.engine;
    let Some(order) = engine.order(order_id)? else {
        return Ok(());
    };
    let Some(payment) = engine.payment_of_order(order_id)? else {
        return Ok(());
    };
    match (order.status, payment.status) {
        (OrderStatus::AwaitingPayment, PaymentStatus::Pending)
            if payment.provider_reference.is_none() =>
        {
            charge(&inner, &payment).await
        }
        (OrderStatus::Cancelled, PaymentStatus::Voided) => void(&inner, &payment).await,
        (OrderStatus::Cancelled, status) if status.was_captured() => {
            if payment.refundable() > Decimal::ZERO {
                let amount = payment.refundable();
                refund_at_gateway(&inner, &payment, refund_key(payment.id), amount)
                    .await
                    .map(|_| ())
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// Charges a pending payment and records the outcome. A gateway that keeps
/// failing fails the payment (and so the order) cleanly.
async fn charge(inner: &Inner, payment: &Payment) -> Result<(), Error> {
    let request = ChargeRequest {
        idempotency_key: payment.id.to_string(),
        amount: payment.amount,
        currency: payment.currency.clone(),
        token: payment.token.clone(),
        order_id: payment.order_id,
        payment_id: payment.id,
    };
    let gateway = &inner.gateway;
    let outcome = call_with_retries(&inner.config.retry, |_| gateway.charge(&request)).await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            tracing::warn!(%error, payment = %payment.id, "the gateway kept failing; failing the payment");
            ChargeOutcome::Failed {
                reason: gateway_failure_reason(&error),
            }
        }
    };
    let result = PaymentResult {
        payment_id: payment.id,
        outcome,
        webhook_event_id: None,
    };
    record(|| inner.engine.record_payment_result(result.clone())).await?;
    Ok(())
}

/// Voids at the gateway the charge of a payment voided here (its order was
/// cancelled before the outcome came), and records it. A charge that
/// succeeded meanwhile is left alone: its success is refunded when it
/// arrives.
async fn void(inner: &Inner, payment: &Payment) -> Result<(), Error> {
    let details = match &payment.provider_reference {
        None => "nothing to void at the gateway: the charge was never accepted".to_owned(),
        Some(reference) => {
            let request = VoidRequest {
                idempotency_key: format!("void-{}", payment.id),
                provider_reference: reference.clone(),
            };
            let gateway = &inner.gateway;
            match call_with_retries(&inner.config.retry, |_| gateway.void(&request)).await {
                Ok(VoidOutcome::AlreadyVoided) => format!("charge {reference} was already void"),
                Ok(_) => format!("charge {reference} voided at the gateway"),
                Err(GatewayError::UnknownCharge(_)) => {
                    format!("nothing to void: the gateway does not know charge {reference}")
                }
                // Settled meanwhile (its outcome follows) or the gateway
                // keeps failing: tried again after a restart.
                Err(error) => {
                    tracing::warn!(%error, payment = %payment.id, "void not made");
                    return Ok(());
                }
            }
        }
    };
    let payment_id = payment.id;
    record(|| {
        inner
            .engine
            .write(Write::voided_at_gateway(payment_id, details.clone()))
    })
    .await?;
    Ok(())
}

fn gateway_failure_reason(error: &GatewayError) -> String {
    match error {
        GatewayError::Timeout => "gateway_timeout".to_owned(),
        GatewayError::Unavailable(_) => "gateway_unavailable".to_owned(),
        other => other.code().to_owned(),
    }
}

/// Refunds at the gateway under `key`, then records what it gave back.
async fn refund_at_gateway(
    inner: &Inner,
    payment: &Payment,
    key: String,
    amount: Decimal,
) -> Result<Payment, Error> {
    let Some(reference) = payment.provider_reference.clone() else {
        return Err(Error::Storage(format!(
            "payment {} was captured without a gateway reference",
            payment.id
        )));
    };
    let request = RefundRequest {
        idempotency_key: key,
        provider_reference: reference,
        amount: Some(amount),
    };
    let gateway = &inner.gateway;
    let refunded = call_with_retries(&inner.config.retry, |_| gateway.refund(&request))
        .await
        .map_err(|error| match error {
            GatewayError::RefundExceedsCaptured { refundable } => {
                Error::RefundExceedsCaptured { refundable }
            }
            GatewayError::IdempotencyConflict(message) => Error::Conflict(message),
            other => Error::Gateway(other.to_string()),
        })?;
    let payment_id = payment.id;
    match record(|| inner.engine.record_refund(payment_id, refunded.amount)).await {
        // The same refund recorded before (a repeat after a crash).
        Err(Error::RefundExceedsCaptured { .. }) => inner
            .engine
            .payment(payment_id)?
            .ok_or(Error::PaymentNotFound(payment_id)),
        other => other,
    }
}

/// Sends a write, waiting out a full queue or an unavailable store.
async fn record<T>(write: impl Fn() -> crate::Pending<T>) -> Result<T, Error> {
    loop {
        match write().await {
            Err(Error::Overloaded | Error::StorageUnavailable(_)) => {
                tokio::time::sleep(WRITE_RETRY_INTERVAL).await;
            }
            other => return other,
        }
    }
}
