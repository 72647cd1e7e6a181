//! Planner tests of `migrate` (and the fixtures `rollback`'s tests share): observations in,
//! checks and actions out.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::spec::{EnableFlags, Management, MeshSpec};
use crate::steps::tests::{installed, spec as mesh_spec};

pub const C1: &str = "asm-incluster/us-central1-c/cluster-1";

pub fn spec(namespaces: Namespaces) -> MigrateSpec {
    MigrateSpec {
        mesh: mesh_spec(&[C1], EnableFlags::default(), Management::Automatic),
        namespaces,
        to: None,
        managed_dataplane: false,
        no_restart: false,
        gateways: None,
        parallel: 1,
        restart_all_kinds: false,
        plan: crate::spec::PlanFlags {
            yes: true,
            ..Default::default()
        },
    }
}

fn injector(name: &str, rev: &str, ns_selector: Value, by_url: bool) -> Value {
    let client = if by_url {
        json!({"url": "https://meshconfig.googleapis.com/inject"})
    } else {
        json!({"service": {"name": format!("istiod-{rev}"), "namespace": "istio-system"}})
    };
    json!({"metadata": {"name": name, "labels": {"istio.io/rev": rev}},
        "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io", "clientConfig": client,
            "namespaceSelector": ns_selector}]})
}

fn istiod(tag: &str, ca: Option<&str>) -> Value {
    let mut env = vec![json!({"name": "REVISION", "value": "asm-191-1"})];
    if let Some(ca) = ca {
        env.push(json!({"name": "CA_ADDR", "value": ca}));
    }
    json!({"metadata": {"name": "istiod-asm-191-1", "namespace": "istio-system",
            "labels": {"app": "istiod", "istio.io/rev": "asm-191-1"}},
        "spec": {"template": {"spec": {"containers": [{"name": "discovery",
            "image": format!("gcr.io/gke-release/asm/pilot:{tag}"), "env": env}]}}}})
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}})
}

/// A pod of Deployment `deploy` (ReplicaSet `deploy-h1`) injected by `rev`.
pub fn pod(ns: &str, deploy: &str, i: usize, rev: Option<&str>) -> Value {
    let mut p = json!({"metadata": {"name": format!("{deploy}-h1-{i}"), "namespace": ns,
            "labels": {"app": deploy, "pod-template-hash": "h1"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": format!("{deploy}-h1"), "controller": true}]},
        "status": {"phase": "Running"}});
    if let Some(r) = rev {
        p["metadata"]["annotations"] = json!({"sidecar.istio.io/status":
            format!("{{\"containers\":[\"istio-proxy\"],\"revision\":\"{r}\"}}")});
    }
    p
}

pub fn deployment(ns: &str, name: &str, template_labels: Value, gateway: bool) -> Workload {
    let mut d = json!({"metadata": {"name": name, "namespace": ns,
            "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": template_labels}}}});
    if gateway {
        d["spec"]["template"]["metadata"]["annotations"] =
            json!({"inject.istio.io/templates": "gateway"});
    }
    Workload::from_json("Deployment", &d)
}

/// The in-cluster scenario after `asm install --managed`: asm-191-1 (1.9, Mesh CA) injects
/// frontend (istio.io/rev) and legacy (istio-injection=enabled, through the default tag);
/// batch is not in the mesh; a gateway in istio-system asks for asm-191-1 by pod label.
pub fn in_cluster() -> ClusterState {
    let webhooks = vec![
        injector(
            "istio-sidecar-injector",
            "asm-191-1",
            json!({"matchExpressions": [{"key": "istio-injection", "operator": "In", "values": ["enabled"]}]}),
            false,
        ),
        injector(
            "istio-sidecar-injector-asm-191-1",
            "asm-191-1",
            json!({"matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": ["asm-191-1"]},
                {"key": "istio-injection", "operator": "DoesNotExist"}]}),
            false,
        ),
        injector(
            "istiod-asm-managed",
            "asm-managed",
            json!({"matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": ["asm-managed"]},
                {"key": "istio-injection", "operator": "DoesNotExist"}]}),
            true,
        ),
    ];
    let mut gw_pod = pod("istio-system", "gw", 0, Some("asm-191-1"));
    gw_pod["metadata"]["labels"]["istio.io/rev"] = json!("asm-191-1");
    ClusterState {
        snapshot: KubeSnapshot {
            control_plane_revisions: vec![json!({"metadata": {"name": "asm-managed"},
                "status": {"conditions": [{"type": "ProvisioningFinished", "status": "True"}]}})],
            istiods: vec![istiod("1.9.1-asm.1", Some("meshca.googleapis.com:443"))],
            webhooks,
            namespaces: vec![
                namespace("batch", json!({})),
                namespace("frontend", json!({"istio.io/rev": "asm-191-1"})),
                namespace("istio-system", json!({})),
                namespace("kube-system", json!({})),
                namespace("legacy", json!({"istio-injection": "enabled"})),
            ],
            pods: vec![
                pod("frontend", "web", 0, Some("asm-191-1")),
                pod("frontend", "web", 1, Some("asm-191-1")),
                pod("legacy", "monolith", 0, Some("asm-191-1")),
                gw_pod,
                json!({"metadata": {"name": "cache-0", "namespace": "batch",
                    "ownerReferences": [{"kind": "StatefulSet", "name": "cache", "controller": true}]},
                    "status": {"phase": "Running"}}),
            ],
            ..KubeSnapshot::default()
        },
        workloads: vec![
            deployment("frontend", "web", json!({"app": "web"}), false),
            deployment("legacy", "monolith", json!({"app": "monolith"}), false),
            deployment(
                "istio-system",
                "gw",
                json!({"app": "gw", "istio.io/rev": "asm-191-1"}),
                true,
            ),
        ],
        record: None,
    }
}

