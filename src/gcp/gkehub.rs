//! GKE Hub (fleet): memberships (v1), the `servicemesh` feature (v1) and per-membership
//! features (v2), plus pure helpers reading `membershipStates`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::endpoints::{Endpoints, Service};
use super::http::{GcpResult, GoogleHttp, with_query};
use super::lro::Operation;

/// The fleet feature id of Cloud Service Mesh.
pub const SERVICEMESH: &str = "servicemesh";

/// A fleet membership.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Membership {
    /// `projects/P/locations/L/memberships/M`.
    pub name: String,
    pub endpoint: Option<MembershipEndpoint>,
    pub authority: Option<Authority>,
    pub state: Option<MembershipState>,
    pub unique_id: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `endpoint` of a [`Membership`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MembershipEndpoint {
    pub gke_cluster: Option<GkeClusterRef>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `endpoint.gkeCluster`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GkeClusterRef {
    pub resource_link: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `authority` (workload identity).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Authority {
    pub issuer: String,
    pub workload_identity_pool: String,
    pub identity_provider: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `state` of a [`Membership`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MembershipState {
    /// `CREATING`, `READY`, `DELETING`, `UPDATING`, …
    pub code: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Membership {
    /// The membership id (last segment of `name`).
    pub fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or_default()
    }

    /// The location segment of `name`.
    pub fn location(&self) -> &str {
        segment_after(&self.name, "locations").unwrap_or_default()
    }

    /// `endpoint.gkeCluster.resourceLink`, if any.
    pub fn gke_resource_link(&self) -> Option<&str> {
        self.endpoint
            .as_ref()
            .and_then(|e| e.gke_cluster.as_ref())
            .map(|g| g.resource_link.as_str())
            .filter(|l| !l.is_empty())
    }

    /// `authority.issuer`, if set.
    pub fn issuer(&self) -> Option<&str> {
        self.authority
            .as_ref()
            .map(|a| a.issuer.as_str())
            .filter(|i| !i.is_empty())
    }

    /// Whether this membership points at cluster `location/name` of a project known by any
    /// of `projects` (id and/or number).
    pub fn is_for_cluster(&self, projects: &[&str], location: &str, name: &str) -> bool {
        self.gke_resource_link()
            .is_some_and(|l| cluster_link_matches(l, projects, location, name))
    }
}

/// The value following `key/` in a resource path.
fn segment_after<'a>(path: &'a str, key: &str) -> Option<&'a str> {
    let mut it = path.split('/');
    while let Some(s) = it.next() {
        if s == key {
            return it.next();
        }
    }
    None
}

/// Whether a GKE resource link (`//container.googleapis.com/projects/P/locations/L/clusters/N`,
/// any host or prefix, `zones/` accepted) names cluster `location/name` in one of `projects`.
pub fn cluster_link_matches(link: &str, projects: &[&str], location: &str, name: &str) -> bool {
    let Some(idx) = link.find("projects/") else {
        return false;
    };
    let parts: Vec<&str> = link[idx..].trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        ["projects", p, "locations" | "zones", l, "clusters", n] => {
            projects.contains(p) && *l == location && *n == name
        }
        _ => false,
    }
}

/// `//container.googleapis.com/projects/P/locations/L/clusters/N`.
pub fn gke_resource_link(project: &str, location: &str, name: &str) -> String {
    format!("//container.googleapis.com/projects/{project}/locations/{location}/clusters/{name}")
}

/// `https://container.googleapis.com/v1/projects/P/locations/L/clusters/N` (the
/// workload-identity issuer of a GKE cluster).
pub fn gke_issuer(project: &str, location: &str, name: &str) -> String {
    format!(
        "https://container.googleapis.com/v1/projects/{project}/locations/{location}/clusters/{name}"
    )
}

/// The first membership in `memberships` for cluster `location/name` (see
/// [`Membership::is_for_cluster`]).
pub fn find_membership_for_cluster<'a>(
    memberships: &'a [Membership],
    projects: &[&str],
    location: &str,
    name: &str,
) -> Option<&'a Membership> {
    memberships
        .iter()
        .find(|m| m.is_for_cluster(projects, location, name))
}

