//! Replays the golden exchanges recorded from a real kube-apiserver v1.32.6 (`tests/k8s-golden`,
//! the groups listed in `GROUPS`) against the simulated API server, in file order, driving its
//! `Handler` in-process. Compared: status codes, Content-Type, `Warning` headers, `Status`
//! reason/message/details, and the shapes and field names of bodies (placeholders such as
//! `<rv>`, `<uid>` and `<time>` match any value). Request sequences (group 09: what kubectl
//! sends) are replayed request by request, comparing status codes and, where kubectl sent an
//! Accept header, that the answer's Content-Type is one it accepts; hexdump bodies are protobuf.
//!
//! Fixtures only show requests; the state some of them imply is set up here (see `before`
//! and `after`). Conscious deviations are listed in `LOOSE` and `SKIPPED` with the reason.

// Test helpers may fail loudly: a broken fixture or sandbox is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use asm_sim::Timing;
use asm_sim::http::{Body, Handler, Request, Response};
use asm_sim::kube::KubeApiServer;
use asm_sim::scenario::Scenario;
use serde_json::{Value, json};

use crate::support::golden_dir;

const ADMIN: &str = "golden-admin-token";

/// The groups replayed, with the number of exchanges each holds (for a sequence file, each of
/// its requests is one exchange). A group whose count differs fails: fixtures cannot silently
/// drop out. Adding a group is one line here plus its setup in `before`/`after`.
const GROUPS: &[(&str, usize)] = &[
    ("01", 11),
    ("02", 8),
    ("03", 30),
    ("04", 26),
    ("05", 8),
    ("06", 16),
    ("07", 18),
    ("08", 15),
    ("09", 63),
    ("10", 9),
    ("11", 1),
];

/// Cases compared loosely, and why.
const LOOSE: &[(&str, &str)] = &[
    (
        "01-04",
        "the simulator serves only the API groups asm and kubectl use: groups are matched by name",
    ),
    (
        "01-05",
        "the same: aggregated discovery groups/resources are matched by name",
    ),
    ("01-06", "the same for the core group's resources"),
    ("01-07", "the same for /api/v1's resources"),
    ("01-08", "the same for apps/v1's resources"),
    (
        "01-10",
        "the OpenAPI index lists only the served groups: entries are matched by path",
    ),
    ("04-08", "aggregated discovery: groups matched by name"),
    (
        "08-11",
        "the message quotes Go's JSON decoder error for the malformed token; reason and code are compared",
    ),
];

/// Fields not compared in a case (the expected value's top-level key, and each list item's),
/// and why.
const UNCOMPARED: &[(&str, &str, &str)] = &[
    (
        "07-02",
        "status",
        "the recording had no scheduler or kubelet, so its Pods stayed Pending; the simulator's become Ready (readyReplicas, availableReplicas)",
    ),
    (
        "07-02",
        "metadata.managedFields",
        "the same: the status entry lists readyReplicas and availableReplicas",
    ),
    (
        "07-03",
        "status",
        "the same: the Deployment becomes Available",
    ),
    (
        "07-03",
        "metadata.managedFields",
        "the same: the status entry lists the Available counters",
    ),
    (
        "07-04",
        "status",
        "the same: the Pod is scheduled and Running (its status is written by the kubelet)",
    ),
    (
        "07-04",
        "spec.nodeName",
        "the same: the scheduler binds the Pod",
    ),
    (
        "07-04",
        "metadata.managedFields",
        "the same: kube-scheduler and kubelet entries join kube-controller-manager's",
    ),
    ("07-06", "status", "the same: the first rollout completed"),
    (
        "07-06",
        "metadata.managedFields",
        "the same: the status entry lists the Available counters",
    ),
    (
        "07-07",
        "status",
        "the same: the rollout completes, so the old ReplicaSet is scaled to 0",
    ),
    ("07-07", "spec.replicas", "the same"),
    (
        "07-07",
        "metadata",
        "the same: scaling changes generations, replica annotations and managedFields",
    ),
    ("07-08", "status", "the same: the restart completes"),
    ("07-08", "metadata.managedFields", "the same"),
    ("07-10", "status", "the same: the restart completed"),
    ("07-10", "metadata.managedFields", "the same"),
    ("07-11", "status", "the same: the undo completes"),
    (
        "07-11",
        "spec.replicas",
        "the same: the revision-2 ReplicaSet is scaled to 0",
    ),
    (
        "07-11",
        "metadata",
        "the same: scaling changes generations, replica annotations and managedFields",
    ),
    ("07-12", "status", "the same: the undo completes"),
    ("07-12", "metadata.managedFields", "the same"),
    (
        "07-13",
        "status.replicas",
        "the same: status.replicas is 1 once the rollout completed",
    ),
    (
        "07-14",
        "status",
        "the same: the scratch Deployment's rollouts completed",
    ),
    (
        "07-14",
        "metadata.managedFields",
        "the same: kube-controller-manager's status entry lists the Available counters",
    ),
    (
        "07-14",
        "metadata.generation",
        "the recording's scratch Deployment had one more spec change than the replay makes",
    ),
];

