//! Kubernetes actions any command can plan: apply, label/annotate, rollout restart, delete
//! (with preconditions) and the waits — each as a payload ([`KubeStep`]) with a builder that
//! fills in the op, target and phrases of its [`Action`], and one executor
//! ([`run_kube_step`]) that returns the prior state for the run report.
//!
//! Builders are pure (unit-tested below); the executor calls `src/kube/`.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::Client;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::error::Error;
use crate::kube::apply::{ApplyOptions, apply, get_live, object_ref};
use crate::kube::delete::{Expected, delete};
use crate::kube::metadata::{Changes, set_metadata};
use crate::kube::rollout::{
    WorkloadKind, restart, rfc3339, wait_deployment_available, wait_pods_on_revision,
};
use crate::kube::wait::{
    wait_control_plane_revision, wait_dataplane_ready, wait_load_balancer_address,
};
use crate::plan::record::{Effect, Prior};
use crate::plan::{Action, Op, Target};
use crate::transport::ProgressFn;

/// What a wait waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "until", rename_all = "snake_case")]
pub enum KubeWait {
    /// Deployment rolled out, as `kubectl rollout status` judges it.
    DeploymentAvailable { namespace: String, name: String },
    /// At least `min_pods` live pods match `labels`, all injected by `revision`.
    PodsOnRevision {
        namespace: String,
        labels: BTreeMap<String, String>,
        revision: String,
        min_pods: usize,
    },
    /// A LoadBalancer Service has an address.
    LoadBalancerAddress { namespace: String, name: String },
    /// The DataPlaneControl of `revision` reports `status.state: Ready`.
    DataPlaneReady { revision: String },
    /// ControlPlaneRevision `namespace/revision` is `ProvisioningFinished`.
    ControlPlaneRevision { namespace: String, revision: String },
}

/// The exact change an action makes to a cluster (no secrets: serializable into plans).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum KubeStep {
    /// Server-side apply of `object` (field manager `asm`).
    Apply {
        object: Value,
    },
    /// Set (`Some`) or remove (`None`) labels and annotations of an existing object.
    SetMetadata {
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
        labels: Changes,
        annotations: Changes,
    },
    /// `kubectl rollout restart`.
    Restart {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    /// Delete, only if still the object planned (uid/resourceVersion).
    Delete {
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
        uid: Option<String>,
        resource_version: Option<String>,
    },
    Wait(KubeWait),
}

fn display(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// An action of `cluster` with `id`, its dependencies, op, target and phrases.
#[allow(clippy::too_many_arguments)]
fn action(
    id: String,
    cluster: Option<&str>,
    op: Op,
    target: Target,
    reason: String,
    (would, done): (String, String),
    estimate: Duration,
    payload: KubeStep,
) -> Action<KubeStep> {
    Action {
        id,
        op,
        cluster: cluster.map(str::to_string),
        target,
        reason,
        depends_on: Vec::new(),
        would,
        done,
        estimate,
        payload,
    }
}

/// Applies `object`: a create when `live` is absent, else an update.
pub fn apply_action(
    id: String,
    cluster: Option<&str>,
    object: Value,
    live_exists: bool,
    reason: impl Into<String>,
) -> Result<Action<KubeStep>, Error> {
    let r = object_ref(&object).map_err(Error::from)?;
    let what = format!(
        "{} {}",
        r.gvk.kind,
        display(r.namespace.as_deref(), &r.name)
    );
    let (op, would, done) = if live_exists {
        (
            Op::Update,
            format!("Would update {what}"),
            format!("Updated {what}"),
        )
    } else {
        (
            Op::Create,
            format!("Would create {what}"),
            format!("Created {what}"),
        )
    };
    Ok(action(
        id,
        cluster,
        op,
        Target {
            api: r.gvk.api_version(),
            kind: r.gvk.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        },
        reason.into(),
        (would, done),
        Duration::from_millis(200),
        KubeStep::Apply { object },
    ))
}

fn changes_text(changes: &Changes) -> Vec<String> {
    changes
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => format!("{k}-"),
        })
        .collect()
}

