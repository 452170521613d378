//! Mercato's HTTP server: the v1 contract over [`mercato_engine`].
//!
//! [`router`] builds the whole API over an [`AppState`], so another axum
//! application can mount it; [`serve`] is what `mercato serve` runs.
//!
//! ```no_run
//! use std::sync::Arc;
//! use mercato_engine::{
//!     Checkout, CheckoutConfig, Engine, EngineConfig, SimulatedGateway, SimulatedGatewayConfig,
//!     WebhookSecret,
//! };
//! use mercato_server::{AppState, Auth, HttpWebhookSink, Limits, Metrics, router};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = Arc::new(Metrics::new());
//! let mut config = EngineConfig::new("./data/db");
//! config.observer = Some(metrics.clone());
//! let engine = Engine::open(config)?;
//! let auth = Auth::new("an-admin-token-of-16+-chars".into(), b"a secret for customer tokens".to_vec());
//! // The payment gateway's webhooks come back to the mounted webhook route.
//! let sink = HttpWebhookSink::new("http://127.0.0.1:8080/shop/api/v1/payments/webhook");
//! let secret = WebhookSecret::new("a secret shared with the gateway");
//! let gateway = SimulatedGateway::new(SimulatedGatewayConfig::new(secret), Arc::new(sink))?;
//! let checkout = Checkout::start(engine.clone(), Arc::new(gateway), CheckoutConfig::default())?;
//! let shop = router(AppState::new(engine, auth, metrics, Limits::default(), checkout));
//! let app = axum::Router::new().nest_service("/shop", shop);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```

mod api;
mod auth;
mod catalog_file;
mod extract;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
mod guard;
mod idempotency;
mod listener;
mod metrics;
mod money;
mod notify;
mod problem;
mod rate_limit;
mod reindex;
mod replication;
mod serve;
mod state;
mod ui;

pub use api::{openapi, router};
pub use auth::{ADMIN_TOKEN_FILE, AdminTokenSource, Auth, Principal};
pub use catalog_file::{
    BadRow, CATALOG_ROW_BYTES_MAX, CatalogFormat, CatalogSource, ExportError,
    IMPORT_BAD_ROWS_LISTED_MAX, IMPORT_BATCH_ROWS_DEFAULT, IMPORT_ROWS_MAX, ImportError,
    ImportOptions, ImportReport, OnError, Progress, SAMPLE_CATALOG, export_catalog,
    export_catalog_to_path, import_catalog,
};
pub use gateway::{
    HttpWebhookSink, WEBHOOK_PATH, WEBHOOK_SECRET_FILE, WebhookSecretSource,
    load_or_create_webhook_secret,
};
pub use idempotency::{
    IDEMPOTENCY_TTL, IDEMPOTENCY_TTL_MAX, IDEMPOTENCY_TTL_MIN, IDEMPOTENT_REPLAYED,
};
pub use listener::ConnectionLimits;
pub use metrics::Metrics;
pub use notify::{
    EmailNotifier, NOTIFICATION_ID_HEADER, NOTIFICATION_SECRET_FILE, NotificationSettings,
    WebhookNotifier,
};
pub use problem::ApiError;
pub use reindex::{ReindexArgs, reindex};
pub use replication::{
    MIN_SEQ_HEADER, MIN_SEQ_WAIT_MAX, Replication, ReplicationReport, ReplicationSettings,
    SEQ_HEADER,
};
pub use serve::{ServeError, ServerConfig, serve};
pub use state::{AppState, Limits, SharedState};
