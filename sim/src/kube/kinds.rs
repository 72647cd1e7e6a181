//! Per-kind behaviour of built-in types: defaulting (which happens before ownership is
//! computed, so writers own defaulted fields), create-time preparation (which does not), and
//! the key order of serialised objects (Go struct order for built-ins, alphabetical for
//! custom resources).

use serde_json::{Map, Value, json};

use super::pod_spec;
use super::quantity;
use super::registry::ResourceType;
use super::util::{self, Rng, b64, order_keys, sort_keys};

/// Defaulting, as the apiserver's decoder applies it.
pub fn default_object(rt: &ResourceType, obj: &mut Value, rng: &mut Rng) {
    match rt.kind.as_str() {
        "Secret" => {
            if let Some(Value::Object(sd)) =
                obj.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                let data = util::ensure_obj(obj, &["data"]);
                for (k, v) in sd {
                    data.insert(k, json!(b64(v.as_str().unwrap_or_default().as_bytes())));
                }
            }
            if obj.get("type").is_none_or(Value::is_null) {
                util::set_path(obj, &["type"], json!("Opaque"));
            }
        }
        "Namespace" => {
            let name = util::get_str(obj, &["metadata", "name"])
                .unwrap_or_default()
                .to_string();
            if !name.is_empty() {
                util::ensure_obj(obj, &["metadata", "labels"])
                    .insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        "CustomResourceDefinition" if obj.pointer("/spec/conversion").is_none() => {
            util::set_path(obj, &["spec", "conversion"], json!({"strategy": "None"}));
        }
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
            let mutating = rt.kind.starts_with("Mutating");
            for wh in obj
                .get_mut("webhooks")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let Some(m) = wh.as_object_mut() else {
                    continue;
                };
                for rule in m
                    .get_mut("rules")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(r) = rule.as_object_mut() {
                        r.entry("scope").or_insert(json!("*"));
                    }
                }
                m.entry("failurePolicy").or_insert(json!("Fail"));
                m.entry("matchPolicy").or_insert(json!("Equivalent"));
                m.entry("namespaceSelector").or_insert(json!({}));
                m.entry("objectSelector").or_insert(json!({}));
                m.entry("timeoutSeconds").or_insert(json!(10));
                if mutating {
                    m.entry("reinvocationPolicy").or_insert(json!("Never"));
                }
                if let Some(svc) = m
                    .get_mut("clientConfig")
                    .and_then(|c| c.get_mut("service"))
                    .and_then(Value::as_object_mut)
                {
                    svc.entry("port").or_insert(json!(443));
                }
                order_keys(
                    wh,
                    &[
                        "name",
                        "clientConfig",
                        "rules",
                        "failurePolicy",
                        "matchPolicy",
                        "namespaceSelector",
                        "objectSelector",
                        "sideEffects",
                        "timeoutSeconds",
                        "admissionReviewVersions",
                        "reinvocationPolicy",
                        "matchConditions",
                    ],
                );
            }
        }
        "Service" => {
            // Only what the decoder defaults (SetDefaults_Service), so the writer owns it;
            // addresses and nodePorts are allocated later (services.rs) and owned by no one.
            let spec = util::ensure_obj(obj, &["spec"]);
            let ty = spec
                .entry("type")
                .or_insert(json!("ClusterIP"))
                .as_str()
                .unwrap_or("ClusterIP")
                .to_string();
            spec.entry("sessionAffinity").or_insert(json!("None"));
            if ty != "ExternalName" {
                spec.entry("internalTrafficPolicy")
                    .or_insert(json!("Cluster"));
            }
            if ty == "LoadBalancer" || ty == "NodePort" {
                spec.entry("externalTrafficPolicy")
                    .or_insert(json!("Cluster"));
            }
            if ty == "LoadBalancer" {
                spec.entry("allocateLoadBalancerNodePorts")
                    .or_insert(json!(true));
            }
            for p in spec
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let Some(pm) = p.as_object_mut() else {
                    continue;
                };
                pm.entry("protocol").or_insert(json!("TCP"));
                if let Some(port) = pm.get("port").cloned() {
                    pm.entry("targetPort").or_insert(port);
                }
            }
        }
        "Deployment" => {
            let spec = util::ensure_obj(obj, &["spec"]);
            spec.entry("replicas").or_insert(json!(1));
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("progressDeadlineSeconds").or_insert(json!(600));
            spec.entry("strategy").or_insert(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}));
            pod_spec::default_template(obj, true);
        }
        "ReplicaSet" => {
            util::ensure_obj(obj, &["spec"])
                .entry("replicas")
                .or_insert(json!(1));
            pod_spec::default_template(obj, true);
        }
        "StatefulSet" => {
            let spec = util::ensure_obj(obj, &["spec"]);
            spec.entry("replicas").or_insert(json!(1));
            spec.entry("podManagementPolicy")
                .or_insert(json!("OrderedReady"));
            spec.entry("updateStrategy")
                .or_insert(json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("persistentVolumeClaimRetentionPolicy")
                .or_insert(json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
            pod_spec::default_template(obj, true);
        }
        "DaemonSet" => {
            let spec = util::ensure_obj(obj, &["spec"]);
            spec.entry("updateStrategy").or_insert(
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            pod_spec::default_template(obj, true);
        }
        "Job" => {
            let spec = util::ensure_obj(obj, &["spec"]);
            spec.entry("parallelism").or_insert(json!(1));
            spec.entry("completions").or_insert(json!(1));
            spec.entry("backoffLimit").or_insert(json!(6));
            spec.entry("completionMode").or_insert(json!("NonIndexed"));
            spec.entry("suspend").or_insert(json!(false));
            spec.entry("podReplacementPolicy")
                .or_insert(json!("TerminatingOrFailed"));
            pod_spec::default_template(obj, false);
        }
        "Pod" => pod_spec::default_new_pod(obj, rng),
        _ => {}
    }
}

/// Create-time fields the server sets without anyone owning them.
pub fn prepare_create(rt: &ResourceType, obj: &mut Value) {
    match rt.kind.as_str() {
        "Namespace" => {
            util::set_path(obj, &["spec", "finalizers"], json!(["kubernetes"]));
            util::set_path(obj, &["status"], json!({"phase": "Active"}));
        }
        "CustomResourceDefinition" => {
            let storage: Vec<Value> = obj
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|v| v["storage"] == true)
                .map(|v| v["name"].clone())
                .collect();
            util::set_path(
                obj,
                &["status"],
                json!({"conditions": null, "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": storage}),
            );
        }
        // Service status is a struct, not a pointer: every Service has `loadBalancer: {}`.
        "Service" if obj.pointer("/status/loadBalancer").is_none() => {
            util::set_path(obj, &["status", "loadBalancer"], json!({}));
        }
        _ => {}
    }
    if rt.has_generation {
        util::set_path(obj, &["metadata", "generation"], json!(1));
    }
    // Workload statuses are non-pointer structs: a new object shows `status: {}`.
    if matches!(
        rt.kind.as_str(),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" | "PodDisruptionBudget"
    ) && obj.get("status").is_none_or(Value::is_null)
    {
        util::set_path(obj, &["status"], json!({}));
    }
}

