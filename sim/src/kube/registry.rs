//! The resource types the server knows: the built-in ones asm and kubectl use, and those
//! registered by Established CustomResourceDefinitions.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::util::b64;

/// The verbs of an ordinary read-write resource, as discovery lists them.
const RW: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// A custom resource's verbs, in the order the apiextensions server lists them.
const CR_VERBS: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];

/// One served resource.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Subresources: (name, kind, group, version, verbs); group/version empty = same as parent.
    pub subresources: Vec<Subresource>,
    /// Writes of the main resource ignore `status` (a status subresource exists).
    pub has_status: bool,
    /// `metadata.generation` is maintained (bumped on spec changes).
    pub has_generation: bool,
    /// The CRD's `openAPIV3Schema` for custom resources; `None` for built-ins.
    pub schema: Option<Value>,
    /// `additionalPrinterColumns` of the CRD version.
    pub printer_columns: Vec<Value>,
    /// Create-only kinds like SelfSubjectAccessReview: never stored.
    pub virtual_only: bool,
    /// The resourceVersion at which the type began to be served (its watch cache's start).
    pub since_rv: u64,
}

#[derive(Debug, Clone)]
pub struct Subresource {
    pub name: String,
    pub kind: String,
    pub group: String,
    pub version: String,
    pub verbs: Vec<String>,
}