/// Cases not replayed (a sequence's request: `CASE#N`), and why.
const SKIPPED: &[(&str, &str)] = &[(
    "09-09#4",
    "the simulator does not serve /openapi/v2 (the protobuf OpenAPI v2 document); kubectl only \
     reads it to choose a patch type, and custom resources get a merge patch either way",
)];

struct Replay {
    rt: tokio::runtime::Runtime,
    server: Arc<KubeApiServer>,
    vars: HashMap<String, String>,
    /// `Impersonate-User` for the next requests (kubectl `--as`).
    impersonate: Option<String>,
    failures: Vec<String>,
    passed: Vec<String>,
    /// Exchanges replayed per group.
    replayed: HashMap<String, usize>,
    /// Exchanges deliberately not replayed (`SKIPPED`) per group.
    skipped: HashMap<String, usize>,
}

fn fixtures() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("golden dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (name, v)
        })
        .filter(|(n, _)| GROUPS.iter().any(|(g, _)| n.starts_with(g)))
        .collect()
}

/// The bytes of a hexdump as kubectl logs request bodies (`00000000  6b 38 …  |k8s.|`).
fn hexdump_bytes(dump: &str) -> Vec<u8> {
    dump.lines()
        .flat_map(|line| {
            let hex = line.split('|').next().unwrap_or_default();
            hex.split_whitespace()
                .skip(1)
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The media type of a Content-Type or Accept entry, without parameters.
fn media_type(s: &str) -> &str {
    s.split(';').next().unwrap_or_default().trim()
}

fn is_placeholder(s: &str) -> bool {
    s.contains('<') && s.contains('>')
}

/// Compares an expected (golden) value with the actual one; differences go to `out`.
fn compare(exp: &Value, act: &Value, path: &str, loose: bool, out: &mut Vec<String>) {
    match (exp, act) {
        (Value::String(e), _) if is_placeholder(e) => {
            if act.is_null() {
                out.push(format!("{path}: expected a value for {e}, got null"));
            } else if let Some(prefix) = e.split('<').next().filter(|p| !p.is_empty())
                && !act.as_str().is_some_and(|a| a.starts_with(prefix))
            {
                out.push(format!("{path}: expected {e}, got {act}"));
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            // A key with a placeholder (`k:{"uid":"<uid>"}`) matches any key with its prefix.
            let placeholder_key = |k: &str| {
                is_placeholder(k).then(|| k.split('<').next().unwrap_or_default().to_string())
            };
            for (k, ev) in e {
                if k.starts_with('_') {
                    continue;
                }
                if let Some(prefix) = placeholder_key(k) {
                    if !a.keys().any(|ak| ak.starts_with(&prefix)) {
                        out.push(format!("{path}.{k}: missing"));
                    }
                    continue;
                }
                match a.get(k) {
                    Some(av) => compare(ev, av, &format!("{path}.{k}"), loose, out),
                    // Loose: documents of groups the simulator does not serve may be absent.
                    None if loose && ev.get("serverRelativeURL").is_some() => {}
                    None => out.push(format!("{path}.{k}: missing (expected {})", short(ev))),
                }
            }
            if !loose {
                let prefixes: Vec<String> = e.keys().filter_map(|k| placeholder_key(k)).collect();
                for k in a
                    .keys()
                    .filter(|k| !e.contains_key(*k) && !prefixes.iter().any(|p| k.starts_with(p)))
                {
                    out.push(format!("{path}.{k}: unexpected field ({})", short(&a[k])));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if path.ends_with("managedFields") {
                let key =
                    |v: &Value| format!("{}|{}|{}", v["manager"], v["operation"], v["subresource"]);
                let mut e = e.clone();
                let mut a = a.clone();
                e.sort_by_key(key);
                a.sort_by_key(key);
                if e.len() != a.len() {
                    out.push(format!(
                        "{path}: {} entries expected, got {}: {}",
                        e.len(),
                        a.len(),
                        short(&Value::Array(a.clone()))
                    ));
                    return;
                }
                for (i, (ev, av)) in e.iter().zip(a.iter()).enumerate() {
                    compare(ev, av, &format!("{path}[{i}]"), loose, out);
                }
                return;
            }
            if loose {
                let name = |v: &Value| {
                    for k in ["name", "resource", "groupVersion"] {
                        if let Some(s) = v.get(k).and_then(Value::as_str) {
                            return Some(s.to_string());
                        }
                    }
                    v.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .map(String::from)
                };
                if e.iter().all(|x| name(x).is_some()) && !e.is_empty() {
                    let mut matched = 0;
                    for av in a {
                        if let Some(ev) = e.iter().find(|ev| name(ev) == name(av)) {
                            matched += 1;
                            compare(
                                ev,
                                av,
                                &format!("{path}[{}]", name(av).unwrap_or_default()),
                                loose,
                                out,
                            );
                        }
                    }
                    if matched == 0 {
                        out.push(format!("{path}: no element matched by name"));
                    }
                    return;
                }
            }
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: {} elements expected, got {}: {}",
                    e.len(),
                    a.len(),
                    short(act)
                ));
                return;
            }
            for (i, (ev, av)) in e.iter().zip(a.iter()).enumerate() {
                compare(ev, av, &format!("{path}[{i}]"), loose, out);
            }
        }
        _ => {
            if exp != act {
                out.push(format!(
                    "{path}: expected {}, got {}",
                    short(exp),
                    short(act)
                ));
            }
        }
    }
}

/// 11-01, the OpenAPI v3 model kubectl reads: every recorded path and operation exists with
/// the same `x-kubernetes-group-version-kind` and `x-kubernetes-action`, offers at least the
/// recorded parameters (path-level or operation-level), and every schema those operations
/// refer to exists. Descriptions, operationIds and response maps are prose the simulator does
/// not copy.
fn compare_openapi_model(exp: &Value, act: &Value, out: &mut Vec<String>) {
    let params = |path: &Value, op: &Value| -> Vec<String> {
        [&path["parameters"], &op["parameters"]]
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|p| p["name"].as_str().map(String::from))
            .collect()
    };
    let mut operations = 0;
    for (path, exp_item) in exp["paths"].as_object().unwrap() {
        let Some(act_item) = act["paths"].get(path) else {
            out.push(format!("paths.{path}: missing"));
            continue;
        };
        for verb in ["get", "put", "post", "delete", "patch"] {
            let Some(exp_op) = exp_item.get(verb) else {
                continue;
            };
            operations += 1;
            let Some(act_op) = act_item.get(verb) else {
                out.push(format!("paths.{path}.{verb}: missing"));
                continue;
            };
            for ext in ["x-kubernetes-group-version-kind", "x-kubernetes-action"] {
                if exp_op.get(ext) != act_op.get(ext) {
                    out.push(format!(
                        "paths.{path}.{verb}.{ext}: expected {:?}, got {:?}",
                        exp_op.get(ext),
                        act_op.get(ext)
                    ));
                }
            }
            let have = params(act_item, act_op);
            for p in params(exp_item, exp_op) {
                if !have.contains(&p) {
                    out.push(format!("paths.{path}.{verb}: parameter {p} missing"));
                }
            }
        }
    }
    if operations == 0 {
        out.push("the recorded model has no operations to compare".into());
    }
    // The simulator's built-in schemas are lean (nested types such as NamespaceSpec are left
    // open), so the schemas compared are those the recorded operations refer to.
    let mut refs = Vec::new();
    collect_refs(&exp["paths"], &mut refs);
    if refs.is_empty() {
        out.push("the recorded operations refer to no schema".into());
    }
    for r in refs {
        let name = r.trim_start_matches("#/components/schemas/");
        if act["components"]["schemas"].get(name).is_none() {
            out.push(format!("components.schemas.{name}: missing"));
        }
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str)
                && !out.iter().any(|x| x == r)
            {
                out.push(r.to_string());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// Replaces the field at dotted `path` of an expected body (of each item, for a list) with
/// a placeholder that any value matches.
fn uncompared(v: &mut Value, path: &str) {
    let targets: Vec<&mut Value> = match v.get_mut("items").and_then(Value::as_array_mut) {
        Some(items) => items.iter_mut().collect(),
        None => vec![v],
    };
    let parts: Vec<&str> = path.split('.').collect();
    let parent = parts[..parts.len() - 1]
        .iter()
        .map(|p| format!("/{p}"))
        .collect::<String>();
    for t in targets {
        if let Some(m) = t.pointer_mut(&parent).and_then(Value::as_object_mut) {
            m.insert(parts[parts.len() - 1].into(), json!("<uncompared>"));
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 {
        format!("{}…", &s[..300])
    } else {
        s
    }
}

/// Replaces `"<time>"` strings in request bodies with a real timestamp.
fn fill_times(v: &mut Value) {
    match v {
        Value::String(s) if s == "<time>" => *s = "2025-06-01T00:00:00Z".into(),
        Value::Object(m) => m.values_mut().for_each(fill_times),
        Value::Array(a) => a.iter_mut().for_each(fill_times),
        _ => {}
    }
}

impl Replay {
    fn new() -> Replay {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut cluster = Scenario::named("fresh").unwrap().clusters[0].clone();
        cluster.kubernetes_version = "1.32.6".into();
        let timing = Timing {
            token_fill: Duration::from_millis(30),
            namespace_finalize: Duration::from_millis(200),
            cpr_ready: Duration::from_secs(3600),
            ..Timing::default()
        };
        let server = rt.block_on(async {
            KubeApiServer::new(
                &cluster,
                "-----BEGIN CERTIFICATE-----\n".into(),
                ADMIN.into(),
                timing,
            )
        });
        Replay {
            rt,
            server,
            vars: HashMap::new(),
            impersonate: None,
            failures: Vec::new(),
            passed: Vec::new(),
            replayed: HashMap::new(),
            skipped: HashMap::new(),
        }
    }

    /// Sends a request as the admin (curl's User-Agent, as in the recordings).
    fn send(
        &self,
        method: &str,
        path: &str,
        ct: Option<&str>,
        body: impl Into<Vec<u8>>,
        token: Option<&str>,
        accept: Option<&str>,
    ) -> Response {
        let mut req =
            Request::new(method, path, body.into()).with_header("User-Agent", "curl/8.5.0");
        if let Some(user) = &self.impersonate {
            req = req.with_header("Impersonate-User", user);
        }
        if let Some(ct) = ct {
            req = req.with_header("Content-Type", ct);
        }
        if let Some(a) = accept {
            req = req.with_header("Accept", a);
        }
        if let Some(t) = token {
            req = req.with_header("Authorization", &format!("Bearer {t}"));
        }
        let server = self.server.clone();
        self.rt.block_on(async move { server.handle(req).await })
    }

    fn admin(&self, method: &str, path: &str, ct: Option<&str>, body: Value) -> Value {
        let b = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        self.send(method, path, ct, b, Some(ADMIN), None)
            .body_json()
    }

    fn list_rv(&self, path: &str) -> String {
        self.admin("GET", path, None, Value::Null)["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn sleep(&self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }

    /// State the recording had before a case but did not record.
    fn before(&mut self, case: &str) {
        let json_ct = Some("application/json");
        match case {
            "02-05" => {
                let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "blocker", "finalizers": ["example.com/block"]}});
                self.admin(
                    "POST",
                    "/api/v1/namespaces/golden-ns/configmaps",
                    json_ct,
                    cm,
                );
            }
            "02-06" => self.sleep(600),
            "02-08" => {
                self.admin(
                    "PATCH",
                    "/api/v1/namespaces/golden-ns/configmaps/blocker",
                    Some("application/merge-patch+json"),
                    json!({"metadata": {"finalizers": null}}),
                );
                self.sleep(800);
            }
            "03-21" => {
                let stale = self
                    .vars
                    .get("asm-options-created-rv")
                    .cloned()
                    .unwrap_or_default();
                self.vars.insert("body-rv".into(), stale);
            }
            "03-22" => {
                let cur = self.admin(
                    "GET",
                    "/api/v1/namespaces/istio-system/configmaps/asm-options",
                    None,
                    Value::Null,
                );
                self.vars.insert(
                    "body-rv".into(),
                    cur["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                );
            }
            "03-25" => {
                let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "asm-owned", "namespace": "istio-system"}, "data": {"keep": "1", "drop": "2"}});
                self.admin(
                    "PATCH",
                    "/api/v1/namespaces/istio-system/configmaps/asm-owned?fieldManager=asm",
                    Some("application/apply-patch+yaml"),
                    cfg,
                );
            }
            "04-03" => {
                let rv = self.list_rv("/apis/apiextensions.k8s.io/v1/customresourcedefinitions");
                self.vars.insert("rv".into(), rv);
            }
            "04-04" => self.sleep(100),
            "04-15" => {
                let rv = self.list_rv("/apis/mesh.cloud.google.com/v1beta1/namespaces/istio-system/controlplanerevisions");
                self.vars.insert("rv".into(), rv);
            }
            "04-25" => {
                let cr = json!({"apiVersion": "mesh.cloud.google.com/v1beta1", "kind": "ControlPlaneRevision", "metadata": {"name": "asm-managed-stable"}, "spec": {"type": "managed_service", "channel": "stable"}});
                self.admin("POST", "/apis/mesh.cloud.google.com/v1beta1/namespaces/istio-system/controlplanerevisions", json_ct, cr);
                let rv = self.list_rv("/apis/mesh.cloud.google.com/v1beta1/namespaces/istio-system/controlplanerevisions");
                self.vars.insert("rv".into(), rv);
                self.admin("DELETE", "/apis/mesh.cloud.google.com/v1beta1/namespaces/istio-system/controlplanerevisions/asm-managed-stable", None, Value::Null);
            }
            "04-26" => {
                self.vars.insert("rv".into(), "2".into());
            }
            "05-04" => self.sleep(200),
            "07-02" | "07-03" | "07-04" | "07-07" | "07-08" | "07-11" | "07-12" => self.sleep(400),
            "07-05" => {
                let probe = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "probe", "namespace": "default", "labels": {"app": "probe"}},
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "probe"}},
                        "template": {"metadata": {"labels": {"app": "probe"}, "annotations": {"inject.istio.io/templates": "gateway"}},
                            "spec": {"containers": [{"name": "istio-proxy", "image": "auto"}]}}}});
                self.admin(
                    "POST",
                    "/apis/apps/v1/namespaces/default/deployments",
                    json_ct,
                    probe,
                );
                self.sleep(400);
            }
            "07-09" => self.sleep(400),
            "08-01" => {
                for (n, tier) in [("a", "control"), ("b", "data"), ("c", "control")] {
                    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("asm-list-{n}"), "labels": {"app": "asm-list", "tier": tier}}, "data": {"k": format!("asm-list-{n}")}});
                    self.admin(
                        "POST",
                        "/api/v1/namespaces/istio-system/configmaps",
                        json_ct,
                        cm,
                    );
                }
            }
            "08-11" => {
                self.vars.insert("continue".into(), "bm90LWpzb24".into());
            }
            "09-07" => {
                let cur = self.admin(
                    "GET",
                    "/api/v1/namespaces/istio-system/configmaps/kubectl-applied",
                    None,
                    Value::Null,
                );
                let rv = cur["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default();
                self.vars.insert("body-rv".into(), rv.into());
            }
            "09-11" => {
                let cpr = json!({"apiVersion": "mesh.cloud.google.com/v1beta1", "kind": "ControlPlaneRevision", "metadata": {"name": "asm-managed"}, "spec": {"type": "managed_service", "channel": "regular"}});
                self.admin("POST", "/apis/mesh.cloud.google.com/v1beta1/namespaces/istio-system/controlplanerevisions", json_ct, cpr);
            }
            "09-18" => {
                self.impersonate = Some("system:serviceaccount:istio-system:asm-installer".into());
            }
            "09-20" => {
                let labels = json!({"app": "istio-ingressgateway"});
                let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "istio-ingressgateway"}, "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "istio-proxy", "image": "auto"}]}}}});
                self.admin(
                    "POST",
                    "/apis/apps/v1/namespaces/istio-system/deployments",
                    json_ct,
                    d,
                );
            }
            "10-09" => {
                // The recording's Deployment came from group 07 (not replayed here).
                let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system", "labels": {"app": "istio-ingressgateway"}},
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "istio-ingressgateway"}},
                        "template": {"metadata": {"labels": {"app": "istio-ingressgateway", "istio.io/rev": "asm-managed"}}, "spec": {"containers": [{"name": "istio-proxy", "image": "auto"}]}}}});
                self.admin(
                    "POST",
                    "/apis/apps/v1/namespaces/istio-system/deployments",
                    json_ct,
                    d,
                );
            }
            _ => {}
        }
    }

    /// What later cases need from a response.
    fn after(&mut self, case: &str, body: &Value) {
        match case {
            "03-02" => {
                self.vars.insert(
                    "asm-options-created-rv".into(),
                    body["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                );
            }
            "03-16" => {
                // The recording's later listings show warn-x was removed again.
                self.admin(
                    "DELETE",
                    "/api/v1/namespaces/istio-system/configmaps/warn-x",
                    None,
                    Value::Null,
                );
            }
            "05-04" => {
                use base64::Engine as _;
                let t = body["data"]["token"].as_str().unwrap_or_default();
                let t = base64::engine::general_purpose::STANDARD
                    .decode(t)
                    .unwrap_or_default();
                self.vars
                    .insert("secret-token".into(), String::from_utf8_lossy(&t).into());
            }
            "05-05" => {
                self.vars.insert(
                    "sa-token".into(),
                    body["status"]["token"].as_str().unwrap_or_default().into(),
                );
            }
            "05-06" => {
                self.vars.insert(
                    "istio-ca-token".into(),
                    body["status"]["token"].as_str().unwrap_or_default().into(),
                );
            }
            c if c.starts_with("08-0") || c == "08-10" => {
                if let Some(cont) = body["metadata"]["continue"].as_str() {
                    self.vars.insert("continue".into(), cont.into());
                }
            }
            _ => {}
        }
    }

    fn token_for(&self, auth: Option<&str>) -> Option<String> {
        match auth {
            None => Some(ADMIN.into()),
            Some("(none)") => None,
            Some(a) if a.contains("audience istio-ca") => self.vars.get("istio-ca-token").cloned(),
            Some(a) if a.contains("<serviceaccount token>") => self.vars.get("sa-token").cloned(),
            Some(a) if a.contains("<secret token>") => self.vars.get("secret-token").cloned(),
            Some(_) => Some("not-a-token-anyone-issued".into()),
        }
    }

    fn path_for(&self, path: &str) -> String {
        let mut p = path
            .replace(
                "<rv>",
                self.vars.get("rv").map(String::as_str).unwrap_or("0"),
            )
            .replace("timeoutSeconds=<random>", "timeoutSeconds=1");
        if p.contains("<continue>") {
            p = p.replace(
                "<continue>",
                self.vars.get("continue").map(String::as_str).unwrap_or(""),
            );
        }
        if p.contains("<hash>") {
            let idx = self.send("GET", "/openapi/v3", None, "", Some(ADMIN), None);
            let idx: Value = serde_json::from_slice(&idx.body_bytes()).unwrap_or_default();
            let doc = p
                .split('?')
                .next()
                .unwrap_or_default()
                .trim_start_matches("/openapi/v3/")
                .to_string();
            let url = idx["paths"][&doc]["serverRelativeURL"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            p = url;
        }
        // Watches in the recordings ran for seconds; a short timeout keeps the replay fast
        // (events already queued are still delivered).
        for n in 2..=9 {
            p = p.replace(&format!("timeoutSeconds={n}"), "timeoutSeconds=1");
        }
        p
    }

    fn run(&mut self, file: &str, fx: &Value) {
        let case = &file[..5];
        self.before(case);
        let req = &fx["request"];
        let exp = &fx["response"];
        let headers = &req["headers"];
        let ct = headers["Content-Type"].as_str();
        let accept = headers["Accept"].as_str();
        let token = self.token_for(headers["Authorization"].as_str());
        let body = match &req["body"] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            v => {
                let mut v = v.clone();
                fill_times(&mut v);
                if v.pointer("/metadata/resourceVersion").is_some() {
                    v["metadata"]["resourceVersion"] =
                        json!(self.vars.get("body-rv").cloned().unwrap_or_default());
                }
                v.to_string()
            }
        };
        let path = self.path_for(req["path"].as_str().unwrap());
        let resp = self.send(
            req["method"].as_str().unwrap(),
            &path,
            ct,
            body,
            token.as_deref(),
            accept,
        );
        let loose = LOOSE.iter().any(|(c, _)| *c == case);
        let mut diffs = Vec::new();
        let status = exp["status"].as_u64().unwrap() as u16;
        if resp.status != status {
            diffs.push(format!("status: expected {status}, got {}", resp.status));
        }
        let header = |r: &Response, name: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let exp_ct = exp["headers"]["Content-Type"].as_str();
        if exp_ct.is_some() && header(&resp, "Content-Type").as_deref() != exp_ct {
            diffs.push(format!(
                "Content-Type: expected {exp_ct:?}, got {:?}",
                header(&resp, "Content-Type")
            ));
        }
        if let Some(w) = exp["headers"]["Warning"].as_str()
            && header(&resp, "Warning").as_deref() != Some(w)
        {
            diffs.push(format!(
                "Warning: expected {w:?}, got {:?}",
                header(&resp, "Warning")
            ));
        }
        let actual_body = self.read_body(resp);
        match &exp["body"] {
            Value::String(s) => {
                if actual_body.as_str() != Some(s.as_str()) {
                    diffs.push(format!("body: expected {s:?}, got {}", short(&actual_body)));
                }
            }
            e if case == "01-11" => {
                let paths = actual_body["paths"]
                    .as_object()
                    .map(|p| p.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default();
                for p in e["paths"].as_array().unwrap() {
                    if !paths.iter().any(|a| a == p.as_str().unwrap())
                        && !p.as_str().unwrap().contains("/watch/")
                        && !p.as_str().unwrap().ends_with("/v1/")
                    {
                        diffs.push(format!("openapi doc lacks path {p}"));
                    }
                }
                if actual_body["openapi"] != "3.0.0"
                    || !actual_body["components"]["schemas"].is_object()
                {
                    diffs.push("openapi doc shape".into());
                }
            }
            e if case == "11-01" => compare_openapi_model(e, &actual_body, &mut diffs),
            e if case == "08-11" => {
                compare(
                    &e["reason"],
                    &actual_body["reason"],
                    "$.reason",
                    true,
                    &mut diffs,
                );
                compare(&e["code"], &actual_body["code"], "$.code", true, &mut diffs);
            }
            e => {
                let mut e = e.clone();
                for (_, field, _) in UNCOMPARED.iter().filter(|(c, _, _)| *c == case) {
                    uncompared(&mut e, field);
                }
                compare(&e, &actual_body, "$", loose, &mut diffs)
            }
        }
        self.after(case, &actual_body);
        self.record(file, diffs);
    }

    fn record(&mut self, name: &str, diffs: Vec<String>) {
        *self.replayed.entry(name[..2].to_string()).or_default() += 1;
        if diffs.is_empty() {
            self.passed.push(name.to_string());
        } else {
            self.failures
                .push(format!("{name}:\n  {}", diffs.join("\n  ")));
        }
    }

    /// A kubectl request sequence: each request in order, as the admin (or impersonating).
    fn run_sequence(&mut self, file: &str, fx: &Value) {
        let case = &file[..5];
        self.before(case);
        for (i, r) in fx["requests"].as_array().unwrap().iter().enumerate() {
            let name = format!("{file} request {}", i + 1);
            if SKIPPED
                .iter()
                .any(|(c, _)| *c == format!("{case}#{}", i + 1))
            {
                *self.skipped.entry(case[..2].to_string()).or_default() += 1;
                continue;
            }
            let method = r["method"].as_str().unwrap();
            // Group 07's sequences record their one patch at the top level.
            let (ct, body) = if method == "PATCH" && r["body"].is_null() {
                (fx["patchContentType"].as_str(), &fx["patchBody"])
            } else {
                (r["contentType"].as_str(), &r["body"])
            };
            let accept = r["accept"].as_str();
            let body: Vec<u8> = match body {
                Value::Null => Vec::new(),
                Value::String(dump) if ct.is_some_and(|c| c.contains("protobuf")) => {
                    hexdump_bytes(dump)
                }
                Value::String(s) => s.clone().into_bytes(),
                v => {
                    let mut v = v.clone();
                    fill_times(&mut v);
                    if v.pointer("/metadata/resourceVersion").is_some() {
                        v["metadata"]["resourceVersion"] =
                            json!(self.vars.get("body-rv").cloned().unwrap_or_default());
                    }
                    v.to_string().into_bytes()
                }
            };
            let path = self.path_for(r["path"].as_str().unwrap());
            let resp = self.send(method, &path, ct, body, Some(ADMIN), accept);
            let mut diffs = Vec::new();
            let status = r["status"].as_u64().unwrap() as u16;
            if resp.status != status {
                diffs.push(format!("status: expected {status}, got {}", resp.status));
            }
            let got_ct = resp
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Content-Type"))
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            if let Some(accept) = accept
                && !accept
                    .split(',')
                    .any(|a| media_type(a) == media_type(&got_ct) || a.trim() == "*/*")
            {
                diffs.push(format!(
                    "Content-Type {got_ct:?} is not one of the accepted {accept:?}"
                ));
            }
            let body = self.read_body(resp);
            if diffs.is_empty() {
                diffs.extend(
                    body.get("message")
                        .filter(|_| body["kind"] == "Status" && status < 300)
                        .map(|m| format!("unexpected Status: {m}")),
                );
            }
            // A watch that follows a list starts at the list's resourceVersion.
            if body["kind"].as_str().is_some_and(|k| k.ends_with("List"))
                && let Some(rv) = body["metadata"]["resourceVersion"].as_str()
            {
                self.vars.insert("rv".into(), rv.into());
            }
            self.record(&name, diffs);
        }
        self.impersonate = None;
    }

    /// The body as JSON (a watch: the list of its events; text: a JSON string).
    fn read_body(&self, resp: Response) -> Value {
        match resp.body {
            Body::Full(b) => serde_json::from_slice(&b)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&b).into())),
            Body::Stream(mut rx) => self.rt.block_on(async move {
                let mut buf = Vec::new();
                while let Ok(Some(chunk)) =
                    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await
                {
                    buf.extend_from_slice(&chunk);
                }
                let events: Vec<Value> = String::from_utf8_lossy(&buf)
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect();
                Value::Array(events)
            }),
        }
    }
}

#[test]
fn golden_exchanges_replay() {
    let mut replay = Replay::new();
    for (file, fx) in fixtures() {
        if SKIPPED.iter().any(|(c, _)| file.starts_with(c)) {
            *replay.skipped.entry(file[..2].to_string()).or_default() += 1;
            continue;
        }
        if fx["kind"] == "sequence" {
            replay.run_sequence(&file, &fx);
        } else {
            replay.run(&file, &fx);
        }
    }
    let counts: Vec<(String, usize)> = GROUPS
        .iter()
        .map(|(g, _)| {
            let count = |m: &HashMap<String, usize>| m.get(*g).copied().unwrap_or(0);
            (
                g.to_string(),
                count(&replay.replayed) + count(&replay.skipped),
            )
        })
        .collect();
    let expected: Vec<(String, usize)> = GROUPS.iter().map(|(g, n)| (g.to_string(), *n)).collect();
    assert_eq!(
        counts, expected,
        "exchanges replayed (or listed in SKIPPED) per group"
    );
    let total = replay.passed.len() + replay.failures.len();
    assert!(
        replay.failures.is_empty(),
        "{} of {total} golden exchanges differ:\n{}",
        replay.failures.len(),
        replay.failures.join("\n")
    );
}
