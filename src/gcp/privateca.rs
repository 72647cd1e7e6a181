//! Certificate Authority Service v1: the IAM policy of a CA pool
//! (https://cloud.google.com/certificate-authority-service/docs/reference/rest/v1/projects.locations.caPools).

use serde_json::json;

use super::crm::{IamPolicy, add_binding_with};
use super::endpoints::{Endpoints, Service};
use super::http::{GcpResult, GoogleHttp};

/// privateca v1 client.
#[derive(Debug, Clone)]
pub struct PrivateCaApi {
    http: GoogleHttp,
    endpoints: Endpoints,
}

impl PrivateCaApi {
    /// A client over `http` against `endpoints`.
    pub fn new(http: GoogleHttp, endpoints: Endpoints) -> Self {
        PrivateCaApi { http, endpoints }
    }

    /// `GET v1/POOL:getIamPolicy?options.requestedPolicyVersion=3` (`pool` is
    /// `projects/P/locations/L/caPools/N`).
    pub async fn get_pool_iam_policy(&self, pool: &str) -> GcpResult<IamPolicy> {
        let url = self.endpoints.url(
            Service::PrivateCa,
            &format!("v1/{pool}:getIamPolicy?options.requestedPolicyVersion=3"),
        );
        self.http.get(&url).await
    }

    /// `POST v1/POOL:setIamPolicy` with the policy (a stale etag fails with 409 ABORTED).
    pub async fn set_pool_iam_policy(
        &self,
        pool: &str,
        policy: &IamPolicy,
    ) -> GcpResult<IamPolicy> {
        let url = self
            .endpoints
            .url(Service::PrivateCa, &format!("v1/{pool}:setIamPolicy"));
        let mut policy = policy.clone();
        policy.version = 3;
        self.http
            .post(&url, &json!({"policy": policy}), false)
            .await
    }

    /// Adds `member` to `role` on `pool` (read-modify-write with the etag, redone on 409
    /// ABORTED up to `attempts` times). Returns whether a change was made.
    pub async fn add_pool_iam_binding(
        &self,
        pool: &str,
        role: &str,
        member: &str,
        attempts: u32,
    ) -> GcpResult<bool> {
        add_binding_with(
            || self.get_pool_iam_policy(pool),
            |p| async move { self.set_pool_iam_policy(pool, &p).await },
            role,
            member,
            attempts,
            self.http.retry_policy(),
        )
        .await
    }
}
