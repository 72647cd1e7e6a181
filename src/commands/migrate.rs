//! `asm migrate`: namespaces and gateways from an in-cluster control plane to the managed
//! one.
//!
//! args → spec ([`crate::steps::migrate::spec`]) → observe (install's observation plus
//! [`crate::steps::migrate::observe`]) → plan ([`crate::steps::migrate::plan_migrate`], pure)
//! → the plan runner ([`crate::plan::run`]) → re-observe and report; after a failure, the
//! exact `asm rollback` command.

use futures::future::join_all;
use tokio::time::Instant;

use crate::cli::apply::ApplyArgs;
use crate::cli::migrate::MigrateArgs;
use crate::commands::google::google_clients;
use crate::commands::install::concurrency;
use crate::commands::install::{check_kube_permissions, lock_clusters};
use crate::environment::Environment;
use crate::error::{Result, exit};
use crate::gcp::GcpClients;
use crate::output::Printer;
use crate::plan::run::{Contract, Presented, Runner, prepare_output};
use crate::plan::saved::{
    SavedCommand, bool_input, opt_str, refuse_unless_it_matches, save_and_tell, str_list,
    target_from,
};
use crate::spec::{KubeAccess, MeshSpec, OutputFormat};
use crate::steps::migrate::execute::MigrateExecutor;
use crate::steps::migrate::observe::observe_cluster;
use crate::steps::migrate::saved as saved_plan;
use crate::steps::migrate::{MigratePlan, MigrateSpec, Observed, plan_migrate};
use crate::steps::observe::{Handles, observe};

/// What fixes a failed precheck of migrate.
const BLOCKED_HINT: &str = "fix them as each check's hint says, then run asm migrate again";

/// Reads install's observation and every cluster's migration state.
pub async fn observe_clusters(
    gcp: &GcpClients,
    env: &Environment,
    mesh: &MeshSpec,
    printer: &Printer,
) -> (Observed, Handles) {
    let started = Instant::now();
    let n = mesh.clusters.len();
    printer.progress(&format!(
        "Reading the state of {n} cluster{}…",
        if n == 1 { "" } else { "s" }
    ));
    let (mesh_obs, handles) = observe(gcp, env, mesh).await;
    let clusters = join_all(handles.kube.iter().map(|ctx| async move {
        match ctx {
            Some(ctx) => Some(observe_cluster(&ctx.client).await),
            None => None,
        }
    }))
    .await;
    printer.detail(&format!("observed in {}ms", started.elapsed().as_millis()));
    (
        Observed {
            mesh: mesh_obs,
            clusters,
        },
        handles,
    )
}

/// The `asm rollback` command for the clusters of `mesh`.
pub fn rollback_command(mesh: &MeshSpec) -> String {
    let mut cmd = "asm rollback".to_string();
    for c in &mesh.clusters {
        cmd.push_str(&format!(" --cluster {c}"));
    }
    if mesh
        .clusters
        .iter()
        .any(|c| c.project != mesh.fleet_project)
    {
        cmd.push_str(&format!(" --fleet-id {}", mesh.fleet_project));
    }
    if let KubeAccess::Kubeconfig { path, context } = &mesh.kube {
        if let Some(p) = path {
            cmd.push_str(&format!(" --kubeconfig {}", p.display()));
        }
        if let Some(c) = context {
            cmd.push_str(&format!(" --context {c}"));
        }
    }
    cmd
}

/// How many actions may run at once: every lane's restarts, on every cluster.
fn migrate_concurrency(spec: &MigrateSpec) -> usize {
    concurrency(spec.mesh.clusters.len()).max(spec.parallel.saturating_mul(8))
}

