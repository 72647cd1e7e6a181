//! `asm completions` and `asm man`: documents generated from the clap tree itself, so a new
//! command or flag appears in them without further work.

use std::path::PathBuf;

use clap::Args;
use clap_complete::Shell;

/// `asm completions SHELL`.
#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// `asm man [--dir DIR]`.
#[derive(Debug, Args, Clone)]
pub struct ManArgs {
    /// Write one page per command and subcommand into DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
