//! Installs at fleet scale: the Google requests a 50-cluster install sends (polling reads the
//! fleet once per poll, not once per cluster), the simulated per-minute quotas, and seeded
//! installs under injected 503s and dropped connections.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use std::process::Stdio;

use asm::environment::Environment;
use asm::gcp::{GcpClients, RetryPolicy, auth};
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
    let throttled = google.iter().filter(|r| r.status == 429).count();
    assert_eq!(throttled, 0, "{:#?}", google_breakdown(&sb));
    assert!(
        google.len() <= 400,
        "{} Google requests: {:#?}",
        google.len(),
        google_breakdown(&sb)
    );
}

/// How many seeds the fault trial runs (`ASM_FAULT_SEEDS`, default 6: each install takes
/// seconds; the trial is 20).
fn fault_seeds() -> u64 {
    std::env::var("ASM_FAULT_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

/// The user trial: seeded installs of `fleet-3` under 10 % Google and Kubernetes
/// 503s and 3 % dropped connections, one invocation each, all converge: exit 0, every
/// cluster labelled and registered once, the fleet feature created once.
#[test]
fn fleet_3_installs_converge_in_one_invocation_under_503s_and_dropped_connections() {
    let seeds = fault_seeds();
    let mut converged = 0;
    let mut failures = Vec::new();
    for seed in 1..=seeds {
        let config = crate::install::fast("fleet-3")
            .fault("*:503,rate=0.1")
            .unwrap()
            .fault("*:drop,rate=0.03")
            .unwrap()
            .seed(seed);
        let sb = TestSandbox::with(config);
        let o = crate::install::install(&sb, &all_clusters(&sb), &["--yes"]);
        let err = crate::support::stderr(&o);
        if !o.status.success() {
            let out = crate::support::stdout(&o);
            failures.push(format!("seed {seed}: {:?}\n{out}\n{err}", o.status.code()));
            continue;
        }
        let (memberships, labelled, feature) = sb.block_on(end_state(&sb));
        assert_eq!(memberships, 3, "seed {seed}: memberships");
        assert_eq!(labelled, 3, "seed {seed}: clusters with mesh_id");
        assert!(feature, "seed {seed}: servicemesh feature");
        converged += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
    assert_eq!(converged, seeds);
}

/// Memberships of the fleet, clusters with a `mesh_id` label, whether the servicemesh
/// feature exists — read with asm's clients under a patient retry policy (the faults apply
/// to these reads too).
async fn end_state(sb: &TestSandbox) -> (usize, usize, bool) {
    let env = Environment::with_vars(sb.env());
    let creds = auth::resolve_credentials(&env, None).await.unwrap();
    let retry = RetryPolicy {
        max_attempts: 30,
        ..RetryPolicy::fast()
    };
    let gcp = GcpClients::new(&env, creds.token, retry).unwrap();
    let project = sb.sandbox().scenario.project_id.clone();
    let memberships = gcp.gkehub.list_memberships(&project).await.unwrap().len();
    let labelled = gcp
        .container
        .list_clusters(&project, None)
        .await
        .unwrap()
        .iter()
        .filter(|c| c.resource_labels.contains_key("mesh_id"))
        .count();
    let feature = gcp
        .gkehub
        .get_feature(&project, "servicemesh")
        .await
        .unwrap()
        .is_some();
    (memberships, labelled, feature)
}

/// Writes whose answer is lost after they were made (the `lost` fault): the fleet feature
/// and membership creates are repeated and answered ALREADY_EXISTS, which is success once the
/// existing resource is read back; the label write is repeated on a stale fingerprint and
/// re-planned from a new read. The install converges with nothing created twice.
#[test]
fn writes_whose_answer_was_lost_are_repeated_safely_and_converge() {
    let config = crate::install::fast("fleet-3")
        .fault("POST /gkehub/*/memberships:lost,rate=0.5")
        .unwrap()
        .fault("POST /gkehub/*/features:lost,rate=0.5")
        .unwrap()
        .fault("POST /container/*:setResourceLabels:lost,rate=0.5")
        .unwrap()
        .seed(3);
    let sb = TestSandbox::with(config);
    let o = crate::install::install(&sb, &all_clusters(&sb), &["--yes"]);
    assert_success(&o, "install under lost answers");
    let (memberships, labelled, feature) = sb.block_on(end_state(&sb));
    assert_eq!((memberships, labelled, feature), (3, 3, true));
    // The repeats happened and were answered as repeats of writes that were made.
    let posts: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| r.server == "google" && r.method == "POST")
        .collect();
    let already = posts
        .iter()
        .filter(|r| {
            r.status == 409 && (r.path.contains("/memberships") || r.path.contains("/features"))
        })
        .count();
    let stale_labels = posts
        .iter()
        .filter(|r| r.status == 400 && r.path.contains(":setResourceLabels"))
        .count();
    assert!(already > 0, "no create was repeated: {posts:#?}");
    assert!(stale_labels > 0, "no label write was repeated: {posts:#?}");
}
