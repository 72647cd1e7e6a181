//! `asm migrate` end to end on the `in-cluster` scenario (ASM 1.9 `asm-191-1` with Mesh CA
//! injecting frontend, backend, legacy and the istio-system gateway), after `asm install
//! --managed`; what moved is checked with the real kubectl.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant};

use asm_sim::SimConfig;
use serde_json::Value;

use crate::install::{asm, fast, install, kill_after_write, strs, target};
use crate::support::{TestSandbox, assert_success, stderr, stdout};

/// The namespaces the scenario meshes, with the revision their pods run.
pub const MESHED: [&str; 3] = ["backend", "frontend", "legacy"];

/// The in-cluster scenario (tuned by `sets`) with the managed control plane installed.
pub fn installed(sets: &[(&str, &str)]) -> TestSandbox {
    let mut config: SimConfig = fast("in-cluster");
    for (k, v) in sets {
        config = config.set(k, v);
    }
    let sb = TestSandbox::with(config);
    let t = target(&sb, "cluster-1");
    assert_success(&install(&sb, &t, &["--yes"]), "asm install --managed");
    sb
}

/// `asm COMMAND -p -l -n cluster-1 EXTRA`.
pub fn run(sb: &TestSandbox, command: &str, extra: &[&str]) -> Output {
    let mut args = strs(&[command]);
    args.extend(target(sb, "cluster-1"));
    args.extend(strs(extra));
    asm(sb, &args)
}

pub fn kubectl_json(sb: &TestSandbox, args: &[&str]) -> Value {
    let o = sb.kubectl(args).unwrap();
    assert_success(&o, &format!("kubectl {}", args.join(" ")));
    serde_json::from_str(&stdout(&o)).unwrap()
}

/// `revision` of a pod's `sidecar.istio.io/status`, as kubectl shows it.
fn injected_by(pod: &Value) -> Option<String> {
    let status = pod["metadata"]["annotations"]["sidecar.istio.io/status"].as_str()?;
    let v: Value = serde_json::from_str(status).unwrap();
    v["revision"].as_str().map(str::to_string)
}

