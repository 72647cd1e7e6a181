//! The migration scenarios (`in-cluster`, `installed-workloads`) as they settle, the
//! migration of a namespace from the in-cluster istiod to the managed control plane, and
//! the managed data plane's upgrade by eviction, seen in-process and by the real kubectl.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use asm_sim::SimConfig;
use asm_sim::http::{Handler, Request};
use asm_sim::member::MemberCluster;
use serde_json::Value;

use crate::support::{TestSandbox, assert_success, stderr, stdout};

const IN_CLUSTER_PROXY: &str = "gcr.io/gke-release/asm/proxyv2:1.9.1-asm.1";

/// Every Pod of the sandbox's first cluster, read in-process (`GET /api/v1/pods`).
fn pods_in_process(sb: &TestSandbox) -> Vec<Value> {
    let cluster = &sb.sandbox().clusters[0];
    let req = Request::new("GET", "/api/v1/pods", "")
        .with_header("Authorization", &format!("Bearer {}", sb.sandbox().token()));
    let r = sb.block_on(cluster.api.clone().handle(req));
    assert_eq!(r.status, 200);
    r.body_json()["items"].as_array().unwrap().clone()
}

/// Every Pod as `kubectl get pods -A -o json` shows it.
fn pods_by_kubectl(sb: &TestSandbox) -> Option<Vec<Value>> {
    let out = sb.kubectl(&["get", "pods", "-A", "-o", "json"])?;
    assert_success(&out, "kubectl get pods -A -o json");
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    Some(list["items"].as_array().unwrap().clone())
}

fn kubectl_ok(sb: &TestSandbox, args: &[&str]) -> String {
    let out = sb.kubectl(args).unwrap();
    assert_success(&out, &args.join(" "));
    stdout(&out)
}

fn meta<'a>(pod: &'a Value, field: &str) -> &'a str {
    pod["metadata"][field].as_str().unwrap_or_default()
}

/// The workload a Pod belongs to: its owner's name without the pod-template-hash.
fn workload(pod: &Value) -> String {
    let owner = pod["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .unwrap_or_default();
    match pod["metadata"]["labels"]["pod-template-hash"].as_str() {
        Some(h) => owner
            .strip_suffix(&format!("-{h}"))
            .unwrap_or(owner)
            .to_string(),
        None => owner.to_string(),
    }
}

/// `revision` of `sidecar.istio.io/status`, `None` for an uninjected Pod.
fn injected_by(pod: &Value) -> Option<String> {
    let status = pod["metadata"]["annotations"]["sidecar.istio.io/status"].as_str()?;
    let v: Value = serde_json::from_str(status).unwrap();
    Some(v["revision"].as_str().unwrap().to_string())
}

fn proxy_image(pod: &Value) -> Option<String> {
    pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "istio-proxy")
        .map(|c| c["image"].as_str().unwrap().to_string())
}

fn running_and_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// `namespace/workload` → its Pods.
fn by_workload(pods: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut m: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for p in pods {
        m.entry(format!("{}/{}", meta(p, "namespace"), workload(p)))
            .or_default()
            .push(p);
    }
    m
}

/// Asserts the in-cluster scenario's Pods: two Running, Ready Pods per meshed workload,
/// each injected by asm-191-1 with its proxy; batch uninjected.
fn assert_in_cluster_pods(pods: &[Value]) {
    let groups = by_workload(pods);
    let meshed = [
        "frontend/web",
        "frontend/api",
        "backend/orders",
        "backend/payments",
        "legacy/monolith",
        "istio-system/istio-ingressgateway",
    ];
    for w in meshed {
        let members = groups.get(w).unwrap_or_else(|| panic!("no pods of {w}"));
        assert_eq!(members.len(), 2, "{w}");
        for p in members {
            assert!(running_and_ready(p), "{w}: {p}");
            assert_eq!(injected_by(p).as_deref(), Some("asm-191-1"), "{w}: {p}");
            assert_eq!(proxy_image(p).as_deref(), Some(IN_CLUSTER_PROXY), "{w}");
        }
    }
    // The gateway got the gateway template: no init container.
    for p in &groups["istio-system/istio-ingressgateway"] {
        assert!(p["spec"].get("initContainers").is_none(), "{p}");
    }
    // istiod itself opts out (sidecar.istio.io/inject=false) and is not injected.
    let istiod = &groups["istio-system/istiod-asm-191-1"];
    assert_eq!(istiod.len(), 2);
    assert!(istiod.iter().all(|p| injected_by(p).is_none()));
    let batch: Vec<&Value> = pods
        .iter()
        .filter(|p| meta(p, "namespace") == "batch")
        .collect();
    let batch_workloads: BTreeSet<String> = batch.iter().map(|p| workload(p)).collect();
    assert_eq!(
        batch_workloads,
        BTreeSet::from(["cache".to_string(), "nightly".to_string()])
    );
    assert_eq!(batch.len(), 4, "two Job Pods and two StatefulSet Pods");
    assert!(
        batch
            .iter()
            .all(|p| injected_by(p).is_none() && proxy_image(p).is_none())
    );
}

