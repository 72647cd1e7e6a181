//! OpenAPI v3 as kubectl uses it: the index of group-version documents (with content hashes)
//! and one document per group-version with paths, the write parameters kubectl's
//! field-validation check looks for, and component schemas carrying
//! `x-kubernetes-group-version-kind` (kubectl builds strategic merge patches from them).
//! Built-in schemas are lean (top-level fields only); custom resources use their CRD schema.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::registry::ResourceType;

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

fn base_schemas() -> &'static Map<String, Value> {
    static BASE: OnceLock<Map<String, Value>> = OnceLock::new();
    BASE.get_or_init(|| serde_json::from_str(include_str!("openapi_base.json")).unwrap_or_default())
}

/// The document paths the index lists: `api`, `api/v1`, `apis`, `apis/G`, `apis/G/V`.
pub fn doc_paths(types: &[ResourceType]) -> Vec<String> {
    let mut out = vec!["api".to_string(), "api/v1".to_string(), "apis".to_string()];
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        let g = format!("apis/{}", t.group);
        let gv = format!("apis/{}/{}", t.group, t.version);
        if !out.contains(&g) {
            out.push(g);
        }
        if !out.contains(&gv) {
            out.push(gv);
        }
    }
    out.sort();
    out
}

pub fn hash(doc: &Value) -> String {
    Sha256::digest(doc.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// The `/openapi/v3` index.
pub fn index(types: &[ResourceType]) -> Value {
    let mut paths = Map::new();
    for p in doc_paths(types) {
        let h = document(types, &p).map(|d| hash(&d)).unwrap_or_default();
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={h}")}),
        );
    }
    json!({"paths": paths})
}

/// The schema name of a kind (`io.k8s.api.core.v1.ConfigMap`, `com.google.cloud.mesh.v1beta1.X`).
pub fn schema_name(t: &ResourceType, kind: &str) -> String {
    if t.is_custom() {
        let rev: Vec<&str> = t.group.split('.').rev().collect();
        return format!("{}.{}.{}", rev.join("."), t.version, kind);
    }
    let pkg = match t.group.as_str() {
        "" => "core".to_string(),
        "apiextensions.k8s.io" => {
            return format!(
                "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{}.{kind}",
                t.version
            );
        }
        g => g.split('.').next().unwrap_or(g).to_string(),
    };
    let pkg = match t.group.as_str() {
        "rbac.authorization.k8s.io" => "rbac".to_string(),
        _ => pkg,
    };
    format!("io.k8s.api.{pkg}.{}.{kind}", t.version)
}

fn gvk(t: &ResourceType, kind: &str) -> Value {
    json!({"group": t.group, "version": t.version, "kind": kind})
}

fn param(name: &str, ty: &str) -> Value {
    json!({"name": name, "in": "query", "description": name, "schema": {"type": ty, "uniqueItems": true}})
}

fn content(schema_ref: &str) -> Value {
    let s = json!({"schema": {"$ref": format!("#/components/schemas/{schema_ref}")}});
    json!({"application/json": s, "application/yaml": s, "application/vnd.kubernetes.protobuf": s})
}

fn op(
    t: &ResourceType,
    action: &str,
    id: &str,
    response: &str,
    params: Vec<Value>,
    body: Option<Value>,
) -> Value {
    let mut o = json!({
        "tags": [format!("{}_{}", if t.group.is_empty() { "core" } else { &t.group }, t.version)],
        "description": format!("{action} {}", t.kind),
        "operationId": format!("{id}{}", t.kind),
        "responses": {"200": {"description": "OK", "content": content(response)}, "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(t, &t.kind),
    });
    if !params.is_empty() {
        o["parameters"] = Value::Array(params);
    }
    if let Some(b) = body {
        o["requestBody"] = b;
    }
    o
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "description": description, "required": true, "schema": {"type": "string", "uniqueItems": true}})
}

