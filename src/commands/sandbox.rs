//! `asm sandbox serve|exec`: start asm-sim and hand its environment to a shell or a command.

use anyhow::Context;
use asm_sim::{Fault, Sandbox, SimConfig, config::parse_set};

use crate::cli::sandbox::{SandboxArgs, SandboxCommand, SandboxExecArgs};
use crate::environment::Environment;
use crate::error::{Error, Result, exit};
use crate::output::Printer;

/// Runs a sandbox subcommand; returns the exit code.
pub async fn run(cmd: SandboxCommand, env: &Environment, printer: &Printer) -> Result<i32> {
    match cmd {
        SandboxCommand::Serve(args) => serve(args, printer).await,
        SandboxCommand::Exec(args) => exec(args, env, printer).await,
    }
}

/// Turns flags into a sandbox configuration; every bad value is a usage error.
pub fn config_from(args: &SandboxArgs) -> Result<SimConfig, Error> {
    let usage = |e: anyhow::Error| Error::usage("ASM-E201", format!("{e:#}"));
    let mut config = SimConfig::new(args.scenario.clone());
    // Validate the scenario and knobs now, so a typo is exit 2 before anything listens.
    let sets = args
        .sets
        .iter()
        .map(|s| parse_set(s))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(usage)?;
    asm_sim::Scenario::build(&args.scenario, &sets).map_err(usage)?;
    config.sets = sets;
    config.faults = args
        .faults
        .iter()
        .map(|f| Fault::parse(f))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(usage)?;
    config.seed = args.seed;
    config.latency = std::time::Duration::from_millis(args.latency_ms);
    config.request_log = args.request_log.clone();
    config.port = args.port;
    Ok(config)
}

/// Single-quotes a value for POSIX shells.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

async fn serve(args: SandboxArgs, printer: &Printer) -> Result<i32> {
    let config = config_from(&args)?;
    let sandbox = Sandbox::start(config)
        .await
        .context("starting the sandbox")?;
    let exports: String = sandbox
        .exports()
        .iter()
        .map(|(k, v)| format!("export {k}={}\n", shell_quote(v)))
        .collect();
    printer.result(&exports);
    wait_for_termination().await;
    sandbox.shutdown();
    Ok(exit::SUCCESS)
}

async fn exec(args: SandboxExecArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    let config = config_from(&args.sandbox)?;
    let sandbox = Sandbox::start(config)
        .await
        .context("starting the sandbox")?;
    let (program, rest) = args
        .command
        .split_first()
        .context("no command given after --")?;
    printer.detail(&format!(
        "sandbox: running {program} with {} clusters",
        sandbox.clusters.len()
    ));
    let status = tokio::process::Command::new(program)
        .args(rest)
        .env_clear()
        .envs(&env.vars)
        .envs(sandbox.exports())
        .env("PATH", path_with_own_dir(env))
        .status()
        .await;
    sandbox.shutdown();
    let status = status.map_err(|e| {
        Error::usage("ASM-E202", format!("cannot run {program:?}: {e}"))
            .with_hint("is it installed and on PATH?")
    })?;
    Ok(status.code().unwrap_or(128 + signal_of(&status)))
}

/// `PATH` with the directory of this executable first, so `asm sandbox exec -- asm …` runs
/// this very asm.
fn path_with_own_dir(env: &Environment) -> String {
    let current = env
        .var("PATH")
        .unwrap_or("/usr/local/bin:/usr/bin:/bin")
        .to_string();
    match std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.display().to_string()))
    {
        Some(dir) => format!("{dir}:{current}"),
        None => current,
    }
}

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.signal().unwrap_or(1)
}

#[cfg(not(unix))]
fn signal_of(_status: &std::process::ExitStatus) -> i32 {
    1
}

async fn wait_for_termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
