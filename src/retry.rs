//! The one retry and backoff policy of asm, for Google APIs and Kubernetes API servers alike.
//!
//! A failure is classified by what it is, never by its message text: the HTTP status, the
//! Google error `status` (`google.rpc.Code` name), the Kubernetes `Status.reason`, or the kind
//! of connection failure found in the error's source chain. Three verdicts
//! ([`Verdict`]), after https://google.aip.dev/194 and the Kubernetes API conventions
//! (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md):
//! - the request was not processed (no connection made; 429 / RESOURCE_EXHAUSTED; 503 /
//!   UNAVAILABLE; Kubernetes `TooManyRequests`, `ServiceUnavailable`): repeat it, after the
//!   server's `Retry-After` when it gave one;
//! - it may have been processed (500, 502, 504; the connection was lost after the request was
//!   sent): repeat it only when repeating is harmless — reads, server-side apply, and writes
//!   that are safe to repeat (creates with a client-chosen ID, writes guarded by a fingerprint
//!   or etag, whose callers then check what a repeat answers);
//! - anything else: repeating the same request cannot help. ABORTED and stale fingerprints
//!   are not retried here: the caller re-reads and re-plans the write (see
//!   [`is_stale_write`]).
//!
//! A 401 is `Stop` here: repeating the same token cannot help. A token from a source that can
//! mint another (a service-account key) is replaced once per attempt in the token layer
//! ([`crate::transport::with_one_new_token`]), below this policy.
//!
//! Delays are exponential with jitter ([`backon`]), capped; the number of attempts is bounded.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::gcp::http::{ApiError, GcpError, GcpResult};
use crate::kube::{KubeError, KubeResult};

/// When and how often to retry a failed request.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts per request (1 = no retries).
    pub max_attempts: u32,
    /// Delay before the first retry (doubles per retry).
    pub initial_backoff: Duration,
    /// Upper bound of any backoff.
    pub max_backoff: Duration,
    /// Upper bound on an honoured `Retry-After`.
    pub max_retry_after: Duration,
    /// Jitter (each delay grows by a random part of itself); off = deterministic (tests).
    pub jitter: bool,
    /// Attempts for "API not enabled yet" after enabling it ([`retry_until_api_enabled`]).
    pub enablement_attempts: u32,
    /// First delay for those attempts (grows ×1.75, like gcloud).
    pub enablement_initial: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::standard()
    }
}

impl RetryPolicy {
    /// Production defaults: 5 attempts, 500 ms doubling to 10 s, jitter.
    pub fn standard() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
            jitter: true,
            enablement_attempts: 6,
            enablement_initial: Duration::from_secs(1),
        }
    }

    /// Tests and benchmarks: same classification, millisecond delays.
    pub fn fast() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            max_retry_after: Duration::from_millis(50),
            jitter: true,
            enablement_attempts: 6,
            enablement_initial: Duration::from_millis(10),
        }
    }

    /// Calls to a Kubernetes API server: 5 attempts, 100 ms doubling to 2 s, jitter.
    pub fn kubernetes() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            ..RetryPolicy::standard()
        }
    }

    /// Waiting out a GKE cluster busy with another operation (GKE runs one at a time per
    /// cluster): 500 ms doubling to 10 s, as many tries as the deadline allows.
    pub fn gke_busy() -> Self {
        RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            ..RetryPolicy::standard()
        }
    }

    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            enablement_attempts: 1,
            ..RetryPolicy::fast()
        }
    }

    /// The backoff schedule of this policy.
    pub fn backoff(&self) -> ExponentialBuilder {
        let b = ExponentialBuilder::new()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize);
        if self.jitter { b.with_jitter() } else { b }
    }

    /// The schedule for "API not enabled yet": ×1.75 from `enablement_initial`, at most 30 s.
    fn enablement_backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.enablement_initial)
            .with_max_delay(Duration::from_secs(30))
            .with_factor(1.75)
            .with_max_times(self.enablement_attempts.saturating_sub(1) as usize)
    }

    /// The delay to use instead of `planned` when the server asked for `retry_after`
    /// (capped by `max_retry_after`).
    pub fn honour(&self, planned: Duration, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.min(self.max_retry_after),
            None => planned,
        }
    }
}