/// Sets or removes labels and annotations of an existing object (an update).
#[allow(clippy::too_many_arguments)]
pub fn set_metadata_action(
    id: String,
    cluster: Option<&str>,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    labels: Changes,
    annotations: Changes,
    reason: impl Into<String>,
) -> Action<KubeStep> {
    let mut parts = Vec::new();
    if !labels.is_empty() {
        parts.push(format!("label {}", changes_text(&labels).join(" ")));
    }
    if !annotations.is_empty() {
        parts.push(format!("annotate {}", changes_text(&annotations).join(" ")));
    }
    let what = format!("{kind} {}", display(namespace, name));
    let change = parts.join(", ");
    action(
        id,
        cluster,
        Op::Update,
        Target {
            api: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        },
        reason.into(),
        (
            format!("Would {change} on {what}"),
            format!(
                "Set {} on {what}",
                change
                    .replace("label ", "labels ")
                    .replace("annotate ", "annotations ")
            ),
        ),
        Duration::from_millis(100),
        KubeStep::SetMetadata {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            labels,
            annotations,
        },
    )
}

/// A rollout restart of workload `namespace/name`.
pub fn restart_action(
    id: String,
    cluster: Option<&str>,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
    reason: impl Into<String>,
) -> Action<KubeStep> {
    let what = format!("{} {namespace}/{name}", kind.as_str());
    action(
        id,
        cluster,
        Op::Restart,
        Target {
            api: "apps/v1".into(),
            kind: kind.as_str().into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        },
        reason.into(),
        (format!("Would restart {what}"), format!("Restarted {what}")),
        Duration::from_millis(100),
        KubeStep::Restart {
            kind: kind.as_str(),
            namespace: namespace.into(),
            name: name.into(),
        },
    )
}

/// Deletes the object `live` (its uid and resourceVersion become the preconditions).
pub fn delete_action(
    id: String,
    cluster: Option<&str>,
    live: &Value,
    reason: impl Into<String>,
) -> Result<Action<KubeStep>, Error> {
    let r = object_ref(live).map_err(Error::from)?;
    let field = |p: &str| live.pointer(p).and_then(Value::as_str).map(str::to_string);
    let what = format!(
        "{} {}",
        r.gvk.kind,
        display(r.namespace.as_deref(), &r.name)
    );
    Ok(action(
        id,
        cluster,
        Op::Delete,
        Target {
            api: r.gvk.api_version(),
            kind: r.gvk.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        },
        reason.into(),
        (format!("Would delete {what}"), format!("Deleted {what}")),
        Duration::from_millis(100),
        KubeStep::Delete {
            api_version: r.gvk.api_version(),
            kind: r.gvk.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            uid: field("/metadata/uid"),
            resource_version: field("/metadata/resourceVersion"),
        },
    ))
}

/// A wait, with its phrases and estimate.
pub fn wait_action(
    id: String,
    cluster: Option<&str>,
    wait: KubeWait,
    reason: impl Into<String>,
    estimate: Duration,
) -> Action<KubeStep> {
    let (target, what) = match &wait {
        KubeWait::DeploymentAvailable { namespace, name } => (
            Target {
                api: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some(namespace.clone()),
                name: name.clone(),
            },
            format!("Deployment {namespace}/{name} to be available"),
        ),
        KubeWait::PodsOnRevision {
            namespace,
            labels,
            revision,
            ..
        } => (
            Target {
                api: "v1".into(),
                kind: "Pod".into(),
                namespace: Some(namespace.clone()),
                name: crate::kube::rollout::selector(labels),
            },
            format!(
                "pods {} in {namespace} to run proxies of {revision}",
                crate::kube::rollout::selector(labels)
            ),
        ),
        KubeWait::LoadBalancerAddress { namespace, name } => (
            Target {
                api: "v1".into(),
                kind: "Service".into(),
                namespace: Some(namespace.clone()),
                name: name.clone(),
            },
            format!("Service {namespace}/{name} to get an address"),
        ),
        KubeWait::DataPlaneReady { revision } => (
            Target {
                api: "mesh.cloud.google.com/v1alpha1".into(),
                kind: "DataPlaneControl".into(),
                namespace: None,
                name: revision.clone(),
            },
            format!("the managed data plane of {revision} to be Ready"),
        ),
        KubeWait::ControlPlaneRevision {
            namespace,
            revision,
        } => (
            Target {
                api: "mesh.cloud.google.com/v1beta1".into(),
                kind: "ControlPlaneRevision".into(),
                namespace: Some(namespace.clone()),
                name: revision.clone(),
            },
            format!("ControlPlaneRevision {revision} to be ready"),
        ),
    };
    action(
        id,
        cluster,
        Op::Wait,
        target,
        reason.into(),
        (
            format!("Would wait for {what}"),
            format!("Waited for {what}"),
        ),
        estimate,
        KubeStep::Wait(wait),
    )
}

