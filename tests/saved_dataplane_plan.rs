//! `--plan-out FILE` / `asm apply FILE` for `enable-dataplane` and `install-gateway`: the
//! saved plan holds no token, `asm apply` applies exactly the saved actions, and refuses
//! (exit 2, nothing sent) when an object the plan changes drifted since.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::enable_dataplane::{MDP_CHECK, enable, json_of, kubectl_out, with_workloads};
use crate::install::{asm, fast, strs};
use crate::install_gateway::{GW, gateway};
use crate::support::{TestSandbox, assert_success, stderr, stdout};

fn apply(sb: &TestSandbox, file: &Path, extra: &[&str]) -> Output {
    let mut args = strs(&["apply", file.to_str().unwrap()]);
    args.extend(strs(extra));
    asm(sb, &args)
}

/// [`GW`] and `extra`.
fn gw<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    GW.iter().chain(extra).copied().collect()
}

fn ids(v: &Value) -> Vec<String> {
    v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

/// Reads a saved plan and checks what every saved plan must be: 0600, no token, the
/// command named, a fingerprint, a payload on every action.
fn read_saved(sb: &TestSandbox, file: &Path, command: &str) -> Value {
    let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(file).unwrap();
    assert!(!text.contains(sb.sandbox().token()), "token in the plan");
    assert!(!text.contains("ya29."), "token-like text in the plan");
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["schema"], "asm.plan/v1");
    assert_eq!(saved["dry_run"], true);
    assert_eq!(saved["saved"]["command"], command);
    assert!(!saved["actions"].as_array().unwrap().is_empty());
    for a in saved["actions"].as_array().unwrap() {
        assert!(a["payload"]["step"].is_string(), "{a}");
    }
    saved
}

