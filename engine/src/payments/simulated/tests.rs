//! The simulated gateway through its trait, as the saga and the server use
//! it: tokens, idempotency, delayed results by signed webhook, refunds and
//! voids, injected faults with the retry policy, and the ledger's bounds.
//! Time is Tokio's paused clock where a test waits; no test asserts timing.

use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::mpsc;

use super::*;
use crate::clock::ManualClock;
use crate::payments::signature::SIGNATURE_TOLERANCE;

const NOW: Timestamp = Timestamp(1_764_000_000_000);
const SECRET: &str = "whsec_simulated_test";

/// A webhook the sink received: the signature header and the body.
type Delivery = (String, Vec<u8>);

/// Captures deliveries, refusing the first `refusals` of them; each refusal
/// moves `clock` ten minutes on, as a long outage would.
struct CapturingSink {
    deliveries: mpsc::UnboundedSender<Delivery>,
    refusals: AtomicU32,
    attempts: AtomicU32,
    clock: ManualClock,
}

impl WebhookSink for CapturingSink {
    fn deliver(
        &self,
        signature_header: String,
        body: Vec<u8>,
    ) -> GatewayFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            let refuse = self
                .refusals
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                })
                .is_ok();
            if refuse {
                self.clock.advance(Duration::from_secs(600));
                return Err("503 from the webhook route".to_owned());
            }
            self.deliveries
                .send((signature_header, body))
                .map_err(|_| "the test stopped listening".to_owned())
        })
    }
}

struct Harness {
    gateway: Arc<SimulatedGateway>,
    sink: Arc<CapturingSink>,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    clock: ManualClock,
}

impl Harness {
    fn with(configure: impl FnOnce(&mut SimulatedGatewayConfig)) -> Harness {
        Harness::refusing(0, configure)
    }

    fn refusing(refusals: u32, configure: impl FnOnce(&mut SimulatedGatewayConfig)) -> Harness {
        let clock = ManualClock::new(NOW);
        let mut config = SimulatedGatewayConfig::new(WebhookSecret::new(SECRET));
        config.clock = Arc::new(clock.clone());
        config.webhook_delay = Duration::from_millis(500);
        config.webhook_retry = RetryPolicy {
            attempts_max: 4,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            attempt_timeout: Duration::from_secs(1),
        };
        configure(&mut config);
        let (sender, deliveries) = mpsc::unbounded_channel();
        let sink = Arc::new(CapturingSink {
            deliveries: sender,
            refusals: AtomicU32::new(refusals),
            attempts: AtomicU32::new(0),
            clock: clock.clone(),
        });
        let gateway = SimulatedGateway::new(config, sink.clone()).unwrap();
        Harness {
            gateway: Arc::new(gateway),
            sink,
            deliveries,
            clock,
        }
    }

    fn new() -> Harness {
        Harness::with(|_| {})
    }

    /// The gateway as the saga holds it.
    fn dyn_gateway(&self) -> Arc<dyn PaymentGateway> {
        self.gateway.clone()
    }

    fn check(&self) {
        self.gateway.shared.ledger().check();
    }

    fn webhooks_pending(&self) -> usize {
        self.gateway.shared.ledger().webhooks_pending
    }
}

fn charge_request(token: &str) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: format!("charge-{}", Uuid::now_v7()),
        amount: "42.50".parse().unwrap(),
        currency: "USD".into(),
        token: token.into(),
        order_id: OrderId(Uuid::now_v7()),
        payment_id: PaymentId(Uuid::now_v7()),
    }
}

fn refund_request(reference: &str, amount: Option<&str>) -> RefundRequest {
    RefundRequest {
        idempotency_key: format!("refund-{}", Uuid::now_v7()),
        provider_reference: reference.into(),
        amount: amount.map(|amount| amount.parse().unwrap()),
    }
}

fn void_request(reference: &str) -> VoidRequest {
    VoidRequest {
        idempotency_key: format!("void-{}", Uuid::now_v7()),
        provider_reference: reference.into(),
    }
}

