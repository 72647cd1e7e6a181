//! The RBAC policy kube-apiserver bootstraps (its `rbac/bootstrap-roles` post-start hook)
//! and kube-controller-manager's ClusterRole aggregation controller.
//!
//! Rule lists follow kubernetes/kubernetes v1.32
//! plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go (rendered in that directory's
//! testdata/cluster-roles.yaml and testdata/cluster-role-bindings.yaml) for the roles clients
//! rely on: `cluster-admin`, the aggregated user-facing roles `admin`/`edit`/`view` and their
//! `system:aggregate-to-*` parts, and the discovery/self-review/health roles every caller
//! gets. Node, controller and scheduler roles are left out (nothing here runs as them).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::KubeApiServer;
use super::fieldset::Walker;
use super::kinds;
use super::managed;
use super::registry::ResourceType;
use super::selectors::selector_matches;
use super::store::{EventType, State};
use super::util::now_rfc3339;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// Who creates the bootstrap objects (as their managedFields show on a real cluster).
const APISERVER: &str = "kube-apiserver";
/// The aggregation controller's field manager (it server-side applies `rules`).
const AGGREGATOR: &str = "clusterrole-aggregation-controller";

const READ: &[&str] = &["get", "list", "watch"];
/// What `edit` may do to objects besides reading them.
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const READ_WRITE: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn strings(v: &[&str]) -> Value {
    json!(v)
}

/// A resource rule (fields in PolicyRule's serialisation order).
fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": strings(verbs), "apiGroups": strings(groups), "resources": strings(resources)})
}

/// A non-resource (URL) rule.
fn url_rule(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"verbs": strings(verbs), "nonResourceURLs": strings(urls)})
}

fn aggregate_label(to: &str) -> String {
    format!("rbac.authorization.k8s.io/aggregate-to-{to}")
}

