//! What the end-to-end benchmarks share: a sandbox served by a child `asm sandbox serve`
//! process with 20 ms latency, and the peak memory of the measuring process.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A sandbox served by a child `asm sandbox serve` process.
pub struct Served {
    child: Child,
    pub exports: Vec<(String, String)>,
}

impl Served {
    /// Serves `scenario` tuned with `sets` (`--set KEY=VALUE`), 20 ms latency on every
    /// request, logging requests to `log`.
    pub fn start(scenario: &str, sets: &[(&str, &str)], log: &Path) -> Served {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_asm"));
        cmd.args(["sandbox", "serve", "--scenario", scenario]);
        for (k, v) in sets {
            cmd.arg("--set").arg(format!("{k}={v}"));
        }
        let mut child = cmd
            .args(["--latency-ms", "20", "--request-log"])
            .arg(log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut exports = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) else {
                continue;
            };
            let v = v.trim_matches('\'').replace("'\\''", "'");
            let last = k == "ASM_SANDBOX_CLUSTERS";
            exports.push((k.to_string(), v));
            if last {
                break;
            }
        }
        Served { child, exports }
    }

    /// An exported variable.
    pub fn var(&self, k: &str) -> &str {
        self.exports
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    /// `--cluster PROJECT/LOCATION/NAME` for every cluster served.
    pub fn cluster_args(&self) -> Vec<String> {
        let project = self.var("ASM_SANDBOX_PROJECT");
        let location = self.var("ASM_SANDBOX_LOCATION");
        self.var("ASM_SANDBOX_CLUSTERS")
            .split_whitespace()
            .flat_map(|c| ["--cluster".to_string(), format!("{project}/{location}/{c}")])
            .collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmHWM` (peak resident set) of this process in KiB.
pub fn peak_kib() -> u64 {
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
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
