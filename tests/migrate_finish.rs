//! `asm migrate --finish` end to end on the `in-cluster` scenario after `asm install
//! --managed`: refused while pods still run proxies of asm-191-1; once every injected pod
//! has moved, it deletes exactly the old control plane (checked with the real kubectl), a
//! dry run sends only reads, a second run plans nothing, and a run killed at any of its
//! mutating requests converges when run again.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::install::{asm, fast, install, kill_after_write, strs, target};
use crate::support::{TestSandbox, assert_success, stderr, stdout};

/// The old control plane's revision in the `in-cluster` scenario.
pub const OLD: &str = "asm-191-1";
/// The managed revision of the scenario's channel (REGULAR).
pub const MANAGED: &str = "asm-managed";
/// The scenario's namespaces whose workloads the old control plane injects.
pub const MESHED_NAMESPACES: [&str; 3] = ["backend", "frontend", "legacy"];

/// What `--finish` deletes on the scenario: `(kubectl resource, namespace, name)`.
pub const OLD_CONTROL_PLANE: [(&str, Option<&str>, &str); 7] = [
    (
        "mutatingwebhookconfiguration",
        None,
        "istio-sidecar-injector-asm-191-1",
    ),
    (
        "mutatingwebhookconfiguration",
        None,
        "istio-sidecar-injector",
    ),
    ("deployment", Some("istio-system"), "istiod-asm-191-1"),
    ("service", Some("istio-system"), "istiod-asm-191-1"),
    ("hpa", Some("istio-system"), "istiod-asm-191-1"),
    ("pdb", Some("istio-system"), "istiod-asm-191-1"),
    ("service", Some("istio-system"), "istiod"),
];

/// `kubectl ARGS`, asserting success; its stdout.
pub fn kubectl(sb: &TestSandbox, args: &[&str]) -> String {
    let o = sb.kubectl(args).unwrap();
    assert_success(&o, &format!("kubectl {}", args.join(" ")));
    stdout(&o)
}

/// Polls `done` every 100 ms for up to 60 s.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every live pod as kubectl sees it: `(namespace/name, revision of its proxy)`.
pub fn pod_revisions(sb: &TestSandbox) -> Vec<(String, Option<String>)> {
    let v: Value =
        serde_json::from_str(&kubectl(sb, &["get", "pods", "-A", "-o", "json"])).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
        .map(|p| {
            let rev = p["metadata"]["annotations"]["sidecar.istio.io/status"]
                .as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .and_then(|s| s["revision"].as_str().map(str::to_string));
            (
                format!(
                    "{}/{}",
                    p["metadata"]["namespace"].as_str().unwrap(),
                    p["metadata"]["name"].as_str().unwrap()
                ),
                rev,
            )
        })
        .collect()
}

/// Live pods injected by `rev`, as `namespace/name`.
pub fn pods_on(sb: &TestSandbox, rev: &str) -> BTreeSet<String> {
    pod_revisions(sb)
        .into_iter()
        .filter(|(_, r)| r.as_deref() == Some(rev))
        .map(|(p, _)| p)
        .collect()
}

/// The `in-cluster` scenario with the managed control plane installed by asm.
pub fn in_cluster_with_managed() -> TestSandbox {
    let sb = TestSandbox::with(fast("in-cluster"));
    let t = target(&sb, "cluster-1");
    assert_success(&install(&sb, &t, &["--yes"]), "asm install --managed");
    sb
}

/// Moves every injected pod to the managed revision with kubectl, as the seed does:
/// relabel each namespace and restart its Deployments; the gateway gets the revision label
/// on its pod template. Waits until no live pod runs a proxy of the old revision.
pub fn move_everything_with_kubectl(sb: &TestSandbox) {
    let injected = pods_on(sb, OLD).len();
    assert_eq!(injected, 12, "the scenario's injected pods");
    for ns in MESHED_NAMESPACES {
        kubectl(
            sb,
            &[
                "label",
                "namespace",
                ns,
                "istio-injection-",
                &format!("istio.io/rev={MANAGED}"),
                "--overwrite",
            ],
        );
        kubectl(sb, &["rollout", "restart", "deployment", "-n", ns]);
    }
    kubectl(
        sb,
        &[
            "patch",
            "deployment",
            "istio-ingressgateway",
            "-n",
            "istio-system",
            "-p",
            &format!(
                r#"{{"spec":{{"template":{{"metadata":{{"labels":{{"istio.io/rev":"{MANAGED}"}}}}}}}}}}"#
            ),
        ],
    );
    wait_until("every injected pod on the managed revision", || {
        pods_on(sb, OLD).is_empty() && pods_on(sb, MANAGED).len() == injected
    });
}

