//! `asm migrate`: namespaces and gateways from an in-cluster control plane to the managed one.

use std::path::PathBuf;

use clap::Args;

use super::install::{OutputArg, TargetArgs, parse_output};

/// `asm migrate`.
#[derive(Debug, Args, Clone)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// A namespace to move to the managed control plane, in the order given (one not in the
    /// mesh yet joins it). Repeatable.
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,

    /// Every namespace whose labels or pods point at a non-managed revision, alphabetically
    /// (never kube-system, kube-public, kube-node-lease, istio-system, gke-*, nor a namespace
    /// not in the mesh).
    #[arg(long = "all-namespaces", conflicts_with = "namespaces")]
    pub all_namespaces: bool,

    /// The managed revision: `auto` (the cluster's release channel's), asm-managed,
    /// asm-managed-rapid or asm-managed-stable.
    #[arg(long, default_value = "auto", value_name = "REVISION")]
    pub to: String,

    /// Also annotate the namespaces for the Google-managed data plane
    /// (`mesh.cloud.google.com/proxy: '{"managed":"true"}'`).
    #[arg(long = "managed-dataplane")]
    pub managed_dataplane: bool,

    /// Relabel only; restart nothing (pods move at their next restart).
    #[arg(long = "no-restart")]
    pub no_restart: bool,

    /// Move gateway Deployments injected by the old revision (the default when there are).
    #[arg(long, overrides_with = "no_gateways")]
    pub gateways: bool,

    /// Leave gateway Deployments on the old revision.
    #[arg(long = "no-gateways")]
    pub no_gateways: bool,

    /// How many namespaces move at once (each waits for its rollouts before the next).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub parallel: usize,

    /// Also restart StatefulSets and DaemonSets (else listed for a restart by hand).
    #[arg(long = "restart-all-kinds")]
    pub restart_all_kinds: bool,

    /// Delete the old in-cluster control plane once no pod uses it.
    #[arg(long)]
    pub finish: bool,

    /// Show the plan and stop; send no mutating request.
    #[arg(long = "dry-run", alias = "dry_run")]
    pub dry_run: bool,

    /// With --dry-run: exit 10 when the plan has changes to make.
    #[arg(long = "detailed-exitcode")]
    pub detailed_exitcode: bool,

    /// Write the plan (text and JSON), the run report and a log into DIR.
    #[arg(short = 'D', long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Plan format: `text` or `json` (one object on stdout).
    #[arg(short = 'o', long = "output", value_parser = parse_output, default_value = "text", value_name = "FORMAT")]
    pub output: OutputArg,

    /// Apply without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// How long the whole run may take (waits included), e.g. `10m`.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub timeout: String,
}
