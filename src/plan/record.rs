//! The run report: what a run did, action by action, with the PRIOR state of everything a
//! mutating action changed — so a later command (a rollback) can undo exactly that and
//! nothing else. Written as `run.json` to `-D/--output-dir` and returned to commands.
//!
//! Schema `asm.run/v1` (ARCHITECTURE.md, "The run report").

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::execute::{Outcome, Report};
use super::render::millis;
use super::{Action, Op, Plan, Target};

/// The JSON schema id of run reports.
pub const SCHEMA: &str = "asm.run/v1";

/// A map of metadata keys (labels or annotations) to their values before an action; `None`
/// for a key the action added (undo: remove it).
pub type PriorValues = BTreeMap<String, Option<String>>;

/// The state an action found and changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Prior {
    /// The object did not exist before (undo: delete it).
    Created,
    /// The object existed; these labels and annotations had these values (only the keys
    /// the action set or removed).
    Updated {
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        labels: PriorValues,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        annotations: PriorValues,
    },
    /// A rollout restart: the workload's rollout revision before it (the Deployment's
    /// `deployment.kubernetes.io/revision`, for `kubectl rollout undo --to-revision`) and
    /// the pod template's previous `kubectl.kubernetes.io/restartedAt`.
    Restarted {
        /// `deployment.kubernetes.io/revision` before the restart.
        revision: Option<String>,
        /// The pod template's `kubectl.kubernetes.io/restartedAt` before the restart.
        restarted_at: Option<String>,
        /// `metadata.generation` before the restart (the restart bumps it).
        generation: Option<i64>,
    },
    /// The object as it was when deleted (server-set fields stripped), to re-create it.
    Deleted { object: Value },
    /// A pod-template change of a Deployment (a rollout other than a restart): its rollout
    /// revision before it (for `kubectl rollout undo --to-revision`) and the template labels
    /// it replaced (`null` for a label it added).
    RolledOut {
        revision: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        template_labels: PriorValues,
    },
}

/// What an executed action hands back to the runner: the prior state, when the action
/// records one (waits and actions whose executor does not record return nothing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effect {
    pub prior: Option<Prior>,
}

impl From<()> for Effect {
    fn from(_: ()) -> Self {
        Effect::default()
    }
}

impl From<Prior> for Effect {
    fn from(prior: Prior) -> Self {
        Effect { prior: Some(prior) }
    }
}

/// Whether a run applied every action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every action finished.
    Applied,
    /// An action failed (or, in `-o json`'s `result`, a verification did not hold).
    Failed,
}

impl RunStatus {
    /// `Applied` when `ok`.
    pub fn of(ok: bool) -> Self {
        if ok {
            RunStatus::Applied
        } else {
            RunStatus::Failed
        }
    }
}

/// How one action of a run came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// It finished.
    Done,
    /// It failed (`error` says why).
    Failed,
    /// It did not start: an action it depends on failed (`skipped_because`).
    Skipped,
    /// It did not start: the run ended first (e.g. cancelled).
    NotRun,
}

fn status(outcome: Option<&Outcome>) -> ActionStatus {
    match outcome {
        Some(Outcome::Done(_)) => ActionStatus::Done,
        Some(Outcome::Failed(..)) => ActionStatus::Failed,
        Some(Outcome::Skipped(_)) => ActionStatus::Skipped,
        None => ActionStatus::NotRun,
    }
}

/// The run report, `asm.run/v1` (`run.json` in `-D`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RunReport {
    /// The schema id: always `asm.run/v1`.
    #[schemars(extend("const" = "asm.run/v1"))]
    pub schema: &'static str,
    /// The command that ran, e.g. `install`, `create-mesh`.
    pub command: String,
    pub status: RunStatus,
    /// Wall time of the execution in milliseconds.
    pub wall_ms: u64,
    /// Every action of the plan, in plan order.
    pub actions: Vec<RunAction>,
}

