//! Sidecar injection, as Istio's mutating admission webhooks do it when a Pod is created.
//!
//! The decisions are pure functions over JSON objects:
//! - which webhooks of which MutatingWebhookConfigurations a Pod create calls
//!   ([`matching_injectors`]: rules, `namespaceSelector`, `objectSelector`, in the order
//!   the apiserver calls them — configurations sorted by name);
//! - whether the injector, once called, injects ([`injector_wants`], Istio's
//!   `injectRequired` in github.com/istio/istio `pkg/kube/inject/inject.go`);
//! - what the injected Pod looks like ([`inject`], the `sidecar` and `gateway` templates of
//!   github.com/istio/istio `manifests/charts/istio-control/istio-discovery/files/`).
//!
//! [`KubeApiServer::admit_pod`] gathers their inputs from the store: which revisions are
//! served (a provisioned managed ControlPlaneRevision, or an Available in-cluster istiod
//! Deployment) and with which proxy. A call to a webhook whose revision is not served fails
//! as a call to a Service without endpoints does: the create is rejected when the webhook's
//! `failurePolicy` is `Fail`, and goes on uninjected when it is `Ignore`.

use serde_json::{Value, json};

use super::KubeApiServer;
use super::kinds;
use super::registry::ResourceType;
use super::selectors;
use super::status::ApiError;
use super::store::State;
use super::util;
use crate::revisions::{self, MANAGED_PROXY_REPOSITORY};

/// Istio's injection webhooks are named `<prefix>.sidecar-injector.istio.io`.
const INJECTOR_WEBHOOK_SUFFIX: &str = "sidecar-injector.istio.io";
/// Namespaces the injector never injects (`IgnoredNamespaces` in
/// github.com/istio/istio `pkg/kube/inject/inject.go`).
const IGNORED_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];
const ISTIO_NAMESPACE: &str = "istio-system";
const PROXY_CONTAINER: &str = "istio-proxy";
const STATUS_ANNOTATION: &str = "sidecar.istio.io/status";
const INJECT_LABEL: &str = "sidecar.istio.io/inject";
const TEMPLATES_ANNOTATION: &str = "inject.istio.io/templates";
const MANAGED_CNI_LABEL: &str = "mesh.cloud.google.com/managed-cni-enabled";

/// Whether a Kubernetes label selector matches `labels`; an absent or empty selector
/// matches everything (the one selector evaluation of the simulator, [`selectors`]).
pub fn selector_matches(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    selector.is_none_or(|s| selectors::selector_matches(s, labels))
}

fn list_has(v: Option<&Value>, wanted: &[&str]) -> bool {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|s| wanted.contains(&s))
}

/// Whether a webhook's `rules` cover CREATE of core/v1 `pods`.
pub fn rules_match_pod_create(rules: Option<&Value>) -> bool {
    rules
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|r| {
            list_has(r.get("operations"), &["CREATE", "*"])
                && list_has(r.get("apiGroups"), &["", "*"])
                && list_has(r.get("apiVersions"), &["v1", "*"])
                && list_has(r.get("resources"), &["pods", "*", "*/*"])
                && r.get("scope")
                    .and_then(Value::as_str)
                    .is_none_or(|s| s == "*" || s == "Namespaced")
        })
}

/// The revision an Istio injector configuration serves: its `istio.io/rev` label, else
/// what its name says (`istiod-asm-managed-rapid` → `asm-managed-rapid`,
/// `istio-sidecar-injector-asm-1232-1` → `asm-1232-1`, `istio-sidecar-injector` →
/// `default`).
pub fn configuration_revision(configuration: &Value) -> Option<String> {
    if let Some(rev) = util::get_str(configuration, &["metadata", "labels", "istio.io/rev"]) {
        return Some(rev.to_string());
    }
    let name = util::get_str(configuration, &["metadata", "name"])?;
    if let Some(rev) = name.strip_prefix("istio-sidecar-injector-") {
        return Some(rev.to_string());
    }
    if name == "istio-sidecar-injector" {
        return Some("default".into());
    }
    name.strip_prefix("istiod-").map(str::to_string)
}

