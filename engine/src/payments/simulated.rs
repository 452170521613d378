//! [`SimulatedGateway`]: the built-in payment provider, a real
//! implementation of [`PaymentGateway`] with its own state.
//!
//! It keeps a ledger of charges, refunds and voids keyed by idempotency key,
//! so a repeat answers the first answer and is never applied twice. It
//! honours the contract's test tokens, and settles a `tok_delayed` charge
//! the way an outside provider does: it answers `Pending`, then after
//! `webhook_delay` POSTs a signed `payment.succeeded` webhook through a
//! [`WebhookSink`] (the server's sink calls its own webhook route), retrying
//! a failed delivery a bounded number of times. Tests and benchmarks can add
//! latency, a rate of retryable failures (from a seeded generator) and lost
//! answers (a call applied whose answer never comes, as when a provider's
//! reply is lost after it charged).
//!
//! The ledger's decisions are plain functions of its state ([`Ledger`]);
//! the gateway around it does the waiting, the failure injection and the
//! deliveries. The ledger forgets its oldest entries beyond
//! `ledger_entries_max`, as providers expire idempotency keys.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::ids::{OrderId, Timestamp};
use crate::payments::gateway::{
    ChargeOutcome, ChargeRequest, GatewayError, GatewayFuture, PaymentGateway, PaymentId,
    RefundOutcome, RefundRequest, VoidOutcome, VoidRequest, WebhookError, WebhookEvent,
    WebhookOutcome, WebhookSink,
};
use crate::payments::retry::{RetryPolicy, call_with_retries};
use crate::payments::signature::{SIGNATURE_HEADER, SignatureError, WebhookSecret};
use crate::payments::webhook;

/// Succeeds.
const TOKEN_VISA: &str = "tok_visa";
/// Fails with `card_declined`.
const TOKEN_CHARGE_DECLINED: &str = "tok_chargeDeclined";
/// Fails with `insufficient_funds`.
const TOKEN_INSUFFICIENT_FUNDS: &str = "tok_insufficientFunds";
/// Answers `Pending`, then succeeds by webhook.
const TOKEN_DELAYED: &str = "tok_delayed";

/// How a [`SimulatedGateway`] behaves. A plain struct: start from
/// [`SimulatedGatewayConfig::new`] and change the fields you care about.
#[derive(Clone)]
pub struct SimulatedGatewayConfig {
    /// Signs the webhooks it sends; the server checks them with the same
    /// secret (`--webhook-secret`).
    pub secret: WebhookSecret,
    /// How long every charge, refund and void takes to answer. Default: 0.
    pub latency: Duration,
    /// How long after answering `Pending` to a `tok_delayed` charge the
    /// gateway settles it and sends its webhook. Default: 2 s.
    pub webhook_delay: Duration,
    /// The fraction of calls, from 0 to 1, answered with the retryable
    /// [`GatewayError::Unavailable`] without being applied. Default: 0.
    pub failure_rate: f64,
    /// Seeds the generator that picks the failing calls, so a test sees the
    /// same ones each run. Default: `None` (seeded from the system).
    pub seed: Option<u64>,
    /// The first this many calls are applied but never answered: the call
    /// hangs until the caller's timeout, as when a provider's reply is
    /// lost after it charged. Default: 0.
    pub timeout_first_calls: u32,
    /// The most idempotency keys (charges, refunds and voids) remembered;
    /// beyond it the oldest are forgotten, a charge with its key. Default:
    /// 100,000.
    pub ledger_entries_max: usize,
    /// The most `tok_delayed` charges awaiting their webhook; beyond it a
    /// delayed charge is answered [`GatewayError::Unavailable`]. Default:
    /// 10,000.
    pub webhooks_pending_max: usize,
    /// How a webhook delivery is retried when the sink refuses it. Default:
    /// 8 attempts, backoff from 500 ms up to 30 s, 10 s per attempt.
    pub webhook_retry: RetryPolicy,
    /// Where the time signed into webhooks comes from. Default: [`SystemClock`].
    pub clock: Arc<dyn Clock>,
}