/// `asm migrate --finish -p -l -n EXTRA`.
pub fn finish(sb: &TestSandbox, extra: &[&str]) -> Output {
    let mut args = strs(&["migrate", "--finish"]);
    args.extend(target(sb, "cluster-1"));
    args.extend(strs(extra));
    asm(sb, &args)
}

/// Whether kubectl finds `resource [-n ns] name`.
fn exists(sb: &TestSandbox, resource: &str, ns: Option<&str>, name: &str) -> bool {
    let mut args = vec!["get", resource, name];
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    let o = sb.kubectl(&args).unwrap();
    if o.status.success() {
        return true;
    }
    assert!(
        stderr(&o).contains("NotFound"),
        "kubectl {}: {}",
        args.join(" "),
        stderr(&o)
    );
    false
}

/// The paths of the DELETE requests since request number `from` of the log.
fn deletes_since(sb: &TestSandbox, from: usize) -> Vec<String> {
    sb.mutating_requests()[from..]
        .iter()
        // The cluster lock (a Lease taken and given back) is not part of what is deleted.
        .filter(|r| !r.path.contains("/leases"))
        .map(|r| {
            assert_eq!(r.method, "DELETE", "{r:?}");
            r.path.split('?').next().unwrap().to_string()
        })
        .collect()
}

#[test]
fn finish_refuses_with_exit_3_listing_the_pods_still_on_the_old_revision() {
    let sb = in_cluster_with_managed();
    let on_old = pods_on(&sb, OLD);
    assert_eq!(on_old.len(), 12);
    let before = sb.mutating_requests().len();
    let o = finish(&sb, &["--yes"]);
    assert_eq!(o.status.code(), Some(3), "{}\n{}", stdout(&o), stderr(&o));
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        out.contains("ASM-C550") && out.contains("revision asm-191-1 still injects 12 pods: "),
        "{out}"
    );
    for p in &on_old {
        assert!(out.contains(p.as_str()), "{p} not listed: {out}");
    }
    assert_eq!(
        sb.mutating_requests().len(),
        before,
        "{:#?}",
        &sb.mutating_requests()[before..]
    );
    for (resource, ns, name) in OLD_CONTROL_PLANE {
        assert!(exists(&sb, resource, ns, name), "{resource} {name}");
    }
}

