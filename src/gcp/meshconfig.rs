//! Mesh Config v1alpha1 (no gcloud command; asmcli calls it with curl).

use serde_json::{Value, json};

use super::endpoints::{Endpoints, Service};
use super::http::{GcpResult, GoogleHttp};

/// meshconfig client.
#[derive(Debug, Clone)]
pub struct MeshConfigApi {
    http: GoogleHttp,
    endpoints: Endpoints,
}

impl MeshConfigApi {
    /// A client over `http` against `endpoints`.
    pub fn new(http: GoogleHttp, endpoints: Endpoints) -> Self {
        MeshConfigApi { http, endpoints }
    }

    /// `POST v1alpha1/projects/P:initialize` with `{"workloadIdentityPools": pools}` (the
    /// call replaces the pools: pass all of them every time); any 2xx is success.
    pub async fn initialize(
        &self,
        project: &str,
        workload_identity_pools: &[String],
    ) -> GcpResult<Value> {
        let url = self.endpoints.url(
            Service::MeshConfig,
            &format!("v1alpha1/projects/{project}:initialize"),
        );
        let body = if workload_identity_pools.is_empty() {
            json!({})
        } else {
            json!({"workloadIdentityPools": workload_identity_pools})
        };
        self.http.post(&url, &body, true).await
    }
}
