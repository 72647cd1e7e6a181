//! kube-controller-manager's StatefulSet, DaemonSet and Job controllers (after
//! github.com/kubernetes/kubernetes/pkg/controller/{statefulset,daemon,job}), reduced to
//! what shows through the API: their Pods and status.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::KubeApiServer;
use super::pods::node_names;
use super::registry::ResourceType;
use super::store::State;
use super::util::now_rfc3339;
use super::workloads::{
    KCM, PodPlacement, being_deleted, int_at, meta_str, owned, pod_finished, pod_ready,
    template_hash,
};

const REVISION_LABEL: &str = "controller-revision-hash";

/// Keeps non-zero counters and the ones always serialised.
fn counters(pairs: &[(&str, i64)], keep_zero: &[&str]) -> Map<String, Value> {
    pairs
        .iter()
        .filter(|(k, v)| *v != 0 || keep_zero.contains(k))
        .map(|(k, v)| ((*k).to_string(), json!(v)))
        .collect()
}

fn all_of(st: &State, rt: &ResourceType) -> Vec<Value> {
    st.list(rt, None)
        .into_iter()
        .map(|(_, v)| v.clone())
        .filter(|v| !being_deleted(v))
        .collect()
}

fn pod_label<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    pod.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

impl KubeApiServer {
    fn write_status(&self, st: &mut State, rt: &ResourceType, obj: &Value, status: Value) {
        if obj.get("status") != Some(&status) {
            let (ns, name) = (
                meta_str(obj, "namespace").to_string(),
                meta_str(obj, "name").to_string(),
            );
            self.controller_update(st, rt, &ns, &name, KCM, "status", |o| o["status"] = status);
        }
    }

    /// StatefulSets: Pods `<name>-0..N-1`, created in order (OrderedReady waits for each to
    /// be Ready), removed from the highest ordinal; a changed template replaces Pods from
    /// the highest ordinal, one at a time.
    pub(super) fn sync_statefulsets(&self, st: &mut State) {
        let (Some(rt), Some(pods)) = (
            st.type_for_kind("apps/v1", "StatefulSet"),
            st.type_for_kind("v1", "Pod"),
        ) else {
            return;
        };
        for sts in all_of(st, &rt) {
            let ns = meta_str(&sts, "namespace").to_string();
            let name = meta_str(&sts, "name").to_string();
            let uid = meta_str(&sts, "uid").to_string();
            let want = int_at(&sts, "/spec/replicas");
            let template = sts.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let revision = format!("{name}-{}", template_hash(&template));
            let ordered = sts
                .pointer("/spec/podManagementPolicy")
                .and_then(Value::as_str)
                != Some("Parallel");
            let mine = owned(st, &pods, &ns, &uid);
            let by_ordinal: BTreeMap<i64, Value> = mine
                .iter()
                .filter_map(|p| {
                    meta_str(p, "name")
                        .strip_prefix(&format!("{name}-"))
                        .and_then(|o| o.parse::<i64>().ok())
                        .map(|o| (o, p.clone()))
                })
                .collect();
            // Scale up in order.
            for ordinal in 0..want {
                if by_ordinal.contains_key(&ordinal) {
                    continue;
                }
                let all_before_ready =
                    (0..ordinal).all(|o| by_ordinal.get(&o).is_some_and(pod_ready));
                if ordered && !all_before_ready {
                    break;
                }
                let pod_name = format!("{name}-{ordinal}");
                let mut labels = BTreeMap::new();
                labels.insert(REVISION_LABEL.to_string(), revision.clone());
                labels.insert(
                    "statefulset.kubernetes.io/pod-name".into(),
                    pod_name.clone(),
                );
                labels.insert("apps.kubernetes.io/pod-index".into(), ordinal.to_string());
                let mut spec = Map::new();
                spec.insert("hostname".into(), json!(pod_name));
                if let Some(svc) = sts.pointer("/spec/serviceName").and_then(Value::as_str)
                    && !svc.is_empty()
                {
                    spec.insert("subdomain".into(), json!(svc));
                }
                self.create_pod(
                    st,
                    &pods,
                    &sts,
                    &template,
                    PodPlacement {
                        name: Some(pod_name),
                        labels,
                        spec,
                        ..PodPlacement::default()
                    },
                );
                if ordered {
                    break;
                }
            }
            // Scale down from the highest ordinal; then replace outdated Pods.
            if let Some((o, p)) = by_ordinal.iter().next_back()
                && *o >= want
            {
                self.remove_object(st, &pods, &ns, meta_str(p, "name"));
            } else if by_ordinal.len() as i64 == want
                && by_ordinal.values().all(pod_ready)
                && let Some((_, p)) = by_ordinal
                    .iter()
                    .rev()
                    .find(|(_, p)| pod_label(p, REVISION_LABEL) != Some(revision.as_str()))
            {
                self.remove_object(st, &pods, &ns, meta_str(p, "name"));
            }
            let mine: Vec<Value> = owned(st, &pods, &ns, &uid);
            let ready = mine.iter().filter(|p| pod_ready(p)).count() as i64;
            let updated = mine
                .iter()
                .filter(|p| pod_label(p, REVISION_LABEL) == Some(revision.as_str()))
                .count() as i64;
            let current_revision = if updated == mine.len() as i64 {
                revision.clone()
            } else {
                sts.pointer("/status/currentRevision")
                    .and_then(Value::as_str)
                    .unwrap_or(&revision)
                    .to_string()
            };
            let current = mine
                .iter()
                .filter(|p| pod_label(p, REVISION_LABEL) == Some(current_revision.as_str()))
                .count() as i64;
            let mut status = counters(
                &[
                    ("observedGeneration", int_at(&sts, "/metadata/generation")),
                    ("replicas", mine.len() as i64),
                    ("readyReplicas", ready),
                    ("currentReplicas", current),
                    ("updatedReplicas", updated),
                ],
                &["replicas"],
            );
            status.insert("currentRevision".into(), json!(current_revision));
            status.insert("updateRevision".into(), json!(revision));
            status.insert("collisionCount".into(), json!(0));
            status.insert("availableReplicas".into(), json!(ready));
            self.write_status(st, &rt, &sts, Value::Object(status));
        }
    }

