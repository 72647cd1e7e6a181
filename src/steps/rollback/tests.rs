//! Planner tests of `rollback`: a migration record in, restorations out.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::plan::CheckStatus;
use crate::steps::kube_actions::KubeStep;
use crate::steps::migrate::tests::{C1, ids, migrated, observed, written_record};

fn spec(namespaces: &[&str], to_revision: Option<&str>) -> RollbackSpec {
    RollbackSpec {
        mesh: crate::steps::migrate::tests::spec(
            crate::steps::migrate::Namespaces::InMeshOffManaged,
        )
        .mesh,
        namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
        to_revision: to_revision.map(str::to_string),
        plan: crate::spec::PlanFlags {
            yes: true,
            ..Default::default()
        },
    }
}

#[test]
fn rollback_restores_recorded_labels_undoes_the_gateway_and_marks_the_record() {
    let s = spec(&[], None);
    let p = plan_rollback(&s, &observed(&s.mesh, migrated()));
    assert!(!p.blocked(), "{:#?}", p.checks);
    assert_eq!(
        ids(&p),
        [
            "cluster-1/gateway-istio-system-gw/undo",
            "cluster-1/gateway-istio-system-gw/rollout",
            "cluster-1/gateway-istio-system-gw/pods",
            "cluster-1/frontend/labels",
            "cluster-1/frontend/deployment-web/restart",
            "cluster-1/frontend/deployment-web/rollout",
            "cluster-1/frontend/deployment-web/pods",
            "cluster-1/legacy/labels",
            "cluster-1/legacy/deployment-monolith/restart",
            "cluster-1/legacy/deployment-monolith/rollout",
            "cluster-1/legacy/deployment-monolith/pods",
            "cluster-1/migration-record-rolled-back",
        ]
    );
    let legacy = p
        .actions
        .iter()
        .find(|a| a.id == "cluster-1/legacy/labels")
        .unwrap();
    match &legacy.payload.step {
        MigrateStep::Kube(KubeStep::SetMetadata { labels, .. }) => assert_eq!(
            *labels,
            Changes::from([
                ("istio-injection".to_string(), Some("enabled".to_string())),
                ("istio.io/rev".to_string(), None),
            ])
        ),
        other => panic!("{other:?}"),
    }
    let undo = &p.actions[0];
    assert_eq!(
        undo.payload.step,
        MigrateStep::Undo {
            namespace: "istio-system".into(),
            name: "gw".into(),
            revision: "1".into()
        }
    );
    let r = written_record(&p, "cluster-1/migration-record-rolled-back");
    assert_eq!(r.state, RecordState::RolledBack);
    assert!(r.namespaces.iter().all(|n| n.rolled_back));

    // A second rollback, the record marked: nothing.
    let mut after = migrated();
    after.record = Some(r);
    let p = plan_rollback(&s, &observed(&s.mesh, after));
    assert!(p.actions.is_empty() && !p.blocked(), "{:?}", ids(&p));
}

#[test]
fn rollback_of_one_namespace_keeps_the_record_active_for_the_rest() {
    let s = spec(&["legacy"], None);
    let p = plan_rollback(&s, &observed(&s.mesh, migrated()));
    assert_eq!(
        ids(&p),
        [
            "cluster-1/legacy/labels",
            "cluster-1/legacy/deployment-monolith/restart",
            "cluster-1/legacy/deployment-monolith/rollout",
            "cluster-1/legacy/deployment-monolith/pods",
            "cluster-1/migration-record-rolled-back",
        ]
    );
    let r = written_record(&p, "cluster-1/migration-record-rolled-back");
    assert_eq!(r.state, RecordState::Migrated);
    assert!(r.namespace("legacy").unwrap().rolled_back);
    assert!(!r.namespace("frontend").unwrap().rolled_back);
}

#[test]
fn a_deleted_old_control_plane_blocks_the_rollback() {
    let mut state = migrated();
    state.snapshot.istiods.clear();
    let s = spec(&[], None);
    let p = plan_rollback(&s, &observed(&s.mesh, state));
    let c = p
        .checks
        .iter()
        .find(|c| c.code == rollback_codes::OLD_CONTROL_PLANE_GONE)
        .unwrap();
    assert_eq!(c.status, CheckStatus::Fail);
    assert!(c.message.contains("asm-191-1 was deleted"), "{}", c.message);
    assert_eq!(c.cluster.as_deref(), Some(C1));
}

#[test]
fn without_a_record_to_revision_relabels_managed_namespaces() {
    let mut state = migrated();
    state.record = None;
    let s = spec(&[], Some("asm-191-1"));
    let o = observed(&s.mesh, state);
    assert_eq!(clusters_without_record(&o), [0]);
    let p = plan_rollback(&s, &o);
    assert!(!p.blocked(), "{:#?}", p.checks);
    assert_eq!(
        ids(&p)
            .into_iter()
            .filter(|i| i.ends_with("/labels"))
            .collect::<Vec<_>>(),
        ["cluster-1/frontend/labels", "cluster-1/legacy/labels"]
    );
    let s = spec(&[], Some("asm-999"));
    let p = plan_rollback(&s, &observed(&s.mesh, migrated()));
    assert!(p.blocked(), "a record exists: --to-revision refused");
}

#[test]
fn a_deployment_rolled_out_since_the_record_is_undone_to_its_recorded_revision() {
    let mut state = migrated();
    state.workloads[0].revision = Some("2".into());
    let s = spec(&["frontend"], None);
    let p = plan_rollback(&s, &observed(&s.mesh, state));
    assert_eq!(
        ids(&p),
        [
            "cluster-1/frontend/labels",
            "cluster-1/frontend/deployment-web/undo",
            "cluster-1/frontend/deployment-web/rollout",
            "cluster-1/frontend/deployment-web/pods",
            "cluster-1/migration-record-rolled-back",
        ]
    );
    let undo = p.actions.iter().find(|a| a.id.ends_with("/undo")).unwrap();
    assert_eq!(undo.depends_on, ["cluster-1/frontend/labels"]);
    assert_eq!(
        undo.payload.step,
        MigrateStep::Undo {
            namespace: "frontend".into(),
            name: "web".into(),
            revision: "1".into()
        }
    );
}