#[test]
fn in_cluster_scenario_settles_with_mesh_pods_injected_by_asm_191_1_in_process() {
    let sb = TestSandbox::start("in-cluster");
    assert_in_cluster_pods(&pods_in_process(&sb));
    let cluster = &sb.sandbox().clusters[0];
    let istiod = cluster
        .api
        .get_object(
            "apps/v1",
            "Deployment",
            Some("istio-system"),
            "istiod-asm-191-1",
        )
        .unwrap();
    let env = &istiod["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "CA_ADDR" && e["value"] == "meshca.googleapis.com:443")
    );
    for (api, kind) in [
        ("v1", "Service"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
    ] {
        assert!(
            cluster
                .api
                .get_object(api, kind, Some("istio-system"), "istiod-asm-191-1")
                .is_some(),
            "{kind}"
        );
    }
}

#[test]
fn in_cluster_scenario_pods_as_kubectl_shows_them() {
    let sb = TestSandbox::start("in-cluster");
    let Some(pods) = pods_by_kubectl(&sb) else {
        return;
    };
    assert_in_cluster_pods(&pods);
    let table = kubectl_ok(&sb, &["get", "pods", "-A"]);
    assert!(table.starts_with("NAMESPACE"), "{table}");
    // 12 meshed Pods, 2 istiod Pods, 4 batch Pods.
    assert_eq!(table.lines().count(), 1 + 18, "{table}");
    let lb = kubectl_ok(
        &sb,
        &[
            "get",
            "svc",
            "istio-ingressgateway",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.spec.type}",
        ],
    );
    assert_eq!(lb, "LoadBalancer");
}

#[test]
fn installed_workloads_scenario_injects_shop_and_catalog_with_the_channel_revision() {
    let sb = TestSandbox::with(SimConfig::new("installed-workloads"));
    let check = |pods: &[Value]| {
        let groups = by_workload(pods);
        for w in ["shop/cart", "shop/checkout", "catalog/search"] {
            let members = &groups[w];
            assert_eq!(members.len(), 2, "{w}");
            for p in members {
                assert!(running_and_ready(p), "{w}: {p}");
                assert_eq!(injected_by(p).as_deref(), Some("asm-managed"), "{w}");
                assert_eq!(
                    proxy_image(p).as_deref(),
                    Some("gcr.io/gke-release/asm/proxyv2:1.23.6-asm.14"),
                    "{w}"
                );
                assert!(
                    p["metadata"]["annotations"]
                        .get("mesh.cloud.google.com/proxy")
                        .is_none()
                );
            }
        }
        let batch: Vec<&Value> = pods
            .iter()
            .filter(|p| meta(p, "namespace") == "batch")
            .collect();
        assert_eq!(batch.len(), 4);
        assert!(batch.iter().all(|p| injected_by(p).is_none()));
    };
    check(&pods_in_process(&sb));
    let Some(pods) = pods_by_kubectl(&sb) else {
        return;
    };
    check(&pods);
    let ns = kubectl_ok(
        &sb,
        &[
            "get",
            "ns",
            "shop",
            "-o",
            "jsonpath={.metadata.labels.istio\\.io/rev} {.metadata.annotations}",
        ],
    );
    assert_eq!(ns, "asm-managed ");
}

