//! [`Templates`]: the subject, text and HTML of each kind of notification,
//! rendered with minijinja.
//!
//! Each kind has three templates, `KIND.subject`, `KIND.txt` and
//! `KIND.html` (HTML is escaped automatically), and they may include the
//! shared `_lines.txt`, `_lines.html` and extend `_layout.html`. Good
//! defaults are compiled in; an operator replaces any of them with a file
//! of the same name in a directory ([`Templates::from_dir`]). Every
//! template is parsed **and rendered against a sample order** when loaded,
//! with undefined variables an error, so a broken template is refused at
//! start, naming its file and line, never at send time.
//!
//! What a template sees: `store_name`, `kind`, `reason` (why an order
//! failed or was cancelled, or none), `order` (`id`, `user_id`, `status`,
//! `items` (each `product_id`, `name`, `quantity`, `unit_price`,
//! `line_total`), `total_amount`, `currency`, `email`, `shipping_address`,
//! `carrier`, `tracking_number`, `failure_reason`, `created_at`) and
//! `payment` (`id`, `amount`, `status`; none before a payment exists).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::notifications::{
    NOTIFICATION_BODY_LENGTH_MAX, NOTIFICATION_SUBJECT_LENGTH_MAX, NotificationKind, cut,
};

/// The compiled-in templates, by file name.
const DEFAULTS: [(&str, &str); 18] = [
    ("_layout.html", include_str!("templates/_layout.html")),
    ("_lines.html", include_str!("templates/_lines.html")),
    ("_lines.txt", include_str!("templates/_lines.txt")),
    (
        "order_confirmation.subject",
        include_str!("templates/order_confirmation.subject"),
    ),
    (
        "order_confirmation.txt",
        include_str!("templates/order_confirmation.txt"),
    ),
    (
        "order_confirmation.html",
        include_str!("templates/order_confirmation.html"),
    ),
    (
        "payment_receipt.subject",
        include_str!("templates/payment_receipt.subject"),
    ),
    (
        "payment_receipt.txt",
        include_str!("templates/payment_receipt.txt"),
    ),
    (
        "payment_receipt.html",
        include_str!("templates/payment_receipt.html"),
    ),
    (
        "payment_failed.subject",
        include_str!("templates/payment_failed.subject"),
    ),
    (
        "payment_failed.txt",
        include_str!("templates/payment_failed.txt"),
    ),
    (
        "payment_failed.html",
        include_str!("templates/payment_failed.html"),
    ),
    (
        "shipping_update.subject",
        include_str!("templates/shipping_update.subject"),
    ),
    (
        "shipping_update.txt",
        include_str!("templates/shipping_update.txt"),
    ),
    (
        "shipping_update.html",
        include_str!("templates/shipping_update.html"),
    ),
    (
        "order_cancelled.subject",
        include_str!("templates/order_cancelled.subject"),
    ),
    (
        "order_cancelled.txt",
        include_str!("templates/order_cancelled.txt"),
    ),
    (
        "order_cancelled.html",
        include_str!("templates/order_cancelled.html"),
    ),
];

/// The largest template file read, in bytes.
const TEMPLATE_FILE_BYTES_MAX: u64 = 256 * 1_024;

/// Why templates could not be loaded. The message names the file and,
/// for a template that does not parse or render, the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    message: String,
}

impl TemplateError {
    fn new(message: impl Into<String>) -> TemplateError {
        TemplateError {
            message: message.into(),
        }
    }

    fn template(file: &Path, error: &minijinja::Error) -> TemplateError {
        let mut message = format!("template {}", file.display());
        if let Some(line) = error.line() {
            message.push_str(&format!(", line {line}"));
        }
        if let Some(name) = error.name()
            && Some(name) != file.file_name().and_then(|name| name.to_str())
        {
            message.push_str(&format!(" (in {name})"));
        }
        match (error.kind(), error.detail()) {
            (minijinja::ErrorKind::UndefinedError, _) => message.push_str(
                ": undefined value (a variable or attribute templates are not given; \
                 see the notification templates' documentation)",
            ),
            (kind, Some(detail)) => message.push_str(&format!(": {kind}: {detail}")),
            (kind, None) => message.push_str(&format!(": {kind}")),
        }
        TemplateError::new(message)
    }
}

/// The rendered parts of one notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) subject: String,
    pub(crate) body: String,
    pub(crate) html_body: String,
}

/// What the templates see (see the module's documentation).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TemplateContext {
    pub(crate) store_name: String,
    pub(crate) kind: &'static str,
    pub(crate) reason: Option<String>,
    pub(crate) order: OrderContext,
    pub(crate) payment: Option<PaymentContext>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct OrderContext {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) status: &'static str,
    pub(crate) items: Vec<LineContext>,
    pub(crate) total_amount: String,
    pub(crate) currency: String,
    pub(crate) email: Option<String>,
    pub(crate) shipping_address: Option<String>,
    pub(crate) carrier: Option<String>,
    pub(crate) tracking_number: Option<String>,
    pub(crate) failure_reason: Option<String>,
    pub(crate) created_at: String,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct LineContext {
    pub(crate) product_id: u64,
    pub(crate) name: String,
    pub(crate) quantity: u64,
    pub(crate) unit_price: String,
    pub(crate) line_total: String,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct PaymentContext {
    pub(crate) id: String,
    pub(crate) amount: String,
    pub(crate) status: &'static str,
}

/// Loaded, checked templates. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Templates {
    env: std::sync::Arc<Environment<'static>>,
}