/// What a failure says about repeating the same request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The request was not processed: repeat it (after `after`, when the server said).
    Retry { after: Option<Duration> },
    /// The request may have been processed: repeat it only if repeating is harmless.
    RetryIfIdempotent,
    /// Repeating the same request cannot help.
    Stop,
}

impl Verdict {
    /// Whether a request (`idempotent`: safe to repeat) may be sent again.
    pub fn allows(self, idempotent: bool) -> bool {
        match self {
            Verdict::Retry { .. } => true,
            Verdict::RetryIfIdempotent => idempotent,
            Verdict::Stop => false,
        }
    }

    /// The server's requested delay, if any.
    pub fn retry_after(self) -> Option<Duration> {
        match self {
            Verdict::Retry { after } => after,
            _ => None,
        }
    }
}

/// How a request failed without an HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No connection was made: the request was never sent.
    NotSent,
    /// The connection was lost or timed out after the request may have been sent.
    Lost,
    /// Anything else (TLS, a bad URL, decoding): repeating does not help.
    Other,
}

impl Transport {
    /// The verdict for this kind of failure.
    pub fn verdict(self) -> Verdict {
        match self {
            Transport::NotSent => Verdict::Retry { after: None },
            Transport::Lost => Verdict::RetryIfIdempotent,
            Transport::Other => Verdict::Stop,
        }
    }
}

/// Classifies a failure without an HTTP answer by the errors in its source chain: an I/O
/// error's kind, or hyper's own predicates for a connection closed mid-exchange.
pub fn classify_transport(err: &(dyn std::error::Error + 'static)) -> Transport {
    let mut lost = false;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::ConnectionRefused | K::AddrNotAvailable | K::NotConnected => {
                    return Transport::NotSent;
                }
                K::ConnectionReset
                | K::ConnectionAborted
                | K::BrokenPipe
                | K::UnexpectedEof
                | K::TimedOut => lost = true,
                _ => {}
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_closed() || h.is_canceled() || h.is_timeout())
        {
            lost = true;
        }
        if let Some(r) = e.downcast_ref::<reqwest::Error>() {
            if r.is_connect() {
                return Transport::NotSent;
            }
            if r.is_timeout() || r.is_request() || r.is_body() {
                lost = true;
            }
        }
        current = e.source();
    }
    if lost {
        Transport::Lost
    } else {
        Transport::Other
    }
}

/// Classifies a Google API error answer by HTTP status and `google.rpc.Code` name.
pub fn classify_google_status(http_status: u16, status: &str) -> Verdict {
    match (http_status, status) {
        (429, _) | (_, "RESOURCE_EXHAUSTED") | (503, _) | (_, "UNAVAILABLE") => {
            Verdict::Retry { after: None }
        }
        (500 | 502 | 504, _) | (_, "INTERNAL" | "DEADLINE_EXCEEDED") => Verdict::RetryIfIdempotent,
        _ => Verdict::Stop,
    }
}

/// Classifies a Google API failure; honours `Retry-After` (header or `RetryInfo`).
pub fn classify_google(err: &GcpError) -> Verdict {
    match err {
        GcpError::Api(e) => match classify_google_status(e.http_status, &e.status) {
            Verdict::Retry { .. } => Verdict::Retry {
                after: e.retry_after,
            },
            v => v,
        },
        GcpError::Transport { connect: true, .. } => Verdict::Retry { after: None },
        GcpError::Transport { .. } => Verdict::RetryIfIdempotent,
        _ => Verdict::Stop,
    }
}

/// Classifies a Kubernetes failure by `Status.code` and `Status.reason`, or by transport kind.
pub fn classify_kube(err: &KubeError) -> Verdict {
    match err {
        KubeError::Api { status, .. } => {
            let after = status
                .details
                .as_ref()
                .map(|d| d.retry_after_seconds)
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(u64::from(s)));
            classify_kube_status(status.code, &status.reason, after)
        }
        KubeError::Transport { kind, .. } => kind.verdict(),
        _ => Verdict::Stop,
    }
}

