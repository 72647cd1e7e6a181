//! The one plan runner every command goes through (ARCHITECTURE.md, "The runner"):
//!
//! 1. [`Runner::present`]: write `plan.txt`/`plan.json` to `-D`, render the plan (text or
//!    JSON; conditional mood for a dry run, imperative before applying), stop for
//!    `--dry-run`/`--plan-out` (saving the plan) or a blocking check, else pass the
//!    confirmation gate (`--yes`; ask on a terminal; refuse elsewhere).
//! 2. [`Runner::execute`]: run the DAG with bounded concurrency, one progress line per
//!    finished action, and write the run report (`run.json`, the prior state of everything
//!    changed) to `-D`.
//! 3. [`Execution`]: the exit code, the past-tense summary line, the JSON `result` object;
//!    [`Runner::report_failures`] prints each failure with its code and hint.
//!
//! Commands keep what is theirs — observing, planning, the executor of their payload,
//! verification and the lines that follow the summary — and read top to bottom:
//! args → spec → observe → plan → present → execute → report.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::confirm;
use super::document::{Failure, PlanDocument, RunResult, pretty};
use super::execute::{Outcome, Report, execute};
use super::output_dir::OutputDir;
use super::record::{self, Effect, RunReport, RunStatus};
use super::render::{self, Mood, TextOptions, millis};
use super::{Action, CheckStatus, Op, Plan};
use crate::environment::Environment;
use crate::error::{Error, exit};
use crate::output::Printer;

/// How often the live line is redrawn.
const LIVE_REFRESH: Duration = Duration::from_millis(200);

/// The live line while actions run: the longest-running one's elapsed time and what it
/// does (in the imperative), and how many others run beside it; at most
/// [`LIVE_WIDTH`] characters, so that it never wraps on an 80-column terminal (a wrapped
/// line could not be erased in place). `None` when nothing runs.
pub fn live_line(running: &BTreeMap<&str, (&str, Instant)>, now: Instant) -> Option<String> {
    let (_, (would, since)) = running
        .iter()
        .min_by_key(|(id, (_, since))| (*since, **id))?;
    let elapsed = now.saturating_duration_since(*since).as_secs();
    let others = match running.len() - 1 {
        0 => String::new(),
        n => format!(" (+{n} running)"),
    };
    let head = format!("[{elapsed}s] ");
    let room = LIVE_WIDTH.saturating_sub(head.chars().count() + others.chars().count());
    let what = render::imperative(would);
    let what: String = if what.chars().count() > room {
        let mut cut: String = what.chars().take(room.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        what
    };
    Some(format!("{head}{what}{others}"))
}

/// The widest live line, in characters.
pub const LIVE_WIDTH: usize = 79;

/// Name of the run report in `-D/--output-dir`.
pub const RUN_REPORT: &str = "run.json";

/// The plan contract's flags, the same for every command that changes things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contract {
    /// `--dry-run`: render in the conditional mood and stop.
    pub dry_run: bool,
    /// `--plan-out FILE` was given: save the plan and stop.
    pub plan_out: bool,
    /// `-o json`: exactly one JSON object on stdout.
    pub json: bool,
    /// `--yes`: no question.
    pub yes: bool,
    /// `--detailed-exitcode`: a dry run with changes to make exits 10.
    pub detailed_exitcode: bool,
    /// How many actions may run at once.
    pub concurrency: usize,
}

impl Contract {
    /// The contract of a command's validated plan flags, its output format and concurrency.
    pub fn new(flags: &crate::spec::PlanFlags, json: bool, concurrency: usize) -> Self {
        Contract {
            dry_run: flags.dry_run,
            plan_out: flags.plan_out.is_some(),
            json,
            yes: flags.yes,
            detailed_exitcode: flags.detailed_exitcode,
            concurrency,
        }
    }
}

/// What [`Runner::present`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// The run ends here with this exit code (dry run, saved plan).
    Stopped(i32),
    /// Confirmed: execute the plan.
    Confirmed,
}

