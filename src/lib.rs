//! asm: installs and operates managed Anthos Service Mesh (Cloud Service Mesh) on GKE.
//!
//! Flow of every command (ARCHITECTURE.md): argv → clap `cli` → validated spec → observe → plan
//! (pure) → render → execute → verify. All output goes through [`output::Printer`].

pub mod cli;
pub mod commands;
pub mod environment;
pub mod error;
pub mod gcp;
pub mod kube;
pub mod logging;
pub mod output;
pub mod plan;
pub mod retry;
pub mod schemas;
pub mod spec;
pub mod steps;
pub mod transport;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::commands::classify;
use crate::environment::Environment;
use crate::error::{Error, exit};
use crate::output::{Printer, Verbosity};

/// Runs asm with `args` (including the program name) and returns the exit code.
pub async fn run<I, T>(args: I, env: Environment, printer: Printer) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let argv: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
            let text = if printer.color() {
                e.render().ansi().to_string()
            } else {
                e.render().to_string()
            };
            if e.use_stderr() {
                printer.error(&Error::usage(
                    "ASM-E001",
                    text.trim_start_matches("error: ").trim_end(),
                ));
            } else {
                printer.result(&text);
            }
            return code;
        }
    };
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        _ => Verbosity::Verbose,
    };
    let env = Environment {
        color: cli.color,
        ..env
    };
    let printer = printer
        .with_verbosity(verbosity)
        .with_color(env.stderr_color());
    if matches!(
        cli.command,
        Command::Install(_) | Command::Validate(_) | Command::Apply(_)
    ) {
        for w in cli::compat::deprecated_spellings(&argv) {
            printer.warning(&w);
        }
    }
    let outcome = match cli.command {
        Command::Sandbox(cmd) => commands::sandbox::run(cmd, &env, &printer).await,
        Command::Install(args) => commands::install::run(*args, &env, &printer).await,
        Command::Validate(args) => commands::validate::run(*args, &env, &printer).await,
        Command::Apply(args) => commands::apply::run(*args, &env, &printer).await,
        Command::CreateRemoteSecret(args) => {
            commands::create_remote_secret::run(*args, &env, &printer).await
        }
        Command::CreateMesh(args) => commands::create_mesh::run(*args, &env, &printer).await,
        Command::Completions(args) => commands::completions::run(&args, &printer),
        Command::Man(args) => commands::man::run(&args, &printer),
        Command::Status(args) => commands::status::run(*args, &env, &printer).await,
        Command::EnableDataplane(args) => {
            commands::enable_dataplane::run(*args, &env, &printer).await
        }
        Command::InstallGateway(args) => {
            commands::install_gateway::run(*args, &env, &printer).await
        }
        // `--finish` retires the old control plane (src/commands/migrate_finish.rs).
        Command::Migrate(args) if args.finish => {
            commands::migrate_finish::run(&env, &args, &printer).await
        }
        Command::Migrate(args) => commands::migrate::run(*args, &env, &printer).await,
        Command::Rollback(args) => commands::rollback::run(*args, &env, &printer).await,
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            let err = classify(err);
            printer.error(&err);
            err.exit_code
        }
    }
}
