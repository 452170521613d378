//! The accept loop of `mercato serve`, with the bounds a hostile client
//! meets: at most `connections_max` connections open at once (further
//! clients wait in the kernel's backlog until one closes), a deadline for
//! each request's headers (which also closes a keep-alive connection left
//! idle that long, and one that sends nothing), and, at shutdown, a grace
//! period for requests in flight after which every connection is closed.
//! The request-body and handling deadline is a middleware
//! ([`request_deadline`], `Limits::request_timeout`), so a slow body gets a
//! problem document.
//!
//! The loop survives running out of file descriptors: an accept error is
//! logged and retried after a pause, while open connections go on.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::problem::ApiError;
use crate::state::AppState;

/// How connections are bounded. A plain struct with documented defaults.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// The most connections open at once. Default 4096 (and always below
    /// the process's limit of open files, leaving room for the store).
    pub connections_max: usize,
    /// The longest a client may take to send a request's headers, counted
    /// from when the server starts waiting for them: it also closes a
    /// connection that sends nothing and a keep-alive connection left idle.
    /// Default 10 s.
    pub header_timeout: Duration,
    /// How long requests in flight may finish at shutdown before every
    /// connection is closed. Default 10 s.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            connections_max: 4_096,
            header_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The pause after an accept error (out of descriptors, say).
const ACCEPT_RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// Descriptors kept free for the store, the log, the index and the
/// outgoing webhook and mail connections.
const DESCRIPTORS_RESERVED: u64 = 256;

/// `connections_max`, lowered to fit under the process's limit of open
/// files.
fn connections_cap(wanted: usize) -> usize {
    match open_files_limit() {
        Some(limit) if limit > DESCRIPTORS_RESERVED * 2 => {
            let fits = usize::try_from(limit - DESCRIPTORS_RESERVED).unwrap_or(usize::MAX);
            if fits < wanted {
                tracing::warn!(
                    wanted,
                    fits,
                    "--connections-max is above what the open-files limit allows; lowered"
                );
            }
            wanted.min(fits)
        }
        _ => wanted.min(64),
    }
}

/// The soft limit of open files, read from /proc (Linux); `None` elsewhere.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

/// Serves `app` on `listener` until `shutdown` resolves, then gives
/// requests in flight `limits.shutdown_grace` and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(connections_cap(limits.connections_max)));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(128 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_timeout))
        .max_concurrent_streams(64);
    tokio::pin!(shutdown);
    loop {
        // Wait for room before accepting: a full house leaves new clients
        // in the backlog rather than taking descriptors.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, address) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed; retrying");
                    tokio::time::sleep(ACCEPT_RETRY_INTERVAL).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let header_timeout = limits.header_timeout;
        let service = app
            .clone()
            .map_request(move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(address));
                request
            })
            .map_err(|never: Infallible| match never {});
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // hyper's header deadline starts once it reads a request; the
            // first bytes (which also tell HTTP/1 from HTTP/2) get the same
            // deadline here, so a client that sends nothing is closed too.
            let mut first = [0_u8; 1];
            match tokio::time::timeout(header_timeout, stream.peek(&mut first)).await {
                Ok(Ok(read)) if read > 0 => {}
                _ => {
                    drop(permit);
                    return;
                }
            }
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            );
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, %address, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "requests still in flight after the shutdown grace period; closing their connections"
        );
    }
}

/// Answers `408 request_timeout` when a request (its body included) takes
/// longer than the configured deadline.
pub(crate) async fn request_deadline(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(state.limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            "request_timeout",
            format!(
                "the request took longer than {} ms (a body sent too slowly?)",
                state.limits.request_timeout.as_millis()
            ),
        )
        .into_response(),
    }
}
