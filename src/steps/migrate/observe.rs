//! Observation (I/O) shared by `asm migrate` and `asm rollback`: per cluster, `asm status`'s
//! snapshot (ControlPlaneRevisions, istiods, injection webhooks, namespaces, pods), the
//! workloads a migration restarts, and the migration record — read concurrently.

use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use serde_json::Value;

use super::record::{self, MigrationRecord};
use super::{ClusterState, Workload};
use crate::kube::KubeError;
use crate::kube::apply::resolve_resource;
use crate::steps::observe::kube_retry;
use crate::steps::status::observe::snapshot;

async fn list(client: &Client, kind: &str) -> Result<Vec<Value>, String> {
    let gvk = GroupVersionKind::gvk("apps", "v1", kind);
    let (ar, _) = kube_retry(|| resolve_resource(client, &gvk))
        .await
        .map_err(|e| e.to_string())?;
    // Every namespace's.
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let what = format!("list {kind}s");
    kube_retry(|| async {
        api.list(&Default::default())
            .await
            .map_err(|e| KubeError::from_kube(what.clone(), e))
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

/// The migration record (`Ok(None)`: no ConfigMap).
async fn read_record(client: &Client) -> Result<Option<MigrationRecord>, String> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), record::NAMESPACE);
    let got = kube_retry(|| async {
        api.get_opt(record::NAME)
            .await
            .map_err(|e| KubeError::from_kube("get the migration record", e))
    })
    .await
    .map_err(|e| e.to_string())?;
    match got {
        None => Ok(None),
        Some(cm) => {
            let v = serde_json::to_value(&cm).map_err(|e| e.to_string())?;
            MigrationRecord::from_config_map(&v).map(Some)
        }
    }
}

/// Reads one cluster.
pub async fn observe_cluster(client: &Client) -> Result<ClusterState, String> {
    let (snap, deployments, statefulsets, daemonsets, record) = tokio::join!(
        snapshot(client),
        list(client, "Deployment"),
        list(client, "StatefulSet"),
        list(client, "DaemonSet"),
        read_record(client),
    );
    let mut workloads = Vec::new();
    for (kind, items) in [
        ("Deployment", deployments?),
        ("StatefulSet", statefulsets?),
        ("DaemonSet", daemonsets?),
    ] {
        workloads.extend(items.iter().map(|w| Workload::from_json(kind, w)));
    }
    Ok(ClusterState {
        snapshot: snap?,
        workloads,
        record: record?,
    })
}
