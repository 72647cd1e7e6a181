//! `asm enable-dataplane`: the Google-managed data plane for namespaces or pods.

use std::path::PathBuf;

use clap::Args;

use super::install::{OutputArg, TargetArgs, parse_output};

/// `asm enable-dataplane`.
#[derive(Debug, Args, Clone)]
pub struct EnableDataplaneArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// A namespace whose proxies the managed data plane manages. Repeatable.
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,

    /// Every namespace with an injection label (never kube-system, kube-public,
    /// kube-node-lease, istio-system or gke-*).
    #[arg(long = "all-namespaces", conflicts_with = "namespaces")]
    pub all_namespaces: bool,

    /// A single pod, as NAMESPACE/NAME. Repeatable.
    #[arg(long = "pod", value_name = "NS/NAME")]
    pub pods: Vec<String>,

    /// Turn the managed data plane off (`{"managed":"false"}`) instead of on.
    #[arg(long)]
    pub disable: bool,

    /// Enable the fleet servicemesh feature if it is off.
    #[arg(
        short = 'e',
        long = "enable-gcp-components",
        alias = "enable_gcp_components"
    )]
    pub enable_gcp_components: bool,

    /// Show the plan and stop; send no mutating request.
    #[arg(long = "dry-run", alias = "dry_run")]
    pub dry_run: bool,

    /// With --dry-run or --plan-out: exit 10 when the plan has changes to make.
    #[arg(long = "detailed-exitcode")]
    pub detailed_exitcode: bool,

    /// Save the plan to FILE (JSON, no token) and stop; `asm apply FILE` applies exactly
    /// it, refusing if what it was planned from has changed.
    #[arg(long = "plan-out", value_name = "FILE")]
    pub plan_out: Option<PathBuf>,

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

    #[command(flatten)]
    pub lock: super::lock::LockArgs,
}