/// Runs `step` on `client`; waits end at `deadline` and report to `progress`. Returns the
/// prior state of what it changed.
pub async fn run_kube_step(
    client: &Client,
    step: &KubeStep,
    deadline: Instant,
    progress: Option<&ProgressFn>,
) -> Result<Effect, Error> {
    match step {
        KubeStep::Apply { object } => {
            let existed = get_live(client, object)
                .await
                .map_err(Error::from)?
                .is_some();
            apply(
                client,
                object,
                ApplyOptions {
                    force: true,
                    dry_run: false,
                },
            )
            .await
            .map_err(Error::from)?;
            // An update's prior fields are not recorded (server-side apply replaces only
            // asm's own fields); a create is undone by deleting.
            Ok(if existed {
                Effect::default()
            } else {
                Effect::from(Prior::Created)
            })
        }
        KubeStep::SetMetadata {
            api_version,
            kind,
            namespace,
            name,
            labels,
            annotations,
        } => set_metadata(
            client,
            api_version,
            kind,
            namespace.as_deref(),
            name,
            labels,
            annotations,
        )
        .await
        .map(Effect::from)
        .map_err(Error::from),
        KubeStep::Restart {
            kind,
            namespace,
            name,
        } => {
            let kind = match *kind {
                "StatefulSet" => WorkloadKind::StatefulSet,
                "DaemonSet" => WorkloadKind::DaemonSet,
                _ => WorkloadKind::Deployment,
            };
            let now = rfc3339(std::time::SystemTime::now());
            restart(client, kind, namespace, name, &now)
                .await
                .map(Effect::from)
                .map_err(Error::from)
        }
        KubeStep::Delete {
            api_version,
            kind,
            namespace,
            name,
            uid,
            resource_version,
        } => {
            let expected = Expected {
                uid: uid.clone(),
                resource_version: resource_version.clone(),
            };
            delete(
                client,
                api_version,
                kind,
                namespace.as_deref(),
                name,
                &expected,
            )
            .await
            .map(|p| Effect { prior: p })
            .map_err(Error::from)
        }
        KubeStep::Wait(w) => {
            match w {
                KubeWait::DeploymentAvailable { namespace, name } => {
                    wait_deployment_available(client, namespace, name, deadline, progress).await
                }
                KubeWait::PodsOnRevision {
                    namespace,
                    labels,
                    revision,
                    min_pods,
                } => {
                    wait_pods_on_revision(
                        client, namespace, labels, revision, *min_pods, deadline, progress,
                    )
                    .await
                }
                KubeWait::LoadBalancerAddress { namespace, name } => {
                    wait_load_balancer_address(client, namespace, name, deadline, progress)
                        .await
                        .map(|_| ())
                }
                KubeWait::DataPlaneReady { revision } => {
                    wait_dataplane_ready(client, revision, deadline, progress).await
                }
                KubeWait::ControlPlaneRevision {
                    namespace,
                    revision,
                } => {
                    wait_control_plane_revision(client, namespace, revision, deadline, progress)
                        .await
                }
            }
            .map_err(Error::from)?;
            Ok(Effect::default())
        }
    }
}