/// `asm apply FILE` of a saved migrate plan: its flags (validated as flags are) with
/// `asm apply`'s `--yes`, `-o`, `--timeout`, `-D` and credentials.
pub async fn apply_saved(
    saved: &SavedCommand,
    apply: &ApplyArgs,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    let i = &saved.inputs;
    let args = MigrateArgs {
        target: target_from(saved, &apply.credentials),
        namespaces: str_list(i, "namespaces"),
        all_namespaces: bool_input(saved, "all_namespaces")?,
        to: opt_str(i, "to").unwrap_or_else(|| "auto".into()),
        managed_dataplane: bool_input(saved, "managed_dataplane")?,
        no_restart: bool_input(saved, "no_restart")?,
        gateways: bool_input(saved, "gateways")?,
        no_gateways: bool_input(saved, "no_gateways")?,
        parallel: i["parallel"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(1),
        restart_all_kinds: bool_input(saved, "restart_all_kinds")?,
        finish: false,
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

/// What migrate adds to `-o json`'s `result`.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct MigrateResult {
    /// Changes a new plan still finds after applying; `null` after a failure (no new plan).
    pub remaining_changes: Option<usize>,
    /// The exact `asm rollback …` command that undoes this migration.
    pub rollback_command: String,
}

/// Runs `asm migrate`.
pub async fn run(args: MigrateArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    run_with(args, None, env, printer).await
}

/// Runs `migrate`; with `saved`, only if the state and the plan still match it.
async fn run_with(
    args: MigrateArgs,
    saved: Option<&SavedCommand>,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    let spec = MigrateSpec::from_args(&args)?;
    let lock_timeout = crate::spec::parse_lock_timeout(&args.lock.lock_timeout)?;
    let (out, printer) = prepare_output(spec.plan.output_dir.as_deref(), printer)?;
    let printer = &printer;
    let started = Instant::now();
    let json_out = spec.mesh.output == OutputFormat::Json;

    let gcp = google_clients(env, &args.target.credentials.options(), printer).await?;
    let (obs, handles) = observe_clusters(&gcp, env, &spec.mesh, printer).await;
    let plan = plan_migrate(&spec, &obs);
    let mut plan = plan;
    check_kube_permissions(&spec.mesh, &handles, &mut plan).await;

    // A saved plan: what it was made from, and what it would do, must not have changed.
    let fp = saved_plan::fingerprint(&spec.mesh.clusters, &obs);
    refuse_unless_it_matches(saved, &fp, || saved_plan::actions_of(&plan), printer)?;

    let runner = Runner {
        command: "migrate",
        env,
        printer,
        out: out.as_ref(),
        contract: Contract::new(&spec.plan, json_out, migrate_concurrency(&spec)),
        blocked_hint: Some(BLOCKED_HINT),
    };
    let save = || match &spec.plan.plan_out {
        Some(file) => save_and_tell(
            file,
            &saved_plan::document(&plan, saved_plan::migrate_inputs(&args), &fp),
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
        Some(plan_migrate(&spec, &again).summary().changes())
    } else {
        None
    };
    let rollback = rollback_command(&spec.mesh);
    if json_out {
        let extra = MigrateResult {
            remaining_changes: remaining,
            rollback_command: rollback.clone(),
        };
        printer.result(&crate::plan::document::pretty(&exec.document(
            &plan,
            code == exit::SUCCESS,
            extra,
        )));
    } else {
        let mut text = exec.summary_line(&plan);
        text.push_str(&closing(&plan, code == exit::SUCCESS, &rollback));
        printer.result(&text);
    }
    Ok(runner.conclude(&exec, code, remaining))
}

/// The lines after the summary: what moved, and how to undo it.
fn closing(plan: &MigratePlan, ok: bool, rollback: &str) -> String {
    if plan.actions.is_empty() {
        return "Nothing to migrate.\n".to_string();
    }
    if ok {
        format!("Migrated. Check with: asm status; undo with: {rollback}\n")
    } else {
        format!(
            "Stopped: the namespaces after the failure were not touched. Undo what was done with:\n  {rollback} --yes\n"
        )
    }
}