/// Where a command's plan goes: the terminal, the output directory, the contract.
pub struct Runner<'a> {
    /// The command, as named in the run report (`install`, `create-mesh`, …).
    pub command: &'static str,
    pub env: &'a Environment,
    pub printer: &'a Printer,
    pub out: Option<&'a OutputDir>,
    pub contract: Contract,
    /// The hint of the "prechecks failed" error (which flags fix what).
    pub blocked_hint: Option<&'static str>,
}

/// `-D/--output-dir`: creates (or reuses) the directory before any request and tees the
/// printer's stderr lines into its log.
pub fn prepare_output(
    dir: Option<&std::path::Path>,
    printer: &Printer,
) -> Result<(Option<OutputDir>, Printer), Error> {
    let Some(dir) = dir else {
        return Ok((None, printer.clone()));
    };
    let out = OutputDir::prepare(dir)?;
    let printer = printer.clone().with_log(Box::new(out.log()?));
    printer.detail(&format!(
        "asm {} ({})",
        env!("CARGO_PKG_VERSION"),
        dir.display()
    ));
    if out.open_to_others {
        printer.warning(&format!(
            "--output-dir {} is readable by others; asm's files in it are 0600",
            dir.display()
        ));
    }
    Ok((Some(out), printer))
}

/// Whether stdout may carry ANSI colour.
pub fn stdout_color(env: &Environment) -> bool {
    env.stdout_color()
}

/// The error of a plan a failed check blocks (exit 3): nothing was changed.
pub fn blocked_error<P>(plan: &Plan<P>, hint: Option<&str>) -> Error {
    let n = plan
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .count();
    let e = Error::new(
        "ASM-E301",
        exit::PRECHECK_FAILED,
        format!(
            "{n} precheck{} failed (✖ above); nothing was changed",
            if n == 1 { "" } else { "s" }
        ),
    );
    match hint {
        Some(h) => e.with_hint(h),
        None => e,
    }
}

/// A `(cluster, manifest)` an action applies, for `-D/manifests` (`None`: none).
pub type ManifestOf<'m, P> = &'m (dyn Fn(&Action<P>) -> Option<(String, Value)> + Sync);

