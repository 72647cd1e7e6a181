//! `asm status`: args → targets → observe (reads only) → report (pure) → text or JSON;
//! `--require` turns a verdict into exit 3 listing what is missing.

use crate::cli::install::OutputArg;
use crate::cli::status::{RequireArg, StatusArgs};
use crate::environment::Environment;
use crate::error::{Error, Result, exit};
use crate::output::Printer;
use crate::spec::targets;
use crate::steps::status::{observe::observe, render, report::status_report};

use super::google::google_clients;

/// Runs `asm status`.
pub async fn run(args: StatusArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    let t = targets(&args.target)?;
    let mut require = args.require.clone();
    require.sort();
    require.dedup();
    let gcp = google_clients(env, &args.target.credentials.options(), printer).await?;
    printer.progress(&format!(
        "Reading the state of {} cluster{}…",
        t.clusters.len(),
        if t.clusters.len() == 1 { "" } else { "s" }
    ));
    let observed = observe(&gcp, env, &t.clusters, &t.fleet_project, &t.kube).await;
    let report = status_report(&observed);
    match args.output {
        OutputArg::Json => printer.result(&format!("{:#}\n", render::json(&report))),
        OutputArg::Text => printer.result(&render::text(&report)),
    }
    let mut missing = Vec::new();
    for r in &require {
        let (name, v) = match r {
            RequireArg::Ready => ("ready", &report.ready),
            RequireArg::Migrated => ("migrated", &report.migrated),
        };
        missing.extend(v.missing.iter().map(|m| format!("not {name}: {m}")));
    }
    if missing.is_empty() {
        return Ok(exit::SUCCESS);
    }
    Err(Error::new(
        "ASM-E302",
        exit::PRECHECK_FAILED,
        format!(
            "{} requirement{} not met:\n  {}",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            missing.join("\n  ")
        ),
    )
    .into())
}
