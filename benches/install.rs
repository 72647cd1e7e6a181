//! End-to-end benchmark of `asm install --managed --enable-all --yes` against asm-sim with
//! 20 ms latency injected on every request: 1, 10 and 50 clusters (`fleet-N`), automatic
//! and revision management. Reports wall time, requests, the plan's critical path (measured
//! action durations), the ratio wall / critical path and asm's peak memory, then 10 and 50
//! clusters vs 1 (target for 50: ≤ 2× the wall time of 1).
//!
//! `cargo bench --bench install`. asm runs in-process (no process spawn in the measurement);
//! each run is measured in a fresh process of this bench, and the sandbox runs as a separate
//! `asm sandbox serve` process, so the peak memory reported (`VmHWM` of the measuring
//! process) is asm's own (plus the bench's small harness), not the simulator's API servers.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use std::process::{Command, Stdio};

use asm::environment::Environment;
use asm::output::Captured;
use asm_sim::request_log;
use serde_json::Value;

#[path = "support/mod.rs"]
mod support;
use support::Served;

struct Run {
    clusters: usize,
    management: &'static str,
    wall: Duration,
    apply_wall: Duration,
    critical: Duration,
    google: usize,
    kube: usize,
    mutating: usize,
    /// asm's peak resident set during the run.
    peak_kib: u64,
}

/// `VmHWM` (peak resident set) of this process in KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets `VmHWM` to the current resident set (Linux ≥ 4.0).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn run_once(clusters: usize, management: &'static str) -> Run {
    let dir = std::env::temp_dir().join(format!(
        "asm-bench-{}-{clusters}-{management}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("requests.jsonl");
    let _ = std::fs::remove_file(&log);
    let served = Served::start(&format!("fleet-{clusters}"), &[], &log);
    let project = served.var("ASM_SANDBOX_PROJECT").to_string();
    let location = served.var("ASM_SANDBOX_LOCATION").to_string();
    let names: Vec<String> = served
        .var("ASM_SANDBOX_CLUSTERS")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(names.len(), clusters);
    let mut args: Vec<String> = vec!["asm".into(), "install".into(), "--managed".into()];
    for c in &names {
        args.push("--cluster".into());
        args.push(format!("{project}/{location}/{c}"));
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
    let env = Environment::with_vars(served.exports.clone());
    let out = Captured::default();
    reset_peak();
    let started = Instant::now();
    let code = asm::run(args, env, out.printer()).await;
    let wall = started.elapsed();
    let peak = peak_kib();
    assert_eq!(code, 0, "{}", out.stderr_text());
    let v: Value = serde_json::from_str(&out.stdout_text()).unwrap();
    drop(served);
    let reqs = request_log::read(&log).unwrap();
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
        peak_kib: peak,
    }
}

/// Set in the child that measures one run: `CLUSTERS:MANAGEMENT`.
const ONE: &str = "ASM_BENCH_ONE";

/// Runs one measurement in a fresh process of this bench, so that each run's peak memory
/// starts from a clean heap (freed memory is not always returned to the system).
fn measure_in_child(clusters: usize, management: &'static str) -> Run {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(ONE, format!("{clusters}:{management}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ms = |k: &str| Duration::from_millis(v[k].as_u64().unwrap());
    let n = |k: &str| v[k].as_u64().unwrap() as usize;
    Run {
        clusters,
        management,
        wall: ms("wall_ms"),
        apply_wall: ms("apply_ms"),
        critical: ms("critical_ms"),
        google: n("google"),
        kube: n("kube"),
        mutating: n("mutating"),
        peak_kib: v["peak_kib"].as_u64().unwrap(),
    }
}

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(one) = std::env::var(ONE) {
        let (n, management) = one.split_once(':').unwrap();
        let management = if management == "revision" {
            "revision"
        } else {
            "automatic"
        };
        let r = rt.block_on(run_once(n.parse().unwrap(), management));
        let ms = |d: Duration| d.as_millis() as u64;
        println!(
            "{}",
            serde_json::json!({
                "wall_ms": ms(r.wall), "apply_ms": ms(r.apply_wall), "critical_ms": ms(r.critical),
                "google": r.google, "kube": r.kube, "mutating": r.mutating, "peak_kib": r.peak_kib,
            })
        );
        return;
    }
    println!(
        "{:>8} {:>10} {:>9} {:>9} {:>9} {:>7} {:>6} {:>8} {:>12} {:>9}",
        "clusters",
        "management",
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
    for management in ["automatic", "revision"] {
        for clusters in [1usize, 10, 50] {
            let r = measure_in_child(clusters, management);
            println!(
                "{:>8} {:>10} {:>8.2}s {:>8.2}s {:>8.2}s {:>7} {:>6} {:>8} {:>12.2} {:>9.1}",
                r.clusters,
                r.management,
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
    for management in ["automatic", "revision"] {
        let one = runs
            .iter()
            .find(|r| r.management == management && r.clusters == 1)
            .unwrap();
        for n in [10usize, 50] {
            let many = runs
                .iter()
                .find(|r| r.management == management && r.clusters == n)
                .unwrap();
            let ratio = many.wall.as_secs_f64() / one.wall.as_secs_f64();
            println!(
                "{management}: {n} clusters vs 1: wall ×{ratio:.2}, requests ×{:.2}, peak memory ×{:.2}{}",
                (many.google + many.kube) as f64 / (one.google + one.kube) as f64,
                many.peak_kib as f64 / one.peak_kib.max(1) as f64,
                if n == 50 {
                    if ratio <= 2.0 {
                        " (target ≤ 2×: met)"
                    } else {
                        " (target ≤ 2×: MISSED)"
                    }
                } else {
                    ""
                }
            );
        }
    }
}