impl Runner<'_> {
    fn color(&self) -> bool {
        stdout_color(self.env)
    }

    fn write_manifest(&self, cluster: &str, object: &Value) {
        if let Some(out) = self.out
            && let Err(e) = out.write_manifest(cluster, object)
        {
            self.printer.warning(&e.message);
        }
    }

    /// Writes `plan.txt`/`plan.json` in `mood` (and, for a dry run, the manifests it would
    /// apply) to `-D`, if given.
    fn write_plan_files<P>(
        &self,
        plan: &Plan<P>,
        mood: Mood,
        manifest_of: Option<ManifestOf<'_, P>>,
    ) -> Result<(), Error> {
        let Some(out) = self.out else { return Ok(()) };
        let mut doc: PlanDocument = render::document(plan, None);
        doc.dry_run = Some(mood == Mood::Conditional);
        out.write_plan(
            &render::text(plan, TextOptions { mood, color: false }),
            &doc,
        )?;
        if mood == Mood::Conditional
            && let Some(of) = manifest_of
        {
            for a in &plan.actions {
                if let Some((c, object)) = of(a) {
                    self.write_manifest(&c, &object);
                }
            }
        }
        self.printer
            .detail(&format!("wrote the plan to {}", out.path.display()));
        Ok(())
    }

    /// Renders `plan` and decides whether it runs: stops (after `save`, for `--plan-out`)
    /// on a dry run, a saved plan or a blocking check (exit 3); otherwise asks for
    /// confirmation. `manifest_of` names the manifests written to `-D`.
    pub async fn present<P>(
        &self,
        plan: &Plan<P>,
        manifest_of: Option<ManifestOf<'_, P>>,
        save: impl FnOnce() -> Result<(), Error>,
    ) -> Result<Presented, Error> {
        Ok(self.present_timed(plan, manifest_of, save).await?.0)
    }

    /// [`Runner::present`], also telling how long the user took at the confirmation prompt
    /// (zero without one): `--timeout` bounds the run, not the user's reading.
    pub async fn present_timed<P>(
        &self,
        plan: &Plan<P>,
        manifest_of: Option<ManifestOf<'_, P>>,
        save: impl FnOnce() -> Result<(), Error>,
    ) -> Result<(Presented, Duration), Error> {
        let c = self.contract;
        if c.dry_run || c.plan_out || plan.blocked() {
            self.write_plan_files(plan, Mood::Conditional, manifest_of)?;
            if c.plan_out && !plan.blocked() {
                save()?;
            }
            if c.json {
                let mut doc: PlanDocument = render::document(plan, None);
                doc.dry_run = Some(true);
                self.printer.result(&pretty(&doc));
            } else {
                self.printer.result(&render::text(
                    plan,
                    TextOptions {
                        mood: Mood::Conditional,
                        color: self.color(),
                    },
                ));
            }
            if plan.blocked() {
                return Err(blocked_error(plan, self.blocked_hint));
            }
            if c.detailed_exitcode && plan.summary().changes() > 0 {
                return Ok((Presented::Stopped(exit::CHANGES_PENDING), Duration::ZERO));
            }
            return Ok((Presented::Stopped(exit::SUCCESS), Duration::ZERO));
        }
        self.write_plan_files(plan, Mood::Imperative, manifest_of)?;
        if !c.json {
            self.printer.result(&render::text(
                plan,
                TextOptions {
                    mood: Mood::Imperative,
                    color: self.color(),
                },
            ));
        }
        let asked = Instant::now();
        confirm::gate(self.env, c.yes, plan.summary().changes()).await?;
        let waited = if c.yes {
            Duration::ZERO
        } else {
            asked.elapsed()
        };
        Ok((Presented::Confirmed, waited))
    }

    /// Executes `plan` with `run` for each action (at most `contract.concurrency` at once),
    /// printing one line per finished, failed or skipped action, and writes the run report
    /// to `-D`. `manifest_of` names the manifest each finished action applied (for `-D`).
    pub async fn execute<'p, P, F, Fut, R>(
        &self,
        plan: &'p Plan<P>,
        manifest_of: Option<ManifestOf<'_, P>>,
        run: F,
    ) -> Execution
    where
        F: Fn(&'p Action<P>) -> Fut,
        Fut: Future<Output = Result<R, Error>> + 'p,
        R: Into<Effect>,
    {
        let printer = self.printer;
        let started = Instant::now();
        // What runs now, for the live line on a terminal.
        let running: std::sync::Mutex<BTreeMap<&'p str, (&'p str, Instant)>> =
            std::sync::Mutex::new(BTreeMap::new());
        let finished = std::sync::atomic::AtomicBool::new(false);
        let track = |a: &'p Action<P>| {
            if let Ok(mut r) = running.lock() {
                r.insert(a.id.as_str(), (a.would.as_str(), Instant::now()));
            }
            run(a)
        };
        let untrack = |a: &Action<P>| {
            if let Ok(mut r) = running.lock() {
                r.remove(a.id.as_str());
            }
        };
        let execution = async {
            let report = execute(plan, self.contract.concurrency, track, |a, outcome| {
                untrack(a);
                match outcome {
                    Outcome::Done(d) => {
                        if let Some((c, object)) = manifest_of.and_then(|of| of(a)) {
                            self.write_manifest(&c, &object);
                        }
                        printer.progress(&format!(
                            "{} {} ({:.1}s)",
                            printer.paint("✔", "32"),
                            a.done,
                            d.as_secs_f64()
                        ))
                    }
                    Outcome::Failed(e, d) => printer.progress(&format!(
                        "{} {}: failed after {:.1}s: {}",
                        printer.paint("✖", "31"),
                        a.id,
                        d.as_secs_f64(),
                        e.message
                    )),
                    Outcome::Skipped(dep) => printer.progress(&format!(
                        "{} {}: skipped ({dep} failed)",
                        printer.paint("-", "33"),
                        a.id
                    )),
                }
            })
            .await;
            finished.store(true, std::sync::atomic::Ordering::SeqCst);
            report
        };
        let live = async {
            if !printer.live_line_enabled() {
                return;
            }
            while !finished.load(std::sync::atomic::Ordering::SeqCst) {
                let line = running
                    .lock()
                    .ok()
                    .and_then(|r| live_line(&r, Instant::now()));
                printer.set_live(line.as_deref());
                tokio::time::sleep(LIVE_REFRESH).await;
            }
            printer.set_live(None);
        };
        let (report, ()) = futures::join!(execution, live);
        let wall = started.elapsed();
        let measured = report.durations();
        let (critical, critical_total) =
            plan.critical_path(|a| measured.get(&a.id).copied().unwrap_or(Duration::ZERO));
        let run_report = record::document(self.command, plan, &report, wall);
        if let Some(out) = self.out {
            match out.write(RUN_REPORT, &pretty(&run_report)) {
                Ok(path) => printer.detail(&format!("wrote the run report to {}", path.display())),
                Err(e) => printer.warning(&e.message),
            }
        }
        Execution {
            report,
            measured,
            wall,
            critical,
            critical_total,
            run_report,
        }
    }

    /// The exit code of a command after its result was printed: failures reported as errors
    /// (the execution's code), or success with a warning when a re-plan still finds
    /// `remaining` changes.
    pub fn conclude(&self, exec: &Execution, code: i32, remaining: Option<usize>) -> i32 {
        if code != exit::SUCCESS {
            self.report_failures(exec);
            return code;
        }
        if let Some(n) = remaining.filter(|n| *n > 0) {
            self.printer.warning(&format!(
                "{n} change{} still planned after applying; re-run asm to converge",
                if n == 1 { "" } else { "s" }
            ));
        }
        exit::SUCCESS
    }

    /// Prints every failure of `exec` as an error, prefixed with its action id.
    pub fn report_failures(&self, exec: &Execution) {
        for (id, e) in exec.report.failures() {
            self.printer.error(&Error {
                message: format!("{id}: {}", e.message),
                ..e.clone()
            });
        }
    }
}

