//! `asm create-mesh`: endpoint discovery among N clusters — every cluster gets the remote
//! secret of every other one (N×(N−1)), planned from what is there, applied concurrently.
//!
//! args → spec ([`crate::steps::mesh::spec`]) → observe ([`crate::steps::mesh::observe`]) →
//! plan ([`crate::steps::remote_secret`]) → the plan runner ([`super::secret_plan`]).

use futures::future::join_all;
use tokio::time::Instant;

use crate::cli::create_mesh::CreateMeshArgs;
use crate::commands::google::{google_clients, request_trace};
use crate::commands::install::prepare_output;
use crate::commands::secret_plan::{SecretRun, run_secret_plan};
use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::kube::client::read_kubeconfig;
use crate::output::Printer;
use crate::steps::mesh::execute::SecretExecutor;
use crate::steps::mesh::observe::{
    Resolved, fleet_clusters, observe_member, observe_registrations, resolve,
};
use crate::steps::mesh::spec::{CreateMeshSpec, MemberRef};
use crate::steps::remote_secret::{all_pairs, plan_registrations, plan_secrets};

/// Runs `asm create-mesh`.
pub async fn run(args: CreateMeshArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    let spec = CreateMeshSpec::from_args(&args)?;
    let (out, printer) = prepare_output(spec.output_dir.as_deref(), printer)?;
    let printer = &printer;
    let started = Instant::now();
    let deadline = started + spec.timeout;
    let needs_gcp = spec.all_memberships
        || spec.register
        || spec.members.iter().any(|m| matches!(m, MemberRef::Gke(_)));
    let gcp = if needs_gcp {
        Some(google_clients(env, &args.credentials.options(), printer).await?)
    } else {
        None
    };
    let mut refs = spec.members.clone();
    if spec.all_memberships
        && let (Some(gcp), Some(fleet)) = (&gcp, &spec.fleet)
    {
        refs = fleet_clusters(gcp, fleet)
            .await?
            .into_iter()
            .map(MemberRef::Gke)
            .collect();
        if refs.len() < 2 {
            return Err(Error::usage(
                "ASM-E101",
                format!(
                    "fleet {fleet} has {} GKE membership(s); create-mesh needs at least 2",
                    refs.len()
                ),
            )
            .into());
        }
    }
    printer.progress(&format!("Reading the state of {} clusters…", refs.len()));
    // Connect to every member (concurrently); a member that cannot be reached is reported.
    let kubeconfig = if refs.iter().any(|r| matches!(r, MemberRef::Context(_))) {
        Some(read_kubeconfig(env, args.kubeconfig.as_deref()).map_err(Error::from)?)
    } else {
        None
    };
    if let Some(kc) = &kubeconfig {
        for r in &refs {
            if let MemberRef::Context(c) = r
                && !kc.contexts.iter().any(|x| &x.name == c)
            {
                return Err(Error::usage(
                    "ASM-E101",
                    format!("--context {c:?} is not a context of the kubeconfig"),
                )
                .into());
            }
        }
    }
    let trace = request_trace(printer);
    let resolved = join_all(refs.iter().map(|r| {
        let gcp = gcp.as_ref();
        let kubeconfig = kubeconfig.as_ref();
        let path = args.kubeconfig.as_deref();
        let trace = trace.clone();
        async move { resolve(r, gcp, kubeconfig, env, path, trace).await }
    }))
    .await;
    let mut members = Vec::new();
    let mut clients = Vec::new();
    let mut pools = Vec::new();
    let mut errors = Vec::new();
    for (r, res) in refs.iter().zip(resolved) {
        match res {
            Ok(Resolved {
                member,
                ctx,
                workload_pool,
            }) => {
                members.push(member);
                clients.push(Some(ctx));
                pools.push(workload_pool);
            }
            Err(e) => errors.push((r, e)),
        }
    }
    if !errors.is_empty() {
        for (r, e) in &errors {
            let what = match r {
                MemberRef::Gke(c) => c.to_string(),
                MemberRef::Context(c) => c.clone(),
            };
            printer.error(&Error {
                message: format!("{what}: {}", e.message),
                ..e.clone()
            });
        }
        let first = errors.remove(0).1;
        return Err(Error {
            message: format!("cannot reach every cluster of the mesh: {}", first.message),
            ..first
        }
        .into());
    }
    // Distinct cluster IDs (and labels).
    for i in 0..members.len() {
        for j in 0..i {
            if members[i].id == members[j].id {
                return Err(Error::usage(
                    "ASM-E120",
                    format!(
                        "{} and {} have the same cluster name {}",
                        members[j].display, members[i].display, members[i].id
                    ),
                )
                .into());
            }
            if members[i].label == members[j].label {
                members[i].label = members[i].id.to_string();
            }
        }
    }
    let obs = join_all(members.iter().zip(&clients).map(|(m, c)| async move {
        match c {
            Some(ctx) => Some(observe_member(&ctx.client, m).await),
            None => None,
        }
    }))
    .await;
    let pairs = all_pairs(members.len());
    let mut plan = plan_secrets(&members, &obs, &pairs);
    if spec.register
        && let (Some(gcp), Some(fleet)) = (&gcp, &spec.fleet)
    {
        let status = observe_registrations(gcp, fleet, &refs, &pools).await?;
        plan = plan_registrations(plan, &members, fleet.as_str(), &status);
    }
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
