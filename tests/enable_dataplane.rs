//! `asm enable-dataplane` end to end: the real binary against asm-sim, the result checked
//! with the real kubectl.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Output, Stdio};

use asm_sim::SimConfig;
use asm_sim::member::MemberCluster;
use serde_json::Value;

use crate::install::{asm, changes, fast, kill_after_write, mixed_faults, strs, target};
use crate::support::{TestSandbox, assert_success, stderr, stdout};

/// Namespace `shop` labelled for the managed revision, with a Deployment (injected by the
/// webhook), a StatefulSet, and a pod that opted out of injection.
const WORKLOADS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    istio.io/rev: asm-managed
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  namespace: shop
spec:
  replicas: 1
  serviceName: db
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: db
        image: postgres
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
  namespace: shop
  annotations:
    sidecar.istio.io/inject: "false"
spec:
  containers:
  - name: debug
    image: busybox
"#;

/// The documented readiness check of the managed data plane.
pub const MDP_CHECK: &[&str] = &[
    "get",
    "dataplanecontrols",
    "-o",
    "custom-columns=REV:.spec.revision,STATUS:.status.state",
];

/// `kubectl apply -f -` of `manifest`.
pub fn kubectl_apply(sb: &TestSandbox, manifest: &str) {
    assert!(crate::support::tool_available("kubectl"));
    let mut child = sb
        .command("kubectl")
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_success(&o, "kubectl apply");
}

pub fn kubectl_out(sb: &TestSandbox, args: &[&str]) -> String {
    let o = sb.kubectl(args).unwrap();
    assert_success(&o, &args.join(" "));
    stdout(&o)
}

/// A sandbox of `config` holding [`WORKLOADS`].
pub fn with_workloads(config: SimConfig) -> TestSandbox {
    let sb = TestSandbox::with(config);
    kubectl_apply(&sb, WORKLOADS);
    sb
}

/// `asm enable-dataplane TARGET EXTRA`.
pub fn enable(sb: &TestSandbox, extra: &[&str]) -> Output {
    let mut args = strs(&["enable-dataplane"]);
    args.extend(target(sb, "cluster-1"));
    args.extend(strs(extra));
    asm(sb, &args)
}

pub fn json_of(o: &Output) -> Value {
    serde_json::from_str(&stdout(o))
        .unwrap_or_else(|e| panic!("one JSON object: {e}\n{}\n{}", stdout(o), stderr(o)))
}

fn check<'a>(plan: &'a Value, code: &str) -> Vec<&'a Value> {
    plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["code"] == code)
        .collect()
}

#[test]
fn dry_run_json_plans_the_annotation_with_reads_only() {
    let sb = with_workloads(fast("installed"));
    let before = sb.mutating_requests().len();
    let o = enable(&sb, &["--namespace", "shop", "--dry-run", "-o", "json"]);
    assert_success(&o, "dry run");
    let plan = json_of(&o);
    assert_eq!(plan["dry_run"], true);
    let ids: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["cluster-1/namespace-shop", "cluster-1/dataplane-ready"]
    );
    assert_eq!(changes(&plan), 1);
    assert_eq!(sb.mutating_requests().len(), before, "a dry run only reads");
}

