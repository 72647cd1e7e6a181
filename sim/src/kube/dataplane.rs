//! The in-cluster side of the managed data plane: a DataPlaneControl's status (its spec is
//! written by Google's controller through [`crate::member::MemberCluster`]), and the
//! mdp-controller's proxy upgrader.
//!
//! The upgrader (https://cloud.google.com/service-mesh/docs/managed/provision-managed-anthos-service-mesh,
//! "managed data plane"): every `timing.mdp_evict`, for each DataPlaneControl with a
//! positive `spec.proxyTargetBasisPoints`, it evicts Pods whose proxy (the `istio-proxy`
//! image tag) is older than `spec.proxyVersion`, when they were auto-injected by that
//! revision, belong to a ReplicaSet (a Deployment's or a bare one), and are opted in by the
//! `mesh.cloud.google.com/proxy: {"managed":"true"}` annotation (the Pod's, else its
//! namespace's). Uninjected and manually injected Pods, and Pods of Jobs, StatefulSets and
//! DaemonSets are never touched. It goes gradually: at most one Pod per ReplicaSet at a
//! time, and only while every Pod of that ReplicaSet is Ready and it has all its replicas;
//! a refused eviction (a PodDisruptionBudget) is tried again on a later pass. The
//! ReplicaSet recreates an evicted Pod and admission injects the revision's current proxy.
//! `status.proxyTargetBasisPoints` reports the share of the revision's upgradable proxies
//! at the target version; `status.state` stays `Ready`.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::KubeApiServer;
use super::injection;
use super::store::State;
use super::util;
use super::workloads::{being_deleted, controller_uid, meta_str, pod_finished, pod_ready};

const DATAPLANE_API: &str = "mesh.cloud.google.com/v1alpha1";
/// The managed data plane's opt-in annotation (namespace or Pod).
pub const MDP_ANNOTATION: &str = "mesh.cloud.google.com/proxy";
const MDP_MANAGER: &str = "mdp-controller";

/// Whether an annotation value (`{"managed":"true"}`, or with a JSON boolean) opts in;
/// `None` when it says nothing (absent, unparsable, no `managed` key).
pub fn annotation_opts_in(value: Option<&str>) -> Option<bool> {
    let parsed: Value = serde_json::from_str(value?).ok()?;
    match parsed.get("managed")? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    }
}

/// Whether the managed data plane manages a Pod: its own annotation wins over its
/// namespace's.
pub fn managed_by_mdp(pod: &Value, namespace: Option<&Value>) -> bool {
    let of = |o: Option<&Value>| {
        annotation_opts_in(
            o.and_then(|o| util::get_str(o, &["metadata", "annotations", MDP_ANNOTATION])),
        )
    };
    of(Some(pod)).or_else(|| of(namespace)).unwrap_or(false)
}

/// The revision that injected a Pod (`revision` in `sidecar.istio.io/status`).
pub fn injected_revision(pod: &Value) -> Option<String> {
    let status = util::get_str(pod, &["metadata", "annotations", "sidecar.istio.io/status"])?;
    let parsed: Value = serde_json::from_str(status).ok()?;
    parsed.get("revision")?.as_str().map(str::to_string)
}

/// The proxy version a Pod runs: the tag of its `istio-proxy` container's image.
pub fn proxy_version(pod: &Value) -> Option<String> {
    pod.pointer("/spec/containers")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some("istio-proxy"))?
        .get("image")?
        .as_str()?
        .rsplit_once(':')
        .filter(|(repo, _)| !repo.ends_with('/'))
        .map(|(_, tag)| tag.to_string())
}

/// Compares proxy versions such as `1.23.6-asm.14`: numeric parts as numbers, others as
/// text, part by part (`1.23.6-asm.9` < `1.23.6-asm.14` < `1.24.0-asm.1`).
pub fn compare_versions(a: &str, b: &str) -> CmpOrdering {
    let parts =
        |v: &str| -> Vec<String> { v.split(['.', '-', '_', '+']).map(str::to_string).collect() };
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            _ => x.cmp(y),
        };
        if o != CmpOrdering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

