//! `asm install-gateway` end to end: the real binary against asm-sim, the result checked
//! with the real kubectl.

#![allow(clippy::unwrap_used)]

use std::process::Output;

use serde_json::Value;

use crate::install::{asm, changes, fast, kill_after_write, mixed_faults, strs, target};
use crate::support::{TestSandbox, assert_success, stderr, stdout};

pub fn gateway(sb: &TestSandbox, extra: &[&str]) -> Output {
    let mut args = strs(&["install-gateway"]);
    args.extend(target(sb, "cluster-1"));
    args.extend(strs(extra));
    asm(sb, &args)
}

fn json_of(o: &Output) -> Value {
    serde_json::from_str(&stdout(o))
        .unwrap_or_else(|e| panic!("one JSON object: {e}\n{}\n{}", stdout(o), stderr(o)))
}

fn kubectl_out(sb: &TestSandbox, args: &[&str]) -> String {
    let o = sb.kubectl(args).unwrap();
    assert_success(&o, &args.join(" "));
    stdout(&o)
}

pub const GW: &[&str] = &["--namespace", "gw", "--enable-namespace-creation"];

pub fn with(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = GW.to_vec();
    v.extend_from_slice(extra);
    v
}

#[test]
fn dry_run_json_plans_every_object_with_reads_only() {
    let sb = TestSandbox::with(fast("installed"));
    let o = gateway(&sb, &with(&["--dry-run", "-o", "json"]));
    assert_success(&o, "dry run");
    let plan = json_of(&o);
    let kinds: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["op"] == "create")
        .map(|a| a["target"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "Deployment",
            "Service",
            "Role",
            "RoleBinding",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler"
        ]
    );
    assert!(
        sb.mutating_requests().is_empty(),
        "{:#?}",
        sb.mutating_requests()
    );
}

#[test]
fn gateway_is_available_injected_with_an_address_asm_printed_and_replans_nothing() {
    let sb = TestSandbox::with(fast("installed"));
    let o = gateway(&sb, &with(&["--yes"]));
    assert_success(&o, "install-gateway");
    let ip = kubectl_out(
        &sb,
        &[
            "get",
            "service",
            "-n",
            "gw",
            "istio-ingressgateway",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ],
    );
    assert!(!ip.is_empty());
    let s = sb.sandbox();
    let line = format!(
        "Gateway gw/istio-ingressgateway on {}/{}/cluster-1: {ip}",
        s.scenario.project_id,
        s.scenario.location()
    );
    assert!(
        stdout(&o).contains(&line),
        "asm prints {line:?}: {}",
        stdout(&o)
    );
    let available = kubectl_out(
        &sb,
        &[
            "get",
            "deployment",
            "-n",
            "gw",
            "istio-ingressgateway",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Available")].status}"#,
        ],
    );
    assert_eq!(available, "True");
    let statuses = kubectl_out(
        &sb,
        &[
            "get",
            "pods",
            "-n",
            "gw",
            "-l",
            "app=istio-ingressgateway",
            "-o",
            r"jsonpath={range .items[*]}{.metadata.annotations.sidecar\.istio\.io/status}{'\n'}{end}",
        ],
    );
    let lines: Vec<&str> = statuses.lines().collect();
    assert!(!lines.is_empty());
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["revision"], "asm-managed", "{l}");
    }
    let o = gateway(&sb, &with(&["--dry-run", "-o", "json"]));
    assert_success(&o, "second dry run");
    let plan = json_of(&o);
    assert_eq!(plan["actions"].as_array().unwrap().len(), 0, "{plan:#}");
}

