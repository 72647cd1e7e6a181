//! Server-side apply of dynamic manifests with field manager `asm`, reads of live objects,
//! and the pure "would an apply change anything" test.

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope};
use serde::Deserialize;
use serde_json::Value;

use super::{KubeError, KubeResult};

/// The field manager of every asm write.
pub const FIELD_MANAGER: &str = "asm";

/// Options of one apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Take over fields owned by other managers (`force=true`).
    pub force: bool,
    /// Server-side dry run (`dryRun=All`): nothing is persisted.
    pub dry_run: bool,
}

impl ApplyOptions {
    /// The kube `PatchParams` for these options.
    pub fn patch_params(&self) -> PatchParams {
        let mut pp = PatchParams::apply(FIELD_MANAGER);
        if self.force {
            pp = pp.force();
        }
        if self.dry_run {
            pp = pp.dry_run();
        }
        pp
    }
}

/// The identity of a manifest: kind, name and namespace (if it sets one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub gvk: GroupVersionKind,
    pub name: String,
    pub namespace: Option<String>,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.gvk.kind, self.name),
            None => write!(f, "{} {}", self.gvk.kind, self.name),
        }
    }
}

/// Splits `apiVersion` into `(group, version)` (`v1` → `("", "v1")`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Reads `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` of a manifest.
pub fn object_ref(manifest: &Value) -> KubeResult<ObjectRef> {
    let field = |p: &str| {
        manifest
            .pointer(p)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let invalid = |what: &str| KubeError::Invalid {
        message: format!(
            "manifest has no {what}: {}",
            truncate(&manifest.to_string(), 200)
        ),
    };
    let api_version = field("/apiVersion").ok_or_else(|| invalid("apiVersion"))?;
    let kind = field("/kind").ok_or_else(|| invalid("kind"))?;
    let name = field("/metadata/name").ok_or_else(|| invalid("metadata.name"))?;
    let (group, version) = split_api_version(api_version);
    Ok(ObjectRef {
        gvk: GroupVersionKind::gvk(group, version, kind),
        name: name.to_string(),
        namespace: field("/metadata/namespace").map(str::to_string),
    })
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Plural and scope of the kinds asm writes, so no discovery round trip is needed.
pub fn known_resource(gvk: &GroupVersionKind) -> Option<(ApiResource, Scope)> {
    use Scope::{Cluster, Namespaced};
    let (plural, scope) = match (gvk.group.as_str(), gvk.kind.as_str()) {
        ("", "Namespace") => ("namespaces", Cluster),
        ("", "ConfigMap") => ("configmaps", Namespaced),
        ("", "Secret") => ("secrets", Namespaced),
        ("", "ServiceAccount") => ("serviceaccounts", Namespaced),
        ("", "Service") => ("services", Namespaced),
        ("", "Pod") => ("pods", Namespaced),
        ("apps", "Deployment") => ("deployments", Namespaced),
        ("apps", "DaemonSet") => ("daemonsets", Namespaced),
        ("apps", "StatefulSet") => ("statefulsets", Namespaced),
        ("apps", "ReplicaSet") => ("replicasets", Namespaced),
        ("rbac.authorization.k8s.io", "Role") => ("roles", Namespaced),
        ("rbac.authorization.k8s.io", "RoleBinding") => ("rolebindings", Namespaced),
        ("rbac.authorization.k8s.io", "ClusterRole") => ("clusterroles", Cluster),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => ("clusterrolebindings", Cluster),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            ("customresourcedefinitions", Cluster)
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            ("mutatingwebhookconfigurations", Cluster)
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            ("validatingwebhookconfigurations", Cluster)
        }
        ("policy", "PodDisruptionBudget") => ("poddisruptionbudgets", Namespaced),
        ("autoscaling", "HorizontalPodAutoscaler") => ("horizontalpodautoscalers", Namespaced),
        ("mesh.cloud.google.com", "ControlPlaneRevision") => ("controlplanerevisions", Namespaced),
        // Cluster-scoped, like the CRD `dataplanecontrols.mesh.cloud.google.com` declares.
        ("mesh.cloud.google.com", "DataPlaneControl") => ("dataplanecontrols", Cluster),
        _ => return None,
    };
    Some((ApiResource::from_gvk_with_plural(gvk, plural), scope))
}

/// [`known_resource`], else discovery of that one group/version (`pinned_kind`).
pub async fn resolve_resource(
    client: &Client,
    gvk: &GroupVersionKind,
) -> KubeResult<(ApiResource, Scope)> {
    if let Some(known) = known_resource(gvk) {
        return Ok(known);
    }
    let (ar, caps) = kube::discovery::pinned_kind(client, gvk)
        .await
        .map_err(|e| {
            KubeError::from_kube(
                format!("discover {}/{} {}", gvk.group, gvk.version, gvk.kind),
                e,
            )
        })?;
    Ok((ar, caps.scope))
}

/// A dynamic `Api` for `ar`: namespaced in `namespace` (else the client's default
/// namespace) or cluster-wide.
pub fn dynamic_api(
    client: &Client,
    ar: &ApiResource,
    scope: &Scope,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    match scope {
        Scope::Cluster => Api::all_with(client.clone(), ar),
        Scope::Namespaced => match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
            None => Api::default_namespaced_with(client.clone(), ar),
        },
    }
}