#[test]
fn apply_makes_the_seed_check_ready_annotates_and_replans_nothing() {
    let sb = with_workloads(fast("installed"));
    let o = enable(&sb, &["--namespace", "shop", "--yes"]);
    assert_success(&o, "enable-dataplane");
    assert!(
        stdout(&o).contains("Applied: 0 added, 1 changed, 0 deleted, 1 waited"),
        "{}",
        stdout(&o)
    );
    let rows: Vec<Vec<String>> = kubectl_out(&sb, MDP_CHECK)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(rows, [vec!["REV", "STATUS"], vec!["asm-managed", "Ready"]]);
    let annotation = kubectl_out(
        &sb,
        &[
            "get",
            "namespace",
            "shop",
            "-o",
            r"jsonpath={.metadata.annotations.mesh\.cloud\.google\.com/proxy}",
        ],
    );
    assert_eq!(annotation, r#"{"managed":"true"}"#);

    let o = enable(&sb, &["--namespace", "shop", "--dry-run", "-o", "json"]);
    assert_success(&o, "second dry run");
    let plan = json_of(&o);
    assert_eq!(plan["actions"].as_array().unwrap().len(), 0, "{plan:#}");
}

#[test]
fn disable_sets_managed_false_and_warns_that_proxies_keep_their_image() {
    let sb = with_workloads(fast("installed"));
    assert_success(&enable(&sb, &["--namespace", "shop", "--yes"]), "enable");
    let o = enable(
        &sb,
        &["--namespace", "shop", "--disable", "--yes", "-o", "json"],
    );
    assert_success(&o, "disable");
    let v = json_of(&o);
    assert_eq!(check(&v, "ASM-C308").len(), 1, "{v:#}");
    let ops: Vec<&str> = v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["update"], "disabling waits for nothing");
    let annotation = kubectl_out(
        &sb,
        &[
            "get",
            "namespace",
            "shop",
            "-o",
            r"jsonpath={.metadata.annotations.mesh\.cloud\.google\.com/proxy}",
        ],
    );
    assert_eq!(annotation, r#"{"managed":"false"}"#);
}

#[test]
fn report_names_the_statefulset_and_the_uninjected_pod() {
    let sb = with_workloads(fast("installed"));
    let o = enable(&sb, &["--namespace", "shop", "--dry-run", "-o", "json"]);
    assert_success(&o, "dry run");
    let plan = json_of(&o);
    let unmanaged = check(&plan, "ASM-C307");
    assert_eq!(unmanaged.len(), 1, "{plan:#}");
    let message = unmanaged[0]["message"].as_str().unwrap();
    assert!(message.contains("StatefulSet db"), "{message}");
    assert!(message.contains("pod debug (not injected)"), "{message}");
    assert!(
        !message.contains("web"),
        "the webhook-injected Deployment is managed: {message}"
    );
}

#[test]
fn stable_cluster_exits_3_with_the_channel_check() {
    let sb = with_workloads(fast("installed").set("cluster.channel", "STABLE"));
    let before = sb.mutating_requests().len();
    let o = enable(&sb, &["--namespace", "shop", "--yes", "-o", "json"]);
    assert_eq!(o.status.code(), Some(3), "{}\n{}", stdout(&o), stderr(&o));
    let plan = json_of(&o);
    let channel = check(&plan, "ASM-C301");
    assert_eq!(channel.len(), 1);
    assert_eq!(channel[0]["status"], "fail");
    assert!(channel[0]["message"].as_str().unwrap().contains("STABLE"));
    assert_eq!(sb.mutating_requests().len(), before, "nothing was changed");
}

#[test]
fn missing_namespace_fails_its_check_and_unlabelled_namespace_needs_a_label() {
    let sb = with_workloads(fast("installed"));
    kubectl_apply(
        &sb,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: plain\n",
    );
    let o = enable(
        &sb,
        &[
            "--namespace",
            "nope",
            "--namespace",
            "plain",
            "--dry-run",
            "-o",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let plan = json_of(&o);
    let ns: Vec<(&str, &str)> = check(&plan, "ASM-C305")
        .iter()
        .map(|c| {
            (
                c["status"].as_str().unwrap(),
                c["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ns,
        [
            ("fail", "namespace nope does not exist"),
            ("fail", "namespace plain has no injection label"),
        ]
    );
}

#[test]
fn bad_input_exits_2_before_any_request() {
    let sb = TestSandbox::with(fast("installed"));
    let cases: [&[&str]; 5] = [
        &["--namespace", "Bad_NS", "--yes"],
        &["--namespace", "kube-system", "--yes"],
        &["--yes"],
        &["--pod", "shop", "--yes"],
        &["--namespace", "shop", "--timeout", "never"],
    ];
    for extra in cases {
        let o = enable(&sb, extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
    }
    assert!(sb.requests().is_empty(), "{:#?}", sb.requests());
}

#[test]
fn no_token_in_any_output() {
    let sb = with_workloads(fast("installed"));
    let token = sb.sandbox().token().to_string();
    for extra in [&["--dry-run", "-v"][..], &["--yes", "-v", "-o", "json"][..]] {
        let mut args = vec!["--namespace", "shop"];
        args.extend_from_slice(extra);
        let o = enable(&sb, &args);
        assert_success(&o, "enable-dataplane");
        for (name, text) in [("stdout", stdout(&o)), ("stderr", stderr(&o))] {
            assert!(!text.contains(&token), "{extra:?}: token in {name}");
            assert!(
                !text.contains("ya29."),
                "{extra:?}: token-like text in {name}"
            );
        }
    }
}

#[test]
fn faults_on_all_routes_converge_on_re_run() {
    // The scenario holds the workloads, so no setup request meets a fault.
    let sb = TestSandbox::with(mixed_faults(fast("installed-workloads"), 11));
    let args = ["--namespace", "shop", "--namespace", "catalog"];
    let yes: Vec<&str> = args.iter().copied().chain(["--yes"]).collect();
    let converged = (0..6).any(|_| enable(&sb, &yes).status.success());
    assert!(
        converged,
        "enable-dataplane did not converge under 10% faults"
    );
    let dry: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--dry-run", "-o", "json"])
        .collect();
    let empty = (0..6).find_map(|_| {
        let o = enable(&sb, &dry);
        o.status
            .success()
            .then(|| json_of(&o)["actions"].as_array().unwrap().is_empty())
    });
    assert_eq!(empty, Some(true));
    for ns in ["shop", "catalog"] {
        let o = sb.sandbox().clusters[0]
            .api
            .get_object("v1", "Namespace", None, ns)
            .unwrap();
        assert_eq!(
            o["metadata"]["annotations"]["mesh.cloud.google.com/proxy"], r#"{"managed":"true"}"#,
            "{ns}"
        );
    }
}

/// A second labelled namespace besides [`WORKLOADS`]' `shop`.
const SHOP2: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop2\n  labels:\n    istio.io/rev: asm-managed\n";

/// Two namespaces and a pod to annotate: three mutating requests.
const KILL_RUN: &[&str] = &[
    "--namespace",
    "shop",
    "--namespace",
    "shop2",
    "--pod",
    "shop/debug",
    "--yes",
];

/// `installed` with [`WORKLOADS`] and [`SHOP2`].
fn kill_sandbox() -> TestSandbox {
    let sb = with_workloads(fast("installed"));
    kubectl_apply(&sb, SHOP2);
    sb
}

/// The value of the managed data plane annotation of `kind/name`, as kubectl reads it.
fn proxy_of(sb: &TestSandbox, what: &[&str]) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend([
        "-o",
        r"jsonpath={.metadata.annotations.mesh\.cloud\.google\.com/proxy}",
    ]);
    kubectl_out(sb, &args)
}

#[test]
fn killed_at_every_write_resumes_and_converges() {
    let reference = kill_sandbox();
    let before = reference.writes().len();
    assert_success(&enable(&reference, KILL_RUN), "reference run");
    let n = reference.writes().len() - before;
    assert_eq!(
        n, 5,
        "two namespaces and a pod, and the cluster lock taken and given back"
    );
    drop(reference);
    let mut exercised = 0;
    for k in 1..=n {
        let sb = kill_sandbox();
        let mut args = strs(&["enable-dataplane"]);
        args.extend(target(&sb, "cluster-1"));
        args.extend(strs(KILL_RUN));
        assert!(
            kill_after_write(&sb, &args, k),
            "k={k}: the run finished before its k-th write"
        );
        exercised += 1;
        let o = enable(&sb, KILL_RUN);
        assert_success(&o, &format!("re-run after kill at k={k}"));
        for what in [
            &["namespace", "shop"][..],
            &["namespace", "shop2"],
            &["pod", "-n", "shop", "debug"],
        ] {
            assert_eq!(
                proxy_of(&sb, what),
                r#"{"managed":"true"}"#,
                "k={k}: {what:?}"
            );
        }
        let rows: Vec<Vec<String>> = kubectl_out(&sb, MDP_CHECK)
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect();
        assert_eq!(
            rows,
            [vec!["REV", "STATUS"], vec!["asm-managed", "Ready"]],
            "k={k}"
        );
        let dry: Vec<&str> = KILL_RUN[..KILL_RUN.len() - 1]
            .iter()
            .copied()
            .chain(["--dry-run", "-o", "json"])
            .collect();
        let o = enable(&sb, &dry);
        assert_success(&o, "dry run");
        let plan = json_of(&o);
        assert!(
            plan["actions"].as_array().unwrap().is_empty(),
            "k={k}: {plan:#}"
        );
    }
    assert_eq!(exercised, n, "every kill point exercised");
}

#[test]
fn snapshot_text_and_json_plans() {
    let sb = with_workloads(fast("installed"));
    let o = enable(&sb, &["--namespace", "shop", "--dry-run"]);
    assert_success(&o, "dry run");
    insta::assert_snapshot!("enable_dataplane_text_plan", stdout(&o));
    let o = enable(&sb, &["--namespace", "shop", "--dry-run", "-o", "json"]);
    assert_success(&o, "dry run");
    insta::assert_json_snapshot!("enable_dataplane_json_plan", json_of(&o));
}
