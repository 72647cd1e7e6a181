//! The one HTTP client for Google APIs: bearer auth, JSON in/out, `google.rpc.Status` errors,
//! retries with capped exponential backoff and full jitter, a request counter and traces.
//!
//! Which failures are retried, and how long to wait, is [`crate::retry`]'s decision: 429 and
//! 503 always; 500/502/504 and connections lost after the request was sent only for calls that
//! are safe to repeat; a failed connect (nothing sent) always.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{ACCEPT, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::auth::{AccessToken, TokenProvider};
use crate::error::{Error, exit};

pub use crate::retry::{RetryPolicy, parse_retry_after, retry_until_api_enabled};

/// `min(max, initial · factor^n)`.
pub fn capped_exponential(initial: Duration, factor: f64, n: u32, max: Duration) -> Duration {
    let exp = factor.powi(n.min(64) as i32);
    let secs = initial.as_secs_f64() * exp;
    if !secs.is_finite() || secs >= max.as_secs_f64() {
        max
    } else {
        Duration::from_secs_f64(secs)
    }
}

pub use crate::transport::{RequestTrace, TraceFn};

/// A `google.rpc.Status` error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub http_status: u16,
    /// Canonical status name, e.g. `NOT_FOUND` (derived from the HTTP status when absent).
    pub status: String,
    pub message: String,
    /// `error.details` (an array, or `Null`).
    pub details: Value,
    /// `METHOD URL` of the failed request (for messages).
    pub request: String,
    /// How long the server asked the caller to wait (`Retry-After` or `RetryInfo`).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// Parses an error body; bodies that are not a `google.rpc.Status` keep their text as
    /// the message.
    pub fn from_response(http_status: u16, body: &[u8]) -> ApiError {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let err = parsed.as_ref().and_then(|v| v.get("error"));
        let status = err
            .and_then(|e| e.get("status"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| status_name(http_status).to_string());
        let message = err
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() {
                    format!("HTTP {http_status}")
                } else {
                    text.chars().take(500).collect()
                }
            });
        let details = err
            .and_then(|e| e.get("details"))
            .cloned()
            .unwrap_or(Value::Null);
        let mut e = ApiError {
            http_status,
            status,
            message,
            details,
            request: String::new(),
            retry_after: None,
        };
        e.retry_after = crate::retry::retry_info_delay(&e);
        e
    }

    /// 404 / NOT_FOUND.
    pub fn is_not_found(&self) -> bool {
        self.http_status == 404 || self.status == "NOT_FOUND"
    }

    /// 409 ALREADY_EXISTS.
    pub fn is_already_exists(&self) -> bool {
        self.status == "ALREADY_EXISTS"
    }

    /// 409 ABORTED (stale etag / concurrent change: redo the read-modify-write).
    pub fn is_aborted(&self) -> bool {
        self.status == "ABORTED"
    }

    /// 403 PERMISSION_DENIED (including SERVICE_DISABLED).
    pub fn is_permission_denied(&self) -> bool {
        self.http_status == 403 || self.status == "PERMISSION_DENIED"
    }

    /// 401 UNAUTHENTICATED.
    pub fn is_unauthenticated(&self) -> bool {
        self.http_status == 401 || self.status == "UNAUTHENTICATED"
    }

    /// 400 FAILED_PRECONDITION.
    pub fn is_failed_precondition(&self) -> bool {
        self.status == "FAILED_PRECONDITION"
    }

    /// `google.rpc.ErrorInfo` entries of `details`.
    pub fn error_infos(&self) -> impl Iterator<Item = &Value> {
        self.details.as_array().into_iter().flatten().filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.ErrorInfo"))
        })
    }

    /// The `ErrorInfo.reason` values.
    pub fn reasons(&self) -> Vec<&str> {
        self.error_infos()
            .filter_map(|d| d.get("reason").and_then(Value::as_str))
            .collect()
    }

    /// 403 with `ErrorInfo.reason == SERVICE_DISABLED`: the disabled service's name (e.g.
    /// `gkehub.googleapis.com`; empty when the server did not say).
    pub fn service_disabled(&self) -> Option<String> {
        if self.http_status != 403 {
            return None;
        }
        self.error_infos()
            .find(|d| d.get("reason").and_then(Value::as_str) == Some("SERVICE_DISABLED"))
            .map(|d| {
                d.pointer("/metadata/service")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            })
    }

    /// Shorthand for `service_disabled().is_some()`.
    pub fn is_service_disabled(&self) -> bool {
        self.service_disabled().is_some()
    }

    /// The missing permission named by an `ErrorInfo` (`metadata.permission`), if any.
    pub fn permission(&self) -> Option<String> {
        self.error_infos()
            .find_map(|d| d.pointer("/metadata/permission").and_then(Value::as_str))
            .map(str::to_string)
    }

    /// An API that was just enabled is not usable yet: 400 FAILED_PRECONDITION "… is not
    /// enabled" or 403 SERVICE_DISABLED. Retry with [`retry_until_api_enabled`].
    pub fn is_api_not_enabled_yet(&self) -> bool {
        (self.is_failed_precondition() && self.message.contains("not enabled"))
            || self.is_service_disabled()
    }

    /// Whether retrying the same request may help (429, 5xx); see [`crate::retry`].
    pub fn is_transient(&self) -> bool {
        matches!(self.http_status, 429 | 500 | 502 | 503 | 504)
    }

    /// The coded error shown when the caller does not handle this one.
    pub fn to_error(&self) -> Error {
        let what = if self.request.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.request)
        };
        let message = format!(
            "{what}{} {}: {}",
            self.http_status, self.status, self.message
        );
        if let Some(service) = self.service_disabled() {
            let svc = if service.is_empty() {
                "the API".to_string()
            } else {
                service
            };
            return Error::apply("ASM-E412", message).with_hint(format!(
                "enable {svc} (asm install enables the APIs it needs; or `gcloud services enable {svc}`), then retry"
            ));
        }
        if self.is_unauthenticated() {
            return Error::apply("ASM-E414", message).with_hint(
                "the access token was rejected; it may have expired (tokens last 1 hour): fetch a new one",
            );
        }
        if self.is_permission_denied() {
            let hint = match self.permission() {
                Some(p) => format!("the caller lacks permission {p}; grant a role that has it"),
                None => "the caller lacks a permission on this resource".to_string(),
            };
            return Error::apply("ASM-E411", message).with_hint(hint);
        }
        if self.is_not_found() {
            return Error::apply("ASM-E413", message)
                .with_hint("check the project, location and name");
        }
        if self.is_transient() {
            return Error::apply("ASM-E415", message)
                .with_hint("the API is unavailable or rate-limited; re-run asm to resume");
        }
        if self.is_aborted() {
            return Error::apply("ASM-E410", message)
                .with_hint("a concurrent change happened; re-run asm to resume");
        }
        Error::apply("ASM-E410", message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.request.is_empty() {
            write!(f, "{}: ", self.request)?;
        }
        write!(f, "{} {}: {}", self.http_status, self.status, self.message)
    }
}

