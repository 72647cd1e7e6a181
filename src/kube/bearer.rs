//! A refreshing bearer token for Kubernetes clients of GKE clusters: a tower layer that asks
//! a [`TokenProvider`] for the current Google access token before every request and sets
//! `Authorization` from it, so a run that outlives a token keeps working (kube-rs' own
//! `token` setting is fixed for the client's life). A request whose token the API server
//! refuses (401) is sent once more with a new token when the provider can replace it
//! ([`crate::transport::with_one_new_token`]).

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::header::{AUTHORIZATION, HeaderValue};
use http::{Request, Response, StatusCode};
use kube::client::{Body, DynBody};
use tower::util::BoxService;
use tower::{BoxError, Layer, Service, ServiceExt as _};

use crate::transport::{AccessToken, TokenProvider, with_one_new_token};

/// The service type of kube-rs' client stack (`kube::client::ClientBuilder<…>`).
pub type KubeService = BoxService<Request<Body>, Response<Box<DynBody>>, BoxError>;

/// Wraps the client stack with [`BearerService`].
#[derive(Clone, Debug)]
pub struct BearerLayer {
    provider: Arc<dyn TokenProvider>,
}

impl BearerLayer {
    pub fn new(provider: Arc<dyn TokenProvider>) -> Self {
        BearerLayer { provider }
    }
}

impl Layer<KubeService> for BearerLayer {
    type Service = KubeService;

    fn layer(&self, inner: KubeService) -> KubeService {
        BoxService::new(BearerService {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            provider: self.provider.clone(),
        })
    }
}

/// The service of [`BearerLayer`]. The inner stack is shared behind a lock held only while
/// a request is handed to it, never while its response is awaited.
#[derive(Clone)]
pub struct BearerService {
    inner: Arc<tokio::sync::Mutex<KubeService>>,
    provider: Arc<dyn TokenProvider>,
}

impl Service<Request<Body>> for BearerService {
    type Response = Response<Box<DynBody>>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness of the inner stack is awaited in `call`, after the token.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let provider = self.provider.clone();
        Box::pin(async move {
            // A second copy for sending again after a 401; a streamed body cannot be
            // repeated, so such a request gets no second token.
            let again = copy_of(&req);
            let repeatable = again.is_some();
            let mut pending = [Some(req), again].into_iter().flatten();
            with_one_new_token(
                provider.as_ref(),
                |answer: &Result<Response<Box<DynBody>>, BoxError>| {
                    repeatable
                        && answer
                            .as_ref()
                            .is_ok_and(|r| r.status() == StatusCode::UNAUTHORIZED)
                },
                |token| {
                    let req = pending.next();
                    let inner = inner.clone();
                    async move {
                        let mut req =
                            req.ok_or_else(|| BoxError::from("the request was already sent"))?;
                        authorize(&mut req, &token)?;
                        let response = {
                            let mut svc = inner.lock().await;
                            svc.ready().await?;
                            svc.call(req)
                        };
                        response.await
                    }
                },
            )
            .await
        })
    }
}

/// Sets `Authorization: Bearer TOKEN`, marked sensitive (never logged by hyper or traces).
fn authorize(req: &mut Request<Body>, token: &AccessToken) -> Result<(), BoxError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| BoxError::from("the access token is not a valid header value"))?;
    value.set_sensitive(true);
    req.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}

/// A copy of `req` (method, URI, version, headers and a buffered body), or `None` when the
/// body is a stream.
fn copy_of(req: &Request<Body>) -> Option<Request<Body>> {
    let body = req.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}