/// Server-side applies one manifest (field manager `asm`). Returns the object as the
/// server persisted it (or would, with `dry_run`).
pub async fn apply(
    client: &Client,
    manifest: &Value,
    opts: ApplyOptions,
) -> KubeResult<DynamicObject> {
    let r = object_ref(manifest)?;
    let (ar, scope) = resolve_resource(client, &r.gvk).await?;
    let api = dynamic_api(client, &ar, &scope, r.namespace.as_deref());
    let verb = if opts.dry_run {
        "dry-run apply"
    } else {
        "apply"
    };
    api.patch(&r.name, &opts.patch_params(), &Patch::Apply(manifest))
        .await
        .map_err(|e| KubeError::from_kube(format!("{verb} {r}"), e))
}

/// Applies `manifests` in order (callers order them: CRDs and namespaces first).
pub async fn apply_all(
    client: &Client,
    manifests: &[Value],
    opts: ApplyOptions,
) -> KubeResult<Vec<DynamicObject>> {
    let mut out = Vec::with_capacity(manifests.len());
    for m in manifests {
        out.push(apply(client, m, opts).await?);
    }
    Ok(out)
}

/// The live object `apiVersion`/`kind` `namespace/name`, or `None` if absent.
pub async fn get_opt(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> KubeResult<Option<DynamicObject>> {
    let (group, version) = split_api_version(api_version);
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, scope) = match resolve_resource(client, &gvk).await {
        Ok(r) => r,
        // The kind itself is not served (e.g. a CRD not installed yet): no such object.
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let api = dynamic_api(client, &ar, &scope, namespace);
    api.get_opt(name).await.map_err(|e| {
        let target = match namespace {
            Some(ns) => format!("{kind} {ns}/{name}"),
            None => format!("{kind} {name}"),
        };
        KubeError::from_kube(format!("get {target}"), e)
    })
}

/// The live object a manifest names, or `None`.
pub async fn get_live(client: &Client, manifest: &Value) -> KubeResult<Option<DynamicObject>> {
    let r = object_ref(manifest)?;
    get_opt(
        client,
        &r.gvk.api_version(),
        &r.gvk.kind,
        r.namespace.as_deref(),
        &r.name,
    )
    .await
}

/// Whether applying `desired` to `live` would change anything: `false` when every field
/// `desired` sets is present in `live` with the same value (objects compared key by key,
/// lists element by element; a `null` in `desired` requires the field to be absent).
pub fn diff_needed(live: &Value, desired: &Value) -> bool {
    !is_subset(desired, live)
}

fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, dv)| match (dv, l.get(k)) {
            (Value::Null, None | Some(Value::Null)) => true,
            (Value::Null, Some(_)) => false,
            (_, None) => false,
            (dv, Some(lv)) => is_subset(dv, lv),
        }),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(dv, lv)| is_subset(dv, lv))
        }
        (Value::Number(d), Value::Number(l)) => d == l || d.as_f64() == l.as_f64(),
        (d, l) => d == l,
    }
}

