//! `asm install --managed`: observe → plan → render → (confirm) → apply → wait → verify.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

use crate::steps::kube_permissions;

use tokio::time::Instant;

use crate::cli::install::{InstallArgs, ValidateArgs};
use crate::commands::google::google_clients;
use crate::environment::Environment;
use crate::error::{Error, Result, exit};
use crate::gcp::GcpClients;
use crate::kube::lease::{ClusterLocks, Holder, LockTarget};
use crate::output::Printer;
use crate::plan::Action;
use crate::plan::document::pretty;
use crate::plan::output_dir::OutputDir;
use crate::plan::run::{Contract, Presented, Runner};
use crate::plan::saved;
use crate::spec::{InstallSpec, MeshSpec, OutputFormat, Scope};
use crate::steps::apply::Executor;
use crate::steps::observe::{Handles, fingerprint, observe};
use crate::steps::{MeshPlan, Observed, Step, plan_mesh};

/// Actions run at most this many at a time (single-cluster commands).
pub const CONCURRENCY: usize = 16;

/// The action limit of a mesh plan over `clusters` clusters: 4 per cluster (a cluster has at
/// most about 3 independent actions in flight: its GKE chain, its membership, its in-cluster
/// objects), at least [`CONCURRENCY`], at most 256. Most of an action's time is spent polling
/// a long-running operation or waiting for a condition, so a fixed small limit made 50
/// clusters queue behind each other's waits (measured: 19.4 s apply wall for a 5.1 s
/// critical path with 16; see README "Scale").
pub fn concurrency(clusters: usize) -> usize {
    clusters.saturating_mul(4).clamp(CONCURRENCY, 256)
}

pub use crate::plan::run::stdout_color;

/// What fixes a failed precheck of install (the hint of its "prechecks failed" error).
pub const BLOCKED_HINT: &str =
    "fix them, or pass the --enable-* flag a check names; `asm validate` lists them all";

/// Observes and plans, reporting how long observation took.
pub async fn observe_and_plan(
    gcp: &GcpClients,
    env: &Environment,
    spec: &MeshSpec,
    printer: &Printer,
) -> (Observed, Handles, MeshPlan) {
    let started = Instant::now();
    printer.progress(&format!(
        "Reading the state of {} cluster{} and fleet project {}…",
        spec.clusters.len(),
        if spec.clusters.len() == 1 { "" } else { "s" },
        spec.fleet_project
    ));
    let (obs, handles) = observe(gcp, env, spec).await;
    let mut plan = plan_mesh(spec, &obs);
    check_kube_permissions(spec, &handles, &mut plan).await;
    printer.detail(&format!(
        "observed in {}ms ({} Google API requests so far)",
        started.elapsed().as_millis(),
        gcp.requests()
    ));
    (obs, handles, plan)
}

/// Adds a failed `ASM-C110` check for every Kubernetes permission the plan's actions need
/// that the caller lacks.
pub async fn check_kube_permissions<P>(
    spec: &MeshSpec,
    handles: &Handles,
    plan: &mut crate::plan::Plan<P>,
) {
    let clusters: Vec<(String, Option<&crate::kube::KubeContext>)> = spec
        .clusters
        .iter()
        .zip(&handles.kube)
        .map(|(c, ctx)| (c.to_string(), ctx.as_ref()))
        .collect();
    kube_permissions::check_plan(plan, &clusters).await;
}

/// [`observe_and_plan`] bounded by the run's `deadline` (`--timeout` counts the reads too):
/// running out is exit 4.
pub async fn observe_and_plan_by(
    gcp: &GcpClients,
    env: &Environment,
    spec: &MeshSpec,
    printer: &Printer,
    deadline: Instant,
) -> Result<(Observed, Handles, MeshPlan), Error> {
    tokio::time::timeout_at(
        deadline,
        observe_and_plan(gcp, env, spec, printer),
    )
    .await
    .map_err(|_| {
        Error::new(
            "ASM-E460",
            exit::TIMEOUT,
            format!(
                "reading the state of the clusters and the fleet did not finish within --timeout {}s",
                spec.timeout.as_secs()
            ),
        )
        .with_hint("raise --timeout, or check the network path to the Google and Kubernetes APIs (-v traces every request)")
    })
}