impl Templates {
    /// The compiled-in templates.
    pub fn defaults() -> Templates {
        Templates::load(BTreeMap::new()).expect("the default templates are valid")
    }

    /// The compiled-in templates, with every file of `dir` named like one
    /// of them (`order_confirmation.txt`, `_layout.html`, ...) in its
    /// place. A file with another name is refused (a misspelt name would
    /// otherwise be ignored silently), as is one that does not parse or
    /// render against a sample order.
    pub fn from_dir(dir: &Path) -> Result<Templates, TemplateError> {
        let entries = std::fs::read_dir(dir).map_err(|error| {
            TemplateError::new(format!("templates directory {}: {error}", dir.display()))
        })?;
        let mut files = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|error| {
                TemplateError::new(format!("templates directory {}: {error}", dir.display()))
            })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || path.is_dir() {
                continue;
            }
            if !DEFAULTS.iter().any(|(known, _)| *known == name) {
                let known: Vec<&str> = DEFAULTS.iter().map(|(known, _)| *known).collect();
                return Err(TemplateError::new(format!(
                    "template {}: not a template name; expected one of {}",
                    path.display(),
                    known.join(", ")
                )));
            }
            let size = entry.metadata().map(|meta| meta.len()).unwrap_or(0);
            if size > TEMPLATE_FILE_BYTES_MAX {
                return Err(TemplateError::new(format!(
                    "template {}: {size} bytes, more than {TEMPLATE_FILE_BYTES_MAX}",
                    path.display()
                )));
            }
            let source = std::fs::read_to_string(&path).map_err(|error| {
                TemplateError::new(format!("template {}: {error}", path.display()))
            })?;
            files.insert(name, (path, source));
        }
        Templates::load(files)
    }

    fn load(overrides: BTreeMap<String, (PathBuf, String)>) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Bounded work per render, whatever an operator's template does.
        env.set_fuel(Some(1_000_000));
        env.set_recursion_limit(32);
        let mut paths = BTreeMap::new();
        for (name, source) in DEFAULTS {
            let (path, source) = match overrides.get(name) {
                Some((path, source)) => (path.clone(), source.clone()),
                None => (
                    PathBuf::from(format!("(built in) {name}")),
                    source.to_owned(),
                ),
            };
            env.add_template_owned(name.to_owned(), source)
                .map_err(|error| TemplateError::template(&path, &error))?;
            paths.insert(name, path);
        }
        let templates = Templates {
            env: std::sync::Arc::new(env),
        };
        // Render every kind against a sample with every field set and one
        // with every optional field empty, so that unknown variables, bad
        // filters and missing includes are found now.
        for (kind, full) in NotificationKind::ALL
            .into_iter()
            .flat_map(|kind| [(kind, true), (kind, false)])
        {
            let context = TemplateContext::sample(kind);
            let context = if full { context } else { context.sparse() };
            for part in ["subject", "txt", "html"] {
                let name = format!("{}.{part}", kind.as_str());
                templates.render_one(&name, &context).map_err(|error| {
                    let path = paths
                        .get(error.name().unwrap_or(name.as_str()))
                        .or_else(|| paths.get(name.as_str()))
                        .cloned()
                        .unwrap_or_else(|| PathBuf::from(&name));
                    TemplateError::template(&path, &error)
                })?;
            }
        }
        Ok(templates)
    }

    fn render_one(
        &self,
        name: &str,
        context: &TemplateContext,
    ) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(context)
    }

    /// Renders `kind`'s subject, text and HTML. Subjects are one line.
    #[cfg(test)]
    pub(crate) fn render(
        &self,
        kind: NotificationKind,
        context: &TemplateContext,
    ) -> Result<Rendered, minijinja::Error> {
        self.render_parts(kind, context, true)
    }

    /// Renders `kind`'s subject and text, and its HTML when `html` (only
    /// the email channel uses it; it is the costliest of the three).
    pub(crate) fn render_parts(
        &self,
        kind: NotificationKind,
        context: &TemplateContext,
        html: bool,
    ) -> Result<Rendered, minijinja::Error> {
        let subject = self.render_one(&format!("{}.subject", kind.as_str()), context)?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let body = self.render_one(&format!("{}.txt", kind.as_str()), context)?;
        let html_body = if html {
            self.render_one(&format!("{}.html", kind.as_str()), context)?
        } else {
            String::new()
        };
        Ok(Rendered {
            subject: cut(subject, NOTIFICATION_SUBJECT_LENGTH_MAX),
            body: cut(body, NOTIFICATION_BODY_LENGTH_MAX),
            html_body: cut(html_body, NOTIFICATION_BODY_LENGTH_MAX),
        })
    }
}

