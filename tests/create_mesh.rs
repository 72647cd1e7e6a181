//! `asm create-mesh` end to end: N×(N−1) secrets, convergence, a cluster added later,
//! `--verify`, bad input, and secrets that stay secret.

#![allow(clippy::unwrap_used)]

use std::process::Output;

use serde_json::Value;

use crate::install::{all_clusters, asm, fast};
use crate::remote_secret::token_of;
use crate::support::{TestSandbox, assert_success, stderr, stdout};

fn mesh(sb: &TestSandbox, clusters: &[String], extra: &[&str]) -> Output {
    let mut args = vec!["create-mesh".to_string()];
    args.extend(clusters.iter().cloned());
    args.extend(extra.iter().map(|s| s.to_string()));
    asm(sb, &args)
}

fn plan(sb: &TestSandbox, clusters: &[String]) -> Value {
    let o = mesh(sb, clusters, &["--dry-run", "-o", "json"]);
    assert_success(&o, "create-mesh --dry-run -o json");
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn secret_actions(plan: &Value) -> Vec<String> {
    let mut v: Vec<String> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .filter(|id| id.contains("/remote-secret-"))
        .collect();
    v.sort();
    v
}

fn changes(plan: &Value) -> u64 {
    let s = &plan["summary"];
    s["create"].as_u64().unwrap() + s["update"].as_u64().unwrap() + s["delete"].as_u64().unwrap()
}

#[test]
fn fleet3_six_secrets_then_nothing_and_verify_passes() {
    let sb = TestSandbox::with(fast("fleet-3"));
    let all = all_clusters(&sb);
    let p = plan(&sb, &all);
    assert_eq!(secret_actions(&p).len(), 6, "{p:#}");
    assert!(
        sb.mutating_requests().is_empty(),
        "{:#?}",
        sb.mutating_requests()
    );

    let o = mesh(&sb, &all, &["--yes", "--verify"]);
    assert_success(&o, "create-mesh --yes --verify");
    assert!(stdout(&o).contains("Verified: 6 of 6"), "{}", stdout(&o));
    for c in ["cluster-1", "cluster-2", "cluster-3"] {
        assert!(
            stdout(&o).contains(&format!("asm-fleet/us-central1-c/{c}: 2 secrets applied")),
            "{}",
            stdout(&o)
        );
    }

    let p = plan(&sb, &all);
    assert_eq!(changes(&p), 0, "{p:#}");
    assert_eq!(p["summary"]["wait"], 0);

    // A re-run with --verify changes nothing and still verifies.
    let before = sb.mutating_requests().len();
    let o = mesh(&sb, &all, &["--yes", "--verify", "-o", "json"]);
    assert_success(&o, "re-run");
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["result"]["status"], "applied");
    assert_eq!(v["result"]["verify"].as_array().unwrap().len(), 6);
    assert!(
        v["result"]["verify"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["ok"] == true)
    );
    let writes: Vec<_> = sb.mutating_requests().into_iter().skip(before).collect();
    assert!(
        writes
            .iter()
            .all(|r| r.path.contains("selfsubjectaccessreviews")),
        "{writes:#?}"
    );
}

#[test]
fn a_cluster_added_later_gets_and_gives_only_the_missing_secrets() {
    let sb = TestSandbox::with(fast("fleet-3"));
    let all = all_clusters(&sb);
    let first_two = all[..4].to_vec();
    let o = mesh(&sb, &first_two, &["--yes"]);
    assert_success(&o, "create-mesh with 2 clusters");
    assert_eq!(changes(&plan(&sb, &first_two)), 0);

    let p = plan(&sb, &all);
    assert_eq!(
        secret_actions(&p),
        vec![
            "cluster-1/remote-secret-cluster-3",
            "cluster-2/remote-secret-cluster-3",
            "cluster-3/remote-secret-cluster-1",
            "cluster-3/remote-secret-cluster-2",
        ]
    );
    // Nothing of clusters 1 and 2 besides the secrets they receive.
    for a in p["actions"].as_array().unwrap() {
        let id = a["id"].as_str().unwrap();
        assert!(
            id.starts_with("cluster-3/") || id.contains("/remote-secret-cluster-3"),
            "{id}"
        );
    }
    let o = mesh(&sb, &all, &["--yes", "--verify"]);
    assert_success(&o, "create-mesh with 3 clusters");
    assert_eq!(changes(&plan(&sb, &all)), 0);
}