/// The error of a plan a failed precheck blocks (exit 3).
pub fn blocked_error(plan: &MeshPlan) -> Error {
    crate::plan::run::blocked_error(plan, Some(BLOCKED_HINT))
}

/// The revision each cluster ended up with (from a re-observation).
/// What install (and `asm apply` of its saved plans) adds to `-o json`'s `result`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InstallResult {
    /// Requests sent to Google APIs by the whole command.
    pub google_requests: u64,
    /// The control plane revision per cluster (`PROJECT/LOCATION/NAME`), once ready; empty
    /// after a failure or with `--only-enable`.
    pub revisions: BTreeMap<String, String>,
    /// Changes a new plan still finds after applying (0 when converged).
    pub remaining_changes: usize,
}

fn revisions(spec: &MeshSpec, obs: &Observed) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (c, o) in spec.clusters.iter().zip(&obs.clusters) {
        let gke_channel = o
            .gke
            .as_ref()
            .ok()
            .and_then(|g| g.as_ref())
            .and_then(|g| g.channel.clone());
        let expected = crate::spec::Channel::from_gke(gke_channel.as_deref()).revision();
        let rev = o
            .kube
            .as_ref()
            .and_then(|k| k.as_ref().ok())
            .and_then(|k| {
                k.cprs
                    .iter()
                    .find(|r| r.name == expected && r.provisioning_finished)
                    .or_else(|| k.cprs.iter().find(|r| r.provisioning_finished))
                    .map(|r| r.name.clone())
            })
            .unwrap_or_else(|| expected.to_string());
        out.insert(c.to_string(), rev);
    }
    out
}

fn next_steps(revs: &BTreeMap<String, String>) -> String {
    let mut distinct: Vec<&String> = revs.values().collect();
    distinct.sort();
    distinct.dedup();
    let mut out = String::from("Label the namespaces whose workloads should join the mesh:\n");
    for r in distinct {
        out.push_str(&format!(
            "  kubectl label namespace NAMESPACE istio-injection- istio.io/rev={r} --overwrite\n"
        ));
    }
    out.push_str(
        "then restart their workloads (kubectl rollout restart deployment -n NAMESPACE); \
         asm does both, waiting for each rollout and recording what it changed for \
         `asm rollback`:\n  asm migrate --namespace NAMESPACE\n\
         Next, with asm: `asm status` shows which pods run on which revision; \
         `asm enable-dataplane --namespace NAMESPACE` lets Google manage their proxies; \
         `asm install-gateway --namespace GATEWAY_NS` deploys an ingress gateway.\n",
    );
    out
}

pub use crate::plan::run::prepare_output;

/// The manifest an action applies, with its cluster (for `-D/manifests`).
fn manifest_of(mesh: &MeshSpec, a: &Action<Step>) -> Option<(String, Value)> {
    let Step::Apply { cluster, object } = &a.payload else {
        return None;
    };
    let c = mesh
        .clusters
        .get(*cluster)
        .map(ToString::to_string)
        .unwrap_or_default();
    Some((c, object.clone()))
}

/// Prints the install_asm/asmcli compatibility notes of `args`.
fn compat_notes(args: &InstallArgs, mesh: &MeshSpec, printer: &Printer) {
    if let Some(mode) = &args.mode {
        printer.warning(&format!(
            "--mode {mode} is deprecated (install_asm): asm install always installs and, like \
             install_asm, applies without asking (as with --yes); drop --mode and pass --yes"
        ));
    }
    if mesh.management == crate::spec::Management::Automatic && !mesh.options.is_empty() {
        let names: Vec<&str> = args
            .control_plane
            .options
            .iter()
            .map(String::as_str)
            .collect();
        printer.warning(&format!(
            "--option {}: fleet automatic management provisions managed CNI itself; the option \
             applies to --management revision only and is ignored",
            names.join(", ")
        ));
    }
    if args.enable.enable_meshconfig_init {
        printer.warning("--enable_meshconfig_init is implied by --managed and ignored");
    }
}

/// The `asm validate` arguments of `install --only_validate`.
fn as_validate(args: &InstallArgs) -> ValidateArgs {
    ValidateArgs {
        managed: args.managed,
        target: args.target.clone(),
        enable: args.enable.clone(),
        control_plane: args.control_plane.clone(),
        output: args.output,
        timeout: args.timeout.clone(),
    }
}