fn succeeded_reference(outcome: &ChargeOutcome) -> String {
    match outcome {
        ChargeOutcome::Succeeded { provider_reference } => provider_reference.clone(),
        other => panic!("expected a success, got {other:?}"),
    }
}

fn pending_reference(outcome: &ChargeOutcome) -> String {
    match outcome {
        ChargeOutcome::Pending { provider_reference } => provider_reference.clone(),
        other => panic!("expected a pending charge, got {other:?}"),
    }
}

async fn succeeded_charge(harness: &Harness) -> (ChargeRequest, String) {
    let request = charge_request("tok_visa");
    let outcome = harness.gateway.charge(&request).await.unwrap();
    (request, succeeded_reference(&outcome))
}

#[tokio::test]
async fn tok_visa_succeeds() {
    let harness = Harness::new();
    let gateway = harness.dyn_gateway();
    let request = charge_request("tok_visa");
    let outcome = gateway.charge(&request).await.unwrap();
    let reference = succeeded_reference(&outcome);
    assert!(reference.starts_with("ch_"));
    let charges = harness.gateway.charges_for(request.order_id);
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].provider_reference, reference);
    assert_eq!(charges[0].status, ChargeStatus::Succeeded);
    assert_eq!(charges[0].amount, request.amount);
    assert_eq!(charges[0].payment_id, request.payment_id);
    assert_eq!(charges[0].refunded_amount, Decimal::ZERO);
    harness.check();
}

#[tokio::test]
async fn declining_tokens_fail_with_their_reason() {
    let harness = Harness::new();
    for (token, reason) in [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_insufficientFunds", "insufficient_funds"),
        ("tok_unknown", "invalid_token"),
        ("TOK_VISA", "invalid_token"),
    ] {
        let request = charge_request(token);
        let outcome = harness.gateway.charge(&request).await.unwrap();
        assert_eq!(
            outcome,
            ChargeOutcome::Failed {
                reason: reason.into()
            },
            "{token}"
        );
        let charges = harness.gateway.charges_for(request.order_id);
        assert_eq!(charges.len(), 1);
        assert_eq!(
            charges[0].status,
            ChargeStatus::Failed {
                reason: reason.into()
            }
        );
    }
    harness.check();
}

#[tokio::test]
async fn an_invalid_request_is_refused_and_not_remembered() {
    let harness = Harness::new();
    let mut request = charge_request("tok_visa");
    request.amount = Decimal::ZERO;
    let error = harness.gateway.charge(&request).await.unwrap_err();
    assert_eq!(error.code(), "invalid_request");
    assert!(!error.is_retryable());
    assert!(harness.gateway.ledger().is_empty());
    // The same key with a valid request is a fresh charge.
    request.amount = Decimal::ONE;
    succeeded_reference(&harness.gateway.charge(&request).await.unwrap());
    harness.check();
}

