//! The contract's webhook body: `{"id", "type": "payment.succeeded" |
//! "payment.failed", "payment_id", "failure_reason"?}`.
//!
//! The simulated gateway renders it and checks it back; a real provider
//! has its own format and its own conversion. The body is parsed only
//! after its signature was checked, so nothing here sees a forgery.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::payments::gateway::{PaymentId, WebhookError, WebhookEvent, WebhookOutcome};

/// The largest webhook body read.
const WEBHOOK_BODY_BYTES_MAX: usize = 64 << 10;
/// The longest event id and failure reason, in bytes.
const WEBHOOK_FIELD_LENGTH_MAX: usize = 255;
const TYPE_SUCCEEDED: &str = "payment.succeeded";
const TYPE_FAILED: &str = "payment.failed";
/// The reason given when a `payment.failed` event names none.
const FAILURE_REASON_DEFAULT: &str = "payment_failed";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    payment_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure_reason: Option<String>,
}

/// The body of `event`, as JSON bytes.
pub(crate) fn render(event: &WebhookEvent) -> Vec<u8> {
    let (kind, failure_reason) = match &event.outcome {
        WebhookOutcome::Succeeded => (TYPE_SUCCEEDED, None),
        WebhookOutcome::Failed { reason } => (TYPE_FAILED, Some(reason.clone())),
    };
    let body = WebhookBody {
        id: event.id.clone(),
        kind: kind.to_owned(),
        payment_id: event.payment_id.0,
        failure_reason,
    };
    let bytes = serde_json::to_vec(&body).expect("a webhook body always serializes");
    assert!(bytes.len() <= WEBHOOK_BODY_BYTES_MAX);
    bytes
}

/// The event a (signature-checked) body describes.
pub(crate) fn parse(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let invalid = |message: String| Err(WebhookError::InvalidPayload(message));
    if body.len() > WEBHOOK_BODY_BYTES_MAX {
        return invalid(format!("body over {WEBHOOK_BODY_BYTES_MAX} bytes"));
    }
    let body: WebhookBody = match serde_json::from_slice(body) {
        Ok(body) => body,
        Err(error) => return invalid(error.to_string()),
    };
    if body.id.is_empty() || body.id.len() > WEBHOOK_FIELD_LENGTH_MAX {
        return invalid(format!("id must be 1 to {WEBHOOK_FIELD_LENGTH_MAX} bytes"));
    }
    if let Some(reason) = &body.failure_reason
        && (reason.is_empty() || reason.len() > WEBHOOK_FIELD_LENGTH_MAX)
    {
        return invalid(format!(
            "failure_reason must be 1 to {WEBHOOK_FIELD_LENGTH_MAX} bytes"
        ));
    }
    let outcome = match (body.kind.as_str(), body.failure_reason) {
        (TYPE_SUCCEEDED, None) => WebhookOutcome::Succeeded,
        (TYPE_SUCCEEDED, Some(_)) => {
            return invalid("a payment.succeeded event has no failure_reason".to_owned());
        }
        (TYPE_FAILED, reason) => WebhookOutcome::Failed {
            reason: reason.unwrap_or_else(|| FAILURE_REASON_DEFAULT.to_owned()),
        },
        _ => {
            return invalid(format!("type must be {TYPE_SUCCEEDED} or {TYPE_FAILED}"));
        }
    };
    Ok(WebhookEvent {
        id: body.id,
        payment_id: PaymentId(body.payment_id),
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(outcome: WebhookOutcome) -> WebhookEvent {
        WebhookEvent {
            id: "evt_1".into(),
            payment_id: PaymentId(Uuid::now_v7()),
            outcome,
        }
    }

    #[test]
    fn events_round_trip() {
        let succeeded = event(WebhookOutcome::Succeeded);
        assert_eq!(parse(&render(&succeeded)), Ok(succeeded));
        let failed = event(WebhookOutcome::Failed {
            reason: "card_declined".into(),
        });
        assert_eq!(parse(&render(&failed)), Ok(failed));
    }

    #[test]
    fn the_body_is_the_contracts() {
        let succeeded = event(WebhookOutcome::Succeeded);
        let value: serde_json::Value = serde_json::from_slice(&render(&succeeded)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "id": "evt_1",
                "type": "payment.succeeded",
                "payment_id": succeeded.payment_id.to_string(),
            })
        );
    }

    #[test]
    fn a_failure_without_a_reason_gets_one() {
        let body = format!(
            r#"{{"id":"evt_2","type":"payment.failed","payment_id":"{}"}}"#,
            Uuid::now_v7()
        );
        let parsed = parse(body.as_bytes()).unwrap();
        assert_eq!(
            parsed.outcome,
            WebhookOutcome::Failed {
                reason: FAILURE_REASON_DEFAULT.into()
            }
        );
    }

    #[test]
    fn bodies_that_are_not_events_are_refused() {
        let payment_id = Uuid::now_v7();
        let refused = |body: String| {
            let error = parse(body.as_bytes()).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{body}");
        };
        refused("not json".into());
        refused(format!(
            r#"{{"id":"e","type":"payment.refunded","payment_id":"{payment_id}"}}"#
        ));
        refused(format!(
            r#"{{"id":"","type":"payment.succeeded","payment_id":"{payment_id}"}}"#
        ));
        refused(r#"{"id":"e","type":"payment.succeeded","payment_id":"nope"}"#.into());
        refused(format!(
            r#"{{"id":"e","type":"payment.succeeded","payment_id":"{payment_id}","extra":1}}"#
        ));
        refused(format!(
            r#"{{"id":"e","type":"payment.succeeded","payment_id":"{payment_id}","failure_reason":"x"}}"#
        ));
        refused(format!(
            r#"{{"id":"{}","type":"payment.succeeded","payment_id":"{payment_id}"}}"#,
            "e".repeat(WEBHOOK_FIELD_LENGTH_MAX + 1)
        ));
        refused(" ".repeat(WEBHOOK_BODY_BYTES_MAX + 1));
    }
}