/// One call of an Istio injection webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectorCall {
    /// The MutatingWebhookConfiguration's name.
    pub configuration: String,
    /// The webhook's name (`rev.namespace.sidecar-injector.istio.io`).
    pub webhook: String,
    pub revision: String,
    /// `failurePolicy: Fail` (the default).
    pub fail_closed: bool,
    /// Where the call goes: the URL, or `https://<service>.<ns>.svc:<port><path>`.
    pub url: String,
    /// The Service behind the webhook, if it is not a URL.
    pub service: Option<String>,
}

fn client_url(webhook: &Value) -> (String, Option<String>) {
    let cc = webhook.get("clientConfig");
    if let Some(url) = cc.and_then(|c| c.get("url")).and_then(Value::as_str) {
        return (url.to_string(), None);
    }
    let svc = cc.and_then(|c| c.get("service"));
    let name = svc
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ns = svc
        .and_then(|s| s.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let port = svc
        .and_then(|s| s.get("port"))
        .and_then(Value::as_u64)
        .unwrap_or(443);
    let path = svc
        .and_then(|s| s.get("path"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    (
        format!("https://{name}.{ns}.svc:{port}{path}"),
        Some(name.to_string()),
    )
}

/// The Istio injection webhooks a Pod create calls, in call order: configurations sorted
/// by name, webhooks in their order, those whose rules cover Pod CREATE and whose
/// `namespaceSelector` and `objectSelector` match.
pub fn matching_injectors(
    configurations: &[Value],
    namespace_labels: Option<&Value>,
    pod_labels: Option<&Value>,
) -> Vec<InjectorCall> {
    let mut sorted: Vec<&Value> = configurations.iter().collect();
    sorted.sort_by_key(|c| util::get_str(c, &["metadata", "name"]).unwrap_or_default());
    let mut calls = Vec::new();
    for c in sorted {
        let Some(revision) = configuration_revision(c) else {
            continue;
        };
        let configuration = util::get_str(c, &["metadata", "name"])
            .unwrap_or_default()
            .to_string();
        for wh in c
            .get("webhooks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = wh.get("name").and_then(Value::as_str).unwrap_or_default();
            if !name.ends_with(INJECTOR_WEBHOOK_SUFFIX)
                || !rules_match_pod_create(wh.get("rules"))
                || !selector_matches(wh.get("namespaceSelector"), namespace_labels)
                || !selector_matches(wh.get("objectSelector"), pod_labels)
            {
                continue;
            }
            let (url, service) = client_url(wh);
            calls.push(InjectorCall {
                configuration: configuration.clone(),
                webhook: name.to_string(),
                revision: revision.clone(),
                fail_closed: wh.get("failurePolicy").and_then(Value::as_str) != Some("Ignore"),
                url,
                service,
            });
        }
    }
    calls
}

fn containers(pod: &Value, field: &str) -> Vec<Value> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Whether the Pod carries a proxy it was given by hand (`istioctl kube-inject`): an
/// `istio-proxy` container with a real image (`auto` is the gateway placeholder).
pub fn manually_injected(pod: &Value) -> bool {
    containers(pod, "containers").iter().any(|c| {
        c.get("name").and_then(Value::as_str) == Some(PROXY_CONTAINER)
            && c.get("image").and_then(Value::as_str) != Some("auto")
    })
}

/// The injector's own decision once its webhook is called (`injectRequired`): never
/// host-network Pods, Pods in ignored namespaces, or Pods already injected; then the
/// `sidecar.istio.io/inject` label (or, without it, the annotation): y/yes/true/on
/// injects, empty uses the policy (`enabled`), anything else does not.
pub fn injector_wants(pod: &Value, namespace: &str) -> bool {
    if pod.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true)
        || IGNORED_NAMESPACES.contains(&namespace)
        || util::get_str(pod, &["metadata", "annotations", STATUS_ANNOTATION]).is_some()
        || manually_injected(pod)
    {
        return false;
    }
    let label = util::get_str(pod, &["metadata", "labels", INJECT_LABEL]);
    let annotation = util::get_str(pod, &["metadata", "annotations", INJECT_LABEL]);
    let value = label
        .or(annotation)
        .unwrap_or_default()
        .to_ascii_lowercase();
    matches!(value.as_str(), "y" | "yes" | "true" | "on" | "")
}

/// A revision that answers injection calls, and the proxy it injects.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedRevision {
    pub revision: String,
    /// `gcr.io/gke-release/asm/proxyv2:1.23.6-asm.14`.
    pub proxy_image: String,
    /// `1.23.6-asm.14`.
    pub proxy_version: String,
    /// Whether the CNI plugin sets up traffic redirection (then the init container only
    /// validates it).
    pub cni: bool,
    /// The control plane address proxies connect to.
    pub discovery_address: String,
}

/// The proxy image of an in-cluster istiod image (`…/pilot:1.9.1-asm.1` →
/// `…/proxyv2:1.9.1-asm.1`), and its version (the tag).
pub fn proxy_of_istiod_image(image: &str) -> Option<(String, String)> {
    let (repo, tag) = image.rsplit_once(':').filter(|(r, _)| !r.ends_with('/'))?;
    let (base, _) = repo.rsplit_once('/').unwrap_or(("", repo));
    let proxy = if base.is_empty() {
        format!("proxyv2:{tag}")
    } else {
        format!("{base}/proxyv2:{tag}")
    };
    Some((proxy, tag.to_string()))
}

/// The workload a Pod belongs to, as Istio names it (`GetDeployMetaFromPod`): a
/// ReplicaSet owner without its pod-template-hash suffix (the Deployment), another owner
/// as is, else the Pod's own name (or generateName without the trailing dash).
pub fn workload_name(pod: &Value) -> String {
    let owner = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|o| {
            o.iter()
                .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
                .or_else(|| o.first())
        });
    if let Some(owner) = owner {
        let name = owner
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let hash = util::get_str(pod, &["metadata", "labels", "pod-template-hash"]);
        if owner.get("kind").and_then(Value::as_str) == Some("ReplicaSet")
            && let Some(h) = hash
            && let Some(deployment) = name.strip_suffix(&format!("-{h}"))
        {
            return deployment.to_string();
        }
        return name.to_string();
    }
    match util::get_str(pod, &["metadata", "name"]).filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => util::get_str(pod, &["metadata", "generateName"])
            .unwrap_or_default()
            .trim_end_matches('-')
            .to_string(),
    }
}

