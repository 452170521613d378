//! [`AppState`]: what every handler shares.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use mercato_engine::{Checkout, Engine, Notifications};
use mercato_index::SearchIndex;

use crate::api::streams::Streams;
use crate::auth::Auth;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimit;

/// Shared state of the router. Cheap to clone: one reference count, since
/// axum clones the state for every extractor and middleware of every request.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

/// What [`AppState`] holds.
pub struct SharedState {
    /// The engine.
    pub engine: Engine,
    /// The saga runner: it takes orders through the payment gateway, makes
    /// refunds, and holds the gateway that verifies webhooks.
    pub checkout: Checkout,
    /// The notification runner, once one runs over this engine (a
    /// follower's starts when it is promoted): a retry through the API
    /// wakes it. Shared with whoever starts and stops it
    /// ([`AppState::notifications_slot`]).
    notifications: Arc<OnceLock<Notifications>>,
    pub(crate) auth: Auth,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: Limits,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) ready: AtomicBool,
    /// Idempotency keys whose first request is still being handled.
    pub(crate) idempotency_in_flight: Mutex<HashSet<String>>,
    /// The open server-sent event streams.
    pub(crate) streams: Streams,
    /// Whether `POST /api/v1/auth/demo-sign-in` mints customer tokens.
    demo_sign_in: AtomicBool,
    /// Replication, when this server publishes its log or follows a
    /// primary's (see [`AppState::with_replication`]).
    pub replication: Option<Arc<crate::replication::Replication>>,
    /// The search index, once open (see [`AppState::attach_search`]).
    search: OnceLock<AttachedSearch>,
    /// `/readyz` waits for the search index (see [`AppState::require_search`]).
    search_required: AtomicBool,
}

/// The search index and the log's head when it was attached: the server is
/// ready once searches see every event up to it.
struct AttachedSearch {
    index: SearchIndex,
    caught_up_at: u64,
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// Limits on requests.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest request body, in bytes. Default 1 MiB.
    pub body_bytes_max: usize,
    /// Requests per second per client IP; `None` turns rate limiting off.
    pub rate_limit_per_second: Option<u32>,
    /// The most `Idempotency-Key` answers kept per customer (over the
    /// `idempotency_ttl` each is kept); past it a new key is refused with
    /// 429. The admin has no cap. Default 1000.
    pub idempotency_records_per_customer_max: usize,
    /// How long the first answer to an `Idempotency-Key` is kept for
    /// replay; the writer removes it after. At least
    /// [`IDEMPOTENCY_TTL_MIN`](crate::IDEMPOTENCY_TTL_MIN) and at most
    /// [`IDEMPOTENCY_TTL_MAX`](crate::IDEMPOTENCY_TTL_MAX) ([`AppState::new`]
    /// clamps it). Default [`IDEMPOTENCY_TTL`](crate::IDEMPOTENCY_TTL), 24
    /// hours.
    pub idempotency_ttl: std::time::Duration,
    /// The longest a request may take from its headers to its answer,
    /// reading its body included; past it the answer is `408
    /// request_timeout`. Default 60 s.
    pub request_timeout: std::time::Duration,
    /// The most server-sent event streams open at once; past it a new one
    /// is refused with `503 too_many_streams`. Default 256.
    pub streams_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body_bytes_max: 1 << 20,
            rate_limit_per_second: None,
            idempotency_records_per_customer_max: 1_000,
            idempotency_ttl: crate::idempotency::IDEMPOTENCY_TTL,
            request_timeout: std::time::Duration::from_secs(60),
            streams_max: 256,
        }
    }
}