#[test]
fn installed_workloads_on_rapid_uses_asm_managed_rapid() {
    let sb =
        TestSandbox::with(SimConfig::new("installed-workloads").set("cluster.channel", "RAPID"));
    let pods = pods_in_process(&sb);
    let shop: Vec<&Value> = pods
        .iter()
        .filter(|p| meta(p, "namespace") == "shop")
        .collect();
    assert_eq!(shop.len(), 4);
    for p in shop {
        assert_eq!(injected_by(p).as_deref(), Some("asm-managed-rapid"));
        assert_eq!(
            proxy_image(p).as_deref(),
            Some("gcr.io/gke-release/asm/proxyv2:1.24.6-asm.3")
        );
    }
}

/// Polls `kubectl get pods -n NS -o json` until `done` holds for the non-terminating Pods.
fn wait_pods(
    sb: &TestSandbox,
    ns: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let out = kubectl_ok(sb, &["get", "pods", "-n", ns, "-o", "json"]);
        let list: Value = serde_json::from_str(&out).unwrap();
        let pods: Vec<Value> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
            .cloned()
            .collect();
        if done(&pods) {
            return pods;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: {:#?}",
            pods.iter()
                .map(|p| (
                    meta(p, "name").to_string(),
                    injected_by(p),
                    running_and_ready(p)
                ))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn in_cluster_migration_moves_frontend_to_asm_managed_on_rollout_restart_only() {
    let sb =
        TestSandbox::with(crate::install::fast("in-cluster").set("timing.mdp_ready_ms", "200"));
    if sb.kubectl(&["version", "--client"]).is_none() {
        return;
    }
    let before: BTreeSet<String> = pods_by_kubectl(&sb)
        .unwrap()
        .iter()
        .filter(|p| meta(p, "namespace") == "frontend")
        .map(|p| meta(p, "name").to_string())
        .collect();
    assert_eq!(before.len(), 4);
    let t = crate::install::target(&sb, "cluster-1");
    let o = crate::install::install(&sb, &t, &["--yes"]);
    assert_success(&o, "asm install --managed");

    let out = kubectl_ok(
        &sb,
        &[
            "label",
            "ns",
            "frontend",
            "istio-injection-",
            "istio.io/rev=asm-managed",
            "--overwrite",
        ],
    );
    assert!(out.contains("namespace/frontend labeled"), "{out}");
    // Relabelling changes no running Pod.
    std::thread::sleep(Duration::from_millis(500));
    let pods = wait_pods(&sb, "frontend", "frontend unchanged", |_| true);
    let names: BTreeSet<String> = pods.iter().map(|p| meta(p, "name").to_string()).collect();
    assert_eq!(names, before);
    assert!(
        pods.iter()
            .all(|p| injected_by(p).as_deref() == Some("asm-191-1"))
    );

    let out = kubectl_ok(&sb, &["rollout", "restart", "deployment", "-n", "frontend"]);
    assert!(
        out.contains("deployment.apps/web restarted")
            && out.contains("deployment.apps/api restarted"),
        "{out}"
    );
    for d in ["web", "api"] {
        kubectl_ok(
            &sb,
            &[
                "rollout",
                "status",
                &format!("deployment/{d}"),
                "-n",
                "frontend",
                "--timeout=60s",
            ],
        );
    }
    let pods = wait_pods(&sb, "frontend", "frontend on asm-managed", |pods| {
        pods.len() == 4
            && pods
                .iter()
                .all(|p| injected_by(p).as_deref() == Some("asm-managed") && running_and_ready(p))
    });
    for p in &pods {
        let status = p["metadata"]["annotations"]["sidecar.istio.io/status"]
            .as_str()
            .unwrap();
        assert!(status.contains(r#""revision":"asm-managed""#), "{status}");
        assert!(!before.contains(meta(p, "name")));
    }
    // The other namespaces stay on the in-cluster control plane.
    let backend = wait_pods(&sb, "backend", "backend", |_| true);
    assert!(
        backend
            .iter()
            .all(|p| injected_by(p).as_deref() == Some("asm-191-1"))
    );

    let start = Instant::now();
    let rows = loop {
        let out = kubectl_ok(
            &sb,
            &[
                "get",
                "dataplanecontrols",
                "-o",
                "custom-columns=REV:.spec.revision,STATUS:.status.state",
            ],
        );
        if out.contains("Ready") {
            break out;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let rows: Vec<Vec<&str>> = rows
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows, [vec!["REV", "STATUS"], vec!["asm-managed", "Ready"]]);
}

fn apply(sb: &TestSandbox, name: &str, manifest: &str) {
    let path = sb.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, manifest).unwrap();
    kubectl_ok(sb, &["apply", "-f", path.to_str().unwrap()]);
}

/// Workloads the managed data plane must leave alone, in the injected namespace `shop`: a
/// StatefulSet, a DaemonSet, a Job, a manually injected Deployment (its template carries
/// its own, older proxy and status) and a Deployment whose Pods opt out of injection.
const UNTOUCHABLE: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ledger, namespace: shop}
spec:
  replicas: 1
  serviceName: ledger
  selector: {matchLabels: {app: ledger}}
  template:
    metadata: {labels: {app: ledger}}
    spec: {containers: [{name: ledger, image: redis:7}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: busybox:1.36}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: report, namespace: shop}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: report, image: busybox:1.36}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: manual, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: manual}}
  template:
    metadata:
      labels: {app: manual}
      annotations:
        sidecar.istio.io/status: '{"initContainers":["istio-init"],"containers":["istio-proxy"],"revision":"asm-managed"}'
    spec:
      containers:
      - {name: manual, image: nginx}
      - {name: istio-proxy, image: "gcr.io/gke-release/asm/proxyv2:1.20.0-asm.1"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: plain, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: plain}}
  template:
    metadata: {labels: {app: plain, sidecar.istio.io/inject: "false"}}
    spec: {containers: [{name: plain, image: nginx}]}