#[test]
fn changed_replicas_plans_only_the_autoscaler() {
    let sb = TestSandbox::with(fast("installed"));
    assert_success(&gateway(&sb, &with(&["--yes"])), "install-gateway");
    let o = gateway(&sb, &with(&["--replicas", "3", "--dry-run", "-o", "json"]));
    assert_success(&o, "dry run");
    let plan = json_of(&o);
    assert_eq!(changes(&plan), 1, "{plan:#}");
    let updated: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["op"] == "update")
        .map(|a| a["target"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(updated, ["HorizontalPodAutoscaler"]);
}

#[test]
fn bad_input_exits_2_before_any_request() {
    let sb = TestSandbox::with(fast("installed"));
    let cases: [&[&str]; 5] = [
        &["--namespace", "istio-system", "--yes"],
        &["--namespace", "GW", "--yes"],
        &["--namespace", "gw", "--revision", "asm-1191", "--yes"],
        &["--namespace", "gw", "--replicas", "0", "--yes"],
        &["--namespace", "gw", "--service-type", "External", "--yes"],
    ];
    for extra in cases {
        let o = gateway(&sb, extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
    }
    assert!(sb.requests().is_empty(), "{:#?}", sb.requests());
}

#[test]
fn missing_namespace_without_creation_exits_3() {
    let sb = TestSandbox::with(fast("installed"));
    let o = gateway(&sb, &["--namespace", "gw", "--yes"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn no_token_in_any_output() {
    let sb = TestSandbox::with(fast("installed"));
    let token = sb.sandbox().token().to_string();
    for extra in [&["--dry-run", "-v"][..], &["--yes", "-v", "-o", "json"][..]] {
        let o = gateway(&sb, &with(extra));
        assert_success(&o, "install-gateway");
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
    let sb = TestSandbox::with(mixed_faults(fast("installed"), 5));
    let converged = (0..6).any(|_| gateway(&sb, &with(&["--yes"])).status.success());
    assert!(
        converged,
        "install-gateway did not converge under 10% faults"
    );
    let empty = (0..6).find_map(|_| {
        let o = gateway(&sb, &with(&["--dry-run", "-o", "json"]));
        o.status
            .success()
            .then(|| json_of(&o)["actions"].as_array().unwrap().is_empty())
    });
    assert_eq!(empty, Some(true));
}

/// What a finished install-gateway leaves, as the real kubectl reads it: the Deployment
/// Available, every gateway pod injected by asm-managed, the Service with an address.
fn assert_gateway_ready(sb: &TestSandbox, context: &str) {
    let available = kubectl_out(
        sb,
        &[
            "get",
            "deployment",
            "-n",
            "gw",
            "istio-ingressgateway",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Available")].status}"#,
        ],
    );
    assert_eq!(available, "True", "{context}");
    let statuses = kubectl_out(
        sb,
        &[
            "get",
            "pods",
            "-n",
            "gw",
            "-l",
            "app=istio-ingressgateway",
            "-o",
            r"jsonpath={range .items[*]}{.metadata.annotations.sidecar\.istio\.io/status}{'\n'}{end}",
        ],
    );
    let lines: Vec<&str> = statuses.lines().collect();
    assert!(!lines.is_empty(), "{context}: no gateway pod");
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["revision"], "asm-managed", "{context}: {l}");
    }
    let ip = kubectl_out(
        sb,
        &[
            "get",
            "service",
            "-n",
            "gw",
            "istio-ingressgateway",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ],
    );
    assert!(!ip.is_empty(), "{context}: no address");
}

#[test]
fn killed_at_every_write_resumes_and_converges() {
    let reference = TestSandbox::with(fast("installed"));
    assert_success(&gateway(&reference, &with(&["--yes"])), "reference run");
    let n = reference.writes().len();
    assert_eq!(
        n, 10,
        "the namespace and seven objects, and the cluster lock taken and given back"
    );
    drop(reference);
    let mut exercised = 0;
    for k in 1..=n {
        let sb = TestSandbox::with(fast("installed"));
        let mut args = strs(&["install-gateway"]);
        args.extend(target(&sb, "cluster-1"));
        args.extend(strs(&with(&["--yes"])));
        assert!(
            kill_after_write(&sb, &args, k),
            "k={k}: the run finished before its k-th write"
        );
        exercised += 1;
        let o = gateway(&sb, &with(&["--yes"]));
        assert_success(&o, &format!("re-run after kill at k={k}"));
        assert_gateway_ready(&sb, &format!("k={k}"));
        let o = gateway(&sb, &with(&["--dry-run", "-o", "json"]));
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
    let sb = TestSandbox::with(fast("installed"));
    let o = gateway(&sb, &with(&["--dry-run"]));
    assert_success(&o, "dry run");
    insta::assert_snapshot!("install_gateway_text_plan", stdout(&o));
    let o = gateway(&sb, &with(&["--dry-run", "-o", "json"]));
    assert_success(&o, "dry run");
    insta::assert_json_snapshot!("install_gateway_json_plan", json_of(&o));
}
