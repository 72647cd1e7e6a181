//! `asm enable-dataplane`: the Google-managed data plane for namespaces or pods.
//!
//! args → spec ([`crate::steps::dataplane::spec`]) → observe (install's observation plus
//! [`crate::steps::dataplane::observe`]) → plan ([`crate::steps::dataplane::plan_dataplane`],
//! pure) → the plan runner ([`crate::plan::run`]) → re-observe and report.

use futures::future::join_all;
use schemars::JsonSchema;
use serde::Serialize;
use tokio::time::Instant;

use crate::cli::dataplane::EnableDataplaneArgs;
use crate::commands::google::google_clients;
use crate::commands::install::concurrency;
use crate::environment::Environment;
use crate::error::{Result, exit};
use crate::gcp::GcpClients;
use crate::output::Printer;
use crate::plan::document::pretty;
use crate::plan::run::{Contract, Presented, Runner, prepare_output};
use crate::spec::OutputFormat;
use crate::steps::apply::Executor;
use crate::steps::dataplane::execute::DataplaneExecutor;
use crate::steps::dataplane::observe::observe_dataplane;
use crate::steps::dataplane::{DataplanePlan, DataplaneSpec, Observed, plan_dataplane};
use crate::steps::observe::{Handles, observe};

/// What fixes a failed precheck of enable-dataplane.
const BLOCKED_HINT: &str = "fix them as each check's hint says; -e/--enable-gcp-components \
     enables the fleet servicemesh feature";

/// Observes every cluster and plans.
async fn observe_and_plan(
    gcp: &GcpClients,
    env: &Environment,
    spec: &DataplaneSpec,
    printer: &Printer,
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
    let (mesh, handles) = observe(gcp, env, &spec.mesh).await;
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

/// What enable-dataplane adds to `-o json`'s `result`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DataplaneResult {
    /// Changes a new plan still finds after applying; `null` after a failure (no new plan).
    pub remaining_changes: Option<usize>,
}

/// Runs `asm enable-dataplane`.
pub async fn run(args: EnableDataplaneArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    // Args → spec (every rejection before any request).
    let spec = DataplaneSpec::from_args(&args)?;
    let (out, printer) = prepare_output(spec.output_dir.as_deref(), printer)?;
    let printer = &printer;
    let started = Instant::now();
    let json_out = spec.mesh.output == OutputFormat::Json;

    // Observe, plan.
    let gcp = google_clients(env, &args.target.credentials.options(), printer).await?;
    let (_, handles, plan) = observe_and_plan(&gcp, env, &spec, printer).await;

    // Present, confirm, execute: the plan runner.
    let runner = Runner {
        command: "enable-dataplane",
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

    // Verify: what is there now.
    let code = exec.exit_code();
    let remaining = if code == exit::SUCCESS {
        let (_, _, replan) = observe_and_plan(&gcp, env, &spec, printer).await;
        Some(replan.summary().changes())
    } else {
        None
    };
    if json_out {
        let extra = DataplaneResult {
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
