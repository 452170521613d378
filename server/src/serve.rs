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
    PaymentGateway, ReplicationRole, SimulatedGateway, SimulatedGatewayConfig,
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
use crate::replication::Replication;
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
    /// Whether to open (and keep up to date) the search index. Without it
    /// the search routes answer 503 `search_unavailable`: for a primary
    /// whose followers serve search, or to measure the indexer's cost.
    pub search: bool,
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
    /// Publishing the log to NATS JetStream (a primary), or following a
    /// primary's; `None`: no replication.
    pub replication: Option<crate::replication::ReplicationSettings>,
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
    let follower = config
        .replication
        .as_ref()
        .is_some_and(|replication| replication.follow);
    engine_config.replication_sync = config.replication.as_ref().is_some_and(|replication| {
        replication.nats.mode == mercato_engine::nats::ReplicationMode::Sync
    });
    engine_config.replication = match &config.replication {
        None => ReplicationRole::Standalone,
        Some(_) if follower => ReplicationRole::Follower,
        Some(_) => ReplicationRole::Primary,
    };
    let engine = tokio::task::spawn_blocking(move || Engine::open(engine_config))
        .await
        .expect("opening the engine does not panic")?;

    // A primary publishes from the start (with sync replication even the
    // catalog's batches wait for JetStream), and takes writes once its
    // publisher has checked that the replicated log is still its own.
    let publishing = match &config.replication {
        Some(settings) if !settings.follow => {
            let replication =
                Arc::new(Replication::primary(&engine, settings).map_err(ServeError::Engine)?);
            wait_for_writes(&engine).await;
            Some(replication)
        }
        _ => None,
    };
    // A follower's catalog is the primary's; a deposed primary loads nothing.
    if !follower && !engine.is_read_only() && engine.is_empty()? && !config.empty {
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
    // A follower runs neither the saga nor the notification runner (its
    // primary's do, and their effects arrive as records); they start when
    // it is promoted.
    let checkout = Checkout::standby(engine.clone(), gateway, CheckoutConfig::default())
        .map_err(ServeError::Payments)?;
    let channels: Vec<&str> = config
        .notifications
        .channels
        .iter()
        .map(|channel| channel.as_str())
        .collect();
    let channels = channels.join(", ");
    let mut state = AppState::new(
        engine.clone(),
        auth,
        metrics,
        config.limits,
        checkout.clone(),
    );
    // The runner, once started: at once on a primary, at the promotion on
    // a follower; the retry route wakes it and the shutdown stops it.
    let notifications = state.notifications_slot();
    let replication = match &config.replication {
        None => None,
        Some(settings) if settings.follow => {
            let (checkout, runner_engine, notifications) =
                (checkout.clone(), engine.clone(), notifications.clone());
            let runner_config = prepared.config.clone();
            let on_promote = Box::new(move || {
                if let Err(error) = checkout.activate() {
                    tracing::error!(%error, "the saga runner did not start after the promotion");
                }
                match Notifications::start(runner_engine, runner_config) {
                    Ok(runner) => {
                        if let Err(runner) = notifications.set(runner) {
                            tracing::error!("a notification runner was already running");
                            tokio::spawn(async move { runner.stop().await });
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "the notification runner did not start after the promotion")
                    }
                }
            });
            Some(Arc::new(
                Replication::follower(&engine, settings, on_promote)
                    .await
                    .map_err(ServeError::Engine)?,
            ))
        }
        Some(_) => publishing,
    };
    if !follower {
        checkout.activate().map_err(ServeError::Payments)?;
        let runner = Notifications::start(engine.clone(), prepared.config)
            .map_err(|error| ServeError::Notifications(error.to_string()))?;
        let first = notifications.set(runner).is_ok();
        assert!(first, "only a primary starts its runner here, once");
    }
    state.set_demo_sign_in(config.demo_sign_in);
    if let Some(replication) = &replication {
        state = state.with_replication(replication.clone());
    }
    let app = crate::api::router(state.clone());
    let search = config.search.then(|| {
        state.require_search();
        tokio::spawn(open_search(
            state.clone(),
            config.data_dir.join(INDEX_DIRECTORY_NAME),
        ))
    });

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
    println!("notifications: {channels}");
    if let Some(settings) = &config.replication {
        if settings.follow {
            println!(
                "following store {:?} at {} (reads only until promoted)",
                settings.nats.store, settings.nats.url
            );
        } else {
            println!(
                "replicating store {:?} to {} ({:?})",
                settings.nats.store, settings.nats.url, settings.nats.mode
            );
        }
    }
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
    if !config.search {
        println!("search: off (--no-search): the search routes answer 503");
    }
    println!("API reference: http://{address}/docs");

    crate::listener::serve(listener, app, config.connections, shutdown_signal(state)).await;
    // Every request has been answered; the saga runner finishes the batch
    // in hand (a restart resumes whatever it leaves), then the writer
    // finishes and syncs.
    checkout.stop().await;
    if let Some(runner) = notifications.get() {
        runner.stop().await;
    }
    // Publishing stops after the round in hand; records not yet shipped
    // are kept in the store and shipped at the next start.
    if let Some(replication) = &replication {
        replication.stop().await;
    }
    // The indexer commits its position; the index is caught up at the next
    // start from there. An index still being rebuilt is waited for.
    let indexer = match search {
        Some(search) => search.await.ok().flatten(),
        None => None,
    };
    if let Some(indexer) = indexer {
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

/// Waits until a replicating primary's publisher lets writes through (it
/// has checked the replicated log), or finds it was deposed.
async fn wait_for_writes(engine: &Engine) {
    let started = std::time::Instant::now();
    let mut told = false;
    while engine.is_read_only() && engine.fenced().is_none() {
        if !told && started.elapsed() > Duration::from_secs(2) {
            println!("waiting for NATS JetStream to confirm this server is the primary");
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(reason) = engine.fenced() {
        println!("this primary was deposed and takes no writes: {reason}");
    }
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
