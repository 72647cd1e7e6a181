//! The simulated GKE Hub servicemesh controllers: what Google does inside member clusters,
//! through [`MemberCluster`] only.
//!
//! - CRD installer: once the servicemesh feature is ACTIVE and a membership is READY, after
//!   `timing.crd_install` it applies `controlplanerevisions.mesh.cloud.google.com` to the
//!   membership's cluster.
//! - Fleet management: when a membership's spec asks for `MANAGEMENT_AUTOMATIC`, its
//!   control plane goes PROVISIONING; once the CRD is in, the controller applies Namespace
//!   `istio-system` (if missing) and the ControlPlaneRevision of the cluster's channel, waits
//!   for the cluster to report `ProvisioningFinished=True`, and moves the membership to
//!   ACTIVE / REVISION_READY.
//!
//! Tasks hold only a weak reference to the API, so a stopped sandbox stops them.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::GoogleApi;
use super::state::{ControlPlane, CrdState, State};
use crate::member::MemberCluster;

/// The CRD GKE Hub installs (the golden exchange's request body).
const CRD: &str = include_str!("controlplanerevision-crd.json");
const CRD_NAME: &str = "controlplanerevisions.mesh.cloud.google.com";

/// How often a waiting controller looks again.
const POLL: Duration = Duration::from_millis(100);

fn crd() -> Value {
    serde_json::from_str(CRD).unwrap_or(Value::Null)
}

fn namespace() -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}})
}

fn control_plane_revision(revision: &str, channel: &str) -> Value {
    json!({
        "apiVersion": "mesh.cloud.google.com/v1beta1",
        "kind": "ControlPlaneRevision",
        "metadata": {"name": revision, "namespace": "istio-system"},
        "spec": {"type": "managed_service", "channel": channel},
    })
}

