//! Saved plans of `migrate` and `rollback` (`--plan-out FILE`, then `asm apply FILE`): the
//! `asm.plan/v1` object of `-o json` plus the command's flags (`inputs`), a fingerprint of
//! what was observed and every action's payload (read back by
//! [`crate::plan::saved::read_command`], compared by [`crate::plan::saved::drift_refusal`]).
//! Both commands observe the same things, so they share the fingerprint. Nothing secret is
//! observed or saved.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{ClusterStep, MigratePlan, Observed};
use crate::cli::migrate::MigrateArgs;
use crate::cli::rollback::RollbackArgs;
use crate::plan::saved::{SavedPlan, TargetInputs, saved_plan, target_inputs};
use crate::spec::ClusterRef;
use crate::steps::kube_actions::cluster_label;

/// The commands whose plans this module saves.
pub const COMMANDS: [&str; 2] = ["migrate", "rollback"];

/// `migrate`'s flags as saved (`inputs`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MigrateInputs {
    pub target: TargetInputs,
    /// `--namespace` values.
    pub namespaces: Vec<String>,
    pub all_namespaces: bool,
    /// `--to`.
    pub to: String,
    pub managed_dataplane: bool,
    pub no_restart: bool,
    pub gateways: bool,
    pub no_gateways: bool,
    pub parallel: usize,
    pub restart_all_kinds: bool,
    /// `--timeout` as given, e.g. `10m`.
    pub timeout: String,
}

/// `rollback`'s flags as saved (`inputs`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RollbackInputs {
    pub target: TargetInputs,
    /// `--namespace` values.
    pub namespaces: Vec<String>,
    /// `--to-revision`.
    pub to_revision: Option<String>,
    /// `--timeout` as given, e.g. `10m`.
    pub timeout: String,
}

/// The `inputs` of a saved migrate or rollback plan: the flags of the command that saved it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MigrateOrRollbackInputs {
    Migrate(MigrateInputs),
    Rollback(RollbackInputs),
}

impl MigrateOrRollbackInputs {
    /// The command these inputs are the flags of.
    pub fn command(&self) -> &'static str {
        match self {
            MigrateOrRollbackInputs::Migrate(_) => COMMANDS[0],
            MigrateOrRollbackInputs::Rollback(_) => COMMANDS[1],
        }
    }
}

/// A saved migrate or rollback plan.
pub type SavedMigratePlan = SavedPlan<MigrateOrRollbackInputs, ClusterStep>;

/// The flags of `asm migrate` a saved plan is re-planned with (not the credentials).
pub fn migrate_inputs(args: &MigrateArgs) -> MigrateOrRollbackInputs {
    MigrateOrRollbackInputs::Migrate(MigrateInputs {
        target: target_inputs(&args.target),
        namespaces: args.namespaces.clone(),
        all_namespaces: args.all_namespaces,
        to: args.to.clone(),
        managed_dataplane: args.managed_dataplane,
        no_restart: args.no_restart,
        gateways: args.gateways,
        no_gateways: args.no_gateways,
        parallel: args.parallel,
        restart_all_kinds: args.restart_all_kinds,
        timeout: args.timeout.clone(),
    })
}

/// The flags of `asm rollback` a saved plan is re-planned with (not the credentials).
pub fn rollback_inputs(args: &RollbackArgs) -> MigrateOrRollbackInputs {
    MigrateOrRollbackInputs::Rollback(RollbackInputs {
        target: target_inputs(&args.target),
        namespaces: args.namespaces.clone(),
        to_revision: args.to_revision.clone(),
        timeout: args.timeout.clone(),
    })
}

/// What the plan was made from, per cluster: each namespace's resourceVersion (its labels
/// and annotations), each workload's generation (its spec), and the migration record.
pub fn fingerprint(clusters: &[ClusterRef], obs: &Observed) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (i, c) in obs.clusters.iter().enumerate() {
        let label = cluster_label(clusters, i);
        let Some(Ok(state)) = c else {
            out.insert(format!("{label}/kubernetes"), "unreadable".to_string());
            continue;
        };
        for n in &state.snapshot.namespaces {
            let text = |p: &str| n.pointer(p).and_then(Value::as_str).unwrap_or_default();
            out.insert(
                format!("{label}/Namespace/{}", text("/metadata/name")),
                text("/metadata/resourceVersion").to_string(),
            );
        }
        for w in &state.workloads {
            out.insert(
                format!("{label}/{}/{}/{}", w.kind, w.namespace, w.name),
                w.generation.map(|g| g.to_string()).unwrap_or_default(),
            );
        }
        out.insert(
            format!("{label}/migration-record"),
            state
                .record
                .as_ref()
                .and_then(|r| serde_json::to_string(r).ok())
                .unwrap_or_else(|| "absent".to_string()),
        );
    }
    out
}

/// `(id, op, payload)` of every action, as saved and as compared.
pub fn actions_of(plan: &MigratePlan) -> Vec<(String, String, Value)> {
    plan.actions
        .iter()
        .map(|a| {
            (
                a.id.clone(),
                serde_json::to_value(a.op)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                serde_json::to_value(&a.payload).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// The saved plan of the command whose `inputs` these are.
pub fn document(
    plan: &MigratePlan,
    inputs: MigrateOrRollbackInputs,
    fingerprint: &BTreeMap<String, String>,
) -> SavedMigratePlan {
    saved_plan(inputs.command(), plan, inputs, fingerprint, Clone::clone)
}
