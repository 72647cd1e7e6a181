//! The seam between the simulated Google controllers and the simulated clusters: what
//! GKE Hub's servicemesh controller does inside a member cluster.

use serde_json::Value;

/// A simulated cluster's Kubernetes API, as the simulated Google controllers use it.
/// Changes made through it are the simulator's own: they are not in the request log, but
/// they bump resourceVersions and reach watchers like any other change.
pub trait MemberCluster: Send + Sync + std::fmt::Debug {
    /// Creates the object, or replaces the fields it names (a controller's apply).
    fn apply_object(&self, object: Value) -> anyhow::Result<Value>;

    /// Reads an object; `namespace` is `None` for cluster-scoped kinds.
    fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value>;

    /// Deletes an object if it exists; `namespace` is `None` for cluster-scoped kinds.
    fn delete_object(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str);

    /// Does at once what the cluster's controllers would do to this object after their
    /// delays (a CRD becomes Established, a ControlPlaneRevision ProvisioningFinished, a
    /// DataPlaneControl Ready), so a
    /// scenario can start in a settled state.
    fn settle(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str);
}
