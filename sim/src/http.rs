//! HTTP plumbing shared by the Google and Kubernetes servers: a small request/response
//! model, the accept loop (plain or TLS), latency and fault injection, and the request log.
//!
//! Handlers see a fully read [`Request`] and return a [`Response`], whose body is either
//! complete or a stream (watches).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::FaultKind;
use crate::faults::FaultInjector;
use crate::request_log::RequestLog;
use crate::tokens::TokenRegistry;

/// A request as handlers see it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path without the query, percent-decoding not applied.
    pub path: String,
    /// Raw query string (without `?`), empty when absent.
    pub query: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Request {
    /// A request built in code (tests, internal calls).
    pub fn new(method: &str, path_and_query: &str, body: impl Into<Bytes>) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Request {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers: hyper::HeaderMap::new(),
            body: body.into(),
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.headers.append(n, v);
        }
        self
    }

    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The bearer token of the `Authorization` header.
    pub fn bearer_token(&self) -> Option<&str> {
        let v = self.header("authorization")?;
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// Query parameters, percent-decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        parse_query(&self.query)
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Path and query as received.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

/// Percent-decodes `application/x-www-form-urlencoded` pairs.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` as space.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A response body: complete, or a stream of chunks (a watch).
#[derive(Debug)]
pub enum Body {
    Full(Bytes),
    Stream(mpsc::Receiver<Bytes>),
}

/// A response as handlers produce it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Full(Bytes::from(serde_json::to_vec(value).unwrap_or_default())),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, content_type: &str, text: impl Into<String>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Full(Bytes::from(text.into())),
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The complete body (empty for a stream); for tests.
    pub fn body_bytes(&self) -> Bytes {
        match &self.body {
            Body::Full(b) => b.clone(),
            Body::Stream(_) => Bytes::new(),
        }
    }

    /// The complete body parsed as JSON; for tests.
    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body_bytes()).unwrap_or(serde_json::Value::Null)
    }
}

/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// A request handler: the Google API router or one Kubernetes API server.
pub trait Handler: Send + Sync + 'static {
    /// Serves one request.
    fn handle(self: Arc<Self>, req: Request) -> HandlerFuture;

    /// The response for an injected fault (each server speaks its own error format).
    fn fault_response(&self, kind: FaultKind) -> Response;
}

/// Cross-cutting settings of every server of one sandbox.
#[derive(Debug)]
pub struct ServeContext {
    pub latency: Duration,
    pub faults: FaultInjector,
    pub request_log: Option<RequestLog>,
    /// The tokens every server accepts (the `expire` fault revokes one).
    pub tokens: Arc<TokenRegistry>,
}

/// A running server: its address and the handle that stops it.
#[derive(Debug)]
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl RunningServer {
    /// Stops accepting and closes every open connection (watches included).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Serves `handler` on `listener` until stopped; `tls` turns on HTTPS.
pub fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    server_name: String,
    ctx: Arc<ServeContext>,
    handler: Arc<dyn Handler>,
) -> std::io::Result<RunningServer> {
    let addr = listener.local_addr()?;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let server_name: Arc<str> = server_name.into();
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                _ = stop_rx.changed() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let tls = tls.clone();
                    let ctx = ctx.clone();
                    let handler = handler.clone();
                    let server_name = server_name.clone();
                    conns.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            dispatch(req, server_name.clone(), ctx.clone(), handler.clone())
                        });
                        let builder = auto::Builder::new(TokioExecutor::new());
                        match tls {
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                                }
                            }
                            None => {
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        conns.abort_all();
    });
    Ok(RunningServer {
        addr,
        stop: stop_tx,
    })
}

/// The error that makes hyper close a connection without answering (an injected drop).
#[derive(Debug)]
struct DroppedConnection;

impl std::fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DroppedConnection {}

async fn dispatch(
    req: hyper::Request<Incoming>,
    server_name: Arc<str>,
    ctx: Arc<ServeContext>,
    handler: Arc<dyn Handler>,
) -> Result<hyper::Response<BoxBody<Bytes, Infallible>>, DroppedConnection> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let request = Request {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts.headers,
        body,
    };
    let path_and_query = request.path_and_query();
    if !ctx.latency.is_zero() {
        tokio::time::sleep(ctx.latency).await;
    }
    let response = match ctx.faults.decide(&request.method, &request.path) {
        Some(FaultKind::Drop) => {
            if let Some(log) = &ctx.request_log {
                log.record(&server_name, &request.method, &path_and_query, 0);
            }
            return Err(DroppedConnection);
        }
        Some(FaultKind::Lost) => {
            let response = handler.handle(request.clone()).await;
            if let Some(log) = &ctx.request_log {
                log.record(
                    &server_name,
                    &request.method,
                    &path_and_query,
                    response.status,
                );
            }
            return Err(DroppedConnection);
        }
        Some(FaultKind::Slow { delay }) => {
            tokio::time::sleep(delay).await;
            handler.handle(request.clone()).await
        }
        Some(FaultKind::Expire) => {
            // The handler then refuses the token as it refuses any expired one.
            if let Some(token) = request.bearer_token() {
                ctx.tokens.revoke(token);
            }
            handler.handle(request.clone()).await
        }
        Some(kind) => handler.fault_response(kind),
        None => handler.handle(request.clone()).await,
    };
    if let Some(log) = &ctx.request_log {
        log.record(
            &server_name,
            &request.method,
            &path_and_query,
            response.status,
        );
    }
    Ok(into_hyper(response))
}

fn into_hyper(response: Response) -> hyper::Response<BoxBody<Bytes, Infallible>> {
    let body: BoxBody<Bytes, Infallible> = match response.body {
        Body::Full(bytes) => Full::new(bytes).boxed(),
        Body::Stream(rx) => {
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
            });
            StreamBody::new(stream).boxed()
        }
    };
    let mut out = hyper::Response::new(body);
    *out.status_mut() = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in response.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            out.headers_mut().append(n, v);
        }
    }
    out
}

#[cfg(test)]
mod fault_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_decoded() {
        let r = Request::new(
            "GET",
            "/x?filter=state%3AENABLED&pageSize=200&labelSelector=a+in+(b)",
            "",
        );
        assert_eq!(r.query_param("filter").as_deref(), Some("state:ENABLED"));
        assert_eq!(r.query_param("labelSelector").as_deref(), Some("a in (b)"));
        assert_eq!(r.path, "/x");
        assert_eq!(percent_decode("%zz%"), "%zz%");
    }

    #[test]
    fn bearer_token_is_read() {
        let r = Request::new("GET", "/", "").with_header("Authorization", "Bearer abc");
        assert_eq!(r.bearer_token(), Some("abc"));
        assert_eq!(Request::new("GET", "/", "").bearer_token(), None);
    }
}
