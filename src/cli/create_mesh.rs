//! `asm create-mesh`: endpoint discovery among clusters (N×(N−1) remote secrets).

use std::path::PathBuf;

use clap::Args;

use super::credentials::CredentialArgs;
use super::install::OutputArg;
use super::{CHANGES_HEADING, PLAN_HEADING, TARGETS_HEADING};

/// `asm create-mesh`.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = TARGETS_HEADING)]
pub struct CreateMeshArgs {
    /// A cluster as PROJECT/LOCATION/NAME, reached through GKE. Repeatable.
    #[arg(long = "cluster", value_name = "PROJECT/LOCATION/NAME")]
    pub clusters: Vec<String>,

    /// A kubeconfig context. Repeatable (combinable with --cluster).
    #[arg(long = "context", value_name = "CONTEXT")]
    pub contexts: Vec<String>,

    /// Kubeconfig for --context (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(short = 'c', long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Fleet host project (with --all-memberships, or for --register).
    #[arg(long = "fleet-id", value_name = "PROJECT", alias = "fleet_id")]
    pub fleet_id: Option<String>,

    /// Every GKE cluster registered to --fleet-id.
    #[arg(long = "all-memberships", requires = "fleet_id")]
    pub all_memberships: bool,

    #[command(flatten)]
    pub credentials: CredentialArgs,

    /// Register unregistered clusters to the fleet first.
    #[arg(long, help_heading = CHANGES_HEADING)]
    pub register: bool,

    /// After applying, check that every secret's kubeconfig authenticates to its cluster
    /// and may list pods, services, endpoints and secrets.
    #[arg(long, help_heading = PLAN_HEADING)]
    pub verify: bool,

    /// Show the plan and stop; send no mutating request.
    #[arg(long = "dry-run", help_heading = PLAN_HEADING)]
    pub dry_run: bool,

    /// Plan format: `text` or `json` (one object on stdout).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputArg::Text, help_heading = PLAN_HEADING)]
    pub output: OutputArg,

    /// Apply without asking.
    #[arg(short = 'y', long, help_heading = PLAN_HEADING)]
    pub yes: bool,

    /// How long the whole run may take, e.g. `5m`.
    #[arg(long, default_value = "5m", value_name = "DURATION", help_heading = PLAN_HEADING)]
    pub timeout: String,

    #[command(flatten)]
    pub lock: super::lock::LockArgs,

    /// With --dry-run or --plan-out: exit 10 when there are changes to make.
    #[arg(long = "detailed-exitcode", help_heading = PLAN_HEADING)]
    pub detailed_exitcode: bool,

    /// Save the plan to FILE (JSON, no token or kubeconfig) and stop; `asm apply FILE`
    /// applies exactly it, reading the tokens again.
    #[arg(long = "plan-out", value_name = "FILE", help_heading = PLAN_HEADING)]
    pub plan_out: Option<PathBuf>,

    /// Write the plan, the run report and a log into DIR (no secrets).
    #[arg(short = 'D', long = "output-dir", value_name = "DIR", help_heading = PLAN_HEADING)]
    pub output_dir: Option<PathBuf>,
}
