//! What the end-to-end benchmarks share: a sandbox served by a child process.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A sandbox served by a child `asm sandbox serve` process.
pub struct Served {
    child: Child,
    /// `asm sandbox serve`'s exports.
    pub exports: Vec<(String, String)>,
}

impl Served {
    /// Serves `scenario` tuned with `sets` (`KEY=VALUE`), 20 ms latency on every request,
    /// its request log in `log`.
    pub fn start(scenario: &str, sets: &[&str], log: &Path) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_asm"))
            .args(["sandbox", "serve", "--scenario", scenario])
            .args(sets.iter().flat_map(|s| ["--set", s]))
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

    /// The value of export `k`.
    pub fn var(&self, k: &str) -> &str {
        self.exports
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
