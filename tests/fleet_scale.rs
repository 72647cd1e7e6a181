//! Installs at fleet scale: the Google requests a 50-cluster install sends (polling reads the
//! fleet once per poll, not once per cluster), the simulated per-minute quotas, and seeded
//! installs under injected 503s and dropped connections.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use std::process::Stdio;

use asm_sim::SimConfig;

use crate::install::all_clusters;
use crate::support::{TestSandbox, assert_success};

/// Google requests by `METHOD path-without-ids` (for failure messages).
fn google_breakdown(sb: &TestSandbox) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for r in sb.requests().iter().filter(|r| r.server == "google") {
        let path = r.path.split('?').next().unwrap_or_default();
        let shape: Vec<&str> = path
            .split('/')
            .map(|seg| {
                if seg.starts_with("cluster-") || seg.starts_with("operation") || seg.len() > 24 {
                    "*"
                } else {
                    seg
                }
            })
            .collect();
        *by.entry(format!("{} {}", r.method, shape.join("/")))
            .or_insert(0) += 1;
    }
    by
}

/// 50 clusters with the simulator's default durations and quotas, and asm's production
/// retry and polling policies (what a user gets).
#[test]
fn install_of_50_clusters_sends_at_most_400_google_requests_and_none_is_throttled() {
    let sb = TestSandbox::with(SimConfig::new("fleet-50"));
    let o = sb
        .asm()
        .stdin(Stdio::null())
        .args(["install", "--managed"])
        .args(all_clusters(&sb))
        .args(["--enable-all", "--yes"])
        .output()
        .unwrap();
    assert_success(&o, "install fleet-50");
    let google: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| r.server == "google")
        .collect();
    eprintln!("fleet-50 install: {} Google requests", google.len());
    let throttled = google.iter().filter(|r| r.status == 429).count();
    assert_eq!(throttled, 0, "{:#?}", google_breakdown(&sb));
    assert!(
        google.len() <= 400,
        "{} Google requests: {:#?}",
        google.len(),
        google_breakdown(&sb)
    );
}