/// Classifies a Kubernetes `Status` (`reason` as in k8s.io/apimachinery's `StatusReason`).
pub fn classify_kube_status(code: u16, reason: &str, after: Option<Duration>) -> Verdict {
    match (code, reason) {
        (429, _) | (_, "TooManyRequests") | (503, _) | (_, "ServiceUnavailable") => {
            Verdict::Retry { after }
        }
        // The server gave up waiting (etcd, an admission webhook): it may have been applied.
        (_, "ServerTimeout" | "Timeout" | "InternalError") | (500 | 502 | 504, _) => {
            Verdict::RetryIfIdempotent
        }
        _ => Verdict::Stop,
    }
}

/// Whether a guarded write failed because what it was based on is stale (409 ABORTED, or
/// 400 FAILED_PRECONDITION: a label fingerprint that no longer matches, or GKE busy with
/// another operation on the cluster): read again and re-plan the write.
pub fn is_stale_write(err: &GcpError) -> bool {
    err.api()
        .is_some_and(|e| e.status == "ABORTED" || e.status == "FAILED_PRECONDITION")
}

/// The verdict for a whole read-modify-write cycle of a guarded write: a stale write is
/// redone from a new read; anything else as any Google call.
pub fn classify_guarded_write(err: &GcpError) -> Verdict {
    if is_stale_write(err) {
        Verdict::Retry { after: None }
    } else {
        classify_google(err)
    }
}

/// Runs `call` until it succeeds, fails in a way `classify` says not to repeat (given
/// `idempotent`), or the policy's attempts run out. Sleeps the policy's backoff, or the
/// server's `Retry-After` when given.
pub async fn run<T, E, F, Fut>(
    policy: &RetryPolicy,
    idempotent: bool,
    classify: impl Fn(&E) -> Verdict,
    call: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    call.retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .when(|e| classify(e).allows(idempotent))
        .adjust(|e, planned| planned.map(|d| policy.honour(d, classify(e).retry_after())))
        .notify(|e, d| tracing::debug!(target: "asm::retry", "retrying in {d:?}: {e}"))
        .await
}

/// Like [`run`], but gives up (with the last error) when the next try would start after
/// `deadline`.
pub async fn run_until<T, E, F, Fut>(
    policy: &RetryPolicy,
    deadline: tokio::time::Instant,
    idempotent: bool,
    classify: impl Fn(&E) -> Verdict,
    call: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    call.retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .when(|e| classify(e).allows(idempotent))
        .adjust(|e, planned| {
            planned
                .map(|d| policy.honour(d, classify(e).retry_after()))
                .filter(|d| tokio::time::Instant::now() + *d < deadline)
        })
        .notify(|e, d| tracing::debug!(target: "asm::retry", "retrying in {d:?}: {e}"))
        .await
}

/// A Google API call under `policy`.
pub async fn google<T, F, Fut>(policy: &RetryPolicy, idempotent: bool, call: F) -> GcpResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = GcpResult<T>>,
{
    run(policy, idempotent, classify_google, call).await
}

/// An idempotent Kubernetes call (a read or a server-side apply) under `policy`.
pub async fn kube<T, F, Fut>(policy: &RetryPolicy, call: F) -> KubeResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = KubeResult<T>>,
{
    run(policy, true, classify_kube, call).await
}

/// A read-modify-write cycle (`cycle` reads, decides and writes), redone from the read while
/// the write is stale ([`is_stale_write`]) or its answer was lost, up to the policy's attempts.
pub async fn read_modify_write<T, F, Fut>(policy: &RetryPolicy, cycle: F) -> GcpResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = GcpResult<T>>,
{
    run(policy, true, classify_guarded_write, cycle).await
}

