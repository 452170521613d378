//! A lean HTTP/1.1 client: one keep-alive connection per load task, driven
//! straight through hyper's connection API.
//!
//! The load generator shares two cores with the server it measures, so every
//! cycle it spends is taken from the server. A pooled client (reqwest) would
//! add a pool lookup, a URL parse and a header map merge to every request;
//! here a task owns its connection and sends the next request as soon as the
//! previous answer is read.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::Error;

/// The header a write's idempotency key travels in.
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Where requests go: the server's socket address, its `Host` header and the
/// admin token's `Authorization` header.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) address: SocketAddr,
    host: HeaderValue,
    authorization: HeaderValue,
    token: String,
    /// The origin as given (`http://127.0.0.1:8080`), for messages.
    pub(crate) origin: String,
}

impl Target {
    /// Parses `http://HOST:PORT` (a trailing `/` is allowed; no path, no
    /// TLS) and resolves the host once.
    pub(crate) async fn resolve(url: &str, admin_token: &str) -> Result<Target, Error> {
        let origin = url.trim_end_matches('/');
        let authority = origin
            .strip_prefix("http://")
            .ok_or_else(|| format!("--url must start with http:// (got {url})"))?;
        if authority.is_empty() || authority.contains('/') {
            return Err(
                format!("--url must be http://HOST:PORT without a path (got {url})").into(),
            );
        }
        let with_port = if authority.rsplit_once(':').is_some_and(|(_, port)| {
            !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit())
        }) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let address = tokio::net::lookup_host(with_port.as_str())
            .await
            .map_err(|error| format!("cannot resolve {authority}: {error}"))?
            .next()
            .ok_or_else(|| format!("{authority} resolves to no address"))?;
        Ok(Target {
            address,
            host: HeaderValue::from_str(authority)?,
            authorization: HeaderValue::from_str(&format!("Bearer {admin_token}"))?,
            token: admin_token.to_owned(),
            origin: origin.to_owned(),
        })
    }

    /// The admin token requests carry.
    pub(crate) fn admin_token(&self) -> String {
        self.token.clone()
    }
}

/// One keep-alive HTTP/1.1 connection, used by one task at a time.
pub(crate) struct Connection {
    sender: SendRequest<Full<Bytes>>,
    target: Target,
}

/// An answer: its status, its headers and its whole body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Connection {
    /// Opens a connection (with `TCP_NODELAY`: requests are small and
    /// latency-bound).
    pub(crate) async fn open(target: &Target) -> Result<Connection, Error> {
        let stream = TcpStream::connect(target.address)
            .await
            .map_err(|error| format!("cannot connect to {}: {error}", target.origin))?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // The connection future drives the socket; it ends when `sender` is
        // dropped or the peer closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection {
            sender,
            target: target.clone(),
        })
    }

    /// Sends one request and reads the whole answer. `body` is sent as
    /// `application/json`. Any error leaves the connection unusable: drop
    /// it and open another.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Answer, Error> {
        self.send_with_key(method, path, body, None).await
    }

    /// [`Connection::send`] with an `Idempotency-Key` header when `key` is
    /// given.
    pub(crate) async fn send_with_key(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        key: Option<&HeaderValue>,
    ) -> Result<Answer, Error> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.target.host.clone())
            .header(AUTHORIZATION, self.target.authorization.clone());
        if let Some(key) = key {
            request = request.header(IDEMPOTENCY_KEY, key.clone());
        }
        // An empty body goes out as `content-length: 0`, harmless on a GET.
        let body = match body {
            Some(bytes) => {
                request =
                    request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        self.sender.ready().await?;
        let response = self.sender.send_request(request.body(body)?).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// [`Connection::send`] bounded by `timeout`.
    pub(crate) async fn send_within(
        &mut self,
        timeout: Duration,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Answer, Error> {
        match tokio::time::timeout(timeout, self.send(method, path, body)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis()).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn parses_origins() {
        let target = Target::resolve("http://127.0.0.1:8080/", "t")
            .await
            .unwrap();
        assert_eq!(target.address, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(target.origin, "http://127.0.0.1:8080");
        assert_eq!(target.host, "127.0.0.1:8080");
        let target = Target::resolve("http://127.0.0.1", "t").await.unwrap();
        assert_eq!(target.address.port(), 80);
        assert!(Target::resolve("https://127.0.0.1:1", "t").await.is_err());
        assert!(
            Target::resolve("http://127.0.0.1:1/api", "t")
                .await
                .is_err()
        );
    }
}