/// Canonical `google.rpc.Code` name for an HTTP status (used when the body has none).
pub fn status_name(http_status: u16) -> &'static str {
    match http_status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// Everything a Google API call can fail with.
#[derive(Debug, Clone)]
pub enum GcpError {
    /// The API answered with an error status.
    Api(Box<ApiError>),
    /// No (complete) answer: connect failure, reset, timeout.
    Transport {
        request: String,
        message: String,
        connect: bool,
    },
    /// The answer was not the JSON we expected.
    Decode { request: String, message: String },
    /// A long-running operation finished with an error.
    OperationFailed {
        operation: String,
        message: String,
        details: Value,
    },
    /// Waiting for an operation or condition exceeded its deadline.
    Timeout { what: String, after: Duration },
    /// An already coded error (bad input to a client call, credentials, …).
    Coded(Error),
}

impl GcpError {
    /// The API error, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            GcpError::Api(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// 404 NOT_FOUND.
    pub fn is_not_found(&self) -> bool {
        self.api().is_some_and(ApiError::is_not_found)
    }

    /// 409 ALREADY_EXISTS.
    pub fn is_already_exists(&self) -> bool {
        self.api().is_some_and(ApiError::is_already_exists)
    }

    /// 409 ABORTED.
    pub fn is_aborted(&self) -> bool {
        self.api().is_some_and(ApiError::is_aborted)
    }

    /// 403 PERMISSION_DENIED.
    pub fn is_permission_denied(&self) -> bool {
        self.api().is_some_and(ApiError::is_permission_denied)
    }

    /// 400 FAILED_PRECONDITION.
    pub fn is_failed_precondition(&self) -> bool {
        self.api().is_some_and(ApiError::is_failed_precondition)
    }

