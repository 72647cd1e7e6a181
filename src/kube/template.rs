//! Pod-template changes of a Deployment, each one a rollout: set or remove template labels
//! (moving a gateway to another Istio revision), and roll back to a recorded rollout
//! revision as `kubectl rollout undo --to-revision=N` does.
//!
//! kubectl's undo (upstream `staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollback.go`,
//! `DeploymentRollbacker`): find the Deployment's ReplicaSet whose
//! `deployment.kubernetes.io/revision` is N, skip when its template (without
//! `pod-template-hash`) already is the Deployment's, else replace the Deployment's template
//! with it and its annotations with the ReplicaSet's (rollout bookkeeping annotations kept
//! from the Deployment). kubectl sends a JSON patch of two `replace` operations; asm sends
//! the equivalent JSON merge patch (every key the replacement drops set to `null`), pinned to
//! the resourceVersion it read.

use std::collections::BTreeMap;

use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::{Map, Value, json};

use super::apply::{FIELD_MANAGER, dynamic_api, resolve_resource};
use super::metadata::{Changes, prior_values};
use super::rollout::REVISION;
use super::{KubeError, KubeResult};
use crate::plan::record::Prior;

/// The label the Deployment controller adds to a ReplicaSet's template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Deployment annotations `kubectl rollout undo` keeps from the Deployment instead of
/// copying them from the ReplicaSet (`annotationsToSkip` in kubectl's rollback.go).
const ANNOTATIONS_TO_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// The JSON merge patch (RFC 7386) turning `from` into `to`: changed and added keys set,
/// removed keys `null`; arrays and scalars replaced whole.
pub fn merge_diff(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(f), Value::Object(t)) => {
            let mut out = Map::new();
            for (k, v) in t {
                match f.get(k) {
                    Some(old) if old == v => {}
                    Some(old) if old.is_object() && v.is_object() => {
                        out.insert(k.clone(), merge_diff(old, v));
                    }
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in f.keys() {
                if !t.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(out)
        }
        _ => to.clone(),
    }
}

/// `template` without the `pod-template-hash` label (an empty label map removed).
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH);
    }
    t
}

fn revision_of(o: &Value) -> Option<&str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
}

/// What undoing Deployment `deployment` to rollout revision `to_revision` changes, from its
/// ReplicaSets `replicasets` (those it controls): `Ok(None)` when its template already is
/// that revision's (kubectl: "skipped rollback"), else the merge patch. No ReplicaSet of that
/// revision → an error naming the revisions there are.
pub fn undo_patch(
    deployment: &Value,
    replicasets: &[Value],
    to_revision: &str,
) -> Result<Option<Value>, String> {
    let uid = deployment.pointer("/metadata/uid").and_then(Value::as_str);
    let owned: Vec<&Value> = replicasets
        .iter()
        .filter(|rs| {
            rs.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|r| {
                    r.get("controller").and_then(Value::as_bool) == Some(true)
                        && r.get("uid").and_then(Value::as_str) == uid
                })
        })
        .collect();
    let Some(rs) = owned.iter().find(|rs| revision_of(rs) == Some(to_revision)) else {
        let mut have: Vec<&str> = owned.iter().filter_map(|rs| revision_of(rs)).collect();
        have.sort_unstable();
        return Err(format!(
            "unable to find the specified revision {to_revision} (revisions kept: {})",
            if have.is_empty() {
                "none".to_string()
            } else {
                have.join(", ")
            }
        ));
    };
    let target = without_hash(rs.pointer("/spec/template").unwrap_or(&Value::Null));
    let current = deployment
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    if without_hash(&current) == target {
        return Ok(None);
    }
    let live_annotations = deployment
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut annotations = Map::new();
    for k in ANNOTATIONS_TO_SKIP {
        if let Some(v) = live_annotations.get(k) {
            annotations.insert(k.to_string(), v.clone());
        }
    }
    if let Some(a) = rs
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        for (k, v) in a {
            if !ANNOTATIONS_TO_SKIP.contains(&k.as_str()) {
                annotations.insert(k.clone(), v.clone());
            }
        }
    }
    let mut patch = json!({
        "spec": {"template": merge_diff(&current, &target)},
        "metadata": {"annotations": merge_diff(&Value::Object(live_annotations), &Value::Object(annotations))},
    });
    if let Some(rv) = deployment.pointer("/metadata/resourceVersion") {
        patch["metadata"]["resourceVersion"] = rv.clone();
    }
    Ok(Some(patch))
}

