//! `asm rollback`: undo `asm migrate` from its record.
//!
//! args → spec ([`crate::steps::rollback::spec`]) → observe (the same reads as migrate) →
//! no record and no `--to-revision`: exit 2 → plan ([`crate::steps::rollback::plan_rollback`],
//! pure) → the plan runner → re-observe and report.

use tokio::time::Instant;

use crate::cli::rollback::RollbackArgs;
use crate::commands::google::google_clients;
use crate::commands::install::concurrency;
use crate::commands::install::{check_kube_permissions, lock_clusters};
use crate::commands::migrate::observe_clusters;
use crate::environment::Environment;
use crate::error::{Error, Result, exit};
use crate::output::Printer;
use crate::plan::run::{Contract, Presented, Runner, prepare_output};
use crate::spec::OutputFormat;
use crate::steps::migrate::execute::MigrateExecutor;
use crate::steps::rollback::{RollbackSpec, clusters_without_record, plan_rollback};

/// What fixes a failed precheck of rollback.
const BLOCKED_HINT: &str = "fix them as each check's hint says, then run asm rollback again";

/// Runs `asm rollback`.
pub async fn run(args: RollbackArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    let spec = RollbackSpec::from_args(&args)?;
    let lock_timeout = crate::spec::parse_lock_timeout(&args.lock.lock_timeout)?;
    let (out, printer) = prepare_output(spec.output_dir.as_deref(), printer)?;
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

    let runner = Runner {
        command: "rollback",
        env,
        printer,
        out: out.as_ref(),
        contract: Contract {
            dry_run: spec.dry_run,
            plan_out: false,
            json: json_out,
            yes: spec.yes,
            detailed_exitcode: spec.detailed_exitcode,
            concurrency: concurrency(spec.mesh.clusters.len()),
        },
        blocked_hint: Some(BLOCKED_HINT),
    };
    if let Presented::Stopped(code) = runner.present(&plan, None, || Ok(())).await? {
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
        let extra = crate::commands::enable_dataplane::DataplaneResult {
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
