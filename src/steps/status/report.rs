//! The pure part of `asm status`: observed objects → [`StatusReport`]. No I/O.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{ClusterObserved, KubeSnapshot, ManagementInfo};

/// The JSON schema name of the report.
pub const SCHEMA: &str = "asm.status/v1";

/// The revisions Google manages, one per release channel.
pub const MANAGED_REVISIONS: [&str; 3] = ["asm-managed", "asm-managed-rapid", "asm-managed-stable"];

/// Namespaces never shown (the injector ignores them too).
const HIDDEN_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];
const ISTIO_NAMESPACE: &str = "istio-system";
const INJECTOR_SUFFIX: &str = "sidecar-injector.istio.io";
const STATUS_ANNOTATION: &str = "sidecar.istio.io/status";
const INJECT_KEY: &str = "sidecar.istio.io/inject";
const PROXY_CONTAINER: &str = "istio-proxy";
/// The managed data plane annotation (https://cloud.google.com/service-mesh/docs/managed/provision-managed-anthos-service-mesh).
pub const PROXY_ANNOTATION: &str = "mesh.cloud.google.com/proxy";

/// The whole report: one entry per targeted cluster and the two verdicts `--require` uses.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct StatusReport {
    /// The schema id: always `asm.status/v1`.
    #[schemars(extend("const" = "asm.status/v1"))]
    pub schema: &'static str,
    pub clusters: Vec<ClusterReport>,
    /// Every cluster's managed control plane ready, and the data plane where annotated.
    pub ready: Verdict,
    /// Every injected pod on a managed revision, no namespace label pointing elsewhere.
    pub migrated: Verdict,
}

/// Whether a requirement holds, and what is missing when it does not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct Verdict {
    pub met: bool,
    /// `CLUSTER: what is not there yet`.
    pub missing: Vec<String>,
}

/// One cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct ClusterReport {
    pub cluster: String,
    /// Why part of the cluster could not be read.
    pub errors: Vec<String>,
    pub gke: Option<GkeReport>,
    pub fleet: FleetReport,
    /// ControlPlaneRevisions.
    pub managed_control_plane: Vec<RevisionReport>,
    pub in_cluster_control_planes: Vec<IstiodReport>,
    pub injection_webhooks: Vec<WebhookReport>,
    pub data_plane: DataPlaneReport,
    pub namespaces: Vec<NamespaceReport>,
    /// Injected pods by revision and proxy version.
    pub pods_by_revision: Vec<RevisionPods>,
    pub uninjected_pods: Vec<PodRef>,
    pub restart_needed: Vec<RestartNeeded>,
    pub remote_secrets: Vec<RemoteSecret>,
    /// What keeps `--require migrated` from holding.
    pub to_migrate: Vec<String>,
    /// Left over once migrated, not counted by `--require migrated`.
    pub cleanup: Vec<String>,
    /// What keeps `--require ready` from holding.
    pub not_ready: Vec<String>,
}

/// GKE's view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct GkeReport {
    pub status: Option<String>,
    pub channel: Option<String>,
    pub kubernetes: Option<String>,
}

/// The fleet's view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct FleetReport {
    pub membership: Option<String>,
    pub membership_state: Option<String>,
    pub management: Option<String>,
    /// `STATE (CODE, …)`.
    pub control_plane: Option<String>,
    pub data_plane: Option<String>,
}

/// A ControlPlaneRevision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct RevisionReport {
    pub name: String,
    pub channel: Option<String>,
    pub ready: bool,
    pub conditions: Vec<ConditionReport>,
}

/// One status condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct ConditionReport {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
}

/// An istiod Deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct IstiodReport {
    pub name: String,
    pub revision: String,
    pub version: Option<String>,
    /// `mesh_ca`, `gcp_cas`, `istiod` (istiod's own CA) or `other: ADDR`.
    pub ca: String,
    pub available: bool,
}

/// An Istio injection MutatingWebhookConfiguration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct WebhookReport {
    pub name: String,
    pub revision: String,
    /// `istio.io/tag` (a revision tag).
    pub tag: Option<String>,
    /// Whether it injects `istio-injection=enabled` namespaces (the default revision).
    pub default: bool,
    pub managed: bool,
}

/// The managed data plane.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct DataPlaneReport {
    pub controls: Vec<DataPlaneControlReport>,
    /// Namespaces annotated `mesh.cloud.google.com/proxy`, with the annotation.
    pub annotated_namespaces: Vec<Annotated>,
    pub annotated_pods: Vec<Annotated>,
}

