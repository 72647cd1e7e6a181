//! `-v` request traces for Kubernetes calls (ARCHITECTURE.md, "Talking to Kubernetes"): a tower layer on the kube-rs
//! client stack reporting method, URL (cluster URL without userinfo, path and query),
//! status and duration of every request (watches when the response head arrives) as a
//! [`RequestTrace`] — never headers, bodies or tokens.
//!
//! It is the outermost layer of the client, so it sees the request as kube-rs builds it
//! (path and query, before the cluster URL and the credentials are added) and the status
//! after kube-rs' own retries.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response, Uri};
use tower::{Layer, Service};

use crate::transport::{RequestTrace, TraceFn};

/// Wraps a service with [`TraceService`], reporting to a [`TraceFn`].
#[derive(Clone)]
pub struct TraceLayer {
    trace: TraceFn,
    base: Arc<str>,
}

impl TraceLayer {
    /// Traces with the bare path and query as URL.
    pub fn new(trace: TraceFn) -> Self {
        TraceLayer {
            trace,
            base: Arc::from(""),
        }
    }

    /// Prefixes each traced path with `cluster_url` (scheme, host, port and path prefix;
    /// userinfo dropped), so traces of several clusters tell them apart.
    pub fn with_base(mut self, cluster_url: &Uri) -> Self {
        self.base = Arc::from(base_url(cluster_url));
        self
    }
}

/// `scheme://host[:port][/prefix]` of `uri`: never userinfo, query or a trailing slash.
pub fn base_url(uri: &Uri) -> String {
    let mut out = String::new();
    if let Some(host) = uri.host() {
        out.push_str(uri.scheme_str().unwrap_or("https"));
        out.push_str("://");
        out.push_str(host);
        if let Some(port) = uri.port_u16() {
            out.push_str(&format!(":{port}"));
        }
    }
    out.push_str(uri.path().trim_end_matches('/'));
    out
}

impl<S> Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> TraceService<S> {
        TraceService {
            inner,
            trace: self.trace.clone(),
            base: self.base.clone(),
        }
    }
}

/// The service of [`TraceLayer`].
#[derive(Clone)]
pub struct TraceService<S> {
    inner: S,
    trace: TraceFn,
    base: Arc<str>,
}

/// The path and query of `uri`: never the scheme, host or userinfo.
pub fn trace_target(uri: &Uri) -> String {
    uri.path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".to_string())
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TraceService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let method = req.method().to_string();
        let url = format!("{}{}", self.base, trace_target(req.uri()));
        let trace = self.trace.clone();
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            // Error text is left out: it may carry an auth plugin's output.
            let t = RequestTrace {
                method,
                url,
                status: result.as_ref().ok().map(|r| r.status().as_u16()),
                duration: started.elapsed(),
                attempt: 1,
                error: None,
            };
            tracing::debug!(target: "asm::kube::http", "{t}");
            trace(&t);
            result
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use tower::{ServiceBuilder, ServiceExt as _, service_fn};

    use super::*;

    fn recorder() -> (TraceFn, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let f: TraceFn = Arc::new(move |t: &RequestTrace| l.lock().unwrap().push(t.to_string()));
        (f, lines)
    }

    #[tokio::test]
    async fn traces_method_path_query_and_status_but_no_secrets() {
        let (f, lines) = recorder();
        let svc = ServiceBuilder::new()
            .layer(TraceLayer::new(f))
            .service(service_fn(|req: Request<String>| async move {
                let status = if req.uri().path().ends_with("/missing") {
                    404
                } else {
                    200
                };
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(status)
                        .header("x-secret", "s3cret-header")
                        .body("s3cret-body".to_string())
                        .unwrap(),
                )
            }));
        let req = Request::get("https://user:pw@cluster.example:443/api/v1/namespaces?limit=5")
            .header("authorization", "Bearer s3cret-token")
            .body("s3cret-request".to_string())
            .unwrap();
        let res = svc.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
        let req = Request::patch("/api/v1/namespaces/missing")
            .body(String::new())
            .unwrap();
        assert_eq!(svc.oneshot(req).await.unwrap().status(), 404);

        let lines = lines.lock().unwrap().clone();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("GET /api/v1/namespaces?limit=5 200 "),
            "{lines:?}"
        );
        assert!(lines[0].ends_with("ms"), "{lines:?}");
        assert!(
            lines[1].starts_with("PATCH /api/v1/namespaces/missing 404 "),
            "{lines:?}"
        );
        for l in &lines {
            for secret in ["s3cret", "Bearer", "user", "pw@", "cluster.example"] {
                assert!(!l.contains(secret), "{secret} in {l}");
            }
        }
    }

    #[tokio::test]
    async fn failed_requests_are_traced_without_error_text() {
        let (f, lines) = recorder();
        let svc = TraceLayer::new(f).layer(service_fn(|_req: Request<()>| async move {
            Err::<Response<()>, _>(std::io::Error::other("exec plugin said s3cret"))
        }));
        let req = Request::get("/api?watch=true").body(()).unwrap();
        assert!(svc.oneshot(req).await.is_err());
        let lines = lines.lock().unwrap().clone();
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("GET /api?watch=true failed "),
            "{lines:?}"
        );
        assert!(!lines[0].contains("s3cret"));
    }

    #[tokio::test]
    async fn base_url_prefixes_paths_without_userinfo() {
        let (f, lines) = recorder();
        let base = Uri::from_static("https://u:p@10.0.0.1:6443/k8s/clusters/c-1/");
        let svc =
            TraceLayer::new(f)
                .with_base(&base)
                .layer(service_fn(|_req: Request<()>| async move {
                    Ok::<_, Infallible>(Response::new(()))
                }));
        let req = Request::get("/api/v1/pods?watch=true").body(()).unwrap();
        svc.oneshot(req).await.unwrap();
        let lines = lines.lock().unwrap().clone();
        assert!(
            lines[0].starts_with(
                "GET https://10.0.0.1:6443/k8s/clusters/c-1/api/v1/pods?watch=true 200 "
            ),
            "{lines:?}"
        );
        assert_eq!(
            base_url(&Uri::from_static("https://[::1]/")),
            "https://[::1]"
        );
        assert_eq!(
            base_url(&Uri::from_static("http://user@h:80")),
            "http://h:80"
        );
    }

    #[test]
    fn target_without_path_is_root() {
        assert_eq!(trace_target(&Uri::from_static("https://h:1")), "/");
        assert_eq!(trace_target(&Uri::from_static("/a/b?c=d")), "/a/b?c=d");
    }
}
