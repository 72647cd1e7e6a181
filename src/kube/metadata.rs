//! Label and annotation changes on existing objects (`kubectl label` / `kubectl annotate`):
//! a JSON merge patch setting or removing only the given keys, sent with the
//! `resourceVersion` the prior values were read at, so the recorded prior state is exactly
//! what the patch replaced (a concurrent writer makes it fail with 409 Conflict instead).

use std::collections::BTreeMap;

use kube::Client;
use kube::api::{Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::{Map, Value, json};

use super::apply::{FIELD_MANAGER, dynamic_api, resolve_resource, split_api_version};
use super::{KubeError, KubeResult};
use crate::plan::record::{Prior, PriorValues};

/// Desired label or annotation values: `Some(v)` sets, `None` removes.
pub type Changes = BTreeMap<String, Option<String>>;

/// The string entries of a JSON object (`metadata.labels`, a selector's `matchLabels`, …);
/// absent or not an object: empty.
pub fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
        .collect()
}

/// The entries of `want` that `have` does not already hold: what is left to change.
pub fn unmet(want: &Changes, have: &BTreeMap<String, String>) -> Changes {
    want.iter()
        .filter(|(k, v)| have.get(*k) != v.as_ref())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The values `changes` would replace in `current` (`metadata.labels` or
/// `metadata.annotations` of the live object), only for keys whose value differs.
pub fn prior_values(current: Option<&Value>, changes: &Changes) -> PriorValues {
    changes
        .iter()
        .filter_map(|(k, want)| {
            let have = current
                .and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .map(str::to_string);
            (have != *want).then(|| (k.clone(), have))
        })
        .collect()
}

fn patch_map(changes: &Changes) -> Value {
    Value::Object(
        changes
            .iter()
            .map(|(k, v)| (k.clone(), v.as_ref().map_or(Value::Null, |s| json!(s))))
            .collect::<Map<String, Value>>(),
    )
}

/// The merge patch applying `labels` and `annotations` at `resource_version`.
pub fn metadata_patch(labels: &Changes, annotations: &Changes, resource_version: &str) -> Value {
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(resource_version));
    if !labels.is_empty() {
        meta.insert("labels".into(), patch_map(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), patch_map(annotations));
    }
    json!({ "metadata": meta })
}

/// Sets or removes `labels` and `annotations` on the live object `api_version`/`kind`
/// `namespace/name`; returns the values it replaced. Nothing to change sends no patch.
pub async fn set_metadata(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    labels: &Changes,
    annotations: &Changes,
) -> KubeResult<Prior> {
    let (group, version) = split_api_version(api_version);
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, scope) = resolve_resource(client, &gvk).await?;
    let api = dynamic_api(client, &ar, &scope, namespace);
    let what = match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    let live = api
        .get(name)
        .await
        .map_err(|e| KubeError::from_kube(format!("get {what}"), e))?;
    let live = serde_json::to_value(&live).map_err(|e| KubeError::Invalid {
        message: format!("{what}: {e}"),
    })?;
    let prior_labels = prior_values(live.pointer("/metadata/labels"), labels);
    let prior_annotations = prior_values(live.pointer("/metadata/annotations"), annotations);
    if prior_labels.is_empty() && prior_annotations.is_empty() {
        return Ok(Prior::Updated {
            labels: prior_labels,
            annotations: prior_annotations,
        });
    }
    let only = |changes: &Changes, prior: &PriorValues| -> Changes {
        changes
            .iter()
            .filter(|(k, _)| prior.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let rv = live
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let patch = metadata_patch(
        &only(labels, &prior_labels),
        &only(annotations, &prior_annotations),
        rv,
    );
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    api.patch(name, &pp, &Patch::Merge(patch))
        .await
        .map_err(|e| KubeError::from_kube(format!("label/annotate {what}"), e))?;
    Ok(Prior::Updated {
        labels: prior_labels,
        annotations: prior_annotations,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn changes(kv: &[(&str, Option<&str>)]) -> Changes {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn prior_values_keep_only_what_changes() {
        let live = json!({"istio-injection": "enabled", "team": "a"});
        let c = changes(&[
            ("istio-injection", None),
            ("istio.io/rev", Some("asm-managed")),
            ("team", Some("a")),
        ]);
        let prior = prior_values(Some(&live), &c);
        assert_eq!(
            prior,
            [
                ("istio-injection".to_string(), Some("enabled".to_string())),
                ("istio.io/rev".to_string(), None),
            ]
            .into()
        );
        assert!(prior_values(None, &changes(&[("x", None)])).is_empty());
    }

    #[test]
    fn metadata_patch_sets_removes_and_pins_the_resource_version() {
        let p = metadata_patch(
            &changes(&[("istio-injection", None), ("istio.io/rev", Some("r"))]),
            &Changes::new(),
            "42",
        );
        assert_eq!(
            p,
            json!({"metadata": {"resourceVersion": "42", "labels": {"istio-injection": null, "istio.io/rev": "r"}}})
        );
    }
}
