//! Observation (I/O) of `asm migrate --finish`: per cluster, istiod's objects in
//! istio-system, every injection and validation webhook configuration, the namespaces and
//! the pods running injected proxies, read concurrently into [`RetireObs`]. Nothing is
//! written.

use serde_json::{Value, json};

use super::{CONTROL_PLANE_KINDS, ISTIO_NAMESPACE, InjectedPod, RetireObs};
use crate::kube::KubeContext;
use crate::kube::apply::split_api_version;
use crate::kube::rollout::injected_revision;
use crate::steps::dataplane::SIDECAR_STATUS;
use crate::steps::status::observe::list;
use crate::steps::status::report::{labels_of, pod_revision};

/// Lists `api_version`/`kind` and sets both on every item (list items lack them, and a
/// delete is planned from the object).
async fn list_typed(
    ctx: &KubeContext,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
) -> Result<Vec<Value>, String> {
    let (group, version) = split_api_version(api_version);
    let mut items = list(&ctx.client, group, version, kind, namespace, None).await?;
    for o in &mut items {
        if let Some(m) = o.as_object_mut() {
            m.insert("apiVersion".into(), json!(api_version));
            m.insert("kind".into(), json!(kind));
        }
    }
    Ok(items)
}

fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A pod as the plan needs it, if it is live and runs an injected proxy.
pub fn injected_pod(p: &Value) -> Option<InjectedPod> {
    let annotations = p.pointer("/metadata/annotations")?;
    annotations.get(SIDECAR_STATUS)?;
    let live = p.pointer("/metadata/deletionTimestamp").is_none()
        && !matches!(
            p.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
    live.then(|| InjectedPod {
        namespace: str_at(p, "/metadata/namespace"),
        name: str_at(p, "/metadata/name"),
        // The status's revision, else the injector's `istio.io/rev` label, else what
        // `asm status` reads (its annotation; a status without either is `default`'s).
        revision: injected_revision(p)
            .or_else(|| labels_of(p).remove("istio.io/rev"))
            .or_else(|| pod_revision(p)),
    })
}

/// Reads everything the retire plan needs from one cluster.
pub async fn observe_retire(ctx: &KubeContext) -> Result<RetireObs, String> {
    let [d, s, h, p] = CONTROL_PLANE_KINDS;
    let (deployments, services, hpas, pdbs, mutating, validating, namespaces, pods) = tokio::join!(
        list_typed(ctx, d.0, d.1, Some(ISTIO_NAMESPACE)),
        list_typed(ctx, s.0, s.1, Some(ISTIO_NAMESPACE)),
        list_typed(ctx, h.0, h.1, Some(ISTIO_NAMESPACE)),
        list_typed(ctx, p.0, p.1, Some(ISTIO_NAMESPACE)),
        list_typed(
            ctx,
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
            None
        ),
        list_typed(
            ctx,
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            None
        ),
        list(&ctx.client, "", "v1", "Namespace", None, None),
        list(&ctx.client, "", "v1", "Pod", None, None),
    );
    let mut control_plane = deployments?;
    control_plane.extend(services?);
    control_plane.extend(hpas?);
    control_plane.extend(pdbs?);
    Ok(RetireObs {
        control_plane,
        mutating_webhooks: mutating?,
        validating_webhooks: validating?,
        namespaces: namespaces?
            .iter()
            .map(|n| (str_at(n, "/metadata/name"), labels_of(n)))
            .collect(),
        pods: pods?.iter().filter_map(injected_pod).collect(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pod(annotations: Value, labels: Value, extra: Value) -> Value {
        let mut p = json!({"metadata": {"namespace": "shop", "name": "web-1",
            "annotations": annotations, "labels": labels}, "status": {"phase": "Running"}});
        if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                p.insert(k.clone(), v.clone());
            }
        }
        p
    }

    #[test]
    fn only_live_injected_pods_count_with_their_revision() {
        let status = json!({SIDECAR_STATUS: r#"{"revision":"asm-191-1"}"#});
        let p = injected_pod(&pod(status.clone(), json!({}), json!({}))).unwrap();
        assert_eq!(p.revision.as_deref(), Some("asm-191-1"));
        assert_eq!((p.namespace.as_str(), p.name.as_str()), ("shop", "web-1"));
        // istiod's own pods carry istio.io/rev but run no injected proxy.
        let istiod = pod(json!({}), json!({"istio.io/rev": "asm-191-1"}), json!({}));
        assert_eq!(injected_pod(&istiod), None);
        // A status without a revision falls back to the pod's istio.io/rev label.
        let old = pod(
            json!({SIDECAR_STATUS: "{}"}),
            json!({"istio.io/rev": "asm-191-1"}),
            json!({}),
        );
        assert_eq!(
            injected_pod(&old).unwrap().revision.as_deref(),
            Some("asm-191-1")
        );
        let done = pod(
            status.clone(),
            json!({}),
            json!({"status": {"phase": "Succeeded"}}),
        );
        assert_eq!(injected_pod(&done), None);
        let mut terminating = pod(status, json!({}), json!({}));
        terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(injected_pod(&terminating), None);
    }
}