/// Namespace → the revisions of its live pods (uninjected: `-`), sorted; istiod's pods
/// (never injected) left out.
pub fn pod_revisions(sb: &TestSandbox) -> BTreeMap<String, Vec<String>> {
    let pods = kubectl_json(sb, &["get", "pods", "-A", "-o", "json"]);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in pods["items"].as_array().unwrap() {
        if !p["metadata"]["deletionTimestamp"].is_null()
            || p["metadata"]["labels"]["app"] == "istiod"
        {
            continue;
        }
        let ns = p["metadata"]["namespace"].as_str().unwrap().to_string();
        out.entry(ns)
            .or_default()
            .push(injected_by(p).unwrap_or_else(|| "-".into()));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Polls `pod_revisions` until `done` holds (a finished rollout may still be deleting its
/// old pods for a moment).
pub fn settled_pods(
    sb: &TestSandbox,
    done: impl Fn(&BTreeMap<String, Vec<String>>) -> bool,
) -> BTreeMap<String, Vec<String>> {
    let start = Instant::now();
    loop {
        let pods = pod_revisions(sb);
        if done(&pods) || start.elapsed() > Duration::from_secs(30) {
            return pods;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether every pod of every meshed namespace and the gateway runs `revision`.
pub fn all_on(pods: &BTreeMap<String, Vec<String>>, revision: &str) -> bool {
    MESHED.iter().chain(&["istio-system"]).all(|ns| {
        pods.get(*ns)
            .is_some_and(|v| v.iter().all(|r| r == revision))
    })
}

/// Each namespace's injection labels (`istio-injection`, `istio.io/rev`).
pub fn injection_labels(sb: &TestSandbox) -> BTreeMap<String, BTreeMap<String, String>> {
    let list = kubectl_json(sb, &["get", "namespaces", "-o", "json"]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let labels = n["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| *k == "istio-injection" || *k == "istio.io/rev")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (n["metadata"]["name"].as_str().unwrap().to_string(), labels)
        })
        .collect()
}

/// The ingress gateway's ReplicaSets, as kubectl lists them.
pub fn gateway_replicasets(sb: &TestSandbox) -> Vec<Value> {
    let rss = kubectl_json(
        sb,
        &[
            "get",
            "replicasets",
            "-n",
            "istio-system",
            "-l",
            "app=istio-ingressgateway",
            "-o",
            "json",
        ],
    );
    rss["items"].as_array().cloned().unwrap_or_default()
}

/// The gateway's ReplicaSet that has replicas, and its pod template's `istio.io/rev`.
pub fn gateway_replicaset(sb: &TestSandbox) -> (String, String) {
    let rss = gateway_replicasets(sb);
    let active: Vec<&Value> = rss
        .iter()
        .filter(|rs| rs["spec"]["replicas"].as_i64().unwrap_or(0) > 0)
        .collect();
    assert_eq!(active.len(), 1, "{rss:#?}");
    (
        active[0]["metadata"]["name"].as_str().unwrap().to_string(),
        active[0]["spec"]["template"]["metadata"]["labels"]["istio.io/rev"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

fn json_of(o: &Output) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}\n{}", stdout(o)))
}

/// Creates, updates, restarts and deletes of a JSON plan.
pub fn changes(plan: &Value) -> u64 {
    let s = &plan["summary"];
    ["create", "update", "restart", "delete"]
        .iter()
        .map(|k| s[*k].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn migrate_all_namespaces_moves_every_injected_pod_and_the_gateway_and_leaves_nothing_to_migrate() {
    let sb = installed(&[]);
    let before = settled_pods(&sb, |p| all_on(p, "asm-191-1"));
    assert!(all_on(&before, "asm-191-1"), "{before:?}");
    let token = sb.sandbox().token().to_string();

    let dir = sb.dir.path().join("out");
    let o = run(
        &sb,
        "migrate",
        &[
            "--all-namespaces",
            "--yes",
            "-v",
            "-D",
            dir.to_str().unwrap(),
        ],
    );
    assert_success(&o, "asm migrate --all-namespaces");
    // The run report records what each relabel and restart replaced.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let prior = |id: &str| {
        report["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("{id}: {report:#}"))["prior"]
            .clone()
    };
    assert_eq!(
        prior("cluster-1/legacy/labels")["labels"],
        serde_json::json!({"istio-injection": "enabled", "istio.io/rev": null})
    );
    assert_eq!(
        prior("cluster-1/legacy/deployment-monolith/restart")["change"],
        "restarted"
    );
    assert_eq!(
        prior("cluster-1/gateway-istio-system-istio-ingressgateway/revision"),
        serde_json::json!({"change": "rolled_out", "revision": "1",
            "template_labels": {"istio.io/rev": "asm-191-1"}})
    );
    for text in [stdout(&o), stderr(&o)] {
        assert!(!text.contains(&token), "the token leaked: {text}");
    }
    let out = stdout(&o);
    assert!(
        out.contains("Applied: 1 added, 5 changed, 5 restarted"),
        "{out}"
    );

    let pods = settled_pods(&sb, |p| all_on(p, "asm-managed"));
    assert!(all_on(&pods, "asm-managed"), "{pods:?}");
    assert!(
        !pods["batch"].is_empty() && pods["batch"].iter().all(|r| r == "-"),
        "batch is not in the mesh: {pods:?}"
    );
    let labels = injection_labels(&sb);
    for ns in MESHED {
        assert_eq!(
            labels[ns],
            BTreeMap::from([("istio.io/rev".to_string(), "asm-managed".to_string())]),
            "{ns}"
        );
    }
    assert_eq!(gateway_replicaset(&sb).1, "asm-managed");

    let status = run(&sb, "status", &["-o", "json"]);
    assert_success(&status, "asm status -o json");
    let status = json_of(&status);
    assert_eq!(status["migrated"]["met"], true, "{status:#}");
    assert_eq!(status["clusters"][0]["to_migrate"], Value::Array(vec![]));

    let again = run(
        &sb,
        "migrate",
        &["--all-namespaces", "--dry-run", "-o", "json"],
    );
    assert_success(&again, "second migrate, dry run");
    assert_eq!(changes(&json_of(&again)), 0, "{}", stdout(&again));
}

#[test]
fn migrate_dry_run_sends_no_mutating_request_and_shows_every_relabel_and_restart() {
    let sb = installed(&[]);
    let before = sb.mutating_requests().len();
    let text = run(&sb, "migrate", &["--all-namespaces", "--dry-run"]);
    assert_success(&text, "dry run");
    let json = run(
        &sb,
        "migrate",
        &["--all-namespaces", "--dry-run", "-o", "json"],
    );
    assert_success(&json, "dry run, JSON");
    assert_eq!(sb.mutating_requests().len(), before, "a dry run only reads");
    let out = stdout(&text);
    for line in [
        "Would label istio.io/rev=asm-managed on Namespace frontend",
        "Would label istio-injection- istio.io/rev=asm-managed on Namespace legacy",
        "Would restart Deployment backend/payments",
        "Would set pod-template label istio.io/rev=asm-managed on Deployment istio-system/istio-ingressgateway",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    insta::assert_snapshot!("migrate_text_plan", out);
    insta::assert_json_snapshot!("migrate_json_plan", json_of(&json));
}

#[test]
fn migrate_bad_input_exits_2_with_no_request() {
    let sb = TestSandbox::start("in-cluster");
    let cases: [&[&str]; 6] = [
        &[],
        &["--namespace", "Frontend"],
        &["--namespace", "kube-system"],
        &["--all-namespaces", "--to", "asm-191-1"],
        &["--all-namespaces", "--parallel", "0"],
        &["--all-namespaces", "--timeout", "soon"],
    ];
    let before = sb.requests().len();
    for extra in cases {
        let o = run(&sb, "migrate", extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
    }
    let rollback_cases: [&[&str]; 3] = [
        &["--to-revision", "Bad_Rev"],
        &["--detailed-exitcode"],
        &["--plan-out", "/nonexistent-dir/plan.json"],
    ];
    for extra in rollback_cases {
        let o = run(&sb, "rollback", extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
    }
    assert_eq!(sb.requests().len(), before, "no request for bad input");
    assert_eq!(cases.len() + rollback_cases.len(), 9);
}

/// The command line `asm migrate` printed to undo it.
fn printed_rollback(out: &str) -> Vec<String> {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("asm rollback"))
        .unwrap_or_else(|| panic!("no rollback command in:\n{out}"));
    line.split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[test]
fn a_failing_rollout_stops_migrate_at_its_namespace_and_the_printed_rollback_restores() {
    // New pods of backend/payments crash-loop; with a 2 s progress deadline its rollout
    // fails as a real Deployment's does.
    let sb = installed(&[("workload.backend/payments.ready", "false")]);
    let o = sb
        .kubectl(&[
            "patch",
            "deployment",
            "payments",
            "-n",
            "backend",
            "-p",
            r#"{"spec":{"progressDeadlineSeconds":2}}"#,
        ])
        .unwrap();
    assert_success(&o, "kubectl patch");
    let labels_before = injection_labels(&sb);
    let gateway_before = gateway_replicaset(&sb);

    let o = run(&sb, "migrate", &["--all-namespaces", "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("exceeded its progress deadline"), "{err}");
    assert!(
        err.contains("cluster-1/frontend/labels: skipped"),
        "the next namespace is not touched: {err}"
    );
    // backend moved first (alphabetical), frontend and legacy and the gateway did not.
    let labels = injection_labels(&sb);
    assert_eq!(labels["backend"]["istio.io/rev"], "asm-managed");
    assert_eq!(labels["frontend"], labels_before["frontend"]);
    assert_eq!(labels["legacy"], labels_before["legacy"]);
    assert_eq!(gateway_replicaset(&sb), gateway_before);
    let pods = pod_revisions(&sb);
    for ns in ["frontend", "legacy"] {
        assert!(pods[ns].iter().all(|r| r == "asm-191-1"), "{ns}: {pods:?}");
    }

    let args = printed_rollback(&stdout(&o));
    assert_eq!(args.last().map(String::as_str), Some("--yes"), "{args:?}");
    let r = asm(&sb, &args);
    assert_success(&r, "the printed rollback command");
    assert_eq!(injection_labels(&sb), labels_before);
    let pods = settled_pods(&sb, |p| all_on(p, "asm-191-1"));
    assert!(all_on(&pods, "asm-191-1"), "{pods:?}");
    assert_eq!(gateway_replicaset(&sb), gateway_before);
}

/// Runs `asm migrate --all-namespaces --yes` and SIGKILLs it right after its k-th write;
/// false when it finished first.
fn migrate_killed_after(sb: &TestSandbox, k: usize) -> bool {
    let mut args = strs(&["migrate"]);
    args.extend(target(sb, "cluster-1"));
    args.extend(strs(&["--all-namespaces", "--yes"]));
    kill_after_write(sb, &args, k)
}

#[test]
fn killed_at_every_write_migrate_converges_and_rolls_back() {
    let reference = installed(&[]);
    let before = reference.writes().len();
    let o = run(&reference, "migrate", &["--all-namespaces", "--yes"]);
    assert_success(&o, "reference run");
    let n = reference.writes().len() - before;
    drop(reference);
    // The lock, the record, 3 namespaces, 5 restarts, the gateway, the record again, the
    // lock given back.
    assert_eq!(n, 13, "mutating requests of a full migrate");
    for k in 1..=n {
        let sb = installed(&[]);
        let labels_before = injection_labels(&sb);
        assert!(migrate_killed_after(&sb, k), "k={k}: finished first");
        let o = run(&sb, "migrate", &["--all-namespaces", "--yes"]);
        assert_success(&o, &format!("re-run after kill at k={k}"));
        let pods = settled_pods(&sb, |p| all_on(p, "asm-managed"));
        assert!(all_on(&pods, "asm-managed"), "k={k}: {pods:?}");
        let o = run(&sb, "rollback", &["--yes"]);
        assert_success(&o, &format!("rollback after kill at k={k}"));
        assert_eq!(injection_labels(&sb), labels_before, "k={k}");
        let pods = settled_pods(&sb, |p| all_on(p, "asm-191-1"));
        assert!(all_on(&pods, "asm-191-1"), "k={k}: {pods:?}");
    }
}

#[test]
fn a_saved_migrate_plan_applies_exactly_and_is_refused_once_a_namespace_changed() {
    let sb = installed(&[]);
    let file = sb.dir.path().join("migrate-plan.json");
    let before = sb.mutating_requests().len();
    let o = run(
        &sb,
        "migrate",
        &[
            "--namespace",
            "frontend",
            "--plan-out",
            file.to_str().unwrap(),
        ],
    );
    assert_success(&o, "migrate --plan-out");
    assert_eq!(
        sb.mutating_requests().len(),
        before,
        "saving a plan only reads"
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["saved"]["command"], "migrate");
    assert!(!format!("{saved}").contains(sb.sandbox().token()));

    // Relabelled by someone else since: refused, nothing changed.
    let o = sb
        .kubectl(&["label", "namespace", "frontend", "team=web"])
        .unwrap();
    assert_success(&o, "kubectl label");
    let before = sb.mutating_requests().len();
    let o = asm(&sb, &strs(&["apply", file.to_str().unwrap(), "--yes"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("Namespace/frontend"), "{}", stderr(&o));
    assert_eq!(sb.mutating_requests().len(), before);

    // A fresh plan applies exactly.
    let o = run(
        &sb,
        "migrate",
        &[
            "--namespace",
            "frontend",
            "--plan-out",
            file.to_str().unwrap(),
        ],
    );
    assert_success(&o, "migrate --plan-out, again");
    let o = asm(&sb, &strs(&["apply", file.to_str().unwrap(), "--yes"]));
    assert_success(&o, "asm apply");
    let pods = settled_pods(&sb, |p| p["frontend"].iter().all(|r| r == "asm-managed"));
    assert!(
        pods["frontend"].iter().all(|r| r == "asm-managed"),
        "{pods:?}"
    );
    assert!(pods["backend"].iter().all(|r| r == "asm-191-1"), "{pods:?}");
}
