//! Calling a gateway: a timeout on every attempt, retries with exponential
//! backoff and full jitter, and a bounded number of attempts.
//!
//! A remote call must end: the last failure is an outcome the caller acts
//! on (the order fails cleanly), never a hang. Only errors that
//! [`GatewayError::is_retryable`] are retried; the caller repeats the same
//! request with the same idempotency key on every attempt, so a retry after
//! a timeout (an outcome the caller could not see) is never applied twice.
//!
//! Full jitter (a delay drawn uniformly between zero and the exponential
//! ceiling) spreads the retries of many callers that failed together, so
//! they do not come back at the provider in step.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::payments::gateway::GatewayError;

/// The most attempts a [`RetryPolicy`] makes, whatever its `attempts_max`.
pub const RETRY_ATTEMPTS_MAX: u32 = 100;

/// How [`call_with_retries`] calls: at most `attempts_max` attempts, each
/// cut off after `attempt_timeout`, with a random pause before each retry of
/// up to `backoff_base * 2^(retry - 1)`, capped at `backoff_max`. So a call
/// takes at most `attempts_max * attempt_timeout` plus
/// `(attempts_max - 1) * backoff_max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The most attempts, the first included; at least 1 and at most
    /// [`RETRY_ATTEMPTS_MAX`] are made whatever this says. Default: 5.
    pub attempts_max: u32,
    /// The ceiling of the pause before the first retry; it doubles with
    /// each retry after. Default: 100 ms.
    pub backoff_base: Duration,
    /// The longest pause between two attempts. Default: 5 s.
    pub backoff_max: Duration,
    /// How long one attempt may take before it counts as
    /// [`GatewayError::Timeout`]. Default: 10 s.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts_max: 5,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The number of attempts this policy makes.
    fn attempts(&self) -> u32 {
        self.attempts_max.clamp(1, RETRY_ATTEMPTS_MAX)
    }

    /// The ceiling of the pause before retry number `retry` (1 for the pause
    /// after the first attempt): `backoff_base * 2^(retry - 1)`, at most
    /// `backoff_max`.
    fn backoff_ceiling(&self, retry: u32) -> Duration {
        assert!(retry >= 1);
        let doublings = (retry - 1).min(31);
        self.backoff_base
            .saturating_mul(1_u32 << doublings)
            .min(self.backoff_max)
    }

    /// The pause before retry number `retry`, given `unit` drawn uniformly
    /// from `[0, 1)`: full jitter.
    fn backoff(&self, retry: u32, unit: f64) -> Duration {
        assert!((0.0..1.0).contains(&unit));
        let pause = self.backoff_ceiling(retry).mul_f64(unit);
        assert!(pause <= self.backoff_max);
        pause
    }
}

/// Calls `call` until it succeeds, fails with an error that is not
/// retryable, or `policy`'s attempts are spent; answers the last result.
///
/// `call` gets the attempt's number (1 for the first) and must send the
/// same request, with the same idempotency key, every time. An attempt that
/// takes longer than `policy.attempt_timeout` is dropped and counts as
/// [`GatewayError::Timeout`].
pub async fn call_with_retries<T, F, Attempt>(
    policy: &RetryPolicy,
    mut call: F,
) -> Result<T, GatewayError>
where
    F: FnMut(u32) -> Attempt,
    Attempt: Future<Output = Result<T, GatewayError>>,
{
    let attempts = policy.attempts();
    let mut attempt = 1;
    loop {
        let result = match tokio::time::timeout(policy.attempt_timeout, call(attempt)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(GatewayError::Timeout),
        };
        let error = match result {
            Ok(value) => return Ok(value),
            Err(error) if !error.is_retryable() => return Err(error),
            Err(error) => error,
        };
        if attempt == attempts {
            tracing::warn!(attempts, error = %error, "gateway call failed; giving up");
            return Err(error);
        }
        // The generator is not `Send`: draw before the await.
        let pause = policy.backoff(attempt, rand::rng().random::<f64>());
        tracing::debug!(
            attempt,
            error = %error,
            pause_ms = pause.as_millis(),
            "gateway call failed; retrying"
        );
        tokio::time::sleep(pause).await;
        attempt += 1;
        assert!(attempt <= attempts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy(attempts_max: u32) -> RetryPolicy {
        RetryPolicy {
            attempts_max,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(80),
            attempt_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_backoff_ceiling_doubles_up_to_the_cap() {
        let policy = policy(10);
        let ceilings: Vec<u128> = (1..=6)
            .map(|retry| policy.backoff_ceiling(retry).as_millis())
            .collect();
        assert_eq!(ceilings, [10, 20, 40, 80, 80, 80]);
        assert_eq!(policy.backoff_ceiling(u32::MAX), policy.backoff_max);
    }

    #[test]
    fn jitter_stays_below_the_ceiling() {
        let policy = policy(10);
        assert_eq!(policy.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(policy.backoff(3, 0.5), Duration::from_millis(20));
        assert!(policy.backoff(3, 0.999_999) < Duration::from_millis(40));
        assert!(policy.backoff(40, 0.999_999) < policy.backoff_max);
    }

    #[test]
    fn attempts_are_at_least_one_and_bounded() {
        assert_eq!(policy(0).attempts(), 1);
        assert_eq!(policy(3).attempts(), 3);
        assert_eq!(policy(u32::MAX).attempts(), RETRY_ATTEMPTS_MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_bound_with_the_last_error() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = call_with_retries(&policy(4), |attempt| {
            let count = calls.fetch_add(1, Ordering::SeqCst) + 1;
            assert_eq!(attempt, count);
            async move { Err(GatewayError::Unavailable(format!("attempt {attempt}"))) }
        })
        .await;
        assert_eq!(result, Err(GatewayError::Unavailable("attempt 4".into())));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_error_is_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = call_with_retries(&policy(4), |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(GatewayError::InvalidState { state: "failed" }) }
        })
        .await;
        assert_eq!(result, Err(GatewayError::InvalidState { state: "failed" }));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_hangs_times_out_and_is_retried() {
        let calls = AtomicU32::new(0);
        let result = call_with_retries(&policy(4), |attempt| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if attempt <= 2 {
                    std::future::pending::<()>().await;
                }
                Ok(attempt)
            }
        })
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_that_all_hang_end_in_a_timeout() {
        let result: Result<(), _> = call_with_retries(&policy(3), |_| std::future::pending()).await;
        assert_eq!(result, Err(GatewayError::Timeout));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_attempts_still_calls_once() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = call_with_retries(&policy(0), |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(GatewayError::Timeout) }
        })
        .await;
        assert_eq!(result, Err(GatewayError::Timeout));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
