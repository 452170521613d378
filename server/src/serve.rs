//! `mercato serve`: open the engine, load the sample catalog into an empty
//! store, start the payment gateway and the saga runner, open the search
//! index (in the background: `/readyz` waits for it), serve until SIGINT
//! or SIGTERM, then shut down in order: stop accepting, finish requests in
//! flight, stop the saga runner and the search indexer, let the writer
//! commit, exit.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mercato_engine::{
    Checkout, CheckoutConfig, Durability, Engine, EngineConfig, IMPORT_PRODUCTS_MAX, Notifications,
    PaymentGateway, SimulatedGateway, SimulatedGatewayConfig,
};
use mercato_index::{INDEX_DIRECTORY_NAME, Indexer, SearchIndex};
use tokio::net::TcpListener;

use crate::auth::{AdminTokenSource, Auth};
use crate::catalog_file::{
    CatalogFormat, CatalogSource, ImportOptions, ImportReport, Progress, SAMPLE_CATALOG,
    import_catalog,
};
use crate::gateway::{
    HttpWebhookSink, WEBHOOK_PATH, WebhookSecretSource, load_or_create_webhook_secret,
};
use crate::metrics::Metrics;
use crate::notify::NotificationSettings;
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
    /// Whether the storefront's demo sign-in (a name, no password) mints
    /// customer tokens.
    pub demo_sign_in: bool,
    /// A catalog file (JSON Lines or CSV, by its extension; JSON Lines when
    /// it has neither) to load instead of the shipped sample.
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
    /// The secret payment webhooks are signed with; generated and stored in
    /// the data directory if `None`.
    pub webhook_secret: Option<String>,
    /// How long the simulated gateway takes to answer each call.
    pub gateway_latency: Duration,
    /// How long after accepting a `tok_delayed` charge the simulated
    /// gateway sends its webhook.
    pub gateway_webhook_delay: Duration,
    /// How customers are notified.
    pub notifications: NotificationSettings,
    /// How connections are bounded.
    pub connections: crate::listener::ConnectionLimits,
    /// How long old events are kept once every consumer has passed them
    /// (`None`: for ever).
    pub event_retention: Option<Duration>,
    /// How long finished reservations are kept (`None`: for ever).
    pub reservation_retention: Option<Duration>,
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
    /// The payment gateway or the saga runner could not start.
    #[error("cannot start payments: {0}")]
    Payments(mercato_engine::Error),
    /// The notification settings or templates are wrong, or the runner
    /// could not start.
    #[error("cannot start notifications: {0}")]
    Notifications(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let context = context.into();
    move |source| ServeError::Io { context, source }
}

