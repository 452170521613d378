//! The payment provider `mercato serve` runs: the secret its webhooks are
//! signed with, and [`HttpWebhookSink`], which delivers the built-in
//! simulated gateway's webhooks as an HTTP POST to the server's own
//! webhook route, exactly as an outside provider would call it (signature
//! checked, event applied once).

use std::path::{Path, PathBuf};
use std::time::Duration;

use mercato_engine::{GatewayFuture, SIGNATURE_HEADER, WebhookSecret, WebhookSink};

use crate::auth::read_or_create_secret;

/// The file in the data directory holding the generated webhook secret.
pub const WEBHOOK_SECRET_FILE: &str = "webhook_secret";
/// The path of the webhook route, under the server's origin.
pub const WEBHOOK_PATH: &str = "/api/v1/payments/webhook";
/// How long one delivery may take; the gateway retries a failed one.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a refusing answer's body is kept for the log.
const REFUSAL_EXCERPT_CHARACTERS_MAX: usize = 512;
/// Secrets shorter than this are accepted with a warning.
const WEBHOOK_SECRET_LENGTH_MIN: usize = 16;

/// Where the webhook secret came from, for the startup message.
#[derive(Debug, Clone)]
pub enum WebhookSecretSource {
    /// From `--webhook-secret` or `MERCATO_WEBHOOK_SECRET`.
    Given,
    /// Generated on first start and stored in this file.
    File(PathBuf),
}

/// The webhook secret: `given`, else the one stored in
/// `data_dir/webhook_secret` (generated, mode 0600, on first start).
pub fn load_or_create_webhook_secret(
    data_dir: &Path,
    given: Option<String>,
) -> std::io::Result<(WebhookSecret, WebhookSecretSource)> {
    load_or_create_signing_secret(data_dir, WEBHOOK_SECRET_FILE, given, "webhook secret")
}

/// A signing secret: `given`, else the one stored in `data_dir/file`
/// (generated, mode 0600, on first start). `what` names it in errors.
pub(crate) fn load_or_create_signing_secret(
    data_dir: &Path,
    file: &str,
    given: Option<String>,
    what: &str,
) -> std::io::Result<(WebhookSecret, WebhookSecretSource)> {
    let (secret, source) = match given {
        Some(secret) => (secret, WebhookSecretSource::Given),
        None => {
            std::fs::create_dir_all(data_dir)?;
            let path = data_dir.join(file);
            let secret = read_or_create_secret(&path)?.trim().to_owned();
            (secret, WebhookSecretSource::File(path))
        }
    };
    if secret.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("the {what} must not be empty"),
        ));
    }
    if secret.len() < WEBHOOK_SECRET_LENGTH_MIN {
        tracing::warn!(
            "the {what} is shorter than {WEBHOOK_SECRET_LENGTH_MIN} characters; webhooks signed with it are easier to forge"
        );
    }
    Ok((WebhookSecret::new(secret), source))
}

/// Delivers webhooks by POSTing them to a URL (the server's own
/// [`WEBHOOK_PATH`]), with the `Mercato-Signature` header the gateway made.
/// A delivery is done when the receiver answers 2xx; anything else is
/// reported back to the gateway, which tries again later.
#[derive(Debug, Clone)]
pub struct HttpWebhookSink {
    client: reqwest::Client,
    url: String,
}

impl HttpWebhookSink {
    /// A sink posting to `url`, e.g.
    /// `http://127.0.0.1:8080/api/v1/payments/webhook`.
    pub fn new(url: impl Into<String>) -> HttpWebhookSink {
        let client = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            // The receiver is this server: never through a proxy.
            .no_proxy()
            .build()
            .expect("an HTTP client without TLS or proxies builds");
        HttpWebhookSink {
            client,
            url: url.into(),
        }
    }

    /// The URL deliveries go to.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl WebhookSink for HttpWebhookSink {
    fn deliver(
        &self,
        signature_header: String,
        body: Vec<u8>,
    ) -> GatewayFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let answer = self
                .client
                .post(&self.url)
                .header(SIGNATURE_HEADER, signature_header)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .map_err(|error| format!("POST {}: {error}", self.url))?;
            let status = answer.status();
            if status.is_success() {
                return Ok(());
            }
            let text = answer.text().await.unwrap_or_default();
            let excerpt: String = text.chars().take(REFUSAL_EXCERPT_CHARACTERS_MAX).collect();
            Err(format!("POST {} answered {status}: {excerpt}", self.url))
        })
    }
}