/// A fleet feature (v1), e.g. `servicemesh`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Feature {
    pub name: String,
    pub resource_state: Option<ResourceState>,
    /// Keyed `projects/NUMBER/locations/L/memberships/M`.
    pub membership_specs: BTreeMap<String, Value>,
    /// Keyed `projects/NUMBER/locations/L/memberships/M`.
    pub membership_states: BTreeMap<String, MembershipFeatureState>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `resourceState`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceState {
    /// `ENABLING`, `ACTIVE`, `DISABLING`, …
    pub state: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One membership's state in a feature (v1 `membershipStates[k]`, v2 `state`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MembershipFeatureState {
    pub servicemesh: Option<ServiceMeshState>,
    pub state: Option<FeatureStateCode>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `state` code of a feature state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FeatureStateCode {
    /// `OK`, `WARNING`, `ERROR`, `CODE_UNSPECIFIED`.
    pub code: String,
    pub description: String,
    pub update_time: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `servicemesh` membership state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceMeshState {
    pub control_plane_management: Option<ManagementState>,
    pub data_plane_management: Option<ManagementState>,
    pub conditions: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `controlPlaneManagement` / `dataPlaneManagement`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ManagementState {
    /// `DISABLED`, `PROVISIONING`, `ACTIVE`, `FAILED_PRECONDITION`, `STALLED`, …
    pub state: String,
    pub details: Vec<StateDetail>,
    pub implementation: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One `{code, details}` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StateDetail {
    pub code: String,
    pub details: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ManagementState {
    /// Whether any detail code is `code` (e.g. `REVISION_READY`).
    pub fn has_code(&self, code: &str) -> bool {
        self.details.iter().any(|d| d.code == code)
    }

    /// `state (CODE: details; …)` for messages.
    pub fn summary(&self) -> String {
        let details: Vec<String> = self
            .details
            .iter()
            .map(|d| format!("{}: {}", d.code, d.details))
            .collect();
        if details.is_empty() {
            self.state.clone()
        } else {
            format!("{} ({})", self.state, details.join("; "))
        }
    }
}

impl Feature {
    /// `resourceState.state == ACTIVE`.
    pub fn is_active(&self) -> bool {
        self.resource_state
            .as_ref()
            .is_some_and(|r| r.state == "ACTIVE")
    }

    /// The membership state for membership `location/id` (keys carry the project number,
    /// so only `locations/L/memberships/M` is compared).
    pub fn membership_state(
        &self,
        location: &str,
        membership_id: &str,
    ) -> Option<&MembershipFeatureState> {
        let suffix = format!("/locations/{location}/memberships/{membership_id}");
        self.membership_states
            .iter()
            .find(|(k, _)| k.ends_with(&suffix))
            .map(|(_, v)| v)
    }

    /// The membership spec for membership `location/id` (same key rule).
    pub fn membership_spec(&self, location: &str, membership_id: &str) -> Option<&Value> {
        let suffix = format!("/locations/{location}/memberships/{membership_id}");
        self.membership_specs
            .iter()
            .find(|(k, _)| k.ends_with(&suffix))
            .map(|(_, v)| v)
    }
}

impl MembershipFeatureState {
    /// `servicemesh.controlPlaneManagement`.
    pub fn control_plane(&self) -> Option<&ManagementState> {
        self.servicemesh
            .as_ref()
            .and_then(|s| s.control_plane_management.as_ref())
    }

    /// `servicemesh.dataPlaneManagement`.
    pub fn data_plane(&self) -> Option<&ManagementState> {
        self.servicemesh
            .as_ref()
            .and_then(|s| s.data_plane_management.as_ref())
    }
}

/// Managed control plane status derived from a membership state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlPlaneStatus {
    /// No state reported yet.
    Unknown,
    /// Being provisioned (state and details for messages).
    Provisioning(String),
    /// `ACTIVE` with `REVISION_READY`.
    Ready(String),
    /// `FAILED_PRECONDITION`, `STALLED`, `NEEDS_ATTENTION`, `DEGRADED`.
    Failed(String),
}

/// Decides the control plane status (asmcli's test: `REVISION_READY` in the details).
pub fn control_plane_status(state: Option<&MembershipFeatureState>) -> ControlPlaneStatus {
    let Some(cp) = state.and_then(MembershipFeatureState::control_plane) else {
        return ControlPlaneStatus::Unknown;
    };
    let summary = cp.summary();
    if cp.has_code("REVISION_READY") && (cp.state == "ACTIVE" || cp.state.is_empty()) {
        return ControlPlaneStatus::Ready(summary);
    }
    match cp.state.as_str() {
        "FAILED_PRECONDITION" | "STALLED" | "NEEDS_ATTENTION" | "DEGRADED" => {
            ControlPlaneStatus::Failed(summary)
        }
        "" | "LIFECYCLE_STATE_UNSPECIFIED" => ControlPlaneStatus::Unknown,
        _ => ControlPlaneStatus::Provisioning(summary),
    }
}

/// A v2 membership feature (`projects/P/locations/L/memberships/M/features/F`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MembershipFeature {
    pub name: String,
    /// `{"servicemesh": {"management": …}, "origin": …}`.
    pub spec: Map<String, Value>,
    pub state: Option<MembershipFeatureState>,
    pub lifecycle_state: Option<ResourceState>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MembershipFeature {
    /// `spec.servicemesh.management`, if set.
    pub fn management(&self) -> Option<&str> {
        self.spec
            .get(SERVICEMESH)
            .and_then(|s| s.get("management"))
            .and_then(Value::as_str)
    }
}

/// gkehub client (v1 memberships and features, v2 membership features).
#[derive(Debug, Clone)]
pub struct GkeHubApi {
    http: GoogleHttp,
    endpoints: Endpoints,
}

impl GkeHubApi {
    /// A client over `http` against `endpoints`.
    pub fn new(http: GoogleHttp, endpoints: Endpoints) -> Self {
        GkeHubApi { http, endpoints }
    }

    fn url(&self, path: &str) -> String {
        self.endpoints.url(Service::GkeHub, path)
    }

    /// `GET v1/projects/P/locations/-/memberships`, following pages.
    pub async fn list_memberships(&self, project: &str) -> GcpResult<Vec<Membership>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default)]
            resources: Vec<Membership>,
            #[serde(default)]
            next_page_token: String,
        }
        let base = self.url(&format!("v1/projects/{project}/locations/-/memberships"));
        let mut out = Vec::new();
        let mut token = String::new();
        for _ in 0..1000 {
            let url = if token.is_empty() {
                base.clone()
            } else {
                with_query(&base, &[("pageToken", &token)])
            };
            let page: Page = self.http.get(&url).await?;
            out.extend(page.resources);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        Ok(out)
    }

    /// `GET v1/projects/P/locations/L/memberships/M`; `None` on 404.
    pub async fn get_membership(
        &self,
        project: &str,
        location: &str,
        id: &str,
    ) -> GcpResult<Option<Membership>> {
        self.http
            .get_opt(&self.url(&format!(
                "v1/projects/{project}/locations/{location}/memberships/{id}"
            )))
            .await
    }

    /// `POST v1/projects/P/locations/L/memberships?membershipId=ID` with the GKE
    /// `resourceLink` and, for workload identity, `authority.issuer`. 409 ALREADY_EXISTS is
    /// returned as an error for the caller to handle. The ID is chosen by the client, so the
    /// request is safe to repeat after a lost answer: a repeat of a create that was made
    /// answers ALREADY_EXISTS.
    pub async fn create_membership(
        &self,
        project: &str,
        location: &str,
        id: &str,
        resource_link: &str,
        issuer: Option<&str>,
    ) -> GcpResult<Operation> {
        let url = with_query(
            &self.url(&format!(
                "v1/projects/{project}/locations/{location}/memberships"
            )),
            &[("membershipId", id)],
        );
        let mut body = json!({"endpoint": {"gkeCluster": {"resourceLink": resource_link}}});
        if let Some(issuer) = issuer {
            body["authority"] = json!({"issuer": issuer});
        }
        let op: Value = self.http.post(&url, &body, true).await?;
        Ok(hub_op("v1", op))
    }

    /// `GET v1/projects/P/locations/global/features/F?returnPartialSuccess=true`; `None` on 404.
    pub async fn get_feature(&self, project: &str, feature: &str) -> GcpResult<Option<Feature>> {
        let url = with_query(
            &self.url(&format!(
                "v1/projects/{project}/locations/global/features/{feature}"
            )),
            &[("returnPartialSuccess", "true")],
        );
        self.http.get_opt(&url).await
    }

    /// `POST v1/projects/P/locations/global/features?featureId=F` with `body` (`{}` for
    /// servicemesh). 409 ALREADY_EXISTS means already enabled.
    pub async fn create_feature(
        &self,
        project: &str,
        feature: &str,
        body: &Value,
    ) -> GcpResult<Operation> {
        let url = with_query(
            &self.url(&format!("v1/projects/{project}/locations/global/features")),
            &[("featureId", feature)],
        );
        // A client-chosen ID: a repeat of a create that was made answers ALREADY_EXISTS.
        let op: Value = self.http.post(&url, body, true).await?;
        Ok(hub_op("v1", op))
    }

    /// `PATCH v1/projects/P/locations/global/features/F?updateMask=MASK` with `body`.
    pub async fn patch_feature(
        &self,
        project: &str,
        feature: &str,
        update_mask: &str,
        body: &Value,
    ) -> GcpResult<Operation> {
        let url = with_query(
            &self.url(&format!(
                "v1/projects/{project}/locations/global/features/{feature}"
            )),
            &[("updateMask", update_mask)],
        );
        let op: Value = self.http.patch(&url, body, true).await?;
        Ok(hub_op("v1", op))
    }

    fn membership_feature_url(
        &self,
        project: &str,
        location: &str,
        membership: &str,
        feature: &str,
    ) -> String {
        self.url(&format!(
            "v2/projects/{project}/locations/{location}/memberships/{membership}/features/{feature}"
        ))
    }

    /// `GET v2/…/memberships/M/features/F`; `None` on 404.
    pub async fn get_membership_feature(
        &self,
        project: &str,
        location: &str,
        membership: &str,
        feature: &str,
    ) -> GcpResult<Option<MembershipFeature>> {
        self.http
            .get_opt(&self.membership_feature_url(project, location, membership, feature))
            .await
    }

    /// `PATCH v2/…/memberships/M/features/F?allowMissing=true&updateMask=spec` with
    /// `{"spec": spec}` (creates it if absent). E.g. spec
    /// `{"servicemesh": {"management": "MANAGEMENT_AUTOMATIC"}}`.
    pub async fn patch_membership_feature(
        &self,
        project: &str,
        location: &str,
        membership: &str,
        feature: &str,
        spec: &Value,
    ) -> GcpResult<Operation> {
        let url = with_query(
            &self.membership_feature_url(project, location, membership, feature),
            &[("allowMissing", "true"), ("updateMask", "spec")],
        );
        let op: Value = self.http.patch(&url, &json!({"spec": spec}), true).await?;
        Ok(hub_op("v2", op))
    }
}

fn hub_op(version: &str, op: Value) -> Operation {
    Operation::Hub {
        version: version.to_string(),
        op,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn link_matching() {
        let l = "//container.googleapis.com/projects/my-proj/locations/us-central1-c/clusters/asm";
        assert!(cluster_link_matches(
            l,
            &["my-proj"],
            "us-central1-c",
            "asm"
        ));
        assert!(cluster_link_matches(
            l,
            &["123", "my-proj"],
            "us-central1-c",
            "asm"
        ));
        assert!(!cluster_link_matches(l, &["123"], "us-central1-c", "asm"));
        assert!(!cluster_link_matches(l, &["my-proj"], "us-central1", "asm"));
        assert!(!cluster_link_matches(
            l,
            &["my-proj"],
            "us-central1-c",
            "asm2"
        ));
        let l = "//127.0.0.1:8089/container/projects/123/zones/us-central1-c/clusters/asm";
        assert!(cluster_link_matches(l, &["123"], "us-central1-c", "asm"));
        assert!(!cluster_link_matches("garbage", &["p"], "l", "n"));
        assert_eq!(
            gke_resource_link("p", "l", "n"),
            "//container.googleapis.com/projects/p/locations/l/clusters/n"
        );
        assert_eq!(
            gke_issuer("p", "l", "n"),
            "https://container.googleapis.com/v1/projects/p/locations/l/clusters/n"
        );
    }

    #[test]
    fn membership_helpers() {
        let ms: Vec<Membership> = serde_json::from_value(json!([
            {"name": "projects/p/locations/us-central1/memberships/other",
             "endpoint": {"gkeCluster": {"resourceLink": "//container.googleapis.com/projects/p/locations/us-central1-c/clusters/other"}}},
            {"name": "projects/p/locations/us-central1/memberships/asm-cluster",
             "endpoint": {"gkeCluster": {"resourceLink": "//container.googleapis.com/projects/123/locations/us-central1-c/clusters/asm-cluster"}},
             "authority": {"issuer": "https://x"}, "state": {"code": "READY"}, "labels": {"a": "b"}}
        ])).unwrap();
        let m = find_membership_for_cluster(&ms, &["p", "123"], "us-central1-c", "asm-cluster")
            .unwrap();
        assert_eq!(m.id(), "asm-cluster");
        assert_eq!(m.location(), "us-central1");
        assert_eq!(m.issuer(), Some("https://x"));
        assert_eq!(serde_json::to_value(m).unwrap()["labels"]["a"], "b");
        assert!(find_membership_for_cluster(&ms, &["p"], "us-central1-c", "nope").is_none());
    }

    #[test]
    fn control_plane_states() {
        let f: Feature = serde_json::from_value(json!({
            "name": "projects/p/locations/global/features/servicemesh",
            "resourceState": {"state": "ACTIVE"},
            "membershipStates": {
                "projects/123/locations/us-central1/memberships/asm-cluster": {
                    "servicemesh": {"controlPlaneManagement": {"details": [{"code": "REVISION_READY", "details": "Ready: asm-managed"}], "implementation": "TRAFFIC_DIRECTOR", "state": "ACTIVE"}},
                    "state": {"code": "OK"}},
                "projects/123/locations/us-central1/memberships/b": {
                    "servicemesh": {"controlPlaneManagement": {"details": [{"code": "PROVISIONING", "details": "Service is provisioning."}], "state": "PROVISIONING"}}},
                "projects/123/locations/us-central1/memberships/c": {
                    "servicemesh": {"controlPlaneManagement": {"details": [{"code": "X", "details": "bad"}], "state": "STALLED"}}}
            }
        })).unwrap();
        assert!(f.is_active());
        let s = f.membership_state("us-central1", "asm-cluster");
        assert_eq!(
            control_plane_status(s),
            ControlPlaneStatus::Ready("ACTIVE (REVISION_READY: Ready: asm-managed)".into())
        );
        assert!(matches!(
            control_plane_status(f.membership_state("us-central1", "b")),
            ControlPlaneStatus::Provisioning(_)
        ));
        assert!(matches!(
            control_plane_status(f.membership_state("us-central1", "c")),
            ControlPlaneStatus::Failed(_)
        ));
        assert_eq!(
            control_plane_status(f.membership_state("us-central1", "zzz")),
            ControlPlaneStatus::Unknown
        );
        assert_eq!(control_plane_status(None), ControlPlaneStatus::Unknown);
    }

    #[test]
    fn membership_feature_management() {
        let mf: MembershipFeature = serde_json::from_value(json!({
            "name": "projects/p/locations/l/memberships/m/features/servicemesh",
            "spec": {"servicemesh": {"management": "MANAGEMENT_AUTOMATIC"}},
            "lifecycleState": {"state": "ACTIVE"}}))
        .unwrap();
        assert_eq!(mf.management(), Some("MANAGEMENT_AUTOMATIC"));
    }
}
