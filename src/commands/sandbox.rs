//! `asm sandbox serve|exec`: start asm-sim and hand its environment to a shell or a command.
//! Built only with the cargo feature `sandbox` (default); without it every `asm sandbox`
//! command explains that and exits 2.

#[cfg(feature = "sandbox")]
use anyhow::Context;
#[cfg(feature = "sandbox")]
use asm_sim::{Fault, Sandbox, SimConfig, config::parse_set};

use crate::cli::sandbox::SandboxCli;
#[cfg(feature = "sandbox")]
use crate::cli::sandbox::{SandboxArgs, SandboxCommand, SandboxExecArgs};
use crate::environment::Environment;
#[cfg(feature = "sandbox")]
use crate::error::exit;
use crate::error::{Error, Result};
use crate::output::Printer;

/// Runs a sandbox subcommand; returns the exit code.
#[cfg(feature = "sandbox")]
pub async fn run(cli: SandboxCli, env: &Environment, printer: &Printer) -> Result<i32> {
    match cli.command {
        Some(SandboxCommand::Serve(args)) => serve(args, printer).await,
        Some(SandboxCommand::Exec(args)) => exec(args, env, printer).await,
        // clap requires the subcommand when the sandbox is built in.
        None => Err(Error::usage(
            "ASM-E001",
            "`asm sandbox` needs a subcommand: serve or exec",
        )
        .into()),
    }
}

/// Without the simulator: every `asm sandbox` command is a usage error saying why.
#[cfg(not(feature = "sandbox"))]
pub async fn run(_cli: SandboxCli, _env: &Environment, _printer: &Printer) -> Result<i32> {
    Err(not_built_in().into())
}

/// The error of `asm sandbox` in a build without the simulator (exit 2).
pub fn not_built_in() -> Error {
    Error::usage(
        "ASM-E203",
        "this asm was built without the sandbox (the simulator is the cargo feature `sandbox`)",
    )
    .with_hint(
        "build asm with its default features, e.g. `cargo install --locked --path .` in asm's source \
         tree, or use a release build that includes it",
    )
}

/// Turns flags into a sandbox configuration; every bad value is a usage error.
#[cfg(feature = "sandbox")]
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
#[cfg(feature = "sandbox")]
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(feature = "sandbox")]
async fn serve(args: SandboxArgs, printer: &Printer) -> Result<i32> {
    let config = config_from(&args)?;
    let sandbox = Sandbox::start(config)
        .await
        .context("starting the sandbox")?;
    // Listen for SIGTERM before printing: whoever reads the exports may stop us at once.
    let termination = Termination::listen();
    let exports: String = serve_exports(sandbox.exports(), std::process::id())
        .iter()
        .map(|(k, v)| format!("export {k}={}\n", shell_quote(v)))
        .collect();
    printer.result(&exports);
    // Nothing more goes to stdout (logs go to stderr): close it, so that a command
    // substitution reading it, `eval "$(asm sandbox serve &)"`, ends here.
    printer.close_stdout();
    termination.wait().await;
    sandbox.shutdown();
    Ok(exit::SUCCESS)
}

/// The sandbox's exports plus `ASM_SANDBOX_PID` (this process, to stop it with `kill`),
/// inserted before the last one, `ASM_SANDBOX_CLUSTERS`, which readers take as the end.
#[cfg(feature = "sandbox")]
pub fn serve_exports(mut exports: Vec<(String, String)>, pid: u32) -> Vec<(String, String)> {
    let at = exports.len().saturating_sub(1);
    exports.insert(at, ("ASM_SANDBOX_PID".into(), pid.to_string()));
    exports
}

#[cfg(feature = "sandbox")]
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
#[cfg(feature = "sandbox")]
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

#[cfg(feature = "sandbox")]
#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.signal().unwrap_or(1)
}

#[cfg(feature = "sandbox")]
#[cfg(not(unix))]
fn signal_of(_status: &std::process::ExitStatus) -> i32 {
    1
}

/// SIGTERM (on Unix) or Ctrl-C, listened for from [`Termination::listen`] on.
#[cfg(feature = "sandbox")]
struct Termination {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

#[cfg(feature = "sandbox")]
impl Termination {
    fn listen() -> Self {
        Termination {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some(mut term) = self.term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(all(test, feature = "sandbox"))]
mod tests {
    use super::*;

    #[test]
    fn serve_exports_put_the_pid_just_before_the_clusters() {
        let exports = vec![
            ("KUBECONFIG".to_string(), "/k".to_string()),
            ("ASM_SANDBOX_CLUSTERS".to_string(), "a b".to_string()),
        ];
        let names: Vec<String> = serve_exports(exports, 42)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            names,
            [
                "KUBECONFIG=/k",
                "ASM_SANDBOX_PID=42",
                "ASM_SANDBOX_CLUSTERS=a b"
            ]
        );
    }

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
