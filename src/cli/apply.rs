//! `asm apply FILE`: apply a plan saved by `asm install --plan-out FILE`, exactly.

use std::path::PathBuf;

use clap::Args;

use super::PLAN_HEADING;
use super::credentials::CredentialArgs;
use super::install::{OutputArg, parse_output};

/// `asm apply`.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = PLAN_HEADING)]
pub struct ApplyArgs {
    /// The saved plan (`asm install|create-mesh|create-remote-secret|migrate … --plan-out FILE`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    pub credentials: CredentialArgs,

    /// Apply without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Report format: `text` or `json` (one object on stdout).
    #[arg(short = 'o', long = "output", value_parser = parse_output, default_value = "text", value_name = "FORMAT")]
    pub output: OutputArg,

    /// How long the run may take (default: the saved plan's --timeout).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Write the plan, every manifest applied and a log into DIR.
    #[arg(
        short = 'D',
        long = "output-dir",
        alias = "output_dir",
        value_name = "DIR"
    )]
    pub output_dir: Option<PathBuf>,
}
