//! The real kubectl against Services (allocated addresses and nodePorts, `kubectl expose`, a
//! load balancer's external IP) and the bootstrap RBAC policy (aggregated `view`, a ServiceAccount bound to
//! it using its token Secret's token). Manifests go through `kubectl apply -f`.

// Test helpers may fail loudly: a broken fixture or sandbox is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Output;
use std::time::{Duration, Instant};

use asm_sim::SimConfig;
use base64::Engine as _;

use crate::support::{TestSandbox, assert_success, stderr, stdout};

const SERVICES: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: svc-test
---
apiVersion: v1
kind: Service
metadata:
  name: gateway
  namespace: svc-test
spec:
  type: LoadBalancer
  selector: {app: gateway}
  ports:
  - {name: http2, port: 80, targetPort: 8080}
  - {name: https, port: 443}
---
apiVersion: v1
kind: Service
metadata:
  name: nodes
  namespace: svc-test
spec:
  type: NodePort
  selector: {app: nodes}
  ports:
  - {name: fixed, port: 80, nodePort: 30080}
  - {name: auto, port: 81}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: svc-test
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - {name: web, image: nginx}
"#;

const RBAC: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: rbac-test
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: reader
  namespace: rbac-test
---
apiVersion: v1
kind: Secret
metadata:
  name: reader-token
  namespace: rbac-test
  annotations:
    kubernetes.io/service-account.name: reader
type: kubernetes.io/service-account-token
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: reader-view
  namespace: rbac-test
subjects:
- kind: ServiceAccount
  name: reader
  namespace: rbac-test
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: rbac-test
data: {a: "1"}
"#;

const WIDGETS_VIEW: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: widgets-view
  labels:
    rbac.authorization.k8s.io/aggregate-to-view: "true"
rules:
- apiGroups: [example.com]
  resources: [widgets]
  verbs: [get, list, watch]
"#;

const NEW_CONFIGMAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: written-by-reader
  namespace: rbac-test
data: {b: "2"}
"#;

/// kubectl with a private cache dir (loopback ports are reused by other sandboxes).
fn kubectl(sb: &TestSandbox, args: &[&str]) -> Output {
    let cache = sb.dir.path().join("kube-cache").display().to_string();
    let mut all = vec!["--cache-dir", cache.as_str()];
    all.extend_from_slice(args);
    sb.kubectl(&all).unwrap()
}

fn write(sb: &TestSandbox, name: &str, text: &str) -> String {
    let p = sb.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn kubectl_sees_service_addresses_node_ports_and_the_load_balancer_ip() {
    let sb = TestSandbox::with(SimConfig::new("installed").set("timing.lb_ip_ms", "300"));
    if sb.kubectl(&["version", "--client"]).is_none() {
        return;
    }
    let file = write(&sb, "services.yaml", SERVICES);
    assert_success(&kubectl(&sb, &["apply", "-f", &file]), "apply services");

    let out = kubectl(
        &sb,
        &[
            "wait",
            "-n",
            "svc-test",
            "--for=jsonpath={.status.loadBalancer.ingress}",
            "--timeout=20s",
            "svc/gateway",
        ],
    );
    assert_success(&out, "kubectl wait for the load balancer");
    let out = kubectl(
        &sb,
        &[
            "get",
            "svc",
            "gateway",
            "-n",
            "svc-test",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip} {.spec.clusterIP}",
        ],
    );
    assert_success(&out, "get svc -o jsonpath");
    let text = stdout(&out);
    let (lb_ip, cluster_ip) = text.split_once(' ').unwrap();
    assert!(lb_ip.starts_with("198.51.100."), "{text}");
    assert!(cluster_ip.starts_with("10.0.0."), "{text}");

    let out = kubectl(
        &sb,
        &[
            "get",
            "svc",
            "nodes",
            "-n",
            "svc-test",
            "-o",
            "jsonpath={.spec.ports[*].nodePort}",
        ],
    );
    assert_success(&out, "get NodePort service");
    let ports: Vec<u32> = stdout(&out)
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert_eq!(ports[0], 30080);
    assert!((30000..=32767).contains(&ports[1]) && ports[1] != 30080);

    let out = kubectl(
        &sb,
        &[
            "expose",
            "deployment",
            "web",
            "-n",
            "svc-test",
            "--port=80",
            "--type=LoadBalancer",
        ],
    );
    assert_success(&out, "kubectl expose deployment");
    let out = kubectl(
        &sb,
        &[
            "wait",
            "-n",
            "svc-test",
            "--for=jsonpath={.status.loadBalancer.ingress}",
            "--timeout=20s",
            "svc/web",
        ],
    );
    assert_success(
        &out,
        "kubectl wait for the exposed deployment's load balancer",
    );

    let out = kubectl(&sb, &["get", "svc", "-n", "svc-test"]);
    assert_success(&out, "get svc (table)");
    let table = stdout(&out);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let gateway = table.lines().find(|l| l.starts_with("gateway")).unwrap();
    assert!(
        gateway.contains("LoadBalancer") && gateway.contains(lb_ip),
        "{table}"
    );
    let nodes = table.lines().find(|l| l.starts_with("nodes")).unwrap();
    assert!(
        nodes.contains("80:30080/TCP") && nodes.contains("<none>"),
        "{table}"
    );
    let web = table.lines().find(|l| l.starts_with("web")).unwrap();
    assert!(web.contains("198.51.100."), "{table}");
}

