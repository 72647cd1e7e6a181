//! kube-controller-manager's Deployment and ReplicaSet controllers (after
//! github.com/kubernetes/kubernetes/pkg/controller/deployment and …/replicaset), and the
//! reconcile loop every workload controller runs in: level-triggered passes over the whole
//! store until nothing changes, scheduled after writes and timers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::KubeApiServer;
use super::registry::ResourceType;
use super::store::State;
use super::util::{self, now_rfc3339, now_secs, parse_rfc3339};

/// The field manager of everything kube-controller-manager writes.
pub(super) const KCM: &str = "kube-controller-manager";
const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX: &str = "deployment.kubernetes.io/max-replicas";
const HASH_LABEL: &str = "pod-template-hash";
/// The most passes one reconcile makes before yielding (a safety net; a settled store
/// needs one pass more than the number of dependent steps).
const MAX_PASSES: usize = 64;

/// The workload knobs of one cluster and the reconcile loop's flags.
#[derive(Debug, Default)]
pub struct WorkloadKnobs {
    /// `NS/NAME` of workloads whose Pods never become Ready (`--set workload.NS/NAME.ready=false`).
    pub unready: Vec<String>,
    /// Whether the knobs apply yet (only to Pods created after the scenario settled).
    pub armed: AtomicBool,
    /// A reconcile is scheduled and has not run yet.
    pub pending: AtomicBool,
    /// The scenario is being settled: kubelets start containers at once.
    pub settling: AtomicBool,
}

impl WorkloadKnobs {
    /// Knobs for `unready` workloads, armed at once (until scenario objects are settled).
    pub fn new(unready: Vec<String>) -> WorkloadKnobs {
        WorkloadKnobs {
            unready,
            armed: AtomicBool::new(true),
            ..WorkloadKnobs::default()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Small accessors shared by the workload controllers

pub(super) fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    util::get_str(obj, &["metadata", field]).unwrap_or_default()
}

pub(super) fn int_at(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

pub(super) fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// The uid of the object's controller owner.
pub(super) fn controller_uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
}

/// The ownerReference a controller puts on what it creates.
pub(super) fn owner_ref(owner: &Value) -> Value {
    json!({"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta_str(owner, "name"),
        "uid": meta_str(owner, "uid"), "controller": true, "blockOwnerDeletion": true})
}

pub(super) fn being_deleted(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

pub(super) fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Objects of a type in one namespace controlled by `owner_uid`.
pub(super) fn owned(st: &State, rt: &ResourceType, ns: &str, owner_uid: &str) -> Vec<Value> {
    st.list(rt, Some(ns))
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| controller_uid(v) == Some(owner_uid))
        .cloned()
        .collect()
}

/// Whether `labels` match a LabelSelector object (`matchLabels`, `matchExpressions`).
pub(super) fn selector_matches(selector: &Value, labels: Option<&Value>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let labels_ok = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| get(k) == v.as_str());
    let exprs_ok = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e["operator"].as_str().unwrap_or_default() {
                "In" => get(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => get(key).is_some(),
                "DoesNotExist" => get(key).is_none(),
                _ => false,
            }
        });
    labels_ok && exprs_ok
}

/// A selector as the Scale subresource shows it: `k=v,k2 in (a,b)`.
pub(super) fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let mut values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    parts.sort();
    parts.join(",")
}

/// A condition as Deployments carry it (with lastUpdateTime).
fn deployment_condition(ty: &str, status: &str, reason: &str, message: &str) -> Value {
    let now = now_rfc3339();
    json!({"type": ty, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message})
}

/// `SetDeploymentCondition`: no change when status and reason are the same; a status that
/// stays keeps its lastTransitionTime.
fn set_condition(conds: &mut Vec<Value>, mut c: Value) {
    if let Some(i) = conds.iter().position(|x| x["type"] == c["type"]) {
        if conds[i]["status"] == c["status"] && conds[i]["reason"] == c["reason"] {
            return;
        }
        if conds[i]["status"] == c["status"] {
            c["lastTransitionTime"] = conds[i]["lastTransitionTime"].clone();
        }
        conds.remove(i);
    }
    conds.push(c);
}

