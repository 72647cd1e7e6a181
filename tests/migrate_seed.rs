//! The seed's migration and rollback, replayed: on one `in-cluster` sandbox the seed's
//! "Migrate applications" and "Roll back" sections run as the seed writes them, with
//! kubectl; on another, `asm migrate --all-namespaces --yes` and `asm rollback --yes`. The
//! end states — namespace labels, the revision of every workload's pods, the gateway's
//! revision — are compared after each half.
//!
//! The seed's steps, after installing the managed control plane:
//! - migrate, for each namespace in the mesh: `kubectl label namespace NS
//!   istio-injection- istio.io/rev=asm-managed --overwrite`, then `kubectl rollout restart
//!   deployment -n NS`, then test before the next namespace; the ingress gateway is
//!   re-rendered in place for the managed revision (its pod template's `istio.io/rev`
//!   label changes, which rolls its pods);
//! - roll back, for each namespace: `kubectl label namespace NS istio-injection-
//!   istio.io/rev=asm-191-1 --overwrite` (the user has to remember the old revision), then
//!   `kubectl rollout restart deployment -n NS`; the gateway: `kubectl -n istio-system
//!   rollout undo deploy istio-ingressgateway`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use serde_json::Value;

use crate::install::{asm, strs, target};
use crate::migrate::{gateway_replicaset, gateway_replicasets};
use crate::migrate_finish::{
    MANAGED, MESHED_NAMESPACES, OLD, in_cluster_with_managed, kubectl, pods_on, wait_until,
};
use crate::support::{TestSandbox, assert_success};

/// What the comparison looks at.
#[derive(Debug, Clone, PartialEq)]
struct EndState {
    /// Every namespace's labels.
    namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// `namespace/workload` → the revision of each live pod's proxy, sorted (`None`:
    /// not injected).
    pod_revisions: BTreeMap<String, Vec<Option<String>>>,
    /// The `istio.io/rev` label of the ingress gateway's pod template.
    gateway_revision: Option<String>,
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The workload a pod belongs to: its `app` label, else its Job's name.
fn workload_of(pod: &Value) -> String {
    let labels = &pod["metadata"]["labels"];
    let name = labels["app"]
        .as_str()
        .or_else(|| labels["job-name"].as_str())
        .unwrap_or_else(|| pod["metadata"]["name"].as_str().unwrap());
    format!("{}/{name}", pod["metadata"]["namespace"].as_str().unwrap())
}

/// The end state as the real kubectl reads it.
fn end_state(sb: &TestSandbox) -> EndState {
    let ns: Value =
        serde_json::from_str(&kubectl(sb, &["get", "namespaces", "-o", "json"])).unwrap();
    let namespace_labels = ns["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["metadata"]["name"].as_str().unwrap().to_string(),
                string_map(&n["metadata"]["labels"]),
            )
        })
        .collect();
    let pods: Value =
        serde_json::from_str(&kubectl(sb, &["get", "pods", "-A", "-o", "json"])).unwrap();
    let mut pod_revisions: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for p in pods["items"].as_array().unwrap() {
        let finished = matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
        if !p["metadata"]["deletionTimestamp"].is_null() || finished {
            continue;
        }
        let rev = p["metadata"]["annotations"]["sidecar.istio.io/status"]
            .as_str()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .and_then(|s| s["revision"].as_str().map(str::to_string));
        pod_revisions.entry(workload_of(p)).or_default().push(rev);
    }
    for revs in pod_revisions.values_mut() {
        revs.sort();
    }
    let gateway_revision = kubectl(
        sb,
        &[
            "get",
            "deployment",
            "istio-ingressgateway",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.spec.template.metadata.labels.istio\\.io/rev}",
        ],
    );
    EndState {
        namespace_labels,
        pod_revisions,
        gateway_revision: Some(gateway_revision).filter(|r| !r.is_empty()),
    }
}

/// Waits until the live pods of `ns` run proxies of `rev` only.
fn wait_namespace_on(sb: &TestSandbox, ns: &str, rev: &str) {
    wait_until(&format!("pods of {ns} on {rev}"), || {
        let pods = crate::migrate_finish::pod_revisions(sb);
        let mine: Vec<&Option<String>> = pods
            .iter()
            .filter(|(p, _)| p.starts_with(&format!("{ns}/")))
            .map(|(_, r)| r)
            .collect();
        !mine.is_empty() && mine.iter().all(|r| r.as_deref() == Some(rev))
    });
}

