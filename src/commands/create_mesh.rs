//! `asm create-mesh`: endpoint discovery among N clusters — every cluster gets the remote
//! secret of every other one (N×(N−1)), planned from what is there, applied concurrently.
//!
//! args → spec ([`crate::steps::mesh::spec`]) → observe ([`crate::steps::mesh::observe`]) →
//! plan ([`crate::steps::remote_secret`]) → the plan runner ([`super::secret_plan`]).

use tokio::time::Instant;

use crate::cli::create_mesh::CreateMeshArgs;
use crate::commands::google::{google_clients, request_trace};
use crate::commands::install::prepare_output;
use crate::commands::secret_plan::{SecretRun, run_secret_plan};
use crate::environment::Environment;
use crate::error::Result;
use crate::output::Printer;
use crate::steps::mesh::execute::SecretExecutor;
use crate::steps::mesh::observe::{
    Connected, connect, member_refs, observe_members, observe_registrations,
};
use crate::steps::mesh::spec::{CreateMeshSpec, MemberRef};
use crate::steps::remote_secret::{all_pairs, plan_registrations, plan_secrets};

/// Runs `asm create-mesh`.
pub async fn run(args: CreateMeshArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    // Args → spec (every rejection before any request).
    let spec = CreateMeshSpec::from_args(&args)?;
    let (out, printer) = prepare_output(spec.output_dir.as_deref(), printer)?;
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

    // Present, execute, verify, report: the plan runner.
    let exec = SecretExecutor::new(members, clients, &obs, deadline).with_gcp(gcp);
    run_secret_plan(
        &plan,
        &exec,
        &pairs,
        SecretRun {
            command: "create-mesh",
            dry_run: spec.dry_run,
            json: spec.json,
            yes: spec.yes,
            detailed_exitcode: spec.detailed_exitcode,
            verify: spec.verify,
            out: out.as_ref(),
        },
        env,
        printer,
    )
    .await
}