/// Runs `call` again while it fails with "API not enabled yet" (right after enabling an API,
/// Google needs a moment to propagate): up to `policy.enablement_attempts` attempts, sleeping
/// `enablement_initial · 1.75^n` (at most 30 s) in between.
pub async fn retry_until_api_enabled<T, F, Fut>(policy: &RetryPolicy, call: F) -> GcpResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = GcpResult<T>>,
{
    call.retry(policy.enablement_backoff())
        .sleep(tokio::time::sleep)
        .when(GcpError::is_api_not_enabled_yet)
        .notify(|e, d| tracing::debug!(target: "asm::retry", "API not enabled yet, retrying in {d:?}: {e}"))
        .await
}

/// Parses a `Retry-After` header value in seconds (HTTP dates are ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// The delay a `google.rpc.RetryInfo` detail asks for (`retryDelay`, e.g. `"1.5s"`).
pub fn retry_info_delay(err: &ApiError) -> Option<Duration> {
    err.details
        .as_array()?
        .iter()
        .filter(|d| {
            d.get("@type")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| d.get("retryDelay").and_then(serde_json::Value::as_str))
        .and_then(|s| s.strip_suffix('s'))
        .and_then(parse_retry_after)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn api(http: u16, status: &str, after: Option<Duration>) -> GcpError {
        let mut e = ApiError::from_response(
            http,
            serde_json::json!({"error": {"code": http, "status": status, "message": "m"}})
                .to_string()
                .as_bytes(),
        );
        e.retry_after = after;
        GcpError::from(e)
    }

    fn kube_status(code: u16, reason: &str, retry_after_seconds: u32) -> KubeError {
        let mut status = ::kube::core::Status::failure("m", reason).with_code(code);
        if retry_after_seconds > 0 {
            status.details = Some(
                serde_json::from_value(
                    serde_json::json!({"retryAfterSeconds": retry_after_seconds}),
                )
                .unwrap(),
            );
        }
        KubeError::Api {
            what: "get x".into(),
            status: Box::new(status),
        }
    }

    #[test]
    fn google_unavailable_and_exhausted_are_retried_with_retry_after() {
        let after = Some(Duration::from_secs(3));
        assert_eq!(
            classify_google(&api(429, "RESOURCE_EXHAUSTED", after)),
            Verdict::Retry { after }
        );
        assert_eq!(
            classify_google(&api(503, "UNAVAILABLE", None)),
            Verdict::Retry { after: None }
        );
        // The status name decides even under an unusual HTTP code.
        assert!(classify_google(&api(400, "RESOURCE_EXHAUSTED", None)).allows(false));
    }

    #[test]
    fn google_internal_errors_are_retried_only_when_idempotent() {
        for (code, status) in [
            (500, "INTERNAL"),
            (502, "UNKNOWN"),
            (504, "DEADLINE_EXCEEDED"),
        ] {
            let v = classify_google(&api(code, status, None));
            assert_eq!(v, Verdict::RetryIfIdempotent, "{code} {status}");
            assert!(v.allows(true) && !v.allows(false));
        }
    }

    #[test]
    fn google_client_errors_and_aborted_are_not_retried_as_requests() {
        for (code, status) in [
            (400, "INVALID_ARGUMENT"),
            (400, "FAILED_PRECONDITION"),
            (401, "UNAUTHENTICATED"),
            (403, "PERMISSION_DENIED"),
            (404, "NOT_FOUND"),
            (409, "ALREADY_EXISTS"),
            (409, "ABORTED"),
        ] {
            assert_eq!(
                classify_google(&api(code, status, None)),
                Verdict::Stop,
                "{code} {status}"
            );
        }
        assert!(is_stale_write(&api(409, "ABORTED", None)));
        assert!(is_stale_write(&api(400, "FAILED_PRECONDITION", None)));
        assert!(!is_stale_write(&api(409, "ALREADY_EXISTS", None)));
    }

    #[test]
    fn google_transport_failures_depend_on_whether_the_request_was_sent() {
        let t = |connect| GcpError::Transport {
            request: "POST u".into(),
            message: "m".into(),
            connect,
        };
        assert!(classify_google(&t(true)).allows(false));
        assert!(!classify_google(&t(false)).allows(false));
        assert!(classify_google(&t(false)).allows(true));
    }

    #[test]
    fn kube_status_reasons_classify() {
        assert_eq!(
            classify_kube(&kube_status(429, "TooManyRequests", 2)),
            Verdict::Retry {
                after: Some(Duration::from_secs(2))
            }
        );
        assert!(classify_kube(&kube_status(503, "ServiceUnavailable", 0)).allows(false));
        assert_eq!(
            classify_kube(&kube_status(504, "Timeout", 0)),
            Verdict::RetryIfIdempotent
        );
        assert_eq!(
            classify_kube(&kube_status(500, "InternalError", 0)),
            Verdict::RetryIfIdempotent
        );
        for (code, reason) in [
            (404, "NotFound"),
            (409, "Conflict"),
            (409, "AlreadyExists"),
            (403, "Forbidden"),
            (422, "Invalid"),
            (401, "Unauthorized"),
        ] {
            assert_eq!(
                classify_kube(&kube_status(code, reason, 0)),
                Verdict::Stop,
                "{code} {reason}"
            );
        }
    }

    #[test]
    fn transport_kind_comes_from_the_io_error_in_the_chain() {
        #[derive(Debug)]
        struct Wrap(std::io::Error);
        impl std::fmt::Display for Wrap {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("wrapped")
            }
        }
        impl std::error::Error for Wrap {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let io = |k| Wrap(std::io::Error::new(k, "x"));
        use std::io::ErrorKind as K;
        assert_eq!(
            classify_transport(&io(K::ConnectionRefused)),
            Transport::NotSent
        );
        assert_eq!(classify_transport(&io(K::ConnectionReset)), Transport::Lost);
        assert_eq!(classify_transport(&io(K::UnexpectedEof)), Transport::Lost);
        assert_eq!(classify_transport(&io(K::InvalidData)), Transport::Other);
    }

    #[test]
    fn retry_info_and_header_values_parse() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        let e = ApiError::from_response(
            429,
            serde_json::json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "q",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}})
            .to_string()
            .as_bytes(),
        );
        assert_eq!(retry_info_delay(&e), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn backoff_is_capped_and_bounded_in_attempts() {
        let p = RetryPolicy {
            jitter: false,
            ..RetryPolicy::standard()
        };
        let delays: Vec<Duration> = backon::BackoffBuilder::build(p.backoff()).collect();
        assert_eq!(delays.len(), 4);
        assert_eq!(delays[0], Duration::from_millis(500));
        assert_eq!(delays[1], Duration::from_secs(1));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(10)));
        assert_eq!(
            p.honour(Duration::from_secs(1), Some(Duration::from_secs(99))),
            Duration::from_secs(30)
        );
    }

    #[tokio::test]
    async fn run_repeats_only_what_the_verdict_allows() {
        let p = RetryPolicy::fast();
        let calls = AtomicU32::new(0);
        let out: GcpResult<u32> = google(&p, false, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(api(500, "INTERNAL", None))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        calls.store(0, Ordering::SeqCst);
        let out: GcpResult<u32> = google(&p, false, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(api(503, "UNAVAILABLE", None))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(out.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        calls.store(0, Ordering::SeqCst);
        let out: GcpResult<u32> = google(&p, true, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(api(503, "UNAVAILABLE", None))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), p.max_attempts);
    }

    #[tokio::test]
    async fn enablement_retry_stops_on_success() {
        let policy = RetryPolicy::fast();
        let calls = AtomicU32::new(0);
        let out: GcpResult<u32> = retry_until_api_enabled(&policy, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(GcpError::from(ApiError::from_response(
                    400,
                    br#"{"error":{"code":400,"status":"FAILED_PRECONDITION","message":"API is not enabled"}}"#,
                )))
            } else {
                Ok(5)
            }
        })
        .await;
        assert_eq!(out.unwrap(), 5);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