#[tokio::test]
async fn a_repeat_answers_the_first_outcome_and_charges_once() {
    let harness = Harness::new();
    for token in ["tok_visa", "tok_chargeDeclined"] {
        let request = charge_request(token);
        let first = harness.gateway.charge(&request).await.unwrap();
        let second = harness.gateway.charge(&request).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(harness.gateway.charges_for(request.order_id).len(), 1);
    }
    assert_eq!(harness.gateway.ledger().len(), 2);
    harness.check();
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_a_conflict() {
    let harness = Harness::new();
    let (request, reference) = succeeded_charge(&harness).await;
    let other_amount = ChargeRequest {
        amount: "1.00".parse().unwrap(),
        ..request.clone()
    };
    assert_eq!(
        harness.gateway.charge(&other_amount).await,
        Err(GatewayError::IdempotencyConflict(
            request.idempotency_key.clone()
        ))
    );
    // The same key for a refund is a conflict too: keys are one space.
    let refund = RefundRequest {
        idempotency_key: request.idempotency_key.clone(),
        ..refund_request(&reference, None)
    };
    let error = harness.gateway.refund(&refund).await.unwrap_err();
    assert_eq!(error.code(), "conflict");
    assert_eq!(harness.gateway.ledger().len(), 1);
    harness.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_repeats_charge_once() {
    let harness = Harness::with(|config| {
        config.latency = Duration::from_millis(2);
        // Far enough that the webhook is still to come when the test looks.
        config.webhook_delay = Duration::from_secs(3_600);
    });
    for token in ["tok_visa", "tok_delayed"] {
        let request = charge_request(token);
        let calls: Vec<_> = (0..20)
            .map(|_| {
                let gateway = harness.gateway.clone();
                let request = request.clone();
                tokio::spawn(async move { gateway.charge(&request).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for call in calls {
            outcomes.push(call.await.unwrap().unwrap());
        }
        assert!(outcomes.iter().all(|outcome| *outcome == outcomes[0]));
        assert_eq!(harness.gateway.charges_for(request.order_id).len(), 1);
    }
    // One delayed charge, so one webhook on its way.
    assert_eq!(harness.webhooks_pending(), 1);
    harness.check();
}

#[tokio::test(start_paused = true)]
async fn tok_delayed_is_pending_then_succeeds_by_a_signed_webhook() {
    let mut harness = Harness::new();
    let request = charge_request("tok_delayed");
    let outcome = harness.gateway.charge(&request).await.unwrap();
    let reference = pending_reference(&outcome);
    let charges = harness.gateway.charges_for(request.order_id);
    assert_eq!(charges[0].status, ChargeStatus::Pending);
    // A repeat before the webhook answers the first outcome again.
    assert_eq!(harness.gateway.charge(&request).await.unwrap(), outcome);

    let (header, body) = harness.deliveries.recv().await.unwrap();
    let event = harness
        .gateway
        .verify_webhook(&[("mercato-signature", &header)], &body, NOW)
        .unwrap();
    assert!(event.id.starts_with("evt_"));
    assert_eq!(event.payment_id, request.payment_id);
    assert_eq!(event.outcome, WebhookOutcome::Succeeded);
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["type"], "payment.succeeded");
    assert_eq!(value["payment_id"], request.payment_id.to_string());

    let charges = harness.gateway.charges_for(request.order_id);
    assert_eq!(charges[0].provider_reference, reference);
    assert_eq!(charges[0].status, ChargeStatus::Succeeded);
    // Once settled, the charge can be refunded.
    let refund = harness
        .gateway
        .refund(&refund_request(&reference, None))
        .await
        .unwrap();
    assert_eq!(refund.amount, request.amount);
    harness.check();
    assert_eq!(harness.sink.attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn forged_tampered_unsigned_and_stale_webhooks_are_refused() {
    let mut harness = Harness::new();
    harness
        .gateway
        .charge(&charge_request("tok_delayed"))
        .await
        .unwrap();
    let (header, body) = harness.deliveries.recv().await.unwrap();
    let verify = |headers: &[(&str, &str)], body: &[u8], now: Timestamp| {
        harness.gateway.verify_webhook(headers, body, now)
    };
    let signature = |error: SignatureError| -> Result<WebhookEvent, WebhookError> {
        Err(WebhookError::Signature(error))
    };

    assert!(verify(&[("Mercato-Signature", &header)], &body, NOW).is_ok());
    assert_eq!(verify(&[], &body, NOW), signature(SignatureError::Missing));
    assert_eq!(
        verify(&[("X-Other", &header)], &body, NOW),
        signature(SignatureError::Missing)
    );
    let forged = WebhookSecret::new("not the secret").sign(&body, NOW);
    assert_eq!(
        verify(&[("Mercato-Signature", &forged)], &body, NOW),
        signature(SignatureError::Mismatch)
    );
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("succeeded", "failed");
    assert_eq!(
        verify(&[("Mercato-Signature", &header)], tampered.as_bytes(), NOW),
        signature(SignatureError::Mismatch)
    );
    let later = NOW.plus(SIGNATURE_TOLERANCE + Duration::from_secs(1));
    assert_eq!(
        verify(&[("Mercato-Signature", &header)], &body, later),
        signature(SignatureError::Stale)
    );
    let error = verify(
        &[
            ("Mercato-Signature", &header),
            ("mercato-signature", &header),
        ],
        &body,
        NOW,
    )
    .unwrap_err();
    assert_eq!(error.code(), "invalid_signature");
    // Correctly signed but not an event: refused as a bad request.
    let garbage = b"{}";
    let signed = WebhookSecret::new(SECRET).sign(garbage, NOW);
    let error = verify(&[("Mercato-Signature", &signed)], garbage, NOW).unwrap_err();
    assert_eq!(error.code(), "invalid_request");
}

#[tokio::test(start_paused = true)]
async fn a_refused_delivery_is_retried_and_each_attempt_is_signed_afresh() {
    let mut harness = Harness::refusing(2, |_| {});
    let request = charge_request("tok_delayed");
    harness.gateway.charge(&request).await.unwrap();
    let (header, body) = harness.deliveries.recv().await.unwrap();
    assert_eq!(harness.sink.attempts.load(Ordering::SeqCst), 3);
    // Twenty minutes passed during the refusals: a signature from the first
    // attempt would be stale now, the last attempt's is not.
    let now = harness.clock.now();
    assert_eq!(now, NOW.plus(Duration::from_secs(1_200)));
    let event = harness
        .gateway
        .verify_webhook(&[("Mercato-Signature", &header)], &body, now)
        .unwrap();
    assert_eq!(event.payment_id, request.payment_id);
    // Delivered once, and the place it held is free again.
    while harness.webhooks_pending() != 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(harness.deliveries.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn a_delivery_refused_every_time_is_given_up_after_the_bound() {
    let harness = Harness::refusing(u32::MAX, |_| {});
    let request = charge_request("tok_delayed");
    harness.gateway.charge(&request).await.unwrap();
    // Wait (in paused time) until the delivery task ends.
    while harness.webhooks_pending() != 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(harness.sink.attempts.load(Ordering::SeqCst), 4);
    // The gateway charged regardless: it is the receiver that was not told.
    let charges = harness.gateway.charges_for(request.order_id);
    assert_eq!(charges[0].status, ChargeStatus::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn voiding_a_pending_charge_stops_its_webhook() {
    let mut harness = Harness::new();
    let request = charge_request("tok_delayed");
    let reference = pending_reference(&harness.gateway.charge(&request).await.unwrap());
    let void = void_request(&reference);
    assert_eq!(harness.gateway.void(&void).await, Ok(VoidOutcome::Voided));
    // A repeat answers the same; another key finds nothing left to undo.
    assert_eq!(harness.gateway.void(&void).await, Ok(VoidOutcome::Voided));
    assert_eq!(
        harness.gateway.void(&void_request(&reference)).await,
        Ok(VoidOutcome::AlreadyVoided)
    );
    while harness.webhooks_pending() != 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(harness.deliveries.try_recv().is_err());
    assert_eq!(harness.sink.attempts.load(Ordering::SeqCst), 0);
    let charges = harness.gateway.charges_for(request.order_id);
    assert_eq!(charges[0].status, ChargeStatus::Voided);
    // A voided charge cannot be refunded.
    assert_eq!(
        harness
            .gateway
            .refund(&refund_request(&reference, None))
            .await,
        Err(GatewayError::InvalidState { state: "voided" })
    );
    harness.check();
}

#[tokio::test]
async fn only_a_pending_charge_can_be_voided() {
    let harness = Harness::new();
    let (_, reference) = succeeded_charge(&harness).await;
    assert_eq!(
        harness.gateway.void(&void_request(&reference)).await,
        Err(GatewayError::InvalidState { state: "succeeded" })
    );
    let declined = charge_request("tok_chargeDeclined");
    harness.gateway.charge(&declined).await.unwrap();
    let declined_reference = harness.gateway.charges_for(declined.order_id)[0]
        .provider_reference
        .clone();
    assert_eq!(
        harness
            .gateway
            .void(&void_request(&declined_reference))
            .await,
        Err(GatewayError::InvalidState { state: "failed" })
    );
    assert_eq!(
        harness.gateway.void(&void_request("ch_unknown")).await,
        Err(GatewayError::UnknownCharge("ch_unknown".into()))
    );
}

#[tokio::test]
async fn refunds_never_exceed_what_was_captured() {
    let harness = Harness::new();
    let (request, reference) = succeeded_charge(&harness).await;
    // 42.50 captured: 10 back, then 32.50, then nothing is left.
    let partial = refund_request(&reference, Some("10.00"));
    let first = harness.gateway.refund(&partial).await.unwrap();
    assert!(first.provider_reference.starts_with("re_"));
    assert_eq!(first.amount, "10.00".parse::<Decimal>().unwrap());
    // A repeat answers the first refund and gives nothing more back.
    assert_eq!(harness.gateway.refund(&partial).await.unwrap(), first);
    assert_eq!(
        harness
            .gateway
            .refund(&refund_request(&reference, Some("32.51")))
            .await,
        Err(GatewayError::RefundExceedsCaptured {
            refundable: "32.50".parse().unwrap()
        })
    );
    let rest = harness
        .gateway
        .refund(&refund_request(&reference, None))
        .await
        .unwrap();
    assert_eq!(rest.amount, "32.50".parse::<Decimal>().unwrap());
    let charge = &harness.gateway.charges_for(request.order_id)[0];
    assert_eq!(charge.refunded_amount, request.amount);
    assert_eq!(charge.status, ChargeStatus::Succeeded);
    for amount in [None, Some("0.01")] {
        assert_eq!(
            harness
                .gateway
                .refund(&refund_request(&reference, amount))
                .await,
            Err(GatewayError::RefundExceedsCaptured {
                refundable: Decimal::ZERO
            })
        );
    }
    harness.check();
}

#[tokio::test]
async fn refunds_need_a_known_succeeded_charge() {
    let harness = Harness::new();
    assert_eq!(
        harness
            .gateway
            .refund(&refund_request("ch_unknown", None))
            .await,
        Err(GatewayError::UnknownCharge("ch_unknown".into()))
    );
    let pending = charge_request("tok_delayed");
    let reference = pending_reference(&harness.gateway.charge(&pending).await.unwrap());
    assert_eq!(
        harness
            .gateway
            .refund(&refund_request(&reference, None))
            .await,
        Err(GatewayError::InvalidState { state: "pending" })
    );
    let (_, succeeded) = succeeded_charge(&harness).await;
    let error = harness
        .gateway
        .refund(&refund_request(&succeeded, Some("-1")))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_request");
}

#[tokio::test(start_paused = true)]
async fn a_charge_whose_answers_are_lost_is_retried_and_charged_once() {
    let harness = Harness::with(|config| config.timeout_first_calls = 2);
    let request = charge_request("tok_visa");
    let policy = RetryPolicy {
        attempts_max: 5,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        attempt_timeout: Duration::from_secs(1),
    };
    let gateway = harness.dyn_gateway();
    let attempts = AtomicU32::new(0);
    let outcome = call_with_retries(&policy, |_| {
        attempts.fetch_add(1, Ordering::SeqCst);
        gateway.charge(&request)
    })
    .await
    .unwrap();
    succeeded_reference(&outcome);
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    // The first attempt charged; its repeats found that charge.
    let charges = harness.gateway.charges_for(request.order_id);
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].status, ChargeStatus::Succeeded);
    harness.check();
}

#[tokio::test(start_paused = true)]
async fn a_gateway_that_keeps_timing_out_ends_in_a_timeout() {
    let harness = Harness::with(|config| config.timeout_first_calls = 100);
    let request = charge_request("tok_visa");
    let policy = RetryPolicy {
        attempts_max: 3,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        attempt_timeout: Duration::from_secs(1),
    };
    let gateway = harness.dyn_gateway();
    let result = call_with_retries(&policy, |_| gateway.charge(&request)).await;
    assert_eq!(result, Err(GatewayError::Timeout));
    assert_eq!(harness.gateway.shared.calls.load(Ordering::SeqCst), 3);
    // The outcome was unknown to the caller: the gateway did charge, once.
    assert_eq!(harness.gateway.charges_for(request.order_id).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn injected_failures_apply_nothing_and_are_retried() {
    let harness = Harness::with(|config| {
        config.failure_rate = 0.5;
        config.seed = Some(7);
    });
    let policy = RetryPolicy {
        attempts_max: 30,
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(10),
        attempt_timeout: Duration::from_secs(1),
    };
    let mut failures = 0;
    for _ in 0..20 {
        let request = charge_request("tok_visa");
        let outcome = call_with_retries(&policy, |attempt| {
            if attempt > 1 {
                failures += 1;
            }
            harness.gateway.charge(&request)
        })
        .await
        .unwrap();
        succeeded_reference(&outcome);
        assert_eq!(harness.gateway.charges_for(request.order_id).len(), 1);
    }
    // With a seeded generator some calls failed, and each retry found its
    // way to exactly one charge.
    assert!(failures > 0);
    assert_eq!(harness.gateway.ledger().len(), 20);

    let always = Harness::with(|config| config.failure_rate = 1.0);
    let request = charge_request("tok_visa");
    let error = always.gateway.charge(&request).await.unwrap_err();
    assert!(error.is_retryable());
    assert_eq!(error.code(), "gateway_unavailable");
    assert!(always.gateway.ledger().is_empty());
}

#[tokio::test]
async fn the_ledger_forgets_its_oldest_entries_beyond_its_bound() {
    let harness = Harness::with(|config| config.ledger_entries_max = 3);
    let mut requests = Vec::new();
    for _ in 0..5 {
        let request = charge_request("tok_visa");
        harness.gateway.charge(&request).await.unwrap();
        requests.push(request);
        harness.check();
    }
    let ledger = harness.gateway.ledger();
    assert_eq!(ledger.len(), 3);
    let kept: Vec<&str> = ledger
        .iter()
        .map(|charge| charge.idempotency_key.as_str())
        .collect();
    let newest: Vec<&str> = requests[2..]
        .iter()
        .map(|request| request.idempotency_key.as_str())
        .collect();
    assert_eq!(kept, newest);
    // A refund is an entry too: it pushes out the oldest charge.
    let reference = ledger[2].provider_reference.clone();
    harness
        .gateway
        .refund(&refund_request(&reference, Some("1")))
        .await
        .unwrap();
    assert_eq!(harness.gateway.ledger().len(), 2);
    harness.check();
}

#[tokio::test(start_paused = true)]
async fn delayed_charges_are_bounded_by_the_pending_webhooks() {
    let harness = Harness::with(|config| config.webhooks_pending_max = 2);
    for _ in 0..2 {
        harness
            .gateway
            .charge(&charge_request("tok_delayed"))
            .await
            .unwrap();
    }
    let refused = charge_request("tok_delayed");
    let error = harness.gateway.charge(&refused).await.unwrap_err();
    assert!(error.is_retryable());
    assert!(harness.gateway.charges_for(refused.order_id).is_empty());
    // Immediate charges are not held back.
    succeeded_charge(&harness).await;
    // Once the webhooks are out, delayed charges are taken again.
    while harness.webhooks_pending() != 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pending_reference(&harness.gateway.charge(&refused).await.unwrap());
    harness.check();
}

#[test]
fn out_of_range_configurations_are_refused() {
    let sink: Arc<dyn WebhookSink> = Arc::new(CapturingSink {
        deliveries: mpsc::unbounded_channel().0,
        refusals: AtomicU32::new(0),
        attempts: AtomicU32::new(0),
        clock: ManualClock::new(NOW),
    });
    let refused = |configure: fn(&mut SimulatedGatewayConfig)| {
        let mut config = SimulatedGatewayConfig::new(WebhookSecret::new(SECRET));
        configure(&mut config);
        let error = SimulatedGateway::new(config, sink.clone()).unwrap_err();
        assert_eq!(error.code(), "invalid_request");
    };
    refused(|config| config.failure_rate = 1.5);
    refused(|config| config.failure_rate = -0.1);
    refused(|config| config.failure_rate = f64::NAN);
    refused(|config| config.ledger_entries_max = 0);
    refused(|config| config.webhooks_pending_max = 0);
    refused(|config| config.webhook_retry.attempt_timeout = Duration::ZERO);
}