    /// 403 SERVICE_DISABLED: which service.
    pub fn service_disabled(&self) -> Option<String> {
        self.api().and_then(ApiError::service_disabled)
    }

    /// See [`ApiError::is_api_not_enabled_yet`].
    pub fn is_api_not_enabled_yet(&self) -> bool {
        self.api().is_some_and(ApiError::is_api_not_enabled_yet)
    }

    /// The coded error for the user.
    pub fn to_error(&self) -> Error {
        match self {
            GcpError::Api(e) => e.to_error(),
            GcpError::Transport {
                request, message, ..
            } => Error::apply("ASM-E416", format!("{request}: {message}")).with_hint(
                "check network access to the Google APIs (proxy, VPC-SC, endpoint overrides); re-run asm to resume",
            ),
            GcpError::Decode { request, message } => Error::apply(
                "ASM-E417",
                format!("{request}: unexpected response: {message}"),
            ),
            GcpError::OperationFailed {
                operation, message, ..
            } => Error::apply(
                "ASM-E419",
                format!("operation {operation} failed: {message}"),
            ),
            GcpError::Timeout { what, after } => Error::new(
                "ASM-E418",
                exit::TIMEOUT,
                format!("timed out after {}s waiting for {what}", after.as_secs()),
            )
            .with_hint("the operation may still finish; re-run asm to resume"),
            GcpError::Coded(e) => e.clone(),
        }
    }
}

impl fmt::Display for GcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GcpError::Api(e) => write!(f, "{e}"),
            other => write!(f, "{}", other.to_error().message),
        }
    }
}

impl std::error::Error for GcpError {}

impl From<GcpError> for Error {
    fn from(e: GcpError) -> Error {
        e.to_error()
    }
}

impl From<ApiError> for GcpError {
    fn from(e: ApiError) -> GcpError {
        GcpError::Api(Box::new(e))
    }
}

impl From<Error> for GcpError {
    fn from(e: Error) -> GcpError {
        GcpError::Coded(e)
    }
}

/// Result of a Google API call.
pub type GcpResult<T> = Result<T, GcpError>;

/// The HTTP client shared by every Google API module. Cheap to clone (shared pool, counter).
#[derive(Clone)]
pub struct GoogleHttp {
    client: reqwest::Client,
    token: Arc<AccessToken>,
    /// When set, asked for the bearer token before every attempt (refreshing credentials).
    provider: Option<Arc<dyn TokenProvider>>,
    retry: RetryPolicy,
    requests: Arc<AtomicU64>,
    trace: Option<TraceFn>,
}