impl SimulatedGatewayConfig {
    /// The defaults, signing webhooks with `secret`.
    pub fn new(secret: WebhookSecret) -> SimulatedGatewayConfig {
        SimulatedGatewayConfig {
            secret,
            latency: Duration::ZERO,
            webhook_delay: Duration::from_secs(2),
            failure_rate: 0.0,
            seed: None,
            timeout_first_calls: 0,
            ledger_entries_max: 100_000,
            webhooks_pending_max: 10_000,
            webhook_retry: RetryPolicy {
                attempts_max: 8,
                backoff_base: Duration::from_millis(500),
                backoff_max: Duration::from_secs(30),
                attempt_timeout: Duration::from_secs(10),
            },
            clock: Arc::new(SystemClock),
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let invalid =
            |field: &str, message: &str| Err(Error::invalid(format!("gateway.{field}"), message));
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return invalid("failure_rate", "must be between 0 and 1");
        }
        if self.ledger_entries_max == 0 {
            return invalid("ledger_entries_max", "must be at least 1");
        }
        if self.webhooks_pending_max == 0 {
            return invalid("webhooks_pending_max", "must be at least 1");
        }
        if self.webhook_retry.attempt_timeout.is_zero() {
            return invalid("webhook_retry", "attempt_timeout must be positive");
        }
        Ok(())
    }
}

impl fmt::Debug for SimulatedGatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedGatewayConfig")
            .field("latency", &self.latency)
            .field("webhook_delay", &self.webhook_delay)
            .field("failure_rate", &self.failure_rate)
            .field("seed", &self.seed)
            .field("timeout_first_calls", &self.timeout_first_calls)
            .field("ledger_entries_max", &self.ledger_entries_max)
            .field("webhooks_pending_max", &self.webhooks_pending_max)
            .field("webhook_retry", &self.webhook_retry)
            .finish_non_exhaustive()
    }
}

/// The built-in payment provider. Cheap to share behind an `Arc`; it must
/// be called from a Tokio runtime (it sleeps, and sends webhooks from a
/// task of its own).
pub struct SimulatedGateway {
    shared: Arc<Shared>,
}

struct Shared {
    config: SimulatedGatewayConfig,
    sink: Arc<dyn WebhookSink>,
    ledger: Mutex<Ledger>,
    failures: Mutex<StdRng>,
    calls: AtomicU64,
}

impl Shared {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl fmt::Debug for SimulatedGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedGateway")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// One charge in a [`SimulatedGateway`]'s ledger, as
/// [`SimulatedGateway::ledger`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimulatedCharge {
    /// The gateway's id for it (`ch_...`).
    pub provider_reference: String,
    /// The key it was made with.
    pub idempotency_key: String,
    /// The order it pays.
    pub order_id: OrderId,
    /// The payment it belongs to.
    pub payment_id: PaymentId,
    /// What was charged.
    pub amount: Decimal,
    /// The currency of `amount`.
    pub currency: String,
    /// Where it stands.
    pub status: ChargeStatus,
    /// How much of it was refunded, at most `amount`.
    pub refunded_amount: Decimal,
}

/// Where a charge of the [`SimulatedGateway`] stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChargeStatus {
    /// Answered `Pending`; its webhook is still to come.
    Pending,
    /// Captured (refunds do not change this; see `refunded_amount`).
    Succeeded,
    /// Declined.
    Failed {
        /// The decline code.
        reason: String,
    },
    /// Voided before it succeeded.
    Voided,
}

impl ChargeStatus {
    fn name(&self) -> &'static str {
        match self {
            ChargeStatus::Pending => "pending",
            ChargeStatus::Succeeded => "succeeded",
            ChargeStatus::Failed { .. } => "failed",
            ChargeStatus::Voided => "voided",
        }
    }
}

impl SimulatedGateway {
    /// A gateway with an empty ledger, sending its webhooks to `sink`.
    /// Fails if `config` is out of range.
    pub fn new(
        config: SimulatedGatewayConfig,
        sink: Arc<dyn WebhookSink>,
    ) -> Result<SimulatedGateway, Error> {
        config.validate()?;
        let failures = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let ledger = Ledger::new(config.ledger_entries_max, config.webhooks_pending_max);
        Ok(SimulatedGateway {
            shared: Arc::new(Shared {
                config,
                sink,
                ledger: Mutex::new(ledger),
                failures: Mutex::new(failures),
                calls: AtomicU64::new(0),
            }),
        })
    }

