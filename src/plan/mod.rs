//! The plan contract shared by every mutating command (ARCHITECTURE.md, "The plan model"):
//! checks, then a DAG of actions (`create | update | restart | delete | wait`) with targets,
//! reasons and dependencies.
//!
//! Everything here is pure: building, summarising, the critical path and rendering are
//! unit-tested without a server. [`execute`] runs a plan's DAG with bounded concurrency,
//! [`run`] is the one runner every command presents, confirms, executes and reports through,
//! and [`record`] is the run report (the prior state of everything an action changed).

pub mod confirm;
pub mod document;
pub mod execute;
pub mod output_dir;
pub mod record;
pub mod render;
pub mod run;
pub mod saved;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

/// What an action does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    /// Changes fields of an existing object (labels and annotations included).
    Update,
    /// A rollout restart of a Deployment, StatefulSet or DaemonSet: new pods, same spec
    /// otherwise (`kubectl rollout restart`).
    Restart,
    Delete,
    Wait,
}

impl Op {
    /// Terraform's symbol (and one for waits).
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Create => "+",
            Op::Update => "~",
            Op::Restart => "↻",
            Op::Delete => "-",
            Op::Wait => "⧗",
        }
    }
}

/// The resource an action is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Target {
    /// API (and version) of the resource, e.g. `container.googleapis.com/v1`, `v1`,
    /// `mesh.cloud.google.com/v1beta1`.
    pub api: String,
    /// Kind of the resource, e.g. `Cluster`, `Membership`, `Namespace`.
    pub kind: String,
    /// Namespace of a namespaced Kubernetes object; `null` otherwise.
    pub namespace: Option<String>,
    /// Name of the resource (a full Google resource name, or a Kubernetes object name).
    pub name: String,
}

/// One node of the plan DAG. `P` is the executable payload (the exact request to send).
#[derive(Debug, Clone, Serialize)]
pub struct Action<P> {
    /// Unique within the plan, e.g. `fleet/apis`, `cluster-1/mesh-id-label`.
    pub id: String,
    pub op: Op,
    /// The cluster (`PROJECT/LOCATION/NAME`) it belongs to; `None` for fleet-wide actions.
    pub cluster: Option<String>,
    pub target: Target,
    /// Why it is needed (what was observed).
    pub reason: String,
    pub depends_on: Vec<String>,
    /// Conditional-mood summary: "Would enable 3 APIs on asm-fresh".
    #[serde(skip)]
    pub would: String,
    /// Past-tense summary: "Enabled 3 APIs on asm-fresh".
    #[serde(skip)]
    pub done: String,
    /// Estimated duration (used for the dry run's critical path).
    #[serde(skip)]
    pub estimate: Duration,
    #[serde(skip)]
    pub payload: P,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// In the desired state.
    Ok,
    /// Not in the desired state; an action of the plan fixes it.
    Fix,
    /// Worth knowing, does not block.
    Warn,
    /// Blocks: the plan cannot fix it under the given flags.
    Fail,
}

impl CheckStatus {
    pub fn symbol(self) -> &'static str {
        match self {
            CheckStatus::Ok => "✔",
            CheckStatus::Fix | CheckStatus::Warn => "!",
            CheckStatus::Fail => "✖",
        }
    }
}

/// One precheck result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Check {
    /// Stable code, e.g. `ASM-C204`.
    pub code: &'static str,
    pub status: CheckStatus,
    pub message: String,
    /// The cluster (`PROJECT/LOCATION/NAME`) it is about; `null` for fleet-wide checks.
    pub cluster: Option<String>,
    /// What to do about it, or which action fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub hint: Option<String>,
}

