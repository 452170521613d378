//! Per-client rate limiting (off by default): a keyed token bucket from the
//! `governor` crate, keyed by the client's IP address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::problem::ApiError;
use crate::state::AppState;

/// A token bucket per client IP.
pub(crate) struct RateLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl RateLimit {
    pub(crate) fn new(per_second: u32) -> RateLimit {
        let rate = NonZeroU32::new(per_second.max(1)).expect("at least 1");
        RateLimit {
            limiter: RateLimiter::keyed(Quota::per_second(rate)),
        }
    }
}

/// Answers `429 rate_limited` to a client over its rate.
pub(crate) async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(rate_limit) = &state.rate_limit {
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |info| info.0.ip());
        if rate_limit.limiter.check_key(&client).is_err() {
            return ApiError::new("rate_limited", "too many requests from this client")
                .into_response();
        }
        // Forget idle clients now and then, so the map stays bounded.
        if rate_limit.limiter.len() > 100_000 {
            rate_limit.limiter.retain_recent();
        }
    }
    next.run(request).await
}
