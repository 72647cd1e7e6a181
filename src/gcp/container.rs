//! GKE (container v1): clusters get/list, resource labels, workload identity.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::endpoints::{Endpoints, Service};
use super::http::{GcpResult, GoogleHttp};
use super::lro::Operation;

/// A GKE cluster: the fields asm reads; everything else is kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Cluster {
    pub name: String,
    /// Zone or region.
    pub location: String,
    pub self_link: String,
    /// `RUNNING`, `PROVISIONING`, …
    pub status: String,
    /// Host or IP (optionally `host:port`) of the API server, without scheme.
    pub endpoint: String,
    pub current_master_version: String,
    pub master_auth: Option<MasterAuth>,
    pub resource_labels: BTreeMap<String, String>,
    pub label_fingerprint: String,
    pub workload_identity_config: Option<WorkloadIdentityConfig>,
    pub release_channel: Option<ReleaseChannel>,
    pub fleet: Option<ClusterFleet>,
    pub autopilot: Option<Autopilot>,
    pub mesh_certificates: Option<MeshCertificates>,
    pub node_pools: Vec<NodePool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `masterAuth`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MasterAuth {
    /// Base64 of the PEM CA bundle.
    pub cluster_ca_certificate: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `workloadIdentityConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadIdentityConfig {
    pub workload_pool: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `releaseChannel`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReleaseChannel {
    /// `RAPID`, `REGULAR`, `STABLE`, `EXTENDED`, `UNSPECIFIED`.
    pub channel: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `fleet` (the cluster's fleet membership, when registered through GKE).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterFleet {
    pub project: String,
    pub membership: String,
    pub pre_registered: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `autopilot`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Autopilot {
    pub enabled: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `meshCertificates`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MeshCertificates {
    pub enable_certificates: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A node pool (`config` kept raw).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodePool {
    pub name: String,
    pub status: String,
    pub version: String,
    pub initial_node_count: Option<i64>,
    pub config: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Cluster {
    /// The workload identity pool, if workload identity is enabled.
    pub fn workload_pool(&self) -> Option<&str> {
        self.workload_identity_config
            .as_ref()
            .map(|w| w.workload_pool.as_str())
            .filter(|p| !p.is_empty())
    }

    /// `https://ENDPOINT` (no trailing slash).
    pub fn server_url(&self) -> String {
        format!("https://{}", self.endpoint.trim_end_matches('/'))
    }

    /// The release channel name, if enrolled.
    pub fn channel(&self) -> Option<&str> {
        self.release_channel
            .as_ref()
            .map(|c| c.channel.as_str())
            .filter(|c| !c.is_empty() && *c != "UNSPECIFIED")
    }

    /// The region of the cluster's location (`us-central1-c` → `us-central1`).
    pub fn region(&self) -> &str {
        region_of(&self.location)
    }
}

/// The region of a zone or region name: `us-central1-c` → `us-central1`,
/// `us-central1` → `us-central1`.
pub fn region_of(location: &str) -> &str {
    let parts: Vec<&str> = location.split('-').collect();
    match parts.last() {
        Some(last)
            if parts.len() >= 3
                && last.len() == 1
                && last.chars().all(|c| c.is_ascii_lowercase()) =>
        {
            &location[..location.len() - 2]
        }
        _ => location,
    }
}

/// Whether `location` is a zone (not a region).
pub fn is_zone(location: &str) -> bool {
    region_of(location) != location
}

/// container v1 client.
#[derive(Debug, Clone)]
pub struct ContainerApi {
    http: GoogleHttp,
    endpoints: Endpoints,
}

impl ContainerApi {
    /// A client over `http` against `endpoints`.
    pub fn new(http: GoogleHttp, endpoints: Endpoints) -> Self {
        ContainerApi { http, endpoints }
    }

    fn cluster_url(&self, project: &str, location: &str, name: &str) -> String {
        self.endpoints.url(
            Service::Container,
            &format!("v1/projects/{project}/locations/{location}/clusters/{name}"),
        )
    }

    /// `GET v1/projects/P/locations/L/clusters/N`.
    pub async fn get_cluster(
        &self,
        project: &str,
        location: &str,
        name: &str,
    ) -> GcpResult<Cluster> {
        self.http
            .get(&self.cluster_url(project, location, name))
            .await
    }

