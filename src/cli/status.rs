//! `asm status`: which clusters, which format, which requirements to enforce.

use clap::{Args, ValueEnum};

use super::install::{OutputArg, TargetArgs, parse_output};

/// `--require`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum RequireArg {
    /// Every cluster's managed control plane is ready, and the managed data plane where a
    /// namespace asks for it.
    Ready,
    /// Every injected pod is on a managed revision and no namespace label points at another
    /// revision.
    Migrated,
}

/// `asm status`.
#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Report format: `text` or `json` (one `asm.status/v1` object on stdout).
    #[arg(short = 'o', long = "output", value_parser = parse_output, default_value = "text", value_name = "FORMAT")]
    pub output: OutputArg,

    /// Exit 3, listing what is missing, unless this holds (`ready`, `migrated`); repeatable.
    #[arg(long = "require", value_enum, value_name = "WHAT")]
    pub require: Vec<RequireArg>,
}