#[test]
fn kubectl_shows_view_aggregated_and_extended_by_a_labelled_role() {
    let sb = TestSandbox::start("installed");
    if sb.kubectl(&["version", "--client"]).is_none() {
        return;
    }
    let out = kubectl(&sb, &["get", "clusterroles", "view", "-o", "yaml"]);
    assert_success(&out, "get clusterrole view -o yaml");
    let yaml: serde_json::Value = serde_yaml::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        yaml["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );
    let rules = yaml["rules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["resources"].as_array().unwrap().contains(&"pods".into())),
        "{yaml}"
    );

    let file = write(&sb, "widgets-view.yaml", WIDGETS_VIEW);
    assert_success(&kubectl(&sb, &["apply", "-f", &file]), "apply widgets-view");
    let out = kubectl(
        &sb,
        &[
            "get",
            "clusterrole",
            "view",
            "-o",
            "jsonpath={.rules[*].resources}",
        ],
    );
    assert_success(&out, "get view rules");
    assert!(stdout(&out).contains("widgets"), "{}", stdout(&out));

    let out = kubectl(&sb, &["get", "clusterroles"]);
    assert_success(&out, "get clusterroles");
    for role in ["cluster-admin", "admin", "edit", "view", "system:discovery"] {
        assert!(
            stdout(&out)
                .lines()
                .any(|l| l.starts_with(&format!("{role} "))),
            "{role} missing:\n{}",
            stdout(&out)
        );
    }
}

/// The token the token controller puts into `reader-token`, once it has.
fn reader_token(sb: &TestSandbox) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = kubectl(
            sb,
            &[
                "get",
                "secret",
                "reader-token",
                "-n",
                "rbac-test",
                "-o",
                "jsonpath={.data.token}",
            ],
        );
        assert_success(&out, "get token secret");
        let b64 = stdout(&out);
        if !b64.is_empty() {
            let t = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .unwrap();
            return String::from_utf8(t).unwrap();
        }
        assert!(Instant::now() < deadline, "token never filled");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn service_account_bound_to_view_reads_but_cannot_read_secrets_or_write() {
    let sb = TestSandbox::start("installed");
    if sb.kubectl(&["version", "--client"]).is_none() {
        return;
    }
    let file = write(&sb, "rbac.yaml", RBAC);
    assert_success(&kubectl(&sb, &["apply", "-f", &file]), "apply rbac bundle");
    let token = reader_token(&sb);
    let as_reader = |args: &[&str]| {
        let mut all = vec!["--token", token.as_str(), "-n", "rbac-test"];
        all.extend_from_slice(args);
        kubectl(&sb, &all)
    };

    let out = as_reader(&["get", "pods,configmaps"]);
    assert_success(&out, "reader: get pods,configmaps");
    assert!(
        stdout(&out).contains("configmap/settings"),
        "{}",
        stdout(&out)
    );

    let out = as_reader(&["get", "secrets"]);
    assert!(!out.status.success(), "reader listed secrets");
    assert!(
        stderr(&out).contains(
            "secrets is forbidden: User \"system:serviceaccount:rbac-test:reader\" cannot list resource \"secrets\" in API group \"\" in the namespace \"rbac-test\""
        ),
        "{}",
        stderr(&out)
    );

    let cm = write(&sb, "new-cm.yaml", NEW_CONFIGMAP);
    let out = as_reader(&["apply", "-f", &cm]);
    assert!(!out.status.success(), "reader created a configmap");
    assert!(
        stderr(&out).contains("cannot create resource \"configmaps\""),
        "{}",
        stderr(&out)
    );

    let out = as_reader(&["get", "pods", "-n", "kube-system"]);
    assert!(
        !out.status.success(),
        "a RoleBinding granted another namespace"
    );
}