/// One Pod the upgrader may look at: auto-injected by `revision`, controlled by a
/// ReplicaSet whose template carries no proxy of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyPod {
    pub namespace: String,
    pub name: String,
    /// `namespace/name` of the controlling ReplicaSet.
    pub replicaset: String,
    pub version: Option<String>,
    pub ready: bool,
    pub opted_in: bool,
}

/// Which Pods to evict now: for each ReplicaSet whose `desired` replicas all exist and are
/// Ready (`desired` maps `namespace/name` to `spec.replicas`), the first opted-in Pod
/// older than `target` (by name, so runs repeat).
pub fn evictions(
    pods: &[ProxyPod],
    desired: &BTreeMap<String, i64>,
    target: &str,
) -> Vec<(String, String)> {
    let mut by_rs: BTreeMap<&str, Vec<&ProxyPod>> = BTreeMap::new();
    for p in pods {
        by_rs.entry(p.replicaset.as_str()).or_default().push(p);
    }
    let mut out = Vec::new();
    for (rs, mut members) in by_rs {
        let settled = desired.get(rs).is_some_and(|d| *d == members.len() as i64)
            && members.iter().all(|p| p.ready);
        if !settled {
            continue;
        }
        members.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(p) = members.iter().find(|p| {
            p.opted_in
                && p.version
                    .as_deref()
                    .is_some_and(|v| compare_versions(v, target) == CmpOrdering::Less)
        }) {
            out.push((p.namespace.clone(), p.name.clone()));
        }
    }
    out
}

/// `status.proxyTargetBasisPoints`: the share of `pods` at (or past) `target`, in
/// 1/10000; `None` when there are none.
pub fn basis_points_at_target(pods: &[ProxyPod], target: &str) -> Option<i64> {
    if pods.is_empty() {
        return None;
    }
    let at = pods
        .iter()
        .filter(|p| {
            p.version
                .as_deref()
                .is_some_and(|v| compare_versions(v, target) != CmpOrdering::Less)
        })
        .count() as i64;
    Some(at * 10_000 / pods.len() as i64)
}

impl KubeApiServer {
    /// The mdp-controller reports the DataPlaneControl `name` Ready: it has observed the
    /// current generation and every proxy of the revision is at the target
    /// (`status.proxyTargetBasisPoints` = the spec's).
    pub(super) fn dataplane_ready(&self, name: &str) {
        let mut st = self.lock();
        let Some(rt) = st.type_for_kind(DATAPLANE_API, "DataPlaneControl") else {
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
        self.controller_update(&mut st, &rt, "", name, MDP_MANAGER, subresource, |d| {
            util::set_path(
                d,
                &["status"],
                json!({"state": "Ready", "observedGeneration": generation, "proxyTargetBasisPoints": target}),
            );
        });
    }

    /// Starts the proxy upgrader (once per cluster; it runs as long as the server).
    pub(super) fn start_proxy_upgrader(&self) {
        if self.mdp_upgrader_started.swap(true, Ordering::SeqCst) {
            return;
        }
        self.later(self.timing.mdp_evict, |s| s.proxy_upgrader_tick());
    }

    fn proxy_upgrader_tick(&self) {
        {
            let mut st = self.lock();
            self.upgrade_proxies(&mut st);
        }
        self.later(self.timing.mdp_evict, |s| s.proxy_upgrader_tick());
    }

    /// The upgradable Pods of `revision`: auto-injected by it, controlled by a ReplicaSet
    /// whose template has no proxy of its own, neither finished nor being deleted.
    fn upgradable_pods(&self, st: &State, revision: &str) -> Vec<ProxyPod> {
        let (Some(pods), Some(rst), Some(nst)) = (
            st.type_for_kind("v1", "Pod"),
            st.type_for_kind("apps/v1", "ReplicaSet"),
            st.type_for_kind("v1", "Namespace"),
        ) else {
            return Vec::new();
        };
        let replicasets: BTreeMap<String, &Value> = st
            .list(&rst, None)
            .into_iter()
            .map(|(_, rs)| (meta_str(rs, "uid").to_string(), rs))
            .collect();
        st.list(&pods, None)
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| !being_deleted(p) && !pod_finished(p))
            .filter(|p| injected_revision(p).as_deref() == Some(revision))
            .filter_map(|p| {
                let rs = replicasets.get(controller_uid(p)?)?;
                let template = json!({"spec": rs.pointer("/spec/template/spec")?});
                if injection::manually_injected(&template) {
                    return None;
                }
                let ns = meta_str(p, "namespace");
                Some(ProxyPod {
                    namespace: ns.to_string(),
                    name: meta_str(p, "name").to_string(),
                    replicaset: format!("{ns}/{}", meta_str(rs, "name")),
                    version: proxy_version(p),
                    ready: pod_ready(p),
                    opted_in: managed_by_mdp(p, st.get(&nst, "", ns)),
                })
            })
            .collect()
    }

