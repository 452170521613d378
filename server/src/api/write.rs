//! Handlers that write through the engine answer through [`run_write`]: one
//! renderer turns the write's outcome into the HTTP answer, and, when the
//! request carries an `Idempotency-Key`, the engine stores that same answer
//! in the write's own transaction. A crash then keeps both or neither.

use axum::Extension;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mercato_engine::{Error, Write};
use serde::Serialize;

use crate::idempotency::{IdempotencyContext, RecordedByEngine, stored_answer};
use crate::problem::{ApiError, PROBLEM_CONTENT_TYPE, add_status_headers};
use crate::state::AppState;

/// An HTTP answer as bytes, so it can be both sent and stored.
pub(crate) struct Rendered {
    status: StatusCode,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

impl Rendered {
    /// A JSON body with `status`.
    pub(crate) fn json(status: StatusCode, body: &impl Serialize) -> Rendered {
        Rendered {
            status,
            content_type: Some("application/json"),
            body: serde_json::to_vec(body).expect("answers serialize"),
        }
    }

    /// `status` with `body(value)` on success, the problem document on error.
    pub(crate) fn outcome<T, B: Serialize>(
        outcome: &Result<T, Error>,
        status: StatusCode,
        body: impl FnOnce(&T) -> B,
    ) -> Rendered {
        match outcome {
            Ok(value) => Rendered::json(status, &body(value)),
            Err(error) => Rendered::error(error),
        }
    }

    /// An empty answer (`204 No Content`).
    pub(crate) fn empty(status: StatusCode) -> Rendered {
        Rendered {
            status,
            content_type: None,
            body: Vec::new(),
        }
    }

    /// The problem document for an engine error.
    pub(crate) fn error(error: &Error) -> Rendered {
        let (status, body) = ApiError::from(error.clone()).to_status_and_body();
        Rendered {
            status,
            content_type: Some(PROBLEM_CONTENT_TYPE),
            body: body.into_bytes(),
        }
    }

    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if let Some(content_type) = self.content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        add_status_headers(self.status, headers);
        response
    }
}

/// Sends `write` to the engine and answers with `render` of its outcome.
/// With an idempotency context, the engine also stores the rendered answer
/// (unless it is a 5xx, which a retry should run again) in the write's own
/// transaction, and the middleware leaves it alone.
pub(crate) async fn run_write<T: Send + 'static>(
    state: &AppState,
    context: Option<Extension<IdempotencyContext>>,
    write: Write<T>,
    render: fn(&Result<T, Error>) -> Rendered,
) -> Response {
    let remembered = context.is_some();
    let write = match context {
        Some(Extension(context)) => write.remember(
            context.storage_key,
            state.limits.idempotency_ttl,
            move |outcome| {
                let rendered = render(outcome);
                (!rendered.status.is_server_error()).then(|| {
                    stored_answer(
                        &context.fingerprint,
                        rendered.status,
                        rendered.content_type,
                        &rendered.body,
                    )
                })
            },
        ),
        None => write,
    };
    let outcome = state.engine.write(write).await;
    if let Err(Error::Storage(_)) = &outcome {
        // Logged here, once; the client gets no details.
        return ApiError::from(outcome.err().expect("an error")).into_response();
    }
    let rendered = render(&outcome);
    let stored = remembered && !rendered.status.is_server_error();
    let mut response = rendered.into_response();
    if stored {
        response.extensions_mut().insert(RecordedByEngine);
    }
    response
}