const METADATA_ORDER: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

fn body_order(kind: &str) -> &'static [&'static str] {
    match kind {
        "ConfigMap" => &["immutable", "data", "binaryData"],
        "Secret" => &["immutable", "data", "type"],
        "ServiceAccount" => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        "ClusterRole" | "Role" => &["rules", "aggregationRule"],
        "ClusterRoleBinding" | "RoleBinding" => &["subjects", "roleRef"],
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => &["webhooks"],
        _ => &["spec", "status"],
    }
}

/// Puts keys in the order the real server serialises them, and quantities in the form it
/// stores them (a value that is not a quantity was refused at decoding, or is kept).
pub fn canonical(rt: &ResourceType, obj: &mut Value) {
    if rt.is_custom() {
        sort_keys(obj);
        return;
    }
    let _ = quantity::canonicalize_object(&rt.api_version(), &rt.kind, obj);
    let mut order = vec!["kind", "apiVersion", "metadata"];
    order.extend_from_slice(body_order(&rt.kind));
    order_keys(obj, &order);
    if let Some(meta) = obj.get_mut("metadata") {
        order_keys(meta, METADATA_ORDER);
    }
    if rt.kind == "CustomResourceDefinition" {
        if let Some(spec) = obj.get_mut("spec") {
            order_keys(
                spec,
                &[
                    "group",
                    "names",
                    "scope",
                    "versions",
                    "conversion",
                    "preserveUnknownFields",
                ],
            );
            if let Some(names) = spec.get_mut("names") {
                order_keys(
                    names,
                    &[
                        "plural",
                        "singular",
                        "shortNames",
                        "kind",
                        "listKind",
                        "categories",
                    ],
                );
            }
            for v in spec
                .get_mut("versions")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                order_keys(
                    v,
                    &[
                        "name",
                        "served",
                        "storage",
                        "deprecated",
                        "deprecationWarning",
                        "schema",
                        "subresources",
                        "additionalPrinterColumns",
                        "selectableFields",
                    ],
                );
            }
        }
        if let Some(status) = obj.get_mut("status") {
            order_keys(status, &["conditions", "acceptedNames", "storedVersions"]);
        }
    }
}

/// A list item as LIST answers it: built-ins without kind/apiVersion.
pub fn list_item(rt: &ResourceType, obj: &Value) -> Value {
    if rt.is_custom() {
        return obj.clone();
    }
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("kind");
        m.remove("apiVersion");
    }
    o
}

/// An object with apiVersion and kind set (bodies may omit them).
pub fn with_type_meta(rt: &ResourceType, obj: Value) -> Value {
    let mut m = match obj {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.insert("apiVersion".into(), json!(rt.api_version()));
    m.insert("kind".into(), json!(rt.kind));
    Value::Object(m)
}
