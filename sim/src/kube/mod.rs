//! A simulated Kubernetes API server (one per cluster), shaped like the golden exchanges
//! recorded from kube-apiserver v1.32.6.

use std::sync::Arc;

use serde_json::Value;

use crate::config::{FaultKind, Timing};
use crate::http::{Handler, HandlerFuture, Request, Response};
use crate::member::MemberCluster;
use crate::scenario::ClusterSpec;

/// One cluster's API server and its state.
#[derive(Debug)]
pub struct KubeApiServer {
    #[allow(dead_code)]
    name: String,
}

impl KubeApiServer {
    /// A fresh cluster: `ca_pem` is the sandbox CA (token Secrets' `ca.crt`), `google_token`
    /// the sandbox access token (accepted as an admin credential, as GKE accepts Google OAuth
    /// tokens). Must be called inside a tokio runtime (controllers run as tasks).
    pub fn new(cluster: &ClusterSpec, _ca_pem: String, _google_token: String, _timing: Timing) -> Arc<Self> {
        Arc::new(KubeApiServer { name: cluster.name.clone() })
    }
}

impl Handler for KubeApiServer {
    fn handle(self: Arc<Self>, _req: Request) -> HandlerFuture {
        Box::pin(async move { Response::text(404, "text/plain; charset=utf-8", "404 page not found\n") })
    }

    fn fault_response(&self, kind: FaultKind) -> Response {
        Response::json(kind.status().unwrap_or(503), &serde_json::json!({}))
    }
}

impl MemberCluster for KubeApiServer {
    fn apply_object(&self, object: Value) -> anyhow::Result<Value> {
        Ok(object)
    }

    fn get_object(&self, _api_version: &str, _kind: &str, _namespace: Option<&str>, _name: &str) -> Option<Value> {
        None
    }
}