/// Removes fields the server owns (`managedFields`, `resourceVersion`, `uid`,
/// `creationTimestamp`, `generation`, `status`) for display and comparison.
pub fn strip_server_fields(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            meta.remove(k);
        }
    }
    if let Some(o) = obj.as_object_mut() {
        o.remove("status");
    }
}

/// Parses multi-document YAML into JSON values (empty documents skipped).
pub fn parse_yaml_documents(text: &str) -> KubeResult<Vec<Value>> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| KubeError::Invalid {
            message: format!("bad YAML manifest: {e}"),
        })?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refs_and_resources() {
        let m = json!({"apiVersion": "mesh.cloud.google.com/v1beta1", "kind": "ControlPlaneRevision",
                       "metadata": {"name": "asm-managed", "namespace": "istio-system"}});
        let r = object_ref(&m).unwrap();
        assert_eq!(r.gvk.group, "mesh.cloud.google.com");
        assert_eq!(
            r.to_string(),
            "ControlPlaneRevision istio-system/asm-managed"
        );
        let (ar, scope) = known_resource(&r.gvk).unwrap();
        assert_eq!(ar.plural, "controlplanerevisions");
        assert_eq!(ar.api_version, "mesh.cloud.google.com/v1beta1");
        assert_eq!(scope, Scope::Namespaced);
        let ns = object_ref(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}),
        )
        .unwrap();
        assert_eq!(known_resource(&ns.gvk).unwrap().1, Scope::Cluster);
        assert!(object_ref(&json!({"kind": "X"})).is_err());
        assert!(known_resource(&GroupVersionKind::gvk("x.io", "v1", "Thing")).is_none());
    }

    #[test]
    fn diff() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "n", "resourceVersion": "5", "labels": {"x": "1", "y": "2"}},
            "data": {"k": "v", "other": "o"}, "replicas": 1});
        assert!(!diff_needed(
            &live,
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "n", "labels": {"x": "1"}}, "data": {"k": "v"}})
        ));
        assert!(diff_needed(&live, &json!({"data": {"k": "changed"}})));
        assert!(diff_needed(&live, &json!({"data": {"new": "v"}})));
        assert!(!diff_needed(&live, &json!({"replicas": 1.0})));
        assert!(!diff_needed(&live, &json!({"data": {"absent": null}})));
        assert!(diff_needed(&live, &json!({"data": {"k": null}})));
        let live = json!({"spec": {"items": [{"a": 1, "b": 2}, {"a": 3}]}});
        assert!(!diff_needed(
            &live,
            &json!({"spec": {"items": [{"a": 1}, {"a": 3}]}})
        ));
        assert!(diff_needed(&live, &json!({"spec": {"items": [{"a": 1}]}})));
    }

    #[test]
    fn strip_and_yaml() {
        let mut o =
            json!({"metadata": {"name": "a", "managedFields": [], "uid": "u"}, "status": {}});
        strip_server_fields(&mut o);
        assert_eq!(o, json!({"metadata": {"name": "a"}}));
        let docs = parse_yaml_documents(
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n---\nkind: X\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["metadata"]["name"], "a");
        assert!(parse_yaml_documents("a: [").is_err());
    }

    #[test]
    fn patch_params() {
        let pp = ApplyOptions {
            force: true,
            dry_run: true,
        }
        .patch_params();
        assert!(pp.force && pp.dry_run);
        assert_eq!(pp.field_manager.as_deref(), Some("asm"));
    }
}
