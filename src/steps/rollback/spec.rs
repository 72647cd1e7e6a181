//! `asm rollback`: args → validated [`RollbackSpec`] (every rejection before any request,
//! exit 2).

use crate::cli::rollback::RollbackArgs;
use crate::error::Error;
use crate::spec::{MeshSpec, PlanFlags, namespace_name, target_spec};
use crate::steps::migrate::spec::named_namespaces;

/// Everything `asm rollback` needs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackSpec {
    pub mesh: MeshSpec,
    /// `--namespace` (empty: everything in the record).
    pub namespaces: Vec<String>,
    /// `--to-revision`: relabel without a record.
    pub to_revision: Option<String>,
    /// `--dry-run`, `--yes`, `--detailed-exitcode`, `--plan-out`, `-D`.
    pub plan: PlanFlags,
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
        let plan = PlanFlags::new(
            args.dry_run,
            args.yes,
            args.detailed_exitcode,
            args.plan_out.as_deref(),
            args.output_dir.as_deref(),
        )?;
        Ok(RollbackSpec {
            mesh,
            namespaces,
            to_revision,
            plan,
        })
    }
}
