//! `asm install-gateway`: an ingress gateway injected by the managed control plane.
//!
//! args → spec ([`crate::steps::gateway::spec`]) → observe (install's observation plus
//! [`crate::steps::gateway::observe`]) → plan ([`crate::steps::gateway::plan_gateway`], pure)
//! → the plan runner ([`crate::plan::run`]) → re-observe and print the address.
//!
//! `--plan-out FILE` saves the plan with the flags and a fingerprint of what was observed
//! ([`crate::steps::dataplane::saved`]); `asm apply FILE` comes back here through
//! [`apply_saved`], re-observes and refuses if anything drifted.

use std::collections::BTreeMap;

use futures::future::join_all;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::cli::apply::ApplyArgs;
use crate::cli::gateway::{InjectionArg, InstallGatewayArgs, ServiceTypeArg};
use crate::commands::google::google_clients;
use crate::commands::install::concurrency;
use crate::commands::install::{check_kube_permissions, lock_clusters};
use crate::environment::Environment;
use crate::error::{Result, exit};
use crate::gcp::GcpClients;
use crate::output::Printer;
use crate::plan::Action;
use crate::plan::document::pretty;
use crate::plan::run::{Contract, Presented, Runner, prepare_output};
use crate::plan::saved::{
    SavedCommand, bool_input, refuse_unless_it_matches, required_str, save_and_tell, target_from,
    target_inputs,
};
use crate::spec::OutputFormat;
use crate::steps::apply::Executor;
use crate::steps::dataplane::DataplaneStep;
use crate::steps::dataplane::execute::DataplaneExecutor;
use crate::steps::dataplane::saved::{
    DataplaneOrGatewayInputs, GatewayInputs, actions_of, document, gateway_fingerprint,
};
use crate::steps::gateway::observe::observe_gateway;
use crate::steps::gateway::{GatewayPlan, GatewaySpec, Observed, manifests, plan_gateway};
use crate::steps::kube_actions::KubeStep;
use crate::steps::observe::{Handles, observe_reusing};

const BLOCKED_HINT: &str = "fix them as each check's hint says";

async fn observe_and_plan(
    gcp: &GcpClients,
    env: &Environment,
    spec: &GatewaySpec,
    printer: &Printer,
    reuse: Option<&Handles>,
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
    let (mesh, handles) = observe_reusing(gcp, env, &spec.mesh, reuse).await;
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

/// The flags a saved plan records (`inputs`): what to reach and what to do, never a token.
fn inputs(args: &InstallGatewayArgs) -> DataplaneOrGatewayInputs {
    DataplaneOrGatewayInputs::InstallGateway(GatewayInputs {
        target: target_inputs(&args.target),
        namespace: args.namespace.clone(),
        name: args.name.clone(),
        revision: args.revision.clone(),
        injection: match args.injection {
            InjectionArg::Namespace => "namespace",
            InjectionArg::Pod => "pod",
        },
        service_type: match args.service_type {
            ServiceTypeArg::LoadBalancer => "LoadBalancer",
            ServiceTypeArg::NodePort => "NodePort",
            ServiceTypeArg::ClusterIp => "ClusterIP",
        },
        replicas: args.replicas,
        enable_namespace_creation: args.enable_namespace_creation,
        allow_istio_system: args.allow_istio_system,
        timeout: args.timeout.clone(),
    })
}

/// `asm apply FILE` of a saved install-gateway plan: its flags (validated as flags are)
/// with `asm apply`'s `--yes`, `-o`, `--timeout`, `-D` and credentials.
pub async fn apply_saved(
    saved: &SavedCommand,
    apply: &ApplyArgs,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    let bad = |key: &str| {
        crate::error::Error::usage(
            "ASM-E106",
            format!(
                "plan file {:?}: inputs.{key} is missing or invalid",
                saved.file.display()
            ),
        )
    };
    let injection = match required_str(saved, "injection")?.as_str() {
        "namespace" => InjectionArg::Namespace,
        "pod" => InjectionArg::Pod,
        _ => return Err(bad("injection").into()),
    };
    let service_type = match required_str(saved, "service_type")?.as_str() {
        "LoadBalancer" => ServiceTypeArg::LoadBalancer,
        "NodePort" => ServiceTypeArg::NodePort,
        "ClusterIP" => ServiceTypeArg::ClusterIp,
        _ => return Err(bad("service_type").into()),
    };
    let replicas = saved.inputs["replicas"]
        .as_u64()
        .and_then(|r| u32::try_from(r).ok())
        .ok_or_else(|| bad("replicas"))?;
    let args = InstallGatewayArgs {
        target: target_from(saved, &apply.credentials),
        namespace: required_str(saved, "namespace")?,
        name: required_str(saved, "name")?,
        revision: required_str(saved, "revision")?,
        injection,
        service_type,
        replicas,
        enable_namespace_creation: bool_input(saved, "enable_namespace_creation")?,
        allow_istio_system: bool_input(saved, "allow_istio_system")?,
        dry_run: false,
        detailed_exitcode: false,
        plan_out: None,
        output_dir: apply.output_dir.clone(),
        output: apply.output,
        yes: apply.yes,
        timeout: match &apply.timeout {
            Some(t) => t.clone(),
            None => required_str(saved, "timeout")?,
        },
        lock: apply.lock.clone(),
    };
    run_with(args, Some(saved), env, printer).await
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
    run_with(args, None, env, printer).await
}

/// Runs `install-gateway`; with `saved`, only if the state and the plan still match it.
async fn run_with(
    args: InstallGatewayArgs,
    saved: Option<&SavedCommand>,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    let spec = GatewaySpec::from_args(&args)?;
    let lock_timeout = crate::spec::parse_lock_timeout(&args.lock.lock_timeout)?;
    let (out, printer) = prepare_output(spec.plan.output_dir.as_deref(), printer)?;
    let printer = &printer;
    let started = Instant::now();
    let json_out = spec.mesh.output == OutputFormat::Json;

    let gcp = google_clients(env, &args.target.credentials.options(), printer).await?;
    let (obs, handles, plan) = observe_and_plan(&gcp, env, &spec, printer, None).await?;
    let mut plan = plan;
    check_kube_permissions(&spec.mesh, &handles, &mut plan).await;

    // A saved plan: what it was made from, and what it would do, must not have changed.
    let fp = gateway_fingerprint(&spec, &obs)?;
    refuse_unless_it_matches(saved, &fp, || actions_of(&plan), printer)?;

    let runner = Runner {
        command: "install-gateway",
        env,
        printer,
        out: out.as_ref(),
        contract: Contract::new(&spec.plan, json_out, concurrency(spec.mesh.clusters.len())),
        blocked_hint: Some(BLOCKED_HINT),
    };
    let manifests = |a: &Action<DataplaneStep>| manifest_of(a);
    let save = || match &spec.plan.plan_out {
        Some(file) => save_and_tell(file, &document(&plan, inputs(&args), &fp), printer),
        None => Ok(()),
    };
    if let Presented::Stopped(code) = runner.present(&plan, Some(&manifests), save).await? {
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
    let exec = runner
        .execute(&plan, Some(&manifests), |a| executor.run(a))
        .await;
    locks.release().await;

    // Verify: what is there now, and the address.
    let code = exec.exit_code();
    let mut addresses = BTreeMap::new();
    let mut remaining = None;
    if code == exit::SUCCESS {
        let (obs, _, replan) =
            observe_and_plan(&gcp, env, &spec, printer, Some(&executor.mesh.handles)).await?;
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
