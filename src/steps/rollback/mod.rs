//! `asm rollback`: undo `asm migrate` from its record (ConfigMap
//! `istio-system/asm-migration`), or, without one, relabel namespaces to a revision given
//! with `--to-revision`.
//!
//! [`plan_rollback`] is pure: each recorded namespace gets its labels and annotations back
//! exactly, its Deployments restarted and waited for until their pods run proxies of the
//! old revision; each recorded gateway is rolled back to its recorded ReplicaSet revision
//! (as `kubectl rollout undo --to-revision` does); last, the record is marked rolled back,
//! so a second rollback plans nothing. A deleted old control plane blocks the plan.

pub mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::kube::metadata::{Changes, string_map, unmet};
use crate::plan::{Action, Check, CheckStatus, Op, Target};
use crate::steps::dataplane::spec::is_system_namespace;
use crate::steps::kube_actions::{cluster_label, set_metadata_action};
use crate::steps::migrate::record::{MigrationRecord, RecordState};
use crate::steps::migrate::{
    ClusterState, ClusterStep, INJECTION_LABEL, MigratePlan, MigrateStep, Observed, REV_LABEL,
    Workload, cluster_inputs, codes, istiod_of, managed_revisions, off_revision, on_cluster,
    pods_of, record_action, restart_and_wait, rollout_waits,
};
use crate::steps::status::report::{injectors, labels_of, resolve};

pub use spec::RollbackSpec;

/// Stable check codes of `rollback` (besides `migrate`'s).
pub mod rollback_codes {
    pub const OLD_CONTROL_PLANE_GONE: &str = "ASM-C508";
    pub const TO_REVISION: &str = "ASM-C509";
}

fn text<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

/// The clusters with no migration record at all (rollback has nothing to read there).
pub fn clusters_without_record(obs: &Observed) -> Vec<usize> {
    obs.clusters
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c, Some(Ok(s)) if s.record.is_none()))
        .map(|(i, _)| i)
        .collect()
}

/// Plans `asm rollback` (pure).
pub fn plan_rollback(spec: &RollbackSpec, obs: &Observed) -> MigratePlan {
    let mut plan = MigratePlan::default();
    for i in 0..spec.mesh.clusters.len() {
        let cref = spec.mesh.clusters[i].to_string();
        let state = match cluster_inputs(obs, i, &cref) {
            Ok((_, s)) => s,
            Err(check) => {
                plan.checks.push(check);
                continue;
            }
        };
        let id = cluster_label(&spec.mesh.clusters, i);
        let active = state.record.as_ref().filter(|r| r.active());
        match (active, &spec.to_revision) {
            (Some(_), Some(rev)) => plan.checks.push(
                Check::new(
                    rollback_codes::TO_REVISION,
                    CheckStatus::Fail,
                    Some(&cref),
                    format!(
                        "a migration record exists: asm rollback restores what it recorded, \
                         not --to-revision {rev}"
                    ),
                )
                .hint("drop --to-revision"),
            ),
            (Some(r), None) => from_record(spec, state, r, i, &cref, &id, &mut plan),
            (None, Some(rev)) => to_revision(spec, state, rev, i, &cref, &id, &mut plan),
            (None, None) => plan.checks.push(Check::new(
                codes::RECORD,
                CheckStatus::Ok,
                Some(&cref),
                "the migration record istio-system/asm-migration is already rolled back: \
                 nothing to do",
            )),
        }
    }
    plan
}

/// Whether the in-cluster control plane of `revision` still runs: its istiod Deployment and
/// an injector webhook of the revision.
fn control_plane_exists(state: &ClusterState, revision: &str) -> bool {
    istiod_of(&state.snapshot, revision).is_some()
        && injectors(&state.snapshot.webhooks)
            .iter()
            .any(|i| i.revision == revision)
}