    /// Every charge the ledger remembers, oldest first.
    pub fn ledger(&self) -> Vec<SimulatedCharge> {
        self.shared.ledger().charges(|_| true)
    }

    /// The charges made for `order_id`, oldest first.
    pub fn charges_for(&self, order_id: OrderId) -> Vec<SimulatedCharge> {
        self.shared
            .ledger()
            .charges(|charge| charge.request.order_id == order_id)
    }

    /// What every call goes through before it is applied: the latency, then
    /// the injected faults. `Ok(true)` means "apply it, but lose the answer".
    async fn begin_call(&self) -> Result<bool, GatewayError> {
        let config = &self.shared.config;
        if !config.latency.is_zero() {
            tokio::time::sleep(config.latency).await;
        }
        let call = self.shared.calls.fetch_add(1, Ordering::SeqCst);
        if call < u64::from(config.timeout_first_calls) {
            return Ok(true);
        }
        if config.failure_rate > 0.0 {
            let fails = self
                .shared
                .failures
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .random_bool(config.failure_rate);
            if fails {
                return Err(GatewayError::Unavailable(
                    "simulated gateway failure".to_owned(),
                ));
            }
        }
        Ok(false)
    }

    /// Answers `result`, or never (until the caller gives up) when the
    /// answer is to be lost.
    async fn answer<T>(
        answer_lost: bool,
        result: Result<T, GatewayError>,
    ) -> Result<T, GatewayError> {
        if answer_lost {
            tracing::debug!("simulated gateway: losing an answer");
            std::future::pending::<()>().await;
        }
        result
    }

    fn apply_charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        request.validate()?;
        let reference = format!("ch_{}", Uuid::now_v7().simple());
        let answer = self.shared.ledger().charge(request, reference)?;
        if let Some(settlement) = answer.settle_later {
            let slot = WebhookSlot {
                shared: self.shared.clone(),
            };
            tokio::spawn(deliver_later(self.shared.clone(), settlement, slot));
        }
        Ok(answer.outcome)
    }
}

impl PaymentGateway for SimulatedGateway {
    fn charge<'a>(
        &'a self,
        request: &'a ChargeRequest,
    ) -> GatewayFuture<'a, Result<ChargeOutcome, GatewayError>> {
        Box::pin(async move {
            let answer_lost = self.begin_call().await?;
            Self::answer(answer_lost, self.apply_charge(request)).await
        })
    }

    fn refund<'a>(
        &'a self,
        request: &'a RefundRequest,
    ) -> GatewayFuture<'a, Result<RefundOutcome, GatewayError>> {
        Box::pin(async move {
            let answer_lost = self.begin_call().await?;
            let result = request.validate().and_then(|()| {
                let reference = format!("re_{}", Uuid::now_v7().simple());
                self.shared.ledger().refund(request, reference)
            });
            Self::answer(answer_lost, result).await
        })
    }

    fn void<'a>(
        &'a self,
        request: &'a VoidRequest,
    ) -> GatewayFuture<'a, Result<VoidOutcome, GatewayError>> {
        Box::pin(async move {
            let answer_lost = self.begin_call().await?;
            let result = request
                .validate()
                .and_then(|()| self.shared.ledger().void(request));
            Self::answer(answer_lost, result).await
        })
    }

    fn verify_webhook(
        &self,
        headers: &[(&str, &str)],
        body: &[u8],
        now: Timestamp,
    ) -> Result<WebhookEvent, WebhookError> {
        let mut values = headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(SIGNATURE_HEADER))
            .map(|(_, value)| *value);
        let header = values.next();
        if values.next().is_some() {
            return Err(SignatureError::Malformed {
                reason: "more than one Mercato-Signature header",
            }
            .into());
        }
        self.shared.config.secret.verify(header, body, now)?;
        webhook::parse(body)
    }
}

/// Holds one of the `webhooks_pending_max` places until its delivery ends,
/// however it ends (even if the runtime drops the task).
struct WebhookSlot {
    shared: Arc<Shared>,
}

impl Drop for WebhookSlot {
    fn drop(&mut self) {
        self.shared.ledger().webhook_finished();
    }
}

