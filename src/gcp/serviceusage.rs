//! Service Usage v1: which APIs are enabled, and enabling them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::endpoints::{Endpoints, Service as Api};
use super::http::{GcpError, GcpResult, GoogleHttp, with_query};
use super::lro::Operation;
use crate::error::Error;

/// Most service ids one `batchEnable` accepts.
pub const BATCH_ENABLE_MAX: usize = 20;

/// A service of a project (`projects/NUMBER/services/ID`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    pub name: String,
    pub parent: String,
    /// `ENABLED`, `DISABLED`, `STATE_UNSPECIFIED`.
    pub state: String,
    pub config: Option<ServiceConfig>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `config` of a [`Service`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceConfig {
    pub name: String,
    pub title: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Service {
    /// The service id, e.g. `gkehub.googleapis.com`.
    pub fn id(&self) -> &str {
        match &self.config {
            Some(c) if !c.name.is_empty() => &c.name,
            _ => self.name.rsplit('/').next().unwrap_or_default(),
        }
    }

    /// `state == ENABLED`.
    pub fn is_enabled(&self) -> bool {
        self.state == "ENABLED"
    }
}

/// serviceusage v1 client.
#[derive(Debug, Clone)]
pub struct ServiceUsageApi {
    http: GoogleHttp,
    endpoints: Endpoints,
}

impl ServiceUsageApi {
    /// A client over `http` against `endpoints`.
    pub fn new(http: GoogleHttp, endpoints: Endpoints) -> Self {
        ServiceUsageApi { http, endpoints }
    }

    /// `GET v1/projects/P/services?filter=state:ENABLED&pageSize=200`, following pages.
    pub async fn list_enabled(&self, project: &str) -> GcpResult<Vec<Service>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default)]
            services: Vec<Service>,
            #[serde(default)]
            next_page_token: String,
        }
        let base = self.endpoints.url(
            Api::ServiceUsage,
            &format!("v1/projects/{project}/services"),
        );
        let mut out = Vec::new();
        let mut token = String::new();
        for _ in 0..1000 {
            let mut pairs = vec![("filter", "state:ENABLED"), ("pageSize", "200")];
            if !token.is_empty() {
                pairs.push(("pageToken", token.as_str()));
            }
            let page: Page = self.http.get(&with_query(&base, &pairs)).await?;
            out.extend(page.services);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        Ok(out)
    }

    /// The ids of the enabled services.
    pub async fn enabled_ids(&self, project: &str) -> GcpResult<BTreeSet<String>> {
        Ok(self
            .list_enabled(project)
            .await?
            .iter()
            .filter(|s| s.is_enabled())
            .map(|s| s.id().to_string())
            .collect())
    }

    /// `GET v1/projects/P/services/ID`.
    pub async fn get(&self, project: &str, service_id: &str) -> GcpResult<Service> {
        let url = self.endpoints.url(
            Api::ServiceUsage,
            &format!("v1/projects/{project}/services/{service_id}"),
        );
        self.http.get(&url).await
    }

    /// `POST v1/projects/P/services:batchEnable {"serviceIds": ids}` (≤ 20 ids).
    pub async fn batch_enable(
        &self,
        project: &str,
        service_ids: &[String],
    ) -> GcpResult<Operation> {
        if service_ids.is_empty() || service_ids.len() > BATCH_ENABLE_MAX {
            return Err(GcpError::Coded(Error::apply(
                "ASM-E420",
                format!(
                    "batchEnable takes 1 to {BATCH_ENABLE_MAX} services, got {}",
                    service_ids.len()
                ),
            )));
        }
        let url = self.endpoints.url(
            Api::ServiceUsage,
            &format!("v1/projects/{project}/services:batchEnable"),
        );
        let op: Value = self
            .http
            .post(&url, &json!({"serviceIds": service_ids}), true)
            .await?;
        Ok(Operation::ServiceUsage { op })
    }

    /// `POST v1/projects/P/services/ID:enable {}`.
    pub async fn enable(&self, project: &str, service_id: &str) -> GcpResult<Operation> {
        let url = self.endpoints.url(
            Api::ServiceUsage,
            &format!("v1/projects/{project}/services/{service_id}:enable"),
        );
        let op: Value = self.http.post(&url, &json!({}), true).await?;
        Ok(Operation::ServiceUsage { op })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn service_id() {
        let s: Service = serde_json::from_value(serde_json::json!({
            "name": "projects/1/services/gkehub.googleapis.com", "state": "ENABLED",
            "config": {"name": "gkehub.googleapis.com", "title": "GKE Hub API"}}))
        .unwrap();
        assert_eq!(s.id(), "gkehub.googleapis.com");
        assert!(s.is_enabled());
        let s: Service = serde_json::from_value(serde_json::json!({
            "name": "projects/1/services/mesh.googleapis.com", "state": "DISABLED"}))
        .unwrap();
        assert_eq!(s.id(), "mesh.googleapis.com");
        assert!(!s.is_enabled());
    }
}
