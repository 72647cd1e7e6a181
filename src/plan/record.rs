//! The run report: what a run did, action by action, with the PRIOR state of everything a
//! mutating action changed — so a later command (a rollback) can undo exactly that and
//! nothing else. Written as `run.json` to `-D/--output-dir` and returned to commands.
//!
//! Schema `asm.run/v1` (ARCHITECTURE.md, "The run report").

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::execute::{Outcome, Report};
use super::render::millis;
use super::{Action, Plan};

/// The JSON schema id of run reports.
pub const SCHEMA: &str = "asm.run/v1";

/// A map of metadata keys (labels or annotations) to their values before an action; `None`
/// for a key the action added (undo: remove it).
pub type PriorValues = BTreeMap<String, Option<String>>;

/// The state an action found and changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        revision: Option<String>,
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

/// `done | failed | skipped | not_run` of one action.
fn status(outcome: Option<&Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Done(_)) => "done",
        Some(Outcome::Failed(..)) => "failed",
        Some(Outcome::Skipped(_)) => "skipped",
        None => "not_run",
    }
}

/// The `asm.run/v1` document of running `plan` as `command`: every action with its status,
/// duration, error and prior state, in plan order.
pub fn document<P>(command: &str, plan: &Plan<P>, report: &Report, wall: Duration) -> Value {
    let actions: Vec<Value> = plan
        .actions
        .iter()
        .map(|a| action_entry(a, report))
        .collect();
    json!({
        "schema": SCHEMA,
        "command": command,
        "status": if report.succeeded() && report.outcomes.len() == plan.actions.len() {
            "applied"
        } else {
            "failed"
        },
        "wall_ms": millis(wall),
        "actions": actions,
    })
}

fn action_entry<P>(a: &Action<P>, report: &Report) -> Value {
    let outcome = report.outcomes.get(&a.id);
    let mut v = json!({
        "id": a.id,
        "op": a.op,
        "cluster": a.cluster,
        "target": a.target,
        "status": status(outcome),
    });
    let Value::Object(m) = &mut v else {
        return v;
    };
    match outcome {
        Some(Outcome::Done(d)) => {
            m.insert("duration_ms".into(), json!(millis(*d)));
        }
        Some(Outcome::Failed(e, d)) => {
            m.insert("duration_ms".into(), json!(millis(*d)));
            m.insert(
                "error".into(),
                json!({"code": e.code, "message": e.message}),
            );
        }
        Some(Outcome::Skipped(dep)) => {
            m.insert("skipped_because".into(), json!(dep));
        }
        None => {}
    }
    if let Some(p) = report.priors.get(&a.id) {
        m.insert("prior".into(), json!(p));
    }
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Op;
    use super::super::tests::action;
    use super::*;
    use crate::error::Error;

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
        let v = document("test", &plan, &report, Duration::from_millis(10));
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