/// Waits `webhook_delay`, settles the charge (unless it was voided or
/// forgotten meanwhile) and sends its webhook, retrying a refused delivery.
/// The event keeps its id across retries so the receiver applies it once;
/// each attempt is signed afresh, so a late retry is not stale.
async fn deliver_later(shared: Arc<Shared>, settlement: Settlement, slot: WebhookSlot) {
    let _slot = slot;
    tokio::time::sleep(shared.config.webhook_delay).await;
    if !shared.ledger().settle(&settlement.charge_reference) {
        tracing::info!(
            charge = %settlement.charge_reference,
            "simulated gateway: a delayed charge was voided or forgotten before its result; no webhook"
        );
        return;
    }
    let event = WebhookEvent {
        id: settlement.event_id,
        payment_id: settlement.payment_id,
        outcome: WebhookOutcome::Succeeded,
    };
    let body = webhook::render(&event);
    let delivered = call_with_retries(&shared.config.webhook_retry, |_attempt| {
        let header = shared.config.secret.sign(&body, shared.config.clock.now());
        let delivery = shared.sink.deliver(header, body.clone());
        async move { delivery.await.map_err(GatewayError::Unavailable) }
    })
    .await;
    match delivered {
        Ok(()) => tracing::debug!(event = %event.id, "simulated gateway: webhook delivered"),
        Err(error) => tracing::error!(
            event = %event.id,
            payment = %event.payment_id,
            error = %error,
            "simulated gateway: webhook not delivered; the charge succeeded but the receiver was never told"
        ),
    }
}

/// A delayed charge's webhook, to send once `webhook_delay` has passed.
#[derive(Debug)]
struct Settlement {
    charge_reference: String,
    payment_id: PaymentId,
    event_id: String,
}

/// What [`Ledger::charge`] decided.
#[derive(Debug)]
struct ChargeAnswer {
    outcome: ChargeOutcome,
    /// Set for a new delayed charge: a place among the pending webhooks is
    /// taken, and the caller must send it.
    settle_later: Option<Settlement>,
}

/// What a token makes a charge do.
enum TokenDecision {
    Succeed,
    Decline(&'static str),
    Delay,
}

fn decide(token: &str) -> TokenDecision {
    match token {
        TOKEN_VISA => TokenDecision::Succeed,
        TOKEN_CHARGE_DECLINED => TokenDecision::Decline("card_declined"),
        TOKEN_INSUFFICIENT_FUNDS => TokenDecision::Decline("insufficient_funds"),
        TOKEN_DELAYED => TokenDecision::Delay,
        _ => TokenDecision::Decline("invalid_token"),
    }
}

/// A charge the gateway made.
#[derive(Debug)]
struct Charge {
    request: ChargeRequest,
    status: ChargeStatus,
    refunded: Decimal,
    /// Creation order, for listing.
    sequence: u64,
}

/// What an idempotency key was used for, and what it was answered. Only
/// applied calls are remembered: a refused one changed nothing, so its
/// repeat is decided afresh.
#[derive(Debug)]
enum Record {
    Charge {
        /// The charge it made (in `Ledger::charges`, which holds its request).
        reference: String,
        outcome: ChargeOutcome,
    },
    Refund {
        request: RefundRequest,
        outcome: RefundOutcome,
    },
    Void {
        request: VoidRequest,
        outcome: VoidOutcome,
    },
}

/// The gateway's state and its decisions: no waiting, no I/O.
#[derive(Debug)]
struct Ledger {
    /// Every remembered idempotency key.
    records: HashMap<String, Record>,
    /// The keys of `records`, oldest first, to forget the oldest.
    keys: VecDeque<String>,
    /// Charges by provider reference; each has one `Record::Charge`.
    charges: HashMap<String, Charge>,
    entries_max: usize,
    webhooks_pending: usize,
    webhooks_pending_max: usize,
    sequence_next: u64,
}

impl Ledger {
    fn new(entries_max: usize, webhooks_pending_max: usize) -> Ledger {
        assert!(entries_max >= 1);
        assert!(webhooks_pending_max >= 1);
        Ledger {
            records: HashMap::new(),
            keys: VecDeque::new(),
            charges: HashMap::new(),
            entries_max,
            webhooks_pending: 0,
            webhooks_pending_max,
            sequence_next: 0,
        }
    }