impl fmt::Debug for GoogleHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleHttp")
            .field("retry", &self.retry)
            .field("requests", &self.requests.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl GoogleHttp {
    /// A client authenticating with `token` (connect timeout 10 s, request timeout 60 s).
    pub fn new(token: AccessToken, retry: RetryPolicy) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("asm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::apply("ASM-E416", format!("cannot build HTTP client: {e}")))?;
        Ok(GoogleHttp {
            client,
            token: Arc::new(token),
            provider: None,
            retry,
            requests: Arc::new(AtomicU64::new(0)),
            trace: None,
        })
    }

    /// Sends every attempt's [`RequestTrace`] to `trace` as well as to `tracing` (debug).
    pub fn with_trace(mut self, trace: TraceFn) -> Self {
        self.trace = Some(trace);
        self
    }

    /// The trace callback set by [`GoogleHttp::with_trace`] (shared with Kubernetes clients).
    pub fn trace(&self) -> Option<TraceFn> {
        self.trace.clone()
    }

    /// Asks `provider` for the bearer token before every attempt (tokens that expire and
    /// refresh); the token given to [`GoogleHttp::new`] remains [`GoogleHttp::token`].
    pub fn with_token_provider(mut self, provider: Option<Arc<dyn TokenProvider>>) -> Self {
        self.provider = provider;
        self
    }

    /// Shares `counter` as the request counter (e.g. one counter across several clients).
    pub fn with_counter(mut self, counter: Arc<AtomicU64>) -> Self {
        self.requests = counter;
        self
    }

    /// The request counter (every attempt counts, retries included).
    pub fn request_counter(&self) -> Arc<AtomicU64> {
        self.requests.clone()
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The bearer token (for a Kubernetes client of a GKE cluster).
    pub fn token(&self) -> &AccessToken {
        &self.token
    }

    /// Where this client's bearer tokens come from (refreshing when it has a provider), for
    /// Kubernetes clients of GKE clusters.
    pub fn bearer(&self) -> crate::transport::BearerSource {
        match &self.provider {
            Some(p) => crate::transport::BearerSource::refreshing((*self.token).clone(), p.clone()),
            None => crate::transport::BearerSource::fixed((*self.token).clone()),
        }
    }

    /// `GET url` → `T`.
    pub async fn get<T: DeserializeOwned>(&self, url: &str) -> GcpResult<T> {
        self.send(Method::GET, url, None, true).await
    }

    /// `GET url` → `Some(T)`, or `None` on 404.
    pub async fn get_opt<T: DeserializeOwned>(&self, url: &str) -> GcpResult<Option<T>> {
        match self.get(url).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST url` with a JSON body (not retried on 5xx unless `idempotent`).
    pub async fn post<T: DeserializeOwned>(
        &self,
        url: &str,
        body: &Value,
        idempotent: bool,
    ) -> GcpResult<T> {
        self.send(Method::POST, url, Some(body), idempotent).await
    }

    /// `PATCH url` with a JSON body.
    pub async fn patch<T: DeserializeOwned>(
        &self,
        url: &str,
        body: &Value,
        idempotent: bool,
    ) -> GcpResult<T> {
        self.send(Method::PATCH, url, Some(body), idempotent).await
    }

    /// `PUT url` with a JSON body.
    pub async fn put<T: DeserializeOwned>(
        &self,
        url: &str,
        body: &Value,
        idempotent: bool,
    ) -> GcpResult<T> {
        self.send(Method::PUT, url, Some(body), idempotent).await
    }

    /// Sends one request (with retries) and decodes the JSON answer into `T` (an empty body
    /// decodes as `{}`).
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        idempotent: bool,
    ) -> GcpResult<T> {
        let request = format!("{method} {url}");
        let value = self.send_value(method, url, body, idempotent).await?;
        serde_json::from_value(value).map_err(|e| GcpError::Decode {
            request,
            message: e.to_string(),
        })
    }

    /// Like [`GoogleHttp::send`] but returns the raw JSON. `idempotent`: the request is safe
    /// to repeat even if it may have been processed (see [`crate::retry`]).
    pub async fn send_value(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        idempotent: bool,
    ) -> GcpResult<Value> {
        let attempts = AtomicU32::new(0);
        let (method, attempts) = (&method, &attempts);
        crate::retry::google(&self.retry, idempotent, || async move {
            let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            match &self.provider {
                Some(p) => crate::transport::with_one_new_token(
                    p.as_ref(),
                    token_refused,
                    |token| async move { self.attempt(method, url, body, attempt, &token).await },
                )
                .await,
                None => self.attempt(method, url, body, attempt, &self.token).await,
            }
        })
        .await
    }

    /// One attempt of a request, sent with `token`.
    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        attempt: u32,
        token: &AccessToken,
    ) -> GcpResult<Value> {
        let request = format!("{method} {url}");
        self.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let mut req = self
            .client
            .request(method.clone(), url)
            .bearer_auth(token.expose())
            .header(ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => {
                let message = error_chain(&e);
                self.emit(method, url, None, started, attempt, Some(&message));
                let connect =
                    crate::retry::classify_transport(&e) == crate::retry::Transport::NotSent;
                return Err(GcpError::Transport {
                    request,
                    message,
                    connect,
                });
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = match resp.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => {
                let message = e.to_string();
                self.emit(method, url, None, started, attempt, Some(&message));
                return Err(GcpError::Transport {
                    request,
                    message,
                    connect: false,
                });
            }
        };
        self.emit(method, url, Some(status), started, attempt, None);
        if (200..300).contains(&status) {
            return decode_body(&request, &bytes);
        }
        let mut err = ApiError::from_response(status, &bytes);
        err.request = request;
        if retry_after.is_some() {
            err.retry_after = retry_after;
        }
        Err(GcpError::from(err))
    }

    fn emit(
        &self,
        method: &Method,
        url: &str,
        status: Option<u16>,
        started: Instant,
        attempt: u32,
        error: Option<&str>,
    ) {
        let trace = RequestTrace {
            method: method.to_string(),
            url: url.to_string(),
            status,
            duration: started.elapsed(),
            attempt,
            error: error.map(str::to_string),
        };
        tracing::debug!(target: "asm::gcp::http", "{trace}");
        if let Some(f) = &self.trace {
            f(&trace);
        }
    }
}

/// Whether an answer says the bearer token was refused (401 UNAUTHENTICATED).
fn token_refused<T>(answer: &GcpResult<T>) -> bool {
    answer
        .as_ref()
        .err()
        .and_then(GcpError::api)
        .is_some_and(ApiError::is_unauthenticated)
}

fn decode_body(request: &str, bytes: &[u8]) -> GcpResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(bytes).map_err(|e| GcpError::Decode {
        request: request.to_string(),
        message: e.to_string(),
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Appends `key=value` query pairs (percent-encoded) to `url`.
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = url.to_string();
    for (i, (k, v)) in pairs.iter().enumerate() {
        let sep = if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        };
        out.push(sep);
        out.push_str(&encode_component(k));
        out.push('=');
        out.push_str(&encode_component(v));
    }
    out
}

/// Percent-encodes a query component (RFC 3986 unreserved characters kept).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_rpc_status_with_permission() {
        let body = br#"{"error": {"code": 403, "message": "Permission 'gkehub.memberships.create' denied", "status": "PERMISSION_DENIED",
          "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED", "domain": "gkehub.googleapis.com",
                       "metadata": {"permission": "gkehub.memberships.create", "resource": "projects/p"}}]}}"#;
        let e = ApiError::from_response(403, body);
        assert_eq!(e.status, "PERMISSION_DENIED");
        assert!(e.is_permission_denied());
        assert!(!e.is_service_disabled());
        assert_eq!(e.permission().as_deref(), Some("gkehub.memberships.create"));
        assert_eq!(e.reasons(), vec!["IAM_PERMISSION_DENIED"]);
        let coded = e.to_error();
        assert_eq!(coded.code, "ASM-E411");
        assert!(coded.hint.unwrap().contains("gkehub.memberships.create"));
    }

    #[test]
    fn parses_service_disabled() {
        let body = json!({"error": {"code": 403, "message": "GKE Hub API has not been used", "status": "PERMISSION_DENIED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED", "domain": "googleapis.com",
                         "metadata": {"service": "gkehub.googleapis.com", "consumer": "projects/1"}}]}});
        let e = ApiError::from_response(403, body.to_string().as_bytes());
        assert_eq!(
            e.service_disabled().as_deref(),
            Some("gkehub.googleapis.com")
        );
        assert!(e.is_api_not_enabled_yet());
        assert_eq!(e.to_error().code, "ASM-E412");
    }

    #[test]
    fn parses_non_json_and_missing_status() {
        let e = ApiError::from_response(503, b"upstream connect error");
        assert_eq!(e.status, "UNAVAILABLE");
        assert_eq!(e.message, "upstream connect error");
        assert!(e.is_transient());
        let e =
            ApiError::from_response(404, br#"{"error":{"code":404,"message":"Not found: x."}}"#);
        assert!(e.is_not_found());
        assert_eq!(e.status, "NOT_FOUND");
        assert_eq!(e.message, "Not found: x.");
        let e = ApiError::from_response(
            409,
            br#"{"error":{"code":409,"message":"exists","status":"ALREADY_EXISTS"}}"#,
        );
        assert!(e.is_already_exists() && !e.is_aborted());
        let e = ApiError::from_response(
            400,
            br#"{"error":{"code":400,"message":"API meshconfig.googleapis.com is not enabled","status":"FAILED_PRECONDITION"}}"#,
        );
        assert!(e.is_api_not_enabled_yet());
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            with_query(
                "http://h/x",
                &[("filter", "state:ENABLED"), ("pageSize", "200")]
            ),
            "http://h/x?filter=state%3AENABLED&pageSize=200"
        );
        assert_eq!(
            with_query("http://h/x?a=1", &[("b", "c d")]),
            "http://h/x?a=1&b=c%20d"
        );
    }

    #[test]
    fn trace_display_has_no_secrets() {
        let t = RequestTrace {
            method: "GET".into(),
            url: "http://h/v1/x".into(),
            status: Some(200),
            duration: Duration::from_millis(12),
            attempt: 2,
            error: None,
        };
        assert_eq!(t.to_string(), "GET http://h/v1/x 200 12ms (attempt 2)");
    }
}