/// The path-level parameters of a collection or item path (as kube-apiserver lists them:
/// path parameters, then `pretty`).
fn path_params(namespaced: bool, item: bool) -> Value {
    let mut p = Vec::new();
    if item {
        p.push(path_param("name", "name of the object"));
    }
    if namespaced {
        p.push(path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    p.push(param("pretty", "string"));
    Value::Array(p)
}

/// Query parameters of list/watch (and of deletecollection, which selects like a list).
fn list_params(watch: bool) -> Vec<Value> {
    let mut p = vec![
        param("allowWatchBookmarks", "boolean"),
        param("continue", "string"),
        param("fieldSelector", "string"),
        param("labelSelector", "string"),
        param("limit", "integer"),
        param("resourceVersion", "string"),
        param("resourceVersionMatch", "string"),
        param("sendInitialEvents", "boolean"),
        param("timeoutSeconds", "integer"),
    ];
    if watch {
        p.push(param("watch", "boolean"));
    } else {
        // deletecollection takes no allowWatchBookmarks.
        p.remove(0);
    }
    p
}

/// Query parameters of delete (and deletecollection).
fn delete_params() -> Vec<Value> {
    vec![
        param("dryRun", "string"),
        param("gracePeriodSeconds", "integer"),
        param(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "boolean",
        ),
        param("orphanDependents", "boolean"),
        param("propagationPolicy", "string"),
    ]
}

fn write_params(force: bool) -> Vec<Value> {
    let mut p = vec![
        param("dryRun", "string"),
        param("fieldManager", "string"),
        param("fieldValidation", "string"),
    ];
    if force {
        p.push(param("force", "boolean"));
    }
    p
}

fn paths_for(t: &ResourceType, paths: &mut Map<String, Value>) {
    let prefix = if t.group.is_empty() {
        format!("/api/{}", t.version)
    } else {
        format!("/apis/{}/{}", t.group, t.version)
    };
    let coll = if t.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", t.plural)
    } else {
        format!("{prefix}/{}", t.plural)
    };
    let kind_ref = schema_name(t, &t.kind);
    let list_ref = schema_name(t, &t.list_kind());
    let body = |r: &str| json!({"content": {"*/*": {"schema": {"$ref": format!("#/components/schemas/{r}")}}}, "required": true});
    if t.virtual_only {
        paths.insert(coll, json!({"post": op(t, "post", "create", &kind_ref, write_params(false), Some(body(&kind_ref)))}));
        return;
    }
    let patch_ref = format!("{META}.Patch");
    let mut patch_types = vec![
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    if !t.is_custom() {
        patch_types.push("application/strategic-merge-patch+json");
    }
    let patch_body = json!({
        "content": patch_types.iter().map(|ct| (ct.to_string(), json!({"schema": {"$ref": format!("#/components/schemas/{patch_ref}")}}))).collect::<Map<String, Value>>(),
        "required": true,
    });
    paths.insert(
        coll.clone(),
        json!({
            "get": op(t, "list", "list", &list_ref, list_params(true), None),
            "post": op(t, "post", "create", &kind_ref, write_params(false), Some(body(&kind_ref))),
            "delete": op(t, "deletecollection", "deleteCollection", &format!("{META}.Status"), [delete_params(), list_params(false)].concat(), None),
            "parameters": path_params(t.namespaced, false),
        }),
    );
    let item = json!({
        "get": op(t, "get", "read", &kind_ref, vec![], None),
        "put": op(t, "put", "replace", &kind_ref, write_params(false), Some(body(&kind_ref))),
        "patch": op(t, "patch", "patch", &kind_ref, write_params(true), Some(patch_body.clone())),
        "delete": op(t, "delete", "delete", &format!("{META}.Status"), delete_params(), Some(json!({"content": {"*/*": {"schema": {"$ref": format!("#/components/schemas/{META}.DeleteOptions")}}}}))),
        "parameters": path_params(t.namespaced, true),
    });
    paths.insert(format!("{coll}/{{name}}"), item);
    if t.has_status && t.subresource("status").is_some() {
        paths.insert(
            format!("{coll}/{{name}}/status"),
            json!({
                "get": op(t, "get", "read", &kind_ref, vec![], None),
                "put": op(t, "put", "replace", &kind_ref, write_params(false), Some(body(&kind_ref))),
                "patch": op(t, "patch", "patch", &kind_ref, write_params(true), Some(patch_body)),
            }),
        );
    }
}

fn meta_ref() -> Value {
    json!({"default": {}, "allOf": [{"$ref": format!("#/components/schemas/{META}.ObjectMeta")}]})
}

/// A lean schema of a built-in kind: its top-level fields.
fn builtin_schema(t: &ResourceType) -> Value {
    let any_obj = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let str_map =
        json!({"type": "object", "additionalProperties": {"type": "string", "default": ""}});
    let mut props = Map::new();
    props.insert("apiVersion".into(), json!({"type": "string"}));
    props.insert("kind".into(), json!({"type": "string"}));
    props.insert("metadata".into(), meta_ref());
    match t.kind.as_str() {
        "ConfigMap" => {
            props.insert("data".into(), str_map.clone());
            props.insert("binaryData".into(), json!({"type": "object", "additionalProperties": {"type": "string", "format": "byte"}}));
            props.insert("immutable".into(), json!({"type": "boolean"}));
        }
        "Secret" => {
            props.insert("data".into(), json!({"type": "object", "additionalProperties": {"type": "string", "format": "byte"}}));
            props.insert("stringData".into(), str_map);
            props.insert("type".into(), json!({"type": "string"}));
            props.insert("immutable".into(), json!({"type": "boolean"}));
        }
        "ServiceAccount" => {
            props.insert(
                "secrets".into(),
                json!({"type": "array", "items": any_obj.clone()}),
            );
            props.insert(
                "imagePullSecrets".into(),
                json!({"type": "array", "items": any_obj.clone()}),
            );
            props.insert(
                "automountServiceAccountToken".into(),
                json!({"type": "boolean"}),
            );
        }
        "Role" | "ClusterRole" => {
            props.insert("rules".into(), json!({"type": "array", "items": any_obj.clone(), "x-kubernetes-list-type": "atomic"}));
            if t.kind == "ClusterRole" {
                props.insert("aggregationRule".into(), any_obj.clone());
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            props.insert("subjects".into(), json!({"type": "array", "items": any_obj.clone(), "x-kubernetes-list-type": "atomic"}));
            props.insert("roleRef".into(), json!({"type": "object", "x-kubernetes-map-type": "atomic", "x-kubernetes-preserve-unknown-fields": true}));
        }
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
            props.insert(
                "webhooks".into(),
                json!({"type": "array", "items": any_obj.clone(), "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
            );
        }
        "Deployment" | "ReplicaSet" => {
            let container = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
            let pod_spec = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {
                "containers": {"type": "array", "items": container, "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
            }});
            props.insert("spec".into(), json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {
                "template": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"metadata": meta_ref(), "spec": pod_spec}},
            }}));
            props.insert("status".into(), any_obj.clone());
        }
        _ => {
            props.insert("spec".into(), any_obj.clone());
            props.insert("status".into(), any_obj.clone());
        }
    }
    json!({"description": format!("{} of the simulated cluster", t.kind), "type": "object", "properties": props, "x-kubernetes-group-version-kind": [gvk(t, &t.kind)]})
}