fn cluster_role(name: &str, extra_labels: &[String], rules: Option<Vec<Value>>) -> Value {
    let mut labels = Map::new();
    labels.insert("kubernetes.io/bootstrapping".into(), json!("rbac-defaults"));
    for l in extra_labels {
        labels.insert(l.clone(), json!("true"));
    }
    let mut role = json!({
        "kind": "ClusterRole", "apiVersion": format!("{RBAC_GROUP}/v1"),
        "metadata": {"name": name, "labels": labels,
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
    });
    if let Some(rules) = rules {
        role["rules"] = json!(rules);
    }
    role
}

/// An aggregated role: no rules of its own, an aggregationRule selecting `aggregate-to-<to>`.
fn aggregated_role(name: &str, extra_labels: &[String]) -> Value {
    let mut role = cluster_role(name, extra_labels, None);
    role["aggregationRule"] =
        json!({"clusterRoleSelectors": [{"matchLabels": {aggregate_label(name): "true"}}]});
    role
}

/// The bootstrap ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    let core = &[""];
    vec![
        aggregated_role("admin", &[]),
        cluster_role(
            "cluster-admin",
            &[],
            Some(vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])]),
        ),
        aggregated_role("edit", &[aggregate_label("admin")]),
        cluster_role(
            "system:aggregate-to-admin",
            &[aggregate_label("admin")],
            Some(vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                ),
                rule(READ_WRITE, &[RBAC_GROUP], &["rolebindings", "roles"]),
            ]),
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[aggregate_label("edit")],
            Some(vec![
                rule(
                    READ,
                    core,
                    &[
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                        "secrets",
                        "services/proxy",
                    ],
                ),
                rule(&["impersonate"], core, &["serviceaccounts"]),
                rule(
                    WRITE,
                    core,
                    &[
                        "pods",
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                    ],
                ),
                rule(&["create"], core, &["pods/eviction"]),
                rule(
                    WRITE,
                    core,
                    &[
                        "configmaps",
                        "events",
                        "persistentvolumeclaims",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "secrets",
                        "serviceaccounts",
                        "services",
                        "services/proxy",
                    ],
                ),
                rule(&["create"], core, &["serviceaccounts/token"]),
                rule(
                    WRITE,
                    &["apps"],
                    &[
                        "daemonsets",
                        "deployments",
                        "deployments/rollback",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/scale",
                        "statefulsets",
                        "statefulsets/scale",
                    ],
                ),
                rule(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
                rule(WRITE, &["batch"], &["cronjobs", "jobs"]),
                rule(
                    WRITE,
                    &["extensions"],
                    &[
                        "daemonsets",
                        "deployments",
                        "deployments/rollback",
                        "deployments/scale",
                        "ingresses",
                        "networkpolicies",
                        "replicasets",
                        "replicasets/scale",
                        "replicationcontrollers/scale",
                    ],
                ),
                rule(WRITE, &["policy"], &["poddisruptionbudgets"]),
                rule(
                    WRITE,
                    &["networking.k8s.io"],
                    &["ingresses", "networkpolicies"],
                ),
                rule(READ_WRITE, &["coordination.k8s.io"], &["leases"]),
            ]),
        ),
        cluster_role(
            "system:aggregate-to-view",
            &[aggregate_label("view")],
            Some(vec![
                rule(
                    READ,
                    core,
                    &[
                        "configmaps",
                        "endpoints",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "pods",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/status",
                    ],
                ),
                rule(
                    READ,
                    core,
                    &[
                        "bindings",
                        "events",
                        "limitranges",
                        "namespaces/status",
                        "pods/log",
                        "pods/status",
                        "replicationcontrollers/status",
                        "resourcequotas",
                        "resourcequotas/status",
                    ],
                ),
                rule(READ, core, &["namespaces"]),
                rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
                rule(
                    READ,
                    &["apps"],
                    &[
                        "controllerrevisions",
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/scale",
                        "deployments/status",
                        "replicasets",
                        "replicasets/scale",
                        "replicasets/status",
                        "statefulsets",
                        "statefulsets/scale",
                        "statefulsets/status",
                    ],
                ),
                rule(
                    READ,
                    &["autoscaling"],
                    &[
                        "horizontalpodautoscalers",
                        "horizontalpodautoscalers/status",
                    ],
                ),
                rule(
                    READ,
                    &["batch"],
                    &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
                ),
                rule(
                    READ,
                    &["extensions"],
                    &[
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/scale",
                        "deployments/status",
                        "ingresses",
                        "ingresses/status",
                        "networkpolicies",
                        "replicasets",
                        "replicasets/scale",
                        "replicasets/status",
                        "replicationcontrollers/scale",
                    ],
                ),
                rule(
                    READ,
                    &["policy"],
                    &["poddisruptionbudgets", "poddisruptionbudgets/status"],
                ),
                rule(
                    READ,
                    &["networking.k8s.io"],
                    &["ingresses", "ingresses/status", "networkpolicies"],
                ),
            ]),
        ),
        cluster_role(
            "system:auth-delegator",
            &[],
            Some(vec![
                rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
            ]),
        ),
        cluster_role(
            "system:basic-user",
            &[],
            Some(vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ]),
        ),
        cluster_role(
            "system:discovery",
            &[],
            Some(vec![url_rule(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )]),
        ),
        cluster_role(
            "system:monitoring",
            &[],
            Some(vec![url_rule(
                &["get"],
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/metrics/slis",
                    "/readyz",
                    "/readyz/*",
                ],
            )]),
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            Some(vec![url_rule(
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )]),
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            &[],
            Some(vec![url_rule(
                &["get"],
                &["/.well-known/openid-configuration", "/openid/v1/jwks"],
            )]),
        ),
        aggregated_role("view", &[aggregate_label("edit")]),
    ]
}

fn group_binding(role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"kind": "Group", "apiGroup": RBAC_GROUP, "name": g}))
        .collect();
    json!({
        "kind": "ClusterRoleBinding", "apiVersion": format!("{RBAC_GROUP}/v1"),
        "metadata": {"name": role, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "subjects": subjects,
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
    })
}

/// The bootstrap ClusterRoleBindings of the roles above.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        group_binding("cluster-admin", &["system:masters"]),
        group_binding("system:basic-user", &["system:authenticated"]),
        group_binding("system:discovery", &["system:authenticated"]),
        group_binding("system:monitoring", &["system:monitoring"]),
        group_binding(
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
        group_binding(
            "system:service-account-issuer-discovery",
            &["system:serviceaccounts"],
        ),
    ]
}