/// Runs `asm install`.
pub async fn run(args: InstallArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    if args.only_validate {
        if args.only_enable || args.dry_run || args.plan_out.is_some() {
            return Err(Error::usage(
                "ASM-E101",
                "--only_validate runs `asm validate`: it excludes --only-enable, --dry-run and --plan-out",
            )
            .into());
        }
        printer.warning("--only_validate is deprecated (asmcli): use `asm validate`");
        return super::validate::run(as_validate(&args), env, printer).await;
    }
    let spec = InstallSpec::from_args(&args)?;
    let (out, printer) = prepare_output(spec.plan.output_dir.as_deref(), printer)?;
    let printer = &printer;
    compat_notes(&args, &spec.mesh, printer);
    let started = Instant::now();
    let mesh = &spec.mesh;
    let gcp = google_clients(env, &args.target.credentials.options(), printer).await?;
    let (obs, handles, plan) =
        observe_and_plan_by(&gcp, env, mesh, printer, started + mesh.timeout).await?;
    let runner = Runner {
        command: "install",
        env,
        printer,
        out: out.as_ref(),
        contract: Contract::new(
            &spec.plan,
            mesh.output == OutputFormat::Json,
            concurrency(mesh.clusters.len()),
        ),
        blocked_hint: Some(BLOCKED_HINT),
    };
    let manifests = |a: &Action<Step>| manifest_of(mesh, a);
    let save = || -> Result<(), Error> {
        let Some(file) = &spec.plan.plan_out else {
            return Ok(());
        };
        let fp = fingerprint(mesh, &obs);
        saved::write(file, &saved::document(&plan, mesh, &fp))?;
        printer.progress(&format!(
            "Saved the plan to {}; apply exactly it with `asm apply {}`.",
            file.display(),
            file.display()
        ));
        Ok(())
    };
    let (presented, prompt_wait) = runner.present_timed(&plan, Some(&manifests), save).await?;
    if let Presented::Stopped(code) = presented {
        return Ok(code);
    }
    apply_confirmed(ApplyRun {
        env,
        printer,
        gcp: &gcp,
        mesh,
        plan: &plan,
        handles,
        yes: spec.plan.yes,
        started,
        prompt_wait,
        out: out.as_ref(),
        lock_timeout: spec.lock_timeout,
    })
    .await
}

/// Everything [`apply_plan`] needs.
pub struct ApplyRun<'a> {
    pub env: &'a Environment,
    pub printer: &'a Printer,
    pub gcp: &'a GcpClients,
    pub mesh: &'a MeshSpec,
    pub plan: &'a MeshPlan,
    pub handles: Handles,
    pub yes: bool,
    /// When the command started (the `--timeout` deadline counts from here).
    pub started: Instant,
    /// Time spent at the confirmation prompt, which the deadline does not count.
    pub prompt_wait: Duration,
    pub out: Option<&'a OutputDir>,
    /// `--lock-timeout`: how long to wait for another run's cluster locks.
    pub lock_timeout: Duration,
}

/// Shows `plan` in the imperative mood, asks (or refuses without `--yes` off a terminal),
/// executes it, re-observes and reports. Used by `apply` (install presents its plan itself,
/// with its dry-run flags, then calls [`apply_confirmed`]).
pub async fn apply_plan(mut run: ApplyRun<'_>) -> Result<i32> {
    let runner = runner_for(&run);
    let manifests = |a: &Action<Step>| manifest_of(run.mesh, a);
    let (presented, prompt_wait) = runner
        .present_timed(run.plan, Some(&manifests), || Ok(()))
        .await?;
    if let Presented::Stopped(code) = presented {
        return Ok(code);
    }
    run.prompt_wait += prompt_wait;
    apply_confirmed(run).await
}

/// The runner of a confirmed-or-to-confirm mesh plan (no dry run, no saved plan).
fn runner_for<'a>(run: &ApplyRun<'a>) -> Runner<'a> {
    Runner {
        command: "install",
        env: run.env,
        printer: run.printer,
        out: run.out,
        contract: Contract {
            dry_run: false,
            plan_out: false,
            json: run.mesh.output == OutputFormat::Json,
            yes: run.yes,
            detailed_exitcode: false,
            concurrency: concurrency(run.mesh.clusters.len()),
        },
        blocked_hint: Some(BLOCKED_HINT),
    }
}

