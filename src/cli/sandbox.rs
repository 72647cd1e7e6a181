//! `asm sandbox serve|exec`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Whether this asm was built with the simulator (cargo feature `sandbox`, on by default).
pub const SANDBOX_BUILT_IN: bool = cfg!(feature = "sandbox");

/// `asm sandbox`. Without the simulator built in the subcommand is optional, so that
/// `asm sandbox` alone also explains why there is no sandbox.
#[derive(Debug, Args)]
#[command(
    subcommand_required = SANDBOX_BUILT_IN,
    arg_required_else_help = SANDBOX_BUILT_IN
)]
pub struct SandboxCli {
    #[command(subcommand)]
    pub command: Option<SandboxCommand>,
}

/// The sandbox subcommands.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Start the sandbox and print `export NAME='VALUE'` lines for a shell, then serve until
    /// SIGINT/SIGTERM. Typical use: `eval "$(asm sandbox serve &)"` or a second terminal.
    Serve(SandboxArgs),
    /// Start the sandbox, run CMD with its environment, stop the sandbox and exit with CMD's
    /// exit code. Example: `asm sandbox exec --scenario fresh -- gcloud container clusters list`.
    Exec(SandboxExecArgs),
}

/// How to set up the simulated world.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Simulated world")]
pub struct SandboxArgs {
    /// Starting state: fresh, installed, missing-permission, cross-project, or fleet-N (N
    /// clusters).
    #[arg(long, default_value = "fresh", value_name = "NAME")]
    pub scenario: String,

    /// Tune the scenario, e.g. `cluster.workload_identity=false`, `cluster.channel=RAPID`,
    /// `service.gkehub=enabled`, `deny=gkehub.memberships.create`, `timing.gke_op_ms=0`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,

    /// Inject failures: `[METHOD ]ROUTE_GLOB:503|429|500|drop|lost|slow|expire[,rate=R]`
    /// (drop: the connection closes before the request is processed; lost: after; slow:
    /// answered after a latency spike, `,ms=N`, default 2000; expire: the request's token is
    /// revoked and answered 401 as an expired one), e.g. `'/container/*:503,rate=0.1'`.
    /// Repeatable.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,

    /// Seed of the fault injector, to replay a failing run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,

    /// Append one JSON line per request received (method, path, status, ts, server).
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<PathBuf>,

    /// Port of the Google API server (default: any free port).
    #[arg(long)]
    pub port: Option<u16>,
}

/// `asm sandbox exec`.
#[derive(Debug, Args, Clone)]
pub struct SandboxExecArgs {
    #[command(flatten)]
    pub sandbox: SandboxArgs,

    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}