/// What executing a plan did.
#[derive(Debug, Clone)]
pub struct Execution {
    pub report: Report,
    /// Measured duration of each action that ran.
    pub measured: BTreeMap<String, Duration>,
    /// Wall time of the execution.
    pub wall: Duration,
    /// The critical path by measured durations, and its length.
    pub critical: Vec<String>,
    pub critical_total: Duration,
    /// The `asm.run/v1` document (also `run.json` in `-D`).
    pub run_report: RunReport,
}

impl Execution {
    /// 0 when every action succeeded; 4 when every failure is a timeout; else 1.
    pub fn exit_code(&self) -> i32 {
        let failures = self.report.failures();
        if failures.is_empty() {
            exit::SUCCESS
        } else if failures.iter().all(|(_, e)| e.exit_code == exit::TIMEOUT) {
            exit::TIMEOUT
        } else {
            exit::APPLY_FAILED
        }
    }

    /// How many actions with `op` finished.
    pub fn done<P>(&self, plan: &Plan<P>, op: Op) -> usize {
        plan.actions
            .iter()
            .filter(|a| {
                a.op == op && matches!(self.report.outcomes.get(&a.id), Some(Outcome::Done(_)))
            })
            .count()
    }

    /// `Applied: N added, N changed, N deleted, N waited in Xs (critical path Ys: a → b).`
    /// (`Partly applied:` after a failure; `N restarted` when the plan restarts workloads).
    pub fn summary_line<P>(&self, plan: &Plan<P>) -> String {
        let restarted = if plan.summary().restart > 0 {
            format!(" {} restarted,", self.done(plan, Op::Restart))
        } else {
            String::new()
        };
        format!(
            "\n{} {} added, {} changed,{restarted} {} deleted, {} waited in {:.1}s (critical path {:.1}s: {}).\n",
            if self.exit_code() == exit::SUCCESS {
                "Applied:"
            } else {
                "Partly applied:"
            },
            self.done(plan, Op::Create),
            self.done(plan, Op::Update),
            self.done(plan, Op::Delete),
            self.done(plan, Op::Wait),
            self.wall.as_secs_f64(),
            self.critical_total.as_secs_f64(),
            if self.critical.is_empty() {
                "-".to_string()
            } else {
                self.critical.join(" → ")
            },
        )
    }

