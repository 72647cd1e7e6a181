//! `asm validate`: every precheck of `install --managed`, concurrently, reported together;
//! nothing is changed. Exit 3 only if a check blocks (the plan could not fix it under the
//! given `--enable-*` flags).

use crate::cli::install::ValidateArgs;
use crate::environment::Environment;
use crate::error::{Error, Result, exit};
use crate::plan::CheckStatus;
use crate::plan::document::{PlanDocument, pretty};
use crate::plan::render;
use crate::spec::{MeshSpec, OutputFormat};

use super::google::google_clients;
use super::install::{observe_and_plan, stdout_color};

/// Runs `asm validate`.
pub async fn run(
    args: ValidateArgs,
    env: &Environment,
    printer: &crate::output::Printer,
) -> Result<i32> {
    let spec = MeshSpec::from_validate(&args)?;
    let gcp = google_clients(env, &args.target.credentials.options(), printer).await?;
    let work = observe_and_plan(&gcp, env, &spec, printer);
    let (_, _, plan) = match tokio::time::timeout(spec.timeout, work).await {
        Ok(r) => r,
        Err(_) => {
            return Err(Error::new(
                "ASM-E460",
                exit::TIMEOUT,
                format!("checks did not finish within {}s", spec.timeout.as_secs()),
            )
            .into());
        }
    };
    let count = |s: CheckStatus| plan.checks.iter().filter(|c| c.status == s).count();
    let (ok, fix, warn, fail) = (
        count(CheckStatus::Ok),
        count(CheckStatus::Fix),
        count(CheckStatus::Warn),
        count(CheckStatus::Fail),
    );
    match spec.output {
        OutputFormat::Json => {
            let mut doc: PlanDocument = render::document(&plan, None);
            doc.valid = Some(fail == 0);
            printer.result(&pretty(&doc));
        }
        OutputFormat::Text => {
            let mut out = render::checks_text(&plan, stdout_color(env));
            out.push_str(&format!(
                "\n{} checks: {ok} ok, {fix} to be fixed by install, {warn} warnings, {fail} blocking.\n",
                plan.checks.len()
            ));
            if fail == 0 {
                out.push_str(&format!(
                    "Ready: `asm install --managed` would make {} change{} and {} wait{}.\n",
                    plan.summary().changes(),
                    if plan.summary().changes() == 1 {
                        ""
                    } else {
                        "s"
                    },
                    plan.summary().wait,
                    if plan.summary().wait == 1 { "" } else { "s" },
                ));
            }
            printer.result(&out);
        }
    }
    if fail > 0 {
        return Err(Error::new(
            "ASM-E301",
            exit::PRECHECK_FAILED,
            format!(
                "{fail} check{} blocking (✖)",
                if fail == 1 { " is" } else { "s are" }
            ),
        )
        .with_hint("each ✖ line says what to do; --enable-* flags let install fix more")
        .into());
    }
    Ok(exit::SUCCESS)
}
