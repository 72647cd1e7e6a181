//! `asm rollback`: undo `asm migrate` from its record.

use std::path::PathBuf;

use clap::Args;

use super::PLAN_HEADING;
use super::install::{OutputArg, TargetArgs, parse_output};

/// Help heading: what goes back.
const SCOPE_HEADING: &str = "What goes back";

/// `asm rollback`.
#[derive(Debug, Args, Clone)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// A namespace to roll back (default: every namespace and gateway in the migration
    /// record). Repeatable.
    #[arg(long = "namespace", value_name = "NS", help_heading = SCOPE_HEADING)]
    pub namespaces: Vec<String>,

    /// Without a migration record: relabel the namespaces (`--namespace`, else those on a
    /// managed revision) `istio.io/rev=REV` and restart them.
    #[arg(long = "to-revision", value_name = "REV", help_heading = SCOPE_HEADING)]
    pub to_revision: Option<String>,

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

    #[command(flatten)]
    pub lock: super::lock::LockArgs,
}
