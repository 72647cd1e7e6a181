//! `asm enable-dataplane`: the Google-managed data plane for namespaces or pods.
//!
//! args → spec ([`crate::steps::dataplane::spec`]) → observe (install's observation plus
//! [`crate::steps::dataplane::observe`]) → plan ([`crate::steps::dataplane::plan_dataplane`],
//! pure) → the plan runner ([`crate::plan::run`]) → re-observe and report.
//!
//! `--plan-out FILE` saves the plan with the flags and a fingerprint of what was observed
//! ([`crate::steps::dataplane::saved`]); `asm apply FILE` comes back here through
//! [`apply_saved`], re-observes and refuses if anything drifted.

use futures::future::join_all;
use tokio::time::Instant;

use crate::cli::apply::ApplyArgs;
use crate::cli::dataplane::EnableDataplaneArgs;
use crate::commands::google::google_clients;
use crate::commands::install::concurrency;
use crate::commands::install::{check_kube_permissions, lock_clusters};
use crate::environment::Environment;
use crate::error::{Result, exit};
use crate::gcp::GcpClients;
use crate::output::Printer;
use crate::plan::document::{ReplanResult, pretty};
use crate::plan::run::{Contract, Presented, Runner, prepare_output};
use crate::plan::saved::{
    SavedCommand, bool_input, opt_str, refuse_unless_it_matches, save_and_tell, str_list,
    target_from, target_inputs,
};
use crate::spec::OutputFormat;
use crate::steps::apply::Executor;
use crate::steps::dataplane::execute::DataplaneExecutor;
use crate::steps::dataplane::observe::observe_dataplane;
use crate::steps::dataplane::saved::{
    DataplaneInputs, DataplaneOrGatewayInputs, actions_of, dataplane_fingerprint, document,
};
use crate::steps::dataplane::{DataplanePlan, DataplaneSpec, Observed, plan_dataplane};
use crate::steps::observe::{Handles, observe_reusing};

/// What fixes a failed precheck of enable-dataplane.
const BLOCKED_HINT: &str = "fix them as each check's hint says; -e/--enable-gcp-components \
     enables the fleet servicemesh feature";

/// Observes every cluster and plans.
async fn observe_and_plan(
    gcp: &GcpClients,
    env: &Environment,
    spec: &DataplaneSpec,
    printer: &Printer,
    reuse: Option<&Handles>,
) -> (Observed, Handles, DataplanePlan) {
    let started = Instant::now();
    printer.progress(&format!(
        "Reading the state of {} cluster{}…",
        spec.mesh.clusters.len(),
        if spec.mesh.clusters.len() == 1 {
            ""
        } else {
            "s"
        },
    ));
    let (mesh, handles) = observe_reusing(gcp, env, &spec.mesh, reuse).await;
    let clusters = join_all(handles.kube.iter().map(|ctx| async move {
        match ctx {
            Some(ctx) => Some(observe_dataplane(ctx).await),
            None => None,
        }
    }))
    .await;
    let obs = Observed { mesh, clusters };
    let plan = plan_dataplane(spec, &obs);
    printer.detail(&format!("observed in {}ms", started.elapsed().as_millis()));
    (obs, handles, plan)
}

/// The flags a saved plan records (`inputs`): what to reach and what to do, never a token.
fn inputs(args: &EnableDataplaneArgs) -> DataplaneOrGatewayInputs {
    DataplaneOrGatewayInputs::EnableDataplane(DataplaneInputs {
        target: target_inputs(&args.target),
        namespaces: args.namespaces.clone(),
        all_namespaces: args.all_namespaces,
        pods: args.pods.clone(),
        disable: args.disable,
        enable_gcp_components: args.enable_gcp_components,
        timeout: args.timeout.clone(),
    })
}

/// `asm apply FILE` of a saved enable-dataplane plan: its flags (validated as flags are)
/// with `asm apply`'s `--yes`, `-o`, `--timeout`, `-D` and credentials.
pub async fn apply_saved(
    saved: &SavedCommand,
    apply: &ApplyArgs,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    let i = &saved.inputs;
    let args = EnableDataplaneArgs {
        target: target_from(saved, &apply.credentials),
        namespaces: str_list(i, "namespaces"),
        all_namespaces: bool_input(saved, "all_namespaces")?,
        pods: str_list(i, "pods"),
        disable: bool_input(saved, "disable")?,
        enable_gcp_components: bool_input(saved, "enable_gcp_components")?,
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

/// Runs `asm enable-dataplane`.
pub async fn run(args: EnableDataplaneArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    run_with(args, None, env, printer).await
}

/// Runs `enable-dataplane`; with `saved`, only if the state and the plan still match it.
async fn run_with(
    args: EnableDataplaneArgs,
    saved: Option<&SavedCommand>,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    // Args → spec (every rejection before any request).
    let spec = DataplaneSpec::from_args(&args)?;
    let lock_timeout = crate::spec::parse_lock_timeout(&args.lock.lock_timeout)?;
    let (out, printer) = prepare_output(spec.plan.output_dir.as_deref(), printer)?;
    let printer = &printer;
    let started = Instant::now();
    let json_out = spec.mesh.output == OutputFormat::Json;

    // Observe, plan.
    let gcp = google_clients(env, &args.target.credentials.options(), printer).await?;
    let (obs, handles, plan) = observe_and_plan(&gcp, env, &spec, printer, None).await;
    let mut plan = plan;
    check_kube_permissions(&spec.mesh, &handles, &mut plan).await;

    // A saved plan: what it was made from, and what it would do, must not have changed.
    let fp = dataplane_fingerprint(&spec, &obs);
    refuse_unless_it_matches(saved, &fp, || actions_of(&plan), printer)?;

    // Present, confirm, execute: the plan runner.
    let runner = Runner {
        command: "enable-dataplane",
        env,
        printer,
        out: out.as_ref(),
        contract: Contract::new(&spec.plan, json_out, concurrency(spec.mesh.clusters.len())),
        blocked_hint: Some(BLOCKED_HINT),
    };
    let save = || match &spec.plan.plan_out {
        Some(file) => save_and_tell(file, &document(&plan, inputs(&args), &fp), printer),
        None => Ok(()),
    };
    if let Presented::Stopped(code) = runner.present(&plan, None, save).await? {
        return Ok(code);
    }
    let locks = lock_clusters(&spec.mesh, &plan, &handles, lock_timeout, printer).await?;
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

    // Verify: what is there now.
    let code = exec.exit_code();
    let remaining = if code == exit::SUCCESS {
        let (_, _, replan) =
            observe_and_plan(&gcp, env, &spec, printer, Some(&executor.mesh.handles)).await;
        Some(replan.summary().changes())
    } else {
        None
    };
    if json_out {
        let extra = ReplanResult {
            remaining_changes: remaining,
        };
        printer.result(&pretty(&exec.document(&plan, code == exit::SUCCESS, extra)));
    } else {
        let mut text = exec.summary_line(&plan);
        if code == exit::SUCCESS {
            text.push_str(if spec.disable {
                "The managed data plane is off for the namespaces and pods named.\n"
            } else {
                "The managed data plane is Ready for the namespaces and pods named.\n"
            });
        }
        printer.result(&text);
    }
    Ok(runner.conclude(&exec, code, remaining))
}
