//! Workload rollouts: restart a Deployment, StatefulSet or DaemonSet as `kubectl rollout
//! restart` does, judge a Deployment's rollout as `kubectl rollout status` does, and wait
//! until the pods a workload selects run proxies injected by a given Istio revision.
//!
//! kubectl's restart: a strategic-merge patch setting the pod template annotation
//! `kubectl.kubernetes.io/restartedAt` to the current RFC 3339 time
//! (`tests/k8s-golden/07-06-deployment-rollout-restart-patch.json`; upstream
//! `staging/src/k8s.io/kubectl/pkg/polymorphichelpers/objectrestarter.go`). Its rollout status:
//! `staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::apply::{FIELD_MANAGER, dynamic_api, resolve_resource};
use super::wait::{wait_for, wait_for_list};
use super::{KubeError, KubeResult};
use crate::plan::record::Prior;
use crate::transport::ProgressFn;

/// The pod template annotation a rollout restart sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The Deployment annotation holding its current rollout revision (set by the controller).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The pod annotation the Istio injector writes (JSON with the injecting `revision`).
pub const SIDECAR_STATUS: &str = "sidecar.istio.io/status";

/// The workload kinds a rollout restart applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    /// The kind's name, e.g. `Deployment`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }

    fn gvk(self) -> GroupVersionKind {
        GroupVersionKind::gvk("apps", "v1", self.as_str())
    }
}

/// `time` as RFC 3339 in UTC with second precision (`2026-11-29T10:42:00Z`), the format of
/// kubectl's `restartedAt` (Go's `time.RFC3339`).
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The restart stamp to write when the workload's template holds `live`: `now`, unless that
/// is exactly `live` (a restart by someone else within the same second) — then a fraction
/// makes it differ, or the patch would change nothing and no rollout would start.
pub fn distinct_restart_stamp(live: Option<&str>, now: &str) -> String {
    let mut stamp = now.to_string();
    let mut n = 1;
    while live == Some(stamp.as_str()) {
        stamp = format!("{}.{n}Z", now.trim_end_matches('Z'));
        n += 1;
    }
    stamp
}

/// The body of kubectl's rollout restart patch.
pub fn restart_patch(restarted_at: &str) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at}}}}})
}

/// What a restart changes, read from the live workload before it.
pub fn restart_prior(live: &Value) -> Prior {
    let text = |p: &str| live.pointer(p).and_then(Value::as_str).map(str::to_string);
    Prior::Restarted {
        revision: text(&format!("/metadata/annotations/{}", escape(REVISION))),
        restarted_at: text(&format!(
            "/spec/template/metadata/annotations/{}",
            escape(RESTARTED_AT)
        )),
        generation: live.pointer("/metadata/generation").and_then(Value::as_i64),
    }
}

/// A JSON pointer token for `key` (`/` and `~` escaped).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

async fn workload_api(
    client: &Client,
    kind: WorkloadKind,
    namespace: &str,
) -> KubeResult<Api<DynamicObject>> {
    let (ar, scope) = resolve_resource(client, &kind.gvk()).await?;
    Ok(dynamic_api(client, &ar, &scope, Some(namespace)))
}

/// Restarts workload `namespace/name` as `kubectl rollout restart` does (field manager
/// `asm`), stamping `restarted_at`; returns its prior revision and restart stamp.
pub async fn restart(
    client: &Client,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
    restarted_at: &str,
) -> KubeResult<Prior> {
    let what = format!("{} {namespace}/{name}", kind.as_str());
    let api = workload_api(client, kind, namespace).await?;
    let live = api
        .get(name)
        .await
        .map_err(|e| KubeError::from_kube(format!("get {what}"), e))?;
    let live = serde_json::to_value(&live).map_err(|e| KubeError::Invalid {
        message: format!("{what}: {e}"),
    })?;
    let prior = restart_prior(&live);
    let live_stamp = match &prior {
        Prior::Restarted { restarted_at, .. } => restarted_at.as_deref(),
        _ => None,
    };
    let stamp = distinct_restart_stamp(live_stamp, restarted_at);
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    api.patch(name, &pp, &Patch::Strategic(restart_patch(&stamp)))
        .await
        .map_err(|e| KubeError::from_kube(format!("restart {what}"), e))?;
    Ok(prior)
}

/// How a Deployment's rollout stands, as `kubectl rollout status` judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Successfully rolled out.
    Complete,
    /// Still in progress: kubectl's waiting message.
    Waiting(String),
    /// `Progressing` is `False` with reason `ProgressDeadlineExceeded`.
    Failed(String),
}