    /// The document of an executed plan: the plan with measured durations, `dry_run:
    /// false` and `result` (`status`, `wall_ms`, `critical_path_ms`, `failures`, and the
    /// run report's actions with their prior state); `command` is what the command adds to
    /// `result`.
    pub fn document<P, R>(&self, plan: &Plan<P>, ok: bool, command: R) -> PlanDocument<R> {
        let mut doc = render::document(plan, Some(&self.measured));
        doc.dry_run = Some(false);
        doc.result = Some(RunResult {
            status: RunStatus::of(ok),
            wall_ms: millis(self.wall),
            critical_path_ms: millis(self.critical_total),
            failures: self
                .report
                .failures()
                .into_iter()
                .map(|(id, e)| Failure {
                    id: id.to_string(),
                    code: e.code,
                    message: e.message.clone(),
                    hint: e.hint.clone(),
                })
                .collect(),
            run: self.run_report.actions.clone(),
            command,
        });
        doc
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn live_line_names_the_longest_running_action_and_counts_the_others() {
        let t0 = Instant::now();
        let long = "Would wait for something very long indeed ".repeat(4);
        let mut running = BTreeMap::new();
        assert_eq!(live_line(&running, t0), None);
        running.insert("c1/wait-cpr", ("Would wait for revision asm-managed", t0));
        running.insert(
            "c2/ns",
            (
                "Would create Namespace istio-system",
                t0 + Duration::from_secs(3),
            ),
        );
        let line = live_line(&running, t0 + Duration::from_secs(12)).unwrap();
        assert_eq!(line, "[12s] Wait for revision asm-managed (+1 running)");
        running.insert("c0/long", (long.as_str(), t0));
        let line = live_line(&running, t0 + Duration::from_secs(5)).unwrap();
        assert!(line.chars().count() <= LIVE_WIDTH, "{line}");
        assert!(
            line.starts_with("[5s] Wait for something") && line.ends_with("… (+2 running)"),
            "{line}"
        );
    }

    use super::super::tests::action;
    use super::*;
    use crate::output::Captured;

    fn plan() -> Plan<()> {
        Plan {
            checks: vec![],
            actions: vec![
                action("a", Op::Create, &[], 1),
                action("b", Op::Restart, &["a"], 1),
                action("c", Op::Wait, &["b"], 1),
            ],
        }
    }

    fn contract() -> Contract {
        Contract {
            dry_run: false,
            plan_out: false,
            json: false,
            yes: true,
            detailed_exitcode: false,
            concurrency: 4,
        }
    }

    #[tokio::test]
    async fn dry_run_renders_conditionally_and_stops_with_the_detailed_exit_code() {
        let cap = Captured::default();
        let printer = cap.printer();
        let env = Environment::default();
        let mut saved = false;
        let runner = Runner {
            command: "test",
            env: &env,
            printer: &printer,
            out: None,
            contract: Contract {
                dry_run: true,
                detailed_exitcode: true,
                ..contract()
            },
            blocked_hint: None,
        };
        let p = plan();
        let r = runner
            .present(&p, None, || {
                saved = true;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(r, Presented::Stopped(exit::CHANGES_PENDING));
        assert!(!saved, "a dry run without --plan-out saves nothing");
        let out = cap.stdout_text();
        assert!(out.contains("  + a: Would do a"), "{out}");
        assert!(out.contains("1 to restart"), "{out}");
    }

    #[tokio::test]
    async fn blocked_plan_stops_with_exit_3_and_the_hint() {
        let cap = Captured::default();
        let printer = cap.printer();
        let env = Environment::default();
        let runner = Runner {
            command: "test",
            env: &env,
            printer: &printer,
            out: None,
            contract: contract(),
            blocked_hint: Some("pass --enable-x"),
        };
        let mut p = plan();
        p.checks.push(super::super::Check::new(
            "ASM-C1",
            CheckStatus::Fail,
            None,
            "no",
        ));
        let e = runner.present(&p, None, || Ok(())).await.unwrap_err();
        assert_eq!(e.exit_code, exit::PRECHECK_FAILED);
        assert_eq!(
            e.message,
            "1 precheck failed (✖ above); nothing was changed"
        );
        assert_eq!(e.hint.as_deref(), Some("pass --enable-x"));
    }

    #[tokio::test]
    async fn without_yes_off_a_terminal_nothing_runs() {
        let cap = Captured::default();
        let printer = cap.printer();
        let env = Environment::default();
        let runner = Runner {
            command: "test",
            env: &env,
            printer: &printer,
            out: None,
            contract: Contract {
                yes: false,
                ..contract()
            },
            blocked_hint: None,
        };
        let e = runner.present(&plan(), None, || Ok(())).await.unwrap_err();
        assert_eq!((e.code, e.exit_code), ("ASM-E102", exit::USAGE));
    }

    #[tokio::test]
    async fn execution_reports_progress_summary_exit_code_and_priors() {
        let cap = Captured::default();
        let printer = cap.printer();
        let env = Environment::default();
        let runner = Runner {
            command: "test",
            env: &env,
            printer: &printer,
            out: None,
            contract: contract(),
            blocked_hint: None,
        };
        let p = plan();
        assert_eq!(
            runner.present(&p, None, || Ok(())).await.unwrap(),
            Presented::Confirmed
        );
        let exec = runner
            .execute(&p, None, |a| {
                let restart = a.op == Op::Restart;
                async move {
                    if restart {
                        Ok(Effect::from(super::super::record::Prior::Restarted {
                            revision: Some("1".into()),
                            restarted_at: None,
                            generation: Some(1),
                        }))
                    } else {
                        Ok(Effect::default())
                    }
                }
            })
            .await;
        assert_eq!(exec.exit_code(), exit::SUCCESS);
        let line = exec.summary_line(&p);
        assert!(
            line.starts_with("\nApplied: 1 added, 0 changed, 1 restarted, 0 deleted, 1 waited in "),
            "{line}"
        );
        assert!(line.contains("a → b → c"), "{line}");
        let err = cap.stderr_text();
        assert!(err.contains("✔ Did a"), "{err}");
        let v = serde_json::to_value(exec.document(&p, true, ())).unwrap();
        assert_eq!(v["result"]["status"], "applied");
        assert_eq!(v["result"]["run"][1]["prior"]["revision"], "1");
    }

    #[tokio::test]
    async fn a_failure_skips_dependents_and_exits_1_a_timeout_alone_exits_4() {
        let cap = Captured::default();
        let printer = cap.printer();
        let env = Environment::default();
        let runner = Runner {
            command: "test",
            env: &env,
            printer: &printer,
            out: None,
            contract: contract(),
            blocked_hint: None,
        };
        let p = plan();
        for (code, expected) in [(exit::APPLY_FAILED, 1), (exit::TIMEOUT, 4)] {
            let exec = runner
                .execute(&p, None, |a| {
                    let fail = a.id == "b";
                    async move {
                        if fail {
                            Err(Error::new("ASM-E455", code, "slow"))
                        } else {
                            Ok(())
                        }
                    }
                })
                .await;
            assert_eq!(exec.exit_code(), expected);
            assert_eq!(exec.report.outcomes["c"], Outcome::Skipped("b".into()));
            assert!(exec.summary_line(&p).starts_with("\nPartly applied:"));
        }
        assert!(cap.stderr_text().contains("c: skipped (b failed)"));
    }
}
