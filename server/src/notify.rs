//! The notification channels `mercato serve` delivers through, beside the
//! built-in `store`: [`WebhookNotifier`] (a signed HTTP POST) and
//! [`EmailNotifier`] (SMTP, rustls). Both are [`Notifier`]s, so an embedder
//! starts [`Notifications`](mercato_engine::Notifications) with them
//! exactly as the server does.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mercato_engine::{
    Clock, Notification, NotificationChannel, Notifier, NotifyError, NotifyFuture, Order,
    SIGNATURE_HEADER, SystemClock, WebhookSecret,
};

use crate::api::notifications::NotificationBody;

/// The file in the data directory holding the generated secret that
/// notification webhooks are signed with.
pub const NOTIFICATION_SECRET_FILE: &str = "notification_webhook_secret";
/// The header naming the notification, for receivers to deduplicate by
/// (a crash between a send and its record sends it once more).
pub const NOTIFICATION_ID_HEADER: &str = "Mercato-Notification-Id";
/// How much of a refusing answer's body is kept on the attempt.
const REFUSAL_EXCERPT_CHARACTERS_MAX: usize = 256;

/// POSTs each notification as JSON (the API's notification object) to one
/// URL, signed like the payment webhook (`Mercato-Signature: t=..,v1=..`,
/// HMAC-SHA256 over `t.body`) with its own secret. A 2xx answer delivers
/// it; anything else, or no answer within the timeout, is retried.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    client: reqwest::Client,
    url: String,
    secret: WebhookSecret,
}

impl WebhookNotifier {
    /// A notifier posting to `url` (http or https), each request bounded
    /// by `timeout`.
    pub fn new(
        url: impl Into<String>,
        secret: WebhookSecret,
        timeout: Duration,
    ) -> Result<WebhookNotifier, String> {
        let url = url.into();
        let parsed = reqwest::Url::parse(&url)
            .map_err(|error| format!("notification webhook URL {url:?}: {error}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "notification webhook URL {url:?}: must be http:// or https:// with a host"
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
        Ok(WebhookNotifier {
            client,
            url,
            secret,
        })
    }
}

impl Notifier for WebhookNotifier {
    fn channel(&self) -> NotificationChannel {
        NotificationChannel::Webhook
    }

    fn recipient(&self, _order: &Order) -> Option<String> {
        Some(self.url.clone())
    }

    fn send<'a>(&'a self, notification: &'a Notification) -> NotifyFuture<'a> {
        Box::pin(async move {
            let body = serde_json::to_vec(&NotificationBody::from(notification))
                .map_err(|error| NotifyError::permanent(format!("cannot encode: {error}")))?;
            let signature = self.secret.sign(&body, SystemClock.now());
            let answer = self
                .client
                .post(&self.url)
                .header(SIGNATURE_HEADER, signature)
                .header(NOTIFICATION_ID_HEADER, notification.id.to_string())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .map_err(|error| NotifyError::transient(format!("POST {}: {error}", self.url)))?;
            let status = answer.status();
            if status.is_success() {
                return Ok(());
            }
            let text = answer.text().await.unwrap_or_default();
            let excerpt: String = text.chars().take(REFUSAL_EXCERPT_CHARACTERS_MAX).collect();
            Err(NotifyError::transient(format!(
                "POST {} answered {status}: {excerpt}",
                self.url
            )))
        })
    }
}

/// Sends each notification as an email to the order's address through an
/// SMTP server: a plain-text part and, when rendered, an HTML alternative.
/// An order without an email makes no attempt (the notification is failed
/// with that reason); a 5xx from the server fails it at once; anything else
/// is retried.
#[derive(Clone)]
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl EmailNotifier {
    /// A notifier sending through the SMTP server of `url`:
    /// `smtp://[user:password@]host[:port]` (plain, port 25 by default;
    /// add `?tls=required` for STARTTLS) or `smtps://...` (TLS, port 465),
    /// from `from` (`Shop <orders@example.com>`), each send bounded by
    /// `timeout`.
    pub fn new(url: &str, from: &str, timeout: Duration) -> Result<EmailNotifier, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|error| format!("sender address {from:?}: {error}"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|error| format!("SMTP URL: {error}"))?
            .timeout(Some(timeout))
            .build();
        Ok(EmailNotifier { transport, from })
    }

    fn message(&self, notification: &Notification) -> Result<Message, NotifyError> {
        let recipient = notification
            .recipient
            .as_deref()
            .ok_or_else(|| NotifyError::permanent("the order has no email address"))?;
        let to: Mailbox = recipient
            .parse()
            .map_err(|error| NotifyError::permanent(format!("recipient {recipient:?}: {error}")))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(notification.subject.clone());
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(notification.body.clone());
        let message = match &notification.html_body {
            Some(html) => builder.multipart(
                MultiPart::alternative().singlepart(text).singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html.clone()),
                ),
            ),
            None => builder.singlepart(text),
        };
        message.map_err(|error| NotifyError::permanent(format!("cannot build the email: {error}")))
    }
}

