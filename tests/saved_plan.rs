//! `--detailed-exitcode`, `--plan-out FILE` and `asm apply FILE`: exactly the saved actions,
//! refused (exit 2, nothing changed) when the observed state drifted.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use asm_sim::member::MemberCluster;
use serde_json::Value;

use crate::install::{asm, changes, fast, install, plan_json, strs, target};
use crate::support::{TestSandbox, assert_success, stderr, stdout};

fn save(sb: &TestSandbox, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--plan-out", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    install(sb, &target(sb, "cluster-1"), &args)
}

fn apply(sb: &TestSandbox, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut a = strs(&["apply", file.to_str().unwrap()]);
    a.extend(strs(extra));
    asm(sb, &a)
}

fn ids(v: &Value) -> Vec<String> {
    v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn detailed_exitcode_is_10_when_a_dry_run_has_changes() {
    let sb = TestSandbox::with(fast("fresh"));
    let t = target(&sb, "cluster-1");
    let o = install(&sb, &t, &["--dry-run", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(stdout(&o).contains("Plan: 4 to add"), "{}", stdout(&o));
    let o = install(&sb, &t, &["--dry-run"]);
    assert_eq!(o.status.code(), Some(0));
    let sb = TestSandbox::with(fast("installed"));
    let o = install(
        &sb,
        &target(&sb, "cluster-1"),
        &["--dry-run", "--detailed-exitcode", "-o", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn plan_out_then_apply_runs_exactly_the_saved_actions() {
    let sb = TestSandbox::with(fast("fresh"));
    let file = sb.dir.path().join("plan.json");
    let o = save(
        &sb,
        &file,
        &["--management", "revision", "--option", "cni-managed"],
    );
    assert_success(&o, "--plan-out");
    assert!(stderr(&o).contains("asm apply"), "{}", stderr(&o));
    assert!(sb.mutating_requests().is_empty());
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(sb.sandbox().token()));
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["schema"], "asm.plan/v1");
    assert_eq!(saved["dry_run"], true);
    assert_eq!(saved["inputs"]["management"], "revision");
    assert!(saved["fingerprint"].as_object().unwrap().len() > 5);
    assert!(
        saved["fingerprint"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("GKE"))
    );
    for a in saved["actions"].as_array().unwrap() {
        assert!(a["payload"]["step"].is_string(), "{a}");
    }
    // The same object as `-o json`, plus the saved-plan fields.
    let printed = plan_json(
        &sb,
        &target(&sb, "cluster-1"),
        &["--management", "revision", "--option", "cni-managed"],
    );
    assert_eq!(ids(&printed), ids(&saved));
    assert_eq!(printed["summary"], saved["summary"]);

    // --detailed-exitcode with --plan-out.
    let o = save(
        &sb,
        &sb.dir.path().join("p2.json"),
        &["--detailed-exitcode"],
    );
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));

    // Without --yes off a terminal: refused, nothing changed.
    let o = apply(&sb, &file, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("without --yes"), "{}", stderr(&o));
    assert!(sb.mutating_requests().is_empty());

    let o = apply(&sb, &file, &["--yes", "-o", "json"]);
    assert_success(&o, "asm apply");
    let result: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(result["result"]["status"], "applied");
    assert_eq!(ids(&result), ids(&saved));
    let cm = sb.sandbox().clusters[0]
        .api
        .get_object("v1", "ConfigMap", Some("istio-system"), "asm-options")
        .unwrap();
    assert_eq!(cm["data"]["ASM_OPTS"], "CNI=on");
    assert_eq!(
        changes(&plan_json(
            &sb,
            &target(&sb, "cluster-1"),
            &["--management", "revision", "--option", "cni-managed"]
        )),
        0
    );
    // Applying the same plan again: the state it was made from is gone.
    let before = sb.mutating_requests().len();
    let o = apply(&sb, &file, &["--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(sb.mutating_requests().len(), before);
}

#[test]
fn apply_refuses_when_google_state_drifted_and_names_it() {
    let sb = TestSandbox::with(fast("fresh"));
    let file = sb.dir.path().join("plan.json");
    assert_success(&save(&sb, &file, &[]), "--plan-out");
    // Someone else does part of the work in between.
    let o = install(&sb, &target(&sb, "cluster-1"), &["--only-enable", "--yes"]);
    assert_success(&o, "--only-enable");
    let before = sb.mutating_requests().len();
    let o = apply(&sb, &file, &["--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("has changed"), "{err}");
    assert!(err.contains("mesh APIs enabled: none →"), "{err}");
    assert!(err.contains("memberships: none →"), "{err}");
    assert!(err.contains("labelFingerprint="), "{err}");
    assert_eq!(sb.mutating_requests().len(), before, "nothing sent");
}

#[test]
fn apply_refuses_when_a_kubernetes_object_drifted() {
    let sb = TestSandbox::with(fast("installed"));
    let file = sb.dir.path().join("plan.json");
    assert_success(
        &save(&sb, &file, &["--management", "revision"]),
        "--plan-out",
    );
    let ctx = sb.sandbox().clusters[0].context_name(&sb.sandbox().scenario.project_id);
    let Some(k) = sb.kubectl(&[
        "--context",
        &ctx,
        "label",
        "namespace",
        "istio-system",
        "drift=yes",
    ]) else {
        return;
    };
    assert!(k.status.success(), "{}", String::from_utf8_lossy(&k.stderr));
    let before = sb.mutating_requests().len();
    let o = apply(&sb, &file, &["--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(": Namespace/istio-system: resourceVersion="),
        "{}",
        stderr(&o)
    );
    assert_eq!(sb.mutating_requests().len(), before);
}

#[test]
fn apply_rejects_bad_files_before_any_request() {
    let sb = TestSandbox::with(fast("fresh"));
    let dir = sb.dir.path();
    let missing = dir.join("nope.json");
    let o = apply(&sb, &missing, &["--yes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.json"), "{}", stderr(&o));
    // `-o json` output is not a saved plan.
    let printed = dir.join("printed.json");
    std::fs::write(&printed, "{\"schema\": \"asm.plan/v1\", \"actions\": []}").unwrap();
    let o = apply(&sb, &printed, &["--yes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a saved plan"), "{}", stderr(&o));
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "not json").unwrap();
    assert_eq!(apply(&sb, &garbage, &["--yes"]).status.code(), Some(2));
    assert!(sb.requests().is_empty(), "{:#?}", sb.requests());
    // A hand-edited input is validated like the flag it stands for.
    let file = dir.join("plan.json");
    assert_success(&save(&sb, &file, &[]), "--plan-out");
    let n = sb.requests().len();
    let text = std::fs::read_to_string(&file).unwrap();
    let tampered = dir.join("tampered.json");
    std::fs::write(
        &tampered,
        text.replace(
            "\"fleet_project\": \"asm-fresh\"",
            "\"fleet_project\": \"Bad_Project\"",
        ),
    )
    .unwrap();
    let o = apply(&sb, &tampered, &["--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("inputs.fleet_project"),
        "{}",
        stderr(&o)
    );
    assert_eq!(sb.requests().len(), n);
}