impl ResourceType {
    pub fn is_custom(&self) -> bool {
        self.schema.is_some()
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The storage version hash discovery shows (stable per group/version/kind).
    pub fn storage_version_hash(&self) -> String {
        // Hashed over the storage version, which for CRDs is still v1beta1.
        let version = if self.kind == "CustomResourceDefinition" {
            "v1beta1"
        } else {
            self.version.as_str()
        };
        let digest = Sha256::digest(format!("{}/{version}/{}", self.group, self.kind).as_bytes());
        b64(&digest[..8])
    }

    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn sub(name: &str, kind: &str, group: &str, version: &str, verbs: &[&str]) -> Subresource {
    Subresource {
        name: name.into(),
        kind: kind.into(),
        group: group.into(),
        version: version.into(),
        verbs: strs(verbs),
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    verbs: &[&str],
    short: &[&str],
    categories: &[&str],
    subresources: Vec<Subresource>,
) -> ResourceType {
    let has_status = subresources.iter().any(|s| s.name == "status");
    ResourceType {
        group: group.into(),
        version: "v1".into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        kind: kind.into(),
        namespaced,
        verbs: strs(verbs),
        short_names: strs(short),
        categories: strs(categories),
        subresources,
        has_status,
        has_generation: matches!(
            kind,
            "Deployment"
                | "ReplicaSet"
                | "StatefulSet"
                | "DaemonSet"
                | "Job"
                | "HorizontalPodAutoscaler"
                | "PodDisruptionBudget"
                | "CustomResourceDefinition"
                | "MutatingWebhookConfiguration"
                | "ValidatingWebhookConfiguration"
        ),
        schema: None,
        printer_columns: Vec::new(),
        virtual_only: false,
        since_rv: 0,
    }
}

/// A built-in type served at another version than v1 (listed before v1 when preferred).
fn versioned(mut t: ResourceType, version: &str) -> ResourceType {
    t.version = version.into();
    t
}

/// The built-in types, group by group, in the order `/apis` lists their groups.
pub fn builtins() -> Vec<ResourceType> {
    let gpu = &["get", "patch", "update"][..];
    let status = |kind: &str| sub("status", kind, "", "", gpu);
    let scale = sub("scale", "Scale", "autoscaling", "v1", gpu);
    let mut v = vec![
        builtin(
            "",
            "configmaps",
            "ConfigMap",
            true,
            RW,
            &["cm"],
            &[],
            vec![],
        ),
        builtin("", "events", "Event", true, RW, &["ev"], &[], vec![]),
        builtin(
            "",
            "namespaces",
            "Namespace",
            false,
            &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
            &["ns"],
            &[],
            vec![
                sub("finalize", "Namespace", "", "", &["update"]),
                status("Namespace"),
            ],
        ),
        builtin(
            "",
            "nodes",
            "Node",
            false,
            RW,
            &["no"],
            &[],
            vec![
                sub(
                    "proxy",
                    "NodeProxyOptions",
                    "",
                    "",
                    &["create", "delete", "get", "patch", "update"],
                ),
                status("Node"),
            ],
        ),
        builtin(
            "",
            "pods",
            "Pod",
            true,
            RW,
            &["po"],
            &["all"],
            vec![
                sub("eviction", "Eviction", "policy", "v1", &["create"]),
                status("Pod"),
            ],
        ),
        builtin("", "secrets", "Secret", true, RW, &[], &[], vec![]),
        builtin(
            "",
            "serviceaccounts",
            "ServiceAccount",
            true,
            RW,
            &["sa"],
            &[],
            vec![sub(
                "token",
                "TokenRequest",
                "authentication.k8s.io",
                "v1",
                &["create"],
            )],
        ),
        builtin(
            "",
            "services",
            "Service",
            true,
            RW,
            &["svc"],
            &["all"],
            vec![
                sub(
                    "proxy",
                    "ServiceProxyOptions",
                    "",
                    "",
                    &["create", "delete", "get", "patch", "update"],
                ),
                status("Service"),
            ],
        ),
        builtin(
            "apps",
            "deployments",
            "Deployment",
            true,
            RW,
            &["deploy"],
            &["all"],
            vec![scale.clone(), status("Deployment")],
        ),
        builtin(
            "apps",
            "replicasets",
            "ReplicaSet",
            true,
            RW,
            &["rs"],
            &["all"],
            vec![scale.clone(), status("ReplicaSet")],
        ),
        builtin(
            "apps",
            "statefulsets",
            "StatefulSet",
            true,
            RW,
            &["sts"],
            &["all"],
            vec![scale, status("StatefulSet")],
        ),
        builtin(
            "apps",
            "daemonsets",
            "DaemonSet",
            true,
            RW,
            &["ds"],
            &["all"],
            vec![status("DaemonSet")],
        ),
        builtin(
            "authentication.k8s.io",
            "selfsubjectreviews",
            "SelfSubjectReview",
            false,
            &["create"],
            &[],
            &[],
            vec![],
        ),
        builtin(
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            false,
            &["create"],
            &[],
            &[],
            vec![],
        ),
        versioned(
            builtin(
                "autoscaling",
                "horizontalpodautoscalers",
                "HorizontalPodAutoscaler",
                true,
                RW,
                &["hpa"],
                &["all"],
                vec![status("HorizontalPodAutoscaler")],
            ),
            "v2",
        ),
        builtin(
            "autoscaling",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            true,
            RW,
            &["hpa"],
            &["all"],
            vec![status("HorizontalPodAutoscaler")],
        ),
        builtin(
            "batch",
            "jobs",
            "Job",
            true,
            RW,
            &[],
            &["all"],
            vec![status("Job")],
        ),
        builtin(
            "policy",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            RW,
            &["pdb"],
            &[],
            vec![status("PodDisruptionBudget")],
        ),
        builtin(
            "authorization.k8s.io",
            "selfsubjectrulesreviews",
            "SelfSubjectRulesReview",
            false,
            &["create"],
            &[],
            &[],
            vec![],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            RW,
            &[],
            &[],
            vec![],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "clusterroles",
            "ClusterRole",
            false,
            RW,
            &[],
            &[],
            vec![],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "rolebindings",
            "RoleBinding",
            true,
            RW,
            &[],
            &[],
            vec![],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "roles",
            "Role",
            true,
            RW,
            &[],
            &[],
            vec![],
        ),
        builtin(
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            false,
            RW,
            &[],
            &["api-extensions"],
            vec![],
        ),
        builtin(
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            false,
            RW,
            &[],
            &["api-extensions"],
            vec![],
        ),
        builtin(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            RW,
            &["crd", "crds"],
            &["api-extensions"],
            vec![status("CustomResourceDefinition")],
        ),
        builtin(
            "coordination.k8s.io",
            "leases",
            "Lease",
            true,
            RW,
            &[],
            &[],
            vec![],
        ),
    ];
    for t in &mut v {
        if t.kind.starts_with("Self") {
            t.virtual_only = true;
        }
        if t.kind == "Namespace" {
            // Namespaces have a status subresource, but a namespace's status is written by
            // the server itself on create and delete.
            t.has_status = true;
        }
    }
    v
}

/// The built-in groups in `/apis` order (the core group is served under `/api`).
pub const BUILTIN_GROUPS: &[&str] = &[
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "policy",
    "rbac.authorization.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "coordination.k8s.io",
];

/// The resource types an Established CRD serves (one per served version).
pub fn from_crd(crd: &Value, since_rv: u64) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut out = Vec::new();
    for ver in spec["versions"].as_array().into_iter().flatten() {
        if ver["served"].as_bool() != Some(true) {
            continue;
        }
        let version = ver["name"].as_str().unwrap_or_default();
        let mut subresources = Vec::new();
        let has_status = ver["subresources"].get("status").is_some();
        if has_status {
            subresources.push(sub(
                "status",
                kind,
                group,
                version,
                &["get", "patch", "update"],
            ));
        }
        if ver["subresources"].get("scale").is_some() {
            subresources.push(sub(
                "scale",
                "Scale",
                "autoscaling",
                "v1",
                &["get", "patch", "update"],
            ));
        }
        out.push(ResourceType {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: singular.clone(),
            kind: kind.into(),
            namespaced,
            verbs: strs(CR_VERBS),
            short_names: names["shortNames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str())
                .map(String::from)
                .collect(),
            categories: names["categories"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str())
                .map(String::from)
                .collect(),
            subresources,
            has_status,
            has_generation: true,
            schema: Some(ver["schema"]["openAPIV3Schema"].clone())
                .filter(|s| !s.is_null())
                .or_else(|| {
                    Some(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}))
                }),
            printer_columns: ver["additionalPrinterColumns"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            virtual_only: false,
            since_rv,
        });
    }
    out
}
