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
//! - Membership object: a cluster with a READY membership holds the cluster-scoped
//!   `memberships.hub.gke.io/membership` (CRD and object), which installers read to learn
//!   the fleet it belongs to; it goes when the membership goes.
//! - Managed data plane: on a RAPID or REGULAR cluster with the servicemesh feature on,
//!   each provisioned managed revision gets a `DataPlaneControl` (cluster-scoped, named
//!   after the revision) with the revision's proxy version; the cluster reports it Ready
//!   after `timing.mdp_ready`
//!   (https://cloud.google.com/service-mesh/docs/managed/provision-managed-anthos-service-mesh).
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

const MEMBERSHIP_CRD: &str = include_str!("membership-crd.json");
const MEMBERSHIP_CRD_NAME: &str = "memberships.hub.gke.io";
const DATAPLANE_CRD: &str = include_str!("dataplanecontrol-crd.json");
const DATAPLANE_CRD_NAME: &str = "dataplanecontrols.mesh.cloud.google.com";
const DATAPLANE_API: &str = "mesh.cloud.google.com/v1alpha1";
const CRD_API: &str = "apiextensions.k8s.io/v1";

/// How often a waiting controller looks again.
const POLL: Duration = Duration::from_millis(100);
/// How often the managed data plane controller looks at its cluster (it runs as long as
/// the sandbox, one per cluster, so it looks less often than a waiting controller).
const DATAPLANE_POLL: Duration = Duration::from_millis(250);

fn crd() -> Value {
    serde_json::from_str(CRD).unwrap_or(Value::Null)
}

