//! The reads of `asm status` (I/O): per cluster, GKE, the fleet membership and its
//! servicemesh feature, and the Kubernetes objects of [`KubeSnapshot`], all concurrently.
//! Nothing is written.

use futures::future::join_all;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

use crate::environment::Environment;
use crate::gcp::GcpClients;
use crate::gcp::container::Cluster;
use crate::gcp::gkehub::MembershipFeature;
use crate::kube::KubeError;
use crate::kube::apply::resolve_resource;
use crate::kube::{client_for_gke, client_from_kubeconfig};
use crate::spec::{ClusterRef, KubeAccess, ProjectId};
use crate::steps::MembershipObs;
use crate::steps::fleet::find_membership;
use crate::steps::observe::{kube_retry, membership_obs};
use crate::steps::remote_secret::{CLUSTER_ANNOTATION, MULTICLUSTER_LABEL};

use super::{
    ClusterObserved, GkeInfo, KubeSnapshot, ManagementInfo, MembershipInfo, MeshFeatureInfo,
};

const ISTIO_NAMESPACE: &str = "istio-system";

/// A 404: the kind is not served (the apiserver answers an unknown group/version with a
/// plain-text `404 page not found`, not a `Status`).
fn not_served(e: &KubeError) -> bool {
    e.status().is_some_and(|s| s.code == 404)
}

/// Lists `kind` (in `namespace`, else everywhere) as JSON; a kind the server does not
/// serve (its CRD is not installed) lists as empty.
pub async fn list(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    namespace: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<Value>, String> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, scope) = match kube_retry(|| resolve_resource(client, &gvk)).await {
        Ok(r) => r,
        Err(e) if not_served(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let api: Api<DynamicObject> = match (scope, namespace) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => {
            Api::namespaced_with(client.clone(), ns, &ar)
        }
        _ => Api::all_with(client.clone(), &ar),
    };
    let mut lp = ListParams::default();
    if let Some(sel) = selector {
        lp = lp.labels(sel);
    }
    let what = format!("list {kind}");
    match kube_retry(|| async {
        api.list(&lp)
            .await
            .map_err(|e| KubeError::from_kube(what.clone(), e))
    })
    .await
    {
        Ok(l) => Ok(l
            .items
            .iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect()),
        Err(e) if not_served(&e) => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// A remote secret reduced to what status shows: its name, the cluster it is for (the
/// `networking.istio.io/cluster` annotation, else its data keys) and its data keys.
/// Values, and every other annotation (`last-applied-configuration` may hold the data),
/// are dropped here.
pub fn reduce_secret(secret: &Value) -> Value {
    let keys: Vec<String> = secret
        .get("data")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let cluster = secret
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(CLUSTER_ANNOTATION))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| keys.join(","));
    json!({
        "name": secret.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        "cluster": cluster,
        "data_keys": keys,
    })
}

/// Reads the objects of one cluster.
pub async fn snapshot(client: &Client) -> Result<KubeSnapshot, String> {
    let multicluster = format!("{MULTICLUSTER_LABEL}=true");
    let (cprs, istiods, webhooks, dpcs, namespaces, pods, secrets) = tokio::join!(
        list(
            client,
            "mesh.cloud.google.com",
            "v1beta1",
            "ControlPlaneRevision",
            Some(ISTIO_NAMESPACE),
            None
        ),
        list(
            client,
            "apps",
            "v1",
            "Deployment",
            Some(ISTIO_NAMESPACE),
            Some("app=istiod")
        ),
        list(
            client,
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            None,
            None
        ),
        list(
            client,
            "mesh.cloud.google.com",
            "v1alpha1",
            "DataPlaneControl",
            None,
            None
        ),
        list(client, "", "v1", "Namespace", None, None),
        list(client, "", "v1", "Pod", None, None),
        list(
            client,
            "",
            "v1",
            "Secret",
            Some(ISTIO_NAMESPACE),
            Some(&multicluster)
        ),
    );
    Ok(KubeSnapshot {
        control_plane_revisions: cprs?,
        istiods: istiods?,
        webhooks: webhooks?,
        dataplane_controls: dpcs?,
        namespaces: namespaces?,
        pods: pods?,
        remote_secrets: secrets?.iter().map(reduce_secret).collect(),
    })
}