/// A DataPlaneControl.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct DataPlaneControlReport {
    pub name: String,
    pub revision: String,
    pub state: Option<String>,
    pub proxy_version: Option<String>,
}

/// An object annotated for the managed data plane.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct Annotated {
    /// `NAMESPACE` or `NAMESPACE/POD`.
    pub name: String,
    pub value: String,
    pub managed: bool,
}

/// One namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct NamespaceReport {
    pub name: String,
    pub istio_injection: Option<String>,
    pub rev_label: Option<String>,
    /// What the labels ask for: `default` (istio-injection=enabled), a revision or tag.
    pub points_at: Option<String>,
    /// The revision new pods get (the first matching injector), if any.
    pub revision: Option<String>,
    pub pods: usize,
    pub injected: usize,
    pub restart_needed: usize,
}

/// Injected pods of one revision and proxy version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct RevisionPods {
    pub revision: String,
    pub proxy_version: Option<String>,
    pub managed: bool,
    pub pods: usize,
}

/// A pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    /// `sidecar.istio.io/inject=false` or host network: never injected.
    pub opted_out: bool,
}

/// A pod whose proxy is not what its namespace (or own labels) now ask for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct RestartNeeded {
    pub namespace: String,
    pub name: String,
    pub revision: Option<String>,
    pub expected: Option<String>,
}

/// A remote secret for another cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct RemoteSecret {
    pub name: String,
    pub cluster: String,
}

fn s<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.pointer(path).and_then(Value::as_str)
}

fn name_of(v: &Value) -> String {
    s(v, "/metadata/name").unwrap_or_default().to_string()
}

fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// Whether object `v` has status condition `kind` `True`.
pub fn condition_true(v: &Value, kind: &str) -> bool {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| s(c, "/type") == Some(kind) && s(c, "/status") == Some("True"))
}

/// Whether a Kubernetes label selector (`matchLabels`, `matchExpressions` with `In`,
/// `NotIn`, `Exists`, `DoesNotExist`) selects `labels`; an absent selector selects all
/// (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors).
pub fn selector_matches(selector: Option<&Value>, labels: &BTreeMap<String, String>) -> bool {
    let Some(sel) = selector.filter(|v| !v.is_null()) else {
        return true;
    };
    let get = |k: &str| labels.get(k).map(String::as_str);
    let by_label = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| get(k).is_some() && get(k) == v.as_str());
    let by_expression = sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|e| {
            let key = s(e, "/key").unwrap_or_default();
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match s(e, "/operator") {
                Some("In") => get(key).is_some_and(|v| values.contains(&v)),
                Some("NotIn") => get(key).is_none_or(|v| !values.contains(&v)),
                Some("Exists") => get(key).is_some(),
                Some("DoesNotExist") => get(key).is_none(),
                _ => false,
            }
        });
    by_label && by_expression
}

/// The labels of an object as a map.
pub fn labels_of(v: &Value) -> BTreeMap<String, String> {
    crate::kube::metadata::string_map(v.pointer("/metadata/labels"))
}

/// An Istio injection webhook configuration, reduced to what decides injection.
#[derive(Debug, Clone, PartialEq)]
pub struct Injector {
    pub name: String,
    pub revision: String,
    pub tag: Option<String>,
    /// Called by URL (Google-hosted), not through an in-cluster Service.
    pub by_url: bool,
    /// `(namespaceSelector, objectSelector)` of each injection webhook, in order.
    pub selectors: Vec<(Option<Value>, Option<Value>)>,
}

impl Injector {
    /// Whether it injects a pod with `pod` labels in a namespace with `ns` labels.
    pub fn matches(&self, ns: &BTreeMap<String, String>, pod: &BTreeMap<String, String>) -> bool {
        self.selectors
            .iter()
            .any(|(n, o)| selector_matches(n.as_ref(), ns) && selector_matches(o.as_ref(), pod))
    }

    /// Whether it is the default injector: it injects `istio-injection=enabled` namespaces.
    pub fn is_default(&self) -> bool {
        let ns = BTreeMap::from([("istio-injection".to_string(), "enabled".to_string())]);
        self.matches(&ns, &BTreeMap::new())
    }
}

