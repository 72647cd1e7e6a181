//! `asm create-mesh`: endpoint discovery among N clusters — every cluster gets the remote
//! secret of every other one (N×(N−1)), planned from what is there, applied concurrently.
//!
//! args → spec ([`crate::steps::mesh::spec`]) → observe ([`crate::steps::mesh::observe`]) →
//! plan ([`crate::steps::remote_secret`]) → the plan runner ([`super::secret_plan`]).
//!
//! `--plan-out FILE` saves the plan with the flags and a fingerprint of what was observed
//! ([`crate::steps::mesh::saved`]); `asm apply FILE` comes back here through
//! [`apply_saved`], re-observes and refuses if anything drifted.

use std::path::PathBuf;

use tokio::time::Instant;

use crate::cli::apply::ApplyArgs;
use crate::cli::create_mesh::CreateMeshArgs;
use crate::commands::google::{google_clients, request_trace};
use crate::commands::install::prepare_output;
use crate::commands::secret_plan::{SecretRun, run_secret_plan};
use crate::environment::Environment;
use crate::error::Result;
use crate::output::Printer;
use crate::plan::saved::{SavedCommand, bool_input, opt_str, refuse_unless_it_matches, str_list};
use crate::steps::mesh::execute::SecretExecutor;
use crate::steps::mesh::observe::{
    Connected, connect, member_refs, observe_members, observe_registrations,
};
use crate::steps::mesh::saved::{
    CreateMeshInputs, SecretInputs, actions_of, document, fingerprint,
};
use crate::steps::mesh::spec::{CreateMeshSpec, MemberRef};
use crate::steps::remote_secret::{all_pairs, plan_registrations, plan_secrets};

/// The flags a saved plan records (`inputs`): what to reach and what to do, never a
/// token; the kubeconfig by its path.
fn inputs(args: &CreateMeshArgs) -> SecretInputs {
    SecretInputs::CreateMesh(CreateMeshInputs {
        clusters: args.clusters.clone(),
        contexts: args.contexts.clone(),
        kubeconfig: args.kubeconfig.as_ref().map(|p| p.display().to_string()),
        fleet_id: args.fleet_id.clone(),
        all_memberships: args.all_memberships,
        register: args.register,
        verify: args.verify,
        timeout: args.timeout.clone(),
    })
}

/// `asm apply FILE` of a saved create-mesh plan: its flags (validated as flags are) with
/// `asm apply`'s `--yes`, `-o`, `--timeout`, `-D` and credentials.
pub async fn apply_saved(
    saved: &SavedCommand,
    apply: &ApplyArgs,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    let i = &saved.inputs;
    let args = CreateMeshArgs {
        clusters: str_list(i, "clusters"),
        contexts: str_list(i, "contexts"),
        kubeconfig: opt_str(i, "kubeconfig").map(PathBuf::from),
        fleet_id: opt_str(i, "fleet_id"),
        all_memberships: bool_input(saved, "all_memberships")?,
        register: bool_input(saved, "register")?,
        verify: bool_input(saved, "verify")?,
        dry_run: false,
        output: apply.output,
        yes: apply.yes,
        timeout: apply
            .timeout
            .clone()
            .or_else(|| opt_str(i, "timeout"))
            .unwrap_or_else(|| "5m".into()),
        lock: apply.lock.clone(),
        detailed_exitcode: false,
        output_dir: apply.output_dir.clone(),
        plan_out: None,
        credentials: apply.credentials.clone(),
    };
    run_with(args, Some(saved), env, printer).await
}

/// Runs `asm create-mesh`.
pub async fn run(args: CreateMeshArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    run_with(args, None, env, printer).await
}

/// Runs `create-mesh`; with `saved`, only if the state and the plan still match it.
async fn run_with(
    args: CreateMeshArgs,
    saved: Option<&SavedCommand>,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    // Args → spec (every rejection before any request).
    let spec = CreateMeshSpec::from_args(&args)?;
    let (out, printer) = prepare_output(spec.plan.output_dir.as_deref(), printer)?;
    let printer = &printer;
    let deadline = Instant::now() + spec.timeout;

    // Observe: the members, what each holds, and (--register) their fleet memberships.
    let needs_gcp = spec.all_memberships
        || spec.register
        || spec.members.iter().any(|m| matches!(m, MemberRef::Gke(_)));
    let gcp = if needs_gcp {
        Some(google_clients(env, &args.credentials.options(), printer).await?)
    } else {
        None
    };
    let refs = member_refs(&spec, gcp.as_ref()).await?;
    printer.progress(&format!("Reading the state of {} clusters…", refs.len()));
    let Connected {
        members,
        clients,
        pools,
    } = connect(
        &refs,
        gcp.as_ref(),
        env,
        args.kubeconfig.as_deref(),
        request_trace(printer),
        printer,
    )
    .await?;
    let obs = observe_members(&members, &clients).await;
    let registrations = match (&gcp, &spec.fleet) {
        (Some(gcp), Some(fleet)) if spec.register => {
            Some(observe_registrations(gcp, fleet, &refs, &pools).await?)
        }
        _ => None,
    };

    // Plan (pure).
    let pairs = all_pairs(members.len());
    let mut plan = plan_secrets(&members, &obs, &pairs);
    if let (Some(status), Some(fleet)) = (&registrations, &spec.fleet) {
        plan = plan_registrations(plan, &members, fleet.as_str(), status);
    }
    let labelled: Vec<_> = members
        .iter()
        .zip(&clients)
        .map(|(m, c)| (m.display.clone(), c.as_ref()))
        .collect();
    crate::steps::kube_permissions::check_plan(&mut plan, &labelled).await;

    // A saved plan: what it was made from, and what it would do, must not have changed.
    let fp = fingerprint(&members, &obs, registrations.as_deref());
    refuse_unless_it_matches(saved, &fp, || actions_of(&plan, &members, &obs), printer)?;
    let doc = spec
        .plan
        .plan_out
        .as_ref()
        .map(|_| document(&plan, &members, &obs, inputs(&args), &fp));

    // Present, execute, verify, report: the plan runner.
    let exec = SecretExecutor::new(members, clients, &obs, deadline).with_gcp(gcp);
    run_secret_plan(
        &plan,
        &exec,
        &pairs,
        SecretRun {
            command: "create-mesh",
            flags: &spec.plan,
            json: spec.json,
            verify: spec.verify,
            out: out.as_ref(),
            saved: doc.as_ref(),
            lock_timeout: spec.lock_timeout,
        },
        env,
        printer,
    )
    .await
}