    /// Charges `request` (already validated) under the new `reference`, or
    /// answers what its key was answered before.
    fn charge(
        &mut self,
        request: &ChargeRequest,
        reference: String,
    ) -> Result<ChargeAnswer, GatewayError> {
        match self.records.get(&request.idempotency_key) {
            Some(Record::Charge {
                reference: first,
                outcome,
            }) => {
                let charge = self.charges.get(first).expect("a charge record's charge");
                if charge.request != *request {
                    return Err(GatewayError::IdempotencyConflict(
                        request.idempotency_key.clone(),
                    ));
                }
                return Ok(ChargeAnswer {
                    outcome: outcome.clone(),
                    settle_later: None,
                });
            }
            Some(_) => {
                return Err(GatewayError::IdempotencyConflict(
                    request.idempotency_key.clone(),
                ));
            }
            None => {}
        }
        let (status, outcome, settle_later) = match decide(&request.token) {
            TokenDecision::Succeed => (
                ChargeStatus::Succeeded,
                ChargeOutcome::Succeeded {
                    provider_reference: reference.clone(),
                },
                None,
            ),
            TokenDecision::Decline(reason) => (
                ChargeStatus::Failed {
                    reason: reason.to_owned(),
                },
                ChargeOutcome::Failed {
                    reason: reason.to_owned(),
                },
                None,
            ),
            TokenDecision::Delay => {
                if self.webhooks_pending == self.webhooks_pending_max {
                    return Err(GatewayError::Unavailable(
                        "too many charges awaiting their webhook".to_owned(),
                    ));
                }
                self.webhooks_pending += 1;
                let settlement = Settlement {
                    charge_reference: reference.clone(),
                    payment_id: request.payment_id,
                    event_id: format!("evt_{}", Uuid::now_v7().simple()),
                };
                (
                    ChargeStatus::Pending,
                    ChargeOutcome::Pending {
                        provider_reference: reference.clone(),
                    },
                    Some(settlement),
                )
            }
        };
        let sequence = self.sequence_next;
        self.sequence_next += 1;
        let charge = Charge {
            request: request.clone(),
            status,
            refunded: Decimal::ZERO,
            sequence,
        };
        check_charge(&charge);
        let previous = self.charges.insert(reference.clone(), charge);
        assert!(previous.is_none(), "charge references are unique");
        self.remember(
            request.idempotency_key.clone(),
            Record::Charge {
                reference,
                outcome: outcome.clone(),
            },
        );
        Ok(ChargeAnswer {
            outcome,
            settle_later,
        })
    }

    /// Refunds part or all of a succeeded charge, as the new refund
    /// `reference`.
    fn refund(
        &mut self,
        request: &RefundRequest,
        reference: String,
    ) -> Result<RefundOutcome, GatewayError> {
        match self.records.get(&request.idempotency_key) {
            Some(Record::Refund {
                request: first,
                outcome,
            }) if first == request => return Ok(outcome.clone()),
            Some(_) => {
                return Err(GatewayError::IdempotencyConflict(
                    request.idempotency_key.clone(),
                ));
            }
            None => {}
        }
        let charge = self
            .charges
            .get_mut(&request.provider_reference)
            .ok_or_else(|| GatewayError::UnknownCharge(request.provider_reference.clone()))?;
        if charge.status != ChargeStatus::Succeeded {
            return Err(GatewayError::InvalidState {
                state: charge.status.name(),
            });
        }
        let refundable = charge.request.amount - charge.refunded;
        assert!(refundable >= Decimal::ZERO);
        let amount = request.amount.unwrap_or(refundable);
        if amount <= Decimal::ZERO || amount > refundable {
            return Err(GatewayError::RefundExceedsCaptured { refundable });
        }
        charge.refunded += amount;
        check_charge(charge);
        let outcome = RefundOutcome {
            provider_reference: reference,
            amount,
        };
        self.remember(
            request.idempotency_key.clone(),
            Record::Refund {
                request: request.clone(),
                outcome: outcome.clone(),
            },
        );
        Ok(outcome)
    }