/// `service.istio.io/canonical-name` and `-revision` as the injector derives them from
/// the Pod's labels (github.com/istio/istio `pkg/model/labels.go` CanonicalService).
pub fn canonical_service(pod: &Value) -> (String, String) {
    let label = |k: &str| util::get_str(pod, &["metadata", "labels", k]).map(str::to_string);
    let name = label("service.istio.io/canonical-name")
        .or_else(|| label("app.kubernetes.io/name"))
        .or_else(|| label("app"))
        .unwrap_or_else(|| workload_name(pod));
    let revision = label("service.istio.io/canonical-revision")
        .or_else(|| label("app.kubernetes.io/version"))
        .or_else(|| label("version"))
        .unwrap_or_else(|| "latest".into());
    (name, revision)
}

/// Which template the Pod asks for (`inject.istio.io/templates`).
fn wants_gateway(pod: &Value) -> bool {
    util::get_str(pod, &["metadata", "annotations", TEMPLATES_ANNOTATION])
        .is_some_and(|t| t.split(',').any(|t| t.trim() == "gateway"))
}

const VOLUMES: &[&str] = &[
    "workload-socket",
    "credential-socket",
    "workload-certs",
    "istio-envoy",
    "istio-data",
    "istio-podinfo",
    "istio-token",
    "istiod-ca-cert",
];

