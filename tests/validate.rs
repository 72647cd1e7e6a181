//! `asm validate` end to end, and snapshot tests of the text and JSON plans.

#![allow(clippy::unwrap_used)]

use serde_json::Value;

use crate::install::{asm, fast, install, target};
use crate::support::{TestSandbox, stderr, stdout};

fn validate(sb: &TestSandbox, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec!["validate".into()];
    args.extend(target(sb, "cluster-1"));
    args.extend(extra.iter().map(|s| s.to_string()));
    asm(sb, &args)
}

fn checks(o: &std::process::Output) -> Vec<Value> {
    let v: Value = serde_json::from_str(&stdout(o)).expect("one JSON object");
    v["checks"].as_array().unwrap().clone()
}

fn status_of(checks: &[Value], code: &str) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c["code"] == code)
        .map(|c| c["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn missing_permission_exits_3_naming_the_permission() {
    let sb = TestSandbox::with(fast("missing-permission"));
    let o = validate(&sb, &["--enable-all"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("✖ ASM-C202"), "{out}");
    assert!(out.contains("gkehub.memberships.create"), "{out}");
    // Everything else is reported too, not just the first failure.
    assert!(out.contains("ASM-C101") && out.contains("ASM-C204") && out.contains("ASM-C201"));
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn fresh_with_enable_all_is_fixable() {
    let sb = TestSandbox::with(fast("fresh"));
    let o = validate(&sb, &["--enable-all", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let c = checks(&o);
    // SERVICE_DISABLED reads (gkehub is off) are "absent", not errors.
    assert_eq!(status_of(&c, "ASM-C204"), vec!["fix"]);
    assert_eq!(status_of(&c, "ASM-C205"), vec!["fix"]);
    assert_eq!(status_of(&c, "ASM-C201"), vec!["fix"]);
    assert!(c.iter().all(|c| c["status"] != "fail"), "{c:#?}");
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn fresh_without_enable_flags_blocks() {
    let sb = TestSandbox::with(fast("fresh"));
    let o = validate(&sb, &["-o", "json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let c = checks(&o);
    for code in ["ASM-C201", "ASM-C204", "ASM-C205", "ASM-C106", "ASM-C107"] {
        assert_eq!(status_of(&c, code), vec!["fail"], "{code}");
    }
    for check in &c {
        assert!(check.get("code").is_some() && check.get("message").is_some());
        if check["status"] == "fail" {
            assert!(check.get("hint").is_some(), "{check}");
        }
    }
}

#[test]
fn workload_identity_off_blocks_without_components() {
    let sb = TestSandbox::with(fast("installed").set("cluster.workload_identity", "false"));
    let o = validate(&sb, &["-o", "json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(status_of(&checks(&o), "ASM-C103"), vec!["fail"]);
    let o = validate(&sb, &["--enable-gcp-components", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(status_of(&checks(&o), "ASM-C103"), vec!["fix"]);
    let o = validate(&sb, &["--managed", "-o", "json"]);
    assert_eq!(status_of(&checks(&o), "ASM-C103"), vec!["fix"]);
}

#[test]
fn each_check_has_a_failure_path() {
    // Cluster not found.
    let sb = TestSandbox::with(fast("installed"));
    let mut args: Vec<String> = vec!["validate".into()];
    args.extend(target(&sb, "nope"));
    args.extend(["-o".to_string(), "json".to_string()]);
    let o = asm(&sb, &args);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(status_of(&checks(&o), "ASM-C101"), vec!["fail"]);
    // Old Kubernetes.
    let sb =
        TestSandbox::with(fast("installed").set("cluster.kubernetes_version", "1.24.17-gke.100"));
    let o = validate(&sb, &["-o", "json"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(status_of(&checks(&o), "ASM-C105"), vec!["fail"]);
    // Label missing without --enable-cluster-labels.
    let sb = TestSandbox::with(fast("installed").set("cluster.label.mesh_id", "proj-1"));
    let o = validate(&sb, &["-o", "json"]);
    assert_eq!(status_of(&checks(&o), "ASM-C106"), vec!["fail"]);
    // Not registered without --enable-registration.
    let sb = TestSandbox::with(fast("installed").set("cluster.registered", "false"));
    let o = validate(&sb, &["-o", "json"]);
    assert_eq!(status_of(&checks(&o), "ASM-C204"), vec!["fail"]);
    // APIs disabled without --enable-gcp-apis.
    let sb = TestSandbox::with(fast("installed").set("service.mesh", "disabled"));
    let o = validate(&sb, &["-o", "json"]);
    assert_eq!(status_of(&checks(&o), "ASM-C201"), vec!["fail"]);
    // Channel differing from --channel: a warning, not a failure.
    let sb = TestSandbox::with(fast("installed"));
    let o = validate(&sb, &["--channel", "rapid", "-o", "json"]);
    assert_eq!(status_of(&checks(&o), "ASM-C104"), vec!["warn"]);
    // Feature missing without components.
    let sb = TestSandbox::with(fast("installed").set("servicemesh_feature", "false"));
    let o = validate(&sb, &["-o", "json"]);
    assert_eq!(status_of(&checks(&o), "ASM-C205"), vec!["fail"]);
}

#[test]
fn bad_input_exits_2_with_zero_requests() {
    let sb = TestSandbox::with(fast("fresh"));
    let o = asm(
        &sb,
        &["validate", "-p", "x", "-l", "us-central1-c", "-n", "c1"]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("-p/--project"));
    assert!(sb.requests().is_empty());
}

/// Replaces what changes from run to run (ports, temp paths, numbers of milliseconds).
fn normalise(text: &str, sb: &TestSandbox) -> String {
    let mut t = text.replace(sb.sandbox().token(), "[TOKEN]");
    for c in &sb.sandbox().clusters {
        t = t.replace(&c.endpoint, "[ENDPOINT]");
    }
    t = t.replace(&sb.sandbox().google_addr.to_string(), "[GOOGLE]");
    t
}

#[test]
fn snapshot_text_plan() {
    let sb = TestSandbox::with(fast("fresh"));
    let o = install(&sb, &target(&sb, "cluster-1"), &["--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!("fresh_text_plan", normalise(&stdout(&o), &sb));
}

#[test]
fn snapshot_json_plan() {
    let sb = TestSandbox::with(fast("fresh"));
    let o = install(
        &sb,
        &target(&sb, "cluster-1"),
        &[
            "--dry-run",
            "-o",
            "json",
            "--management",
            "revision",
            "--option",
            "cni-managed",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&normalise(&stdout(&o), &sb)).unwrap();
    insta::assert_json_snapshot!("fresh_json_plan_revision", v);
}

#[test]
fn snapshot_validate_missing_permission() {
    let sb = TestSandbox::with(fast("missing-permission"));
    let o = validate(&sb, &["--enable-all"]);
    insta::assert_snapshot!("missing_permission_validate", normalise(&stdout(&o), &sb));
}
