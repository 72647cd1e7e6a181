//! A refreshing bearer token for Kubernetes clients of GKE clusters: a tower layer that asks
//! a [`TokenProvider`] for the current Google access token before every request and sets
//! `Authorization` from it, so a run that outlives a token keeps working (kube-rs' own
//! `token` setting is fixed for the client's life).

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::header::{AUTHORIZATION, HeaderValue};
use http::{Request, Response};
use kube::client::{Body, DynBody};
use tower::util::BoxService;
use tower::{BoxError, Layer, Service, ServiceExt as _};

use crate::transport::TokenProvider;

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

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let provider = self.provider.clone();
        Box::pin(async move {
            let token = provider.token().await.map_err(BoxError::from)?;
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| BoxError::from("the access token is not a valid header value"))?;
            value.set_sensitive(true);
            req.headers_mut().insert(AUTHORIZATION, value);
            let response = {
                let mut svc = inner.lock().await;
                svc.ready().await?;
                svc.call(req)
            };
            response.await
        })
    }
}
