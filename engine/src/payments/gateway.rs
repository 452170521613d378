//! The seam to a payment provider: [`PaymentGateway`] and the values that
//! cross it.
//!
//! The trait speaks the provider's concepts (a charge made with an
//! idempotency key, a refund, a void, a verified webhook), never Mercato's
//! tables: the order saga turns these answers into payment rows and events.
//! It is small and object safe so that a real provider (Stripe, Adyen) can be
//! plugged in as an `Arc<dyn PaymentGateway>`; the async calls return boxed
//! futures ([`GatewayFuture`]) rather than depend on a macro crate.
//!
//! Every call that changes money carries an idempotency key. A provider
//! answers a repeat of a key with the answer it gave the first time and
//! never applies it twice, which is what makes retrying after a timeout (an
//! unknown outcome) safe: see [`call_with_retries`](crate::call_with_retries).

use std::future::Future;
use std::pin::Pin;

use rust_decimal::Decimal;

use crate::config::is_currency_code;
use crate::ids::{OrderId, Timestamp};
use crate::payments::signature::SignatureError;

/// The longest idempotency key a gateway call takes, in bytes (the
/// contract's `Idempotency-Key` limit).
pub const GATEWAY_IDEMPOTENCY_KEY_LENGTH_MAX: usize = 255;
pub(crate) use crate::orders::PAYMENT_TOKEN_LENGTH_MAX;

/// A boxed, sendable future: what the async methods of [`PaymentGateway`]
/// and [`WebhookSink`] return, so that both stay object safe.
pub type GatewayFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(crate) use crate::ids::PaymentId;

/// A payment provider, as the order saga sees it.
///
/// Implementations must keep these promises:
///
/// - A call repeated with the same idempotency key and the same request
///   answers what the first call answered and is applied at most once; the
///   same key with a different request is
///   [`GatewayError::IdempotencyConflict`].
/// - [`GatewayError::Timeout`] and [`GatewayError::Unavailable`] are the
///   only errors worth retrying (see [`GatewayError::is_retryable`]); after a
///   timeout the call may or may not have been applied, and a retry with the
///   same key finds out.
/// - A charge answered [`ChargeOutcome::Pending`] is settled later by a
///   webhook that [`PaymentGateway::verify_webhook`] accepts.
pub trait PaymentGateway: Send + Sync {
    /// Charges (authorizes and captures) `request.amount` on the card behind
    /// `request.token`. A decline is an outcome
    /// ([`ChargeOutcome::Failed`]), not an error.
    fn charge<'a>(
        &'a self,
        request: &'a ChargeRequest,
    ) -> GatewayFuture<'a, Result<ChargeOutcome, GatewayError>>;

    /// Gives back part or all of what a succeeded charge captured, never
    /// more than is left to refund.
    fn refund<'a>(
        &'a self,
        request: &'a RefundRequest,
    ) -> GatewayFuture<'a, Result<RefundOutcome, GatewayError>>;

    /// Cancels a charge whose result is not yet final (pending or only
    /// authorized), so that it never succeeds. A charge that already
    /// succeeded is refunded instead: voiding it is
    /// [`GatewayError::InvalidState`].
    fn void<'a>(
        &'a self,
        request: &'a VoidRequest,
    ) -> GatewayFuture<'a, Result<VoidOutcome, GatewayError>>;

    /// Checks that a webhook request really comes from the provider and is
    /// fresh at `now`, and turns its body into an event. `headers` are the
    /// request's headers as name and value pairs (names in any case);
    /// `body` is the raw body exactly as received, since signatures cover
    /// its bytes. A request that fails the check must change nothing.
    fn verify_webhook(
        &self,
        headers: &[(&str, &str)],
        body: &[u8],
        now: Timestamp,
    ) -> Result<WebhookEvent, WebhookError>;
}

/// What to charge, and the key that makes repeating it safe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The same key for every attempt of this charge, 1 to
    /// [`GATEWAY_IDEMPOTENCY_KEY_LENGTH_MAX`] bytes.
    pub idempotency_key: String,
    /// How much to charge: positive.
    pub amount: Decimal,
    /// ISO 4217 code of `amount`, e.g. `USD`.
    pub currency: String,
    /// The provider's token for the card (never card numbers), 1 to
    /// [`PAYMENT_TOKEN_LENGTH_MAX`] bytes.
    pub token: String,
    /// The order being paid, kept with the charge as metadata.
    pub order_id: OrderId,
    /// Mercato's payment, kept with the charge and echoed by its webhooks.
    pub payment_id: PaymentId,
}

