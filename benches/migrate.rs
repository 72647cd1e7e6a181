//! End-to-end benchmark of `asm migrate --all-namespaces --yes` against asm-sim with 20 ms
//! latency injected on every request: the `in-cluster` scenario with 5 Deployments in each
//! of its 3 meshed namespaces (the scenario's own plus ones applied with kubectl, 2 replicas
//! each) and its ingress gateway, on 1 and on 10 clusters (`--set clusters=N`). Reports the
//! wall time of the migration, the plan's critical path (measured action durations), the
//! ratio apply / critical path and the requests sent, then 10 clusters vs 1.
//!
//! `cargo bench --bench migrate`. The sandbox runs as a separate `asm sandbox serve`
//! process; asm runs in-process. The managed control plane is installed and the extra
//! Deployments are rolled out before the measurement starts.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use asm::environment::Environment;
use asm::output::Captured;
use asm_sim::request_log;
use serde_json::Value;

#[path = "support/mod.rs"]
mod support;
use support::Served;

/// The scenario's meshed namespaces, the Deployments it already has there, and how many to
/// add so each has [`PER_NAMESPACE`].
const NAMESPACES: [(&str, usize); 3] = [("frontend", 2), ("backend", 2), ("legacy", 1)];
const PER_NAMESPACE: usize = 5;
const REPLICAS: usize = 2;
/// The scenario's ingress gateway pods, injected by the old revision too.
const GATEWAY_PODS: usize = 2;
const OLD: &str = "asm-191-1";

struct Run {
    clusters: usize,
    wall: Duration,
    apply_wall: Duration,
    critical: Duration,
    critical_path: Vec<String>,
    actions: usize,
    kube: usize,
    mutating: usize,
}

/// The Deployments that bring each namespace to [`PER_NAMESPACE`].
fn extra_deployments() -> String {
    let mut out = String::new();
    for (ns, existing) in NAMESPACES {
        for i in existing + 1..=PER_NAMESPACE {
            out.push_str(&format!(
                "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: svc-{i}, namespace: {ns}, labels: {{app: svc-{i}}}}}\n\
                 spec:\n  replicas: {REPLICAS}\n  selector: {{matchLabels: {{app: svc-{i}}}}}\n  template:\n    metadata: {{labels: {{app: svc-{i}}}}}\n    \
                 spec:\n      containers:\n        - name: app\n          image: us-docker.pkg.dev/google-samples/containers/gke/hello-app:1.0\n"
            ));
        }
    }
    out
}

