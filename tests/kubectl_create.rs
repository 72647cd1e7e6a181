//! The real kubectl's typed commands (`create …`, `create token`, `auth can-i`), which send
//! their bodies as protobuf, against the simulated cluster of an `installed` sandbox.

// Test helpers may fail loudly: a broken fixture or sandbox is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use serde_json::Value;

use crate::support::{TestSandbox, assert_success, stderr, stdout};

/// kubectl against the sandbox's first cluster with a private cache (loopback ports are
/// reused by other sandboxes, and kubectl caches discovery per host:port).
struct Kubectl<'a> {
    sb: &'a TestSandbox,
    context: String,
    cache: String,
}

impl<'a> Kubectl<'a> {
    /// `None` when kubectl is not installed (outside CI; in CI that fails instead).
    fn new(sb: &'a TestSandbox) -> Option<Kubectl<'a>> {
        sb.kubectl(&["version", "--client"])?;
        let context = sb.sandbox().clusters[0].context_name(&sb.sandbox().scenario.project_id);
        let cache = sb.dir.path().join("kube-cache").display().to_string();
        Some(Kubectl { sb, context, cache })
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "--context",
            self.context.as_str(),
            "--cache-dir",
            self.cache.as_str(),
        ];
        all.extend_from_slice(args);
        self.sb.kubectl(&all).unwrap()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_success(&out, &format!("kubectl {}", args.join(" ")));
        stdout(&out)
    }

    #[track_caller]
    fn get_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }
}

#[test]
fn kubectl_create_stores_typed_objects_as_sent() {
    let sb = TestSandbox::start("installed");
    let Some(k) = Kubectl::new(&sb) else { return };
    // -v=8 logs the request headers: this test is about the protobuf path.
    let out = k.run(&["create", "namespace", "demo", "-v=8"]);
    assert_success(&out, "kubectl create namespace");
    assert!(stdout(&out).contains("namespace/demo created"));
    assert!(
        stderr(&out).contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "kubectl did not send protobuf:\n{}",
        stderr(&out)
    );
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
        "-n",
        "demo",
    ]);
    k.ok(&["create", "serviceaccount", "robot", "-n", "demo"]);
    k.ok(&[
        "create",
        "clusterrolebinding",
        "robot-view",
        "--clusterrole=view",
        "--serviceaccount=demo:robot",
    ]);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=password=hunter2",
        "-n",
        "demo",
    ]);
    k.ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
        "-n",
        "demo",
    ]);

    let ns = k.get_json(&["namespace", "demo"]);
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "demo"
    );
    assert_eq!(ns["status"]["phase"], "Active");

    let d = k.get_json(&["deployment", "web", "-n", "demo"]);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["selector"],
        serde_json::json!({"matchLabels": {"app": "web"}})
    );
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(containers[0]["name"], "nginx");
    assert_eq!(containers[0]["image"], "nginx");
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["app"], "web");
    // Empty strings from the protobuf encoder are not stored as values.
    assert!(d["metadata"].get("generateName").is_none(), "{d}");

    let sa = k.get_json(&["serviceaccount", "robot", "-n", "demo"]);
    assert_eq!(sa["metadata"]["namespace"], "demo");

    let crb = k.get_json(&["clusterrolebinding", "robot-view"]);
    assert_eq!(
        crb["roleRef"],
        serde_json::json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"})
    );
    assert_eq!(
        crb["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "robot", "namespace": "demo"}])
    );

    let secret = k.get_json(&["secret", "creds", "-n", "demo"]);
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==");

    let cm = k.get_json(&["configmap", "settings", "-n", "demo"]);
    assert_eq!(cm["data"], serde_json::json!({"mode": "fast"}));
}

