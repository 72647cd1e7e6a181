//! `asm install --managed` end to end: the real binary against asm-sim.

#![allow(clippy::unwrap_used)]

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use asm_sim::SimConfig;
use asm_sim::member::MemberCluster;
use serde_json::Value;

use crate::support::{TestSandbox, assert_success, stderr, stdout};

/// `config` with seeded faults on every route, about 10 % of requests in all: 503, 429 and
/// 500 answers and dropped connections.
pub fn mixed_faults(config: SimConfig, seed: u64) -> SimConfig {
    [
        "*:503,rate=0.03",
        "*:429,rate=0.03",
        "*:500,rate=0.02",
        "*:drop,rate=0.02",
    ]
    .iter()
    .fold(config, |c, f| c.fault(f).unwrap())
    .seed(seed)
}

/// A scenario with short simulated durations, so tests take seconds.
pub fn fast(scenario: &str) -> SimConfig {
    SimConfig::new(scenario)
        .set("timing.gke_op_ms", "100")
        .set("timing.hub_op_ms", "100")
        .set("timing.crd_install_ms", "200")
        .set("timing.cpr_ready_ms", "300")
}

/// `-p P -l L -n NAME`.
pub fn target(sb: &TestSandbox, name: &str) -> Vec<String> {
    let s = sb.sandbox();
    vec![
        "-p".into(),
        s.scenario.project_id.clone(),
        "-l".into(),
        s.scenario.location().to_string(),
        "-n".into(),
        name.into(),
    ]
}

/// `--cluster P/L/N` for every cluster of the sandbox.
pub fn all_clusters(sb: &TestSandbox) -> Vec<String> {
    let s = sb.sandbox();
    s.clusters
        .iter()
        .flat_map(|c| {
            [
                "--cluster".to_string(),
                format!("{}/{}/{}", s.scenario.project_id, c.location, c.name),
            ]
        })
        .collect()
}

/// Runs `asm ARGS` in the sandbox (fast retries, no terminal).
pub fn asm(sb: &TestSandbox, args: &[String]) -> Output {
    sb.asm()
        .env("ASM_RETRY_POLICY", "fast")
        .stdin(Stdio::null())
        .args(args)
        .output()
        .expect("asm runs")
}

pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub fn with(base: &[String], extra: &[&str]) -> Vec<String> {
    let mut v = base.to_vec();
    v.extend(strs(extra));
    v
}

/// `asm install --managed TARGET --enable-all EXTRA`.
pub fn install(sb: &TestSandbox, target: &[String], extra: &[&str]) -> Output {
    let mut args = strs(&["install", "--managed"]);
    args.extend(target.iter().cloned());
    args.push("--enable-all".into());
    args.extend(strs(extra));
    asm(sb, &args)
}

