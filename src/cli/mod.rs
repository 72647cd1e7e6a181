//! clap definitions only: what the user can type. Validation into typed specs happens in
//! `spec`; behaviour lives in `commands`.

pub mod apply;
pub mod compat;
pub mod create_mesh;
pub mod credentials;
pub mod dataplane;
pub mod gateway;
pub mod install;
pub mod remote_secret;
pub mod sandbox;

use clap::{ArgAction, Parser, Subcommand};

/// asm installs managed Anthos Service Mesh (Cloud Service Mesh) on GKE through the Google
/// Cloud and Kubernetes APIs. Every command that changes something shows its plan first;
/// `--dry-run` stops there.
#[derive(Debug, Parser)]
#[command(name = "asm", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More detail on stderr: request traces (method, URL, status, duration), never secrets.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Only errors and results; no progress lines.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
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
    /// Apply a plan saved by `install --plan-out FILE`, exactly; refuse (exit 2) if the
    /// state it was made from has changed since.
    Apply(Box<apply::ApplyArgs>),
    /// Print an istioctl-compatible remote secret giving other clusters' control planes
    /// read access to this cluster, or apply it to other clusters (`--apply-to`).
    CreateRemoteSecret(Box<remote_secret::CreateRemoteSecretArgs>),
    /// Endpoint discovery among clusters: give every cluster the remote secret of every
    /// other one (N×(N−1)), concurrently; a re-run changes nothing.
    CreateMesh(Box<create_mesh::CreateMeshArgs>),
    /// Let Google manage the data plane (proxy upgrades) of namespaces or pods: annotate them
    /// `mesh.cloud.google.com/proxy: '{"managed":"true"}'` (`--disable`: `"false"`) and wait
    /// until the DataPlaneControl of the revision is Ready. Shows the plan first.
    EnableDataplane(Box<dataplane::EnableDataplaneArgs>),
    /// Deploy an ingress gateway injected by the managed control plane: ServiceAccount,
    /// Deployment, Service, Role/RoleBinding, PodDisruptionBudget and autoscaler, server-side
    /// applied; wait until it is Available, injected and (LoadBalancer) has an address.
    InstallGateway(Box<gateway::InstallGatewayArgs>),
    /// Run a simulated Google Cloud project with GKE clusters on loopback (no cloud account
    /// needed): `serve` prints shell exports, `exec -- CMD` runs one command inside it.
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
}