#[test]
fn kubectl_create_token_authenticates_as_the_service_account() {
    let sb = TestSandbox::start("installed");
    let Some(k) = Kubectl::new(&sb) else { return };
    k.ok(&["create", "namespace", "demo"]);
    k.ok(&["create", "serviceaccount", "robot", "-n", "demo"]);
    let token = k.ok(&["create", "token", "robot", "-n", "demo", "--duration=1h"]);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "not a JWT: {token}");

    let whoami = k.ok(&["--token", token, "auth", "whoami", "-o", "json"]);
    let whoami: Value = serde_json::from_str(&whoami).unwrap();
    assert_eq!(
        whoami["status"]["userInfo"]["username"],
        "system:serviceaccount:demo:robot"
    );
    // The ServiceAccount has no bindings: reading secrets is forbidden, as that user.
    let out = k.run(&["--token", token, "get", "secrets", "-n", "demo"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("system:serviceaccount:demo:robot"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kubectl_auth_can_i_answers_yes_for_admin_and_no_for_unbound_service_account() {
    let sb = TestSandbox::start("installed");
    let Some(k) = Kubectl::new(&sb) else { return };
    k.ok(&["create", "namespace", "demo"]);
    k.ok(&["create", "serviceaccount", "robot", "-n", "demo"]);
    assert_eq!(
        k.ok(&["auth", "can-i", "create", "deployments", "-n", "demo"])
            .trim(),
        "yes"
    );
    let as_robot = "--as=system:serviceaccount:demo:robot";
    let out = k.run(&["auth", "can-i", "list", "secrets", "-n", "demo", as_robot]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "no");

    k.ok(&[
        "create",
        "clusterrole",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods",
    ]);
    k.ok(&[
        "create",
        "rolebinding",
        "robot-pods",
        "--clusterrole=pod-reader",
        "--serviceaccount=demo:robot",
        "-n",
        "demo",
    ]);
    assert_eq!(
        k.ok(&["auth", "can-i", "list", "pods", "-n", "demo", as_robot])
            .trim(),
        "yes"
    );
    let out = k.run(&["auth", "can-i", "list", "pods", "-n", "default", as_robot]);
    assert_eq!(stdout(&out).trim(), "no", "the RoleBinding is only in demo");
}

/// The rows of `kubectl auth can-i --list` (whitespace-separated columns: Resources,
/// Non-Resource URLs, Resource Names, Verbs).
fn rule_rows(out: &str) -> Vec<String> {
    out.lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn kubectl_auth_can_i_list_prints_the_callers_rules() {
    let sb = TestSandbox::start("installed");
    let Some(k) = Kubectl::new(&sb) else { return };
    k.ok(&["create", "namespace", "demo"]);
    k.ok(&["create", "serviceaccount", "robot", "-n", "demo"]);
    let admin = rule_rows(&k.ok(&["auth", "can-i", "--list", "-n", "demo"]));
    assert!(admin.contains(&"*.* [] [] [*]".to_string()), "{admin:?}");
    assert!(admin.contains(&"[*] [] [*]".to_string()), "{admin:?}");

    k.ok(&[
        "create",
        "clusterrole",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods",
    ]);
    k.ok(&[
        "create",
        "rolebinding",
        "robot-pods",
        "--clusterrole=pod-reader",
        "--serviceaccount=demo:robot",
        "-n",
        "demo",
    ]);
    let robot = rule_rows(&k.ok(&[
        "auth",
        "can-i",
        "--list",
        "-n",
        "demo",
        "--as=system:serviceaccount:demo:robot",
    ]));
    assert!(
        robot.contains(&"pods [] [] [get list]".to_string()),
        "{robot:?}"
    );
    assert!(
        robot.contains(&"selfsubjectaccessreviews.authorization.k8s.io [] [] [create]".to_string()),
        "{robot:?}"
    );
    assert!(!robot.iter().any(|r| r.starts_with("*.*")), "{robot:?}");
}

/// The sandbox-controllers issue's acceptance, run as a user would inside
/// `asm sandbox exec --scenario installed`: typed `kubectl create` (protobuf bodies), the
/// Deployment controller's rollout, restart and undo, a LoadBalancer address, a token that
/// authenticates, and `auth can-i`.
#[test]
fn inside_sandbox_exec_kubectl_creates_rolls_out_restarts_undoes_and_exposes() {
    crate::support::tool_available("kubectl");
    let script = r#"
set -euo pipefail
export KUBECACHEDIR="$(mktemp -d)"
kubectl create namespace demo >/dev/null
kubectl create deployment web --image=nginx --replicas=2 -n demo >/dev/null
kubectl rollout status deployment/web -n demo --timeout=60s >/dev/null
echo "running=$(kubectl get pods -n demo --field-selector=status.phase=Running -o name | wc -l)"
kubectl rollout restart deployment/web -n demo >/dev/null
kubectl rollout status deployment/web -n demo --timeout=60s >/dev/null
echo "replicasets=$(kubectl get rs -n demo -o name | wc -l)"
kubectl rollout undo deployment/web -n demo >/dev/null
kubectl rollout status deployment/web -n demo --timeout=60s >/dev/null
echo "replicasets-after-undo=$(kubectl get rs -n demo -o name | wc -l)"
echo "history=$(kubectl rollout history deployment/web -n demo | awk 'NR>2 && NF {print $1}' | paste -sd, -)"
kubectl expose deployment web -n demo --port=80 --type=LoadBalancer >/dev/null
kubectl wait service/web -n demo --for=jsonpath='{.status.loadBalancer.ingress}' --timeout=30s >/dev/null
echo "address=$(kubectl get service web -n demo -o jsonpath='{.status.loadBalancer.ingress[0].ip}')"
token=$(kubectl create token default -n demo)
echo "whoami=$(kubectl --token="$token" auth whoami -o jsonpath='{.status.userInfo.username}')"
echo "can-i=$(kubectl auth can-i create deployments -n demo)"
"#;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_asm"))
        .args([
            "sandbox",
            "exec",
            "--scenario",
            "installed",
            "--",
            "bash",
            "-c",
        ])
        .arg(script)
        .env("GCE_METADATA_HOST", crate::support::CLOSED_LOOPBACK)
        .output()
        .expect("asm runs");
    assert_success(&out, "the acceptance script");
    let text = stdout(&out);
    for line in [
        "running=2",
        "replicasets=2",
        // Undo reuses the first ReplicaSet, which becomes revision 3.
        "replicasets-after-undo=2",
        "history=2,3",
        "whoami=system:serviceaccount:demo:default",
        "can-i=yes",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}:\n{text}");
    }
    let address = text
        .lines()
        .find_map(|l| l.strip_prefix("address="))
        .unwrap_or_default();
    assert!(address.starts_with("198.51.100."), "{text}");
}
