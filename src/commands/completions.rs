//! `asm completions SHELL`: the completion script clap_complete generates from the clap tree.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::cli::generate::CompletionsArgs;
use crate::error::{Result, exit};
use crate::output::Printer;

/// Prints the completion script for `args.shell` on stdout.
pub fn run(args: &CompletionsArgs, printer: &Printer) -> Result<i32> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "asm", &mut script);
    printer.result(&String::from_utf8_lossy(&script));
    Ok(exit::SUCCESS)
}
