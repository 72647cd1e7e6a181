//! `asm apply FILE`: re-reads the saved inputs (validated like flags), re-observes, and
//! refuses (exit 2) when what the plan was made from drifted — naming what changed — or when
//! the plan computed now would differ from the saved actions. Otherwise it executes exactly
//! the saved actions, under the same `--yes` rules as `install`. Another command's saved
//! plan (`saved.command` create-mesh, create-remote-secret, enable-dataplane,
//! install-gateway, migrate or rollback) goes back to its command, which does the same with its own
//! observation.

use tokio::time::Instant;

use crate::cli::apply::ApplyArgs;
use crate::cli::install::OutputArg;
use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::output::Printer;
use crate::plan::saved::{self, drift};
use crate::spec::OutputFormat;
use crate::steps::observe::fingerprint;

use super::google::google_clients;
use super::install::{ApplyRun, apply_plan, blocked_error, observe_and_plan_by, prepare_output};

/// The command that makes a new install plan (in refusals).
const REMAKE: &str = "asm install --managed … --plan-out FILE";

fn refuse(file: &std::path::Path, what: &str, lines: &[String]) -> Error {
    saved::refusal(file, what, lines, REMAKE)
}

/// Runs `asm apply`.
pub async fn run(args: ApplyArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    let file = &args.file;
    let lock_timeout = crate::spec::parse_lock_timeout(&args.lock.lock_timeout)?;
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::usage(
            "ASM-E106",
            format!("cannot read plan file {:?}: {e}", file.display()),
        )
    })?;
    // Another command's plan goes back to its command.
    if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text)
        && let Some(command) = doc["saved"]["command"].as_str()
        && command != "install"
    {
        if crate::steps::dataplane::saved::COMMANDS.contains(&command) {
            let saved = saved::read_command(file, &doc, &crate::steps::dataplane::saved::COMMANDS)?;
            return match command {
                "enable-dataplane" => {
                    super::enable_dataplane::apply_saved(&saved, &args, env, printer).await
                }
                _ => super::install_gateway::apply_saved(&saved, &args, env, printer).await,
            };
        }
        if crate::steps::migrate::saved::COMMANDS.contains(&command) {
            let saved = saved::read_command(file, &doc, &crate::steps::migrate::saved::COMMANDS)?;
            return match command {
                "migrate" => super::migrate::apply_saved(&saved, &args, env, printer).await,
                _ => super::rollback::apply_saved(&saved, &args, env, printer).await,
            };
        }
        let secrets = crate::steps::mesh::saved::read(file, &doc)?;
        return match command {
            "create-mesh" => super::create_mesh::apply_saved(&secrets, &args, env, printer).await,
            _ => super::create_remote_secret::apply_saved(&secrets, &args, env, printer).await,
        };
    }
    let saved = saved::read(file, &text)?;
    let mut mesh = saved.spec.clone();
    mesh.output = match args.output {
        OutputArg::Text => OutputFormat::Text,
        OutputArg::Json => OutputFormat::Json,
    };
    if let Some(t) = saved::timeout_override(args.timeout.as_deref())? {
        mesh.timeout = t;
    }
    let (out, printer) = prepare_output(args.output_dir.as_deref(), printer)?;
    let printer = &printer;
    let started = Instant::now();
    let gcp = google_clients(env, &args.credentials.options(), printer).await?;
    let (obs, handles, plan) =
        observe_and_plan_by(&gcp, env, &mesh, printer, started + mesh.timeout).await?;
    let now = fingerprint(&mesh, &obs);
    let drifted = drift(&saved.fingerprint, &now);
    if !drifted.is_empty() {
        return Err(refuse(file, "the state it was planned from has changed", &drifted).into());
    }
    let differences = saved::action_differences(&saved.actions, &plan);
    if !differences.is_empty() {
        return Err(refuse(
            file,
            "the actions planned now differ from the saved ones",
            &differences,
        )
        .into());
    }
    if plan.blocked() {
        return Err(blocked_error(&plan).into());
    }
    printer.progress(&format!(
        "The state matches the plan in {} ({} observations); applying its {} action{}.",
        file.display(),
        now.len(),
        plan.actions.len(),
        if plan.actions.len() == 1 { "" } else { "s" }
    ));
    apply_plan(ApplyRun {
        env,
        printer,
        gcp: &gcp,
        mesh: &mesh,
        plan: &plan,
        handles,
        yes: args.yes,
        started,
        prompt_wait: std::time::Duration::ZERO,
        out: out.as_ref(),
        lock_timeout,
    })
    .await
}