fn parse_crd(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The in-cluster Membership object of a fleet membership.
#[derive(Debug, Clone, PartialEq)]
struct MembershipObject {
    /// `//gkehub.googleapis.com/projects/F/locations/L/memberships/M`.
    owner_id: String,
    /// The cluster's OIDC issuer, when the membership has workload identity.
    identity_provider: Option<String>,
    workload_identity_pool: Option<String>,
}

fn membership_object(m: &MembershipObject) -> Value {
    let mut spec = json!({"owner": {"id": m.owner_id}});
    if let Some(idp) = &m.identity_provider {
        spec["identity_provider"] = json!(idp);
    }
    if let Some(pool) = &m.workload_identity_pool {
        spec["workload_identity_pool"] = json!(pool);
    }
    json!({"apiVersion": "hub.gke.io/v1", "kind": "Membership", "metadata": {"name": "membership"}, "spec": spec})
}

fn dataplane_control(revision: &str, version: &str) -> Value {
    json!({
        "apiVersion": DATAPLANE_API,
        "kind": "DataPlaneControl",
        "metadata": {"name": revision},
        "spec": {"revision": revision, "proxyVersion": version, "proxyTargetBasisPoints": 10000},
    })
}

/// Applies a CRD (if absent) and makes it Established at once.
fn ensure_crd(member: &dyn MemberCluster, text: &str, name: &str) {
    if member
        .get_object(CRD_API, "CustomResourceDefinition", None, name)
        .is_some()
    {
        return;
    }
    match member.apply_object(parse_crd(text)) {
        Ok(_) => member.settle(CRD_API, "CustomResourceDefinition", None, name),
        Err(e) => tracing::warn!("installing {name}: {e:#}"),
    }
}

/// One cluster whose Membership object must change: the object to apply, or `None` to
/// delete it.
type MembershipWork = (Arc<dyn MemberCluster>, Option<MembershipObject>);

/// Brings every cluster's Membership object in line with its fleet membership.
fn sync_membership_objects(api: &GoogleApi) {
    let work: Vec<MembershipWork> = {
        let mut st = api.lock();
        let st = &mut *st;
        let project = st.fleet_host().id.clone();
        let mut work = Vec::new();
        for c in &mut st.clusters {
            let Some(member) = c.member.clone() else {
                continue;
            };
            let wanted = st
                .memberships
                .values()
                .find(|m| {
                    m.cluster.as_deref() == Some(c.name.as_str())
                        && matches!(m.state, "READY" | "UPDATING")
                })
                .map(|m| MembershipObject {
                    owner_id: format!(
                        "//gkehub.googleapis.com/projects/{project}/locations/{}/memberships/{}",
                        m.location, m.id
                    ),
                    identity_provider: m.issuer.clone(),
                    workload_identity_pool: m
                        .issuer
                        .as_ref()
                        .map(|_| format!("{project}.svc.id.goog")),
                });
            let wanted_owner = wanted.as_ref().map(|w| w.owner_id.clone());
            if wanted_owner != c.membership_object {
                c.membership_object = wanted_owner;
                work.push((member, wanted));
            }
        }
        work
    };
    for (member, wanted) in work {
        match wanted {
            Some(m) => {
                ensure_crd(&*member, MEMBERSHIP_CRD, MEMBERSHIP_CRD_NAME);
                if let Err(e) = member.apply_object(membership_object(&m)) {
                    tracing::warn!("applying the Membership object: {e:#}");
                }
            }
            None => member.delete_object("hub.gke.io/v1", "Membership", None, "membership"),
        }
    }
}

/// Starts the managed data plane controller of every cluster whose ControlPlaneRevision
/// CRD is in (once per cluster).
fn start_dataplane_controllers(api: &Arc<GoogleApi>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let clusters: Vec<String> = {
        let mut st = api.lock();
        st.clusters
            .iter_mut()
            .filter(|c| {
                c.crd == CrdState::Installed && c.member.is_some() && !c.dataplane_controller
            })
            .map(|c| {
                c.dataplane_controller = true;
                c.name.clone()
            })
            .collect()
    };
    for cluster in clusters {
        tokio::spawn(dataplane_controller(api.this.clone(), cluster));
    }
}

/// Whether the managed data plane is offered: feature on, RAPID or REGULAR channel.
fn dataplane_offered(st: &State, cluster: &str) -> bool {
    let feature_on = st
        .features
        .get("servicemesh")
        .is_some_and(|f| matches!(f.state, "ACTIVE" | "UPDATING"));
    feature_on
        && st
            .cluster_by_name(cluster)
            .is_some_and(|c| matches!(c.channel.as_deref(), Some("RAPID" | "REGULAR")))
}

/// One pass of the managed data plane controller over a cluster: a DataPlaneControl per
/// provisioned managed revision, its spec following the revision's proxy version. Returns
/// the revisions whose DataPlaneControl was just created (they become Ready later).
fn reconcile_dataplane(
    member: &dyn MemberCluster,
    versions: &crate::revisions::ProxyVersions,
) -> Vec<String> {
    let mut created = Vec::new();
    for (revision, _) in crate::revisions::MANAGED_REVISIONS {
        let provisioned = member
            .get_object(
                "mesh.cloud.google.com/v1beta1",
                "ControlPlaneRevision",
                Some("istio-system"),
                revision,
            )
            .is_some_and(|cpr| provisioning_finished(&cpr));
        let Some(version) = versions.get(revision) else {
            continue;
        };
        if !provisioned {
            continue;
        }
        match member.get_object(DATAPLANE_API, "DataPlaneControl", None, revision) {
            None => {
                ensure_crd(member, DATAPLANE_CRD, DATAPLANE_CRD_NAME);
                match member.apply_object(dataplane_control(revision, &version)) {
                    Ok(_) => created.push(revision.to_string()),
                    Err(e) => tracing::warn!("applying DataPlaneControl {revision}: {e:#}"),
                }
            }
            Some(d)
                if d.pointer("/spec/proxyVersion").and_then(Value::as_str) != Some(&version) =>
            {
                if let Err(e) = member.apply_object(dataplane_control(revision, &version)) {
                    tracing::warn!("updating DataPlaneControl {revision}: {e:#}");
                }
            }
            Some(_) => {}
        }
    }
    created
}

async fn dataplane_controller(weak: Weak<GoogleApi>, cluster: String) {
    loop {
        let Some(api) = weak.upgrade() else { return };
        let (member, offered, versions, ready_after) = {
            let st = api.lock();
            (
                member_of(&st, &cluster),
                dataplane_offered(&st, &cluster),
                st.proxy_versions.clone(),
                st.timing.mdp_ready,
            )
        };
        drop(api);
        if let Some(member) = member.filter(|_| offered) {
            for revision in reconcile_dataplane(&*member, &versions) {
                let member = member.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(ready_after).await;
                    member.settle(DATAPLANE_API, "DataPlaneControl", None, &revision);
                });
            }
        }
        tokio::time::sleep(DATAPLANE_POLL).await;
    }
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
    sync_membership_objects(api);
    // A settled data plane too: DataPlaneControls Ready at once.
    let work: Vec<(Arc<dyn MemberCluster>, crate::revisions::ProxyVersions)> = {
        let st = api.lock();
        st.clusters
            .iter()
            .filter(|c| c.crd == CrdState::Installed && dataplane_offered(&st, &c.name))
            .filter_map(|c| Some((c.member.clone()?, st.proxy_versions.clone())))
            .collect()
    };
    for (member, versions) in work {
        for revision in reconcile_dataplane(&*member, &versions) {
            member.settle(DATAPLANE_API, "DataPlaneControl", None, &revision);
        }
    }
    start_dataplane_controllers(api);
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
    sync_membership_objects(api);
    start_dataplane_controllers(api);
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
    drop(st);
    start_dataplane_controllers(&api);
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