/// Judges Deployment `d` (JSON) like kubectl's `DeploymentStatusViewer`.
pub fn deployment_rollout(d: &Value) -> Rollout {
    let name = d
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let int = |p: &str| d.pointer(p).and_then(Value::as_i64);
    let generation = int("/metadata/generation").unwrap_or(0);
    let observed = int("/status/observedGeneration").unwrap_or(0);
    if generation > observed {
        return Rollout::Waiting("Waiting for deployment spec update to be observed...".into());
    }
    let deadline_exceeded = d
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Progressing")
                && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
        });
    if deadline_exceeded {
        return Rollout::Failed(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    let updated = int("/status/updatedReplicas").unwrap_or(0);
    let replicas = int("/status/replicas").unwrap_or(0);
    let available = int("/status/availableReplicas").unwrap_or(0);
    if let Some(want) = int("/spec/replicas")
        && updated < want
    {
        return Rollout::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {updated} out of {want} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return Rollout::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return Rollout::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    Rollout::Complete
}

/// Waits until Deployment `namespace/name` is rolled out (kubectl's judgement), or the
/// deadline; a rollout past its progress deadline fails at once.
pub async fn wait_deployment_available(
    client: &Client,
    namespace: &str,
    name: &str,
    deadline: Instant,
    progress: Option<&ProgressFn>,
) -> KubeResult<()> {
    let api = workload_api(client, WorkloadKind::Deployment, namespace).await?;
    let what = format!("Deployment {namespace}/{name} to be rolled out");
    let cond = |obj: Option<&DynamicObject>| {
        obj.and_then(|o| serde_json::to_value(o).ok())
            .is_some_and(|v| !matches!(deployment_rollout(&v), Rollout::Waiting(_)))
    };
    let obj = wait_for(api, name, &what, cond, deadline, progress)
        .await?
        .ok_or_else(|| KubeError::Invalid {
            message: format!("{what}: object disappeared"),
        })?;
    let v = serde_json::to_value(&obj).map_err(|e| KubeError::Invalid {
        message: format!("{what}: {e}"),
    })?;
    match deployment_rollout(&v) {
        Rollout::Failed(message) => Err(KubeError::Invalid { message }),
        _ => Ok(()),
    }
}

/// The revision that injected `pod`'s proxy (`revision` of `sidecar.istio.io/status`).
pub fn injected_revision(pod: &Value) -> Option<String> {
    let status = pod
        .pointer(&format!("/metadata/annotations/{}", escape(SIDECAR_STATUS)))
        .and_then(Value::as_str)?;
    let parsed: Value = serde_json::from_str(status).ok()?;
    parsed
        .get("revision")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Whether a pod counts for "pods on a revision": not terminating, not finished.
fn live_pod(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && !matches!(
            pod.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        )
}

/// Names of the live `pods` not injected by `revision`; `None` when there are fewer than
/// `min_pods` live pods (nothing to judge yet).
pub fn pods_off_revision(pods: &[Value], revision: &str, min_pods: usize) -> Option<Vec<String>> {
    let live: Vec<&Value> = pods.iter().filter(|p| live_pod(p)).collect();
    if live.len() < min_pods {
        return None;
    }
    Some(
        live.into_iter()
            .filter(|p| injected_revision(p).as_deref() != Some(revision))
            .map(|p| {
                p.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            })
            .collect(),
    )
}

/// `k=v,k2=v2` of `labels` (a label selector of equalities).
pub fn selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Waits until at least `min_pods` live pods match `labels` in `namespace` and every one of
/// them runs a proxy injected by `revision`, or the deadline.
pub async fn wait_pods_on_revision(
    client: &Client,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    revision: &str,
    min_pods: usize,
    deadline: Instant,
    progress: Option<&ProgressFn>,
) -> KubeResult<()> {
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), namespace);
    let sel = selector(labels);
    let what = format!("pods {sel} in {namespace} to run proxies of revision {revision}");
    let revision = revision.to_string();
    wait_for_list(
        api,
        kube::runtime::watcher::Config::default().labels(&sel),
        &what,
        move |pods| {
            let values: Vec<Value> = pods
                .iter()
                .filter_map(|p| serde_json::to_value(p).ok())
                .collect();
            pods_off_revision(&values, &revision, min_pods).is_some_and(|off| off.is_empty())
        },
        deadline,
        progress,
    )
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc_seconds() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_948_920);
        assert_eq!(rfc3339(t), "2026-11-29T10:42:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_723);
        assert_eq!(rfc3339(leap), "2000-02-29T01:02:03Z");
    }

    #[test]
    fn a_restart_stamp_never_equals_the_live_one() {
        let now = "2026-11-29T15:21:07Z";
        assert_eq!(distinct_restart_stamp(None, now), now);
        assert_eq!(
            distinct_restart_stamp(Some("2026-11-29T15:21:06Z"), now),
            now
        );
        assert_eq!(
            distinct_restart_stamp(Some(now), now),
            "2026-11-29T15:21:07.1Z"
        );
    }

    #[test]
    fn restart_patch_is_kubectls() {
        assert_eq!(
            restart_patch("2026-11-29T10:42:00Z"),
            json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-29T10:42:00Z"}}}}})
        );
    }

    #[test]
    fn restart_prior_reads_revision_stamp_and_generation() {
        let d = json!({"metadata": {"generation": 3, "annotations": {REVISION: "2"}},
            "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "2026-01-01T00:00:00Z"}}}}});
        assert_eq!(
            restart_prior(&d),
            Prior::Restarted {
                revision: Some("2".into()),
                restarted_at: Some("2026-01-01T00:00:00Z".into()),
                generation: Some(3),
            }
        );
        assert_eq!(
            restart_prior(&json!({"metadata": {}})),
            Prior::Restarted {
                revision: None,
                restarted_at: None,
                generation: None
            }
        );
    }

    fn deployment(generation: i64, status: Value) -> Value {
        json!({"metadata": {"name": "gw", "generation": generation}, "spec": {"replicas": 2}, "status": status})
    }

    #[test]
    fn rollout_is_judged_like_kubectl() {
        let w = |s: &str| Rollout::Waiting(s.to_string());
        assert_eq!(
            deployment_rollout(&deployment(2, json!({"observedGeneration": 1}))),
            w("Waiting for deployment spec update to be observed...")
        );
        assert_eq!(
            deployment_rollout(&deployment(
                2,
                json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1})
            )),
            w(
                "Waiting for deployment \"gw\" rollout to finish: 1 out of 2 new replicas have been updated..."
            )
        );
        assert_eq!(
            deployment_rollout(&deployment(
                2,
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2})
            )),
            w(
                "Waiting for deployment \"gw\" rollout to finish: 1 old replicas are pending termination..."
            )
        );
        assert_eq!(
            deployment_rollout(&deployment(
                2,
                json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1})
            )),
            w(
                "Waiting for deployment \"gw\" rollout to finish: 1 of 2 updated replicas are available..."
            )
        );
        assert_eq!(
            deployment_rollout(&deployment(
                2,
                json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2})
            )),
            Rollout::Complete
        );
        assert!(matches!(
            deployment_rollout(&deployment(
                2,
                json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]})
            )),
            Rollout::Failed(_)
        ));
    }

    fn pod(name: &str, revision: Option<&str>, extra: Value) -> Value {
        let mut p =
            json!({"metadata": {"name": name, "annotations": {}}, "status": {"phase": "Running"}});
        if let Some(r) = revision {
            p["metadata"]["annotations"][SIDECAR_STATUS] = json!(format!(
                "{{\"containers\":[\"istio-proxy\"],\"revision\":\"{r}\"}}"
            ));
        }
        if let Value::Object(m) = extra {
            for (k, v) in m {
                p["metadata"][k] = v;
            }
        }
        p
    }

    #[test]
    fn pods_off_revision_names_uninjected_and_other_revisions() {
        let pods = vec![
            pod("a", Some("asm-managed"), json!({})),
            pod("b", Some("asm-1191"), json!({})),
            pod("c", None, json!({})),
            pod(
                "old",
                Some("asm-1191"),
                json!({"deletionTimestamp": "2026-01-01T00:00:00Z"}),
            ),
        ];
        assert_eq!(
            pods_off_revision(&pods, "asm-managed", 1),
            Some(vec!["b".to_string(), "c".to_string()])
        );
        assert_eq!(
            pods_off_revision(&pods[..1], "asm-managed", 1),
            Some(vec![])
        );
        assert_eq!(pods_off_revision(&pods[..1], "asm-managed", 2), None);
        assert_eq!(injected_revision(&pods[0]).as_deref(), Some("asm-managed"));
    }
}
