//! `asm rollback`: args → validated [`RollbackSpec`] (every rejection before any request,
//! exit 2).

use std::path::PathBuf;

use crate::cli::rollback::RollbackArgs;
use crate::error::Error;
use crate::spec::{MeshSpec, namespace_name, output_dir, plan_out_file, target_spec};
use crate::steps::migrate::spec::named_namespaces;

/// Everything `asm rollback` needs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackSpec {
    pub mesh: MeshSpec,
    /// `--namespace` (empty: everything in the record).
    pub namespaces: Vec<String>,
    /// `--to-revision`: relabel without a record.
    pub to_revision: Option<String>,
    pub dry_run: bool,
    pub yes: bool,
    pub detailed_exitcode: bool,
    pub output_dir: Option<PathBuf>,
    /// `--plan-out FILE`: save the plan for `asm apply` and stop.
    pub plan_out: Option<PathBuf>,
}

impl RollbackSpec {
    /// Validates `args`.
    pub fn from_args(args: &RollbackArgs) -> Result<Self, Error> {
        let mesh = target_spec(&args.target, false, args.output, &args.timeout)?;
        let namespaces = named_namespaces(&args.namespaces)?;
        let to_revision = match &args.to_revision {
            Some(r) => Some(namespace_name("--to-revision", r).map_err(|_| {
                Error::usage(
                    "ASM-E101",
                    format!(
                        "--to-revision {r:?} is not a revision name: at most 63 lowercase \
                         letters, digits and '-'"
                    ),
                )
            })?),
            None => None,
        };
        if args.detailed_exitcode && !args.dry_run && args.plan_out.is_none() {
            return Err(Error::usage(
                "ASM-E101",
                "--detailed-exitcode applies to a plan only: add --dry-run or --plan-out FILE",
            ));
        }
        plan_out_file(args.plan_out.as_deref())?;
        output_dir(args.output_dir.as_deref())?;
        Ok(RollbackSpec {
            mesh,
            namespaces,
            to_revision,
            dry_run: args.dry_run,
            yes: args.yes,
            detailed_exitcode: args.detailed_exitcode,
            output_dir: args.output_dir.clone(),
            plan_out: args.plan_out.clone(),
        })
    }
}
