//! `asm rollback`: undo `asm migrate` from its record.
//!
//! args → spec ([`crate::steps::rollback::spec`]) → observe (the same reads as migrate) →
//! no record and no `--to-revision`: exit 2 → plan ([`crate::steps::rollback::plan_rollback`],
//! pure) → the plan runner → re-observe and report.
//!
//! `--plan-out FILE` saves the plan with the flags and a fingerprint of what was observed
//! (the same as migrate's, [`crate::steps::migrate::saved`]); `asm apply FILE` comes back
//! here through [`apply_saved`], re-observes and refuses if anything drifted.

use tokio::time::Instant;

use crate::cli::apply::ApplyArgs;
use crate::cli::rollback::RollbackArgs;
use crate::commands::google::google_clients;
use crate::commands::install::concurrency;
use crate::commands::install::{check_kube_permissions, lock_clusters};
use crate::commands::migrate::observe_clusters;
use crate::environment::Environment;
use crate::error::{Error, Result, exit};
use crate::output::Printer;
use crate::plan::run::{Contract, Presented, Runner, prepare_output};
use crate::plan::saved::{
    SavedCommand, opt_str, refuse_unless_it_matches, save_and_tell, str_list, target_from,
};
use crate::spec::OutputFormat;
use crate::steps::migrate::execute::MigrateExecutor;
use crate::steps::migrate::saved as saved_plan;
use crate::steps::rollback::{RollbackSpec, clusters_without_record, plan_rollback};

/// What fixes a failed precheck of rollback.
const BLOCKED_HINT: &str = "fix them as each check's hint says, then run asm rollback again";

/// `asm apply FILE` of a saved rollback plan: its flags (validated as flags are) with
/// `asm apply`'s `--yes`, `-o`, `--timeout`, `-D` and credentials.
pub async fn apply_saved(
    saved: &SavedCommand,
    apply: &ApplyArgs,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    let i = &saved.inputs;
    let args = RollbackArgs {
        target: target_from(saved, &apply.credentials),
        namespaces: str_list(i, "namespaces"),
        to_revision: opt_str(i, "to_revision"),
        dry_run: false,
        detailed_exitcode: false,
        plan_out: None,
        output_dir: apply.output_dir.clone(),
        output: apply.output,
        yes: apply.yes,
        timeout: apply
            .timeout
            .clone()
            .or_else(|| opt_str(i, "timeout"))
            .unwrap_or_else(|| "10m".into()),
        lock: apply.lock.clone(),
    };
    run_with(args, Some(saved), env, printer).await
}

/// Runs `asm rollback`.
pub async fn run(args: RollbackArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    run_with(args, None, env, printer).await
}

/// Runs `rollback`; with `saved`, only if the state and the plan still match it.
async fn run_with(
    args: RollbackArgs,
    saved: Option<&SavedCommand>,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    let spec = RollbackSpec::from_args(&args)?;
    let lock_timeout = crate::spec::parse_lock_timeout(&args.lock.lock_timeout)?;
    let (out, printer) = prepare_output(spec.plan.output_dir.as_deref(), printer)?;
    let printer = &printer;
    let started = Instant::now();
    let json_out = spec.mesh.output == OutputFormat::Json;

    let gcp = google_clients(env, &args.target.credentials.options(), printer).await?;
    let (obs, handles) = observe_clusters(&gcp, env, &spec.mesh, printer).await;
    if spec.to_revision.is_none() {
        let missing: Vec<String> = clusters_without_record(&obs)
            .into_iter()
            .map(|i| spec.mesh.clusters[i].to_string())
            .collect();
        if !missing.is_empty() {
            return Err(Error::usage(
                "ASM-E103",
                format!(
                    "no migration record (ConfigMap istio-system/asm-migration) on {}: asm \
                     migrate was not run there, so there is nothing recorded to roll back",
                    missing.join(", ")
                ),
            )
            .with_hint(
                "to relabel namespaces to an in-cluster revision anyway, pass --to-revision REV",
            )
            .into());
        }
    }
    let plan = plan_rollback(&spec, &obs);
    let mut plan = plan;
    check_kube_permissions(&spec.mesh, &handles, &mut plan).await;

    // A saved plan: what it was made from, and what it would do, must not have changed.
    let fp = saved_plan::fingerprint(&spec.mesh.clusters, &obs);
    refuse_unless_it_matches(saved, &fp, || saved_plan::actions_of(&plan), printer)?;

    let runner = Runner {
        command: "rollback",
        env,
        printer,
        out: out.as_ref(),
        contract: Contract::new(&spec.plan, json_out, concurrency(spec.mesh.clusters.len())),
        blocked_hint: Some(BLOCKED_HINT),
    };
    let save = || match &spec.plan.plan_out {
        Some(file) => save_and_tell(
            file,
            &saved_plan::document(&plan, saved_plan::rollback_inputs(&args), &fp),
            printer,
        ),
        None => Ok(()),
    };
    if let Presented::Stopped(code) = runner.present(&plan, None, save).await? {
        return Ok(code);
    }
    let locks = lock_clusters(&spec.mesh, &plan, &handles, lock_timeout, printer).await?;
    let executor = MigrateExecutor {
        kube: handles.kube.clone(),
        deadline: started + spec.mesh.timeout,
        printer: printer.clone(),
    };
    let exec = runner.execute(&plan, None, |a| executor.run(a)).await;
    locks.release().await;

    let code = exec.exit_code();
    let remaining = if code == exit::SUCCESS {
        let (again, _) = observe_clusters(&gcp, env, &spec.mesh, printer).await;
        Some(plan_rollback(&spec, &again).summary().changes())
    } else {
        None
    };
    if json_out {
        let extra = crate::plan::document::ReplanResult {
            remaining_changes: remaining,
        };
        printer.result(&crate::plan::document::pretty(&exec.document(
            &plan,
            code == exit::SUCCESS,
            extra,
        )));
    } else {
        let mut text = exec.summary_line(&plan);
        if plan.actions.is_empty() {
            text.push_str("Nothing to roll back.\n");
        } else if code == exit::SUCCESS {
            text.push_str(
                "Rolled back: the namespaces and gateways are on their previous revision.\n",
            );
        }
        printer.result(&text);
    }
    Ok(runner.conclude(&exec, code, remaining))
}