/// Runs the server until a shutdown signal.
pub async fn serve(config: ServerConfig) -> Result<(), ServeError> {
    let metrics = Arc::new(Metrics::new());
    // Templates and channels first: a broken template is refused before
    // anything is opened or loaded.
    let prepared = config
        .notifications
        .runner_config(&config.data_dir, metrics.clone())
        .map_err(ServeError::Notifications)?;
    let mut engine_config = EngineConfig::new(&config.data_dir);
    engine_config.durability = config.durability;
    engine_config.currency = config.currency.clone();
    engine_config.queue_max = config.queue_max;
    engine_config.checkpoint_interval = config.checkpoint_interval;
    engine_config.cart_ttl = config.cart_ttl;
    engine_config.event_retention = config.event_retention;
    engine_config.reservation_retention = config.reservation_retention;
    engine_config.batch_max = engine_config.batch_max.min(config.queue_max);
    engine_config.observer = Some(metrics.clone());
    let engine = tokio::task::spawn_blocking(move || Engine::open(engine_config))
        .await
        .expect("opening the engine does not panic")?;

    if engine.is_empty()? && !config.empty {
        let report = load_catalog(&engine, config.catalog.clone()).await?;
        tracing::info!(count = report.imported(), "loaded the catalog");
        match &config.catalog {
            Some(path) => println!(
                "loaded {} products from {}",
                report.imported(),
                path.display()
            ),
            None => println!("loaded {} sample products", report.imported()),
        }
    }

    let (auth, token_source) = Auth::load_or_create(&config.data_dir, config.admin_token.clone())
        .map_err(io("cannot set up the admin token"))?;
    let (webhook_secret, secret_source) =
        load_or_create_webhook_secret(&config.data_dir, config.webhook_secret.clone())
            .map_err(io("cannot set up the webhook secret"))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(io(format!("cannot listen on {}", config.listen)))?;
    let address = listener
        .local_addr()
        .map_err(io("cannot read the listening address"))?;

    // The simulated gateway calls this server's webhook route over HTTP, as
    // an outside provider would; its webhooks wait (retried) until axum
    // accepts connections below.
    let sink = HttpWebhookSink::new(format!("http://{}{WEBHOOK_PATH}", reachable(address)));
    let mut gateway_config = SimulatedGatewayConfig::new(webhook_secret);
    gateway_config.latency = config.gateway_latency;
    gateway_config.webhook_delay = config.gateway_webhook_delay;
    let gateway: Arc<dyn PaymentGateway> = Arc::new(
        SimulatedGateway::new(gateway_config, Arc::new(sink)).map_err(ServeError::Payments)?,
    );
    let checkout = Checkout::start(engine.clone(), gateway, CheckoutConfig::default())
        .map_err(ServeError::Payments)?;
    let notifications = Notifications::start(engine.clone(), prepared.config)
        .map_err(|error| ServeError::Notifications(error.to_string()))?;
    let state = AppState::new(
        engine.clone(),
        auth,
        metrics,
        config.limits,
        checkout.clone(),
    )
    .with_notifications(notifications.clone());
    state.set_demo_sign_in(config.demo_sign_in);
    let app = crate::api::router(state.clone());
    state.require_search();
    let search = tokio::spawn(open_search(
        state.clone(),
        config.data_dir.join(INDEX_DIRECTORY_NAME),
    ));

    println!("mercato listening on http://{address}");
    println!("data directory: {}", config.data_dir.display());
    match token_source {
        AdminTokenSource::Given => println!("admin token: from MERCATO_ADMIN_TOKEN"),
        AdminTokenSource::File(path) => println!("admin token: in {}", path.display()),
    }
    match secret_source {
        WebhookSecretSource::Given => {
            println!("webhook secret: from --webhook-secret or MERCATO_WEBHOOK_SECRET")
        }
        WebhookSecretSource::File(path) => println!("webhook secret: in {}", path.display()),
    }
    let channels: Vec<&str> = notifications
        .channels()
        .iter()
        .map(|channel| channel.as_str())
        .collect();
    println!("notifications: {}", channels.join(", "));
    if let Some(source) = &prepared.secret_source {
        match source {
            WebhookSecretSource::Given => println!(
                "notification webhook secret: from --notify-webhook-secret or MERCATO_NOTIFY_WEBHOOK_SECRET"
            ),
            WebhookSecretSource::File(path) => {
                println!("notification webhook secret: in {}", path.display())
            }
        }
    }
    println!("storefront: http://{address}/");
    println!("operator's console: http://{address}/admin (sign in with the admin token)");
    if !config.demo_sign_in {
        println!("demo sign-in: off");
    }
    println!("API reference: http://{address}/docs");

    crate::listener::serve(listener, app, config.connections, shutdown_signal(state)).await;
    // Every request has been answered; the saga runner finishes the batch
    // in hand (a restart resumes whatever it leaves), then the writer
    // finishes and syncs.
    checkout.stop().await;
    notifications.stop().await;
    // The indexer commits its position; the index is caught up at the next
    // start from there. An index still being rebuilt is waited for.
    if let Ok(Some(indexer)) = search.await {
        let stopped = tokio::task::spawn_blocking(move || indexer.stop()).await;
        if let Ok(Err(error)) = stopped {
            tracing::error!(%error, "the search indexer stopped with an error");
        }
    }
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .expect("the writer stops");
    println!("mercato stopped");
    Ok(())
}

/// Opens the search index (rebuilding it from the store when it is missing,
/// damaged or of another version), starts its indexer and attaches it to
/// the router. A failure is logged and leaves the server unready: orders
/// and the rest of the API keep working.
async fn open_search(state: crate::state::AppState, directory: PathBuf) -> Option<Indexer> {
    let engine = state.engine.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let index = SearchIndex::open(&directory, &engine)?;
        let indexer = index.start_indexer()?;
        Ok::<_, mercato_index::IndexError>((index, indexer))
    })
    .await;
    match opened {
        Ok(Ok((index, indexer))) => {
            if let Some(reason) = index.rebuilt_because() {
                tracing::info!(%reason, documents = index.document_count(), "rebuilt the search index");
            }
            if state.attach_search(index).is_err() {
                tracing::error!("a search index was already attached");
            }
            Some(indexer)
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "cannot open the search index; search stays unavailable");
            None
        }
        Err(error) => {
            tracing::error!(%error, "opening the search index panicked");
            None
        }
    }
}

/// Loads `catalog` (the shipped sample when `None`) into an empty store the
/// way `mercato import` does, any bad row refusing the whole file. Up to
/// `IMPORT_PRODUCTS_MAX` rows (the sample among them) are one transaction;
/// a larger file is loaded in batches of that many, and a crash between
/// them leaves a part, which `mercato import` of the same file completes.
async fn load_catalog(
    engine: &Engine,
    catalog: Option<PathBuf>,
) -> Result<ImportReport, ServeError> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || {
        let (source, format) = match &catalog {
            Some(path) => (
                CatalogSource::Path(path),
                // `--catalog` took JSON Lines before it took CSV.
                CatalogFormat::from_path(path).unwrap_or(CatalogFormat::Jsonl),
            ),
            None => (
                CatalogSource::Bytes(SAMPLE_CATALOG.as_bytes()),
                CatalogFormat::Jsonl,
            ),
        };
        let mut options = ImportOptions::new(format);
        options.batch_rows = IMPORT_PRODUCTS_MAX;
        import_catalog(&engine, source, &options, &Progress::hidden())
    })
    .await
    .expect("loading the catalog does not panic")
    .map_err(|error| ServeError::Catalog(format!("the catalog was not loaded: {error}")))
}

/// An address this process can connect to for `address` it listens on: the
/// loopback one when it listens on every interface.
fn reachable(address: SocketAddr) -> SocketAddr {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, address.port())
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
    state.close_streams();
}