// ---------------------------------------------------------------------------------------
// Pure decisions

/// An int-or-percent (`maxSurge`, `maxUnavailable`) against `total`; percentages round up
/// for surge and down for unavailability, as `intstr.GetScaledValueFromIntOrPercent`.
pub fn resolve_int_or_percent(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if round_up => (p * total + 99) / 100,
            Some(p) => p * total / 100,
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

/// `(maxSurge, maxUnavailable)` of a RollingUpdate Deployment; both zero means one may be
/// unavailable (`ResolveFenceposts`).
pub fn fenceposts(deploy: &Value) -> (i64, i64) {
    let desired = int_at(deploy, "/spec/replicas");
    let ru = deploy
        .pointer("/spec/strategy/rollingUpdate")
        .cloned()
        .unwrap_or(json!({}));
    let surge = resolve_int_or_percent(ru.get("maxSurge").unwrap_or(&json!("25%")), desired, true);
    let unavailable = resolve_int_or_percent(
        ru.get("maxUnavailable").unwrap_or(&json!("25%")),
        desired,
        false,
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// The pod-template-hash of a template: FNV-32a of its canonical JSON, printed in decimal
/// and mapped onto the apiserver's safe alphabet (the real controller hashes the Go
/// struct; stable per template is what matters).
pub fn template_hash(template: &Value) -> String {
    let mut t = template.clone();
    util::sort_keys(&mut t);
    let mut h: u32 = 0x811c_9dc5;
    for b in t.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| SAFE[usize::from(b) % SAFE.len()] as char)
        .collect()
}

/// A template without the pod-template-hash label (`EqualIgnoreHash`).
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    without_go_zeros(&mut t);
    t
}

/// Drops every field holding its Go zero value (false, 0, "", null, {} or []), recursively.
/// The real controller compares Go structs (`equality.Semantic`), where an absent non-pointer
/// field and its zero value are the same thing; a template that arrived as protobuf keeps
/// zeros a JSON client leaves out, and must still match its own ReplicaSet.
fn without_go_zeros(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.values_mut().for_each(without_go_zeros);
            m.retain(|_, x| !is_go_zero(x));
        }
        Value::Array(a) => a.iter_mut().for_each(without_go_zeros),
        _ => {}
    }
}

fn is_go_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

/// One ReplicaSet as the rollout arithmetic sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RsCounts {
    /// spec.replicas.
    pub replicas: i64,
    /// status.availableReplicas.
    pub available: i64,
}

/// One step of a RollingUpdate (`reconcileNewReplicaSet` then `reconcileOldReplicaSets`):
/// the new ReplicaSet's and each old one's target replicas. Old ones are oldest first.
pub fn rolling_step(
    desired: i64,
    surge: i64,
    unavailable: i64,
    new: &RsCounts,
    old: &[RsCounts],
) -> (i64, Vec<i64>) {
    let old_total: i64 = old.iter().map(|r| r.replicas).sum();
    let new_target = if new.replicas > desired {
        desired
    } else {
        let allowed = (desired + surge - old_total - new.replicas).max(0);
        new.replicas + allowed.min(desired - new.replicas)
    };
    let mut old_targets: Vec<i64> = old.iter().map(|r| r.replicas).collect();
    if old_total == 0 {
        return (new_target, old_targets);
    }
    let all_total = old_total + new_target;
    let min_available = desired - unavailable;
    let new_unavailable = (new_target - new.available).max(0);
    let mut max_scale_down = all_total - min_available - new_unavailable;
    if max_scale_down <= 0 {
        return (new_target, old_targets);
    }
    // First the old replicas that are not available anyway.
    for (i, r) in old.iter().enumerate() {
        if max_scale_down <= 0 {
            break;
        }
        let unhealthy = (old_targets[i] - r.available).max(0);
        let cut = unhealthy.min(max_scale_down);
        old_targets[i] -= cut;
        max_scale_down -= cut;
    }
    // Then available ones, as far as the minimum availability allows.
    let available_total: i64 = old.iter().map(|r| r.available).sum::<i64>() + new.available;
    let mut can_remove = available_total - min_available;
    for t in old_targets.iter_mut() {
        if can_remove <= 0 {
            break;
        }
        let cut = (*t).min(can_remove);
        *t -= cut;
        can_remove -= cut;
    }
    (new_target, old_targets)
}