#[test]
fn bad_input_exits_2_with_zero_requests() {
    let sb = TestSandbox::with(fast("fleet-2"));
    let cases = [
        vec!["--cluster", "asm-fleet/us-central1-c/cluster-1"],
        vec![
            "--cluster",
            "asm-fleet/us-central1-c/Cluster-1",
            "--cluster",
            "asm-fleet/us-central1-c/cluster-2",
        ],
        vec![
            "--cluster",
            "asm-fleet/us-central1-c/cluster-1",
            "--cluster",
            "asm-fleet/us-central1-c/cluster-1",
        ],
        vec!["--all-memberships"],
        vec![
            "--cluster",
            "asm-fleet/us-central1-c/cluster-1",
            "--cluster",
            "asm-fleet/us-central1-c/cluster-2",
            "--timeout",
            "soon",
        ],
    ];
    // The plan flags every changing command shares, with the rule each breaks.
    let two = [
        "--cluster",
        "asm-fleet/us-central1-c/cluster-1",
        "--cluster",
        "asm-fleet/us-central1-c/cluster-2",
    ];
    let plan_flags: [(&[&str], &str); 2] = [
        (
            &["--detailed-exitcode"],
            "--detailed-exitcode applies to a plan only",
        ),
        (
            &["--plan-out", "/nonexistent-dir/plan.json"],
            "--plan-out \"/nonexistent-dir/plan.json\": directory",
        ),
    ];
    for args in cases {
        let o = mesh(
            &sb,
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &[],
        );
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    for (extra, rule) in plan_flags {
        let args: Vec<String> = two.iter().chain(extra).map(|s| s.to_string()).collect();
        let o = mesh(&sb, &args, &[]);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(rule), "{extra:?}: {}", stderr(&o));
    }
    assert!(sb.requests().is_empty(), "{:#?}", sb.requests());
}

