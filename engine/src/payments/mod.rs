//! Payments: the seam to a payment provider and the built-in simulated one.
//!
//! [`PaymentGateway`](gateway::PaymentGateway) is what the order saga calls:
//! charge with an idempotency key, refund, void, and verify a provider's
//! webhook. [`SimulatedGateway`](simulated::SimulatedGateway) is the default
//! provider, with a ledger of its own, and sends its delayed results as
//! webhooks signed with the contract's scheme (`signature`), exactly as an
//! outside provider would. `retry` bounds every remote call: a timeout per
//! attempt, backoff with jitter, a bounded number of attempts.
//!
//! Nothing here touches the store: the saga records a call's intent and
//! its outcome, and this module only makes the call.

pub(crate) mod gateway;
pub(crate) mod retry;
pub(crate) mod signature;
pub(crate) mod simulated;
mod webhook;