/// `DeploymentComplete`.
fn complete(desired: i64, generation: i64, status: &Value) -> bool {
    int_at(status, "/updatedReplicas") == desired
        && int_at(status, "/replicas") == desired
        && int_at(status, "/availableReplicas") == desired
        && int_at(status, "/observedGeneration") >= generation
}

/// `DeploymentProgressing`: more updated, ready or available replicas, or fewer old ones.
fn progressing(old: &Value, new: &Value) -> bool {
    let old_old = int_at(old, "/replicas") - int_at(old, "/updatedReplicas");
    let new_old = int_at(new, "/replicas") - int_at(new, "/updatedReplicas");
    int_at(new, "/updatedReplicas") > int_at(old, "/updatedReplicas")
        || new_old < old_old
        || int_at(new, "/readyReplicas") > int_at(old, "/readyReplicas")
        || int_at(new, "/availableReplicas") > int_at(old, "/availableReplicas")
}

/// Drops zero counters (the Go fields are `omitempty`).
fn status_counters(pairs: &[(&str, i64)], keep_zero: &[&str]) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in pairs {
        if *v != 0 || keep_zero.contains(k) {
            m.insert((*k).into(), json!(v));
        }
    }
    m
}

// ---------------------------------------------------------------------------------------
// The loop

impl KubeApiServer {
    /// Schedules a reconcile of the workload controllers soon (coalesced).
    pub(super) fn schedule_reconcile(&self) {
        if tokio::runtime::Handle::try_current().is_err()
            || self.workloads.pending.swap(true, Ordering::SeqCst)
        {
            return;
        }
        self.later(Duration::from_millis(2), |s| {
            s.workloads.pending.store(false, Ordering::SeqCst);
            s.reconcile_workloads();
        });
    }

    /// Applies a scenario's objects and settles them at once: CRDs Established, every
    /// Pod they produce Running and Ready. Fault knobs apply only to Pods created after.
    /// Objects are applied in order and the controllers settle after each, so what an
    /// object needs must come before it: an istiod Deployment is Available (and serves
    /// injection) before the workloads listed after it create their Pods.
    pub fn settle_scenario_objects(&self, objects: &[Value]) -> anyhow::Result<()> {
        self.workloads.armed.store(false, Ordering::SeqCst);
        self.workloads.settling.store(true, Ordering::SeqCst);
        let result = self.apply_all(objects);
        self.workloads.settling.store(false, Ordering::SeqCst);
        self.workloads.armed.store(true, Ordering::SeqCst);
        result
    }

    fn apply_all(&self, objects: &[Value]) -> anyhow::Result<()> {
        for obj in objects {
            let what = format!(
                "{} {}/{}",
                obj["kind"].as_str().unwrap_or_default(),
                meta_str(obj, "namespace"),
                meta_str(obj, "name")
            );
            super::handlers::controller_apply(self, obj.clone(), "asm-sim-scenario")
                .map_err(|e| anyhow::anyhow!("scenario object {what}: {}", e.message))?;
            if obj["kind"] == "CustomResourceDefinition" {
                self.establish_crd(meta_str(obj, "name"), true);
            }
            self.reconcile_workloads();
        }
        Ok(())
    }

    /// Runs every workload controller until nothing changes.
    pub(super) fn reconcile_workloads(&self) {
        let mut st = self.lock();
        for _ in 0..MAX_PASSES {
            let rv = st.rv;
            self.workload_pass(&mut st);
            if st.rv == rv {
                return;
            }
        }
        drop(st);
        self.schedule_reconcile();
    }

    fn workload_pass(&self, st: &mut State) {
        self.collect_garbage(st);
        self.sync_deployments(st);
        self.sync_replicasets(st);
        self.sync_statefulsets(st);
        self.sync_daemonsets(st);
        self.sync_jobs(st);
        self.sync_disruption_budgets(st);
    }

