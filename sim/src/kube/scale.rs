//! The `scale` subresource (autoscaling/v1 Scale) of Deployments, ReplicaSets and
//! StatefulSets: GET shows spec.replicas, status.replicas and the selector as a string;
//! PUT and PATCH change only spec.replicas (recorded in managedFields under `scale`).

use serde_json::{Value, json};

use super::KubeApiServer;
use super::patch;
use super::registry::ResourceType;
use super::status::{ApiError, ApiResult, Target};
use super::util;
use super::workloads::{int_at, meta_str, selector_string};

/// The Scale view of a workload.
pub fn scale_of(obj: &Value) -> Value {
    let mut meta = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = obj.pointer(&format!("/metadata/{k}")) {
            meta.insert(k.into(), v.clone());
        }
    }
    let mut status = json!({"replicas": int_at(obj, "/status/replicas")});
    if let Some(sel) = obj.pointer("/spec/selector") {
        status["selector"] = json!(selector_string(sel));
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
        "spec": {"replicas": int_at(obj, "/spec/replicas")}, "status": status})
}

impl KubeApiServer {
    /// Serves `…/NAME/scale`. `body` is the request body (PUT: a Scale; PATCH: a patch of
    /// one, of `content_type`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn serve_scale(
        &self,
        rt: &ResourceType,
        method: &str,
        namespace: &str,
        name: &str,
        content_type: &str,
        body: &[u8],
        manager: &str,
        dry_run: bool,
    ) -> ApiResult<Value> {
        let mut st = self.lock();
        let target = Target {
            group: &rt.group,
            resource: &rt.plural,
            name,
        };
        let obj = st
            .get(rt, namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&target))?;
        let current = scale_of(&obj);
        let wanted = match method {
            "GET" | "HEAD" => return Ok(current),
            "PUT" => serde_json::from_slice::<Value>(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding Scale: {e}")))?,
            _ => {
                let p: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                if content_type.starts_with("application/json-patch+json") {
                    patch::json_patch(&current, &p).map_err(|_| {
                        ApiError::new(422, Some("Invalid"), "the JSON patch could not be applied")
                    })?
                } else {
                    patch::merge_patch(&current, &p)
                }
            }
        };
        if let Some(rv) = util::get_str(&wanted, &["metadata", "resourceVersion"])
            && !rv.is_empty()
            && Some(rv) != util::get_str(&obj, &["metadata", "resourceVersion"])
        {
            return Err(ApiError::conflict_modified(&target));
        }
        let replicas = wanted
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale.autoscaling",
                "autoscaling",
                "Scale",
                name,
                vec![super::status::Cause::new(
                    "FieldValueInvalid",
                    "spec.replicas",
                    format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                )],
            ));
        }
        if replicas == int_at(&obj, "/spec/replicas") || dry_run {
            let mut out = current;
            out["spec"]["replicas"] = json!(replicas);
            return Ok(out);
        }
        let ns = meta_str(&obj, "namespace").to_string();
        let updated = self
            .controller_update(&mut st, rt, &ns, name, manager, "scale", |o| {
                util::set_path(o, &["spec", "replicas"], json!(replicas));
                let g = int_at(o, "/metadata/generation") + 1;
                util::set_path(o, &["metadata", "generation"], json!(g));
            })
            .unwrap_or(obj);
        drop(st);
        self.schedule_reconcile();
        Ok(scale_of(&updated))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_shows_replicas_and_selector() {
        let d = json!({"metadata": {"name": "a", "namespace": "n", "uid": "u", "resourceVersion": "5"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "a"}}}, "status": {"replicas": 2}});
        let s = scale_of(&d);
        assert_eq!(s["spec"]["replicas"], 1);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=a");
        assert_eq!(s["metadata"]["resourceVersion"], "5");
    }
}