fn from_record(
    spec: &RollbackSpec,
    state: &ClusterState,
    record: &MigrationRecord,
    i: usize,
    cref: &str,
    id: &str,
    plan: &mut MigratePlan,
) {
    let cluster = Some(cref);
    let snap = &state.snapshot;
    let chosen_ns =
        |name: &str| spec.namespaces.is_empty() || spec.namespaces.iter().any(|n| n == name);
    for n in &spec.namespaces {
        if record.namespace(n).is_none() && !record.gateways.iter().any(|g| &g.namespace == n) {
            plan.checks.push(
                Check::new(
                    codes::NAMESPACE,
                    CheckStatus::Fail,
                    cluster,
                    format!("namespace {n} is not in the migration record"),
                )
                .hint(format!(
                    "the record holds: {}",
                    record
                        .namespaces
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        }
    }
    let namespaces: Vec<_> = record
        .namespaces
        .iter()
        .filter(|n| !n.rolled_back && chosen_ns(&n.name))
        .collect();
    let gateways: Vec<_> = record
        .gateways
        .iter()
        .filter(|g| !g.rolled_back && chosen_ns(&g.namespace))
        .collect();
    if namespaces.is_empty() && gateways.is_empty() {
        plan.checks.push(Check::new(
            codes::RECORD,
            CheckStatus::Ok,
            cluster,
            "everything named is already rolled back",
        ));
        return;
    }
    // The old control plane must still be there to inject the pods again.
    let revisions: BTreeSet<&str> = namespaces
        .iter()
        .filter_map(|n| n.revision.as_deref())
        .chain(gateways.iter().filter_map(|g| g.rev_label.as_deref()))
        .collect();
    for rev in revisions {
        if control_plane_exists(state, rev) {
            plan.checks.push(Check::new(
                codes::OLD_CONTROL_PLANE,
                CheckStatus::Ok,
                cluster,
                format!("in-cluster control plane {rev} is still installed"),
            ));
        } else {
            plan.checks.push(
                Check::new(
                    rollback_codes::OLD_CONTROL_PLANE_GONE,
                    CheckStatus::Fail,
                    cluster,
                    format!(
                        "the in-cluster control plane {rev} was deleted (no istiod Deployment \
                         or injector webhook of {rev}): pods cannot go back to it"
                    ),
                )
                .hint("stay on the managed control plane, or reinstall the in-cluster one first"),
            );
        }
    }

    let mut ends: Vec<String> = Vec::new();
    // Gateways first: back to their recorded ReplicaSet.
    for g in &gateways {
        let Some(live) = state
            .workloads
            .iter()
            .find(|w| w.kind == "Deployment" && w.namespace == g.namespace && w.name == g.name)
        else {
            continue;
        };
        let Some(rev_label) = &g.rev_label else {
            continue;
        };
        let gid = format!("{id}/gateway-{}-{}", g.namespace, g.name);
        let mut sub = MigratePlan::default();
        if live.template_labels.get(REV_LABEL) != Some(rev_label) {
            let a = match &g.revision {
                Some(r) => undo_action(&gid, i, cref, live, r, &[]),
                None => template_label_action(&gid, i, cref, live, rev_label),
            };
            sub.actions.push(a);
            let undo_id = format!("{gid}/undo");
            ends.extend(rollout_waits(
                &gid,
                i,
                cref,
                live,
                Some(rev_label),
                &undo_id,
                &mut sub,
            ));
        } else {
            let pods = pods_of(snap, live);
            if off_revision(&pods, Some(rev_label)) {
                ends.extend(restart_and_wait(
                    &gid,
                    i,
                    cref,
                    &[live],
                    Some(rev_label),
                    &format!("its pods do not all run proxies of {rev_label}"),
                    &[],
                    &mut sub,
                ));
            }
        }
        plan.actions.extend(sub.actions);
    }

    // Namespaces, one after another.
    let mut previous: Vec<String> = ends.clone();
    for entry in &namespaces {
        let Some(ns) = snap
            .namespaces
            .iter()
            .find(|n| text(n, "/metadata/name") == entry.name)
        else {
            continue;
        };
        let labels = labels_of(ns);
        let annotations = string_map(ns.pointer("/metadata/annotations"));
        let label_changes = unmet(&entry.labels, &labels);
        let annotation_changes = unmet(&entry.annotations, &annotations);
        let nid = format!("{id}/{}", entry.name);
        let mut after = previous.clone();
        let mut finished = Vec::new();
        if !label_changes.is_empty() || !annotation_changes.is_empty() {
            let mut a = set_metadata_action(
                format!("{nid}/labels"),
                cluster,
                "v1",
                "Namespace",
                None,
                &entry.name,
                label_changes,
                annotation_changes,
                "restore the labels and annotations recorded before the migration",
            );
            a.depends_on = after.clone();
            after = vec![a.id.clone()];
            finished.push(a.id.clone());
            plan.actions.push(on_cluster(a, i));
        }
        let deployments: Vec<&Workload> = state
            .workloads
            .iter()
            .filter(|w| w.namespace == entry.name && w.kind == "Deployment")
            .filter(|w| {
                !record
                    .gateways
                    .iter()
                    .any(|g| g.namespace == w.namespace && g.name == w.name)
            })
            .collect();
        let mut sub = MigratePlan::default();
        let mut waits = Vec::new();
        let mut restart = Vec::new();
        for w in deployments {
            match entry.deployments.get(&w.name).cloned().flatten() {
                // Rolled out since: back to the recorded ReplicaSet, as kubectl rollout
                // undo does (its old pods, when they still run, are kept).
                Some(rev) if w.revision.as_deref() != Some(rev.as_str()) => {
                    let base = format!("{nid}/deployment-{}", w.name);
                    let undo = undo_action(&base, i, cref, w, &rev, &after);
                    let undo_id = undo.id.clone();
                    sub.actions.push(undo);
                    waits.extend(rollout_waits(
                        &base,
                        i,
                        cref,
                        w,
                        entry.revision.as_deref(),
                        &undo_id,
                        &mut sub,
                    ));
                }
                _ if off_revision(&pods_of(snap, w), entry.revision.as_deref()) => {
                    restart.push(w);
                }
                _ => {}
            }
        }
        waits.extend(restart_and_wait(
            &nid,
            i,
            cref,
            &restart,
            entry.revision.as_deref(),
            &format!(
                "its pods do not all run proxies of {}",
                entry
                    .revision
                    .as_deref()
                    .unwrap_or("no revision (uninjected)")
            ),
            &after,
            &mut sub,
        ));
        plan.actions.extend(sub.actions);
        if !waits.is_empty() {
            finished = waits;
        }
        if !finished.is_empty() {
            previous = finished.clone();
            ends.extend(finished);
        }
    }

    // The record: the entries rolled back, and the whole of it once nothing is left.
    let mut done = record.clone();
    for n in &mut done.namespaces {
        if chosen_ns(&n.name) {
            n.rolled_back = true;
        }
    }
    for g in &mut done.gateways {
        if chosen_ns(&g.namespace) {
            g.rolled_back = true;
        }
    }
    if done.namespaces.iter().all(|n| n.rolled_back) && done.gateways.iter().all(|g| g.rolled_back)
    {
        done.state = RecordState::RolledBack;
    }
    if let Some(a) = record_action(
        format!("{id}/migration-record-rolled-back"),
        i,
        cref,
        &done,
        true,
        "the record keeps what was rolled back, so a second rollback plans nothing",
        ends,
    ) {
        plan.actions.push(a);
    }
}

fn to_revision(
    spec: &RollbackSpec,
    state: &ClusterState,
    rev: &str,
    i: usize,
    cref: &str,
    id: &str,
    plan: &mut MigratePlan,
) {
    let cluster = Some(cref);
    let snap = &state.snapshot;
    let inj = injectors(&snap.webhooks);
    if inj.iter().any(|x| x.revision == rev) {
        plan.checks.push(Check::new(
            rollback_codes::TO_REVISION,
            CheckStatus::Ok,
            cluster,
            format!("revision {rev} has an injector"),
        ));
    } else {
        plan.checks.push(
            Check::new(
                rollback_codes::TO_REVISION,
                CheckStatus::Fail,
                cluster,
                format!("no injector webhook serves revision {rev}: pods labelled for it would get no proxy"),
            )
            .hint("name an installed revision (asm status lists them)"),
        );
    }
    let managed = managed_revisions(snap, &inj);
    let empty = BTreeMap::new();
    let names: Vec<String> = if spec.namespaces.is_empty() {
        let mut v: Vec<String> = snap
            .namespaces
            .iter()
            .filter(|n| !is_system_namespace(text(n, "/metadata/name")))
            .filter(|n| resolve(&inj, &labels_of(n), &empty).is_some_and(|r| managed.contains(&r)))
            .map(|n| text(n, "/metadata/name").to_string())
            .collect();
        v.sort();
        v
    } else {
        spec.namespaces.clone()
    };
    let want: Changes = [
        (INJECTION_LABEL.to_string(), None),
        (REV_LABEL.to_string(), Some(rev.to_string())),
    ]
    .into();
    let mut previous: Vec<String> = Vec::new();
    for name in &names {
        let Some(ns) = snap
            .namespaces
            .iter()
            .find(|n| text(n, "/metadata/name") == name)
        else {
            plan.checks.push(Check::new(
                codes::NAMESPACE,
                CheckStatus::Fail,
                cluster,
                format!("namespace {name} does not exist"),
            ));
            continue;
        };
        let labels = labels_of(ns);
        let changes: Changes = want
            .iter()
            .filter(|(k, v)| labels.get(*k) != v.as_ref())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let nid = format!("{id}/{name}");
        let mut after = previous.clone();
        let mut finished = Vec::new();
        if !changes.is_empty() {
            let mut a = set_metadata_action(
                format!("{nid}/labels"),
                cluster,
                "v1",
                "Namespace",
                None,
                name,
                changes,
                Changes::new(),
                format!("--to-revision {rev}"),
            );
            a.depends_on = after.clone();
            after = vec![a.id.clone()];
            finished.push(a.id.clone());
            plan.actions.push(on_cluster(a, i));
        }
        let restart: Vec<&Workload> = state
            .workloads
            .iter()
            .filter(|w| &w.namespace == name && w.kind == "Deployment")
            .filter(|w| off_revision(&pods_of(snap, w), Some(rev)))
            .collect();
        let mut sub = MigratePlan::default();
        let waits = restart_and_wait(
            &nid,
            i,
            cref,
            &restart,
            Some(rev),
            &format!("its pods do not all run proxies of {rev}"),
            &after,
            &mut sub,
        );
        plan.actions.extend(sub.actions);
        if !waits.is_empty() {
            finished = waits;
        }
        if !finished.is_empty() {
            previous = finished;
        }
    }
}

/// `kubectl rollout undo deployment/NAME --to-revision=REV` of workload `w`, id `BASE/undo`.
fn undo_action(
    base: &str,
    cluster: usize,
    cref: &str,
    w: &Workload,
    revision: &str,
    after: &[String],
) -> Action<ClusterStep> {
    let what = format!("Deployment {}/{}", w.namespace, w.name);
    Action {
        id: format!("{base}/undo"),
        op: Op::Update,
        cluster: Some(cref.to_string()),
        target: Target {
            api: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some(w.namespace.clone()),
            name: w.name.clone(),
        },
        reason: format!(
            "it is at rollout revision {}, recorded {revision}",
            w.revision.as_deref().unwrap_or("?")
        ),
        depends_on: after.to_vec(),
        would: format!(
            "Would roll back {what} to revision {revision} (kubectl rollout undo --to-revision={revision})"
        ),
        done: format!("Rolled back {what} to revision {revision}"),
        estimate: Duration::from_millis(100),
        payload: ClusterStep {
            cluster,
            step: MigrateStep::Undo {
                namespace: w.namespace.clone(),
                name: w.name.clone(),
                revision: revision.to_string(),
            },
        },
    }
}

/// Sets gateway `w`'s pod-template `istio.io/rev` back to `rev_label` (no recorded
/// revision to undo to), id `BASE/undo`.
fn template_label_action(
    base: &str,
    cluster: usize,
    cref: &str,
    w: &Workload,
    rev_label: &str,
) -> Action<ClusterStep> {
    let what = format!("Deployment {}/{}", w.namespace, w.name);
    Action {
        id: format!("{base}/undo"),
        op: Op::Update,
        cluster: Some(cref.to_string()),
        target: Target {
            api: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some(w.namespace.clone()),
            name: w.name.clone(),
        },
        reason: format!("its pod template asks for another revision than {rev_label}"),
        depends_on: Vec::new(),
        would: format!("Would set pod-template label {REV_LABEL}={rev_label} on {what}"),
        done: format!("Set pod-template label {REV_LABEL}={rev_label} on {what}"),
        estimate: Duration::from_millis(100),
        payload: ClusterStep {
            cluster,
            step: MigrateStep::SetTemplateLabels {
                namespace: w.namespace.clone(),
                name: w.name.clone(),
                labels: [(REV_LABEL.to_string(), Some(rev_label.to_string()))].into(),
            },
        },
    }
}

#[cfg(test)]
mod tests;