#[test]
fn finish_deletes_exactly_the_old_control_plane_after_every_pod_moved() {
    let sb = in_cluster_with_managed();
    move_everything_with_kubectl(&sb);

    // Dry run: the seven deletes, reads only.
    let before = sb.mutating_requests().len();
    let o = finish(&sb, &["--dry-run"]);
    assert_success(&o, "dry run");
    let out = stdout(&o);
    for line in [
        "Would delete MutatingWebhookConfiguration istio-sidecar-injector-asm-191-1",
        "Would delete MutatingWebhookConfiguration istio-sidecar-injector",
        "Would delete Deployment istio-system/istiod-asm-191-1",
        "Would delete Service istio-system/istiod-asm-191-1",
        "Would delete HorizontalPodAutoscaler istio-system/istiod-asm-191-1",
        "Would delete PodDisruptionBudget istio-system/istiod-asm-191-1",
        "Would delete Service istio-system/istiod",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    assert!(
        out.contains("Plan: 0 to add, 0 to change, 7 to delete, 0 waits."),
        "{out}"
    );
    assert_eq!(sb.mutating_requests().len(), before, "the dry run wrote");

    // Apply: seven DELETEs, nothing else written; the run report keeps each object.
    let dir = sb.dir.path().join("finish-run");
    let o = finish(&sb, &["--yes", "-D", dir.to_str().unwrap()]);
    assert_success(&o, "asm migrate --finish --yes");
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let recorded: BTreeSet<(String, String)> = run["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["status"], "done", "{a}");
            assert_eq!(a["prior"]["change"], "deleted", "{a}");
            let o = &a["prior"]["object"];
            (
                o["kind"].as_str().unwrap().to_string(),
                o["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(recorded.len(), 7, "{recorded:?}");
    assert!(recorded.contains(&("Deployment".into(), "istiod-asm-191-1".into())));
    assert!(recorded.contains(&("Service".into(), "istiod".into())));
    let mut deleted = deletes_since(&sb, before);
    deleted.sort();
    assert_eq!(
        deleted,
        [
            "/api/v1/namespaces/istio-system/services/istiod",
            "/api/v1/namespaces/istio-system/services/istiod-asm-191-1",
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/istio-sidecar-injector",
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/istio-sidecar-injector-asm-191-1",
            "/apis/apps/v1/namespaces/istio-system/deployments/istiod-asm-191-1",
            "/apis/autoscaling/v2/namespaces/istio-system/horizontalpodautoscalers/istiod-asm-191-1",
            "/apis/policy/v1/namespaces/istio-system/poddisruptionbudgets/istiod-asm-191-1",
        ]
    );
    for (resource, ns, name) in OLD_CONTROL_PLANE {
        assert!(
            !exists(&sb, resource, ns, name),
            "{resource} {name} remains"
        );
    }
    // What is not the old control plane stays.
    for (resource, ns, name) in [
        ("mutatingwebhookconfiguration", None, "istiod-asm-managed"),
        ("service", Some("istio-system"), "istio-ingressgateway"),
        ("deployment", Some("istio-system"), "istio-ingressgateway"),
    ] {
        assert!(
            exists(&sb, resource, ns, name),
            "{resource} {name} was deleted"
        );
    }
    assert!(pods_on(&sb, MANAGED).len() == 12);

    // A second run plans nothing and writes nothing.
    let before = sb.mutating_requests().len();
    let o = finish(&sb, &["--dry-run", "-o", "json"]);
    assert_success(&o, "second dry run");
    let plan: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(plan["actions"], Value::Array(vec![]), "{plan:#}");
    let o = finish(&sb, &["--yes"]);
    assert_success(&o, "second run");
    assert_eq!(sb.mutating_requests().len(), before);
}

/// Runs `asm migrate --finish --yes` and SIGKILLs it right after its k-th write; whether
/// it was killed (not finished first).
fn finish_killed_after(sb: &TestSandbox, k: usize) -> bool {
    let mut args = strs(&["migrate", "--finish", "--yes"]);
    args.extend(target(sb, "cluster-1"));
    kill_after_write(sb, &args, k)
}

#[test]
fn finish_killed_at_every_write_converges_when_run_again() {
    let n = OLD_CONTROL_PLANE.len();
    let mut killed = 0;
    for k in 1..=n {
        let sb = in_cluster_with_managed();
        move_everything_with_kubectl(&sb);
        assert!(
            finish_killed_after(&sb, k),
            "k={k}: the run finished before its k-th mutating request"
        );
        killed += 1;
        let o = finish(&sb, &["--yes"]);
        assert_success(&o, &format!("re-run after kill at k={k}"));
        for (resource, ns, name) in OLD_CONTROL_PLANE {
            assert!(
                !exists(&sb, resource, ns, name),
                "k={k}: {resource} {name} remains"
            );
        }
        let o = finish(&sb, &["--dry-run", "-o", "json"]);
        let plan: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(plan["actions"], Value::Array(vec![]), "k={k}: {plan:#}");
    }
    assert_eq!(killed, 7, "one kill point per delete");
}

#[test]
fn after_migrate_rollback_migrate_with_asm_finish_removes_the_old_control_plane_and_rollback_refuses()
 {
    let sb = in_cluster_with_managed();
    let run = |args: &[&str]| {
        let mut a = strs(args);
        a.extend(target(&sb, "cluster-1"));
        a.push("--yes".into());
        asm(&sb, &a)
    };
    for step in [
        &["migrate", "--all-namespaces"][..],
        &["rollback"],
        &["migrate", "--all-namespaces"],
    ] {
        assert_success(&run(step), &format!("asm {}", step.join(" ")));
    }
    assert!(pods_on(&sb, OLD).is_empty());
    assert_eq!(pods_on(&sb, MANAGED).len(), 12);
    assert_success(&run(&["migrate", "--finish"]), "asm migrate --finish");
    for (resource, ns, name) in OLD_CONTROL_PLANE {
        assert!(
            !exists(&sb, resource, ns, name),
            "{resource} {name} remains"
        );
    }
    let before = sb.mutating_requests().len();
    let o = run(&["rollback"]);
    assert_eq!(o.status.code(), Some(3), "{}\n{}", stdout(&o), stderr(&o));
    // The check that the old control plane is gone (rollback's ASM-C508) is what refused.
    assert!(
        stdout(&o).contains("ASM-C508") || stderr(&o).contains("ASM-C508"),
        "{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(sb.mutating_requests().len(), before);
}
