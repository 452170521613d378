//! `mercato serve`: open the engine, load the sample catalog into an empty
//! store, serve until SIGINT or SIGTERM, then shut down in order: stop
//! accepting, finish requests in flight, let the writer commit, exit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mercato_engine::{Durability, Engine, EngineConfig};
use tokio::net::TcpListener;

use crate::auth::{AdminTokenSource, Auth};
use crate::metrics::Metrics;
use crate::sample;
use crate::state::{AppState, Limits};

/// Everything `mercato serve` needs; filled from flags and environment.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where the store and the server's secrets live.
    pub data_dir: PathBuf,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// When acknowledged writes reach the disk.
    pub durability: Durability,
    /// Skip loading the sample catalog into an empty store.
    pub empty: bool,
    /// A catalog file to load instead of the shipped sample.
    pub catalog: Option<PathBuf>,
    /// The store currency (ISO 4217).
    pub currency: String,
    /// The admin token; generated and stored in the data directory if `None`.
    pub admin_token: Option<String>,
    /// Request limits.
    pub limits: Limits,
    /// The writer's queue length.
    pub queue_max: usize,
    /// With immediate durability, how often the store itself is synced so
    /// the write-ahead log can start afresh.
    pub checkpoint_interval: Duration,
    /// How long a cart may go unchanged before it is removed.
    pub cart_ttl: Duration,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The engine could not open the store.
    #[error("cannot open the store: {0}")]
    Engine(#[from] mercato_engine::Error),
    /// A file or socket error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The catalog could not be loaded.
    #[error("{0}")]
    Catalog(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let context = context.into();
    move |source| ServeError::Io { context, source }
}

/// Runs the server until a shutdown signal.
pub async fn serve(config: ServerConfig) -> Result<(), ServeError> {
    let metrics = Arc::new(Metrics::new());
    let mut engine_config = EngineConfig::new(&config.data_dir);
    engine_config.durability = config.durability;
    engine_config.currency = config.currency.clone();
    engine_config.queue_max = config.queue_max;
    engine_config.checkpoint_interval = config.checkpoint_interval;
    engine_config.cart_ttl = config.cart_ttl;
    engine_config.batch_max = engine_config.batch_max.min(config.queue_max);
    engine_config.observer = Some(metrics.clone());
    let engine = tokio::task::spawn_blocking(move || Engine::open(engine_config))
        .await
        .expect("opening the engine does not panic")?;

    if engine.is_empty()? && !config.empty {
        let catalog = match &config.catalog {
            Some(path) => std::fs::read_to_string(path)
                .map_err(io(format!("cannot read {}", path.display())))?,
            None => sample::SAMPLE_CATALOG.to_owned(),
        };
        let count = sample::load_catalog(&engine, &catalog)
            .await
            .map_err(ServeError::Catalog)?;
        tracing::info!(count, "loaded the sample catalog");
        println!("loaded {count} sample products");
    }

    let (auth, token_source) = Auth::load_or_create(&config.data_dir, config.admin_token.clone())
        .map_err(io("cannot set up the admin token"))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(io(format!("cannot listen on {}", config.listen)))?;
    let address = listener
        .local_addr()
        .map_err(io("cannot read the listening address"))?;
    let state = AppState::new(engine.clone(), auth, metrics, config.limits);
    let app = crate::api::router(state.clone());

    println!("mercato listening on http://{address}");
    println!("data directory: {}", config.data_dir.display());
    match token_source {
        AdminTokenSource::Given => println!("admin token: from MERCATO_ADMIN_TOKEN"),
        AdminTokenSource::File(path) => println!("admin token: in {}", path.display()),
    }
    println!("API reference: http://{address}/docs");

    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal(state))
    .await;
    // Every request has been answered; now let the writer finish and sync.
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .expect("the writer stops");
    served.map_err(io("the server failed"))?;
    println!("mercato stopped");
    Ok(())
}

async fn shutdown_signal(state: AppState) {
    let interrupt = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
    state.set_ready(false);
}
