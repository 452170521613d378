//! Replication in the server: the primary's [`Publisher`] or the
//! follower's [`Follower`] (both from `mercato_engine::nats`), the report
//! behind `GET /api/v1/replication`, `/readyz` and `/metrics`, the
//! promotion behind `POST /api/v1/replication/promote`, and the
//! [`positions`] middleware: every answer names the log position it was
//! made at (`Mercato-Seq`), and a read may ask for at least a position
//! (`?min_seq=` or `Mercato-Min-Seq`), waiting briefly for a follower to
//! reach it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mercato_engine::Engine;
use mercato_engine::nats::{Follower, NatsConfig, Publisher, ReplicationMode, ReplicationStatus};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::ApiError;
use crate::state::AppState;

/// The header every answer carries: the last durable log record when it was
/// made. A client that wrote on the primary reads its own write on a
/// follower by sending it back as `Mercato-Min-Seq` (or `?min_seq=`).
pub const SEQ_HEADER: &str = "mercato-seq";
/// The header (or `min_seq` query parameter) asking for at least a position.
pub const MIN_SEQ_HEADER: &str = "mercato-min-seq";
/// The longest a read waits for `min_seq` before it answers 503.
pub const MIN_SEQ_WAIT_MAX: Duration = Duration::from_secs(10);

/// How `mercato serve` replicates.
#[derive(Clone, Debug)]
pub struct ReplicationSettings {
    /// Where JetStream is and what the store is called there.
    pub nats: NatsConfig,
    /// True: follow that stream; false: publish to it (a primary).
    pub follow: bool,
    /// How long a read with `min_seq` waits for the position. At most
    /// [`MIN_SEQ_WAIT_MAX`].
    pub min_seq_wait: Duration,
}

enum Role {
    Primary(Publisher),
    Follower(Follower),
    /// Between the two (a promotion in progress), or stopped.
    None,
}

/// The server's replication: what role it has now, and how to report it.
pub struct Replication {
    role: tokio::sync::Mutex<Role>,
    status: Mutex<Arc<ReplicationStatus>>,
    /// Started once this follower becomes the primary (the saga and
    /// notification runners, which a follower must not run).
    on_promote: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    min_seq_wait: Duration,
    mode: ReplicationMode,
}

/// Where replication stands, as `GET /api/v1/replication` and `/readyz`
/// show it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReplicationReport {
    /// `primary`, `follower` or `fenced` (a deposed primary).
    pub role: &'static str,
    /// `sync` or `async`.
    pub mode: &'static str,
    /// The last durable log record here (on a follower: the last applied).
    pub lsn: u64,
    /// Primary: the last record JetStream acknowledged. Follower: the last
    /// record applied.
    pub replicated_lsn: u64,
    /// Primary: records not yet acknowledged. Follower: records in the
    /// stream not yet applied.
    pub lag_records: u64,
    /// Follower: the age in seconds of the oldest record not yet applied.
    pub lag_seconds: f64,
    /// True while connected to NATS and working.
    pub connected: bool,
    /// The record the newest snapshot holds (primary).
    pub snapshot_lsn: u64,
    /// Where the primary is, when known (its advertised URL).
    pub primary: Option<String>,
    /// Why this server takes no writes, when fenced.
    pub fenced: Option<String>,
    /// True once publishing or following stopped for good (see the
    /// server's log): a follower then serves reads that no longer advance.
    pub stopped: bool,
}

impl Replication {
    /// Replication over an engine opened as a primary: starts publishing.
    pub fn primary(
        engine: &Engine,
        settings: &ReplicationSettings,
    ) -> Result<Replication, mercato_engine::Error> {
        let publisher = Publisher::start(engine.clone(), settings.nats.clone())?;
        Ok(Replication::new(Role::Primary(publisher), settings))
    }

    /// Replication over an engine opened as a follower: starts following
    /// (an empty store first installs the primary's snapshot). `on_promote`
    /// runs once it becomes the primary.
    pub async fn follower(
        engine: &Engine,
        settings: &ReplicationSettings,
        on_promote: Box<dyn FnOnce() + Send>,
    ) -> Result<Replication, mercato_engine::Error> {
        let follower = Follower::start(engine.clone(), settings.nats.clone()).await?;
        let replication = Replication::new(Role::Follower(follower), settings);
        *replication
            .on_promote
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(on_promote);
        Ok(replication)
    }

    fn new(role: Role, settings: &ReplicationSettings) -> Replication {
        let status = match &role {
            Role::Primary(publisher) => publisher.status(),
            Role::Follower(follower) => follower.status(),
            Role::None => Arc::default(),
        };
        Replication {
            role: tokio::sync::Mutex::new(role),
            status: Mutex::new(status),
            on_promote: Mutex::new(None),
            min_seq_wait: settings.min_seq_wait.min(MIN_SEQ_WAIT_MAX),
            mode: settings.nats.mode,
        }
    }