/// The rules an aggregated role should have: those of every other ClusterRole one of its
/// selectors selects, in role-name order, without duplicates (as upstream
/// pkg/controller/clusterroleaggregation does). `roles` are (name, object) pairs.
pub fn aggregated_rules(name: &str, rule: &Value, roles: &BTreeMap<String, Value>) -> Vec<Value> {
    let selectors: Vec<&Value> = rule
        .get("clusterRoleSelectors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let mut out: Vec<Value> = Vec::new();
    for (other, role) in roles {
        if other == name
            || !selectors
                .iter()
                .any(|s| selector_matches(s, role.pointer("/metadata/labels")))
        {
            continue;
        }
        for r in role
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
    }
    out
}

impl KubeApiServer {
    /// Creates the bootstrap ClusterRoles and bindings and aggregates them.
    pub(super) fn bootstrap_rbac(&self, st: &mut State) {
        let (Some(roles), Some(bindings)) = (
            st.type_for_kind("rbac.authorization.k8s.io/v1", "ClusterRole"),
            st.type_for_kind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ) else {
            return;
        };
        for role in cluster_roles() {
            self.controller_create(st, &roles, role, APISERVER);
        }
        for binding in cluster_role_bindings() {
            self.controller_create(st, &bindings, binding, APISERVER);
        }
        aggregate_cluster_roles(st, &roles);
    }

    /// After a ClusterRole is written or deleted: the aggregation controller's resync.
    pub(super) fn cluster_role_changed(&self, st: &mut State, rt: &ResourceType) {
        if rt.group == RBAC_GROUP && rt.kind == "ClusterRole" {
            aggregate_cluster_roles(st, rt);
        }
    }
}

/// Brings every aggregated ClusterRole's rules up to date; repeats while something changed,
/// since aggregated roles feed each other (`view` into `edit` into `admin`).
fn aggregate_cluster_roles(st: &mut State, rt: &ResourceType) {
    // Bounded: each pass settles at least one level of the (acyclic in practice) chain.
    for _ in 0..8 {
        let roles: BTreeMap<String, Value> = st
            .objects
            .iter()
            .filter(|(k, _)| k.group == RBAC_GROUP && k.plural == "clusterroles")
            .map(|(k, v)| (k.name.clone(), v.clone()))
            .collect();
        let mut changed = false;
        for (name, role) in &roles {
            let Some(rule) = role.get("aggregationRule").filter(|r| !r.is_null()) else {
                continue;
            };
            let rules = aggregated_rules(name, rule, &roles);
            let current = role.get("rules").cloned().unwrap_or(json!([]));
            if current == json!(rules) || (current.is_null() && rules.is_empty()) {
                continue;
            }
            changed |= apply_rules(st, rt, role, rules);
        }
        if !changed {
            return;
        }
    }
}

/// The controller's server-side apply of `rules` (forced; it owns them).
fn apply_rules(st: &mut State, rt: &ResourceType, live: &Value, rules: Vec<Value>) -> bool {
    let name = live
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::Null);
    let config = json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": {"name": name}, "rules": rules});
    let w = Walker::root(&rt.kind, rt.schema.as_ref());
    let Ok(applied) = managed::apply(
        &w,
        live,
        &config,
        AGGREGATOR,
        &rt.api_version(),
        "",
        true,
        &now_rfc3339(),
    ) else {
        return false;
    };
    if !applied.changed {
        return false;
    }
    let mut obj = applied.object;
    kinds::canonical(rt, &mut obj);
    st.put(rt, obj, EventType::Modified);
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn by_name(roles: Vec<Value>) -> BTreeMap<String, Value> {
        roles
            .into_iter()
            .map(|r| (r["metadata"]["name"].as_str().unwrap().to_string(), r))
            .collect()
    }

    #[test]
    fn view_aggregates_the_aggregate_to_view_rules_only() {
        let roles = by_name(cluster_roles());
        let view = &roles["view"];
        let rules = aggregated_rules("view", &view["aggregationRule"], &roles);
        assert_eq!(json!(rules), roles["system:aggregate-to-view"]["rules"]);
    }

    #[test]
    fn aggregation_appends_a_labelled_roles_new_rules_without_duplicates() {
        let mut roles = by_name(cluster_roles());
        let existing = roles["system:aggregate-to-view"]["rules"][0].clone();
        let crd_view = json!({"metadata": {"name": "widgets-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [rule(READ, &["example.com"], &["widgets"]), existing]});
        roles.insert("widgets-view".into(), crd_view);
        let rules = aggregated_rules("view", &roles["view"]["aggregationRule"], &roles);
        let base = roles["system:aggregate-to-view"]["rules"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(rules.len(), base + 1);
        assert_eq!(rules[base], rule(READ, &["example.com"], &["widgets"]));
        let again = aggregated_rules("view", &roles["view"]["aggregationRule"], &roles);
        assert_eq!(rules, again);
    }

    #[test]
    fn every_binding_refers_to_a_bootstrap_role() {
        let roles = by_name(cluster_roles());
        let bindings = cluster_role_bindings();
        assert_eq!(bindings.len(), 6);
        for b in bindings {
            let name = b["roleRef"]["name"].as_str().unwrap();
            assert!(roles.contains_key(name), "{name}");
        }
    }
}