/// Whether a ControlPlaneRevision reports `ProvisioningFinished=True`.
fn provisioning_finished(cpr: &Value) -> bool {
    cpr.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conds| {
            conds.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("ProvisioningFinished")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn member_of(st: &State, cluster: &str) -> Option<Arc<dyn MemberCluster>> {
    st.cluster_by_name(cluster).and_then(|c| c.member.clone())
}

/// A cluster to set up at start, and the (revision, channel) of its ready control plane.
type InitialWork = (Arc<dyn MemberCluster>, Option<(String, String)>);

/// Applies what the `installed` scenario already has in its clusters: the CRD, the
/// namespace and a ready ControlPlaneRevision, at once.
pub fn apply_initial(api: &Arc<GoogleApi>) {
    let work: Vec<InitialWork> = {
        let st = api.lock();
        st.clusters
            .iter()
            .filter(|c| c.crd == CrdState::Installed)
            .filter_map(|c| {
                let member = c.member.clone()?;
                let active = st.memberships.values().any(|m| {
                    m.cluster.as_deref() == Some(c.name.as_str())
                        && matches!(m.control_plane, ControlPlane::Active { .. })
                });
                let (rev, ch) = c.managed_revision();
                Some((member, active.then(|| (rev.to_string(), ch.to_string()))))
            })
            .collect()
    };
    for (member, cpr) in work {
        if let Err(e) = member.apply_object(crd()) {
            tracing::warn!("installing the ControlPlaneRevision CRD: {e:#}");
        }
        member.settle(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            CRD_NAME,
        );
        if let Some((rev, ch)) = cpr {
            if let Err(e) = member.apply_object(namespace()) {
                tracing::warn!("creating istio-system: {e:#}");
            }
            // Status is not writable through apply (the API server drops it); the cluster's
            // controller provisions the revision, here at once instead of after its delay.
            match member.apply_object(control_plane_revision(&rev, &ch)) {
                Ok(_) => member.settle(
                    "mesh.cloud.google.com/v1beta1",
                    "ControlPlaneRevision",
                    Some("istio-system"),
                    &rev,
                ),
                Err(e) => tracing::warn!("applying the ControlPlaneRevision: {e:#}"),
            }
        }
    }
}

/// Applies a custom resource, retrying while its CRD is not Established yet (for about
/// two seconds).
async fn apply_when_served(member: &dyn MemberCluster, object: Value) {
    let mut last = None;
    for _ in 0..200 {
        match member.apply_object(object.clone()) {
            Ok(_) => return,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Some(e) = last {
        tracing::warn!("applying {}: {e:#}", object["kind"]);
    }
}

fn wants_automatic(spec: Option<&Value>) -> bool {
    spec.is_some_and(|s| {
        s.pointer("/mesh/management").and_then(Value::as_str) == Some("MANAGEMENT_AUTOMATIC")
            || s.pointer("/mesh/controlPlane").and_then(Value::as_str) == Some("AUTOMATIC")
    })
}

/// Looks at the state and starts whatever controller work it calls for. Cheap; called
/// after every request and every operation timer.
pub fn reconcile(api: &Arc<GoogleApi>) {
    let mut installs = Vec::new();
    let mut provisions = Vec::new();
    {
        let mut st = api.lock();
        let st = &mut *st;
        let feature_on = st
            .features
            .get("servicemesh")
            .is_some_and(|f| matches!(f.state, "ACTIVE" | "UPDATING"));
        let ready: Vec<(String, String, String)> = st
            .memberships
            .values()
            .filter(|m| m.state == "READY" || m.state == "UPDATING")
            .filter_map(|m| Some((m.location.clone(), m.id.clone(), m.cluster.clone()?)))
            .collect();
        for (location, id, cluster) in ready {
            if feature_on
                && let Some(c) = st.clusters.iter_mut().find(|c| c.name == cluster)
                && c.crd == CrdState::Absent
            {
                c.crd = CrdState::Scheduled;
                installs.push(cluster.clone());
            }
            let automatic = wants_automatic(st.membership_specs.get(&(
                "servicemesh".to_string(),
                location.clone(),
                id.clone(),
            )));
            let Some(m) = st.memberships.get_mut(&(location.clone(), id.clone())) else {
                continue;
            };
            match (&m.control_plane, automatic) {
                (ControlPlane::Off, true) => {
                    m.control_plane = ControlPlane::Provisioning {
                        since: SystemTime::now(),
                    };
                    provisions.push((location, id, cluster));
                }
                (ControlPlane::Provisioning { .. } | ControlPlane::Active { .. }, false) => {
                    m.control_plane = ControlPlane::Off;
                }
                _ => {}
            }
        }
    }
    if installs.is_empty() && provisions.is_empty() {
        return;
    }
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let delay = api.lock().timing.crd_install;
    for cluster in installs {
        tokio::spawn(install_crd(api.this.clone(), cluster, delay));
    }
    for (location, id, cluster) in provisions {
        tokio::spawn(provision(api.this.clone(), location, id, cluster));
    }
}

async fn install_crd(api: Weak<GoogleApi>, cluster: String, delay: Duration) {
    tokio::time::sleep(delay).await;
    let Some(api) = api.upgrade() else { return };
    let member = member_of(&api.lock(), &cluster);
    let installed = match member {
        Some(member) => match member.apply_object(crd()) {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!("installing the ControlPlaneRevision CRD into {cluster}: {e:#}");
                false
            }
        },
        None => true,
    };
    let mut st = api.lock();
    if let Some(c) = st.clusters.iter_mut().find(|c| c.name == cluster) {
        // A failed apply goes back to Absent so that the next reconcile tries again.
        c.crd = if installed {
            CrdState::Installed
        } else {
            CrdState::Absent
        };
    }
}

/// Whether the membership still wants its control plane provisioned.
fn still_provisioning(api: &GoogleApi, key: &(String, String)) -> bool {
    api.lock()
        .memberships
        .get(key)
        .is_some_and(|m| matches!(m.control_plane, ControlPlane::Provisioning { .. }))
}

async fn provision(weak: Weak<GoogleApi>, location: String, id: String, cluster: String) {
    let key = (location, id);
    // 1. Wait for the CRD.
    loop {
        let Some(api) = weak.upgrade() else { return };
        if !still_provisioning(&api, &key) {
            return;
        }
        if api
            .lock()
            .cluster_by_name(&cluster)
            .is_some_and(|c| c.crd == CrdState::Installed)
        {
            break;
        }
        drop(api);
        tokio::time::sleep(POLL).await;
    }
    // 2. Namespace and ControlPlaneRevision.
    let (member, revision, channel) = {
        let Some(api) = weak.upgrade() else { return };
        let st = api.lock();
        let Some(c) = st.cluster_by_name(&cluster) else {
            return;
        };
        let (rev, ch) = c.managed_revision();
        (c.member.clone(), rev.to_string(), ch.to_string())
    };
    if let Some(member) = &member {
        if member
            .get_object("v1", "Namespace", None, "istio-system")
            .is_none()
            && let Err(e) = member.apply_object(namespace())
        {
            tracing::warn!("creating istio-system in {cluster}: {e:#}");
        }
        apply_when_served(&**member, control_plane_revision(&revision, &channel)).await;
    }
    // 3. Wait for the cluster to report the revision provisioned.
    loop {
        let Some(api) = weak.upgrade() else { return };
        if !still_provisioning(&api, &key) {
            return;
        }
        let ready = member.as_ref().is_none_or(|m| {
            m.get_object(
                "mesh.cloud.google.com/v1beta1",
                "ControlPlaneRevision",
                Some("istio-system"),
                &revision,
            )
            .is_some_and(|cpr| provisioning_finished(&cpr))
        });
        if ready {
            let mut st = api.lock();
            if let Some(m) = st.memberships.get_mut(&key)
                && matches!(m.control_plane, ControlPlane::Provisioning { .. })
            {
                m.control_plane = ControlPlane::Active {
                    revision: revision.clone(),
                    since: SystemTime::now(),
                };
            }
            return;
        }
        drop(api);
        tokio::time::sleep(POLL).await;
    }
}