/// Short label of cluster `i` for action ids: its name if no other targeted cluster shares
/// it, else `PROJECT.LOCATION.NAME`.
pub fn cluster_label(clusters: &[crate::spec::ClusterRef], i: usize) -> String {
    let c = &clusters[i];
    if clusters.iter().filter(|o| o.name == c.name).count() > 1 {
        format!("{}.{}.{}", c.project, c.location, c.name)
    } else {
        c.name.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::Plan;
    use crate::plan::render::{Mood, TextOptions, text};

    fn plan() -> Plan<KubeStep> {
        let ns_labels: Changes = [
            ("istio-injection".to_string(), None),
            ("istio.io/rev".to_string(), Some("asm-managed".to_string())),
        ]
        .into();
        let live_cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "old", "namespace": "gw", "uid": "u1", "resourceVersion": "9"}});
        let mut label = set_metadata_action(
            "c1/ns-gw".into(),
            Some("c1"),
            "v1",
            "Namespace",
            None,
            "gw",
            ns_labels,
            Changes::new(),
            "namespace gw is labelled istio-injection=enabled",
        );
        label.depends_on = vec![];
        let mut restart = restart_action(
            "c1/restart-gw".into(),
            Some("c1"),
            WorkloadKind::Deployment,
            "gw",
            "istio-ingressgateway",
            "its pods run proxies of asm-1191",
        );
        restart.depends_on = vec!["c1/ns-gw".into()];
        let mut wait = wait_action(
            "c1/gw-available".into(),
            Some("c1"),
            KubeWait::DeploymentAvailable {
                namespace: "gw".into(),
                name: "istio-ingressgateway".into(),
            },
            "restarted",
            Duration::from_secs(30),
        );
        wait.depends_on = vec!["c1/restart-gw".into()];
        Plan {
            checks: vec![],
            actions: vec![
                label,
                restart,
                wait,
                delete_action("c1/old".into(), Some("c1"), &live_cm, "left over").unwrap(),
                apply_action(
                    "c1/sa".into(),
                    Some("c1"),
                    json!({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "gw", "namespace": "gw"}}),
                    false,
                    "missing",
                )
                .unwrap(),
            ],
        }
    }

    #[test]
    fn builders_fill_ops_targets_and_phrases() {
        let p = plan();
        let a = &p.actions;
        assert_eq!(a[0].op, Op::Update);
        assert_eq!(
            a[0].would,
            "Would label istio-injection- istio.io/rev=asm-managed on Namespace gw"
        );
        assert_eq!(
            a[0].done,
            "Set labels istio-injection- istio.io/rev=asm-managed on Namespace gw"
        );
        assert_eq!(a[1].op, Op::Restart);
        assert_eq!(a[1].done, "Restarted Deployment gw/istio-ingressgateway");
        assert_eq!(a[1].target.api, "apps/v1");
        assert_eq!(a[2].op, Op::Wait);
        assert_eq!(
            a[2].would,
            "Would wait for Deployment gw/istio-ingressgateway to be available"
        );
        assert_eq!(a[3].op, Op::Delete);
        assert_eq!(
            a[3].payload,
            KubeStep::Delete {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("gw".into()),
                name: "old".into(),
                uid: Some("u1".into()),
                resource_version: Some("9".into()),
            }
        );
        assert_eq!(a[4].op, Op::Create);
        assert_eq!(a[4].done, "Created ServiceAccount gw/gw");
    }

    #[test]
    fn a_plan_of_every_kind_renders_and_serializes() {
        let p = plan();
        let t = text(
            &p,
            TextOptions {
                mood: Mood::Conditional,
                color: false,
            },
        );
        assert!(
            t.contains("  ↻ c1/restart-gw: Would restart Deployment gw/istio-ingressgateway"),
            "{t}"
        );
        assert!(
            t.contains("  - c1/old: Would delete ConfigMap gw/old"),
            "{t}"
        );
        assert!(
            t.ends_with("Plan: 1 to add, 1 to change, 1 to restart, 1 to delete, 1 wait.\n"),
            "{t}"
        );
        let payload = serde_json::to_value(&p.actions[2].payload).unwrap();
        assert_eq!(
            payload,
            json!({"step": "wait", "until": "deployment_available", "namespace": "gw", "name": "istio-ingressgateway"})
        );
        let (path, _) = p.critical_path(|a| a.estimate);
        assert_eq!(path, vec!["c1/ns-gw", "c1/restart-gw", "c1/gw-available"]);
    }
}
