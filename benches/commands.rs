//! End-to-end benchmark of `asm install-gateway` and `asm enable-dataplane` against asm-sim
//! with 20 ms latency injected on every request: 1, 10 and 50 clusters (`fleet-N` with the
//! managed control plane already in place, set up with `--set` knobs). In each sandbox,
//! `install-gateway --namespace gw --enable-namespace-creation` (the namespace and seven
//! objects per cluster, then the waits: Deployment available, pods injected, LoadBalancer
//! address), then `enable-dataplane --namespace gw` (the annotation, then the wait for the
//! DataPlaneControl). Reports per command wall time, requests, the plan's critical path
//! (measured action durations), the ratio apply / critical path and asm's peak memory,
//! then 10 and 50 clusters vs 1.
//!
//! `cargo bench --bench commands`. As in `benches/install.rs`, asm runs in-process, each
//! cluster count is measured in a fresh process of this bench, and the sandbox runs as a
//! separate `asm sandbox serve` process.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use asm::environment::Environment;
use asm::output::Captured;
use asm_sim::request_log;
use serde_json::{Value, json};
use support::{Served, peak_kib, reset_peak};

/// `fleet-N` turned into `installed`: the mesh APIs on, every cluster registered with the
/// mesh_id label, the servicemesh feature with automatic management (the sandbox then
/// provisions the managed control plane in each cluster).
const INSTALLED: [(&str, &str); 7] = [
    ("service.gkehub", "enabled"),
    ("service.mesh", "enabled"),
    ("service.meshconfig", "enabled"),
    ("servicemesh_feature", "true"),
    ("cluster.registered", "true"),
    ("cluster.management", "MANAGEMENT_AUTOMATIC"),
    ("cluster.label.mesh_id", "proj-718276145904"),
];

/// The commands measured, in order, with their flags besides the clusters.
const COMMANDS: [(&str, &[&str]); 2] = [
    (
        "install-gateway",
        &["--namespace", "gw", "--enable-namespace-creation"],
    ),
    ("enable-dataplane", &["--namespace", "gw"]),
];

struct Run {
    clusters: usize,
    command: String,
    wall: Duration,
    apply_wall: Duration,
    critical: Duration,
    google: usize,
    kube: usize,
    mutating: usize,
    /// asm's peak resident set during the run.
    peak_kib: u64,
}

impl Run {
    fn json(&self) -> Value {
        let ms = |d: Duration| d.as_millis() as u64;
        json!({
            "command": self.command, "wall_ms": ms(self.wall), "apply_ms": ms(self.apply_wall),
            "critical_ms": ms(self.critical), "google": self.google, "kube": self.kube,
            "mutating": self.mutating, "peak_kib": self.peak_kib,
        })
    }

    fn from_json(clusters: usize, v: &Value) -> Run {
        let ms = |k: &str| Duration::from_millis(v[k].as_u64().unwrap());
        let n = |k: &str| v[k].as_u64().unwrap() as usize;
        Run {
            clusters,
            command: v["command"].as_str().unwrap().to_string(),
            wall: ms("wall_ms"),
            apply_wall: ms("apply_ms"),
            critical: ms("critical_ms"),
            google: n("google"),
            kube: n("kube"),
            mutating: n("mutating"),
            peak_kib: v["peak_kib"].as_u64().unwrap(),
        }
    }
}

