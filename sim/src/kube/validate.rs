//! Validation: object names, unknown fields (strict/warn field validation and pruning), and
//! custom resources against their CRD's structural schema.

use serde_json::{Map, Value};

use super::registry::ResourceType;
use super::status::Cause;

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// The metadata.name problem of an object, if any.
pub fn name_cause(rt: &ResourceType, name: &str) -> Option<Cause> {
    if name.is_empty() {
        return Some(Cause::new(
            "FieldValueRequired",
            "metadata.name",
            "Required value: name or generateName is required",
        ));
    }
    let msg = if rt.kind == "Namespace" {
        (!is_label(name)).then_some(DNS1123_LABEL_MSG)
    } else if rt.group == "rbac.authorization.k8s.io" {
        // RBAC names only have to be valid path segments (system:… names are common).
        (name == "." || name == ".." || name.contains('/') || name.contains('%'))
            .then_some("may not contain '/' or '%'")
    } else {
        (!is_subdomain(name)).then_some(DNS1123_SUBDOMAIN_MSG)
    }?;
    Some(Cause::new(
        "FieldValueInvalid",
        "metadata.name",
        format!("Invalid value: \"{name}\": {msg}"),
    ))
}

/// The top-level fields a built-in kind has besides apiVersion, kind and metadata;
/// `None` = not checked.
fn builtin_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "ConfigMap" => &["data", "binaryData", "immutable"],
        "Secret" => &["data", "stringData", "type", "immutable"],
        "ServiceAccount" => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        "Namespace"
        | "Service"
        | "Pod"
        | "Deployment"
        | "ReplicaSet"
        | "CustomResourceDefinition" => &["spec", "status"],
        "Role" => &["rules"],
        "ClusterRole" => &["rules", "aggregationRule"],
        "RoleBinding" | "ClusterRoleBinding" => &["subjects", "roleRef"],
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => &["webhooks"],
        "SelfSubjectAccessReview"
        | "SelfSubjectRulesReview"
        | "TokenRequest"
        | "SelfSubjectReview" => &["spec", "status"],
        _ => return None,
    })
}

const META_FIELDS: &[&str] = &[
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

/// Removes fields the type does not declare and returns their paths (dotted, without a
/// leading dot: `bogusField`, `spec.bogus`).
pub fn prune_unknown(rt: &ResourceType, obj: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    let Value::Object(m) = obj else {
        return unknown;
    };
    if let Some(Value::Object(meta)) = m.get_mut("metadata") {
        let extra: Vec<String> = meta
            .keys()
            .filter(|k| !META_FIELDS.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in extra {
            meta.remove(&k);
            unknown.push(format!("metadata.{k}"));
        }
    }
    match &rt.schema {
        Some(schema) => {
            for (k, v) in m.iter_mut() {
                if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                match schema.get("properties").and_then(|p| p.get(k)) {
                    Some(s) => prune_schema(s, v, k, &mut unknown),
                    None if preserves(schema) => {}
                    None => unknown.push(k.clone()),
                }
            }
            let top: Vec<String> = unknown
                .iter()
                .filter(|u| !u.contains('.'))
                .cloned()
                .collect();
            for k in top {
                m.remove(&k);
            }
        }
        None => {
            if let Some(known) = builtin_fields(&rt.kind) {
                let extra: Vec<String> = m
                    .keys()
                    .filter(|k| {
                        !matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                            && !known.contains(&k.as_str())
                    })
                    .cloned()
                    .collect();
                for k in extra {
                    m.remove(&k);
                    unknown.push(k);
                }
            }
        }
    }
    unknown
}

fn preserves(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn prune_schema(schema: &Value, v: &mut Value, path: &str, unknown: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if preserves(schema) && schema.get("properties").is_none() {
                return;
            }
            if let Some(ap) = schema.get("additionalProperties") {
                if ap.is_object() {
                    for (k, cv) in m.iter_mut() {
                        prune_schema(ap, cv, &format!("{path}.{k}"), unknown);
                    }
                }
                return;
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let mut remove = Vec::new();
            for (k, cv) in m.iter_mut() {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => prune_schema(s, cv, &format!("{path}.{k}"), unknown),
                    None if preserves(schema) => {}
                    None => {
                        unknown.push(format!("{path}.{k}"));
                        remove.push(k.clone());
                    }
                }
            }
            for k in remove {
                m.remove(&k);
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_schema(is, item, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Schema violations of a custom resource (types, enums, required fields).
pub fn validate_custom(rt: &ResourceType, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(schema) = &rt.schema else {
        return causes;
    };
    if let (Some(props), Value::Object(m)) =
        (schema.get("properties").and_then(Value::as_object), obj)
    {
        for (k, v) in m {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(s) = props.get(k) {
                check(s, v, k, &mut causes);
            }
        }
    }
    causes
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check(schema: &Value, v: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(v);
        let ok = actual == t
            || (t == "number" && actual == "integer")
            || (v.is_null() && schema.get("nullable") == Some(&Value::Bool(true)));
        if !ok
            && !(schema.get("x-kubernetes-int-or-string").is_some()
                && (actual == "integer" || actual == "string"))
        {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"{actual}\": {path} in body must be of type {t}: \"{actual}\""
                ),
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
        causes.push(Cause::new(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {v}: supported values: {}",
                list.join(", ")
            ),
        ));
    }
    match v {
        Value::Object(m) => {
            for req in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !m.contains_key(req) {
                    causes.push(Cause::new(
                        "FieldValueRequired",
                        format!("{path}.{req}"),
                        "Required value",
                    ));
                }
            }
            let props: Option<&Map<String, Value>> =
                schema.get("properties").and_then(Value::as_object);
            for (k, cv) in m {
                let s = props
                    .and_then(|p| p.get(k))
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(s) = s {
                    check(s, cv, &format!("{path}.{k}"), causes);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(is, item, &format!("{path}[{i}]"), causes);
                }
            }
        }
        _ => {}
    }
}

/// Go's `%#v` of a string, as validation messages quote values.
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Go's `%#v` of a `map[string]string` (keys sorted, as fmt prints maps).
fn go_string_map(m: Option<&Value>) -> String {
    let Some(obj) = m.and_then(Value::as_object) else {
        return "map[string]string(nil)".into();
    };
    let mut pairs: Vec<(&String, &Value)> = obj.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let items: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| {
            format!(
                "{}:{}",
                go_quote(k),
                go_quote(v.as_str().unwrap_or_default())
            )
        })
        .collect();
    format!("map[string]string{{{}}}", items.join(", "))
}

fn go_string_slice(v: Option<&Value>) -> String {
    match v.and_then(Value::as_array) {
        None => "[]string(nil)".into(),
        Some(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|s| go_quote(s.as_str().unwrap_or_default()))
                .collect();
            format!("[]string{{{}}}", items.join(", "))
        }
    }
}

/// Go's `%#v` of a `*v1.LabelSelector` value.
fn go_label_selector(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return "(*v1.LabelSelector)(nil)".into();
    };
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(e["key"].as_str().unwrap_or_default()),
                        go_quote(e["operator"].as_str().unwrap_or_default()),
                        go_string_slice(e.get("values"))
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
        go_string_map(sel.get("matchLabels"))
    )
}

