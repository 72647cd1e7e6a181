//! Running a secret plan (`create-mesh`, `create-remote-secret --apply-to`) through the plan
//! runner, then `--verify` and the per-cluster report.

use schemars::JsonSchema;
use serde::Serialize;

use crate::environment::Environment;
use crate::error::{Result, exit};
use crate::kube::lease::{ClusterLocks, Holder, LockTarget};
use crate::output::Printer;
use crate::plan::document::pretty;
use crate::plan::execute::{Outcome, Report};
use crate::plan::output_dir::OutputDir;
use crate::plan::run::{Contract, Presented, Runner};
use crate::plan::saved::save_and_tell;
use crate::spec::PlanFlags;
use crate::steps::mesh::execute::SecretExecutor;
use crate::steps::mesh::saved::SavedSecretPlan;
use crate::steps::mesh::verify::{Verification, verify};
use crate::steps::remote_secret::{MeshStep, SecretPlan};

/// Actions of a secret plan run at most this many at a time.
pub const CONCURRENCY: usize = 16;

/// How a secret plan is presented and applied.
#[derive(Debug, Clone, Copy)]
pub struct SecretRun<'a> {
    /// The command, for the run report.
    pub command: &'static str,
    /// `--dry-run`, `--yes`, `--detailed-exitcode`, `--plan-out`, `-D`.
    pub flags: &'a PlanFlags,
    pub json: bool,
    /// `--verify` after applying.
    pub verify: bool,
    pub out: Option<&'a OutputDir>,
    /// With `--plan-out FILE`: the document to save there (the plan, inputs, fingerprint).
    pub saved: Option<&'a SavedSecretPlan>,
    /// `--lock-timeout`: how long to wait for another run's cluster locks.
    pub lock_timeout: std::time::Duration,
}

/// What a secret plan's run adds to `-o json`'s `result`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SecretsResult {
    /// Per member cluster: remote secrets applied to it, and its actions that failed.
    pub clusters: Vec<ClusterSecrets>,
    /// `--verify`: one entry per remote secret (empty without `--verify`).
    pub verify: Vec<Verification>,
}

/// Remote secrets of one member cluster after a run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClusterSecrets {
    pub cluster: String,
    pub secrets_applied: usize,
    /// Its actions that failed or were skipped.
    pub failed: usize,
}

/// Presents `plan` (stops for `--dry-run` or a failed check), executes it with progress,
/// optionally verifies every pair, and prints the result. Returns the exit code.
pub async fn run_secret_plan(
    plan: &SecretPlan,
    exec: &SecretExecutor,
    pairs: &[(usize, usize)],
    mode: SecretRun<'_>,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    let runner = Runner {
        command: mode.command,
        env,
        printer,
        out: mode.out,
        contract: Contract::new(mode.flags, mode.json, CONCURRENCY),
        blocked_hint: None,
    };
    let save = || match (&mode.flags.plan_out, mode.saved) {
        (Some(file), Some(doc)) => save_and_tell(file, doc, printer),
        _ => Ok(()),
    };
    if let Presented::Stopped(code) = runner.present(plan, None, save).await? {
        return Ok(code);
    }
    let targets: Vec<LockTarget> = exec
        .members
        .iter()
        .zip(&exec.clients)
        .filter_map(|(m, ctx)| {
            let touched = plan
                .actions
                .iter()
                .any(|a| a.cluster.as_deref() == Some(m.display.as_str()));
            let ctx = ctx.as_ref().filter(|_| touched)?;
            Some(LockTarget {
                cluster: m.display.clone(),
                client: ctx.client.clone(),
            })
        })
        .collect();
    let locks =
        ClusterLocks::acquire(&targets, Holder::this_process(), mode.lock_timeout, printer).await?;
    let execution = runner.execute(plan, None, |a| exec.run(a)).await;
    locks.release().await;
    let code = execution.exit_code();
    let verifications = if mode.verify && code == exit::SUCCESS {
        printer.progress("Verifying every secret against its cluster…");
        verify(exec, pairs).await
    } else {
        Vec::new()
    };
    let verify_failed = verifications.iter().any(|v| !v.ok);
    for v in &verifications {
        let sym = if v.ok {
            printer.paint("✔", "32")
        } else {
            printer.paint("✖", "31")
        };
        printer.progress(&format!("{sym} {}", v.message));
    }
    let per_cluster = cluster_summary(plan, &execution.report, exec);
    if mode.json {
        let extra = SecretsResult {
            clusters: per_cluster
                .iter()
                .map(|(c, ok, failed)| ClusterSecrets {
                    cluster: c.clone(),
                    secrets_applied: *ok,
                    failed: *failed,
                })
                .collect(),
            verify: verifications.clone(),
        };
        let doc = execution.document(plan, code == exit::SUCCESS && !verify_failed, extra);
        printer.result(&pretty(&doc));
    } else {
        let mut out = execution.summary_line(plan);
        for (c, ok, failed) in &per_cluster {
            out.push_str(&format!(
                "  {c}: {ok} secret{} applied{}\n",
                if *ok == 1 { "" } else { "s" },
                if *failed > 0 {
                    format!(", {failed} failed")
                } else {
                    String::new()
                }
            ));
        }
        if !verifications.is_empty() {
            let good = verifications.iter().filter(|v| v.ok).count();
            out.push_str(&format!(
                "Verified: {good} of {} secrets authenticate and may read their cluster.\n",
                verifications.len()
            ));
        }
        printer.result(&out);
    }
    runner.report_failures(&execution);
    if code != exit::SUCCESS {
        return Ok(code);
    }
    if verify_failed {
        return Err(crate::error::Error::apply(
            "ASM-E479",
            "verification failed: a remote secret does not grant its reader access (✖ above)",
        )
        .into());
    }
    Ok(exit::SUCCESS)
}

/// `(cluster, remote secrets applied to it, actions of it that failed)` per member.
fn cluster_summary(
    plan: &SecretPlan,
    report: &Report,
    exec: &SecretExecutor,
) -> Vec<(String, usize, usize)> {
    exec.members
        .iter()
        .map(|m| {
            let mine = plan
                .actions
                .iter()
                .filter(|a| a.cluster.as_deref() == Some(m.display.as_str()));
            let mut ok = 0;
            let mut failed = 0;
            for a in mine {
                match report.outcomes.get(&a.id) {
                    Some(Outcome::Done(_))
                        if matches!(a.payload, MeshStep::RemoteSecret { .. }) =>
                    {
                        ok += 1
                    }
                    Some(Outcome::Failed(..)) | Some(Outcome::Skipped(_)) => failed += 1,
                    _ => {}
                }
            }
            (m.display.clone(), ok, failed)
        })
        .collect()
}
