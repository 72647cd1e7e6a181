//! `asm status` end to end: the real binary against the sandbox, with workloads applied by
//! the real kubectl.

#![allow(clippy::unwrap_used)]

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::install::{asm, fast, strs, target};
use crate::support::{TestSandbox, assert_success, stderr, stdout};

fn status(sb: &TestSandbox, extra: &[&str]) -> Output {
    let mut args = strs(&["status"]);
    args.extend(target(sb, "cluster-1"));
    args.extend(strs(extra));
    asm(sb, &args)
}

fn status_json(sb: &TestSandbox) -> Value {
    let o = status(sb, &["-o", "json"]);
    assert_success(&o, "asm status -o json");
    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}\n{}", stdout(&o)))
}

/// `kubectl apply -f -` of `yaml`.
fn apply(sb: &TestSandbox, yaml: &str) {
    let file = sb.dir.path().join(format!(
        "m-{}.yaml",
        Instant::now().elapsed().as_nanos() ^ (yaml.len() as u128)
    ));
    std::fs::write(&file, yaml).unwrap();
    kubectl(sb, &["apply", "-f", file.to_str().unwrap()]);
}

fn kubectl(sb: &TestSandbox, args: &[&str]) -> String {
    let o = sb.kubectl(args).unwrap();
    assert_success(&o, &format!("kubectl {}", args.join(" ")));
    stdout(&o)
}

/// Polls `done` every 100 ms for up to 30 s.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Names of the pods in `ns` with their revision (`sidecar.istio.io/status`), as kubectl
/// sees them; terminating pods excluded.
fn pod_revisions(sb: &TestSandbox, ns: &str) -> Vec<Option<String>> {
    let v: Value =
        serde_json::from_str(&kubectl(sb, &["get", "pods", "-n", ns, "-o", "json"])).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            p["metadata"]["annotations"]["sidecar.istio.io/status"]
                .as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .and_then(|s| s["revision"].as_str().map(str::to_string))
        })
        .collect()
}

const WORKLOADS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    istio.io/rev: asm-managed
  annotations:
    mesh.cloud.google.com/proxy: '{"managed":"true"}'
---
apiVersion: v1
kind: Namespace
metadata:
  name: batch
---
apiVersion: v1
kind: Namespace
metadata:
  name: legacy
  labels:
    istio.io/rev: asm-191-1
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels:
    app: web
spec:
  containers:
  - name: web
    image: nginx
---
apiVersion: v1
kind: Pod
metadata:
  name: tool
  namespace: shop
  labels:
    app: tool
    sidecar.istio.io/inject: "false"
spec:
  containers:
  - name: tool
    image: busybox
---
apiVersion: v1
kind: Pod
metadata:
  name: job
  namespace: batch
spec:
  containers:
  - name: job
    image: busybox
---
apiVersion: v1
kind: Pod
metadata:
  name: old
  namespace: legacy
spec:
  containers:
  - name: old
    image: nginx
"#;

/// An in-cluster ASM 1.9 control plane `asm-191-1` with Mesh CA (istiod Deployment and its
/// injector, as the istio-discovery chart names them).
const IN_CLUSTER: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: istiod-asm-191-1
  namespace: istio-system
  labels:
    app: istiod
    istio.io/rev: asm-191-1
spec:
  selector:
    matchLabels:
      app: istiod
      istio.io/rev: asm-191-1
  template:
    metadata:
      labels:
        app: istiod
        istio.io/rev: asm-191-1
    spec:
      containers:
      - name: discovery
        image: gcr.io/gke-release/asm/pilot:1.9.1-asm.1
        env:
        - name: CA_ADDR
          value: meshca.googleapis.com:443
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: istio-sidecar-injector-asm-191-1
  labels:
    app: sidecar-injector
    istio.io/rev: asm-191-1