/// The merge patch setting (`Some`) or removing (`None`) pod-template labels.
pub fn template_labels_patch(labels: &Changes, resource_version: &str) -> Value {
    let map: Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.clone(), v.as_ref().map_or(Value::Null, |s| json!(s))))
        .collect();
    json!({"metadata": {"resourceVersion": resource_version},
        "spec": {"template": {"metadata": {"labels": map}}}})
}

async fn deployments(client: &Client, namespace: &str) -> KubeResult<Api<DynamicObject>> {
    let gvk = GroupVersionKind::gvk("apps", "v1", "Deployment");
    let (ar, scope) = resolve_resource(client, &gvk).await?;
    Ok(dynamic_api(client, &ar, &scope, Some(namespace)))
}

async fn get_json(api: &Api<DynamicObject>, name: &str, what: &str) -> KubeResult<Value> {
    let live = api
        .get(name)
        .await
        .map_err(|e| KubeError::from_kube(format!("get {what}"), e))?;
    serde_json::to_value(&live).map_err(|e| KubeError::Invalid {
        message: format!("{what}: {e}"),
    })
}

fn rolled_out(live: &Value, labels: BTreeMap<String, Option<String>>) -> Prior {
    Prior::RolledOut {
        revision: revision_of(live).map(str::to_string),
        template_labels: labels,
    }
}

fn merge_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

