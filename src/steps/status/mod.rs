//! `asm status`: what one or more clusters run, as a pure function from what was observed
//! ([`ClusterObserved`], read by [`observe`]) to a report ([`ClusterReport`]), rendered by
//! [`render`] as text or JSON (`asm.status/v1`).
//!
//! Which revision a namespace or pod resolves to is decided from the injection webhooks
//! that are actually installed: the first Istio injector (configurations by name, webhooks
//! in order, as the apiserver calls mutating webhooks) whose `namespaceSelector` and
//! `objectSelector` match. The selectors carry Istio's precedence (`istio-injection` beats
//! `istio.io/rev` on the namespace, the namespace label beats the pod label; see
//! https://istio.io/latest/docs/setup/additional-setup/sidecar-injection/#controlling-the-injection-policy).

pub mod observe;
pub mod render;
pub mod report;

use serde_json::Value;

/// Everything read of one targeted cluster. Kubernetes objects are kept as JSON as the API
/// server returned them (Secrets reduced to name, cluster annotation and data keys).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterObserved {
    /// `PROJECT/LOCATION/NAME`.
    pub cluster: String,
    /// The GKE cluster (`Ok(None)`: not found).
    pub gke: Result<Option<GkeInfo>, String>,
    /// The fleet membership of the cluster (`Ok(None)`: not registered).
    pub membership: Result<Option<MembershipInfo>, String>,
    /// The Kubernetes API's objects.
    pub kube: Result<KubeSnapshot, String>,
}

/// What GKE says about the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GkeInfo {
    pub status: Option<String>,
    /// `releaseChannel.channel`.
    pub channel: Option<String>,
    pub master_version: Option<String>,
}

/// A fleet membership and the servicemesh feature's view of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipInfo {
    /// `projects/P/locations/L/memberships/ID`.
    pub name: String,
    /// `state.code`.
    pub state: Option<String>,
    /// The v2 membership feature `servicemesh` (`Ok(None)`: absent).
    pub feature: Result<Option<MeshFeatureInfo>, String>,
}

/// `spec.servicemesh.management` and `state.servicemesh` of a membership feature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeshFeatureInfo {
    pub management: Option<String>,
    pub control_plane: Option<ManagementInfo>,
    pub data_plane: Option<ManagementInfo>,
}

/// `controlPlaneManagement` / `dataPlaneManagement`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagementInfo {
    pub state: String,
    /// `details[].code`.
    pub codes: Vec<String>,
}

/// The objects of one cluster `asm status` looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KubeSnapshot {
    /// ControlPlaneRevisions in istio-system.
    pub control_plane_revisions: Vec<Value>,
    /// Deployments labelled `app=istiod` in istio-system.
    pub istiods: Vec<Value>,
    /// Every MutatingWebhookConfiguration.
    pub webhooks: Vec<Value>,
    /// Every DataPlaneControl (none where the kind is not served).
    pub dataplane_controls: Vec<Value>,
    pub namespaces: Vec<Value>,
    pub pods: Vec<Value>,
    /// Secrets labelled `istio/multiCluster=true` in istio-system, reduced to
    /// `{"name", "cluster", "data_keys"}`: no value of theirs is ever kept.
    pub remote_secrets: Vec<Value>,
}