    /// Whether Pods of the workload `ns/name` are to crash (the armed `ready=false` knob).
    pub(super) fn unready_workload(&self, ns: &str, name: &str) -> bool {
        self.workloads.armed.load(Ordering::SeqCst)
            && self
                .workloads
                .unready
                .iter()
                .any(|w| *w == format!("{ns}/{name}"))
    }

    // -----------------------------------------------------------------------------------
    // Deployments

    fn sync_deployments(&self, st: &mut State) {
        let (Some(deploys), Some(rss)) = (
            st.type_for_kind("apps/v1", "Deployment"),
            st.type_for_kind("apps/v1", "ReplicaSet"),
        ) else {
            return;
        };
        let all: Vec<Value> = st
            .list(&deploys, None)
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect();
        for d in all {
            if !being_deleted(&d) {
                self.sync_deployment(st, &deploys, &rss, &d);
            }
        }
    }

    fn sync_deployment(
        &self,
        st: &mut State,
        deploys: &ResourceType,
        rst: &ResourceType,
        d: &Value,
    ) {
        let ns = meta_str(d, "namespace").to_string();
        let name = meta_str(d, "name").to_string();
        let uid = meta_str(d, "uid").to_string();
        let desired = int_at(d, "/spec/replicas");
        let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let mut rs_list = owned(st, rst, &ns, &uid);
        rs_list.sort_by_key(|r| {
            annotation(r, REVISION)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        });
        let revision = |r: &Value| {
            annotation(r, REVISION)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let new_idx = rs_list
            .iter()
            .position(|r| without_hash(&r["spec"]["template"]) == without_hash(&template));
        let max_old_revision = rs_list
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != new_idx)
            .map(|(_, r)| revision(r))
            .max()
            .unwrap_or(0);
        let recreate = d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
        let (surge, unavailable) = if recreate { (0, 0) } else { fenceposts(d) };
        let mut conditions: Vec<Value> = d
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let paused = d.pointer("/spec/paused") == Some(&json!(true));

        // The new ReplicaSet: found (and given the newest revision), or created.
        let new_rs_name = match new_idx {
            Some(i) => {
                let rs = rs_list[i].clone();
                let rs_name = meta_str(&rs, "name").to_string();
                let rev = revision(&rs);
                if rev <= max_old_revision {
                    let next = max_old_revision + 1;
                    self.controller_update(st, rst, &ns, &rs_name, KCM, "", |o| {
                        let a = util::ensure_obj(o, &["metadata", "annotations"]);
                        let history = a
                            .get(REVISION_HISTORY)
                            .and_then(Value::as_str)
                            .filter(|h| !h.is_empty())
                            .map(|h| format!("{h},{rev}"))
                            .unwrap_or_else(|| rev.to_string());
                        a.insert(REVISION_HISTORY.into(), json!(history));
                        a.insert(REVISION.into(), json!(next.to_string()));
                    });
                }
                if !conditions.iter().any(|c| c["type"] == "Progressing") {
                    set_condition(
                        &mut conditions,
                        deployment_condition(
                            "Progressing",
                            "True",
                            "FoundNewReplicaSet",
                            &format!("Found new replica set \"{rs_name}\""),
                        ),
                    );
                }
                Some(rs_name)
            }
            None if paused => None,
            None => {
                let old_pods: i64 = rs_list.iter().map(|r| int_at(r, "/status/replicas")).sum();
                let old_spec: i64 = rs_list.iter().map(|r| int_at(r, "/spec/replicas")).sum();
                let replicas = if recreate {
                    if old_pods > 0 || old_spec > 0 {
                        // Recreate: the old pods go first, the new ReplicaSet comes after.
                        -1
                    } else {
                        desired
                    }
                } else {
                    (desired + surge - old_spec).clamp(0, desired)
                };
                if replicas < 0 {
                    None
                } else {
                    let rs_name = self.create_replicaset(
                        st,
                        rst,
                        d,
                        &template,
                        replicas,
                        max_old_revision + 1,
                        desired + surge,
                    );
                    set_condition(
                        &mut conditions,
                        deployment_condition(
                            "Progressing",
                            "True",
                            "NewReplicaSetCreated",
                            &format!("Created new replica set \"{rs_name}\""),
                        ),
                    );
                    Some(rs_name)
                }
            }
        };

        // The Deployment's own revision annotation follows its new ReplicaSet (written with
        // the status: the status strategy keeps annotations).
        let new_revision = new_rs_name
            .as_ref()
            .and_then(|n| st.get(rst, &ns, n))
            .map(|rs| revision(rs).to_string())
            .filter(|rev| annotation(d, REVISION) != Some(rev.as_str()));

        // Scaling.
        let rs_list = {
            let mut l = owned(st, rst, &ns, &uid);
            l.sort_by_key(|r| (revision(r), meta_str(r, "creationTimestamp").to_string()));
            l
        };
        let is_new = |r: &Value| Some(meta_str(r, "name")) == new_rs_name.as_deref();
        if !paused {
            if recreate {
                for r in rs_list.iter().filter(|r| !is_new(r)) {
                    self.scale_replicaset(st, rst, r, 0, desired, desired);
                }
                let old_pods: i64 = owned(st, rst, &ns, &uid)
                    .iter()
                    .filter(|r| !is_new(r))
                    .map(|r| int_at(r, "/status/replicas"))
                    .sum();
                if old_pods == 0
                    && let Some(r) = rs_list.iter().find(|r| is_new(r))
                {
                    self.scale_replicaset(st, rst, r, desired, desired, desired);
                }
            } else if let Some(new_rs) = rs_list.iter().find(|r| is_new(r)) {
                let counts = |r: &Value| RsCounts {
                    replicas: int_at(r, "/spec/replicas"),
                    available: int_at(r, "/status/availableReplicas"),
                };
                let olds: Vec<&Value> = rs_list.iter().filter(|r| !is_new(r)).collect();
                let old_counts: Vec<RsCounts> = olds.iter().map(|r| counts(r)).collect();
                let (new_target, old_targets) =
                    rolling_step(desired, surge, unavailable, &counts(new_rs), &old_counts);
                self.scale_replicaset(st, rst, new_rs, new_target, desired, desired + surge);
                for (r, t) in olds.iter().zip(old_targets) {
                    self.scale_replicaset(st, rst, r, t, desired, desired + surge);
                }
            }
            self.cleanup_history(st, rst, d, new_rs_name.as_deref());
        }

        // Status.
        let rs_list = owned(st, rst, &ns, &uid);
        let sum = |ptr: &str| rs_list.iter().map(|r| int_at(r, ptr)).sum::<i64>();
        let new_rs = rs_list.iter().find(|r| is_new(r));
        let available = sum("/status/availableReplicas");
        let spec_total = sum("/spec/replicas");
        let generation = int_at(d, "/metadata/generation");
        let counters = status_counters(
            &[
                ("observedGeneration", generation),
                ("replicas", sum("/status/replicas")),
                (
                    "updatedReplicas",
                    new_rs.map(|r| int_at(r, "/status/replicas")).unwrap_or(0),
                ),
                ("readyReplicas", sum("/status/readyReplicas")),
                ("availableReplicas", available),
                ("unavailableReplicas", (spec_total - available).max(0)),
            ],
            &[],
        );
        let mut status = Value::Object(counters.clone());
        if available >= desired - unavailable {
            set_condition(
                &mut conditions,
                deployment_condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                ),
            );
        } else {
            set_condition(
                &mut conditions,
                deployment_condition(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                ),
            );
        }
        let old_status = d.get("status").cloned().unwrap_or(json!({}));
        let current = conditions
            .iter()
            .find(|c| c["type"] == "Progressing")
            .cloned();
        let already_complete = int_at(&status, "/replicas") == int_at(&status, "/updatedReplicas")
            && current
                .as_ref()
                .is_some_and(|c| c["reason"] == "NewReplicaSetAvailable");
        let rs_label = new_rs_name.clone().unwrap_or_default();
        let deadline = d
            .pointer("/spec/progressDeadlineSeconds")
            .and_then(Value::as_i64);
        if let Some(deadline) = deadline
            && !already_complete
            && !paused
        {
            if complete(desired, generation, &status) {
                set_condition(
                    &mut conditions,
                    deployment_condition(
                        "Progressing",
                        "True",
                        "NewReplicaSetAvailable",
                        &format!("ReplicaSet \"{rs_label}\" has successfully progressed."),
                    ),
                );
            } else if progressing(&old_status, &status) {
                let mut c = deployment_condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &format!("ReplicaSet \"{rs_label}\" is progressing."),
                );
                if let Some(cur) = &current {
                    if cur["status"] == "True" {
                        c["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                    }
                    conditions.retain(|x| x["type"] != "Progressing");
                }
                conditions.push(c);
            } else if let Some(cur) = &current {
                let from = cur["lastUpdateTime"]
                    .as_str()
                    .and_then(parse_rfc3339)
                    .unwrap_or_else(now_secs);
                let timed_out = cur["reason"] == "ProgressDeadlineExceeded"
                    || (cur["reason"] != "NewReplicaSetAvailable" && from + deadline < now_secs());
                if timed_out {
                    set_condition(
                        &mut conditions,
                        deployment_condition(
                            "Progressing",
                            "False",
                            "ProgressDeadlineExceeded",
                            &format!("ReplicaSet \"{rs_label}\" has timed out progressing."),
                        ),
                    );
                } else if cur["reason"] != "NewReplicaSetAvailable" {
                    // Look again once the deadline has passed.
                    let wait = (from + deadline + 1 - now_secs()).max(1) as u64;
                    self.later(Duration::from_secs(wait), |s| s.schedule_reconcile());
                }
            }
        }
        if !conditions.is_empty() {
            status["conditions"] = json!(conditions);
        }
        if let Some(c) = d.pointer("/status/collisionCount") {
            status["collisionCount"] = c.clone();
        }
        if d.get("status") != Some(&status) || new_revision.is_some() {
            self.controller_update(st, deploys, &ns, &name, KCM, "status", |o| {
                o["status"] = status;
                if let Some(rev) = new_revision {
                    util::ensure_obj(o, &["metadata", "annotations"])
                        .insert(REVISION.into(), json!(rev));
                }
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create_replicaset(
        &self,
        st: &mut State,
        rst: &ResourceType,
        d: &Value,
        template: &Value,
        replicas: i64,
        revision: i64,
        max_replicas: i64,
    ) -> String {
        let hash = template_hash(template);
        let name = format!("{}-{hash}", meta_str(d, "name"));
        let mut t = template.clone();
        util::ensure_obj(&mut t, &["metadata", "labels"]).insert(HASH_LABEL.into(), json!(hash));
        let labels = t.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
        let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
        util::ensure_obj(&mut selector, &["matchLabels"]).insert(HASH_LABEL.into(), json!(hash));
        let mut annotations: Map<String, Value> = d
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "kubectl.kubernetes.io/last-applied-configuration"
                        | REVISION
                        | REVISION_HISTORY
                        | DESIRED
                        | MAX
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        annotations.insert(
            DESIRED.into(),
            json!(int_at(d, "/spec/replicas").to_string()),
        );
        annotations.insert(MAX.into(), json!(max_replicas.to_string()));
        annotations.insert(REVISION.into(), json!(revision.to_string()));
        let mut spec = json!({"replicas": replicas, "selector": selector, "template": t});
        if let Some(m) = d.pointer("/spec/minReadySeconds") {
            spec["minReadySeconds"] = m.clone();
        }
        let rs = json!({
            "kind": "ReplicaSet", "apiVersion": "apps/v1",
            "metadata": {"name": name, "namespace": meta_str(d, "namespace"), "labels": labels,
                "annotations": annotations, "ownerReferences": [owner_ref(d)]},
            "spec": spec,
        });
        if st.get(rst, meta_str(d, "namespace"), &name).is_none() {
            self.controller_create(st, rst, rs, KCM);
        }
        name
    }

    /// Sets a ReplicaSet's replicas (and the desired/max annotations the controller keeps on
    /// whatever it scales).
    fn scale_replicaset(
        &self,
        st: &mut State,
        rst: &ResourceType,
        rs: &Value,
        replicas: i64,
        desired: i64,
        max: i64,
    ) {
        let current = st
            .get(rst, meta_str(rs, "namespace"), meta_str(rs, "name"))
            .map(|r| int_at(r, "/spec/replicas"))
            .unwrap_or(-1);
        if current == replicas || current < 0 {
            return;
        }
        let (ns, name) = (
            meta_str(rs, "namespace").to_string(),
            meta_str(rs, "name").to_string(),
        );
        self.controller_update(st, rst, &ns, &name, KCM, "", |o| {
            util::set_path(o, &["spec", "replicas"], json!(replicas));
            let g = int_at(o, "/metadata/generation") + 1;
            util::set_path(o, &["metadata", "generation"], json!(g));
            let a = util::ensure_obj(o, &["metadata", "annotations"]);
            a.insert(DESIRED.into(), json!(desired.to_string()));
            a.insert(MAX.into(), json!(max.to_string()));
        });
    }

    /// Deletes the oldest scaled-down ReplicaSets beyond `revisionHistoryLimit`.
    fn cleanup_history(&self, st: &mut State, rst: &ResourceType, d: &Value, new: Option<&str>) {
        let limit = d
            .pointer("/spec/revisionHistoryLimit")
            .and_then(Value::as_i64)
            .unwrap_or(10)
            .max(0) as usize;
        let ns = meta_str(d, "namespace");
        let mut idle: Vec<(i64, String)> = owned(st, rst, ns, meta_str(d, "uid"))
            .iter()
            .filter(|r| Some(meta_str(r, "name")) != new)
            .filter(|r| int_at(r, "/spec/replicas") == 0 && int_at(r, "/status/replicas") == 0)
            .map(|r| {
                (
                    annotation(r, REVISION)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    meta_str(r, "name").to_string(),
                )
            })
            .collect();
        if idle.len() <= limit {
            return;
        }
        idle.sort();
        let excess = idle.len() - limit;
        for (_, name) in idle.into_iter().take(excess) {
            self.remove_object(st, rst, ns, &name);
        }
    }

    /// A controller's delete (dependents are left to the garbage collector).
    pub(super) fn remove_object(&self, st: &mut State, rt: &ResourceType, ns: &str, name: &str) {
        let key = super::store::ObjKey::new(rt, ns, name);
        if let Some(gone) = st.remove(&key) {
            self.after_delete(st, rt, &gone);
        }
    }

    // -----------------------------------------------------------------------------------
    // ReplicaSets

    fn sync_replicasets(&self, st: &mut State) {
        let (Some(rst), Some(pods)) = (
            st.type_for_kind("apps/v1", "ReplicaSet"),
            st.type_for_kind("v1", "Pod"),
        ) else {
            return;
        };
        let all: Vec<Value> = st
            .list(&rst, None)
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect();
        for rs in all {
            if being_deleted(&rs) {
                continue;
            }
            let ns = meta_str(&rs, "namespace").to_string();
            let name = meta_str(&rs, "name").to_string();
            let uid = meta_str(&rs, "uid").to_string();
            let want = int_at(&rs, "/spec/replicas");
            let mut mine: Vec<Value> = owned(st, &pods, &ns, &uid)
                .into_iter()
                .filter(|p| !being_deleted(p) && !pod_finished(p))
                .collect();
            let have = mine.len() as i64;
            if have < want {
                let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
                for _ in have..want {
                    self.create_pod(st, &pods, &rs, &template, PodPlacement::default());
                }
            } else if have > want {
                // Not-ready, then unscheduled, then newest pods go first.
                mine.sort_by_key(|p| {
                    (
                        pod_ready(p),
                        p.pointer("/spec/nodeName").is_some(),
                        std::cmp::Reverse(meta_str(p, "creationTimestamp").to_string()),
                    )
                });
                for p in mine.iter().take((have - want) as usize) {
                    self.remove_object(st, &pods, &ns, meta_str(p, "name"));
                }
            }
            let mine: Vec<Value> = owned(st, &pods, &ns, &uid)
                .into_iter()
                .filter(|p| !being_deleted(p) && !pod_finished(p))
                .collect();
            let template_labels = rs.pointer("/spec/template/metadata/labels").cloned();
            let labelled = mine
                .iter()
                .filter(|p| {
                    let pl = p.pointer("/metadata/labels");
                    template_labels
                        .as_ref()
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                        .all(|(k, v)| pl.and_then(|l| l.get(k)) == Some(v))
                })
                .count() as i64;
            let ready = mine.iter().filter(|p| pod_ready(p)).count() as i64;
            let status = Value::Object(status_counters(
                &[
                    ("replicas", mine.len() as i64),
                    ("fullyLabeledReplicas", labelled),
                    ("readyReplicas", ready),
                    ("availableReplicas", ready),
                    ("observedGeneration", int_at(&rs, "/metadata/generation")),
                ],
                &["replicas"],
            ));
            if rs.get("status") != Some(&status) {
                self.controller_update(st, &rst, &ns, &name, KCM, "status", |o| {
                    o["status"] = status;
                });
            }
        }
    }
}

/// Where a controller wants a new Pod.
#[derive(Debug, Default, Clone)]
pub(super) struct PodPlacement {
    /// A fixed name (StatefulSets) instead of `generateName`.
    pub name: Option<String>,
    /// A fixed node (DaemonSets) instead of the scheduler's choice.
    pub node: Option<String>,
    /// Extra labels (revision hashes, job names).
    pub labels: BTreeMap<String, String>,
    /// Extra spec fields (hostname, subdomain).
    pub spec: Map<String, Value>,
}

/// Whether a Pod has terminated for good (Succeeded or Failed).
pub(super) fn pod_finished(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_or_percent_rounds_like_the_controller() {
        assert_eq!(resolve_int_or_percent(&json!("25%"), 1, true), 1);
        assert_eq!(resolve_int_or_percent(&json!("25%"), 1, false), 0);
        assert_eq!(resolve_int_or_percent(&json!("50%"), 3, true), 2);
        assert_eq!(resolve_int_or_percent(&json!("50%"), 3, false), 1);
        assert_eq!(resolve_int_or_percent(&json!(2), 10, false), 2);
    }

    #[test]
    fn fenceposts_never_both_zero() {
        let d = json!({"spec": {"replicas": 1, "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"}}}});
        assert_eq!(fenceposts(&d), (0, 1));
        let d = json!({"spec": {"replicas": 4}});
        assert_eq!(fenceposts(&d), (1, 1));
    }

    #[test]
    fn template_hash_is_stable_and_uses_the_safe_alphabet() {
        let t =
            json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c"}]}});
        let h = template_hash(&t);
        assert_eq!(h, template_hash(&t.clone()));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        let other =
            json!({"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c"}]}});
        assert_ne!(h, template_hash(&other));
    }

    #[test]
    fn rolling_step_surges_then_removes_old_as_new_become_available() {
        let rs = |replicas, available| RsCounts {
            replicas,
            available,
        };
        // 2 replicas, surge 1, unavailable 0: one new pod first, old ones stay.
        assert_eq!(rolling_step(2, 1, 0, &rs(0, 0), &[rs(2, 2)]), (1, vec![2]));
        // The new pod is available: one old one goes.
        assert_eq!(rolling_step(2, 1, 0, &rs(1, 1), &[rs(2, 2)]), (1, vec![1]));
        assert_eq!(rolling_step(2, 1, 0, &rs(1, 1), &[rs(1, 1)]), (2, vec![1]));
        assert_eq!(rolling_step(2, 1, 0, &rs(2, 2), &[rs(1, 1)]), (2, vec![0]));
        // Nothing goes while that would leave fewer than the minimum available.
        assert_eq!(rolling_step(2, 1, 0, &rs(1, 0), &[rs(2, 2)]), (1, vec![2]));
        // Unavailable old pods go first when something may go.
        assert_eq!(rolling_step(3, 1, 1, &rs(1, 1), &[rs(3, 1)]), (1, vec![1]));
        // maxUnavailable 1 with surge 0: an old pod goes before any new one exists.
        assert_eq!(rolling_step(2, 0, 1, &rs(0, 0), &[rs(2, 2)]), (0, vec![1]));
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let sel = json!({"matchLabels": {"app": "a"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x", "y"]}]});
        assert!(selector_matches(
            &sel,
            Some(&json!({"app": "a", "tier": "y"}))
        ));
        assert!(!selector_matches(&sel, Some(&json!({"app": "a"}))));
        assert_eq!(selector_string(&sel), "app=a,tier in (x,y)");
    }
}