impl AppState {
    /// State over an open engine. `metrics` should be the observer the
    /// engine was opened with, so writer figures show in `/metrics`;
    /// `checkout` is the saga runner started over the same engine.
    pub fn new(
        engine: Engine,
        auth: Auth,
        metrics: Arc<Metrics>,
        limits: Limits,
        checkout: Checkout,
    ) -> AppState {
        let mut limits = limits;
        limits.idempotency_ttl = limits.idempotency_ttl.clamp(
            crate::idempotency::IDEMPOTENCY_TTL_MIN,
            crate::idempotency::IDEMPOTENCY_TTL_MAX,
        );
        AppState(Arc::new(SharedState {
            engine,
            checkout,
            notifications: Arc::new(OnceLock::new()),
            replication: None,
            auth,
            metrics,
            rate_limit: limits.rate_limit_per_second.map(RateLimit::new),
            limits,
            ready: AtomicBool::new(true),
            idempotency_in_flight: Mutex::default(),
            streams: Streams::new(limits.streams_max),
            demo_sign_in: AtomicBool::new(false),
            search: OnceLock::new(),
            search_required: AtomicBool::new(false),
        }))
    }

    /// The same state, with the notification runner started over its
    /// engine. Call before the state is cloned.
    ///
    /// # Panics
    ///
    /// If the state was already cloned.
    pub fn with_notifications(mut self, notifications: Notifications) -> AppState {
        let shared = Arc::get_mut(&mut self.0)
            .expect("with_notifications is called before the state is shared");
        shared.notifications = Arc::new(OnceLock::from(notifications));
        self
    }

    /// The notification runner, once one runs over this engine.
    pub fn notifications(&self) -> Option<&Notifications> {
        self.notifications.get()
    }

    /// Where the notification runner goes once it starts after the state
    /// is shared (a follower's, at its promotion): the routes that wake
    /// it find it there.
    pub fn notifications_slot(&self) -> Arc<OnceLock<Notifications>> {
        self.notifications.clone()
    }

    /// The same state, with replication (a primary's publisher or a
    /// follower). Call before the state is cloned.
    ///
    /// # Panics
    ///
    /// If the state was already cloned.
    pub fn with_replication(
        mut self,
        replication: Arc<crate::replication::Replication>,
    ) -> AppState {
        Arc::get_mut(&mut self.0)
            .expect("with_replication is called before the state is shared")
            .replication = Some(replication);
        self
    }

    /// Makes `/readyz` answer 503 until a search index is attached and has
    /// caught up (the server sets this before it opens the index, which
    /// may rebuild it). Without it, a router with no index is ready and its
    /// search routes answer 503 `search_unavailable`.
    pub fn require_search(&self) {
        self.search_required.store(true, Ordering::SeqCst);
    }

    /// Serves searches from `index` (whose indexer the caller runs and
    /// stops). The server counts as ready once the index has applied every
    /// event the log holds now. A second index is refused and handed back.
    pub fn attach_search(&self, index: SearchIndex) -> Result<(), SearchIndex> {
        let caught_up_at = self.engine.last_event_seq();
        self.search
            .set(AttachedSearch {
                index,
                caught_up_at,
            })
            .map_err(|attached| attached.index)
    }

    /// The search index, once attached.
    pub fn search_index(&self) -> Option<&SearchIndex> {
        self.search.get().map(|attached| &attached.index)
    }

    /// Whether a search index is expected ([`AppState::require_search`]).
    pub(crate) fn is_search_required(&self) -> bool {
        self.search_required.load(Ordering::SeqCst)
    }

    /// False while a required search index is not attached or has not yet
    /// caught up with the log as it was when it was attached.
    pub(crate) fn is_search_ready(&self) -> bool {
        match self.search.get() {
            Some(attached) => attached.index.indexed_seq() >= attached.caught_up_at,
            None => !self.search_required.load(Ordering::SeqCst),
        }
    }

    /// Ends every open server-sent event stream and refuses new ones. Call
    /// it when shutting down: a stream does not end by itself, so a
    /// graceful shutdown would wait for it.
    pub fn close_streams(&self) {
        self.streams.close();
    }

    /// Switches the demo sign-in (`POST /api/v1/auth/demo-sign-in`) on or
    /// off. It is off unless switched on: it mints a customer token for
    /// whatever name it is given, which only a demonstration shop wants.
    pub fn set_demo_sign_in(&self, enabled: bool) {
        self.demo_sign_in.store(enabled, Ordering::SeqCst);
    }

    pub(crate) fn is_demo_sign_in_enabled(&self) -> bool {
        self.demo_sign_in.load(Ordering::SeqCst)
    }

    /// Marks the server ready or not for `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}