/// Takes the lock of every cluster the plan has an action on (after the prechecks and the
/// confirmation gate: a dry run, a refused run or a plan with nothing to do takes none).
pub async fn lock_clusters<P>(
    mesh: &MeshSpec,
    plan: &crate::plan::Plan<P>,
    handles: &Handles,
    wait: Duration,
    printer: &Printer,
) -> Result<ClusterLocks, Error> {
    let targets: Vec<LockTarget> = mesh
        .clusters
        .iter()
        .zip(&handles.kube)
        .filter_map(|(c, ctx)| {
            let cluster = c.to_string();
            let touched = plan
                .actions
                .iter()
                .any(|a| a.cluster.as_deref() == Some(cluster.as_str()));
            let ctx = ctx.as_ref().filter(|_| touched)?;
            Some(LockTarget {
                cluster,
                client: ctx.client.clone(),
            })
        })
        .collect();
    ClusterLocks::acquire(&targets, Holder::this_process(), wait, printer).await
}

/// Executes a presented and confirmed mesh plan, re-observes and reports.
async fn apply_confirmed(run: ApplyRun<'_>) -> Result<i32> {
    let runner = runner_for(&run);
    let ApplyRun {
        env,
        printer,
        gcp,
        mesh,
        plan,
        handles,
        yes: _,
        started,
        prompt_wait,
        out: _,
        lock_timeout,
    } = run;
    let locks = lock_clusters(mesh, plan, &handles, lock_timeout, printer).await?;
    let deadline = started + prompt_wait + locks.waited + mesh.timeout;
    let executor = Executor {
        gcp: gcp.clone(),
        spec: mesh.clone(),
        handles,
        deadline,
        printer: printer.clone(),
    };
    let manifests = |a: &Action<Step>| manifest_of(mesh, a);
    let exec = runner
        .execute(plan, Some(&manifests), |a| executor.run(a))
        .await;
    locks.release().await;

    // Verify: what is there now.
    let (obs_after, _, replan) = if exec.report.succeeded() {
        observe_and_plan_by(gcp, env, mesh, printer, deadline).await?
    } else {
        (unobserved(mesh), Handles::default(), MeshPlan::default())
    };
    let revs = revisions(mesh, &obs_after);
    let remaining = replan.summary().changes();
    let code = exec.exit_code();
    let control_plane = mesh.scope == Scope::Full;

    match mesh.output {
        OutputFormat::Json => {
            let extra = InstallResult {
                google_requests: gcp.requests(),
                revisions: if code == exit::SUCCESS && control_plane {
                    revs.clone()
                } else {
                    BTreeMap::new()
                },
                remaining_changes: remaining,
            };
            printer.result(&pretty(&exec.document(plan, code == exit::SUCCESS, extra)));
        }
        OutputFormat::Text => {
            let mut out = exec.summary_line(plan);
            if code == exit::SUCCESS && control_plane {
                out.push_str("Managed Cloud Service Mesh control plane is ready on ");
                let list: Vec<String> = revs.iter().map(|(c, r)| format!("{c} ({r})")).collect();
                out.push_str(&list.join(", "));
                out.push_str(".\n");
                out.push_str(&next_steps(&revs));
            } else if code == exit::SUCCESS {
                out.push_str(
                    "The enable-* prerequisites are in place (--only-enable); run without it to install the control plane.\n",
                );
            }
            printer.result(&out);
        }
    }
    if code != exit::SUCCESS {
        runner.report_failures(&exec);
        return Ok(code);
    }
    if remaining > 0 {
        printer.warning(&format!(
            "{remaining} change{} still planned after applying; re-run asm to converge",
            if remaining == 1 { "" } else { "s" }
        ));
    }
    Ok(exit::SUCCESS)
}

/// An observation with nothing known (no verification after a failed run).
fn unobserved(spec: &MeshSpec) -> Observed {
    Observed {
        fleet: crate::steps::FleetObs {
            project_number: Err(String::new()),
            enabled_services: Err(String::new()),
            memberships: Err(String::new()),
            feature: Err(String::new()),
        },
        clusters: spec
            .clusters
            .iter()
            .map(|_| crate::steps::ClusterObs {
                gke: Ok(None),
                kube: None,
                membership_feature: None,
            })
            .collect(),
        permissions: BTreeMap::new(),
        policies: BTreeMap::new(),
    }
}