/// One action of a run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RunAction {
    /// The action's id in the plan.
    pub id: String,
    pub op: Op,
    /// The cluster (`PROJECT/LOCATION/NAME`) it belongs to; `null` for fleet-wide actions.
    pub cluster: Option<String>,
    pub target: Target,
    pub status: ActionStatus,
    /// How long it ran, in milliseconds (actions that started).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub duration_ms: Option<u64>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ActionError")]
    pub error: Option<ActionError>,
    /// The failed action it depends on (skipped actions).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub skipped_because: Option<String>,
    /// The state it changed, for undoing exactly that (actions whose executor records it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Prior")]
    pub prior: Option<Prior>,
}

/// The error of a failed action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ActionError {
    /// Stable error code, e.g. `ASM-E455`.
    pub code: &'static str,
    pub message: String,
}

/// The `asm.run/v1` document of running `plan` as `command`: every action with its status,
/// duration, error and prior state, in plan order.
pub fn document<P>(command: &str, plan: &Plan<P>, report: &Report, wall: Duration) -> RunReport {
    RunReport {
        schema: SCHEMA,
        command: command.to_string(),
        status: RunStatus::of(report.succeeded() && report.outcomes.len() == plan.actions.len()),
        wall_ms: millis(wall),
        actions: plan
            .actions
            .iter()
            .map(|a| action_entry(a, report))
            .collect(),
    }
}

fn action_entry<P>(a: &Action<P>, report: &Report) -> RunAction {
    let outcome = report.outcomes.get(&a.id);
    let (duration_ms, error, skipped_because) = match outcome {
        Some(Outcome::Done(d)) => (Some(millis(*d)), None, None),
        Some(Outcome::Failed(e, d)) => (
            Some(millis(*d)),
            Some(ActionError {
                code: e.code,
                message: e.message.clone(),
            }),
            None,
        ),
        Some(Outcome::Skipped(dep)) => (None, None, Some(dep.clone())),
        None => (None, None, None),
    };
    RunAction {
        id: a.id.clone(),
        op: a.op,
        cluster: a.cluster.clone(),
        target: a.target.clone(),
        status: status(outcome),
        duration_ms,
        error,
        skipped_because,
        prior: report.priors.get(&a.id).cloned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::action;
    use super::*;
    use crate::error::Error;
    use serde_json::json;

    #[test]
    fn document_lists_every_action_with_status_and_prior() {
        let plan = Plan {
            checks: vec![],
            actions: vec![
                action("label", Op::Update, &[], 1),
                action("restart", Op::Restart, &["label"], 1),
                action("delete", Op::Delete, &[], 1),
                action("wait", Op::Wait, &["restart"], 1),
            ],
        };
        let mut report = Report::default();
        report
            .outcomes
            .insert("label".into(), Outcome::Done(Duration::from_millis(7)));
        report.priors.insert(
            "label".into(),
            Prior::Updated {
                labels: [("istio.io/rev".to_string(), Some("asm-1".to_string()))].into(),
                annotations: [("a".to_string(), None)].into(),
            },
        );
        report.outcomes.insert(
            "restart".into(),
            Outcome::Failed(Error::apply("ASM-E451", "boom"), Duration::from_millis(3)),
        );
        report
            .outcomes
            .insert("wait".into(), Outcome::Skipped("restart".into()));
        let v = serde_json::to_value(document("test", &plan, &report, Duration::from_millis(10)))
            .unwrap();
        assert_eq!(v["schema"], "asm.run/v1");
        assert_eq!(v["status"], "failed");
        let a = v["actions"].as_array().unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a[0]["status"], "done");
        assert_eq!(
            a[0]["prior"],
            json!({"change": "updated", "labels": {"istio.io/rev": "asm-1"}, "annotations": {"a": null}})
        );
        assert_eq!(a[1]["status"], "failed");
        assert_eq!(a[1]["error"]["code"], "ASM-E451");
        assert!(a[1].get("prior").is_none());
        assert_eq!(a[2]["status"], "not_run");
        assert_eq!(a[3]["status"], "skipped");
        assert_eq!(a[3]["skipped_because"], "restart");
    }

    #[test]
    fn priors_round_trip_through_json() {
        for p in [
            Prior::Created,
            Prior::Restarted {
                revision: Some("3".into()),
                restarted_at: None,
                generation: Some(4),
            },
            Prior::Deleted {
                object: json!({"kind": "Deployment", "metadata": {"name": "x"}}),
            },
        ] {
            let back: Prior = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
            assert_eq!(back, p);
        }
    }
}
