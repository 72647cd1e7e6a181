//! `asm migrate`: namespaces and gateways from an in-cluster control plane to the managed one.

use std::path::PathBuf;

use clap::Args;

use super::PLAN_HEADING;
use super::install::{OutputArg, TargetArgs, parse_output};

/// Help heading: what moves, and how.
const SCOPE_HEADING: &str = "What moves";

/// `asm migrate`.
#[derive(Debug, Args, Clone)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// A namespace to move to the managed control plane, in the order given (one not in the
    /// mesh yet joins it). Repeatable.
    #[arg(long = "namespace", value_name = "NS", help_heading = SCOPE_HEADING)]
    pub namespaces: Vec<String>,

    /// Every namespace whose labels or pods point at a non-managed revision, alphabetically
    /// (never kube-system, kube-public, kube-node-lease, istio-system, gke-*, nor a namespace
    /// not in the mesh).
    #[arg(long = "all-namespaces", conflicts_with = "namespaces", help_heading = SCOPE_HEADING)]
    pub all_namespaces: bool,

    /// The managed revision: `auto` (the cluster's release channel's), asm-managed,
    /// asm-managed-rapid or asm-managed-stable.
    #[arg(long, default_value = "auto", value_name = "REVISION", help_heading = SCOPE_HEADING)]
    pub to: String,

    /// Also annotate the namespaces for the Google-managed data plane
    /// (`mesh.cloud.google.com/proxy: '{"managed":"true"}'`).
    #[arg(long = "managed-dataplane", help_heading = SCOPE_HEADING)]
    pub managed_dataplane: bool,

    /// Relabel only; restart nothing (pods move at their next restart).
    #[arg(long = "no-restart", help_heading = SCOPE_HEADING)]
    pub no_restart: bool,

    /// Move every gateway Deployment whose pods ask for an old revision (default: all of
    /// them with --all-namespaces, else those in the namespaces named).
    #[arg(long, overrides_with = "no_gateways", help_heading = SCOPE_HEADING)]
    pub gateways: bool,

    /// Leave gateway Deployments on the old revision.
    #[arg(long = "no-gateways", help_heading = SCOPE_HEADING)]
    pub no_gateways: bool,

    /// How many namespaces move at once (each waits for its rollouts before the next).
    #[arg(long, default_value_t = 1, value_name = "N", help_heading = SCOPE_HEADING)]
    pub parallel: usize,

    /// Also restart StatefulSets and DaemonSets (else listed for a restart by hand).
    #[arg(long = "restart-all-kinds", help_heading = SCOPE_HEADING)]
    pub restart_all_kinds: bool,

    /// Delete the old in-cluster control plane once no pod uses it.
    #[arg(long, help_heading = SCOPE_HEADING)]
    pub finish: bool,

    /// Show the plan and stop; send no mutating request.
    #[arg(long = "dry-run", alias = "dry_run", help_heading = PLAN_HEADING)]
    pub dry_run: bool,

    /// With --dry-run or --plan-out: exit 10 when the plan has changes to make.
    #[arg(long = "detailed-exitcode", help_heading = PLAN_HEADING)]
    pub detailed_exitcode: bool,

    /// Save the plan to FILE (for `asm apply FILE`) and stop; send no mutating request.
    #[arg(long = "plan-out", value_name = "FILE", help_heading = PLAN_HEADING)]
    pub plan_out: Option<PathBuf>,

    /// Write the plan (text and JSON), the run report and a log into DIR.
    #[arg(short = 'D', long = "output-dir", value_name = "DIR", help_heading = PLAN_HEADING)]
    pub output_dir: Option<PathBuf>,

    /// Plan format: `text` or `json` (one object on stdout).
    #[arg(short = 'o', long = "output", value_parser = parse_output, default_value = "text", value_name = "FORMAT", help_heading = PLAN_HEADING)]
    pub output: OutputArg,

    /// Apply without asking.
    #[arg(short = 'y', long, help_heading = PLAN_HEADING)]
    pub yes: bool,

    /// How long the whole run may take (waits included), e.g. `10m`.
    #[arg(long, default_value = "10m", value_name = "DURATION", help_heading = PLAN_HEADING)]
    pub timeout: String,
}
