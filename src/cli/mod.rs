//! clap definitions only: what the user can type. Validation into typed specs happens in
//! `spec`; behaviour lives in `commands`.

pub mod apply;
pub mod compat;
pub mod create_mesh;
pub mod credentials;
pub mod dataplane;
pub mod gateway;
pub mod generate;
pub mod install;
pub mod migrate;
pub mod remote_secret;
pub mod rollback;
pub mod sandbox;
pub mod status;

use clap::{ArgAction, Parser, Subcommand};

/// Help heading of the flags every command takes (`-v`, `-q`, `-h`, `-V`), listed after a
/// command's own, as cargo and uv do.
pub const GLOBAL_HEADING: &str = "Global options";
/// Help heading: which clusters, and how to reach them.
pub const TARGETS_HEADING: &str = "Targets";
/// Help heading: which Google credentials.
pub const CREDENTIALS_HEADING: &str = "Credentials";
/// Help heading: what asm may change besides the control plane.
pub const CHANGES_HEADING: &str = "What asm may change";
/// Help heading: which control plane.
pub const CONTROL_PLANE_HEADING: &str = "Control plane";
/// Help heading: dry runs, saved plans, output format, confirmation, deadline.
pub const PLAN_HEADING: &str = "Plan and output";

/// asm installs managed Anthos Service Mesh (Cloud Service Mesh) on GKE through the Google
/// Cloud and Kubernetes APIs. Every command that changes something shows its plan first;
/// `--dry-run` stops there.
#[derive(Debug, Parser)]
#[command(
    name = "asm",
    version = env!("ASM_VERSION"),
    propagate_version = true,
    max_term_width = 100,
    disable_help_flag = true,
    disable_version_flag = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More detail on stderr: request traces (method, URL, status, duration), never secrets.
    #[arg(short, long, global = true, action = ArgAction::Count, help_heading = GLOBAL_HEADING)]
    pub verbose: u8,

    /// Only errors and results; no progress lines.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL_HEADING)]
    pub quiet: bool,

    /// Print help (`--help` for more detail than `-h`).
    #[arg(short, long, global = true, action = ArgAction::Help, help_heading = GLOBAL_HEADING)]
    pub help: Option<bool>,

    /// Print the version and the commit asm was built from.
    #[arg(short = 'V', long, global = true, action = ArgAction::Version, help_heading = GLOBAL_HEADING)]
    pub version: Option<bool>,
}

/// The command tree.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install the managed control plane (Cloud Service Mesh) on GKE clusters: enable APIs,
    /// workload identity, the mesh_id label, fleet registration and the servicemesh feature,
    /// then the control plane; wait until it is ready. Shows the plan first.
    Install(Box<install::InstallArgs>),
    /// Run every precheck of `install --managed` at once and report them; change nothing.
    Validate(Box<install::ValidateArgs>),
    /// Apply a plan saved by `install`, `create-mesh`, `create-remote-secret --apply-to` or
    /// `migrate` with `--plan-out FILE`, exactly; refuse (exit 2) if the state it was made from has
    /// changed since.
    Apply(Box<apply::ApplyArgs>),
    /// Print an istioctl-compatible remote secret giving other clusters' control planes
    /// read access to this cluster, or apply it to other clusters (`--apply-to`).
    CreateRemoteSecret(Box<remote_secret::CreateRemoteSecretArgs>),
    /// Endpoint discovery among clusters: give every cluster the remote secret of every
    /// other one (N×(N−1)), concurrently; a re-run changes nothing.
    CreateMesh(Box<create_mesh::CreateMeshArgs>),
    /// Where each cluster stands: the managed and in-cluster control planes, injection
    /// webhooks, the data plane, namespaces and pods by revision, remote secrets and what
    /// remains to migrate. Read-only; `--require ready|migrated` for CI.
    Status(Box<status::StatusArgs>),
    /// Let Google manage the data plane (proxy upgrades) of namespaces or pods: annotate them
    /// `mesh.cloud.google.com/proxy: '{"managed":"true"}'` (`--disable`: `"false"`) and wait
    /// until the DataPlaneControl of the revision is Ready. Shows the plan first.
    EnableDataplane(Box<dataplane::EnableDataplaneArgs>),
    /// Deploy an ingress gateway injected by the managed control plane: ServiceAccount,
    /// Deployment, Service, Role/RoleBinding, PodDisruptionBudget and autoscaler, server-side
    /// applied; wait until it is Available, injected and (LoadBalancer) has an address.
    InstallGateway(Box<gateway::InstallGatewayArgs>),
    /// Move namespaces and gateways from an in-cluster control plane (ASM 1.9+, Mesh CA) to
    /// the managed one: record what changes, then per namespace relabel, restart its
    /// Deployments and wait until their pods run the managed revision; stop at the first
    /// rollout that fails. Shows the plan first.
    Migrate(Box<migrate::MigrateArgs>),
    /// Undo `asm migrate` from its record: restore each namespace's labels and annotations,
    /// restart its Deployments, roll gateways back to their recorded revision, and wait
    /// until the pods run the old revision. Shows the plan first.
    Rollback(Box<rollback::RollbackArgs>),
    /// Run a simulated Google Cloud project with GKE clusters on loopback (no cloud account
    /// needed): `serve` prints shell exports, `exec -- CMD` runs one command inside it.
    Sandbox(sandbox::SandboxCli),
    /// Print a shell completion script: `source <(asm completions bash)`, or save it where
    /// your shell loads completions from.
    Completions(generate::CompletionsArgs),
    /// Write man pages, one per command (`asm.1`, `asm-install.1`, …), into DIR; without
    /// --dir, print the page of `asm` itself.
    Man(generate::ManArgs),
}