fn kubectl(served: &Served, context: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("kubectl")
        .envs(served.exports.iter().map(|(k, v)| (k, v)))
        .env("GCE_METADATA_HOST", "127.0.0.1:9")
        .args(["--context", context])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed");
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Live, Ready pods of a cluster whose proxy `revision` injected.
fn ready_pods_on(served: &Served, context: &str, revision: &str) -> usize {
    let v: Value = serde_json::from_str(&kubectl(
        served,
        context,
        &["get", "pods", "-A", "-o", "json"],
        None,
    ))
    .unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .filter(|p| {
            p["metadata"]["annotations"]["sidecar.istio.io/status"]
                .as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .is_some_and(|s| s["revision"] == revision)
        })
        .count()
}

async fn asm_json(served: &Served, args: Vec<String>) -> (Duration, Value) {
    let env = Environment::with_vars(served.exports.clone());
    let out = Captured::default();
    let started = Instant::now();
    let code = asm::run(args, env, out.printer()).await;
    let wall = started.elapsed();
    assert_eq!(code, 0, "{}", out.stderr_text());
    (wall, serde_json::from_str(&out.stdout_text()).unwrap())
}

async fn run_once(clusters: usize) -> Run {
    let dir = std::env::temp_dir().join(format!(
        "asm-bench-migrate-{}-{clusters}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("requests.jsonl");
    let _ = std::fs::remove_file(&log);
    let n = clusters.to_string();
    // Fast Google-side operations: the install is set-up, not measured.
    let served = Served::start(
        "in-cluster",
        &[
            ("clusters", &n),
            ("timing.gke_op_ms", "100"),
            ("timing.hub_op_ms", "100"),
            ("timing.crd_install_ms", "200"),
            ("timing.cpr_ready_ms", "300"),
        ],
        &log,
    );
    let project = served.var("ASM_SANDBOX_PROJECT").to_string();
    let location = served.var("ASM_SANDBOX_LOCATION").to_string();
    let names: Vec<String> = served
        .var("ASM_SANDBOX_CLUSTERS")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(names.len(), clusters);
    let targets: Vec<String> = names
        .iter()
        .flat_map(|c| ["--cluster".to_string(), format!("{project}/{location}/{c}")])
        .collect();

    // Set-up: the extra Deployments, rolled out on the old revision; the managed control
    // plane.
    let manifest = extra_deployments();
    let expected = NAMESPACES.len() * PER_NAMESPACE * REPLICAS + GATEWAY_PODS;
    for c in &names {
        let ctx = format!("gke_{project}_{location}_{c}");
        kubectl(&served, &ctx, &["apply", "-f", "-"], Some(&manifest));
    }
    let mut install = vec!["asm".to_string(), "install".into(), "--managed".into()];
    install.extend(targets.iter().cloned());
    install.extend(["--enable-all", "--yes", "-o", "json"].map(String::from));
    asm_json(&served, install).await;
    for c in &names {
        let ctx = format!("gke_{project}_{location}_{c}");
        let start = Instant::now();
        while ready_pods_on(&served, &ctx, OLD) < expected {
            assert!(start.elapsed() < Duration::from_secs(120), "{c}: set-up");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // The measurement.
    let before = request_log::read(&log).unwrap().len();
    let mut migrate = vec!["asm".to_string(), "migrate".into()];
    migrate.extend(targets.iter().cloned());
    migrate.extend(["--all-namespaces", "--yes", "-o", "json"].map(String::from));
    let (wall, v) = asm_json(&served, migrate).await;
    let reqs = request_log::read(&log).unwrap();
    let reqs = &reqs[before..];
    for c in &names {
        let ctx = format!("gke_{project}_{location}_{c}");
        assert_eq!(
            ready_pods_on(&served, &ctx, OLD),
            0,
            "{c}: pods left behind"
        );
    }
    drop(served);
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        clusters,
        wall,
        apply_wall: Duration::from_millis(v["result"]["wall_ms"].as_u64().unwrap()),
        critical: Duration::from_millis(v["critical_path_ms"].as_u64().unwrap()),
        critical_path: v["critical_path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_string())
            .collect(),
        actions: v["actions"].as_array().unwrap().len(),
        kube: reqs.iter().filter(|r| r.server != "google").count(),
        mutating: reqs.iter().filter(|r| r.is_mutating()).count(),
    }
}

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{:>8} {:>8} {:>9} {:>9} {:>9} {:>6} {:>8} {:>11}",
        "clusters", "actions", "wall", "apply", "critical", "kube", "mutating", "apply/crit"
    );
    let mut runs = Vec::new();
    for clusters in [1usize, 10] {
        let r = rt.block_on(run_once(clusters));
        println!(
            "{:>8} {:>8} {:>8.2}s {:>8.2}s {:>8.2}s {:>6} {:>8} {:>11.2}",
            r.clusters,
            r.actions,
            r.wall.as_secs_f64(),
            r.apply_wall.as_secs_f64(),
            r.critical.as_secs_f64(),
            r.kube,
            r.mutating,
            r.apply_wall.as_secs_f64() / r.critical.as_secs_f64().max(1e-9),
        );
        runs.push(r);
    }
    println!(
        "critical path (1 cluster): {}",
        runs[0].critical_path.join(" → ")
    );
    let ratio = runs[1].wall.as_secs_f64() / runs[0].wall.as_secs_f64();
    println!(
        "10 clusters vs 1: wall ×{ratio:.2}, requests ×{:.2}",
        runs[1].kube as f64 / runs[0].kube.max(1) as f64
    );
}
