//! The in-cluster side of the managed data plane: a DataPlaneControl's status (its spec is
//! written by Google's controller through [`crate::member::MemberCluster`]).

use serde_json::{Value, json};

use super::KubeApiServer;
use super::util;

impl KubeApiServer {
    /// The mdp-controller reports the DataPlaneControl `name` Ready: it has observed the
    /// current generation and every proxy of the revision is at the target
    /// (`status.proxyTargetBasisPoints` = the spec's).
    pub(super) fn dataplane_ready(&self, name: &str) {
        let mut st = self.lock();
        let Some(rt) = st.type_for_kind("mesh.cloud.google.com/v1alpha1", "DataPlaneControl")
        else {
            return;
        };
        let Some(dpc) = st.get(&rt, "", name) else {
            return;
        };
        let generation = dpc
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(1));
        let target = dpc
            .pointer("/spec/proxyTargetBasisPoints")
            .and_then(Value::as_i64)
            .unwrap_or(-1);
        let subresource = if rt.has_status { "status" } else { "" };
        self.controller_update(&mut st, &rt, "", name, "mdp-controller", subresource, |d| {
            util::set_path(
                d,
                &["status"],
                json!({"state": "Ready", "observedGeneration": generation, "proxyTargetBasisPoints": target}),
            );
        });
    }
}
