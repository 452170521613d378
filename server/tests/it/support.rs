//! Helpers: a router over a fresh store, and requests against it.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use mercato_engine::{Engine, EngineConfig, WriterObserver};
use mercato_server::{AppState, Auth, Limits, Metrics, router};
use serde_json::Value;
use tower::ServiceExt;

pub(crate) const ADMIN: &str = "admin-token-for-tests-0123";

pub(crate) struct TestServer {
    pub(crate) app: Router,
    pub(crate) state: AppState,
}

pub(crate) fn engine_config(dir: &Path, observer: Option<Arc<dyn WriterObserver>>) -> EngineConfig {
    let mut config = EngineConfig::new(dir);
    config.observer = observer;
    config
}

pub(crate) fn server_with(config: EngineConfig, limits: Limits) -> TestServer {
    let engine = Engine::open(config).unwrap();
    let auth = Auth::new(ADMIN.into(), b"test secret".to_vec());
    let state = AppState::new(engine, auth, Arc::new(Metrics::new()), limits);
    TestServer {
        app: router(state.clone()),
        state,
    }
}

pub(crate) fn server(dir: &Path) -> TestServer {
    let metrics = Arc::new(Metrics::new());
    let mut config = engine_config(dir, Some(metrics.clone()));
    config.queue_max = 1_024;
    config.batch_max = 1_024;
    let engine = Engine::open(config).unwrap();
    let auth = Auth::new(ADMIN.into(), b"test secret".to_vec());
    let state = AppState::new(engine, auth, metrics, Limits::default());
    TestServer {
        app: router(state.clone()),
        state,
    }
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl TestServer {
    pub(crate) async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        self.send(request(method, uri, token, body, &[])).await
    }

    pub(crate) async fn admin(&self, method: &str, uri: &str, body: Option<Value>) -> Answer {
        self.call(method, uri, Some(ADMIN), body).await
    }
}

pub(crate) fn request(
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// Asserts a problem document with `status` and `code`.
pub(crate) fn assert_problem(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.text);
    assert_eq!(answer.body["code"], code, "{}", answer.text);
    assert_eq!(answer.body["status"], status);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "application/problem+json",
        "{}",
        answer.text
    );
    assert!(answer.body["title"].is_string() && answer.body["detail"].is_string());
}
