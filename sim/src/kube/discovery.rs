//! Discovery: `/api`, `/apis`, group and group-version documents, and aggregated discovery
//! (`APIGroupDiscoveryList`, which kubectl asks for first).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::registry::{BUILTIN_GROUPS, ResourceType};

/// The Content-Type of aggregated discovery.
pub const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the Accept header asks for aggregated discovery.
pub fn wants_aggregated(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("as=APIGroupDiscoveryList"))
}

/// Served groups in `/apis` order: built-ins first, then CRD groups by first appearance.
fn groups(types: &[ResourceType]) -> Vec<String> {
    let mut out: Vec<String> = BUILTIN_GROUPS.iter().map(|g| g.to_string()).collect();
    for t in types {
        if !t.group.is_empty() && !out.contains(&t.group) {
            out.push(t.group.clone());
        }
    }
    out
}

fn versions_of(types: &[ResourceType], group: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in types.iter().filter(|t| t.group == group) {
        if !out.contains(&t.version) {
            out.push(t.version.clone());
        }
    }
    out
}

pub fn api_versions(server: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]})
}

fn group_doc(types: &[ResourceType], group: &str) -> Value {
    let versions: Vec<Value> = versions_of(types, group)
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

pub fn api_group_list(types: &[ResourceType]) -> Value {
    let groups: Vec<Value> = groups(types).iter().map(|g| group_doc(types, g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/GROUP`, `None` when the group is not served.
pub fn api_group(types: &[ResourceType], group: &str) -> Option<Value> {
    if !types.iter().any(|t| t.group == group) {
        return None;
    }
    let mut doc = json!({"kind": "APIGroup", "apiVersion": "v1"});
    if let (Some(m), Value::Object(g)) = (doc.as_object_mut(), group_doc(types, group)) {
        m.extend(g);
    }
    Some(doc)
}

/// `GET /api/v1` or `/apis/G/V`.
pub fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for t in types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        let mut r = json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind, "verbs": t.verbs,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        if !t.virtual_only {
            r["storageVersionHash"] = json!(t.storage_version_hash());
        }
        resources.push(r);
        for s in &t.subresources {
            let mut r = json!({"name": format!("{}/{}", t.plural, s.name), "singularName": "", "namespaced": t.namespaced});
            if !s.group.is_empty() && s.group != t.group {
                r["group"] = json!(s.group);
                r["version"] = json!(s.version);
            }
            r["kind"] = json!(s.kind);
            r["verbs"] = json!(s.verbs);
            resources.push(r);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut doc = json!({"kind": "APIResourceList"});
    if !group.is_empty() {
        doc["apiVersion"] = json!("v1");
    }
    doc["groupVersion"] = json!(gv);
    doc["resources"] = json!(resources);
    doc
}

fn discovery_resource(t: &ResourceType) -> Value {
    let rk = |kind: &str, group: &str, version: &str| {
        if t.is_custom() || (!group.is_empty() && group != t.group) {
            json!({"group": if group.is_empty() { &t.group } else { group }, "version": if version.is_empty() { &t.version } else { version }, "kind": kind})
        } else {
            json!({"group": "", "version": "", "kind": kind})
        }
    };
    let mut r = json!({
        "resource": t.plural,
        "responseKind": rk(&t.kind, "", ""),
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": t.verbs,
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    if !t.subresources.is_empty() {
        r["subresources"] = json!(t
            .subresources
            .iter()
            .map(|s| json!({"subresource": s.name, "responseKind": rk(&s.kind, &s.group, &s.version), "verbs": s.verbs}))
            .collect::<Vec<_>>());
    }
    r
}

fn discovery_group(types: &[ResourceType], group: &str) -> Value {
    let versions: Vec<Value> = versions_of(types, group)
        .iter()
        .map(|v| {
            let resources: Vec<Value> = types
                .iter()
                .filter(|t| t.group == group && &t.version == v)
                .map(discovery_resource)
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let metadata = if group.is_empty() {
        json!({"creationTimestamp": null})
    } else {
        json!({"name": group, "creationTimestamp": null})
    };
    json!({"metadata": metadata, "versions": versions})
}

/// Aggregated discovery of `/api` (core) or `/apis` (every other group).
pub fn aggregated(types: &[ResourceType], core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![discovery_group(types, "")]
    } else {
        groups(types)
            .iter()
            .map(|g| discovery_group(types, g))
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// An ETag over a document's content.
pub fn etag(doc: &Value) -> String {
    let digest = Sha256::digest(doc.to_string().as_bytes());
    format!(
        "\"{}\"",
        digest
            .iter()
            .take(16)
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
    )
}