fn fingerprint_keys(saved: &Value) -> Vec<String> {
    saved["fingerprint"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

fn proxy_annotation(sb: &TestSandbox) -> String {
    kubectl_out(
        sb,
        &[
            "get",
            "namespace",
            "shop",
            "-o",
            r"jsonpath={.metadata.annotations.mesh\.cloud\.google\.com/proxy}",
        ],
    )
}

#[test]
fn enable_dataplane_plan_out_then_apply_runs_exactly_the_saved_actions() {
    let sb = with_workloads(fast("installed"));
    let file = sb.dir.path().join("dp.json");
    let before = sb.mutating_requests().len();
    let o = enable(
        &sb,
        &["--namespace", "shop", "--plan-out", file.to_str().unwrap()],
    );
    assert_success(&o, "--plan-out");
    assert!(stderr(&o).contains("asm apply"), "{}", stderr(&o));
    assert_eq!(sb.mutating_requests().len(), before, "saving only reads");
    let saved = read_saved(&sb, &file, "enable-dataplane");
    assert_eq!(
        ids(&saved),
        ["cluster-1/namespace-shop", "cluster-1/dataplane-ready"]
    );
    let keys = fingerprint_keys(&saved);
    assert!(
        keys.iter().any(|k| k.ends_with(": Namespace/shop")),
        "{keys:?}"
    );
    assert!(keys.iter().any(|k| k.ends_with(": GKE")), "{keys:?}");

    // --detailed-exitcode with --plan-out: changes pending.
    let o = enable(
        &sb,
        &[
            "--namespace",
            "shop",
            "--detailed-exitcode",
            "--plan-out",
            sb.dir.path().join("dp2.json").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));

    // Without --yes off a terminal: refused, nothing changed.
    let o = apply(&sb, &file, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(sb.mutating_requests().len(), before);

    let o = apply(&sb, &file, &["--yes", "-o", "json"]);
    assert_success(&o, "asm apply");
    assert!(
        stderr(&o).contains("The state matches the plan"),
        "{}",
        stderr(&o)
    );
    let result = json_of(&o);
    assert_eq!(result["result"]["status"], "applied");
    assert_eq!(ids(&result), ids(&saved));
    assert_eq!(proxy_annotation(&sb), r#"{"managed":"true"}"#);
    let rows: Vec<Vec<String>> = kubectl_out(&sb, MDP_CHECK)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(rows, [vec!["REV", "STATUS"], vec!["asm-managed", "Ready"]]);

    // Applying the same plan again: the namespace it was made from has changed.
    let after = sb.mutating_requests().len();
    let o = apply(&sb, &file, &["--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("Namespace/shop"), "{}", stderr(&o));
    assert_eq!(sb.mutating_requests().len(), after);
}

#[test]
fn enable_dataplane_apply_refuses_when_the_namespace_changed_and_names_it() {
    let sb = with_workloads(fast("installed"));
    let file = sb.dir.path().join("dp.json");
    let o = enable(
        &sb,
        &["--namespace", "shop", "--plan-out", file.to_str().unwrap()],
    );
    assert_success(&o, "--plan-out");
    kubectl_out(&sb, &["label", "namespace", "shop", "team=payments"]);
    let before = sb.mutating_requests().len();
    let o = apply(&sb, &file, &["--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("has changed"), "{err}");
    assert!(
        err.contains(": Namespace/shop: resourceVersion="),
        "names the namespace: {err}"
    );
    assert_eq!(sb.mutating_requests().len(), before, "nothing sent");
    assert_eq!(proxy_annotation(&sb), "", "not annotated");
}

#[test]
fn install_gateway_plan_out_then_apply_runs_exactly_the_saved_actions() {
    let sb = TestSandbox::with(fast("installed"));
    let file = sb.dir.path().join("gw.json");
    let o = gateway(&sb, &gw(&["--plan-out", file.to_str().unwrap()]));
    assert_success(&o, "--plan-out");
    assert!(sb.mutating_requests().is_empty(), "saving only reads");
    let saved = read_saved(&sb, &file, "install-gateway");
    let keys = fingerprint_keys(&saved);
    for object in [
        ": Namespace/gw",
        ": Deployment/gw/istio-ingressgateway",
        ": HorizontalPodAutoscaler/gw/istio-ingressgateway",
        ": RoleBinding/gw/istio-ingressgateway-sds",
    ] {
        assert!(
            keys.iter().any(|k| k.ends_with(object)),
            "{object}: {keys:?}"
        );
    }
    assert_eq!(saved["inputs"]["namespace"], "gw");

    let o = apply(&sb, &file, &["--yes"]);
    assert_success(&o, "asm apply");
    assert!(
        stdout(&o).contains("Gateway gw/istio-ingressgateway on "),
        "{}",
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
    let o = gateway(&sb, &gw(&["--dry-run", "-o", "json"]));
    assert_success(&o, "dry run after apply");
    assert!(json_of(&o)["actions"].as_array().unwrap().is_empty());
}

#[test]
fn install_gateway_changed_flag_plan_applies_only_the_difference_and_refuses_a_drifted_autoscaler()
{
    let sb = TestSandbox::with(fast("installed"));
    assert_success(&gateway(&sb, &gw(&["--yes"])), "install-gateway");
    let file = sb.dir.path().join("gw.json");
    let save = || {
        let o = gateway(
            &sb,
            &gw(&["--replicas", "3", "--plan-out", file.to_str().unwrap()]),
        );
        assert_success(&o, "--plan-out");
    };
    save();
    let hpa = ["hpa", "-n", "gw", "istio-ingressgateway"];
    let annotate: Vec<&str> = ["annotate"]
        .iter()
        .chain(hpa.iter())
        .chain(["owner=team-a"].iter())
        .copied()
        .collect();
    kubectl_out(&sb, &annotate);
    let before = sb.mutating_requests().len();
    let o = apply(&sb, &file, &["--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(": HorizontalPodAutoscaler/gw/istio-ingressgateway: resourceVersion="),
        "{}",
        stderr(&o)
    );
    assert_eq!(sb.mutating_requests().len(), before, "nothing sent");

    // A fresh plan of the same change applies: only the autoscaler, then the waits.
    save();
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let changing: Vec<&str> = saved["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["op"] != "wait")
        .map(|a| a["target"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(changing, ["HorizontalPodAutoscaler"]);
    let o = apply(&sb, &file, &["--yes"]);
    assert_success(&o, "asm apply");
    let get: Vec<&str> = ["get"]
        .iter()
        .chain(hpa.iter())
        .chain(["-o", "jsonpath={.spec.minReplicas}"].iter())
        .copied()
        .collect();
    assert_eq!(kubectl_out(&sb, &get), "3");
}

#[test]
fn apply_validates_saved_inputs_like_flags_before_any_request() {
    let sb = TestSandbox::with(fast("installed"));
    let file = sb.dir.path().join("gw.json");
    assert_success(
        &gateway(&sb, &gw(&["--plan-out", file.to_str().unwrap()])),
        "--plan-out",
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let cases = [
        ("\"namespace\": \"gw\"", "\"namespace\": \"istio-system\""),
        ("\"replicas\": 1", "\"replicas\": 0"),
        ("\"injection\": \"namespace\"", "\"injection\": \"sidecar\""),
    ];
    let n = sb.requests().len();
    for (from, to) in cases {
        assert!(text.contains(from), "{from} in {text}");
        let tampered = sb.dir.path().join("tampered.json");
        std::fs::write(&tampered, text.replace(from, to)).unwrap();
        let o = apply(&sb, &tampered, &["--yes"]);
        assert_eq!(o.status.code(), Some(2), "{to}: {}", stderr(&o));
    }
    assert_eq!(sb.requests().len(), n, "no request for a bad plan file");
}