pub fn observed(s: &MeshSpec, state: ClusterState) -> Observed {
    Observed {
        mesh: installed(s),
        clusters: vec![Some(Ok(state))],
    }
}

pub fn ids<P>(p: &Plan<P>) -> Vec<&str> {
    p.actions.iter().map(|a| a.id.as_str()).collect()
}

fn action<'a>(p: &'a MigratePlan, id: &str) -> &'a Action<ClusterStep> {
    p.actions
        .iter()
        .find(|a| a.id == id)
        .unwrap_or_else(|| panic!("no action {id}: {:?}", ids(p)))
}

/// The record the plan writes first.
pub fn written_record(p: &MigratePlan, id: &str) -> MigrationRecord {
    match &action(p, id).payload.step {
        MigrateStep::Kube(KubeStep::Apply { object }) => {
            MigrationRecord::from_config_map(object).unwrap()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn all_namespaces_moves_each_namespace_in_turn_then_the_gateway() {
    let s = spec(Namespaces::InMeshOffManaged);
    let p = plan_migrate(&s, &observed(&s.mesh, in_cluster()));
    assert!(!p.blocked(), "{:#?}", p.checks);
    assert_eq!(
        ids(&p),
        [
            "cluster-1/migration-record",
            "cluster-1/frontend/labels",
            "cluster-1/frontend/deployment-web/restart",
            "cluster-1/frontend/deployment-web/rollout",
            "cluster-1/frontend/deployment-web/pods",
            "cluster-1/legacy/labels",
            "cluster-1/legacy/deployment-monolith/restart",
            "cluster-1/legacy/deployment-monolith/rollout",
            "cluster-1/legacy/deployment-monolith/pods",
            "cluster-1/gateway-istio-system-gw/revision",
            "cluster-1/gateway-istio-system-gw/rollout",
            "cluster-1/gateway-istio-system-gw/pods",
            "cluster-1/migration-record-migrated",
        ]
    );
    // The next namespace waits for the previous one's pods: the health gate.
    assert_eq!(
        action(&p, "cluster-1/legacy/labels").depends_on,
        [
            "cluster-1/migration-record",
            "cluster-1/frontend/deployment-web/pods"
        ]
    );
    assert_eq!(
        action(&p, "cluster-1/gateway-istio-system-gw/revision").depends_on,
        [
            "cluster-1/migration-record",
            "cluster-1/legacy/deployment-monolith/pods"
        ]
    );
    match &action(&p, "cluster-1/legacy/labels").payload.step {
        MigrateStep::Kube(KubeStep::SetMetadata { labels, .. }) => assert_eq!(
            *labels,
            Changes::from([
                ("istio-injection".to_string(), None),
                ("istio.io/rev".to_string(), Some("asm-managed".to_string())),
            ])
        ),
        other => panic!("{other:?}"),
    }
    let r = written_record(&p, "cluster-1/migration-record");
    assert_eq!(r.state, RecordState::Migrating);
    assert_eq!(
        (r.from.clone(), r.to.as_str()),
        (vec!["asm-191-1".to_string()], "asm-managed")
    );
    let legacy = r.namespace("legacy").unwrap();
    assert_eq!(
        legacy.labels,
        PriorValues::from([
            ("istio-injection".to_string(), Some("enabled".to_string())),
            ("istio.io/rev".to_string(), None),
        ])
    );
    assert_eq!(legacy.deployments["monolith"].as_deref(), Some("1"));
    assert_eq!(
        r.gateway("istio-system", "gw").unwrap().revision.as_deref(),
        Some("1")
    );
    let last = written_record(&p, "cluster-1/migration-record-migrated");
    assert_eq!(last.state, RecordState::Migrated);
    // batch (not in the mesh) and kube-system are never selected.
    assert!(
        !ids(&p)
            .iter()
            .any(|i| i.contains("batch") || i.contains("kube-system"))
    );
}

use crate::plan::record::PriorValues;

#[test]
fn parallel_lanes_do_not_wait_for_each_other() {
    let s = MigrateSpec {
        parallel: 2,
        ..spec(Namespaces::InMeshOffManaged)
    };
    let p = plan_migrate(&s, &observed(&s.mesh, in_cluster()));
    assert_eq!(
        action(&p, "cluster-1/legacy/labels").depends_on,
        ["cluster-1/migration-record"]
    );
}

#[test]
fn an_old_control_plane_before_1_9_or_on_istio_ca_blocks_quoting_the_rule() {
    for (tag, ca, needle) in [
        (
            "1.8.3-asm.2",
            Some("meshca.googleapis.com:443"),
            "older than ASM 1.9",
        ),
        ("1.9.1-asm.1", None, "uses CA istiod, not Mesh CA"),
    ] {
        let mut state = in_cluster();
        state.snapshot.istiods = vec![istiod(tag, ca)];
        let s = spec(Namespaces::InMeshOffManaged);
        let p = plan_migrate(&s, &observed(&s.mesh, state));
        assert!(p.blocked());
        let c = p
            .checks
            .iter()
            .find(|c| c.code == codes::OLD_CONTROL_PLANE)
            .unwrap();
        assert_eq!(c.status, CheckStatus::Fail);
        assert!(c.message.contains(needle), "{}", c.message);
        assert!(
            c.hint
                .as_deref()
                .unwrap()
                .contains("Istio CA must first move to Mesh CA")
        );
    }
}

#[test]
fn a_managed_control_plane_not_ready_and_a_missing_namespace_block() {
    let mut state = in_cluster();
    state.snapshot.control_plane_revisions.clear();
    let s = spec(Namespaces::Named(vec!["frontend".into(), "nope".into()]));
    let p = plan_migrate(&s, &observed(&s.mesh, state));
    let failed: Vec<&str> = p
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .map(|c| c.code)
        .collect();
    assert_eq!(failed, [codes::CONTROL_PLANE, codes::NAMESPACE]);
}

/// The in-cluster scenario once everything moved (labels, pods, gateway) and the record
/// says migrated.
pub fn migrated() -> ClusterState {
    let s = spec(Namespaces::InMeshOffManaged);
    let before = in_cluster();
    let p = plan_migrate(&s, &observed(&s.mesh, before.clone()));
    let record = written_record(&p, "cluster-1/migration-record-migrated");
    let mut state = before;
    state.snapshot.namespaces = vec![
        namespace("batch", json!({})),
        namespace("frontend", json!({"istio.io/rev": "asm-managed"})),
        namespace("istio-system", json!({})),
        namespace("legacy", json!({"istio.io/rev": "asm-managed"})),
    ];
    let mut gw_pod = pod("istio-system", "gw", 0, Some("asm-managed"));
    gw_pod["metadata"]["labels"]["istio.io/rev"] = json!("asm-managed");
    state.snapshot.pods = vec![
        pod("frontend", "web", 0, Some("asm-managed")),
        pod("legacy", "monolith", 0, Some("asm-managed")),
        gw_pod,
    ];
    state.workloads[2] = deployment(
        "istio-system",
        "gw",
        json!({"app": "gw", "istio.io/rev": "asm-managed"}),
        true,
    );
    state.record = Some(record);
    state
}

#[test]
fn a_second_migrate_plans_nothing() {
    let s = spec(Namespaces::InMeshOffManaged);
    let p = plan_migrate(&s, &observed(&s.mesh, migrated()));
    assert!(p.actions.is_empty(), "{:?}", ids(&p));
    assert!(!p.blocked());
}

#[test]
fn a_run_stopped_after_relabelling_keeps_the_recorded_labels_and_restarts() {
    let s = spec(Namespaces::InMeshOffManaged);
    let before = in_cluster();
    let first = plan_migrate(&s, &observed(&s.mesh, before.clone()));
    let mut state = before;
    state.record = Some(written_record(&first, "cluster-1/migration-record"));
    state.snapshot.namespaces[1] = namespace("frontend", json!({"istio.io/rev": "asm-managed"}));
    let p = plan_migrate(&s, &observed(&s.mesh, state));
    assert!(
        !ids(&p).contains(&"cluster-1/migration-record"),
        "record unchanged: {:?}",
        ids(&p)
    );
    assert!(!ids(&p).contains(&"cluster-1/frontend/labels"));
    assert!(ids(&p).contains(&"cluster-1/frontend/deployment-web/restart"));
    let r = written_record(&p, "cluster-1/migration-record-migrated");
    assert_eq!(
        r.namespace("frontend").unwrap().labels["istio.io/rev"].as_deref(),
        Some("asm-191-1")
    );
}

#[test]
fn a_namespace_outside_the_mesh_joins_when_named_and_statefulsets_are_listed() {
    let s = spec(Namespaces::Named(vec!["batch".into()]));
    let mut state = in_cluster();
    state.workloads.push(Workload::from_json(
        "StatefulSet",
        &json!({"metadata": {"name": "cache", "namespace": "batch"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cache"}}}}),
    ));
    let p = plan_migrate(&s, &observed(&s.mesh, state.clone()));
    assert_eq!(
        ids(&p),
        [
            "cluster-1/migration-record",
            "cluster-1/batch/labels",
            "cluster-1/migration-record-migrated"
        ]
    );
    let manual = p
        .checks
        .iter()
        .find(|c| c.code == codes::MANUAL_RESTART)
        .unwrap();
    assert!(
        manual.message.contains("StatefulSet batch/cache"),
        "{}",
        manual.message
    );
    let all = MigrateSpec {
        restart_all_kinds: true,
        ..s
    };
    let p = plan_migrate(&all, &observed(&all.mesh, state));
    assert!(ids(&p).contains(&"cluster-1/batch/statefulset-cache/restart"));
}

#[test]
fn version_of_reads_major_and_minor() {
    assert_eq!(version_of("1.9.1-asm.1"), Some((1, 9)));
    assert_eq!(version_of("1.23.6-asm.14"), Some((1, 23)));
    assert_eq!(version_of("latest"), None);
}

#[test]
fn managed_dataplane_annotates_with_the_relabel_and_records_the_previous_value() {
    let s = MigrateSpec {
        managed_dataplane: true,
        ..spec(Namespaces::Named(vec!["frontend".into()]))
    };
    let p = plan_migrate(&s, &observed(&s.mesh, in_cluster()));
    match &action(&p, "cluster-1/frontend/labels").payload.step {
        MigrateStep::Kube(KubeStep::SetMetadata { annotations, .. }) => assert_eq!(
            *annotations,
            Changes::from([(
                PROXY_ANNOTATION.to_string(),
                Some(r#"{"managed":"true"}"#.to_string())
            )])
        ),
        other => panic!("{other:?}"),
    }
    let r = written_record(&p, "cluster-1/migration-record");
    assert_eq!(
        r.namespace("frontend").unwrap().annotations,
        PriorValues::from([(PROXY_ANNOTATION.to_string(), None)])
    );
    // Named frontend only: the istio-system gateway stays unless --gateways.
    assert!(!ids(&p).iter().any(|i| i.contains("gateway")));
    let with = MigrateSpec {
        gateways: Some(true),
        ..s
    };
    let p = plan_migrate(&with, &observed(&with.mesh, in_cluster()));
    assert!(ids(&p).contains(&"cluster-1/gateway-istio-system-gw/revision"));
}

#[test]
fn a_saved_payload_keeps_the_kind_of_a_kubernetes_step_and_names_every_step() {
    let relabel = ClusterStep {
        cluster: 0,
        step: MigrateStep::Kube(KubeStep::SetMetadata {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: "frontend".into(),
            labels: BTreeMap::from([("istio.io/rev".into(), Some("asm-managed".into()))]),
            annotations: BTreeMap::new(),
        }),
    };
    let undo = ClusterStep {
        cluster: 1,
        step: MigrateStep::Undo {
            namespace: "istio-system".into(),
            name: "istio-ingressgateway".into(),
            revision: "1".into(),
        },
    };
    let relabel = serde_json::to_value(&relabel).unwrap();
    assert_eq!(relabel["step"]["step"], "set_metadata");
    assert_eq!(relabel["step"]["kind"], "Namespace");
    let undo = serde_json::to_value(&undo).unwrap();
    assert_eq!(undo["step"]["step"], "undo");
    assert_eq!(undo["cluster"], 1);
}
