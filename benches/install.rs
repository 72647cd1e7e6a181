//! End-to-end benchmark of `asm install --managed --enable-all --yes` against asm-sim with
//! 20 ms latency injected on every request: 1 cluster and 10 clusters (`fleet-N`), automatic
//! and revision management. Reports wall time, requests, the plan's critical path (measured
//! action durations) and the ratio wall / critical path, then 10 clusters vs 1.
//!
//! `cargo bench --bench install` (asm runs in-process: no process spawn in the measurement).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use asm::environment::Environment;
use asm::output::Captured;
use asm_sim::{Sandbox, SimConfig, request_log};
use serde_json::Value;

struct Run {
    clusters: usize,
    management: &'static str,
    wall: Duration,
    apply_wall: Duration,
    critical: Duration,
    google: usize,
    kube: usize,
    mutating: usize,
}

async fn run_once(clusters: usize, management: &'static str) -> Run {
    let dir = std::env::temp_dir().join(format!(
        "asm-bench-{}-{clusters}-{management}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("requests.jsonl");
    let _ = std::fs::remove_file(&log);
    let config = SimConfig::new(format!("fleet-{clusters}"))
        .latency_ms(20)
        .request_log(&log);
    let sandbox = Sandbox::start(config).await.unwrap();
    let mut args: Vec<String> = vec!["asm".into(), "install".into(), "--managed".into()];
    for c in &sandbox.clusters {
        args.push("--cluster".into());
        args.push(format!(
            "{}/{}/{}",
            sandbox.scenario.project_id, c.location, c.name
        ));
    }
    args.extend(
        [
            "--enable-all",
            "--management",
            management,
            "--yes",
            "-o",
            "json",
        ]
        .map(String::from),
    );
    let env = Environment::with_vars(sandbox.exports());
    let out = Captured::default();
    let started = Instant::now();
    let code = asm::run(args, env, out.printer()).await;
    let wall = started.elapsed();
    assert_eq!(code, 0, "{}", out.stderr_text());
    let v: Value = serde_json::from_str(&out.stdout_text()).unwrap();
    let reqs = request_log::read(&log).unwrap();
    sandbox.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        clusters,
        management,
        wall,
        apply_wall: Duration::from_millis(v["result"]["wall_ms"].as_u64().unwrap()),
        critical: Duration::from_millis(v["critical_path_ms"].as_u64().unwrap()),
        google: reqs.iter().filter(|r| r.server == "google").count(),
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
        "{:>8} {:>10} {:>9} {:>9} {:>9} {:>7} {:>6} {:>8} {:>12}",
        "clusters",
        "management",
        "wall",
        "apply",
        "critical",
        "google",
        "kube",
        "mutating",
        "apply/crit"
    );
    let mut runs = Vec::new();
    for management in ["automatic", "revision"] {
        for clusters in [1usize, 10] {
            let r = rt.block_on(run_once(clusters, management));
            println!(
                "{:>8} {:>10} {:>8.2}s {:>8.2}s {:>8.2}s {:>7} {:>6} {:>8} {:>12.2}",
                r.clusters,
                r.management,
                r.wall.as_secs_f64(),
                r.apply_wall.as_secs_f64(),
                r.critical.as_secs_f64(),
                r.google,
                r.kube,
                r.mutating,
                r.apply_wall.as_secs_f64() / r.critical.as_secs_f64().max(1e-9),
            );
            runs.push(r);
        }
    }
    for management in ["automatic", "revision"] {
        let one = runs
            .iter()
            .find(|r| r.management == management && r.clusters == 1)
            .unwrap();
        let ten = runs
            .iter()
            .find(|r| r.management == management && r.clusters == 10)
            .unwrap();
        println!(
            "{management}: 10 clusters vs 1: wall ×{:.2}, requests ×{:.2}",
            ten.wall.as_secs_f64() / one.wall.as_secs_f64(),
            (ten.google + ten.kube) as f64 / (one.google + one.kube) as f64
        );
    }
}