impl ChargeRequest {
    /// Refuses what no provider would take.
    pub(crate) fn validate(&self) -> Result<(), GatewayError> {
        validate_idempotency_key(&self.idempotency_key)?;
        if self.amount <= Decimal::ZERO {
            return Err(GatewayError::InvalidRequest(
                "amount must be positive".to_owned(),
            ));
        }
        if !is_currency_code(&self.currency) {
            return Err(GatewayError::InvalidRequest(
                "currency must be three upper-case letters (ISO 4217)".to_owned(),
            ));
        }
        if self.token.is_empty() || self.token.len() > PAYMENT_TOKEN_LENGTH_MAX {
            return Err(GatewayError::InvalidRequest(format!(
                "token must be 1 to {PAYMENT_TOKEN_LENGTH_MAX} bytes"
            )));
        }
        Ok(())
    }
}

/// How a charge ended, or that it has not ended yet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChargeOutcome {
    /// The money was captured.
    Succeeded {
        /// The provider's id for the charge, for refunds and support.
        provider_reference: String,
    },
    /// The provider declined the charge. Nothing was captured.
    Failed {
        /// The provider's decline code, e.g. `card_declined`,
        /// `insufficient_funds`, `invalid_token`.
        reason: String,
    },
    /// The provider has taken the charge but answers later, by webhook.
    Pending {
        /// The provider's id for the charge, to void it meanwhile.
        provider_reference: String,
    },
}

/// Money to give back from a succeeded charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRequest {
    /// The same key for every attempt of this refund; each refund of a
    /// partial series has its own.
    pub idempotency_key: String,
    /// The charge to refund, as the provider named it (the
    /// `provider_reference` of [`ChargeOutcome::Succeeded`]).
    pub provider_reference: String,
    /// How much to give back (positive), or `None` for everything not yet
    /// refunded.
    pub amount: Option<Decimal>,
}

impl RefundRequest {
    pub(crate) fn validate(&self) -> Result<(), GatewayError> {
        validate_idempotency_key(&self.idempotency_key)?;
        validate_reference(&self.provider_reference)?;
        if let Some(amount) = self.amount
            && amount <= Decimal::ZERO
        {
            return Err(GatewayError::InvalidRequest(
                "a refund's amount must be positive".to_owned(),
            ));
        }
        Ok(())
    }
}

/// A refund the provider made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundOutcome {
    /// The provider's id for this refund.
    pub provider_reference: String,
    /// How much this refund gave back.
    pub amount: Decimal,
}

/// A charge to cancel before it succeeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoidRequest {
    /// The same key for every attempt of this void.
    pub idempotency_key: String,
    /// The charge to void, as the provider named it (the
    /// `provider_reference` of [`ChargeOutcome::Pending`]).
    pub provider_reference: String,
}

impl VoidRequest {
    pub(crate) fn validate(&self) -> Result<(), GatewayError> {
        validate_idempotency_key(&self.idempotency_key)?;
        validate_reference(&self.provider_reference)
    }
}

/// What a void did. Both mean the charge will never succeed; they differ so
/// that a compensation that found nothing to undo can say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VoidOutcome {
    /// The charge was pending (or authorized) and is now void.
    Voided,
    /// The charge had been voided before.
    AlreadyVoided,
}

/// A provider's webhook after its signature was checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The provider's event id. Providers deliver at least once, so a
    /// receiver applies each id once.
    pub id: String,
    /// The payment the event settles.
    pub payment_id: PaymentId,
    /// How the payment ended.
    pub outcome: WebhookOutcome,
}

/// The final result of a pending charge, as a webhook reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookOutcome {
    /// The money was captured.
    Succeeded,
    /// The charge failed; nothing was captured.
    Failed {
        /// The provider's decline code.
        reason: String,
    },
}

/// Where a gateway sends its webhooks. The server implements it as an HTTP
/// POST to its own webhook route, exactly as an outside provider would call
/// it; tests capture the deliveries instead.
pub trait WebhookSink: Send + Sync {
    /// Delivers one webhook: the `Mercato-Signature` header's value and the
    /// raw body. An `Err` (a refused or failed delivery, described for the
    /// log) makes the gateway try again later, a bounded number of times.
    fn deliver(
        &self,
        signature_header: String,
        body: Vec<u8>,
    ) -> GatewayFuture<'_, Result<(), String>>;
}

/// A gateway call that did not produce an outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// No answer in time. The call may or may not have been applied; retry
    /// with the same idempotency key to find out.
    #[error("the payment gateway did not answer in time")]
    Timeout,
    /// The provider could not take the call now (down, overloaded, a
    /// network fault before it was sent). Nothing was applied; retry.
    #[error("the payment gateway is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request as invalid (amount, currency,
    /// credentials). Retrying it unchanged cannot help.
    #[error("the payment gateway refused the request: {0}")]
    InvalidRequest(String),
    /// The provider does not know the charge named.
    #[error("the payment gateway knows no charge {0}")]
    UnknownCharge(String),
    /// A refund larger than what is left to refund.
    #[error("refund exceeds what is left to refund ({refundable})")]
    RefundExceedsCaptured {
        /// What is left to refund.
        refundable: Decimal,
    },
    /// The charge's state does not allow this (refunding a pending charge,
    /// voiding a succeeded one).
    #[error("the charge is {state}")]
    InvalidState {
        /// The charge's state: `pending`, `succeeded`, `failed` or `voided`.
        state: &'static str,
    },
    /// The idempotency key was used before with a different request.
    #[error("idempotency key {0:?} was used with a different request")]
    IdempotencyConflict(String),
}