/// Sets or removes pod-template `labels` of Deployment `namespace/name` (a rollout when
/// anything changes); returns its prior rollout revision and the labels it replaced.
pub async fn set_template_labels(
    client: &Client,
    namespace: &str,
    name: &str,
    labels: &Changes,
) -> KubeResult<Prior> {
    let what = format!("Deployment {namespace}/{name}");
    let api = deployments(client, namespace).await?;
    let live = get_json(&api, name, &what).await?;
    let prior = prior_values(live.pointer("/spec/template/metadata/labels"), labels);
    if prior.is_empty() {
        return Ok(rolled_out(&live, prior));
    }
    let rv = live
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let only: Changes = labels
        .iter()
        .filter(|(k, _)| prior.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    api.patch(
        name,
        &merge_params(),
        &Patch::Merge(template_labels_patch(&only, rv)),
    )
    .await
    .map_err(|e| KubeError::from_kube(format!("set template labels of {what}"), e))?;
    Ok(rolled_out(&live, prior))
}

/// `kubectl rollout undo deployment/NAME --to-revision=REV` on `namespace/name`; returns
/// the prior rollout revision (nothing is sent when the template already is that revision's).
pub async fn undo_to_revision(
    client: &Client,
    namespace: &str,
    name: &str,
    to_revision: &str,
) -> KubeResult<Prior> {
    let what = format!("Deployment {namespace}/{name}");
    let api = deployments(client, namespace).await?;
    let live = get_json(&api, name, &what).await?;
    let gvk = GroupVersionKind::gvk("apps", "v1", "ReplicaSet");
    let (ar, scope) = resolve_resource(client, &gvk).await?;
    let rs_api = dynamic_api(client, &ar, &scope, Some(namespace));
    let list = rs_api
        .list(&ListParams::default())
        .await
        .map_err(|e| KubeError::from_kube(format!("list ReplicaSets in {namespace}"), e))?;
    let rss: Vec<Value> = list
        .items
        .iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect();
    let patch = undo_patch(&live, &rss, to_revision).map_err(|m| KubeError::Invalid {
        message: format!("roll back {what}: {m}"),
    })?;
    if let Some(p) = patch {
        api.patch(name, &merge_params(), &Patch::Merge(p))
            .await
            .map_err(|e| KubeError::from_kube(format!("roll back {what}"), e))?;
    }
    Ok(rolled_out(&live, BTreeMap::new()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rs(uid: &str, revision: &str, rev_label: &str, extra_annotation: Option<&str>) -> Value {
        let mut annotations =
            json!({REVISION: revision, "deployment.kubernetes.io/desired-replicas": "2"});
        if let Some(a) = extra_annotation {
            annotations["team"] = json!(a);
        }
        json!({"metadata": {"name": format!("gw-{revision}"), "annotations": annotations,
                "ownerReferences": [{"kind": "Deployment", "name": "gw", "uid": uid, "controller": true}]},
            "spec": {"template": {"metadata": {"labels": {"app": "gw", "istio.io/rev": rev_label, POD_TEMPLATE_HASH: format!("h{revision}")}},
                "spec": {"containers": [{"name": "istio-proxy", "image": "auto"}]}}}})
    }

    fn deployment(rev_label: &str, revision: &str) -> Value {
        json!({"metadata": {"name": "gw", "uid": "u1", "resourceVersion": "40",
                "annotations": {REVISION: revision, "deployment.kubernetes.io/desired-replicas": "2"}},
            "spec": {"template": {"metadata": {"labels": {"app": "gw", "istio.io/rev": rev_label},
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}},
                "spec": {"containers": [{"name": "istio-proxy", "image": "auto"}]}}}})
    }

    #[test]
    fn merge_diff_sets_changes_and_nulls_removed_keys() {
        let from = json!({"a": 1, "b": {"x": 1, "y": 2}, "c": [1]});
        let to = json!({"a": 1, "b": {"x": 3}, "d": true});
        assert_eq!(
            merge_diff(&from, &to),
            json!({"b": {"x": 3, "y": null}, "d": true, "c": null})
        );
    }

    #[test]
    fn undo_patch_restores_the_revisions_template_and_annotations() {
        let d = deployment("asm-managed", "2");
        let rss = vec![
            rs("u1", "1", "asm-191-1", Some("a")),
            rs("u1", "2", "asm-managed", None),
            rs("other", "1", "x", None),
        ];
        let p = undo_patch(&d, &rss, "1").unwrap().unwrap();
        assert_eq!(
            p,
            json!({
                "spec": {"template": {"metadata": {"labels": {"istio.io/rev": "asm-191-1"}, "annotations": null}}},
                "metadata": {"annotations": {"team": "a"}, "resourceVersion": "40"},
            })
        );
    }

    #[test]
    fn undo_patch_skips_a_template_already_at_the_revision_and_names_missing_ones() {
        let mut d = deployment("asm-191-1", "3");
        d["spec"]["template"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        let rss = vec![rs("u1", "1", "asm-191-1", None)];
        assert_eq!(undo_patch(&d, &rss, "1").unwrap(), None);
        let e = undo_patch(&d, &rss, "7").unwrap_err();
        assert!(
            e.contains("revision 7") && e.contains("revisions kept: 1"),
            "{e}"
        );
    }

    #[test]
    fn template_labels_patch_sets_removes_and_pins_the_resource_version() {
        let c: Changes = [
            ("istio.io/rev".to_string(), Some("asm-managed".to_string())),
            ("old".to_string(), None),
        ]
        .into();
        assert_eq!(
            template_labels_patch(&c, "9"),
            json!({"metadata": {"resourceVersion": "9"},
                "spec": {"template": {"metadata": {"labels": {"istio.io/rev": "asm-managed", "old": null}}}}})
        );
    }
}