/// The seed's "Migrate applications", as kubectl commands.
fn seed_migrate(sb: &TestSandbox) {
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
        wait_namespace_on(sb, ns, MANAGED);
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
    wait_until("no pod on the old revision", || pods_on(sb, OLD).is_empty());
}

/// The seed's "Roll back", as kubectl commands.
fn seed_rollback(sb: &TestSandbox) {
    for ns in MESHED_NAMESPACES {
        kubectl(
            sb,
            &[
                "label",
                "namespace",
                ns,
                "istio-injection-",
                &format!("istio.io/rev={OLD}"),
                "--overwrite",
            ],
        );
        kubectl(sb, &["rollout", "restart", "deployment", "-n", ns]);
        wait_namespace_on(sb, ns, OLD);
    }
    let out = kubectl(
        sb,
        &[
            "-n",
            "istio-system",
            "rollout",
            "undo",
            "deploy",
            "istio-ingressgateway",
        ],
    );
    assert_eq!(
        out.trim(),
        "deployment.apps/istio-ingressgateway rolled back"
    );
    wait_until("no pod on the managed revision", || {
        pods_on(sb, MANAGED).is_empty()
    });
}

fn asm_ok(sb: &TestSandbox, args: &[&str]) {
    let mut a = strs(args);
    a.extend(target(sb, "cluster-1"));
    a.push("--yes".into());
    assert_success(&asm(sb, &a), &format!("asm {}", args.join(" ")));
}

#[test]
fn asm_migrate_and_rollback_end_where_the_seeds_kubectl_steps_end() {
    let seed = in_cluster_with_managed();
    let with_asm = in_cluster_with_managed();
    let original = end_state(&seed);
    assert_eq!(
        end_state(&with_asm),
        original,
        "the two sandboxes start alike"
    );
    assert_eq!(original.gateway_revision.as_deref(), Some(OLD));

    let seed_gateway_before = gateway_replicaset(&seed);
    seed_migrate(&seed);
    asm_ok(&with_asm, &["migrate", "--all-namespaces"]);
    let migrated = end_state(&seed);
    assert_eq!(end_state(&with_asm), migrated);
    // What the comparison covered: 12 pods moved, the gateway, 3 namespaces relabelled.
    let on_managed: usize = migrated
        .pod_revisions
        .values()
        .flatten()
        .filter(|r| r.as_deref() == Some(MANAGED))
        .count();
    assert_eq!(on_managed, 12, "{migrated:#?}");
    assert_eq!(migrated.gateway_revision.as_deref(), Some(MANAGED));
    for ns in MESHED_NAMESPACES {
        assert_eq!(
            migrated.namespace_labels[ns]
                .get("istio.io/rev")
                .map(String::as_str),
            Some(MANAGED)
        );
    }

    seed_rollback(&seed);
    asm_ok(&with_asm, &["rollback"]);
    // `rollout undo` scales the gateway's original ReplicaSet back up, as on a real
    // cluster, rather than creating a third one.
    assert_eq!(gateway_replicaset(&seed), seed_gateway_before);
    assert_eq!(gateway_replicasets(&seed).len(), 2);
    let seed_back = end_state(&seed);
    let asm_back = end_state(&with_asm);
    // Pods and the gateway are back on the old revision either way.
    assert_eq!(asm_back.pod_revisions, seed_back.pod_revisions);
    assert_eq!(asm_back.pod_revisions, original.pod_revisions);
    assert_eq!(asm_back.gateway_revision, seed_back.gateway_revision);
    assert_eq!(asm_back.gateway_revision.as_deref(), Some(OLD));
    // Labels: asm restores each namespace's own; the seed writes istio.io/rev=asm-191-1
    // everywhere, so legacy (istio-injection=enabled before) differs, and only legacy.
    assert_eq!(asm_back.namespace_labels, original.namespace_labels);
    let differ: Vec<&String> = seed_back
        .namespace_labels
        .iter()
        .filter(|(ns, labels)| original.namespace_labels.get(*ns) != Some(labels))
        .map(|(ns, _)| ns)
        .collect();
    assert_eq!(differ, ["legacy"], "{seed_back:#?}");
    assert_eq!(
        seed_back.namespace_labels["legacy"]
            .get("istio.io/rev")
            .map(String::as_str),
        Some(OLD)
    );
}
