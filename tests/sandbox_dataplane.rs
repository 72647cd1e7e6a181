//! The data plane in the sandbox: Pods injected by the managed control plane's webhook,
//! the managed data plane's DataPlaneControls, and the in-cluster Membership object, as
//! the real kubectl (and gcloud) see them.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use asm_sim::SimConfig;
use asm_sim::http::{Handler, Request};
use asm_sim::member::MemberCluster;
use serde_json::{Value, json};

use crate::support::{TestSandbox, assert_success, stderr, stdout};

/// The documented readiness check of the managed data plane.
const MDP_CHECK: &[&str] = &[
    "get",
    "dataplanecontrols",
    "-o",
    "custom-columns=REV:.spec.revision,STATUS:.status.state",
];

fn kubectl_ok(sb: &TestSandbox, args: &[&str]) -> Option<String> {
    let out = sb.kubectl(args)?;
    assert_success(&out, &args.join(" "));
    Some(stdout(&out))
}

#[test]
fn installed_cluster_injects_a_pod_created_through_the_api_in_a_labelled_namespace() {
    let sb = TestSandbox::start("installed");
    let cluster = &sb.sandbox().clusters[0];
    let token = sb.sandbox().token().to_string();
    let send = |method: &str, path: &str, body: Value| {
        let req = Request::new(method, path, body.to_string())
            .with_header("Authorization", &format!("Bearer {token}"))
            .with_header("Content-Type", "application/json");
        let r = sb.block_on(cluster.api.clone().handle(req));
        (r.status, r.body_json())
    };
    let (s, ns) = send(
        "POST",
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"istio.io/rev": "asm-managed"}}}),
    );
    assert_eq!(s, 201, "{ns}");
    let (s, pod) = send(
        "POST",
        "/api/v1/namespaces/shop/pods",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}),
    );
    assert_eq!(s, 201, "{pod}");
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "istio-proxy"]);
    assert_eq!(
        pod["spec"]["containers"][1]["image"],
        "gcr.io/gke-release/asm/proxyv2:1.23.6-asm.14"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["istio.io/rev"],
        "asm-managed"
    );
    let status: Value = serde_json::from_str(
        pod["metadata"]["annotations"]["sidecar.istio.io/status"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status["revision"], "asm-managed");
    assert_eq!(
        pod["metadata"]["labels"]["security.istio.io/tlsMode"],
        "istio"
    );
    assert_eq!(
        pod["metadata"]["labels"]["service.istio.io/canonical-name"],
        "web"
    );
}

#[test]
fn kubectl_apply_in_a_rev_labelled_namespace_gets_the_channel_proxy_version() {
    let sb = TestSandbox::with(
        SimConfig::new("installed").set("revision.asm-managed.proxy_version", "1.23.9-asm.3"),
    );
    // kubectl's typed create/run speak protobuf, which the sandbox does not; apply sends JSON.
    let ns = sb.dir.path().join("ns.yaml");
    std::fs::write(
        &ns,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
    )
    .unwrap();
    let pod = sb.dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\n  labels:\n    app: web\nspec:\n  containers:\n  - name: web\n    image: nginx\n",
    )
    .unwrap();
    let Some(_) = kubectl_ok(&sb, &["apply", "-f", ns.to_str().unwrap()]) else {
        return;
    };
    let out = kubectl_ok(
        &sb,
        &[
            "label",
            "namespace",
            "shop",
            "istio-injection-",
            "istio.io/rev=asm-managed",
            "--overwrite",
        ],
    )
    .unwrap();
    assert!(out.contains("namespace/shop labeled"), "{out}");
    kubectl_ok(&sb, &["apply", "-f", pod.to_str().unwrap()]).unwrap();
    let images = kubectl_ok(
        &sb,
        &[
            "get",
            "pod",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.initContainers[*].name} {.spec.containers[*].image}",
        ],
    )
    .unwrap();
    // Managed CNI is off in `installed` (no asm-options): istio-init sets up redirection.
    assert_eq!(
        images,
        "istio-init nginx gcr.io/gke-release/asm/proxyv2:1.23.9-asm.3"
    );
}

#[test]
fn installed_cluster_passes_the_managed_data_plane_check() {
    let sb = TestSandbox::start("installed");
    let Some(out) = kubectl_ok(&sb, MDP_CHECK) else {
        return;
    };
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows, [vec!["REV", "STATUS"], vec!["asm-managed", "Ready"]]);
}

