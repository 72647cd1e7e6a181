//! Observation (I/O) of `asm enable-dataplane`: each cluster's namespaces, pods, workloads
//! and DataPlaneControls, read concurrently into [`DataplaneObs`]. The control plane, the
//! channel and the fleet feature come from install's observation ([`crate::steps::observe`]).

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams};
use kube::core::GroupVersionKind;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{DataplaneObs, NamespaceObs, PodObs, WorkloadObs};
use crate::kube::apply::{dynamic_api, resolve_resource};
use crate::kube::metadata::string_map;
use crate::kube::rollout::injected_revision;
use crate::kube::{KubeContext, KubeError};
use crate::steps::observe::kube_retry;

fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn resource_version(v: &Value) -> Option<String> {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Lists every `K` of the cluster as JSON values.
async fn list_all<K>(ctx: &KubeContext, what: &str) -> Result<Vec<Value>, String>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    K: serde::Serialize,
{
    let api: Api<K> = Api::all(ctx.client.clone());
    let lp = ListParams::default();
    kube_retry(|| async {
        api.list(&lp)
            .await
            .map_err(|e| KubeError::from_kube(format!("list {what}"), e))
    })
    .await
    .map(|l| {
        l.items
            .iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect()
    })
    .map_err(|e| e.to_string())
}

/// `(spec.revision, status.state)` of every DataPlaneControl (none when the CRD is not
/// served).
async fn list_controls(ctx: &KubeContext) -> Result<Vec<(String, Option<String>)>, String> {
    let gvk = GroupVersionKind::gvk("mesh.cloud.google.com", "v1alpha1", "DataPlaneControl");
    let (ar, scope) = kube_retry(|| resolve_resource(&ctx.client, &gvk))
        .await
        .map_err(|e| e.to_string())?;
    let api = dynamic_api(&ctx.client, &ar, &scope, None);
    let lp = ListParams::default();
    match kube_retry(|| async {
        api.list(&lp)
            .await
            .map_err(|e| KubeError::from_kube("list DataPlaneControls", e))
    })
    .await
    {
        Ok(list) => Ok(list
            .items
            .iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .map(|v| {
                (
                    str_at(&v, "/spec/revision"),
                    v.pointer("/status/state")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                )
            })
            .collect()),
        // The group is not served (no CRD yet): no DataPlaneControl.
        Err(e) if e.status().is_some_and(|s| s.code == 404) => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// A pod as the plan needs it.
pub fn pod_obs(p: &Value) -> PodObs {
    let owner = p
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| {
            refs.iter()
                .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        })
        .map(|r| (str_at(r, "/kind"), str_at(r, "/name")));
    let annotations = string_map(p.pointer("/metadata/annotations"));
    PodObs {
        namespace: str_at(p, "/metadata/namespace"),
        name: str_at(p, "/metadata/name"),
        proxy: annotations.get(super::PROXY_ANNOTATION).cloned(),
        injected_revision: injected_revision(p),
        injected: annotations.contains_key(super::SIDECAR_STATUS),
        owner,
        template_hash: p
            .pointer("/metadata/labels/pod-template-hash")
            .and_then(Value::as_str)
            .map(str::to_string),
        live: p.pointer("/metadata/deletionTimestamp").is_none()
            && !matches!(
                p.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            ),
        resource_version: resource_version(p),
    }
}

fn workload_obs(kind: &str, w: &Value) -> WorkloadObs {
    WorkloadObs {
        kind: kind.to_string(),
        namespace: str_at(w, "/metadata/namespace"),
        name: str_at(w, "/metadata/name"),
        template_injected: w
            .pointer("/spec/template/metadata/annotations")
            .and_then(Value::as_object)
            .is_some_and(|a| a.contains_key(super::SIDECAR_STATUS)),
    }
}

/// Reads everything the data plane plan needs from one cluster.
pub async fn observe_dataplane(ctx: &KubeContext) -> Result<DataplaneObs, String> {
    let (namespaces, pods, deployments, statefulsets, daemonsets, jobs, controls) = tokio::join!(
        list_all::<Namespace>(ctx, "Namespaces"),
        list_all::<Pod>(ctx, "Pods"),
        list_all::<Deployment>(ctx, "Deployments"),
        list_all::<StatefulSet>(ctx, "StatefulSets"),
        list_all::<DaemonSet>(ctx, "DaemonSets"),
        list_all::<Job>(ctx, "Jobs"),
        list_controls(ctx),
    );
    let mut workloads = Vec::new();
    for (kind, list) in [
        ("Deployment", deployments?),
        ("StatefulSet", statefulsets?),
        ("DaemonSet", daemonsets?),
        ("Job", jobs?),
    ] {
        workloads.extend(list.iter().map(|w| workload_obs(kind, w)));
    }
    Ok(DataplaneObs {
        namespaces: namespaces?
            .iter()
            .map(|n| NamespaceObs {
                name: str_at(n, "/metadata/name"),
                labels: string_map(n.pointer("/metadata/labels")),
                proxy: n
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(super::PROXY_ANNOTATION))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                resource_version: resource_version(n),
            })
            .collect(),
        pods: pods?.iter().map(pod_obs).collect(),
        workloads,
        controls: controls?,
    })
}