    /// One pass of the upgrader over every DataPlaneControl.
    fn upgrade_proxies(&self, st: &mut State) {
        let (Some(dpcs), Some(rst)) = (
            st.type_for_kind(DATAPLANE_API, "DataPlaneControl"),
            st.type_for_kind("apps/v1", "ReplicaSet"),
        ) else {
            return;
        };
        let desired: BTreeMap<String, i64> = st
            .list(&rst, None)
            .into_iter()
            .map(|(_, rs)| {
                (
                    format!("{}/{}", meta_str(rs, "namespace"), meta_str(rs, "name")),
                    rs.pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1),
                )
            })
            .collect();
        let controls: Vec<Value> = st
            .list(&dpcs, None)
            .into_iter()
            .map(|(_, d)| d.clone())
            .collect();
        for dpc in controls {
            let (Some(revision), Some(target)) = (
                util::get_str(&dpc, &["spec", "revision"]),
                util::get_str(&dpc, &["spec", "proxyVersion"]),
            ) else {
                continue;
            };
            let pods = self.upgradable_pods(st, revision);
            let enabled = dpc
                .pointer("/spec/proxyTargetBasisPoints")
                .and_then(Value::as_i64)
                .is_some_and(|bp| bp > 0);
            if enabled {
                for (ns, name) in evictions(&pods, &desired, target) {
                    // A 429 (a PodDisruptionBudget) is retried on the next pass.
                    if let Err(e) = self.evict(st, &ns, &name) {
                        tracing::debug!("mdp-controller: evicting {ns}/{name}: {}", e.message);
                    }
                }
            }
            let reported = dpc.pointer("/status/state").is_some();
            if let (true, Some(bp)) = (reported, basis_points_at_target(&pods, target))
                && dpc
                    .pointer("/status/proxyTargetBasisPoints")
                    .and_then(Value::as_i64)
                    != Some(bp)
            {
                let name = meta_str(&dpc, "name").to_string();
                let subresource = if dpcs.has_status { "status" } else { "" };
                self.controller_update(st, &dpcs, "", &name, MDP_MANAGER, subresource, |d| {
                    util::set_path(d, &["status", "proxyTargetBasisPoints"], json!(bp));
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn annotation_opts_in_with_string_or_boolean_true() {
        assert_eq!(
            annotation_opts_in(Some(r#"{"managed":"true"}"#)),
            Some(true)
        );
        assert_eq!(annotation_opts_in(Some(r#"{"managed": true}"#)), Some(true));
        assert_eq!(
            annotation_opts_in(Some(r#"{"managed":"false"}"#)),
            Some(false)
        );
        assert_eq!(annotation_opts_in(Some("managed")), None);
        assert_eq!(annotation_opts_in(Some("{}")), None);
        assert_eq!(annotation_opts_in(None), None);
    }

    #[test]
    fn pod_annotation_beats_the_namespace_annotation() {
        let with = |v: &str| json!({"metadata": {"annotations": {MDP_ANNOTATION: v}}});
        let plain = json!({"metadata": {}});
        let on = with(r#"{"managed":"true"}"#);
        let off = with(r#"{"managed":"false"}"#);
        assert!(managed_by_mdp(&plain, Some(&on)));
        assert!(!managed_by_mdp(&off, Some(&on)));
        assert!(managed_by_mdp(&on, Some(&plain)));
        assert!(!managed_by_mdp(&plain, Some(&plain)));
        assert!(!managed_by_mdp(&plain, None));
    }

    #[test]
    fn versions_compare_numerically_part_by_part() {
        assert_eq!(
            compare_versions("1.23.6-asm.9", "1.23.6-asm.14"),
            CmpOrdering::Less
        );
        assert_eq!(
            compare_versions("1.23.6-asm.14", "1.24.0-asm.1"),
            CmpOrdering::Less
        );
        assert_eq!(
            compare_versions("1.9.1-asm.1", "1.23.6-asm.14"),
            CmpOrdering::Less
        );
        assert_eq!(
            compare_versions("1.24.0-asm.1", "1.23.9-asm.3"),
            CmpOrdering::Greater
        );
        assert_eq!(
            compare_versions("1.23.6-asm.14", "1.23.6-asm.14"),
            CmpOrdering::Equal
        );
    }

    #[test]
    fn proxy_version_and_revision_come_from_the_injected_pod() {
        let pod = json!({"metadata": {"annotations": {"sidecar.istio.io/status": "{\"revision\":\"asm-managed\"}"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1"}, {"name": "istio-proxy", "image": "gcr.io/gke-release/asm/proxyv2:1.23.6-asm.14"}]}});
        assert_eq!(proxy_version(&pod).as_deref(), Some("1.23.6-asm.14"));
        assert_eq!(injected_revision(&pod).as_deref(), Some("asm-managed"));
        let plain = json!({"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}});
        assert_eq!(proxy_version(&plain), None);
        assert_eq!(injected_revision(&plain), None);
    }

    fn pod(rs: &str, name: &str, version: &str, ready: bool, opted_in: bool) -> ProxyPod {
        ProxyPod {
            namespace: "shop".into(),
            name: name.into(),
            replicaset: format!("shop/{rs}"),
            version: Some(version.into()),
            ready,
            opted_in,
        }
    }

    #[test]
    fn evictions_take_one_outdated_pod_per_settled_replicaset() {
        let desired = BTreeMap::from([
            ("shop/a".to_string(), 2),
            ("shop/b".to_string(), 2),
            ("shop/c".to_string(), 1),
        ]);
        let pods = [
            pod("a", "a-2", "1.0.0", true, true),
            pod("a", "a-1", "1.0.0", true, true),
            // b is not settled: one of its Pods is not Ready.
            pod("b", "b-1", "1.0.0", true, true),
            pod("b", "b-2", "2.0.0", false, true),
            // c is not opted in.
            pod("c", "c-1", "1.0.0", true, false),
        ];
        assert_eq!(
            evictions(&pods, &desired, "2.0.0"),
            [("shop".to_string(), "a-1".to_string())]
        );
        // A replica missing (being recreated) holds the ReplicaSet back too.
        assert!(evictions(&pods[..1], &desired, "2.0.0").is_empty());
        // Nothing is older than the target: nothing to do.
        assert!(evictions(&pods, &desired, "1.0.0").is_empty());
    }

    #[test]
    fn basis_points_count_pods_at_or_past_the_target() {
        let pods = [
            pod("a", "a-1", "1.0.0", true, true),
            pod("a", "a-2", "2.0.0", true, false),
            pod("a", "a-3", "2.1.0", true, true),
            pod("a", "a-4", "1.5.0", true, true),
        ];
        assert_eq!(basis_points_at_target(&pods, "2.0.0"), Some(5000));
        assert_eq!(basis_points_at_target(&[], "2.0.0"), None);
    }
}
