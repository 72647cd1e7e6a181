//! The simulated Google APIs (container v1, gkehub v1/v1beta/v2, serviceusage v1,
//! cloudresourcemanager v1) behind one [`Handler`], told apart by path prefix:
//! `/container/`, `/gkehub/`, `/serviceusage/`, `/crm/`.

use std::sync::Arc;

use crate::config::FaultKind;
use crate::http::{Handler, HandlerFuture, Request, Response};
use crate::member::MemberCluster;
use crate::scenario::Scenario;

/// What the Google side knows of a simulated cluster's Kubernetes API server.
#[derive(Debug, Clone)]
pub struct ClusterEndpoint {
    pub name: String,
    /// `127.0.0.1:PORT`, as GKE's `endpoint`.
    pub endpoint: String,
    /// The sandbox CA as PEM (GKE sends it base64-encoded in `masterAuth.clusterCaCertificate`).
    pub ca_pem: String,
    /// The cluster, for the simulated servicemesh controllers.
    pub member: Arc<dyn MemberCluster>,
}

/// The Google API router and its state.
#[derive(Debug)]
pub struct GoogleApi {
    #[allow(dead_code)]
    scenario: Scenario,
}

impl GoogleApi {
    /// Builds the state of `scenario`; `token` is the only accepted access token.
    pub fn new(scenario: Scenario, _token: String, _clusters: Vec<ClusterEndpoint>) -> Arc<Self> {
        Arc::new(GoogleApi { scenario })
    }
}

impl Handler for GoogleApi {
    fn handle(self: Arc<Self>, _req: Request) -> HandlerFuture {
        Box::pin(async move { Response::json(501, &serde_json::json!({"error": {"code": 501, "status": "UNIMPLEMENTED"}})) })
    }

    fn fault_response(&self, kind: FaultKind) -> Response {
        Response::json(kind.status().unwrap_or(503), &serde_json::json!({}))
    }
}