/// The dry-run JSON plan.
pub fn plan_json(sb: &TestSandbox, target: &[String], extra: &[&str]) -> Value {
    let o = install(
        sb,
        target,
        &with(&strs(extra), &["--dry-run", "-o", "json"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_success(&o, "dry run");
    serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("one JSON object: {e}\n{}", stdout(&o)))
}

/// Creates, updates and deletes of a JSON plan.
pub fn changes(plan: &Value) -> u64 {
    let s = &plan["summary"];
    s["create"].as_u64().unwrap() + s["update"].as_u64().unwrap() + s["delete"].as_u64().unwrap()
}

#[test]
fn fresh_dry_run_json_plans_changes_with_reads_only() {
    let sb = TestSandbox::with(fast("fresh"));
    let t = target(&sb, "cluster-1");
    let plan = plan_json(&sb, &t, &[]);
    assert_eq!(plan["schema"], "asm.plan/v1");
    assert!(plan["summary"]["create"].as_u64().unwrap() > 0);
    assert!(plan["summary"]["update"].as_u64().unwrap() > 0);
    let ops: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["op"].as_str().unwrap())
        .collect();
    assert!(
        ops.iter()
            .all(|o| ["create", "update", "delete", "wait"].contains(o))
    );
    for a in plan["actions"].as_array().unwrap() {
        for k in ["id", "op", "cluster", "target", "reason", "depends_on"] {
            assert!(a.get(k).is_some(), "action lacks {k}: {a}");
        }
        for k in ["api", "kind", "namespace", "name"] {
            assert!(a["target"].get(k).is_some(), "target lacks {k}: {a}");
        }
    }
    for c in plan["checks"].as_array().unwrap() {
        for k in ["code", "status", "message", "cluster"] {
            assert!(c.get(k).is_some(), "check lacks {k}: {c}");
        }
    }
    assert!(!plan["critical_path"].as_array().unwrap().is_empty());
    assert!(
        sb.mutating_requests().is_empty(),
        "{:#?}",
        sb.mutating_requests()
    );
    assert!(!sb.requests().is_empty());
}

#[test]
fn fresh_install_converges_and_replans_empty() {
    let sb = TestSandbox::with(fast("fresh"));
    let t = target(&sb, "cluster-1");
    let o = install(&sb, &t, &["--yes"]);
    assert_success(&o, "install");
    let out = stdout(&o);
    assert!(
        out.contains("kubectl label namespace NAMESPACE istio-injection- istio.io/rev=asm-managed --overwrite"),
        "{out}"
    );
    assert!(
        out.contains("asm enable-dataplane --namespace NAMESPACE")
            && out.contains("asm install-gateway --namespace GATEWAY_NS")
            && out.contains("  asm migrate --namespace NAMESPACE\n"),
        "the next steps name asm's own commands: {out}"
    );
    // The cluster has a provisioned ControlPlaneRevision.
    let cluster = &sb.sandbox().clusters[0];
    let cpr = cluster
        .api
        .get_object(
            "mesh.cloud.google.com/v1beta1",
            "ControlPlaneRevision",
            Some("istio-system"),
            "asm-managed",
        )
        .expect("ControlPlaneRevision asm-managed");
    assert!(
        cpr["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "ProvisioningFinished" && c["status"] == "True"),
        "{cpr}"
    );
    let before = sb.mutating_requests().len();
    let replan = plan_json(&sb, &t, &[]);
    assert_eq!(changes(&replan), 0, "{replan:#}");
    assert_eq!(sb.mutating_requests().len(), before);
    // And a second real run changes nothing.
    let o = install(&sb, &t, &["--yes"]);
    assert_success(&o, "second install");
    assert_eq!(sb.mutating_requests().len(), before);
}

#[test]
fn fleet_of_three_in_one_command_automatic_and_revision() {
    for management in ["automatic", "revision"] {
        let sb = TestSandbox::with(fast("fleet-3"));
        let t = all_clusters(&sb);
        let extra: Vec<&str> = if management == "revision" {
            vec!["--management", "revision", "--option", "cni-managed"]
        } else {
            vec![]
        };
        let o = install(
            &sb,
            &t,
            &with(&strs(&extra), &["--yes", "-o", "json"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert_success(&o, management);
        let result: Value = serde_json::from_str(&stdout(&o)).expect("one JSON object");
        assert_eq!(result["result"]["status"], "applied");
        assert_eq!(result["result"]["revisions"].as_object().unwrap().len(), 3);
        for c in &sb.sandbox().clusters {
            let cpr = c.api.get_object(
                "mesh.cloud.google.com/v1beta1",
                "ControlPlaneRevision",
                Some("istio-system"),
                "asm-managed",
            );
            assert!(cpr.is_some(), "{management}: {} has no CPR", c.name);
            if management == "revision" {
                let cm = c
                    .api
                    .get_object("v1", "ConfigMap", Some("istio-system"), "asm-options")
                    .expect("asm-options");
                assert_eq!(cm["data"]["ASM_OPTS"], "CNI=on");
            }
        }
        let replan = plan_json(&sb, &t, &extra);
        assert_eq!(changes(&replan), 0, "{management}: {replan:#}");
    }
}

#[test]
fn installed_plans_zero_changes() {
    let sb = TestSandbox::with(fast("installed"));
    let t = target(&sb, "cluster-1");
    for extra in [&[][..], &["--management", "revision"][..]] {
        let plan = plan_json(&sb, &t, extra);
        assert_eq!(changes(&plan), 0, "{plan:#}");
    }
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn bad_inputs_are_rejected_before_any_request() {
    let sb = TestSandbox::with(fast("fresh"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["-p", "Bad_Project", "-l", "us-central1-c", "-n", "c1"],
            "-p/--project",
        ),
        (
            vec!["-p", "asm-fresh", "-l", "uscentral", "-n", "c1"],
            "-l/--location",
        ),
        (
            vec!["-p", "asm-fresh", "-l", "us-central1-c", "-n", "Cluster_1"],
            "-n/--cluster-name",
        ),
        (
            vec!["-p", "asm-fresh", "-l", "us-central1-c"],
            "-n/--cluster-name",
        ),
        (vec!["--cluster", "asm-fresh/us-central1-c"], "--cluster"),
        (
            vec!["--cluster", "asm-fresh/us-central1-c/c1", "-p", "asm-fresh"],
            "--cluster",
        ),
        (
            vec![
                "-p",
                "asm-fresh",
                "-l",
                "us-central1-c",
                "-n",
                "c1",
                "--management",
                "manual",
            ],
            "--management",
        ),
        (
            vec![
                "-p",
                "asm-fresh",
                "-l",
                "us-central1-c",
                "-n",
                "c1",
                "--channel",
                "weekly",
            ],
            "--channel",
        ),
        (
            vec![
                "-p",
                "asm-fresh",
                "-l",
                "us-central1-c",
                "-n",
                "c1",
                "--timeout",
                "soon",
            ],
            "--timeout",
        ),
        (
            vec![
                "-p",
                "asm-fresh",
                "-l",
                "us-central1-c",
                "-n",
                "c1",
                "--management",
                "revision",
                "--option",
                "bogus",
            ],
            "--option",
        ),
        (
            vec![
                "--cluster",
                "asm-fresh/us-central1-c/c1",
                "--cluster",
                "asm-fresh/us-central1-c/c2",
                "--context",
                "x",
            ],
            "--kubeconfig/--context",
        ),
        (
            vec![
                "--cluster",
                "asm-fresh/us-central1-c/c1",
                "--cluster",
                "other-proj/us-central1-c/c2",
            ],
            "--fleet-id",
        ),
    ];
    for (args, named) in cases {
        let mut full = strs(&["install", "--managed"]);
        full.extend(strs(&args));
        full.push("--yes".into());
        let o = asm(&sb, &full);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(named),
            "{args:?} should name {named}: {}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
    }
    // Without --managed.
    let o = asm(
        &sb,
        &with(&target(&sb, "cluster-1"), &[])
            .iter()
            .fold(strs(&["install"]), |mut acc, a| {
                acc.push(a.clone());
                acc
            }),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(sb.requests().is_empty(), "{:#?}", sb.requests());
}

#[test]
fn non_tty_without_yes_refuses_with_exit_2() {
    let sb = TestSandbox::with(fast("fresh"));
    let o = install(&sb, &target(&sb, "cluster-1"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("refusing to change"), "{}", stderr(&o));
    assert!(stderr(&o).contains("without --yes"), "{}", stderr(&o));
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn missing_cluster_blocks_with_exit_3_and_no_changes() {
    let sb = TestSandbox::with(fast("fresh"));
    let o = install(&sb, &target(&sb, "no-such-cluster"), &["--yes"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stdout(&o).contains("ASM-C101"), "{}", stdout(&o));
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn timeout_exits_4() {
    let sb = TestSandbox::with(fast("fresh").set("timing.cpr_ready_ms", "60000"));
    let o = install(
        &sb,
        &target(&sb, "cluster-1"),
        &["--yes", "--timeout", "3s"],
    );
    assert_eq!(o.status.code(), Some(4), "{}\n{}", stdout(&o), stderr(&o));
}

#[test]
fn no_token_in_any_output() {
    let sb = TestSandbox::with(fast("fresh"));
    let token = sb.sandbox().token().to_string();
    let t = target(&sb, "cluster-1");
    for extra in [
        &["--dry-run", "-v"][..],
        &["--dry-run", "-o", "json", "-v"][..],
        &["--yes", "-v"][..],
        &["--yes", "-o", "json", "-v"][..],
    ] {
        let o = install(&sb, &t, extra);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        for (name, text) in [("stdout", stdout(&o)), ("stderr", stderr(&o))] {
            assert!(!text.contains(&token), "{extra:?}: token in {name}");
            assert!(
                !text.contains("ya29."),
                "{extra:?}: token-like text in {name}"
            );
        }
        if extra.contains(&"-v") {
            assert!(stderr(&o).contains("GET "), "-v shows request traces");
        }
    }
}

#[test]
fn faults_on_all_routes_still_converge() {
    let config = fast("fresh").fault("*:503,rate=0.1").unwrap().seed(7);
    let sb = TestSandbox::with(config);
    let t = target(&sb, "cluster-1");
    let mut converged = false;
    for _ in 0..6 {
        let o = install(&sb, &t, &["--yes"]);
        if o.status.success() {
            converged = true;
            break;
        }
    }
    assert!(converged, "install did not converge under 10% faults");
    // Re-plan (still under faults): nothing left to change.
    let mut empty = false;
    for _ in 0..6 {
        let o = install(&sb, &t, &["--dry-run", "-o", "json"]);
        if let Ok(plan) = serde_json::from_str::<Value>(&stdout(&o))
            && o.status.success()
        {
            empty = changes(&plan) == 0;
            break;
        }
    }
    assert!(empty);
}

/// Runs install and SIGKILLs it right after its k-th mutating request reached the sandbox.
fn run_and_kill_after(sb: &TestSandbox, t: &[String], extra: &[&str], k: usize) -> bool {
    let mut args = strs(&["install", "--managed"]);
    args.extend(t.iter().cloned());
    args.push("--enable-all".into());
    args.extend(strs(extra));
    args.push("--yes".into());
    kill_after_write(sb, &args, k)
}

/// Runs `asm ARGS` and SIGKILLs it right after its k-th write ([`TestSandbox::writes`])
/// reached the sandbox; false when it finished first.
pub fn kill_after_write(sb: &TestSandbox, args: &[String], k: usize) -> bool {
    let before = sb.writes().len();
    let mut child = sb
        .asm()
        .env("ASM_RETRY_POLICY", "fast")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("asm starts");
    let started = Instant::now();
    loop {
        if sb.writes().len() >= before + k {
            let _ = child.kill();
            let _ = child.wait();
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("asm neither finished nor reached write {k}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn count_writes_of_a_full_run(extra: &[&str]) -> usize {
    let sb = TestSandbox::with(fast("fresh"));
    let t = target(&sb, "cluster-1");
    let o = install(
        &sb,
        &t,
        &with(&strs(extra), &["--yes"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_success(&o, "reference run");
    sb.writes().len()
}

fn killed_runs_resume(extra: &[&str]) {
    let n = count_writes_of_a_full_run(extra);
    assert!(n >= 5, "a fresh install makes at least 5 changes, saw {n}");
    for k in 1..=n {
        let sb = TestSandbox::with(fast("fresh"));
        let t = target(&sb, "cluster-1");
        let killed = run_and_kill_after(&sb, &t, extra, k);
        assert!(
            killed,
            "k={k}: the run finished before its k-th mutating request"
        );
        let o = install(
            &sb,
            &t,
            &with(&strs(extra), &["--yes"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert_success(&o, &format!("re-run after kill at k={k}"));
        let replan = plan_json(&sb, &t, extra);
        assert_eq!(changes(&replan), 0, "k={k}: {replan:#}");
    }
}

#[test]
fn killed_at_every_write_resumes_automatic() {
    killed_runs_resume(&[]);
}

#[test]
fn killed_at_every_write_resumes_revision() {
    killed_runs_resume(&["--management", "revision", "--option", "cni-managed"]);
}

#[test]
fn text_plan_is_conditional_in_dry_run_and_past_tense_when_applied() {
    let sb = TestSandbox::with(fast("fresh"));
    let t = target(&sb, "cluster-1");
    let o = install(&sb, &t, &["--dry-run"]);
    assert_success(&o, "dry run");
    let out = stdout(&o);
    assert!(out.contains("Would enable 3 APIs"), "{out}");
    assert!(
        out.contains("Plan: 4 to add, 2 to change, 0 to delete, 1 wait."),
        "{out}"
    );
    assert!(!out.contains('\x1b'));
    let o = install(&sb, &t, &["--yes"]);
    assert_success(&o, "apply");
    assert!(stderr(&o).contains("Enabled 3 APIs"), "{}", stderr(&o));
}