/// The revision an injector configuration serves: its `istio.io/rev` label, else what
/// Istio's chart names it (`istio-sidecar-injector-REV`, `istio-sidecar-injector` for
/// `default`, `istiod-REV` for managed revisions).
fn configuration_revision(mwc: &Value) -> String {
    if let Some(r) = label(mwc, "istio.io/rev") {
        return r.to_string();
    }
    let name = name_of(mwc);
    if let Some(r) = name.strip_prefix("istio-sidecar-injector-") {
        return r.to_string();
    }
    if let Some(r) = name.strip_prefix("istiod-") {
        return r.to_string();
    }
    "default".to_string()
}

/// The Istio injectors among `webhooks` (configurations with a `*.sidecar-injector.istio.io`
/// webhook), sorted by name: the order in which the apiserver calls them.
pub fn injectors(webhooks: &[Value]) -> Vec<Injector> {
    let mut out: Vec<Injector> = webhooks
        .iter()
        .filter_map(|mwc| {
            let hooks: Vec<&Value> = mwc
                .get("webhooks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|w| s(w, "/name").is_some_and(|n| n.ends_with(INJECTOR_SUFFIX)))
                .collect();
            if hooks.is_empty() {
                return None;
            }
            Some(Injector {
                name: name_of(mwc),
                revision: configuration_revision(mwc),
                tag: label(mwc, "istio.io/tag").map(str::to_string),
                by_url: hooks.iter().any(|w| s(w, "/clientConfig/url").is_some()),
                selectors: hooks
                    .iter()
                    .map(|w| {
                        (
                            w.get("namespaceSelector").cloned(),
                            w.get("objectSelector").cloned(),
                        )
                    })
                    .collect(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The revision a pod with `pod` labels created in a namespace with `ns` labels is
/// injected by: the first matching injector (a later one sees an injected pod and skips).
pub fn resolve(
    injectors: &[Injector],
    ns: &BTreeMap<String, String>,
    pod: &BTreeMap<String, String>,
) -> Option<String> {
    injectors
        .iter()
        .find(|i| i.matches(ns, pod))
        .map(|i| i.revision.clone())
}

/// What a namespace's labels ask for, by Istio's precedence: `istio-injection` beats
/// `istio.io/rev`; `enabled` means the default revision, any other value none.
pub fn points_at(ns: &BTreeMap<String, String>) -> Option<String> {
    match ns.get("istio-injection") {
        Some(v) if v == "enabled" => Some("default".to_string()),
        Some(_) => None,
        None => ns.get("istio.io/rev").cloned(),
    }
}

/// The revision that injected a pod: `revision` in `sidecar.istio.io/status`, else the
/// `istio.io/rev` annotation the injector sets.
pub fn pod_revision(pod: &Value) -> Option<String> {
    let status = annotation(pod, STATUS_ANNOTATION)?;
    serde_json::from_str::<Value>(status)
        .ok()
        .and_then(|v| {
            v.get("revision")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or_else(|| annotation(pod, "istio.io/rev").map(str::to_string))
        .or_else(|| Some("default".to_string()))
}

/// The tag of an image reference (`repo/proxyv2:1.23.6-asm.14` → `1.23.6-asm.14`).
pub fn image_tag(image: &str) -> Option<String> {
    let image = image.split('@').next().unwrap_or(image);
    let (repo, tag) = image.rsplit_once(':')?;
    (!tag.contains('/') && !repo.is_empty()).then(|| tag.to_string())
}

/// The proxy version of an injected pod: the `istio-proxy` container's image tag.
pub fn proxy_version(pod: &Value) -> Option<String> {
    ["/spec/containers", "/spec/initContainers"]
        .iter()
        .flat_map(|p| {
            pod.pointer(p)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|c| s(c, "/name") == Some(PROXY_CONTAINER))
        .and_then(|c| s(c, "/image"))
        .and_then(image_tag)
}

/// Whether a pod is never injected: `sidecar.istio.io/inject=false` (label, or annotation
/// without the label) or host networking.
pub fn opted_out(pod: &Value) -> bool {
    let value = label(pod, INJECT_KEY).or_else(|| annotation(pod, INJECT_KEY));
    value.is_some_and(|v| v.eq_ignore_ascii_case("false"))
        || pod.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true)
}

/// The CA an in-cluster istiod uses, from its `CA_ADDR`: Mesh CA, CA Service, or (unset)
/// istiod's own.
pub fn istiod_ca(deployment: &Value) -> String {
    let addr = istiod_container(deployment)
        .and_then(|c| c.get("env"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| s(e, "/name") == Some("CA_ADDR"))
        .and_then(|e| s(e, "/value"))
        .unwrap_or_default();
    if addr.is_empty() {
        "istiod".into()
    } else if addr.contains("meshca.googleapis.com") {
        "mesh_ca".into()
    } else if addr.contains("privateca") || addr.contains("caPools") {
        "gcp_cas".into()
    } else {
        format!("other: {addr}")
    }
}

/// The istiod container of an istiod Deployment (`discovery`, else the first).
pub fn istiod_container(d: &Value) -> Option<&Value> {
    let containers = d
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)?;
    containers
        .iter()
        .find(|c| s(c, "/name") == Some("discovery"))
        .or_else(|| containers.first())
}

/// Whether a namespace is shown: not a Kubernetes system namespace; istio-system and
/// `gke-*` only when they have injected pods.
fn shown(ns: &str, injected: usize) -> bool {
    if HIDDEN_NAMESPACES.contains(&ns) {
        return false;
    }
    if ns == ISTIO_NAMESPACE || ns.starts_with("gke-") {
        return injected > 0;
    }
    true
}

fn management(m: &ManagementInfo) -> String {
    if m.codes.is_empty() {
        m.state.clone()
    } else {
        format!("{} ({})", m.state, m.codes.join(", "))
    }
}

fn management_ready(m: &ManagementInfo) -> bool {
    m.state == "ACTIVE" && m.codes.iter().any(|c| c == "REVISION_READY")
}

/// Whether a `mesh.cloud.google.com/proxy` value asks for the managed data plane
/// (`{"managed":"true"}`).
pub fn proxy_managed(value: &str) -> bool {
    serde_json::from_str::<Value>(value)
        .ok()
        .and_then(|v| v.get("managed").cloned())
        .is_some_and(|m| m == Value::Bool(true) || m.as_str() == Some("true"))
}

/// The report of one cluster.
pub fn cluster_report(obs: &ClusterObserved) -> ClusterReport {
    let mut r = ClusterReport {
        cluster: obs.cluster.clone(),
        ..Default::default()
    };
    match &obs.gke {
        Ok(Some(g)) => {
            r.gke = Some(GkeReport {
                status: g.status.clone(),
                channel: g.channel.clone(),
                kubernetes: g.master_version.clone(),
            })
        }
        Ok(None) => r.errors.push("GKE cluster not found".into()),
        Err(e) => r.errors.push(format!("GKE: {e}")),
    }
    let mut automatic_state: Option<Option<ManagementInfo>> = None;
    match &obs.membership {
        Ok(Some(m)) => {
            r.fleet.membership = Some(m.name.clone());
            r.fleet.membership_state = m.state.clone();
            match &m.feature {
                Ok(Some(f)) => {
                    r.fleet.management = f.management.clone();
                    r.fleet.control_plane = f.control_plane.as_ref().map(management);
                    r.fleet.data_plane = f.data_plane.as_ref().map(management);
                    if f.management.as_deref() == Some("MANAGEMENT_AUTOMATIC") {
                        automatic_state = Some(f.control_plane.clone());
                    }
                }
                Ok(None) => {}
                Err(e) => r
                    .errors
                    .push(format!("servicemesh membership feature: {e}")),
            }
        }
        Ok(None) => {}
        Err(e) => r.errors.push(format!("fleet memberships: {e}")),
    }
    match &obs.kube {
        Ok(k) => kube_report(&mut r, k),
        Err(e) => {
            r.errors.push(format!("Kubernetes API: {e}"));
            r.not_ready
                .push(format!("Kubernetes API not readable: {e}"));
        }
    }
    if obs.kube.is_ok() {
        if !r.managed_control_plane.iter().any(|c| c.ready) {
            r.not_ready.insert(
                0,
                if r.managed_control_plane.is_empty() {
                    "no managed control plane (no ControlPlaneRevision in istio-system)".into()
                } else {
                    let names: Vec<&str> = r
                        .managed_control_plane
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect();
                    format!(
                        "ControlPlaneRevision {} not ProvisioningFinished",
                        names.join(", ")
                    )
                },
            );
        }
        if let Some(state) = &automatic_state
            && !state.as_ref().is_some_and(management_ready)
        {
            r.not_ready.push(format!(
                "fleet control plane management is {}, not ACTIVE (REVISION_READY)",
                state
                    .as_ref()
                    .map(management)
                    .unwrap_or_else(|| "not reported".into())
            ));
        }
    }
    r
}

fn kube_report(r: &mut ClusterReport, k: &KubeSnapshot) {
    let injectors = injectors(&k.webhooks);
    let mut managed: BTreeSet<String> = MANAGED_REVISIONS.iter().map(|s| s.to_string()).collect();
    for cpr in &k.control_plane_revisions {
        managed.insert(name_of(cpr));
    }
    for i in injectors.iter().filter(|i| i.by_url) {
        managed.insert(i.revision.clone());
    }
    r.managed_control_plane = k
        .control_plane_revisions
        .iter()
        .map(|c| RevisionReport {
            name: name_of(c),
            channel: s(c, "/spec/channel").map(str::to_string),
            ready: condition_true(c, "ProvisioningFinished"),
            conditions: c
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|x| ConditionReport {
                    kind: s(x, "/type").unwrap_or_default().to_string(),
                    status: s(x, "/status").unwrap_or_default().to_string(),
                    reason: s(x, "/reason").map(str::to_string),
                })
                .collect(),
        })
        .collect();
    r.in_cluster_control_planes = k
        .istiods
        .iter()
        .map(|d| IstiodReport {
            name: name_of(d),
            revision: label(d, "istio.io/rev").unwrap_or("default").to_string(),
            version: istiod_container(d)
                .and_then(|c| s(c, "/image"))
                .and_then(image_tag),
            ca: istiod_ca(d),
            available: condition_true(d, "Available"),
        })
        .collect();
    r.injection_webhooks = injectors
        .iter()
        .map(|i| WebhookReport {
            name: i.name.clone(),
            revision: i.revision.clone(),
            tag: i.tag.clone(),
            default: i.is_default(),
            managed: managed.contains(&i.revision),
        })
        .collect();
    r.data_plane.controls = k
        .dataplane_controls
        .iter()
        .map(|d| DataPlaneControlReport {
            name: name_of(d),
            revision: s(d, "/spec/revision")
                .map(str::to_string)
                .unwrap_or_else(|| name_of(d)),
            state: s(d, "/status/state").map(str::to_string),
            proxy_version: s(d, "/spec/proxyVersion").map(str::to_string),
        })
        .collect();

    let ns_labels: BTreeMap<String, BTreeMap<String, String>> = k
        .namespaces
        .iter()
        .map(|n| (name_of(n), labels_of(n)))
        .collect();
    let empty = BTreeMap::new();
    // Pods by namespace, in a stable order.
    // Finished pods (a completed Job's) run no proxy any more and are not restarted.
    let mut pods: Vec<&Value> = k
        .pods
        .iter()
        .filter(|p| !matches!(s(p, "/status/phase"), Some("Succeeded" | "Failed")))
        .collect();
    pods.sort_by_key(|p| (s(p, "/metadata/namespace").unwrap_or_default(), name_of(p)));
    let mut injected_in: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &pods {
        if pod_revision(p).is_some() {
            *injected_in
                .entry(s(p, "/metadata/namespace").unwrap_or_default())
                .or_default() += 1;
        }
    }
    let mut by_revision: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    let mut ns_counts: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut old_pods: BTreeMap<(String, String), usize> = BTreeMap::new();
    for p in &pods {
        let ns = s(p, "/metadata/namespace").unwrap_or_default();
        let system = ns == ISTIO_NAMESPACE || ns.starts_with("gke-");
        if !shown(ns, injected_in.get(ns).copied().unwrap_or(0)) {
            continue;
        }
        let actual = pod_revision(p);
        if system && actual.is_none() {
            // istiod and other system pods are not meant to be injected.
            continue;
        }
        let name = name_of(p);
        let out = opted_out(p);
        let expected = if out {
            None
        } else {
            resolve(
                &injectors,
                ns_labels.get(ns).unwrap_or(&empty),
                &labels_of(p),
            )
        };
        let counts = ns_counts.entry(ns.to_string()).or_default();
        counts.0 += 1;
        match &actual {
            Some(rev) => {
                counts.1 += 1;
                *by_revision
                    .entry((rev.clone(), proxy_version(p)))
                    .or_default() += 1;
                if !managed.contains(rev) {
                    *old_pods.entry((ns.to_string(), rev.clone())).or_default() += 1;
                }
            }
            None => r.uninjected_pods.push(PodRef {
                namespace: ns.to_string(),
                name: name.clone(),
                opted_out: out,
            }),
        }
        if actual != expected && (actual.is_some() || expected.is_some()) {
            counts.2 += 1;
            r.restart_needed.push(RestartNeeded {
                namespace: ns.to_string(),
                name: name.clone(),
                revision: actual.clone(),
                expected: expected.clone(),
            });
        }
        if let Some(v) = annotation(p, PROXY_ANNOTATION) {
            r.data_plane.annotated_pods.push(Annotated {
                name: format!("{ns}/{name}"),
                value: v.to_string(),
                managed: proxy_managed(v),
            });
        }
    }
    r.pods_by_revision = by_revision
        .into_iter()
        .map(|((revision, proxy_version), pods)| RevisionPods {
            managed: managed.contains(&revision),
            revision,
            proxy_version,
            pods,
        })
        .collect();

    let mut namespaces: Vec<&Value> = k.namespaces.iter().collect();
    namespaces.sort_by_key(|n| name_of(n));
    for n in namespaces {
        let name = name_of(n);
        let (pods, injected, restart) = ns_counts.get(&name).copied().unwrap_or_default();
        if !shown(&name, injected) {
            continue;
        }
        let labels = labels_of(n);
        let target = points_at(&labels);
        let revision = resolve(&injectors, &labels, &empty);
        if let Some(t) = &target
            && !revision.as_ref().is_some_and(|r| managed.contains(r))
        {
            r.to_migrate.push(match &revision {
                Some(rev) => {
                    format!("namespace {name}: labels point at {rev}, not a managed revision")
                }
                None => format!("namespace {name}: labels point at {t}, which no injector serves"),
            });
        }
        if let Some(v) = annotation(n, PROXY_ANNOTATION) {
            let is_managed = proxy_managed(v);
            if is_managed {
                let dpc = revision
                    .as_ref()
                    .and_then(|rev| r.data_plane.controls.iter().find(|d| &d.revision == rev));
                match (&revision, dpc) {
                    (_, Some(d)) if d.state.as_deref() == Some("Ready") => {}
                    (Some(_), Some(d)) => r.not_ready.push(format!(
                        "namespace {name}: DataPlaneControl {} is {}, not Ready",
                        d.name,
                        d.state.as_deref().unwrap_or("without state")
                    )),
                    (Some(rev), None) => r.not_ready.push(format!(
                        "namespace {name}: managed data plane asked for, but no DataPlaneControl for {rev}"
                    )),
                    (None, _) => r.not_ready.push(format!(
                        "namespace {name}: managed data plane asked for, but no injector serves the namespace"
                    )),
                }
            }
            r.data_plane.annotated_namespaces.push(Annotated {
                name: name.clone(),
                value: v.to_string(),
                managed: is_managed,
            });
        }
        r.namespaces.push(NamespaceReport {
            name,
            istio_injection: labels.get("istio-injection").cloned(),
            rev_label: labels.get("istio.io/rev").cloned(),
            points_at: target,
            revision,
            pods,
            injected,
            restart_needed: restart,
        });
    }
    for ((ns, rev), n) in old_pods {
        r.to_migrate.push(format!(
            "namespace {ns}: {n} pod{} on {rev}",
            if n == 1 { "" } else { "s" }
        ));
    }
    for d in &r.in_cluster_control_planes {
        if !managed.contains(&d.revision) {
            r.cleanup.push(format!(
                "in-cluster control plane {} ({}) still exists",
                d.name, d.revision
            ));
        }
    }
    r.remote_secrets = k
        .remote_secrets
        .iter()
        .map(|x| RemoteSecret {
            name: s(x, "/name").unwrap_or_default().to_string(),
            cluster: s(x, "/cluster").unwrap_or_default().to_string(),
        })
        .collect();
}

/// The report of every cluster, with the verdicts.
pub fn status_report(observed: &[ClusterObserved]) -> StatusReport {
    let clusters: Vec<ClusterReport> = observed.iter().map(cluster_report).collect();
    let verdict = |f: fn(&ClusterReport) -> &Vec<String>| {
        let missing: Vec<String> = clusters
            .iter()
            .flat_map(|c| f(c).iter().map(move |m| format!("{}: {m}", c.cluster)))
            .collect();
        Verdict {
            met: missing.is_empty(),
            missing,
        }
    };
    let ready = verdict(|c| &c.not_ready);
    let mut migrated = verdict(|c| &c.to_migrate);
    // A cluster whose pods could not be read is not known to be migrated.
    for c in &clusters {
        if let Some(e) = c.errors.iter().find(|e| e.starts_with("Kubernetes API")) {
            migrated.missing.push(format!("{}: {e}", c.cluster));
            migrated.met = false;
        }
    }
    StatusReport {
        schema: SCHEMA,
        clusters,
        ready,
        migrated,
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
