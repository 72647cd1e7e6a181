//! The typed JSON documents of plans, `asm.plan/v1`: what `-o json` prints, `plan.json` in
//! `-D`, and the body of saved plans ([`super::saved`]). Fields serialize in declaration
//! order, which is the order users see; `schemas/asm.plan.v1.json` is generated from these
//! types (README, "Machine-readable output").

use schemars::JsonSchema;
use serde::Serialize;

use super::record::{RunAction, RunStatus};
use super::{Check, Op, Summary, Target};

/// What every plan document starts with: the schema id, the checks, the actions and the
/// critical path. `A` is the action entry (with a payload in saved plans).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanBody<A> {
    /// The schema id: always `asm.plan/v1`.
    #[schemars(extend("const" = "asm.plan/v1"))]
    pub schema: &'static str,
    /// Every precheck, in the order asm made them.
    pub checks: Vec<Check>,
    /// The action DAG, in plan order (every action after its dependencies).
    pub actions: Vec<A>,
    pub summary: Summary,
    /// The heaviest dependency chain (ids, first to last): by estimates in a plan, by
    /// measured durations after a run.
    pub critical_path: Vec<String>,
    /// The length of the critical path in milliseconds.
    pub critical_path_ms: u64,
}

/// One action of a plan.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanAction {
    /// Unique within the plan, e.g. `fleet/apis`, `cluster-1/management`.
    pub id: String,
    pub op: Op,
    /// The cluster (`PROJECT/LOCATION/NAME`) it belongs to; `null` for fleet-wide actions.
    pub cluster: Option<String>,
    pub target: Target,
    /// Why it is needed (what was observed).
    pub reason: String,
    /// Ids of the actions that must finish first.
    pub depends_on: Vec<String>,
    /// Estimated duration in milliseconds (a plan that was not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub estimate_ms: Option<u64>,
    /// Measured duration in milliseconds (after a run; 0 for an action that did not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub duration_ms: Option<u64>,
}

/// The `asm.plan/v1` object of `-o json` and `plan.json`. `R` holds the fields a command
/// adds to `result` after a run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanDocument<R = ()> {
    #[serde(flatten)]
    pub plan: PlanBody<PlanAction>,
    /// `asm validate -o json` only: no check blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub valid: Option<bool>,
    /// `true` for a plan that was not applied (dry run, `--plan-out`, blocked), `false`
    /// after a run; absent from `asm validate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub dry_run: Option<bool>,
    /// After a run: what happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "RunResult<R>")]
    pub result: Option<RunResult<R>>,
}

/// `result` of an executed plan; `R` is what the command adds (e.g. install's revisions).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RunResult<R> {
    /// `applied`, or `failed` when an action failed or a verification did not hold.
    pub status: RunStatus,
    /// Wall time of the execution in milliseconds.
    pub wall_ms: u64,
    /// The critical path by measured durations, in milliseconds.
    pub critical_path_ms: u64,
    /// Every failed action, by id.
    pub failures: Vec<Failure>,
    /// The run report's actions (`asm.run/v1`): status, duration, error, prior state.
    pub run: Vec<RunAction>,
    #[serde(flatten)]
    pub command: R,
}

/// What enable-dataplane, rollback and `migrate --finish` add to `-o json`'s `result`:
/// whether applying left anything to do.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReplanResult {
    /// Changes a new plan still finds after applying; `null` after a failure (no new plan).
    pub remaining_changes: Option<usize>,
}

/// A failed action in `result.failures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Failure {
    /// The action's id.
    pub id: String,
    /// Stable error code, e.g. `ASM-E455`.
    pub code: &'static str,
    pub message: String,
    /// What to do about it, when asm knows.
    pub hint: Option<String>,
}

/// A document as pretty-printed JSON with a final newline (two-space indent, as `{:#}` of a
/// `serde_json::Value`).
pub fn pretty<T: Serialize + ?Sized>(doc: &T) -> String {
    // Only maps with non-string keys fail to serialize; asm's documents have none.
    match serde_json::to_string_pretty(doc) {
        Ok(text) => text + "\n",
        Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
    }
}