fn volumes() -> Vec<Value> {
    vec![
        json!({"name": "workload-socket", "emptyDir": {}}),
        json!({"name": "credential-socket", "emptyDir": {}}),
        json!({"name": "workload-certs", "emptyDir": {}}),
        json!({"name": "istio-envoy", "emptyDir": {"medium": "Memory"}}),
        json!({"name": "istio-data", "emptyDir": {}}),
        json!({"name": "istio-podinfo", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]}}),
        json!({"name": "istio-token", "projected": {"sources": [{"serviceAccountToken":
            {"audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}}),
        json!({"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}}),
    ]
}

fn volume_mounts() -> Value {
    json!([
        {"name": "workload-socket", "mountPath": "/var/run/secrets/workload-spiffe-uds"},
        {"name": "credential-socket", "mountPath": "/var/run/secrets/credential-uds"},
        {"name": "workload-certs", "mountPath": "/var/run/secrets/workload-spiffe-credentials"},
        {"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio"},
        {"name": "istio-data", "mountPath": "/var/lib/istio/data"},
        {"name": "istio-envoy", "mountPath": "/etc/istio/proxy"},
        {"name": "istio-token", "mountPath": "/var/run/secrets/tokens"},
        {"name": "istio-podinfo", "mountPath": "/etc/istio/pod"},
    ])
}

fn proxy_env(served: &ServedRevision, workload: &str) -> Value {
    let field = |path: &str| json!({"fieldRef": {"apiVersion": "v1", "fieldPath": path}});
    json!([
        {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
        {"name": "CA_ADDR", "value": served.discovery_address},
        {"name": "POD_NAME", "valueFrom": field("metadata.name")},
        {"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")},
        {"name": "INSTANCE_IP", "valueFrom": field("status.podIP")},
        {"name": "SERVICE_ACCOUNT", "valueFrom": field("spec.serviceAccountName")},
        {"name": "HOST_IP", "valueFrom": field("status.hostIP")},
        {"name": "ISTIO_CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"divisor": "0", "resource": "limits.cpu"}}},
        {"name": "PROXY_CONFIG", "value": format!("{{\"discoveryAddress\":\"{}\"}}\n", served.discovery_address)},
        {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"},
        {"name": "ISTIO_META_WORKLOAD_NAME", "value": workload},
        {"name": "ISTIO_META_MESH_ID", "value": "cluster.local"},
        {"name": "TRUST_DOMAIN", "value": "cluster.local"},
        {"name": "ISTIO_META_INTERCEPTION_MODE", "value": "REDIRECT"},
    ])
}

/// The injected fields of the `istio-proxy` container (its name and the template's
/// image, args, ports, environment, probes, security context and mounts).
fn proxy_fields(served: &ServedRevision, workload: &str, gateway: bool) -> Value {
    let role = if gateway { "router" } else { "sidecar" };
    let mut c = json!({
        "name": PROXY_CONTAINER,
        "image": served.proxy_image,
        "args": ["proxy", role, "--domain", "$(POD_NAMESPACE).svc.cluster.local",
            "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"],
        "ports": [{"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}],
        "env": proxy_env(served, workload),
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "volumeMounts": volume_mounts(),
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"},
            "failureThreshold": 4, "periodSeconds": 15, "timeoutSeconds": 3, "successThreshold": 1},
        "startupProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"},
            "failureThreshold": 600, "periodSeconds": 1, "timeoutSeconds": 3, "successThreshold": 1},
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
            "privileged": false, "readOnlyRootFilesystem": true, "runAsGroup": 1337,
            "runAsNonRoot": true, "runAsUser": 1337},
    });
    if gateway && let Some(m) = c.as_object_mut() {
        m.remove("startupProbe");
    }
    c
}

/// The init container of the sidecar template: `istio-init` sets up the iptables
/// redirection; with the CNI plugin doing that, `istio-validation` only checks it.
fn init_container(served: &ServedRevision) -> Value {
    let mut args = vec![
        "istio-iptables",
        "-p",
        "15001",
        "-z",
        "15006",
        "-u",
        "1337",
        "-m",
        "REDIRECT",
        "-i",
        "*",
        "-x",
        "",
        "-b",
        "*",
        "-d",
        "15090,15021,15020",
        "--log_output_level=default:info",
    ];
    let (name, security) = if served.cni {
        args.extend(["--run-validation", "--skip-rule-apply"]);
        (
            "istio-validation",
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                "privileged": false, "readOnlyRootFilesystem": true, "runAsGroup": 1337,
                "runAsNonRoot": true, "runAsUser": 1337}),
        )
    } else {
        (
            "istio-init",
            json!({"allowPrivilegeEscalation": false, "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
                "privileged": false, "readOnlyRootFilesystem": false, "runAsGroup": 0,
                "runAsNonRoot": false, "runAsUser": 0}),
        )
    };
    json!({
        "name": name,
        "image": served.proxy_image,
        "args": args,
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "imagePullPolicy": "IfNotPresent",
        "securityContext": security,
    })
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// `sidecar.istio.io/status`: what the injector added, in the field order Istio's
/// `SidecarInjectionStatus` marshals (github.com/istio/istio `pkg/kube/inject/inject.go`).
pub fn status_annotation(
    init_containers: &[String],
    containers: &[String],
    revision: &str,
) -> String {
    let list = |v: &[String]| {
        if v.is_empty() { Value::Null } else { json!(v) }
    };
    json!({
        "initContainers": list(init_containers),
        "containers": list(containers),
        "volumes": VOLUMES,
        "imagePullSecrets": null,
        "revision": revision,
    })
    .to_string()
}

/// The Pod as the injector of `served` returns it: the sidecar template (an `istio-init`
/// or `istio-validation` init container first, `istio-proxy` last) or, for
/// `inject.istio.io/templates: gateway`, the gateway template (the `istio-proxy` container
/// with `image: auto` gets the real image; no init container); plus the volumes, the
/// `istio.io/rev` and `sidecar.istio.io/status` annotations and the canonical-service
/// (and, for sidecars, `security.istio.io/tlsMode`) labels.
pub fn inject(pod: &Value, served: &ServedRevision) -> Value {
    let mut out = pod.clone();
    let gateway = wants_gateway(pod);
    let workload = workload_name(pod);
    let proxy = proxy_fields(served, &workload, gateway);
    let mut app_containers = containers(pod, "containers");
    let first_app = app_containers
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .find(|n| *n != PROXY_CONTAINER)
        .map(str::to_string);
    let mut init = containers(pod, "initContainers");
    let mut injected_init = Vec::new();
    if gateway {
        match app_containers
            .iter_mut()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(PROXY_CONTAINER))
        {
            // The Pod's own fields win over the template's, as in Istio's strategic merge.
            Some(existing) => {
                let mut merged = proxy.clone();
                if let (Some(m), Some(own)) = (merged.as_object_mut(), existing.as_object()) {
                    for (k, v) in own {
                        if k != "image" {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                }
                *existing = merged;
            }
            None => app_containers.push(proxy),
        }
    } else {
        let ic = init_container(served);
        injected_init.push(ic["name"].as_str().unwrap_or_default().to_string());
        init.insert(0, ic);
        app_containers.push(proxy);
    }
    let mut vols = containers(pod, "volumes");
    vols.extend(volumes());
    let spec = util::ensure_obj(&mut out, &["spec"]);
    if !init.is_empty() {
        spec.insert("initContainers".into(), json!(init));
    }
    spec.insert("containers".into(), json!(app_containers));
    spec.insert("volumes".into(), json!(vols));

    let (canonical_name, canonical_revision) = canonical_service(pod);
    let labels = util::ensure_obj(&mut out, &["metadata", "labels"]);
    if !gateway {
        labels.insert("security.istio.io/tlsMode".into(), json!("istio"));
    }
    labels
        .entry("service.istio.io/canonical-name")
        .or_insert(json!(canonical_name));
    labels
        .entry("service.istio.io/canonical-revision")
        .or_insert(json!(canonical_revision));
    let annotations = util::ensure_obj(&mut out, &["metadata", "annotations"]);
    annotations.insert("istio.io/rev".into(), json!(served.revision));
    if !gateway && let Some(app) = &first_app {
        annotations
            .entry("kubectl.kubernetes.io/default-container")
            .or_insert(json!(app));
        annotations
            .entry("kubectl.kubernetes.io/default-logs-container")
            .or_insert(json!(app));
    }
    annotations
        .entry("prometheus.io/path")
        .or_insert(json!("/stats/prometheus"));
    annotations
        .entry("prometheus.io/port")
        .or_insert(json!("15020"));
    annotations
        .entry("prometheus.io/scrape")
        .or_insert(json!("true"));
    annotations.insert(
        STATUS_ANNOTATION.into(),
        json!(status_annotation(
            &injected_init,
            &names(&[json!({"name": PROXY_CONTAINER})]),
            &served.revision
        )),
    );
    out
}

/// What a Pod create's admission does.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Nothing to change.
    Unchanged,
    /// The injected Pod.
    Injected(Value),
    /// The create fails: a called webhook could not be reached and fails closed.
    Rejected { webhook: String, message: String },
}

/// The admission of a Pod create in `namespace`: calls the matching injectors in order
/// (each sees the previous one's result, so after an injection the next skips the Pod);
/// `served` answers which revisions are served.
pub fn admit(
    pod: &Value,
    namespace: &str,
    namespace_labels: Option<&Value>,
    configurations: &[Value],
    served: impl Fn(&str) -> Option<ServedRevision>,
) -> Admission {
    let calls = matching_injectors(
        configurations,
        namespace_labels,
        pod.pointer("/metadata/labels"),
    );
    let mut current = pod.clone();
    for call in calls {
        let Some(rev) = served(&call.revision) else {
            if call.fail_closed {
                let reason = match &call.service {
                    Some(svc) => format!("no endpoints available for service \"{svc}\""),
                    None => "dial tcp: connect: connection refused".to_string(),
                };
                return Admission::Rejected {
                    webhook: call.webhook.clone(),
                    message: format!(
                        "failed calling webhook \"{}\": failed to call webhook: Post \"{}?timeout=10s\": {reason}",
                        call.webhook, call.url
                    ),
                };
            }
            continue;
        };
        if injector_wants(&current, namespace) {
            current = inject(&current, &rev);
        }
    }
    if &current == pod {
        Admission::Unchanged
    } else {
        Admission::Injected(current)
    }
}

fn condition_true(obj: &Value, ty: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some(ty)
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
}

/// Whether an `ASM_OPTS` value turns managed CNI on (`CNI=on` among `;`-separated options).
pub fn asm_opts_cni_on(opts: &str) -> bool {
    opts.split(';').any(|o| o.trim() == "CNI=on")
}

impl KubeApiServer {
    /// Whether `revision` answers injection calls in this cluster, and with what proxy.
    fn served_revision(&self, st: &State, revision: &str) -> Option<ServedRevision> {
        if revisions::is_managed(revision) {
            let rt = st.type_for_kind("mesh.cloud.google.com/v1beta1", "ControlPlaneRevision")?;
            let cpr = st.get(&rt, ISTIO_NAMESPACE, revision)?;
            if !condition_true(cpr, "ProvisioningFinished") {
                return None;
            }
            let version = self.proxy_versions().get(revision)?;
            let cni_label =
                util::get_str(cpr, &["metadata", "labels", MANAGED_CNI_LABEL]) == Some("true");
            let cni_option = st
                .type_for_kind("v1", "ConfigMap")
                .and_then(|cm| {
                    st.get(&cm, ISTIO_NAMESPACE, "asm-options")
                        .and_then(|o| util::get_str(o, &["data", "ASM_OPTS"]))
                        .map(asm_opts_cni_on)
                })
                .unwrap_or(false);
            return Some(ServedRevision {
                revision: revision.to_string(),
                proxy_image: format!("{MANAGED_PROXY_REPOSITORY}:{version}"),
                proxy_version: version,
                cni: cni_label || cni_option,
                discovery_address: "meshconfig.googleapis.com:443".into(),
            });
        }
        let rt = st.type_for_kind("apps/v1", "Deployment")?;
        let istiod = st
            .list(&rt, Some(ISTIO_NAMESPACE))
            .into_iter()
            .map(|(_, d)| d)
            .find(|d| {
                util::get_str(d, &["metadata", "labels", "istio.io/rev"]) == Some(revision)
                    && condition_true(d, "Available")
            })?;
        let pod_containers = istiod
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)?;
        let image = pod_containers
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some("discovery"))
            .or_else(|| pod_containers.first())
            .and_then(|c| c.get("image"))
            .and_then(Value::as_str)?;
        let (proxy_image, proxy_version) = proxy_of_istiod_image(image)?;
        let injector_config = if revision == "default" {
            "istio-sidecar-injector".to_string()
        } else {
            format!("istio-sidecar-injector-{revision}")
        };
        // The chart's injector values (`values.istio_cni.enabled`) say whether CNI is on.
        let cni = st
            .type_for_kind("v1", "ConfigMap")
            .and_then(|cm| {
                let values = util::get_str(
                    st.get(&cm, ISTIO_NAMESPACE, &injector_config)?,
                    &["data", "values"],
                )?;
                let values: Value = serde_json::from_str(values).ok()?;
                values
                    .pointer("/istio_cni/enabled")
                    .and_then(Value::as_bool)
            })
            .unwrap_or(false);
        let istiod_name = util::get_str(istiod, &["metadata", "name"]).unwrap_or("istiod");
        Some(ServedRevision {
            revision: revision.to_string(),
            proxy_image,
            proxy_version,
            cni,
            discovery_address: format!("{istiod_name}.{ISTIO_NAMESPACE}.svc:15012"),
        })
    }

    /// Mutating admission of a Pod create (other kinds pass): runs the injection webhooks
    /// against the stored configurations; an injected Pod is defaulted again, as the
    /// apiserver does after a webhook's patch.
    pub(super) fn admit_pod(
        &self,
        st: &mut State,
        rt: &ResourceType,
        pod: &mut Value,
    ) -> Result<(), ApiError> {
        if !rt.group.is_empty() || rt.kind != "Pod" {
            return Ok(());
        }
        let configurations: Vec<Value> = st
            .type_for_kind(
                "admissionregistration.k8s.io/v1",
                "MutatingWebhookConfiguration",
            )
            .map(|t| {
                st.list(&t, None)
                    .into_iter()
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default();
        if configurations.is_empty() {
            return Ok(());
        }
        let namespace = util::get_str(pod, &["metadata", "namespace"])
            .unwrap_or("default")
            .to_string();
        let namespace_labels = st
            .type_for_kind("v1", "Namespace")
            .and_then(|t| st.get(&t, "", &namespace).cloned())
            .and_then(|n| n.pointer("/metadata/labels").cloned());
        let decision = admit(
            pod,
            &namespace,
            namespace_labels.as_ref(),
            &configurations,
            |rev| self.served_revision(st, rev),
        );
        match decision {
            Admission::Unchanged => Ok(()),
            Admission::Injected(new) => {
                *pod = new;
                kinds::default_object(rt, pod, &mut st.rng);
                Ok(())
            }
            Admission::Rejected { message, .. } => Err(ApiError::new(
                500,
                Some("InternalError"),
                format!("Internal error occurred: {message}"),
            )
            .with_details(json!({"causes": [{"message": message}]}))),
        }
    }

    /// [`Self::admit_pod`] for a controller's Pod create. A rejection leaves the Pod
    /// uninjected (a real ReplicaSet controller would record FailedCreate and retry).
    pub(super) fn admit_controller_pod(&self, st: &mut State, rt: &ResourceType, pod: &mut Value) {
        if let Err(e) = self.admit_pod(st, rt, pod) {
            tracing::warn!("pod admission: {}", e.message);
        }
    }
}

#[cfg(test)]
#[path = "injection_tests.rs"]
mod tests;
