//! `asm install-gateway`: an ingress gateway injected by the managed control plane.
//!
//! args → spec ([`crate::steps::gateway::spec`]) → observe (install's observation plus
//! [`crate::steps::gateway::observe`]) → plan ([`crate::steps::gateway::plan_gateway`], pure)
//! → the plan runner ([`crate::plan::run`]) → re-observe and print the address.

use std::collections::BTreeMap;

use futures::future::join_all;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::cli::gateway::InstallGatewayArgs;
use crate::commands::google::google_clients;
use crate::commands::install::concurrency;
use crate::environment::Environment;
use crate::error::{Result, exit};
use crate::gcp::GcpClients;
use crate::output::Printer;
use crate::plan::Action;
use crate::plan::document::pretty;
use crate::plan::run::{Contract, Presented, Runner, prepare_output};
use crate::spec::OutputFormat;
use crate::steps::apply::Executor;
use crate::steps::dataplane::DataplaneStep;
use crate::steps::dataplane::execute::DataplaneExecutor;
use crate::steps::gateway::observe::observe_gateway;
use crate::steps::gateway::{GatewayPlan, GatewaySpec, Observed, manifests, plan_gateway};
use crate::steps::kube_actions::KubeStep;
use crate::steps::observe::{Handles, observe};

const BLOCKED_HINT: &str = "fix them as each check's hint says";

async fn observe_and_plan(
    gcp: &GcpClients,
    env: &Environment,
    spec: &GatewaySpec,
    printer: &Printer,
) -> Result<(Observed, Handles, GatewayPlan)> {
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
    // Names only: the revision does not change which objects are read.
    let desired = manifests(spec, "auto")?;
    let clusters = join_all(handles.kube.iter().map(|ctx| {
        let desired = &desired;
        async move {
            match ctx {
                Some(ctx) => Some(observe_gateway(ctx, &spec.namespace, desired).await),
                None => None,
            }
        }
    }))
    .await;
    let obs = Observed { mesh, clusters };
    let plan = plan_gateway(spec, &obs)?;
    Ok((obs, handles, plan))
}

/// The manifest an action applies, with its cluster (for `-D/manifests`).
fn manifest_of(a: &Action<DataplaneStep>) -> Option<(String, Value)> {
    match &a.payload {
        DataplaneStep::Kube {
            step: KubeStep::Apply { object },
            ..
        } => Some((a.cluster.clone().unwrap_or_default(), object.clone())),
        _ => None,
    }
}

/// What install-gateway adds to `-o json`'s `result`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GatewayResult {
    /// The gateway Service's external address per cluster (`null`: none yet); empty after a
    /// failure.
    pub addresses: BTreeMap<String, Option<String>>,
    /// Changes a new plan still finds after applying; `null` after a failure (no new plan).
    pub remaining_changes: Option<usize>,
}

/// Runs `asm install-gateway`.
pub async fn run(args: InstallGatewayArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    let spec = GatewaySpec::from_args(&args)?;
    let (out, printer) = prepare_output(spec.output_dir.as_deref(), printer)?;
    let printer = &printer;
    let started = Instant::now();
    let json_out = spec.mesh.output == OutputFormat::Json;

    let gcp = google_clients(env, &args.target.credentials.options(), printer).await?;
    let (_, handles, plan) = observe_and_plan(&gcp, env, &spec, printer).await?;

    let runner = Runner {
        command: "install-gateway",
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
    let manifests = |a: &Action<DataplaneStep>| manifest_of(a);
    if let Presented::Stopped(code) = runner.present(&plan, Some(&manifests), || Ok(())).await? {
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
    let exec = runner
        .execute(&plan, Some(&manifests), |a| executor.run(a))
        .await;

    // Verify: what is there now, and the address.
    let code = exec.exit_code();
    let mut addresses = BTreeMap::new();
    let mut remaining = None;
    if code == exit::SUCCESS {
        let (obs, _, replan) = observe_and_plan(&gcp, env, &spec, printer).await?;
        remaining = Some(replan.summary().changes());
        for (c, o) in spec.mesh.clusters.iter().zip(&obs.clusters) {
            if let Some(Ok(g)) = o {
                addresses.insert(c.to_string(), g.address.clone());
            }
        }
    }
    if json_out {
        let extra = GatewayResult {
            addresses: addresses.clone(),
            remaining_changes: remaining,
        };
        printer.result(&pretty(&exec.document(&plan, code == exit::SUCCESS, extra)));
    } else {
        let mut text = exec.summary_line(&plan);
        for (c, a) in &addresses {
            text.push_str(&format!(
                "Gateway {}/{} on {c}: {}\n",
                spec.namespace,
                spec.name,
                a.as_deref().unwrap_or("no external address")
            ));
        }
        printer.result(&text);
    }
    Ok(runner.conclude(&exec, code, remaining))
}