#[test]
fn stable_cluster_has_no_dataplanecontrols() {
    let sb = TestSandbox::with(SimConfig::new("installed").set("cluster.channel", "STABLE"));
    let Some(out) = sb.kubectl(MDP_CHECK) else {
        return;
    };
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the server doesn't have a resource type \"dataplanecontrols\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn fleet_managed_rapid_cluster_gets_a_dataplanecontrol_ready_after_mdp_ready() {
    let sb = TestSandbox::with(
        SimConfig::new("fresh")
            .set("cluster.channel", "RAPID")
            .set("service.gkehub", "enabled")
            .set("timing.gke_op_ms", "0")
            .set("timing.hub_op_ms", "0")
            .set("timing.crd_install_ms", "0")
            .set("timing.cpr_ready_ms", "100")
            .set("timing.mdp_ready_ms", "1500"),
    );
    let Some(out) = sb.gcloud(&[
        "container",
        "fleet",
        "memberships",
        "register",
        "cluster-1",
        "--gke-cluster",
        "us-central1-c/cluster-1",
        "--enable-workload-identity",
    ]) else {
        return;
    };
    assert_success(&out, "register");
    for args in [
        &["container", "fleet", "mesh", "enable"][..],
        &[
            "container",
            "fleet",
            "mesh",
            "update",
            "--management",
            "automatic",
            "--memberships",
            "cluster-1",
            "--location",
            "us-central1",
        ][..],
    ] {
        let out = sb.gcloud(args).unwrap();
        assert_success(&out, &args.join(" "));
    }
    // In-process: the DataPlaneControl appears without a status, then turns Ready.
    let cluster = &sb.sandbox().clusters[0];
    let get = || {
        cluster.api.get_object(
            "mesh.cloud.google.com/v1alpha1",
            "DataPlaneControl",
            None,
            "asm-managed-rapid",
        )
    };
    let start = Instant::now();
    let first = loop {
        if let Some(d) = get() {
            break d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no DataPlaneControl"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(first["spec"]["revision"], "asm-managed-rapid");
    assert_eq!(first["spec"]["proxyVersion"], "1.24.6-asm.3");
    let appeared = Instant::now();
    let rows = loop {
        let out = kubectl_ok(&sb, MDP_CHECK).unwrap();
        if out.contains("Ready") {
            break out;
        }
        assert!(appeared.elapsed() < Duration::from_secs(20), "{out}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Ready came timing.mdp_ready (1.5 s) after creation: the status write is at least a
    // second later than the creationTimestamp (both have second precision).
    let d = cluster
        .api
        .get_object(
            "mesh.cloud.google.com/v1alpha1",
            "DataPlaneControl",
            None,
            "asm-managed-rapid",
        )
        .unwrap();
    let status_time = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["subresource"] == "status")
        .map(|m| m["time"].as_str().unwrap().to_string())
        .unwrap();
    let created = d["metadata"]["creationTimestamp"].as_str().unwrap();
    let secs = |t: &str| -> i64 {
        let hms = &t[11..19];
        hms.split(':')
            .fold(0, |acc, p| acc * 60 + p.parse::<i64>().unwrap())
    };
    assert!(
        (secs(&status_time) - secs(created)).rem_euclid(86_400) >= 1,
        "{d}"
    );
    let rows: Vec<Vec<&str>> = rows
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [vec!["REV", "STATUS"], vec!["asm-managed-rapid", "Ready"]]
    );
}

/// `kubectl get memberships.hub.gke.io membership -o yaml`, parsed.
fn membership_object(sb: &TestSandbox) -> Option<Value> {
    let out = kubectl_ok(
        sb,
        &["get", "memberships.hub.gke.io", "membership", "-o", "yaml"],
    )?;
    Some(serde_yaml::from_str(&out).unwrap())
}

#[test]
fn installed_cluster_holds_its_membership_object() {
    let sb = TestSandbox::start("installed");
    let Some(m) = membership_object(&sb) else {
        return;
    };
    assert_eq!(m["apiVersion"], "hub.gke.io/v1");
    assert_eq!(
        m["spec"]["owner"]["id"],
        "//gkehub.googleapis.com/projects/asm-installed/locations/us-central1/memberships/cluster-1"
    );
    assert_eq!(
        m["spec"]["identity_provider"],
        "https://container.googleapis.com/v1/projects/asm-installed/locations/us-central1-c/clusters/cluster-1"
    );
    assert_eq!(
        m["spec"]["workload_identity_pool"],
        "asm-installed.svc.id.goog"
    );
}

#[test]
fn asm_install_registration_leaves_the_membership_object() {
    let sb = TestSandbox::with(crate::install::fast("fresh"));
    if sb.kubectl(&["version", "--client"]).is_none() {
        return;
    }
    let t = crate::install::target(&sb, "cluster-1");
    let o = crate::install::install(&sb, &t, &["--yes"]);
    assert_success(&o, "install");
    let m = membership_object(&sb).unwrap();
    let owner = m["spec"]["owner"]["id"].as_str().unwrap();
    assert!(
        owner.starts_with("//gkehub.googleapis.com/projects/asm-fresh/locations/")
            && owner.ends_with("/memberships/cluster-1"),
        "{owner}"
    );
    assert_eq!(m["spec"]["workload_identity_pool"], "asm-fresh.svc.id.goog");
}

/// kubectl caches discovery per host:port for hours; a later sandbox can get the same port
/// with other resources (a STABLE cluster has no `dataplanecontrols`), so the cache must be
/// the sandbox's own, not `~/.kube/cache`.
#[test]
fn kubectl_discovery_is_cached_in_the_sandbox_not_the_home_directory() {
    let sb = TestSandbox::start("installed");
    if kubectl_ok(&sb, &["get", "namespaces"]).is_none() {
        return;
    }
    let port = sb.sandbox().clusters[0]
        .endpoint
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let discovery = sb.sandbox().kube_cache_path().join("discovery");
    let entries: Vec<String> = std::fs::read_dir(&discovery)
        .unwrap_or_else(|e| panic!("{}: {e}", discovery.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, [format!("127.0.0.1_{port}")]);
}