"#;

/// A budget that allows no disruption of `cart` (2 replicas, 2 must stay).
const CART_PDB: &str = r#"
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: cart, namespace: shop}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: cart}}
"#;

#[test]
fn managed_data_plane_upgrades_opted_in_deployments_one_pod_at_a_time_by_eviction() {
    const OLD: &str = "gcr.io/gke-release/asm/proxyv2:1.23.6-asm.14";
    const NEW_VERSION: &str = "1.23.9-asm.3";
    let new_image = format!("gcr.io/gke-release/asm/proxyv2:{NEW_VERSION}");
    let sb = TestSandbox::with(
        SimConfig::new("installed-workloads")
            .set("timing.pod_ready_ms", "300")
            .set("timing.mdp_evict_ms", "50"),
    );
    if sb.kubectl(&["version", "--client"]).is_none() {
        return;
    }
    apply(&sb, "untouchable", UNTOUCHABLE);
    apply(&sb, "cart-pdb", CART_PDB);
    kubectl_ok(
        &sb,
        &[
            "annotate",
            "--overwrite",
            "namespace",
            "shop",
            r#"mesh.cloud.google.com/proxy={"managed":"true"}"#,
        ],
    );
    // Wait for the new workloads: 2 cart, 2 checkout, ledger-0, 3 agent (one per node),
    // 1 report (it completes), 1 manual, 1 plain.
    let settled = wait_pods(&sb, "shop", "shop settled", |pods| {
        pods.len() == 11
            && pods
                .iter()
                .all(|p| running_and_ready(p) || p["status"]["phase"] == "Succeeded")
    });
    let uid_of = |pods: &[Value], w: &str| -> BTreeSet<String> {
        pods.iter()
            .filter(|p| workload(p) == w)
            .map(|p| meta(p, "uid").to_string())
            .collect()
    };
    let untouchable = ["ledger", "agent", "report", "manual", "plain"];
    let kept: BTreeMap<&str, BTreeSet<String>> = untouchable
        .iter()
        .map(|w| (*w, uid_of(&settled, w)))
        .collect();
    assert_eq!(
        proxy_image(settled.iter().find(|p| workload(p) == "ledger").unwrap()).as_deref(),
        Some(OLD)
    );
    assert_eq!(settled.iter().filter(|p| workload(p) == "agent").count(), 3);
    let catalog_before = uid_of(&wait_pods(&sb, "catalog", "catalog", |_| true), "search");

    // The channel moves on: the managed revision's proxy version changes.
    sb.sandbox()
        .google
        .proxy_versions()
        .set("asm-managed", NEW_VERSION);

    // Watch checkout: its Pods are replaced one at a time (never both gone or unready).
    let start = Instant::now();
    let mut seen: BTreeSet<String> = uid_of(&settled, "checkout");
    loop {
        let list: Value = serde_json::from_str(&kubectl_ok(
            &sb,
            &[
                "get",
                "pods",
                "-n",
                "shop",
                "-l",
                "app=checkout",
                "-o",
                "json",
            ],
        ))
        .unwrap();
        let pods = list["items"].as_array().unwrap().clone();
        let ready = pods.iter().filter(|p| running_and_ready(p)).count();
        assert!(ready >= 1, "checkout lost all its ready Pods: {pods:#?}");
        seen.extend(pods.iter().map(|p| meta(p, "uid").to_string()));
        if pods.len() == 2
            && pods.iter().all(|p| {
                running_and_ready(p) && proxy_image(p).as_deref() == Some(new_image.as_str())
            })
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{pods:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(seen.len(), 4, "two old and two new checkout Pods");

    // cart's budget refuses every eviction: its Pods stay on the old proxy.
    std::thread::sleep(Duration::from_millis(1000));
    let cart = wait_pods(&sb, "shop", "cart", |_| true);
    let cart: Vec<&Value> = cart.iter().filter(|p| workload(p) == "cart").collect();
    assert_eq!(cart.len(), 2);
    assert!(cart.iter().all(|p| proxy_image(p).as_deref() == Some(OLD)));
    // The budget relaxed, the refused evictions are retried and succeed.
    kubectl_ok(
        &sb,
        &[
            "patch",
            "pdb",
            "cart",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            r#"{"spec":{"minAvailable":1}}"#,
        ],
    );
    let after = wait_pods(&sb, "shop", "cart upgraded", |pods| {
        let cart: Vec<&Value> = pods.iter().filter(|p| workload(p) == "cart").collect();
        cart.len() == 2
            && cart.iter().all(|p| {
                running_and_ready(p) && proxy_image(p).as_deref() == Some(new_image.as_str())
            })
    });
    for w in untouchable {
        assert_eq!(uid_of(&after, w), kept[w], "{w} was touched");
    }
    // catalog is not annotated: left on the old proxy.
    let catalog = wait_pods(&sb, "catalog", "catalog", |_| true);
    assert_eq!(uid_of(&catalog, "search"), catalog_before);
    assert!(
        catalog
            .iter()
            .all(|p| proxy_image(p).as_deref() == Some(OLD))
    );

    // The DataPlaneControl: still Ready, reporting 4 of the revision's 6 upgradable
    // proxies (cart, checkout; not search) at the target.
    let dpc = sb.sandbox().clusters[0]
        .api
        .get_object(
            "mesh.cloud.google.com/v1alpha1",
            "DataPlaneControl",
            None,
            "asm-managed",
        )
        .unwrap();
    assert_eq!(dpc["spec"]["proxyVersion"], NEW_VERSION);
    assert_eq!(dpc["status"]["state"], "Ready");
    assert_eq!(dpc["status"]["proxyTargetBasisPoints"], 4 * 10_000 / 6);
}

#[test]
fn sandbox_exec_in_cluster_runs_kubectl_get_pods() {
    if !crate::support::tool_available("kubectl") {
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_asm"))
        .env("NO_COLOR", "1")
        .env("GCE_METADATA_HOST", crate::support::CLOSED_LOOPBACK)
        .args([
            "sandbox",
            "exec",
            "--scenario",
            "in-cluster",
            "--",
            "kubectl",
            "get",
            "pods",
            "-A",
            "--no-headers",
        ])
        .output()
        .expect("asm runs");
    assert_success(&out, "kubectl get pods -A in the sandbox");
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(lines.len(), 18, "{}\n{}", stdout(&out), stderr(&out));
    for ns in ["frontend", "backend", "legacy", "batch", "istio-system"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{ns} "))),
            "{ns}"
        );
    }
    // Meshed Pods show 2/2 containers ready (application and proxy).
    assert!(
        lines
            .iter()
            .filter(|l| l.starts_with("frontend ")
                || l.starts_with("backend ")
                || l.starts_with("legacy "))
            .all(|l| l.split_whitespace().nth(2) == Some("2/2") && l.contains("Running")),
        "{lines:#?}"
    );
}