impl Check {
    pub fn new(
        code: &'static str,
        status: CheckStatus,
        cluster: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Check {
            code,
            status,
            message: message.into(),
            cluster: cluster.map(str::to_string),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Counts of actions by op.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    /// Rollout restarts; absent from JSON when zero (plans of commands that never restart
    /// keep their `asm.plan/v1` shape).
    #[serde(skip_serializing_if = "is_zero")]
    pub restart: usize,
    pub delete: usize,
    pub wait: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Summary {
    /// Number of resources the plan changes (waits excluded).
    pub fn changes(&self) -> usize {
        self.create + self.update + self.restart + self.delete
    }
}

/// Checks and an action DAG.
#[derive(Debug, Clone)]
pub struct Plan<P> {
    pub checks: Vec<Check>,
    pub actions: Vec<Action<P>>,
}

impl<P> Default for Plan<P> {
    fn default() -> Self {
        Plan {
            checks: Vec::new(),
            actions: Vec::new(),
        }
    }
}

impl<P> Plan<P> {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for a in &self.actions {
            match a.op {
                Op::Create => s.create += 1,
                Op::Update => s.update += 1,
                Op::Restart => s.restart += 1,
                Op::Delete => s.delete += 1,
                Op::Wait => s.wait += 1,
            }
        }
        s
    }

    /// Whether a check blocks the plan.
    pub fn blocked(&self) -> bool {
        self.checks.iter().any(|c| c.status == CheckStatus::Fail)
    }

    pub fn action(&self, id: &str) -> Option<&Action<P>> {
        self.actions.iter().find(|a| a.id == id)
    }

    /// Ids in an order where every action comes after its dependencies; `None` if the
    /// graph has a cycle or names a missing dependency.
    pub fn topological_order(&self) -> Option<Vec<usize>> {
        let index: BTreeMap<&str, usize> = self
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.as_str(), i))
            .collect();
        let mut indegree = vec![0usize; self.actions.len()];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); self.actions.len()];
        for (i, a) in self.actions.iter().enumerate() {
            for d in &a.depends_on {
                let j = *index.get(d.as_str())?;
                indegree[i] += 1;
                dependents[j].push(i);
            }
        }
        let mut ready: Vec<usize> = (0..self.actions.len())
            .filter(|&i| indegree[i] == 0)
            .collect();
        ready.reverse();
        let mut order = Vec::with_capacity(self.actions.len());
        while let Some(i) = ready.pop() {
            order.push(i);
            for &k in dependents[i].iter().rev() {
                indegree[k] -= 1;
                if indegree[k] == 0 {
                    ready.push(k);
                }
            }
        }
        (order.len() == self.actions.len()).then_some(order)
    }

    /// The longest chain of dependencies weighted by `weight(action)`, as ids from first to
    /// last, and its total weight. Ties go to the earlier action in plan order.
    pub fn critical_path(
        &self,
        weight: impl Fn(&Action<P>) -> Duration,
    ) -> (Vec<String>, Duration) {
        let Some(order) = self.topological_order() else {
            return (Vec::new(), Duration::ZERO);
        };
        let index: BTreeMap<&str, usize> = self
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.as_str(), i))
            .collect();
        let mut finish = vec![Duration::ZERO; self.actions.len()];
        let mut prev: Vec<Option<usize>> = vec![None; self.actions.len()];
        for &i in &order {
            let a = &self.actions[i];
            let mut start = Duration::ZERO;
            for d in &a.depends_on {
                if let Some(&j) = index.get(d.as_str())
                    && (finish[j] > start || (prev[i].is_none() && finish[j] == start))
                {
                    start = finish[j];
                    prev[i] = Some(j);
                }
            }
            finish[i] = start + weight(a);
        }
        let mut end: Option<usize> = None;
        for i in 0..self.actions.len() {
            if end.is_none_or(|e| finish[i] > finish[e]) {
                end = Some(i);
            }
        }
        let Some(mut cur) = end else {
            return (Vec::new(), Duration::ZERO);
        };
        let total = finish[cur];
        let mut path = vec![self.actions[cur].id.clone()];
        while let Some(p) = prev[cur] {
            path.push(self.actions[p].id.clone());
            cur = p;
        }
        path.reverse();
        (path, total)
    }

    /// Ids of every action that (transitively) depends on `id`.
    pub fn dependents_of(&self, id: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut frontier = vec![id.to_string()];
        while let Some(cur) = frontier.pop() {
            for a in &self.actions {
                if a.depends_on.contains(&cur) && out.insert(a.id.clone()) {
                    frontier.push(a.id.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    pub fn action(id: &str, op: Op, deps: &[&str], secs: u64) -> Action<()> {
        Action {
            id: id.into(),
            op,
            cluster: None,
            target: Target {
                api: "v1".into(),
                kind: "Namespace".into(),
                namespace: None,
                name: id.into(),
            },
            reason: format!("{id} is missing"),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            would: format!("Would do {id}"),
            done: format!("Did {id}"),
            estimate: Duration::from_secs(secs),
            payload: (),
        }
    }

    fn plan() -> Plan<()> {
        Plan {
            checks: vec![],
            actions: vec![
                action("apis", Op::Create, &[], 20),
                action("wi", Op::Update, &[], 60),
                action("label", Op::Update, &["wi"], 10),
                action("feature", Op::Create, &["apis"], 5),
                action("membership", Op::Create, &["apis", "wi"], 10),
                action("mgmt", Op::Update, &["membership", "feature"], 5),
                action("ready", Op::Wait, &["mgmt"], 100),
            ],
        }
    }

    #[test]
    fn summary_counts_ops() {
        let s = plan().summary();
        assert_eq!((s.create, s.update, s.delete, s.wait), (3, 3, 0, 1));
        assert_eq!(s.changes(), 6);
    }

    #[test]
    fn restarts_and_deletes_count_as_changes() {
        let mut p = plan();
        p.actions
            .push(action("restart", Op::Restart, &["ready"], 1));
        p.actions.push(action("delete", Op::Delete, &[], 1));
        let s = p.summary();
        assert_eq!((s.restart, s.delete), (1, 1));
        assert_eq!(s.changes(), 8);
    }

    #[test]
    fn summary_json_shows_restarts_only_when_planned() {
        let without = serde_json::to_value(plan().summary()).unwrap();
        assert!(without.get("restart").is_none(), "{without}");
        let mut p = plan();
        p.actions.push(action("restart", Op::Restart, &[], 1));
        let with = serde_json::to_value(p.summary()).unwrap();
        assert_eq!(with["restart"], 1);
    }

    #[test]
    fn critical_path_is_the_heaviest_chain() {
        let (path, total) = plan().critical_path(|a| a.estimate);
        assert_eq!(path, vec!["wi", "membership", "mgmt", "ready"]);
        assert_eq!(total, Duration::from_secs(175));
    }

    #[test]
    fn critical_path_follows_weights() {
        let (path, _) = plan().critical_path(|a| {
            if a.id == "apis" {
                Duration::from_secs(500)
            } else {
                a.estimate
            }
        });
        assert_eq!(path.first().map(String::as_str), Some("apis"));
        assert_eq!(path.last().map(String::as_str), Some("ready"));
    }

    #[test]
    fn empty_plan_has_empty_critical_path() {
        let p: Plan<()> = Plan::default();
        assert_eq!(p.critical_path(|a| a.estimate), (vec![], Duration::ZERO));
    }

    #[test]
    fn cycles_and_missing_deps_have_no_order() {
        let mut p = plan();
        p.actions.push(action("x", Op::Wait, &["nope"], 1));
        assert!(p.topological_order().is_none());
        let p = Plan {
            checks: vec![],
            actions: vec![
                action("a", Op::Wait, &["b"], 1),
                action("b", Op::Wait, &["a"], 1),
            ],
        };
        assert!(p.topological_order().is_none());
    }

    #[test]
    fn dependents_are_transitive() {
        let d = plan().dependents_of("apis");
        assert_eq!(
            d.into_iter().collect::<Vec<_>>(),
            vec!["feature", "membership", "mgmt", "ready"]
        );
    }
}
