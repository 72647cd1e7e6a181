//! `asm rollback` end to end on the `in-cluster` scenario after `asm migrate`: the exact
//! labels, pods on asm-191-1 and the gateway on its recorded ReplicaSet, checked with the
//! real kubectl.

#![allow(clippy::unwrap_used)]

use serde_json::Value;

use crate::install::{asm, strs};
use crate::migrate::{
    all_on, changes, gateway_replicaset, injection_labels, installed, kubectl_json, run,
    settled_pods,
};
use crate::support::{assert_success, stderr, stdout};

fn record(sb: &crate::support::TestSandbox) -> Value {
    let cm = kubectl_json(
        sb,
        &[
            "get",
            "configmap",
            "asm-migration",
            "-n",
            "istio-system",
            "-o",
            "json",
        ],
    );
    serde_json::from_str(cm["data"]["record"].as_str().unwrap()).unwrap()
}

#[test]
fn rollback_restores_labels_pods_and_gateway_then_plans_nothing_and_migrate_works_again() {
    let sb = installed(&[]);
    let labels_before = injection_labels(&sb);
    let gateway_before = gateway_replicaset(&sb);
    assert_eq!(gateway_before.1, "asm-191-1");
    assert_success(
        &run(&sb, "migrate", &["--all-namespaces", "--yes"]),
        "asm migrate",
    );
    assert_eq!(record(&sb)["state"], "migrated");
    assert_ne!(gateway_replicaset(&sb), gateway_before);

    let before = sb.mutating_requests().len();
    let dry = run(&sb, "rollback", &["--dry-run"]);
    assert_success(&dry, "rollback --dry-run");
    assert_eq!(sb.mutating_requests().len(), before, "a dry run only reads");
    assert!(
        stdout(&dry)
            .contains("Would roll back Deployment istio-system/istio-ingressgateway to revision 1"),
        "{}",
        stdout(&dry)
    );

    let o = run(&sb, "rollback", &["--yes"]);
    assert_success(&o, "asm rollback");
    assert_eq!(injection_labels(&sb), labels_before);
    let pods = settled_pods(&sb, |p| all_on(p, "asm-191-1"));
    assert!(all_on(&pods, "asm-191-1"), "{pods:?}");
    assert_eq!(
        gateway_replicaset(&sb),
        gateway_before,
        "the gateway is back on its recorded ReplicaSet"
    );
    assert_eq!(record(&sb)["state"], "rolled-back");

    let again = run(&sb, "rollback", &["--dry-run", "-o", "json"]);
    assert_success(&again, "second rollback");
    let plan: Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(changes(&plan), 0, "{plan:#}");
    assert_eq!(run(&sb, "rollback", &["--yes"]).status.code(), Some(0));

    // A later migrate starts a new record and moves everything again.
    assert_success(
        &run(&sb, "migrate", &["--all-namespaces", "--yes"]),
        "second migrate",
    );
    let r = record(&sb);
    assert_eq!(r["state"], "migrated");
    assert!(
        r["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["rolled_back"] == false),
        "{r:#}"
    );
    let pods = settled_pods(&sb, |p| all_on(p, "asm-managed"));
    assert!(all_on(&pods, "asm-managed"), "{pods:?}");
}

#[test]
fn rollback_without_a_record_exits_2_unless_given_a_revision() {
    let sb = installed(&[]);
    let o = run(&sb, "rollback", &["--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no migration record"), "{}", stderr(&o));

    // By hand, frontend moved; --to-revision brings it back without a record.
    let o = sb
        .kubectl(&[
            "label",
            "namespace",
            "frontend",
            "istio.io/rev=asm-managed",
            "--overwrite",
        ])
        .unwrap();
    assert_success(&o, "kubectl label");
    let o = sb
        .kubectl(&["rollout", "restart", "deployment", "-n", "frontend"])
        .unwrap();
    assert_success(&o, "kubectl rollout restart");
    let o = run(
        &sb,
        "rollback",
        &[
            "--to-revision",
            "asm-191-1",
            "--namespace",
            "frontend",
            "--yes",
        ],
    );
    assert_success(&o, "rollback --to-revision");
    assert_eq!(
        injection_labels(&sb)["frontend"]["istio.io/rev"],
        "asm-191-1"
    );
    let pods = settled_pods(&sb, |p| p["frontend"].iter().all(|r| r == "asm-191-1"));
    assert!(
        pods["frontend"].iter().all(|r| r == "asm-191-1"),
        "{pods:?}"
    );
}

#[test]
fn rollback_refuses_when_the_old_control_plane_was_deleted() {
    let sb = installed(&[]);
    assert_success(
        &run(&sb, "migrate", &["--all-namespaces", "--yes"]),
        "asm migrate",
    );
    let o = sb
        .kubectl(&[
            "delete",
            "deployment",
            "istiod-asm-191-1",
            "-n",
            "istio-system",
        ])
        .unwrap();
    assert_success(&o, "kubectl delete");
    let before = sb.mutating_requests().len();
    let o = run(&sb, "rollback", &["--yes"]);
    assert_eq!(o.status.code(), Some(3), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("the in-cluster control plane asm-191-1 was deleted"),
        "{}",
        stdout(&o)
    );
    assert_eq!(sb.mutating_requests().len(), before, "nothing changed");
}

#[test]
fn a_saved_rollback_plan_applies_exactly_and_is_refused_once_a_namespace_changed() {
    let sb = installed(&[]);
    let labels_before = injection_labels(&sb);
    assert_success(
        &run(&sb, "migrate", &["--all-namespaces", "--yes"]),
        "asm migrate",
    );
    let file = sb.dir.path().join("rollback-plan.json");
    let before = sb.mutating_requests().len();
    let o = run(&sb, "rollback", &["--plan-out", file.to_str().unwrap()]);
    assert_success(&o, "rollback --plan-out");
    assert_eq!(
        sb.mutating_requests().len(),
        before,
        "saving a plan only reads"
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["saved"]["command"], "rollback");
    assert!(changes(&saved) > 0, "{saved:#}");
    assert!(!format!("{saved}").contains(sb.sandbox().token()));

    // Relabelled by someone else since: refused, naming the namespace; nothing changed.
    let o = sb
        .kubectl(&["label", "namespace", "backend", "team=payments"])
        .unwrap();
    assert_success(&o, "kubectl label");
    let before = sb.mutating_requests().len();
    let o = asm(&sb, &strs(&["apply", file.to_str().unwrap(), "--yes"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("Namespace/backend"), "{}", stderr(&o));
    assert_eq!(sb.mutating_requests().len(), before);

    // A fresh plan applies exactly its actions, and the cluster is back where it was.
    let o = run(&sb, "rollback", &["--plan-out", file.to_str().unwrap()]);
    assert_success(&o, "rollback --plan-out, again");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let o = asm(
        &sb,
        &strs(&["apply", file.to_str().unwrap(), "--yes", "-o", "json"]),
    );
    assert_success(&o, "asm apply");
    let applied: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let ids = |doc: &Value, key: &str| -> Vec<String> {
        let mut ids: Vec<String> = doc[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let ran = ids(&applied["result"], "run");
    assert_eq!(ran, ids(&saved, "actions"), "exactly the saved actions ran");
    assert_eq!(applied["result"]["status"], "applied", "{applied:#}");
    assert!(
        applied["result"]["run"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "done"),
        "{applied:#}"
    );
    assert_eq!(injection_labels(&sb), labels_before);
    let pods = settled_pods(&sb, |p| all_on(p, "asm-191-1"));
    assert!(all_on(&pods, "asm-191-1"), "{pods:?}");
    assert_eq!(record(&sb)["state"], "rolled-back");
}