    fn status(&self) -> Arc<ReplicationStatus> {
        self.status
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// Where replication stands now.
    pub fn report(&self, engine: &Engine) -> ReplicationReport {
        let status = self.status();
        let lsn = engine.last_lsn();
        let replicated_lsn = status.replicated_lsn.load(Ordering::SeqCst);
        let follower = engine.is_follower();
        let fenced = engine.fenced();
        ReplicationReport {
            role: if fenced.is_some() {
                "fenced"
            } else if follower {
                "follower"
            } else {
                "primary"
            },
            mode: match self.mode {
                ReplicationMode::Sync => "sync",
                _ => "async",
            },
            lsn,
            replicated_lsn,
            lag_records: if follower {
                status.lag_records.load(Ordering::SeqCst)
            } else {
                lsn.saturating_sub(replicated_lsn)
            },
            lag_seconds: if follower {
                status.lag_ms.load(Ordering::SeqCst) as f64 / 1_000.0
            } else {
                0.0
            },
            connected: status.connected.load(Ordering::SeqCst),
            snapshot_lsn: status.snapshot_lsn.load(Ordering::SeqCst),
            primary: engine.primary_hint(),
            fenced,
            stopped: status.stopped.load(Ordering::SeqCst),
        }
    }

    /// False while a follower has not yet installed its first snapshot,
    /// and once it stopped following for good.
    pub(crate) fn is_ready(&self, engine: &Engine) -> bool {
        if !engine.is_follower() {
            return true;
        }
        let status = self.status();
        status.bootstrapped.load(Ordering::SeqCst) && !status.stopped.load(Ordering::SeqCst)
    }

    /// Makes this follower the primary (see `Follower::promote`); answers
    /// the last record it holds.
    pub async fn promote(&self, engine: &Engine) -> Result<u64, ApiError> {
        let mut role = self.role.lock().await;
        let follower = match std::mem::replace(&mut *role, Role::None) {
            Role::Follower(follower) => follower,
            other => {
                *role = other;
                return Err(ApiError::new(
                    "conflict",
                    "this server is not a follower: only a follower can be promoted",
                ));
            }
        };
        match follower.promote().await {
            Ok(publisher) => {
                *self
                    .status
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner()) = publisher.status();
                *role = Role::Primary(publisher);
                let on_promote = self
                    .on_promote
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .take();
                if let Some(on_promote) = on_promote {
                    on_promote();
                }
                Ok(engine.last_lsn())
            }
            Err((follower, error)) => {
                *role = Role::Follower(follower);
                Err(ApiError::new("conflict", error.to_string()))
            }
        }
    }

    /// Stops publishing or following.
    pub async fn stop(&self) {
        let role = std::mem::replace(&mut *self.role.lock().await, Role::None);
        match role {
            Role::Primary(publisher) => publisher.stop().await,
            Role::Follower(follower) => follower.stop().await,
            Role::None => {}
        }
    }
}

/// The middleware: waits for `min_seq` (GET and HEAD only; taken out of the
/// query before the route sees it) and adds `Mercato-Seq` to every answer.
pub(crate) async fn positions(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let min_seq = match take_min_seq(&mut request) {
        Ok(min_seq) => min_seq,
        Err(problem) => return problem.into_response(),
    };
    if let Some(min_seq) = min_seq
        && state.engine.last_lsn() < min_seq
    {
        let wait = state
            .replication
            .as_ref()
            .map_or(Duration::ZERO, |replication| replication.min_seq_wait);
        let mut watch = state.engine.watch_lsn();
        let reached = tokio::time::timeout(wait, watch.wait_for(|&lsn| lsn >= min_seq)).await;
        if !matches!(reached, Ok(Ok(_))) {
            let lsn = state.engine.last_lsn();
            return ApiError::new(
                "replica_behind",
                format!("this server is at log position {lsn}, short of min_seq {min_seq}; retry shortly or ask the primary"),
            )
            .with("seq", lsn)
            .with("min_seq", min_seq)
            .into_response();
        }
    }
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(SEQ_HEADER, HeaderValue::from(state.engine.last_lsn()));
    response
}

/// Reads `min_seq` from the query (removing it) or the header.
fn take_min_seq(request: &mut Request) -> Result<Option<u64>, ApiError> {
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    let mut found = None;
    if let Some(value) = request.headers().get(MIN_SEQ_HEADER) {
        found = Some(
            value
                .to_str()
                .ok()
                .and_then(|value| value.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid(MIN_SEQ_HEADER, "a log position (an integer)"))?,
        );
    }
    if let Some(query) = request.uri().query()
        && query
            .split('&')
            .any(|pair| pair == "min_seq" || pair.starts_with("min_seq="))
    {
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.strip_prefix("min_seq=") {
                Some(value) => {
                    found = Some(value.parse::<u64>().map_err(|_| {
                        ApiError::invalid("min_seq", "a log position (an integer)")
                    })?);
                }
                None if pair == "min_seq" => {
                    return Err(ApiError::invalid("min_seq", "a log position (an integer)"));
                }
                None => kept.push(pair),
            }
        }
        let path = request.uri().path().to_owned();
        let uri = if kept.is_empty() {
            path
        } else {
            format!("{path}?{}", kept.join("&"))
        };
        *request.uri_mut() = uri
            .parse::<Uri>()
            .map_err(|_| ApiError::invalid("min_seq", "the rest of the query is malformed"))?;
    }
    if found.is_some() && !reads {
        return Err(ApiError::invalid(
            "min_seq",
            "only reads (GET, HEAD) wait for a position",
        ));
    }
    Ok(found)
}
