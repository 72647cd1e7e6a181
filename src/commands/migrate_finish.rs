//! `asm migrate --finish`: delete the old in-cluster control plane once no pod uses it.
//!
//! args → spec ([`crate::steps::retire::spec`]) → observe (install's observation plus
//! [`crate::steps::retire::observe`]) → plan ([`crate::steps::retire::plan_retire`], pure)
//! → the plan runner ([`crate::plan::run`]) → re-observe and report.

use futures::future::join_all;
use tokio::time::Instant;

use crate::cli::migrate::MigrateArgs;
use crate::commands::google::google_clients;
use crate::commands::install::concurrency;
use crate::environment::Environment;
use crate::error::{Result, exit};
use crate::gcp::GcpClients;
use crate::output::Printer;
use crate::plan::run::{Contract, Presented, Runner, prepare_output};
use crate::spec::OutputFormat;
use crate::steps::apply::Executor;
use crate::steps::dataplane::execute::DataplaneExecutor;
use crate::steps::observe::{Handles, observe};
use crate::steps::retire::observe::observe_retire;
use crate::steps::retire::{Observed, RetirePlan, RetireSpec, plan_retire};

/// What fixes a failed precheck of `migrate --finish`.
const BLOCKED_HINT: &str = "move the pods listed to the managed control plane (asm migrate \
     --namespace NS, or --all-namespaces), then run asm migrate --finish again";

async fn observe_and_plan(
    gcp: &GcpClients,
    env: &Environment,
    spec: &RetireSpec,
    printer: &Printer,
) -> (Handles, RetirePlan) {
    let n = spec.mesh.clusters.len();
    printer.progress(&format!(
        "Reading the state of {n} cluster{}…",
        if n == 1 { "" } else { "s" }
    ));
    let (mesh, handles) = observe(gcp, env, &spec.mesh).await;
    let clusters = join_all(handles.kube.iter().map(|ctx| async move {
        match ctx {
            Some(ctx) => Some(observe_retire(ctx).await),
            None => None,
        }
    }))
    .await;
    let plan = plan_retire(spec, &Observed { mesh, clusters });
    (handles, plan)
}

/// Runs `asm migrate --finish`.
pub async fn run(env: &Environment, args: &MigrateArgs, printer: &Printer) -> Result<i32> {
    let spec = RetireSpec::from_args(args)?;
    let lock_timeout = crate::spec::parse_lock_timeout(&args.lock.lock_timeout)?;
    let (out, printer) = prepare_output(spec.plan.output_dir.as_deref(), printer)?;
    let printer = &printer;
    let started = Instant::now();
    let json_out = spec.mesh.output == OutputFormat::Json;

    let gcp = google_clients(env, &args.target.credentials.options(), printer).await?;
    let (handles, plan) = observe_and_plan(&gcp, env, &spec, printer).await;
    let mut plan = plan;
    crate::commands::install::check_kube_permissions(&spec.mesh, &handles, &mut plan).await;

    let runner = Runner {
        command: "migrate-finish",
        env,
        printer,
        out: out.as_ref(),
        contract: Contract::new(&spec.plan, json_out, concurrency(spec.mesh.clusters.len())),
        blocked_hint: Some(BLOCKED_HINT),
    };
    if let Presented::Stopped(code) = runner.present(&plan, None, || Ok(())).await? {
        return Ok(code);
    }
    let locks =
        crate::commands::install::lock_clusters(&spec.mesh, &plan, &handles, lock_timeout, printer)
            .await?;
    let executor = DataplaneExecutor {
        mesh: Executor {
            gcp: gcp.clone(),
            spec: spec.mesh.clone(),
            handles,
            deadline: started + spec.mesh.timeout,
            printer: printer.clone(),
        },
    };
    let exec = runner.execute(&plan, None, |a| executor.run(a)).await;
    locks.release().await;

    // Verify: nothing is left to delete.
    let code = exec.exit_code();
    let remaining = if code == exit::SUCCESS {
        let (_, replan) = observe_and_plan(&gcp, env, &spec, printer).await;
        Some(replan.summary().changes())
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
        if code == exit::SUCCESS {
            text.push_str(
                "The in-cluster control plane is retired; `asm rollback` can no longer \
                 return to it.\n",
            );
        }
        printer.result(&text);
    }
    Ok(runner.conclude(&exec, code, remaining))
}
