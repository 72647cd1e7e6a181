//! Plans as text (checks ✔/✖/!, then actions with `+ ~ -` and a wait symbol, then the
//! `Plan:` line) and as the versioned JSON object `asm.plan/v1`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::document::{PlanAction, PlanBody, PlanDocument};
use super::{Action, CheckStatus, Op, Plan};

/// The JSON schema id of plans.
pub const SCHEMA: &str = "asm.plan/v1";

/// How an action line is phrased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mood {
    /// A dry run: "Would enable …".
    Conditional,
    /// A plan about to be applied: "Enable …".
    Imperative,
}

/// Text rendering options.
#[derive(Debug, Clone, Copy)]
pub struct TextOptions {
    pub mood: Mood,
    pub color: bool,
}

fn paint(color: bool, text: &str, ansi: &str) -> String {
    if color {
        format!("\x1b[{ansi}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn op_color(op: Op) -> &'static str {
    match op {
        Op::Create => "32",
        Op::Update => "33",
        Op::Restart => "35",
        Op::Delete => "31",
        Op::Wait => "36",
    }
}

fn status_color(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Ok => "32",
        CheckStatus::Fix | CheckStatus::Warn => "33",
        CheckStatus::Fail => "31",
    }
}

/// "Would enable X" → "Enable X".
pub fn imperative(would: &str) -> String {
    let rest = would.strip_prefix("Would ").unwrap_or(would);
    let mut chars = rest.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The phrase of an action in `mood`.
pub fn phrase<P>(a: &Action<P>, mood: Mood) -> String {
    match mood {
        Mood::Conditional => a.would.clone(),
        Mood::Imperative => imperative(&a.would),
    }
}

/// `Plan: N to add, N to change, N to delete, N waits.` (with `N to restart` after the
/// changes when the plan restarts workloads).
pub fn plan_line<P>(plan: &Plan<P>) -> String {
    let s = plan.summary();
    let restart = if s.restart > 0 {
        format!(" {} to restart,", s.restart)
    } else {
        String::new()
    };
    format!(
        "Plan: {} to add, {} to change,{restart} {} to delete, {} {}.",
        s.create,
        s.update,
        s.delete,
        s.wait,
        if s.wait == 1 { "wait" } else { "waits" }
    )
}

/// The checks section alone (also `asm validate`'s text report).
pub fn checks_text<P>(plan: &Plan<P>, color: bool) -> String {
    let mut out = String::from("Checks:\n");
    if plan.checks.is_empty() {
        out.push_str("  (none)\n");
    }
    for c in &plan.checks {
        let sym = paint(color, c.status.symbol(), status_color(c.status));
        let scope = c
            .cluster
            .as_deref()
            .map(|c| format!(" [{c}]"))
            .unwrap_or_default();
        out.push_str(&format!("  {sym} {}{scope} {}\n", c.code, c.message));
        if let Some(h) = &c.hint {
            let label = if c.status == CheckStatus::Fix {
                "fix"
            } else {
                "hint"
            };
            out.push_str(&format!("      {label}: {h}\n"));
        }
    }
    out
}

/// The whole plan as text.
pub fn text<P>(plan: &Plan<P>, opts: TextOptions) -> String {
    let mut out = checks_text(plan, opts.color);
    out.push_str("\nActions:\n");
    if plan.actions.is_empty() {
        out.push_str("  (none: everything is in place)\n");
    }
    for a in &plan.actions {
        let sym = paint(opts.color, a.op.symbol(), op_color(a.op));
        out.push_str(&format!("  {sym} {}: {}\n", a.id, phrase(a, opts.mood)));
        let ns = a
            .target
            .namespace
            .as_deref()
            .map(|n| format!("{n}/"))
            .unwrap_or_default();
        out.push_str(&format!(
            "      {} {} {ns}{} — {}\n",
            a.target.api, a.target.kind, a.target.name, a.reason
        ));
        if !a.depends_on.is_empty() {
            out.push_str(&format!("      after: {}\n", a.depends_on.join(", ")));
        }
    }
    out.push('\n');
    out.push_str(&plan_line(plan));
    out.push('\n');
    out
}

/// Milliseconds, for JSON.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The `asm.plan/v1` document. With `measured` (a real run), durations and the critical
/// path use measured times; otherwise estimates.
pub fn document<P, R>(
    plan: &Plan<P>,
    measured: Option<&BTreeMap<String, Duration>>,
) -> PlanDocument<R> {
    PlanDocument {
        plan: body(plan, measured, plan_action),
        valid: None,
        dry_run: None,
        result: None,
    }
}

/// An action's entry in a plan document.
pub fn plan_action<P>(a: &Action<P>, timing: Timing) -> PlanAction {
    PlanAction {
        id: a.id.clone(),
        op: a.op,
        cluster: a.cluster.clone(),
        target: a.target.clone(),
        reason: a.reason.clone(),
        depends_on: a.depends_on.clone(),
        estimate_ms: timing.estimate_ms,
        duration_ms: timing.duration_ms,
    }
}

/// An action's time in a plan document: its estimate, or after a run its measured duration.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub estimate_ms: Option<u64>,
    pub duration_ms: Option<u64>,
}

/// The body of a plan document with each action made by `entry` (saved plans add a payload).
pub fn body<P, A>(
    plan: &Plan<P>,
    measured: Option<&BTreeMap<String, Duration>>,
    entry: impl Fn(&Action<P>, Timing) -> A,
) -> PlanBody<A> {
    let weight = |a: &Action<P>| {
        measured
            .and_then(|m| m.get(&a.id).copied())
            .unwrap_or(match measured {
                Some(_) => Duration::ZERO,
                None => a.estimate,
            })
    };
    let (critical, total) = plan.critical_path(weight);
    PlanBody {
        schema: SCHEMA,
        checks: plan.checks.clone(),
        actions: plan
            .actions
            .iter()
            .map(|a| {
                let timing = match measured {
                    Some(_) => Timing {
                        estimate_ms: None,
                        duration_ms: Some(millis(weight(a))),
                    },
                    None => Timing {
                        estimate_ms: Some(millis(a.estimate)),
                        duration_ms: None,
                    },
                };
                entry(a, timing)
            })
            .collect(),
        summary: plan.summary(),
        critical_path: critical,
        critical_path_ms: millis(total),
    }
}

/// [`document`] as a JSON value (for tests that look fields up).
#[cfg(test)]
pub fn json<P>(plan: &Plan<P>, measured: Option<&BTreeMap<String, Duration>>) -> serde_json::Value {
    serde_json::to_value(document::<P, ()>(plan, measured)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::tests::action;
    use super::super::{Check, Plan};
    use super::*;
    use serde_json::json;

    fn plan() -> Plan<()> {
        Plan {
            checks: vec![
                Check::new("ASM-C101", CheckStatus::Ok, Some("c1"), "cluster exists"),
                Check::new("ASM-C201", CheckStatus::Fix, None, "APIs disabled").hint("apis"),
                Check::new("ASM-C202", CheckStatus::Fail, None, "missing permission")
                    .hint("grant it"),
            ],
            actions: vec![
                action("apis", Op::Create, &[], 20),
                action("label", Op::Update, &[], 10),
                action("ready", Op::Wait, &["apis", "label"], 30),
            ],
        }
    }

    #[test]
    fn imperative_drops_would() {
        assert_eq!(imperative("Would enable 3 APIs"), "Enable 3 APIs");
        assert_eq!(imperative("wait"), "Wait");
    }

    #[test]
    fn text_lists_checks_then_actions_then_plan_line() {
        let t = text(
            &plan(),
            TextOptions {
                mood: Mood::Conditional,
                color: false,
            },
        );
        let checks = t.find("Checks:").unwrap();
        let actions = t.find("Actions:").unwrap();
        assert!(checks < actions);
        assert!(t.contains("  ✔ ASM-C101 [c1] cluster exists"));
        assert!(t.contains("  ! ASM-C201 APIs disabled\n      fix: apis"));
        assert!(t.contains("  ✖ ASM-C202 missing permission\n      hint: grant it"));
        assert!(t.contains("  + apis: Would do apis"));
        assert!(t.contains("  ~ label: Would do label"));
        assert!(t.contains("  ⧗ ready: Would do ready"));
        assert!(t.ends_with("Plan: 1 to add, 1 to change, 0 to delete, 1 wait.\n"));
        assert!(!t.contains('\x1b'));
        let colored = text(
            &plan(),
            TextOptions {
                mood: Mood::Imperative,
                color: true,
            },
        );
        assert!(colored.contains("\x1b[32m+\x1b[0m apis: Do apis"));
    }

    #[test]
    fn restarts_and_deletes_render_with_their_symbols_and_counts() {
        let mut p = plan();
        p.actions
            .push(action("rollout", Op::Restart, &["ready"], 5));
        p.actions.push(action("old", Op::Delete, &[], 1));
        let t = text(
            &p,
            TextOptions {
                mood: Mood::Conditional,
                color: false,
            },
        );
        assert!(t.contains("  ↻ rollout: Would do rollout"), "{t}");
        assert!(t.contains("  - old: Would do old"), "{t}");
        assert!(
            t.ends_with("Plan: 1 to add, 1 to change, 1 to restart, 1 to delete, 1 wait.\n"),
            "{t}"
        );
        let v = json(&p, None);
        assert_eq!(
            v["summary"],
            json!({"create":1,"update":1,"restart":1,"delete":1,"wait":1})
        );
        assert_eq!(v["actions"][3]["op"], "restart");
        assert_eq!(v["actions"][4]["op"], "delete");
    }

    #[test]
    fn json_has_the_contract_fields() {
        let v = json(&plan(), None);
        assert_eq!(v["schema"], "asm.plan/v1");
        assert_eq!(
            v["summary"],
            json!({"create":1,"update":1,"delete":0,"wait":1})
        );
        assert_eq!(v["critical_path"], json!(["apis", "ready"]));
        assert_eq!(v["checks"][1]["status"], "fix");
        assert_eq!(v["checks"][0]["cluster"], "c1");
        let a = &v["actions"][2];
        assert_eq!(a["op"], "wait");
        assert_eq!(a["depends_on"], json!(["apis", "label"]));
        assert_eq!(
            a["target"],
            json!({"api":"v1","kind":"Namespace","namespace":null,"name":"ready"})
        );
        let measured: BTreeMap<String, Duration> = [
            ("apis".to_string(), Duration::from_millis(5)),
            ("label".to_string(), Duration::from_millis(50)),
            ("ready".to_string(), Duration::from_millis(1)),
        ]
        .into();
        let v = super::json(&plan(), Some(&measured));
        assert_eq!(v["critical_path"], json!(["label", "ready"]));
        assert_eq!(v["critical_path_ms"], 51);
        assert_eq!(v["actions"][1]["duration_ms"], 50);
    }
}