impl GatewayError {
    /// True when the same call may succeed if tried again with the same
    /// idempotency key: timeouts and unavailability, nothing else.
    pub fn is_retryable(&self) -> bool {
        matches!(self, GatewayError::Timeout | GatewayError::Unavailable(_))
    }

    /// A stable snake_case code, as the engine's [`Error::code`](crate::Error::code).
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::Timeout => "gateway_timeout",
            GatewayError::Unavailable(_) => "gateway_unavailable",
            GatewayError::InvalidRequest(_) => "invalid_request",
            GatewayError::UnknownCharge(_) => "not_found",
            GatewayError::RefundExceedsCaptured { .. } => "refund_exceeds_captured",
            GatewayError::InvalidState { .. } => "invalid_state",
            GatewayError::IdempotencyConflict(_) => "conflict",
        }
    }
}

/// A webhook request that must be refused and must change nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The signature is missing, malformed, wrong or stale: the request
    /// may not come from the provider.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Correctly signed, but the body is not an event this gateway sends.
    #[error("invalid webhook payload: {0}")]
    InvalidPayload(String),
}

impl WebhookError {
    /// A stable snake_case code: `invalid_signature` (HTTP 401) or
    /// `invalid_request` (HTTP 400).
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::Signature(error) => error.code(),
            WebhookError::InvalidPayload(_) => "invalid_request",
        }
    }
}

fn validate_idempotency_key(key: &str) -> Result<(), GatewayError> {
    if key.is_empty() || key.len() > GATEWAY_IDEMPOTENCY_KEY_LENGTH_MAX {
        return Err(GatewayError::InvalidRequest(format!(
            "idempotency_key must be 1 to {GATEWAY_IDEMPOTENCY_KEY_LENGTH_MAX} bytes"
        )));
    }
    Ok(())
}

fn validate_reference(reference: &str) -> Result<(), GatewayError> {
    // A reference is the provider's own id; anything longer than a key is
    // not one of them.
    if reference.is_empty() || reference.len() > GATEWAY_IDEMPOTENCY_KEY_LENGTH_MAX {
        return Err(GatewayError::UnknownCharge(
            reference.chars().take(64).collect(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use uuid::Uuid;

    #[test]
    fn only_timeouts_and_unavailability_are_retryable() {
        assert!(GatewayError::Timeout.is_retryable());
        assert!(GatewayError::Unavailable("503".into()).is_retryable());
        assert!(!GatewayError::InvalidRequest("amount".into()).is_retryable());
        assert!(!GatewayError::UnknownCharge("ch_1".into()).is_retryable());
        assert!(
            !GatewayError::RefundExceedsCaptured {
                refundable: Decimal::ONE
            }
            .is_retryable()
        );
        assert!(!GatewayError::InvalidState { state: "pending" }.is_retryable());
        assert!(!GatewayError::IdempotencyConflict("k".into()).is_retryable());
    }

    #[test]
    fn charge_requests_are_validated() {
        let valid = ChargeRequest {
            idempotency_key: "key".into(),
            amount: "10.00".parse().unwrap(),
            currency: "USD".into(),
            token: "tok_visa".into(),
            order_id: OrderId(Uuid::now_v7()),
            payment_id: PaymentId(Uuid::now_v7()),
        };
        assert_eq!(valid.validate(), Ok(()));
        let refused = |request: ChargeRequest| {
            let error = request.validate().unwrap_err();
            assert_eq!(error.code(), "invalid_request");
        };
        refused(ChargeRequest {
            amount: Decimal::ZERO,
            ..valid.clone()
        });
        refused(ChargeRequest {
            amount: "-1".parse().unwrap(),
            ..valid.clone()
        });
        refused(ChargeRequest {
            currency: "usd".into(),
            ..valid.clone()
        });
        refused(ChargeRequest {
            idempotency_key: String::new(),
            ..valid.clone()
        });
        refused(ChargeRequest {
            idempotency_key: "k".repeat(GATEWAY_IDEMPOTENCY_KEY_LENGTH_MAX + 1),
            ..valid.clone()
        });
        refused(ChargeRequest {
            token: String::new(),
            ..valid.clone()
        });
    }

    #[test]
    fn payment_ids_round_trip_through_u128_and_text() {
        let id = PaymentId(Uuid::now_v7());
        assert_eq!(PaymentId::from_u128(id.as_u128()), id);
        assert_eq!(id.to_string().parse::<PaymentId>().unwrap(), id);
    }

    /// The traits must stay usable behind `Arc<dyn _>`.
    #[test]
    fn the_traits_are_object_safe() {
        fn takes(_: Option<Arc<dyn PaymentGateway>>, _: Option<Arc<dyn WebhookSink>>) {}
        takes(None, None);
    }
}