impl TemplateContext {
    /// A plausible order with every field set, for checking templates.
    fn sample(kind: NotificationKind) -> TemplateContext {
        TemplateContext {
            store_name: "Mercato".to_owned(),
            kind: kind.as_str(),
            reason: Some("card_declined".to_owned()),
            order: OrderContext {
                id: "0192f7a0-0000-7000-8000-000000000000".to_owned(),
                user_id: "alice".to_owned(),
                status: "CONFIRMED",
                items: vec![LineContext {
                    product_id: 1,
                    name: "Espresso cup".to_owned(),
                    quantity: 2,
                    unit_price: "12.50".to_owned(),
                    line_total: "25.00".to_owned(),
                }],
                total_amount: "25.00".to_owned(),
                currency: "USD".to_owned(),
                email: Some("alice@example.com".to_owned()),
                shipping_address: Some("1 Main St, Springfield".to_owned()),
                carrier: Some("UPS".to_owned()),
                tracking_number: Some("1Z999".to_owned()),
                failure_reason: None,
                created_at: "2026-01-01T00:00:00.000Z".to_owned(),
            },
            payment: Some(PaymentContext {
                id: "0192f7a0-0000-7000-8000-000000000001".to_owned(),
                amount: "25.00".to_owned(),
                status: "SUCCEEDED",
            }),
        }
    }
}

impl TemplateContext {
    /// The sample with every optional field empty (a receipt keeps its
    /// payment: there is always one).
    fn sparse(mut self) -> TemplateContext {
        self.reason = None;
        self.order.email = None;
        self.order.shipping_address = None;
        self.order.carrier = None;
        self.order.tracking_number = None;
        self.order.failure_reason = None;
        if self.kind != NotificationKind::PaymentReceipt.as_str() {
            self.payment = None;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_render_every_kind() {
        let templates = Templates::defaults();
        for kind in NotificationKind::ALL {
            let rendered = templates
                .render(kind, &TemplateContext::sample(kind))
                .unwrap();
            assert!(!rendered.subject.is_empty());
            assert!(!rendered.subject.contains('\n'));
            assert!(
                rendered
                    .body
                    .contains("0192f7a0-0000-7000-8000-000000000000")
            );
            assert!(rendered.html_body.starts_with("<!DOCTYPE html>"));
        }
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let templates = Templates::defaults();
        let mut context = TemplateContext::sample(NotificationKind::OrderConfirmation);
        context.order.items[0].name = "Cups & <saucers>".to_owned();
        let rendered = templates
            .render(NotificationKind::OrderConfirmation, &context)
            .unwrap();
        assert!(rendered.body.contains("Cups & <saucers>"));
        assert!(rendered.html_body.contains("Cups &amp; &lt;saucers&gt;"));
    }

    #[test]
    fn a_directory_replaces_templates_and_refuses_broken_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("order_confirmation.subject"),
            "Order {{ order.id }} confirmed!",
        )
        .unwrap();
        let templates = Templates::from_dir(dir.path()).unwrap();
        let context = TemplateContext::sample(NotificationKind::OrderConfirmation);
        let rendered = templates
            .render(NotificationKind::OrderConfirmation, &context)
            .unwrap();
        assert_eq!(
            rendered.subject,
            "Order 0192f7a0-0000-7000-8000-000000000000 confirmed!"
        );

        // A syntax error: refused, naming the file and the line.
        std::fs::write(
            dir.path().join("shipping_update.txt"),
            "Shipped.\n\n{% if order.carrier %}\nvia {{ order.carrier }\n",
        )
        .unwrap();
        let error = Templates::from_dir(dir.path()).unwrap_err().to_string();
        assert!(error.contains("shipping_update.txt"), "{error}");
        assert!(error.contains("line 4"), "{error}");

        // An unknown variable: refused at load, not at send time.
        std::fs::write(
            dir.path().join("shipping_update.txt"),
            "Shipped.\n{{ order.tracking_url }}\n",
        )
        .unwrap();
        let error = Templates::from_dir(dir.path()).unwrap_err().to_string();
        assert!(error.contains("shipping_update.txt"), "{error}");
        assert!(error.contains("line 2"), "{error}");

        // A misspelt file name.
        std::fs::remove_file(dir.path().join("shipping_update.txt")).unwrap();
        std::fs::write(dir.path().join("order_confirmaton.txt"), "hi").unwrap();
        let error = Templates::from_dir(dir.path()).unwrap_err().to_string();
        assert!(error.contains("order_confirmaton.txt"), "{error}");
        assert!(error.contains("not a template name"), "{error}");

        // A missing directory.
        let error = Templates::from_dir(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("nope"), "{error}");
    }
}