impl Notifier for EmailNotifier {
    fn channel(&self) -> NotificationChannel {
        NotificationChannel::Email
    }

    fn recipient(&self, order: &Order) -> Option<String> {
        order.email.clone().filter(|email| !email.trim().is_empty())
    }

    fn send<'a>(&'a self, notification: &'a Notification) -> NotifyFuture<'a> {
        Box::pin(async move {
            let message = self.message(notification)?;
            match self.transport.send(message).await {
                Ok(_) => Ok(()),
                Err(error) if error.is_permanent() => {
                    Err(NotifyError::permanent(format!("SMTP: {error}")))
                }
                Err(error) => Err(NotifyError::transient(format!("SMTP: {error}"))),
            }
        })
    }
}

/// How `mercato serve` notifies customers; filled from flags.
#[derive(Clone, Debug)]
pub struct NotificationSettings {
    /// The channels in use, each notification made once per channel.
    /// Default: `store` only.
    pub channels: Vec<NotificationChannel>,
    /// Where the webhook channel posts (required with it).
    pub webhook_url: Option<String>,
    /// The webhook channel's signing secret; generated and stored in the
    /// data directory ([`NOTIFICATION_SECRET_FILE`]) when `None`.
    pub webhook_secret: Option<String>,
    /// The SMTP server of the email channel (required with it), e.g.
    /// `smtp://127.0.0.1:2525` or `smtps://user:pass@mail.example.com`.
    pub smtp_url: Option<String>,
    /// The sender of emails.
    pub smtp_from: String,
    /// A directory of templates replacing the built-in ones.
    pub templates: Option<std::path::PathBuf>,
    /// The shop's name, as the templates show it.
    pub shop_name: String,
    /// Attempts before a notification is `failed`.
    pub attempts_max: u32,
    /// The wait before the second attempt (it doubles, with jitter, up to
    /// 5 minutes).
    pub backoff_initial: Duration,
    /// The longest one send may take.
    pub send_timeout: Duration,
}

impl Default for NotificationSettings {
    fn default() -> NotificationSettings {
        NotificationSettings {
            channels: vec![NotificationChannel::Store],
            webhook_url: None,
            webhook_secret: None,
            smtp_url: None,
            smtp_from: "Mercato <orders@localhost>".to_owned(),
            templates: None,
            shop_name: "Mercato".to_owned(),
            attempts_max: 8,
            backoff_initial: Duration::from_secs(1),
            send_timeout: Duration::from_secs(10),
        }
    }
}

/// What [`NotificationSettings::runner_config`] made, for the startup
/// message.
pub(crate) struct PreparedNotifications {
    pub(crate) config: mercato_engine::NotificationsConfig,
    pub(crate) secret_source: Option<crate::gateway::WebhookSecretSource>,
}

impl NotificationSettings {
    /// The runner's configuration: templates loaded and checked, notifiers
    /// built. Every mistake (a template that does not parse, a missing URL)
    /// is an error here, at start.
    pub(crate) fn runner_config(
        &self,
        data_dir: &std::path::Path,
        observer: std::sync::Arc<dyn mercato_engine::NotificationObserver>,
    ) -> Result<PreparedNotifications, String> {
        let mut config = mercato_engine::NotificationsConfig::default();
        if let Some(dir) = &self.templates {
            config.templates =
                mercato_engine::Templates::from_dir(dir).map_err(|error| error.to_string())?;
        }
        config.store_name = self.shop_name.clone();
        config.attempts_max = self.attempts_max;
        config.backoff_initial = self.backoff_initial.min(config.backoff_max);
        config.send_timeout = self.send_timeout;
        config.store = self.channels.contains(&NotificationChannel::Store);
        config.observer = Some(observer);
        let mut secret_source = None;
        if self.channels.contains(&NotificationChannel::Webhook) {
            let url = self
                .webhook_url
                .as_deref()
                .ok_or("the webhook notification channel needs --notify-webhook-url".to_owned())?;
            let (secret, source) = crate::gateway::load_or_create_signing_secret(
                data_dir,
                NOTIFICATION_SECRET_FILE,
                self.webhook_secret.clone(),
                "notification webhook secret",
            )
            .map_err(|error| format!("cannot set up the notification webhook secret: {error}"))?;
            secret_source = Some(source);
            config
                .notifiers
                .push(std::sync::Arc::new(WebhookNotifier::new(
                    url,
                    secret,
                    self.send_timeout,
                )?));
        }
        if self.channels.contains(&NotificationChannel::Email) {
            let url = self
                .smtp_url
                .as_deref()
                .ok_or("the email notification channel needs --smtp-url".to_owned())?;
            config
                .notifiers
                .push(std::sync::Arc::new(EmailNotifier::new(
                    url,
                    &self.smtp_from,
                    self.send_timeout,
                )?));
        }
        Ok(PreparedNotifications {
            config,
            secret_source,
        })
    }
}