    /// DaemonSets: one Pod per Node; a changed template replaces Pods one at a time.
    pub(super) fn sync_daemonsets(&self, st: &mut State) {
        let (Some(rt), Some(pods)) = (
            st.type_for_kind("apps/v1", "DaemonSet"),
            st.type_for_kind("v1", "Pod"),
        ) else {
            return;
        };
        let nodes = node_names(&self.name);
        for ds in all_of(st, &rt) {
            let ns = meta_str(&ds, "namespace").to_string();
            let uid = meta_str(&ds, "uid").to_string();
            let template = ds.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let hash = template_hash(&template);
            let generation = int_at(&ds, "/metadata/generation");
            let mine = owned(st, &pods, &ns, &uid);
            let on = |node: &str| {
                mine.iter()
                    .find(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node))
                    .cloned()
            };
            let all_ready = nodes.iter().all(|n| on(n).is_some_and(|p| pod_ready(&p)));
            let mut replaced = false;
            for node in &nodes {
                match on(node) {
                    None => {
                        let mut labels = BTreeMap::new();
                        labels.insert(REVISION_LABEL.to_string(), hash.clone());
                        labels.insert("pod-template-generation".into(), generation.to_string());
                        self.create_pod(
                            st,
                            &pods,
                            &ds,
                            &template,
                            PodPlacement {
                                node: Some(node.clone()),
                                labels,
                                ..PodPlacement::default()
                            },
                        );
                    }
                    Some(p)
                        if pod_label(&p, REVISION_LABEL) != Some(hash.as_str())
                            && all_ready
                            && !replaced =>
                    {
                        replaced = true;
                        self.remove_object(st, &pods, &ns, meta_str(&p, "name"));
                    }
                    Some(_) => {}
                }
            }
            let mine = owned(st, &pods, &ns, &uid);
            let ready = mine.iter().filter(|p| pod_ready(p)).count() as i64;
            let updated = mine
                .iter()
                .filter(|p| pod_label(p, REVISION_LABEL) == Some(hash.as_str()))
                .count() as i64;
            let desired = nodes.len() as i64;
            let status = counters(
                &[
                    ("currentNumberScheduled", mine.len() as i64),
                    ("numberMisscheduled", 0),
                    ("desiredNumberScheduled", desired),
                    ("numberReady", ready),
                    ("observedGeneration", generation),
                    ("updatedNumberScheduled", updated),
                    ("numberAvailable", ready),
                    ("numberUnavailable", desired - ready),
                ],
                &[
                    "currentNumberScheduled",
                    "numberMisscheduled",
                    "desiredNumberScheduled",
                    "numberReady",
                ],
            );
            self.write_status(st, &rt, &ds, Value::Object(status));
        }
    }

    /// Jobs: up to `parallelism` Pods at a time until `completions` have Succeeded.
    pub(super) fn sync_jobs(&self, st: &mut State) {
        let (Some(rt), Some(pods)) = (
            st.type_for_kind("batch/v1", "Job"),
            st.type_for_kind("v1", "Pod"),
        ) else {
            return;
        };
        for job in all_of(st, &rt) {
            let ns = meta_str(&job, "namespace").to_string();
            let name = meta_str(&job, "name").to_string();
            let uid = meta_str(&job, "uid").to_string();
            let completions = int_at(&job, "/spec/completions").max(1);
            let parallelism = int_at(&job, "/spec/parallelism");
            let suspended = job.pointer("/spec/suspend") == Some(&json!(true));
            let mine = owned(st, &pods, &ns, &uid);
            let succeeded = mine
                .iter()
                .filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Succeeded"))
                .count() as i64;
            let active = mine.iter().filter(|p| !pod_finished(p)).count() as i64;
            let done = succeeded >= completions;
            if !done && !suspended {
                let room = (parallelism.min(completions - succeeded) - active).max(0);
                let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
                for _ in 0..room {
                    let mut labels = BTreeMap::new();
                    for k in ["batch.kubernetes.io/controller-uid", "controller-uid"] {
                        labels.insert(k.to_string(), uid.clone());
                    }
                    for k in ["batch.kubernetes.io/job-name", "job-name"] {
                        labels.insert(k.to_string(), name.clone());
                    }
                    self.create_pod(
                        st,
                        &pods,
                        &job,
                        &template,
                        PodPlacement {
                            labels,
                            ..PodPlacement::default()
                        },
                    );
                }
            }
            let mine = owned(st, &pods, &ns, &uid);
            let active = mine.iter().filter(|p| !pod_finished(p)).count() as i64;
            let ready = mine.iter().filter(|p| pod_ready(p)).count() as i64;
            let old = job.get("status").cloned().unwrap_or(json!({}));
            let now = now_rfc3339();
            let mut status = Map::new();
            if let Some(c) = old.get("conditions")
                && done
            {
                status.insert("conditions".into(), c.clone());
            } else if done {
                let cond = |ty: &str| json!({"type": ty, "status": "True", "lastProbeTime": now, "lastTransitionTime": now});
                status.insert(
                    "conditions".into(),
                    json!([cond("SuccessCriteriaMet"), cond("Complete")]),
                );
            }
            status.insert(
                "startTime".into(),
                old.get("startTime").cloned().unwrap_or(json!(now)),
            );
            if done {
                status.insert(
                    "completionTime".into(),
                    old.get("completionTime").cloned().unwrap_or(json!(now)),
                );
            }
            status.extend(counters(
                &[("active", active), ("succeeded", succeeded)],
                &[],
            ));
            status.insert("terminating".into(), json!(0));
            status.insert("uncountedTerminatedPods".into(), json!({}));
            status.insert("ready".into(), json!(ready));
            self.write_status(st, &rt, &job, Value::Object(status));
        }
    }
}