/// Runs `asm COMMAND --cluster … FLAGS --yes -o json` in-process against `served`.
async fn run_command(
    served: &Served,
    log: &Path,
    clusters: usize,
    command: &str,
    flags: &[&str],
) -> Run {
    let seen = request_log::read(log).unwrap_or_default().len();
    let mut args: Vec<String> = vec!["asm".into(), command.into()];
    args.extend(served.cluster_args());
    args.extend(flags.iter().map(|f| f.to_string()));
    args.extend(["--yes", "-o", "json"].map(String::from));
    let env = Environment::with_vars(served.exports.clone());
    let out = Captured::default();
    reset_peak();
    let started = Instant::now();
    let code = asm::run(args, env, out.printer()).await;
    let wall = started.elapsed();
    let peak = peak_kib();
    assert_eq!(code, 0, "{command}: {}", out.stderr_text());
    let v: Value = serde_json::from_str(&out.stdout_text()).unwrap();
    assert_eq!(v["result"]["status"], "applied", "{command}");
    assert_eq!(
        v["result"]["remaining_changes"], 0,
        "{command} converged in one run"
    );
    let reqs = request_log::read(log).unwrap();
    let reqs = &reqs[seen..];
    Run {
        clusters,
        command: command.to_string(),
        wall,
        apply_wall: Duration::from_millis(v["result"]["wall_ms"].as_u64().unwrap()),
        critical: Duration::from_millis(v["critical_path_ms"].as_u64().unwrap()),
        google: reqs.iter().filter(|r| r.server == "google").count(),
        kube: reqs.iter().filter(|r| r.server != "google").count(),
        mutating: reqs.iter().filter(|r| r.is_mutating()).count(),
        peak_kib: peak,
    }
}

async fn run_once(clusters: usize) -> Vec<Run> {
    let dir = std::env::temp_dir().join(format!(
        "asm-bench-commands-{}-{clusters}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("requests.jsonl");
    let _ = std::fs::remove_file(&log);
    let served = Served::start(&format!("fleet-{clusters}"), &INSTALLED, &log);
    assert_eq!(served.cluster_args().len(), 2 * clusters);
    let mut runs = Vec::new();
    for (command, flags) in COMMANDS {
        runs.push(run_command(&served, &log, clusters, command, flags).await);
    }
    drop(served);
    let _ = std::fs::remove_dir_all(&dir);
    runs
}

/// Set in the child that measures one cluster count.
const ONE: &str = "ASM_BENCH_COMMANDS_CLUSTERS";

/// Measures one cluster count in a fresh process of this bench, so that each run's peak
/// memory starts from a clean heap.
fn measure_in_child(clusters: usize) -> Vec<Run> {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(ONE, clusters.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| Run::from_json(clusters, r))
        .collect()
}

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(n) = std::env::var(ONE) {
        let runs = rt.block_on(run_once(n.parse().unwrap()));
        println!("{}", json!(runs.iter().map(Run::json).collect::<Vec<_>>()));
        return;
    }
    println!(
        "{:>8} {:>16} {:>9} {:>9} {:>9} {:>7} {:>6} {:>8} {:>12} {:>9}",
        "clusters",
        "command",
        "wall",
        "apply",
        "critical",
        "google",
        "kube",
        "mutating",
        "apply/crit",
        "peak MiB"
    );
    let mut runs = Vec::new();
    for clusters in [1usize, 10, 50] {
        for r in measure_in_child(clusters) {
            println!(
                "{:>8} {:>16} {:>8.2}s {:>8.2}s {:>8.2}s {:>7} {:>6} {:>8} {:>12.2} {:>9.1}",
                r.clusters,
                r.command,
                r.wall.as_secs_f64(),
                r.apply_wall.as_secs_f64(),
                r.critical.as_secs_f64(),
                r.google,
                r.kube,
                r.mutating,
                r.apply_wall.as_secs_f64() / r.critical.as_secs_f64().max(1e-9),
                r.peak_kib as f64 / 1024.0,
            );
            runs.push(r);
        }
    }
    for (command, _) in COMMANDS {
        let of = |n: usize| {
            runs.iter()
                .find(|r| r.command == command && r.clusters == n)
                .unwrap()
        };
        let one = of(1);
        for n in [10usize, 50] {
            let many = of(n);
            println!(
                "{command}: {n} clusters vs 1: wall ×{:.2}, requests ×{:.2}, peak memory ×{:.2}",
                many.wall.as_secs_f64() / one.wall.as_secs_f64(),
                (many.google + many.kube) as f64 / (one.google + one.kube) as f64,
                many.peak_kib as f64 / one.peak_kib.max(1) as f64,
            );
        }
    }
}