fn management_info(v: Option<&crate::gcp::gkehub::ManagementState>) -> Option<ManagementInfo> {
    v.map(|m| ManagementInfo {
        state: m.state.clone(),
        codes: m.details.iter().map(|d| d.code.clone()).collect(),
    })
}

fn feature_info(f: &MembershipFeature) -> MeshFeatureInfo {
    MeshFeatureInfo {
        management: f.management().map(str::to_string),
        control_plane: management_info(f.state.as_ref().and_then(|s| s.control_plane())),
        data_plane: management_info(f.state.as_ref().and_then(|s| s.data_plane())),
    }
}

/// Everything `asm status` shows of `clusters`.
pub async fn observe(
    gcp: &GcpClients,
    env: &Environment,
    clusters: &[ClusterRef],
    fleet: &ProjectId,
    access: &KubeAccess,
) -> Vec<ClusterObserved> {
    let number = async { gcp.crm.project_number(fleet.as_str()).await.ok() };
    let memberships = async {
        match gcp.gkehub.list_memberships(fleet.as_str()).await {
            Ok(ms) => Ok(ms.iter().map(membership_obs).collect::<Vec<_>>()),
            Err(e) if e.service_disabled().is_some() => Ok(Vec::new()),
            Err(e) => Err(e.to_error().message),
        }
    };
    let gke = join_all(clusters.iter().map(|c| {
        gcp.container
            .get_cluster_opt(c.project.as_str(), c.location.as_str(), c.name.as_str())
    }));
    let (number, memberships, gke) = tokio::join!(number, memberships, gke);
    join_all(clusters.iter().zip(gke).map(|(c, g)| {
        let memberships = &memberships;
        let number = number.as_deref();
        async move {
            let g = g.map_err(|e| e.to_error().message);
            observe_cluster(gcp, env, c, g, memberships, number, fleet, access).await
        }
    }))
    .await
}

#[allow(clippy::too_many_arguments)]
async fn observe_cluster(
    gcp: &GcpClients,
    env: &Environment,
    c: &ClusterRef,
    gke: Result<Option<Cluster>, String>,
    memberships: &Result<Vec<MembershipObs>, String>,
    number: Option<&str>,
    fleet: &ProjectId,
    access: &KubeAccess,
) -> ClusterObserved {
    let membership = memberships
        .as_ref()
        .map(|ms| find_membership(ms, c, number).cloned())
        .map_err(Clone::clone);
    let feature = async {
        let Ok(Some(m)) = &membership else {
            return Ok(None);
        };
        match gcp
            .gkehub
            .get_membership_feature(fleet.as_str(), m.location(), m.id(), "servicemesh")
            .await
        {
            Ok(f) => Ok(f.as_ref().map(feature_info)),
            Err(e) if e.service_disabled().is_some() => Ok(None),
            Err(e) => Err(e.to_error().message),
        }
    };
    let kube = async {
        let ctx = match (access, &gke) {
            (KubeAccess::Kubeconfig { path, context }, _) => {
                client_from_kubeconfig(env, path.as_deref(), context.as_deref(), gcp.trace())
                    .await
                    .map_err(|e| e.to_error().message)
            }
            (KubeAccess::Gke, Ok(Some(cluster))) => {
                client_for_gke(cluster, &gcp.bearer(), gcp.trace())
                    .map_err(|e| e.to_error().message)
            }
            (KubeAccess::Gke, Ok(None)) => Err("the GKE cluster does not exist".to_string()),
            (KubeAccess::Gke, Err(e)) => Err(format!("the GKE cluster could not be read: {e}")),
        };
        match ctx {
            Ok(ctx) => snapshot(&ctx.client).await,
            Err(e) => Err(e),
        }
    };
    let (feature, kube) = tokio::join!(feature, kube);
    ClusterObserved {
        cluster: c.to_string(),
        gke: gke.map(|g| {
            g.map(|g| GkeInfo {
                status: Some(g.status.clone()).filter(|s| !s.is_empty()),
                channel: g.channel().map(str::to_string),
                master_version: Some(g.current_master_version.clone()).filter(|s| !s.is_empty()),
            })
        }),
        membership: membership.map(|m| {
            m.map(|m| MembershipInfo {
                name: m.name.clone(),
                state: m.state.clone(),
                feature: feature.clone(),
            })
        }),
        kube,
    }
}