/// Spec problems of a Deployment (upstream `ValidateDeploymentSpec`, the selector part).
pub fn deployment_spec_causes(obj: &Value) -> Vec<Cause> {
    let selector = obj.pointer("/spec/selector");
    let labels = obj.pointer("/spec/template/metadata/labels");
    match selector {
        Some(sel) if !super::selectors::selector_matches(sel, labels) => vec![Cause::new(
            "FieldValueInvalid",
            "spec.template.metadata.labels",
            format!(
                "Invalid value: {}: `selector` does not match template `labels`",
                go_string_map(labels)
            ),
        )],
        _ => Vec::new(),
    }
}

/// Fields an update may not change: a binding's `roleRef`, a Deployment's `spec.selector`.
pub fn immutable_field_causes(rt: &ResourceType, old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if rt.group == "rbac.authorization.k8s.io"
        && rt.kind.ends_with("RoleBinding")
        && old.get("roleRef") != new.get("roleRef")
    {
        let r = |k: &str| go_quote(new["roleRef"][k].as_str().unwrap_or_default());
        causes.push(Cause::new(
            "FieldValueInvalid",
            "roleRef",
            format!(
                "Invalid value: rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}: cannot change roleRef",
                r("apiGroup"),
                r("kind"),
                r("name")
            ),
        ));
    }
    if rt.group == "apps"
        && rt.kind == "Deployment"
        && old.pointer("/spec/selector") != new.pointer("/spec/selector")
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "spec.selector",
            format!(
                "Invalid value: {}: field is immutable",
                go_label_selector(new.pointer("/spec/selector"))
            ),
        ));
    }
    causes
}

#[cfg(test)]
mod go_format_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_prints_like_go() {
        assert_eq!(
            go_label_selector(Some(&json!({"matchLabels": {"b": "2", "a": "1"}}))),
            "v1.LabelSelector{MatchLabels:map[string]string{\"a\":\"1\", \"b\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
        assert_eq!(
            go_label_selector(Some(
                &json!({"matchExpressions": [{"key": "k", "operator": "In", "values": ["x"]}]})
            )),
            "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"k\", Operator:\"In\", Values:[]string{\"x\"}}}}"
        );
    }

    #[test]
    fn deployment_template_labels_must_match_its_selector() {
        let ok = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {"metadata": {"labels": {"app": "a", "x": "y"}}}}});
        assert!(deployment_spec_causes(&ok).is_empty());
        let bad = json!({"spec": {"selector": {"matchLabels": {"app": "b"}}, "template": {"metadata": {"labels": {"app": "a"}}}}});
        let c = deployment_spec_causes(&bad);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "spec.template.metadata.labels");
    }
}