    /// Voids a pending charge.
    fn void(&mut self, request: &VoidRequest) -> Result<VoidOutcome, GatewayError> {
        match self.records.get(&request.idempotency_key) {
            Some(Record::Void {
                request: first,
                outcome,
            }) if first == request => return Ok(*outcome),
            Some(_) => {
                return Err(GatewayError::IdempotencyConflict(
                    request.idempotency_key.clone(),
                ));
            }
            None => {}
        }
        let charge = self
            .charges
            .get_mut(&request.provider_reference)
            .ok_or_else(|| GatewayError::UnknownCharge(request.provider_reference.clone()))?;
        let outcome = match charge.status {
            ChargeStatus::Pending => {
                charge.status = ChargeStatus::Voided;
                VoidOutcome::Voided
            }
            ChargeStatus::Voided => VoidOutcome::AlreadyVoided,
            ChargeStatus::Succeeded | ChargeStatus::Failed { .. } => {
                return Err(GatewayError::InvalidState {
                    state: charge.status.name(),
                });
            }
        };
        check_charge(charge);
        self.remember(
            request.idempotency_key.clone(),
            Record::Void {
                request: request.clone(),
                outcome,
            },
        );
        Ok(outcome)
    }

    /// Settles a delayed charge as succeeded. False when it is no longer
    /// pending (voided) or no longer remembered: nothing to report.
    fn settle(&mut self, reference: &str) -> bool {
        let Some(charge) = self.charges.get_mut(reference) else {
            return false;
        };
        if charge.status != ChargeStatus::Pending {
            assert_eq!(charge.status, ChargeStatus::Voided);
            return false;
        }
        charge.status = ChargeStatus::Succeeded;
        check_charge(charge);
        true
    }

    /// A delayed charge's webhook has been sent, or given up on.
    fn webhook_finished(&mut self) {
        assert!(self.webhooks_pending >= 1);
        self.webhooks_pending -= 1;
    }

    /// Remembers the answer to a new key, forgetting the oldest keys (and
    /// the charges they made) beyond `entries_max`.
    fn remember(&mut self, key: String, record: Record) {
        let previous = self.records.insert(key.clone(), record);
        assert!(previous.is_none(), "a key is remembered once");
        self.keys.push_back(key);
        while self.keys.len() > self.entries_max {
            let oldest = self.keys.pop_front().expect("more keys than the bound");
            let forgotten = self
                .records
                .remove(&oldest)
                .expect("every key has a record");
            if let Record::Charge { reference, .. } = forgotten {
                let charge = self.charges.remove(&reference);
                assert!(charge.is_some(), "a charge record's charge");
            }
        }
        assert_eq!(self.records.len(), self.keys.len());
        assert!(self.records.len() <= self.entries_max);
        assert!(self.charges.len() <= self.records.len());
    }

    /// The charges `keep` accepts, oldest first.
    fn charges(&self, keep: impl Fn(&Charge) -> bool) -> Vec<SimulatedCharge> {
        let mut charges: Vec<(&String, &Charge)> = self
            .charges
            .iter()
            .filter(|(_, charge)| keep(charge))
            .collect();
        charges.sort_by_key(|(_, charge)| charge.sequence);
        charges
            .into_iter()
            .map(|(reference, charge)| SimulatedCharge {
                provider_reference: reference.clone(),
                idempotency_key: charge.request.idempotency_key.clone(),
                order_id: charge.request.order_id,
                payment_id: charge.request.payment_id,
                amount: charge.request.amount,
                currency: charge.request.currency.clone(),
                status: charge.status.clone(),
                refunded_amount: charge.refunded,
            })
            .collect()
    }

    /// Every invariant, walking the whole ledger (for tests).
    #[cfg(test)]
    fn check(&self) {
        assert_eq!(self.records.len(), self.keys.len());
        assert!(self.records.len() <= self.entries_max);
        assert!(self.webhooks_pending <= self.webhooks_pending_max);
        let mut charge_records = 0;
        for (key, record) in &self.records {
            if let Record::Charge { reference, .. } = record {
                charge_records += 1;
                let charge = &self.charges[reference];
                assert_eq!(&charge.request.idempotency_key, key);
            }
        }
        assert_eq!(charge_records, self.charges.len());
        self.charges.values().for_each(check_charge);
    }
}

/// A charge's own invariants: it never gives back more than it took, and
/// only a captured charge gives anything back.
fn check_charge(charge: &Charge) {
    assert!(charge.request.amount > Decimal::ZERO);
    assert!(charge.refunded >= Decimal::ZERO);
    assert!(charge.refunded <= charge.request.amount);
    if charge.refunded > Decimal::ZERO {
        assert_eq!(charge.status, ChargeStatus::Succeeded);
    }
}

#[cfg(test)]
mod tests;