#[test]
fn refuses_without_yes_off_a_terminal() {
    let sb = TestSandbox::with(fast("fleet-2"));
    let o = mesh(&sb, &all_clusters(&sb), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--yes"));
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn all_memberships_and_register() {
    let sb = TestSandbox::with(fast("fleet-2").set("service.gkehub", "enabled"));
    // Nothing registered yet: --all-memberships finds nothing.
    let o = mesh(
        &sb,
        &[],
        &["--fleet-id", "asm-fleet", "--all-memberships", "--dry-run"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let mut reg = all_clusters(&sb);
    reg.extend(["--fleet-id".to_string(), "asm-fleet".to_string()]);
    let o = mesh(&sb, &reg, &["--register", "--yes"]);
    assert_success(&o, "--register");
    assert!(stderr(&o).contains("Registered cluster"), "{}", stderr(&o));
    let o = mesh(
        &sb,
        &[],
        &[
            "--fleet-id",
            "asm-fleet",
            "--all-memberships",
            "--dry-run",
            "-o",
            "json",
        ],
    );
    assert_success(&o, "--all-memberships");
    let p: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(changes(&p), 0, "{p:#}");
}

/// `CLUSTERS --fleet-id asm-fleet --register`.
fn register_args(sb: &TestSandbox) -> Vec<String> {
    let mut v = all_clusters(sb);
    v.extend(["--fleet-id", "asm-fleet", "--register"].map(String::from));
    v
}

fn action<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no action {id} in {plan:#}"))
}

fn is_membership_create(r: &asm_sim::request_log::RequestRecord) -> bool {
    r.method == "POST" && r.path.contains("/memberships?")
}

#[test]
fn register_dry_run_plans_memberships_and_sends_only_reads() {
    let sb = TestSandbox::with(
        fast("fleet-2")
            .set("service.gkehub", "enabled")
            .set("cluster.registered", "false"),
    );
    let args = register_args(&sb);
    let o = mesh(&sb, &args, &["--dry-run", "-o", "json"]);
    assert_success(&o, "--register --dry-run -o json");
    let p: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(p["schema"], "asm.plan/v1");
    for c in ["cluster-1", "cluster-2"] {
        let a = action(&p, &format!("{c}/membership"));
        assert_eq!(a["op"], "create", "{a:#}");
        assert_eq!(a["cluster"], format!("asm-fleet/us-central1-c/{c}"));
        assert_eq!(a["target"]["api"], "gkehub.googleapis.com/v1");
        assert_eq!(a["target"]["kind"], "Membership");
        assert_eq!(
            a["target"]["name"],
            format!("projects/asm-fleet/locations/us-central1/memberships/{c}")
        );
        assert_eq!(
            a["reason"],
            format!("cluster {c} is not a member of fleet asm-fleet")
        );
        let check = p["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| {
                k["code"] == "ASM-C204" && k["cluster"] == format!("asm-fleet/us-central1-c/{c}")
            })
            .unwrap();
        assert_eq!(check["status"], "fix", "{check:#}");
    }
    // Every remote secret waits for the registration of both its clusters.
    for (target, source) in [("cluster-1", "cluster-2"), ("cluster-2", "cluster-1")] {
        let deps = &action(&p, &format!("{target}/remote-secret-{source}"))["depends_on"];
        for c in [target, source] {
            assert!(
                deps.as_array()
                    .unwrap()
                    .contains(&Value::from(format!("{c}/membership"))),
                "{deps}"
            );
        }
    }
    assert_eq!(p["summary"]["create"], 14, "{p:#}");
    // The text plan shows them too.
    let o = mesh(&sb, &args, &["--dry-run"]);
    assert_success(&o, "--register --dry-run");
    let text = stdout(&o);
    for c in ["cluster-1", "cluster-2"] {
        assert!(
            text.contains(&format!(
                "+ {c}/membership: Would register cluster {c} to fleet asm-fleet as us-central1/{c}"
            )),
            "{text}"
        );
    }
    assert!(
        text.contains("gkehub.googleapis.com/v1 Membership projects/asm-fleet/locations/us-central1/memberships/cluster-1"),
        "{text}"
    );
    assert!(text.contains("Plan: 14 to add"), "{text}");
    assert!(!stderr(&o).contains("Register"), "{}", stderr(&o));
    assert!(
        sb.mutating_requests().is_empty(),
        "{:#?}",
        sb.mutating_requests()
    );
    assert!(
        sb.requests()
            .iter()
            .any(|r| r.path.contains("/memberships"))
    );
}

#[test]
fn register_applies_memberships_before_secrets_then_plans_nothing() {
    let sb = TestSandbox::with(
        fast("fleet-2")
            .set("service.gkehub", "enabled")
            .set("cluster.registered", "false"),
    );
    let args = register_args(&sb);
    let o = mesh(&sb, &args, &["--yes", "-o", "json"]);
    assert_success(&o, "--register --yes -o json");
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["result"]["status"], "applied", "{v:#}");
    assert!(action(&v, "cluster-1/membership")["duration_ms"].is_u64());
    assert!(
        stderr(&o)
            .contains("Registered cluster cluster-2 to fleet asm-fleet as us-central1/cluster-2"),
        "{}",
        stderr(&o)
    );
    // Both registrations finished before the first remote secret was written.
    let writes = sb.mutating_requests();
    let registrations: Vec<_> = writes.iter().filter(|r| is_membership_create(r)).collect();
    assert_eq!(registrations.len(), 2, "{writes:#?}");
    let last_registration = registrations.iter().map(|r| r.ts).fold(0.0, f64::max);
    let first_secret = writes
        .iter()
        .filter(|r| r.path.contains("/secrets/istio-remote-secret-"))
        .map(|r| r.ts)
        .fold(f64::MAX, f64::min);
    assert!(first_secret < f64::MAX, "{writes:#?}");
    assert!(last_registration < first_secret, "{writes:#?}");

    // A re-run plans nothing: the clusters are members, the secrets are there.
    let o = mesh(&sb, &args, &["--dry-run", "-o", "json"]);
    assert_success(&o, "re-run --dry-run");
    let p: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(changes(&p), 0, "{p:#}");
    assert_eq!(p["summary"]["wait"], 0);
    let registered = p["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["code"] == "ASM-C204" && k["status"] == "ok")
        .count();
    assert_eq!(registered, 2, "{p:#}");
    let before = sb.mutating_requests().len();
    let o = mesh(&sb, &args, &["--yes"]);
    assert_success(&o, "re-run --yes");
    assert_eq!(sb.mutating_requests().len(), before);
}

#[test]
fn register_only_what_is_not_registered() {
    let sb = TestSandbox::with(
        fast("fleet-2")
            .set("service.gkehub", "enabled")
            .set("cluster.cluster-1.registered", "true")
            .set("cluster.cluster-2.registered", "false"),
    );
    let p = {
        let o = mesh(&sb, &register_args(&sb), &["--dry-run", "-o", "json"]);
        assert_success(&o, "--register --dry-run");
        serde_json::from_str::<Value>(&stdout(&o)).unwrap()
    };
    let ids: Vec<&str> = p["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["target"]["kind"] == "Membership")
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["cluster-2/membership"], "{p:#}");
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn register_refuses_a_cluster_without_workload_identity() {
    let sb = TestSandbox::with(
        fast("fleet-2")
            .set("service.gkehub", "enabled")
            .set("cluster.registered", "false")
            .set("cluster.cluster-2.workload_identity", "false"),
    );
    for extra in [&["--dry-run"][..], &["--yes"]] {
        let o = mesh(&sb, &register_args(&sb), extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("workload identity is off"), "{err}");
        assert!(err.contains("asm-fleet/us-central1-c/cluster-2"), "{err}");
        assert!(
            err.contains("asm install --managed --enable-gcp-components"),
            "{err}"
        );
        assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    }
    assert!(
        sb.mutating_requests().is_empty(),
        "{:#?}",
        sb.mutating_requests()
    );
}

#[test]
fn tokens_never_reach_logs_plans_or_errors() {
    let sb = TestSandbox::with(fast("fleet-2"));
    let all = all_clusters(&sb);
    let mut seen = String::new();
    for extra in [
        &["--dry-run", "-o", "json", "-v"][..],
        &["--dry-run", "-v"],
        &["--yes", "-v", "--verify"],
        &["--yes", "-v", "-o", "json", "--verify"],
        &["--dry-run", "-o", "json"],
    ] {
        let o = mesh(&sb, &all, extra);
        assert_success(&o, &format!("{extra:?}"));
        seen.push_str(&stdout(&o));
        seen.push_str(&stderr(&o));
    }
    // The tokens the remote secrets carry (create-remote-secret prints the same ones).
    let project = sb.sandbox().scenario.project_id.clone();
    let mut tokens = Vec::new();
    for c in &sb.sandbox().clusters {
        let o = asm(
            &sb,
            &[
                "create-remote-secret".to_string(),
                "--context".to_string(),
                c.context_name(&project),
            ],
        );
        assert_success(&o, "create-remote-secret");
        assert!(!stderr(&o).contains(&token_of(&stdout(&o))));
        tokens.push(token_of(&stdout(&o)));
    }
    for t in &tokens {
        assert!(!seen.contains(t.as_str()), "a token leaked");
        // Not even a recognisable piece of it (the JWT payload).
        let payload = t.split('.').nth(1).unwrap();
        assert!(!seen.contains(payload), "a token payload leaked");
    }
    assert!(
        !seen.contains(sb.sandbox().token()),
        "the Google token leaked"
    );
}

#[test]
fn snapshot_json_plan_fleet2() {
    let sb = TestSandbox::with(fast("fleet-2"));
    let p = plan(&sb, &all_clusters(&sb));
    let mut text = serde_json::to_string_pretty(&p).unwrap();
    for c in &sb.sandbox().clusters {
        text = text.replace(&c.endpoint, "[ENDPOINT]");
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    insta::assert_json_snapshot!("create_mesh_fleet2_json_plan", v);
}

#[test]
fn snapshot_text_plan_fleet2() {
    let sb = TestSandbox::with(fast("fleet-2"));
    let o = mesh(&sb, &all_clusters(&sb), &["--dry-run"]);
    assert_success(&o, "dry run");
    let mut text = stdout(&o);
    for c in &sb.sandbox().clusters {
        text = text.replace(&c.endpoint, "[ENDPOINT]");
    }
    insta::assert_snapshot!("create_mesh_fleet2_text_plan", text);
}