webhooks:
- name: rev.namespace.sidecar-injector.istio.io
  clientConfig:
    service:
      name: istiod-asm-191-1
      namespace: istio-system
      path: /inject
      port: 443
  rules:
  - operations: ["CREATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: ["v1"]
  namespaceSelector:
    matchExpressions:
    - key: istio.io/rev
      operator: In
      values: ["asm-191-1"]
    - key: istio-injection
      operator: DoesNotExist
  objectSelector:
    matchExpressions:
    - key: sidecar.istio.io/inject
      operator: NotIn
      values: ["false"]
"#;

const LEGACY_APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: legacy
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx
"#;

#[test]
fn text_and_json_report_of_installed_with_workloads() {
    let sb = TestSandbox::with(fast("installed"));
    apply(&sb, WORKLOADS);
    let text = status(&sb, &[]);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    insta::assert_snapshot!("installed_workloads_text", stdout(&text));
    let json = status_json(&sb);
    assert_eq!(json["schema"], "asm.status/v1");
    insta::assert_json_snapshot!("installed_workloads_json", json);
}

#[test]
fn require_ready_exits_0_on_installed_and_3_on_fresh_naming_what_is_missing() {
    let sb = TestSandbox::with(fast("installed"));
    let o = status(&sb, &["--require", "ready"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("Ready: yes"), "{}", stdout(&o));

    let sb = TestSandbox::with(fast("fresh"));
    let o = status(&sb, &["--require", "ready"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "not ready: asm-fresh/us-central1-c/cluster-1: no managed control plane (no ControlPlaneRevision in istio-system)"
        ),
        "{err}"
    );
    let json = status(&sb, &["--require", "ready", "-o", "json"]);
    assert_eq!(json.status.code(), Some(3));
    let v: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(v["ready"]["met"], false);
    assert_eq!(v["clusters"][0]["fleet"]["membership"], Value::Null);
}

#[test]
fn require_ready_fails_while_an_annotated_namespace_has_no_ready_data_plane() {
    let sb = TestSandbox::with(fast("installed"));
    apply(&sb, WORKLOADS);
    assert_eq!(status(&sb, &["--require", "ready"]).status.code(), Some(0));
    // The namespace asks for the managed data plane of a revision that has none.
    kubectl(
        &sb,
        &[
            "label",
            "namespace",
            "shop",
            "istio.io/rev=asm-managed-rapid",
            "--overwrite",
        ],
    );
    let o = status(&sb, &["--require", "ready"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "namespace shop: managed data plane asked for, but no injector serves the namespace"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn require_migrated_exits_3_until_the_namespace_is_relabelled_and_restarted() {
    let sb = TestSandbox::with(fast("installed"));
    apply(&sb, IN_CLUSTER);
    kubectl(
        &sb,
        &[
            "rollout",
            "status",
            "-n",
            "istio-system",
            "deployment/istiod-asm-191-1",
            "--timeout=30s",
        ],
    );
    apply(
        &sb,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: legacy\n  labels:\n    istio.io/rev: asm-191-1\n",
    );
    apply(&sb, LEGACY_APP);
    wait_until("2 legacy pods injected by asm-191-1", || {
        pod_revisions(&sb, "legacy") == [Some("asm-191-1".into()), Some("asm-191-1".into())]
    });
    let v = status_json(&sb);
    let c = &v["clusters"][0];
    assert_eq!(c["in_cluster_control_planes"][0]["ca"], "mesh_ca");
    assert_eq!(c["in_cluster_control_planes"][0]["version"], "1.9.1-asm.1");
    assert_eq!(c["pods_by_revision"][0]["revision"], "asm-191-1");
    assert_eq!(c["pods_by_revision"][0]["proxy_version"], "1.9.1-asm.1");

    let o = status(&sb, &["--require", "migrated"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("namespace legacy: labels point at asm-191-1, not a managed revision")
            && err.contains("namespace legacy: 2 pods on asm-191-1"),
        "{err}"
    );

    // Relabelled only: the pods still need a restart.
    kubectl(
        &sb,
        &[
            "label",
            "namespace",
            "legacy",
            "istio.io/rev=asm-managed",
            "--overwrite",
        ],
    );
    let v = status_json(&sb);
    assert_eq!(
        v["clusters"][0]["restart_needed"].as_array().unwrap().len(),
        2,
        "{v:#}"
    );
    assert_eq!(
        status(&sb, &["--require", "migrated"]).status.code(),
        Some(3)
    );

    kubectl(
        &sb,
        &["rollout", "restart", "-n", "legacy", "deployment/web"],
    );
    wait_until("legacy pods on asm-managed only", || {
        pod_revisions(&sb, "legacy") == [Some("asm-managed".into()), Some("asm-managed".into())]
    });
    let o = status(&sb, &["--require", "migrated"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    // The old istiod still exists: clean-up, not a migration item.
    assert!(out.contains("Migrated: yes"), "{out}");
    assert!(
        out.contains("in-cluster control plane istiod-asm-191-1 (asm-191-1) still exists"),
        "{out}"
    );
}

#[test]
fn status_sends_no_mutating_request_and_prints_no_token() {
    let sb = TestSandbox::with(fast("installed"));
    apply(&sb, WORKLOADS);
    // A remote secret for another cluster, applied with kubectl (so its
    // last-applied-configuration annotation holds the data too).
    let secret_value = "kubeconfig-with-token-c2VjcmV0LXRva2Vu";
    apply(
        &sb,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: istio-remote-secret-cluster-2\n  namespace: istio-system\n  labels:\n    istio/multiCluster: \"true\"\n  annotations:\n    networking.istio.io/cluster: cluster-2\nstringData:\n  cluster-2: {secret_value}\n"
        ),
    );
    let before = sb.mutating_requests().len();
    let reads_before = sb.requests().len();
    let token = sb.sandbox().token().to_string();
    for extra in [&[][..], &["-o", "json"], &["-v", "--require", "migrated"]] {
        let o = status(&sb, extra);
        for text in [stdout(&o), stderr(&o)] {
            assert!(!text.contains(&token), "token in output of {extra:?}");
            assert!(
                !text.contains(secret_value),
                "secret data in output of {extra:?}"
            );
        }
    }
    let v = status_json(&sb);
    assert_eq!(
        v["clusters"][0]["remote_secrets"],
        serde_json::json!([{"name": "istio-remote-secret-cluster-2", "cluster": "cluster-2"}])
    );
    assert!(
        sb.requests().len() > reads_before,
        "status sent no request at all"
    );
    assert_eq!(
        sb.mutating_requests().len(),
        before,
        "{:#?}",
        sb.mutating_requests()
    );
}

#[test]
fn several_clusters_are_reported_in_order() {
    let sb = TestSandbox::with(fast("fleet-2"));
    let mut args = strs(&["status", "-o", "json"]);
    args.extend(crate::install::all_clusters(&sb));
    let o = asm(&sb, &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let names: Vec<&str> = v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cluster"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = sb
        .sandbox()
        .clusters
        .iter()
        .map(|c| {
            format!(
                "{}/{}/{}",
                sb.sandbox().scenario.project_id,
                c.location,
                c.name
            )
        })
        .collect();
    assert_eq!(names, expected);
    assert_eq!(names.len(), 2);
}

#[test]
fn bad_input_exits_2_with_no_request() {
    let sb = TestSandbox::with(fast("installed"));
    for args in [
        strs(&[
            "status",
            "-p",
            "x",
            "-l",
            "us-central1-c",
            "-n",
            "cluster-1",
        ]),
        strs(&["status", "-p", "asm-installed", "-l", "us-central1-c"]),
        strs(&[
            "status",
            "--cluster",
            "asm-installed/us-central1-c/cluster-1",
            "--require",
            "done",
        ]),
        strs(&[
            "status",
            "--cluster",
            "asm-installed/us-central1-c/cluster-1",
            "-o",
            "yaml",
        ]),
    ] {
        let o = asm(&sb, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    assert!(sb.requests().is_empty(), "{:#?}", sb.requests());
}
