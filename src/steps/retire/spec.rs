//! `asm migrate --finish`: args → validated [`RetireSpec`] (every rejection before any
//! request, exit 2).

use std::path::PathBuf;

use crate::cli::migrate::MigrateArgs;
use crate::error::Error;
use crate::spec::{MeshSpec, output_dir, target_spec};

/// Everything `asm migrate --finish` needs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetireSpec {
    /// Clusters, fleet project, Kubernetes access, output, timeout.
    pub mesh: MeshSpec,
    pub dry_run: bool,
    pub yes: bool,
    pub detailed_exitcode: bool,
    pub output_dir: Option<PathBuf>,
}

impl RetireSpec {
    /// Validates `args`.
    pub fn from_args(args: &MigrateArgs) -> Result<Self, Error> {
        let mesh = target_spec(&args.target, false, args.output, &args.timeout)?;
        if args.detailed_exitcode && !args.dry_run {
            return Err(Error::usage(
                "ASM-E101",
                "--detailed-exitcode applies to a plan only: add --dry-run",
            ));
        }
        output_dir(args.output_dir.as_deref())?;
        Ok(RetireSpec {
            mesh,
            dry_run: args.dry_run,
            yes: args.yes,
            detailed_exitcode: args.detailed_exitcode,
            output_dir: args.output_dir.clone(),
        })
    }
}