/// A custom resource's schema: the CRD's, with standard metadata and type fields.
fn custom_schema(t: &ResourceType) -> Value {
    let mut s = t
        .schema
        .clone()
        .unwrap_or_else(|| json!({"type": "object"}));
    if let Some(m) = s.as_object_mut() {
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Some(p) = props.as_object_mut() {
            p.insert("apiVersion".into(), json!({"type": "string"}));
            p.insert("kind".into(), json!({"type": "string"}));
            p.insert(
                "metadata".into(),
                json!({"allOf": [{"$ref": format!("#/components/schemas/{META}.ObjectMeta")}]}),
            );
        }
        m.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([gvk(t, &t.kind)]),
        );
    }
    s
}

fn list_schema(t: &ResourceType) -> Value {
    json!({"type": "object", "required": ["items"], "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"},
        "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{}", schema_name(t, &t.kind))}},
        "metadata": {"default": {}, "allOf": [{"$ref": format!("#/components/schemas/{META}.ListMeta")}]},
    }, "x-kubernetes-group-version-kind": [gvk(t, &t.list_kind())]})
}

/// The document at `path` (`api/v1`, `apis/G/V`…), `None` when not served.
pub fn document(types: &[ResourceType], path: &str) -> Option<Value> {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let selected: Vec<&ResourceType> = match path {
        "api" | "apis" => Vec::new(),
        "api/v1" => types.iter().filter(|t| t.group.is_empty()).collect(),
        p => {
            let rest = p.strip_prefix("apis/")?;
            match rest.split_once('/') {
                Some((g, v)) => types
                    .iter()
                    .filter(|t| t.group == g && t.version == v)
                    .collect(),
                None if types.iter().any(|t| t.group == rest) => Vec::new(),
                None => return None,
            }
        }
    };
    if selected.is_empty() && !matches!(path, "api" | "apis") && path.matches('/').count() >= 2 {
        return None;
    }
    for t in &selected {
        paths_for(t, &mut paths);
        let s = if t.is_custom() {
            custom_schema(t)
        } else {
            builtin_schema(t)
        };
        schemas.insert(schema_name(t, &t.kind), s);
        if !t.virtual_only {
            schemas.insert(schema_name(t, &t.list_kind()), list_schema(t));
        }
    }
    for (k, v) in base_schemas() {
        if k.starts_with("io.k8s.apimachinery") {
            schemas.insert(k.clone(), v.clone());
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.6"},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}}},
    }))
}
