//! PodDisruptionBudgets (the disruption controller's status, after
//! github.com/kubernetes/kubernetes/pkg/controller/disruption) and the Pod `eviction`
//! subresource that honours them (k8s.io/kubernetes/pkg/registry/core/pod/storage/eviction.go).

use serde_json::{Value, json};

use super::KubeApiServer;
use super::status::{ApiError, ApiResult};
use super::store::State;
use super::util::now_rfc3339;
use super::workloads::{
    KCM, being_deleted, int_at, meta_str, pod_ready, resolve_int_or_percent, selector_matches,
};

/// `(expected, desiredHealthy)` of a budget over `expected` matching Pods.
pub fn budget(pdb: &Value, expected: i64) -> (i64, i64) {
    let spec = &pdb["spec"];
    let desired = if let Some(min) = spec.get("minAvailable") {
        resolve_int_or_percent(min, expected, true)
    } else if let Some(max) = spec.get("maxUnavailable") {
        (expected - resolve_int_or_percent(max, expected, true)).max(0)
    } else {
        0
    };
    (expected, desired)
}

fn matching_pods<'a>(st: &'a State, pdb: &Value) -> Vec<&'a Value> {
    let ns = meta_str(pdb, "namespace");
    let selector = pdb.pointer("/spec/selector").cloned().unwrap_or(json!({}));
    st.objects
        .iter()
        .filter(|(k, v)| {
            k.group.is_empty()
                && k.plural == "pods"
                && k.namespace == ns
                && !being_deleted(v)
                && selector_matches(&selector, v.pointer("/metadata/labels"))
        })
        .map(|(_, v)| v)
        .collect()
}

impl KubeApiServer {
    /// The disruption controller: each budget's status from its Ready Pods.
    pub(super) fn sync_disruption_budgets(&self, st: &mut State) {
        let Some(rt) = st.type_for_kind("policy/v1", "PodDisruptionBudget") else {
            return;
        };
        let all: Vec<Value> = st
            .list(&rt, None)
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect();
        for pdb in all {
            let pods = matching_pods(st, &pdb);
            let healthy = pods.iter().filter(|p| pod_ready(p)).count() as i64;
            let (expected, desired) = budget(&pdb, pods.len() as i64);
            let allowed = (healthy - desired).max(0);
            let old = pdb.get("status").cloned().unwrap_or(json!({}));
            let (status_word, reason) = if allowed > 0 {
                ("True", "SufficientPods")
            } else {
                ("False", "InsufficientPods")
            };
            let conditions = match old.pointer("/conditions/0") {
                Some(c) if c["status"] == status_word && c["reason"] == reason => {
                    json!([c])
                }
                _ => json!([{"type": "DisruptionAllowed", "status": status_word,
                    "observedGeneration": int_at(&pdb, "/metadata/generation"),
                    "lastTransitionTime": now_rfc3339(), "reason": reason, "message": ""}]),
            };
            let status = json!({
                "observedGeneration": int_at(&pdb, "/metadata/generation"),
                "disruptionsAllowed": allowed, "currentHealthy": healthy,
                "desiredHealthy": desired, "expectedPods": expected, "conditions": conditions,
            });
            if pdb.get("status") != Some(&status) {
                let (ns, name) = (
                    meta_str(&pdb, "namespace").to_string(),
                    meta_str(&pdb, "name").to_string(),
                );
                self.controller_update(st, &rt, &ns, &name, KCM, "status", |o| {
                    o["status"] = status
                });
            }
        }
    }

    /// `POST pods/NAME/eviction`: deletes the Pod unless a budget covering it allows no
    /// disruption (429, as the eviction registry answers).
    pub(super) fn evict(&self, st: &mut State, ns: &str, name: &str) -> ApiResult<Value> {
        let pods = st
            .type_for_kind("v1", "Pod")
            .ok_or_else(|| ApiError::internal("no pods"))?;
        let pod = st.get(&pods, ns, name).cloned().ok_or_else(|| {
            ApiError::not_found(&super::status::Target {
                group: "",
                resource: "pods",
                name,
            })
        })?;
        let finished = matches!(
            pod.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        if let Some(rt) = st.type_for_kind("policy/v1", "PodDisruptionBudget")
            && !finished
        {
            let budgets: Vec<Value> = st
                .list(&rt, Some(ns))
                .into_iter()
                .map(|(_, v)| v.clone())
                .filter(|b| {
                    selector_matches(
                        b.pointer("/spec/selector").unwrap_or(&json!({})),
                        pod.pointer("/metadata/labels"),
                    )
                })
                .collect();
            if budgets.len() > 1 {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
            if let Some(b) = budgets.first() {
                let pods_now = matching_pods(st, b);
                let healthy = pods_now.iter().filter(|p| pod_ready(p)).count() as i64;
                let (_, desired) = budget(b, pods_now.len() as i64);
                let allowed = healthy - desired;
                // An unready pod's eviction does not reduce the healthy count.
                if pod_ready(&pod) && allowed < 1 {
                    let budget_name = meta_str(b, "name");
                    return Err(ApiError::new(
                        429,
                        Some("TooManyRequests"),
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                    )
                    .with_details(json!({"causes": [{"reason": "DisruptionBudget",
                        "message": format!("The disruption budget {budget_name} needs {desired} healthy pods and has {healthy} currently")}]})));
                }
            }
        }
        self.remove_object(st, &pods, ns, name);
        self.schedule_reconcile();
        Ok(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_from_min_available_or_max_unavailable() {
        assert_eq!(budget(&json!({"spec": {"minAvailable": 1}}), 3), (3, 1));
        assert_eq!(budget(&json!({"spec": {"minAvailable": "50%"}}), 3), (3, 2));
        assert_eq!(budget(&json!({"spec": {"maxUnavailable": 1}}), 3), (3, 2));
        assert_eq!(budget(&json!({"spec": {}}), 3), (3, 0));
    }
}
