//! Runs a plan's DAG: an action starts when all its dependencies are done, at most `limit`
//! at a time; a failed action skips its dependents but not the rest (one cluster's failure
//! does not hide the others').

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};

use super::record::{Effect, Prior};
use super::{Action, Plan};
use crate::error::Error;

/// What happened to one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(Duration),
    Failed(Error, Duration),
    /// Not run because a dependency failed (its id).
    Skipped(String),
}

/// Outcomes of a run, by action id (actions never started are absent).
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub outcomes: BTreeMap<String, Outcome>,
    /// The prior state of what each finished action changed, when its executor records it.
    pub priors: BTreeMap<String, Prior>,
}

impl Report {
    /// Measured durations of the actions that ran.
    pub fn durations(&self) -> BTreeMap<String, Duration> {
        self.outcomes
            .iter()
            .filter_map(|(id, o)| match o {
                Outcome::Done(d) | Outcome::Failed(_, d) => Some((id.clone(), *d)),
                Outcome::Skipped(_) => None,
            })
            .collect()
    }

    /// The failures, in plan order of their ids.
    pub fn failures(&self) -> Vec<(&str, &Error)> {
        self.outcomes
            .iter()
            .filter_map(|(id, o)| match o {
                Outcome::Failed(e, _) => Some((id.as_str(), e)),
                _ => None,
            })
            .collect()
    }

    pub fn succeeded(&self) -> bool {
        self.outcomes
            .values()
            .all(|o| matches!(o, Outcome::Done(_)))
    }
}

/// Runs `plan` with `run` for each action, at most `limit` concurrently. `on_finish` is
/// called once per action as it finishes, fails or is skipped. `run` returns what the
/// action changed (an [`Effect`]; `()` for none), kept in [`Report::priors`].
pub async fn execute<'p, P, F, Fut, R>(
    plan: &'p Plan<P>,
    limit: usize,
    run: F,
    mut on_finish: impl FnMut(&Action<P>, &Outcome),
) -> Report
where
    F: Fn(&'p Action<P>) -> Fut,
    Fut: Future<Output = Result<R, Error>> + 'p,
    R: Into<Effect>,
{
    let limit = limit.max(1);
    let n = plan.actions.len();
    let index: BTreeMap<&str, usize> = plan
        .actions
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.as_str(), i))
        .collect();
    // Dependencies that name no action are treated as already satisfied.
    let mut waiting: Vec<usize> = plan
        .actions
        .iter()
        .map(|a| {
            a.depends_on
                .iter()
                .filter(|d| index.contains_key(d.as_str()))
                .count()
        })
        .collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, a) in plan.actions.iter().enumerate() {
        for d in &a.depends_on {
            if let Some(&j) = index.get(d.as_str()) {
                dependents[j].push(i);
            }
        }
    }
    let mut ready: std::collections::VecDeque<usize> =
        (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut report = Report::default();
    let mut running = FuturesUnordered::new();
    let mut settled = vec![false; n];

    loop {
        while running.len() < limit {
            let Some(i) = ready.pop_front() else { break };
            let action = &plan.actions[i];
            let fut = run(action);
            running.push(async move {
                let start = Instant::now();
                let r = fut.await;
                (i, r, start.elapsed())
            });
        }
        let Some((i, result, elapsed)) = running.next().await else {
            break;
        };
        let action = &plan.actions[i];
        settled[i] = true;
        let outcome = match result {
            Ok(effect) => {
                if let Some(p) = effect.into().prior {
                    report.priors.insert(action.id.clone(), p);
                }
                Outcome::Done(elapsed)
            }
            Err(e) => Outcome::Failed(e, elapsed),
        };
        on_finish(action, &outcome);
        let failed = matches!(outcome, Outcome::Failed(..));
        report.outcomes.insert(action.id.clone(), outcome);
        if failed {
            // Skip everything downstream.
            let mut stack = dependents[i].clone();
            while let Some(k) = stack.pop() {
                if settled[k] {
                    continue;
                }
                settled[k] = true;
                let o = Outcome::Skipped(action.id.clone());
                on_finish(&plan.actions[k], &o);
                report.outcomes.insert(plan.actions[k].id.clone(), o);
                stack.extend(dependents[k].iter().copied());
            }
        } else {
            for &k in &dependents[i] {
                waiting[k] -= 1;
                if waiting[k] == 0 && !settled[k] {
                    ready.push_back(k);
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::super::Op;
    use super::super::tests::action;
    use super::*;

    fn plan() -> Plan<()> {
        Plan {
            checks: vec![],
            actions: vec![
                action("a", Op::Create, &[], 0),
                action("b", Op::Update, &["a"], 0),
                action("c", Op::Create, &[], 0),
                action("d", Op::Wait, &["b", "c"], 0),
                action("e", Op::Create, &[], 0),
            ],
        }
    }

    #[tokio::test]
    async fn runs_in_dependency_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let p = plan();
        let report = execute(
            &p,
            2,
            |a| {
                let log = log.clone();
                let id = a.id.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    log.lock().unwrap().push(id);
                    Ok(())
                }
            },
            |_, _| {},
        )
        .await;
        assert!(report.succeeded());
        let log = log.lock().unwrap().clone();
        let pos = |x: &str| log.iter().position(|i| i == x).unwrap();
        assert!(pos("a") < pos("b"));
        assert!(pos("b") < pos("d") && pos("c") < pos("d"));
        assert_eq!(log.len(), 5);
    }

    #[tokio::test]
    async fn failure_skips_dependents_only() {
        let p = plan();
        let mut seen = Vec::new();
        let report = execute(
            &p,
            4,
            |a| {
                let fail = a.id == "b";
                async move {
                    if fail {
                        Err(Error::apply("ASM-E500", "boom"))
                    } else {
                        Ok(())
                    }
                }
            },
            |a, o| seen.push((a.id.clone(), o.clone())),
        )
        .await;
        assert!(!report.succeeded());
        assert!(matches!(report.outcomes["b"], Outcome::Failed(..)));
        assert_eq!(report.outcomes["d"], Outcome::Skipped("b".into()));
        assert!(matches!(report.outcomes["e"], Outcome::Done(_)));
        assert!(matches!(report.outcomes["c"], Outcome::Done(_)));
        assert_eq!(seen.len(), 5);
        assert_eq!(report.failures().len(), 1);
    }

    #[tokio::test]
    async fn priors_of_finished_actions_are_kept() {
        let p = plan();
        let report = execute(
            &p,
            2,
            |a| {
                let created = a.op == Op::Create;
                async move {
                    Ok(if created {
                        Effect::from(Prior::Created)
                    } else {
                        Effect::default()
                    })
                }
            },
            |_, _| {},
        )
        .await;
        assert!(report.succeeded());
        let ids: Vec<&str> = report.priors.keys().map(String::as_str).collect();
        assert_eq!(ids, vec!["a", "c", "e"]);
    }

    #[tokio::test]
    async fn bounded_concurrency() {
        let p = Plan {
            checks: vec![],
            actions: (0..10)
                .map(|i| action(&format!("x{i}"), Op::Create, &[], 0))
                .collect::<Vec<_>>(),
        };
        let active = Arc::new(Mutex::new((0usize, 0usize)));
        execute(
            &p,
            3,
            |_| {
                let active = active.clone();
                async move {
                    {
                        let mut g = active.lock().unwrap();
                        g.0 += 1;
                        g.1 = g.1.max(g.0);
                    }
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    active.lock().unwrap().0 -= 1;
                    Ok(())
                }
            },
            |_, _| {},
        )
        .await;
        assert_eq!(active.lock().unwrap().1, 3);
    }
}