    /// Like [`ContainerApi::get_cluster`], `None` on 404.
    pub async fn get_cluster_opt(
        &self,
        project: &str,
        location: &str,
        name: &str,
    ) -> GcpResult<Option<Cluster>> {
        self.http
            .get_opt(&self.cluster_url(project, location, name))
            .await
    }

    /// `GET v1/projects/P/locations/{L or -}/clusters`.
    pub async fn list_clusters(
        &self,
        project: &str,
        location: Option<&str>,
    ) -> GcpResult<Vec<Cluster>> {
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            clusters: Vec<Cluster>,
        }
        let loc = location.unwrap_or("-");
        let url = self.endpoints.url(
            Service::Container,
            &format!("v1/projects/{project}/locations/{loc}/clusters"),
        );
        let list: List = self.http.get(&url).await?;
        Ok(list.clusters)
    }

    /// `POST …/clusters/N:setResourceLabels` with the **whole** label map (the API replaces
    /// it) and the fingerprint from the last GET. Returns the GKE operation.
    pub async fn set_resource_labels(
        &self,
        project: &str,
        location: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        label_fingerprint: &str,
    ) -> GcpResult<Operation> {
        let url = format!(
            "{}:setResourceLabels",
            self.cluster_url(project, location, name)
        );
        let body = json!({
            "name": format!("projects/{project}/locations/{location}/clusters/{name}"),
            "resourceLabels": labels,
            "labelFingerprint": label_fingerprint,
        });
        // Guarded by the fingerprint: a repeat of a write that was made fails with
        // FAILED_PRECONDITION, and the caller re-reads the labels.
        let op: Value = self.http.post(&url, &body, true).await?;
        Ok(self.op(project, location, op))
    }

    /// `PUT …/clusters/N` with `update.desiredWorkloadIdentityConfig.workloadPool`.
    pub async fn set_workload_pool(
        &self,
        project: &str,
        location: &str,
        name: &str,
        workload_pool: &str,
    ) -> GcpResult<Operation> {
        self.update_cluster(
            project,
            location,
            name,
            json!({"desiredWorkloadIdentityConfig": {"workloadPool": workload_pool}}),
        )
        .await
    }

    /// `PUT …/clusters/N` with `{"update": update}` (one `desired*` field per call).
    pub async fn update_cluster(
        &self,
        project: &str,
        location: &str,
        name: &str,
        update: Value,
    ) -> GcpResult<Operation> {
        let body = json!({
            "name": format!("projects/{project}/locations/{location}/clusters/{name}"),
            "update": update,
        });
        let op: Value = self
            .http
            .put(&self.cluster_url(project, location, name), &body, false)
            .await?;
        Ok(self.op(project, location, op))
    }

    fn op(&self, project: &str, location: &str, op: Value) -> Operation {
        Operation::Gke {
            project: project.to_string(),
            location: location.to_string(),
            op,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        assert_eq!(region_of("us-central1-c"), "us-central1");
        assert_eq!(region_of("us-central1"), "us-central1");
        assert_eq!(region_of("europe-west4-a"), "europe-west4");
        assert_eq!(region_of("global"), "global");
        assert!(is_zone("asia-east1-b"));
        assert!(!is_zone("asia-east1"));
    }

    #[test]
    fn cluster_roundtrip_keeps_unknown_fields() {
        let raw = serde_json::json!({
            "name": "c", "location": "us-central1-c", "endpoint": "127.0.0.1:6443",
            "masterAuth": {"clusterCaCertificate": "QUJD", "clientCertificate": ""},
            "resourceLabels": {"a": "b"}, "labelFingerprint": "f1",
            "workloadIdentityConfig": {"workloadPool": "p.svc.id.goog"},
            "releaseChannel": {"channel": "REGULAR"},
            "network": "default", "nodePools": [{"name": "np", "config": {"machineType": "e2"}, "autoscaling": {}}]
        });
        let c: Cluster = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(c.workload_pool(), Some("p.svc.id.goog"));
        assert_eq!(c.server_url(), "https://127.0.0.1:6443");
        assert_eq!(c.channel(), Some("REGULAR"));
        assert_eq!(c.region(), "us-central1");
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["network"], "default");
        assert_eq!(back["masterAuth"]["clientCertificate"], "");
        assert_eq!(back["nodePools"][0]["autoscaling"], serde_json::json!({}));
    }
}
