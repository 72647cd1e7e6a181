//! `asm migrate --finish`: args → validated [`RetireSpec`] (every rejection before any
//! request, exit 2).

use crate::cli::migrate::MigrateArgs;
use crate::error::Error;
use crate::spec::{MeshSpec, PlanFlags, target_spec};

/// Everything `asm migrate --finish` needs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetireSpec {
    /// Clusters, fleet project, Kubernetes access, output, timeout.
    pub mesh: MeshSpec,
    /// `--dry-run`, `--yes`, `--detailed-exitcode`, `-D` (`--plan-out` is refused).
    pub plan: PlanFlags,
}

/// The first flag of `args` that is about moving workloads, not retiring the old control
/// plane.
fn moving_flag(args: &MigrateArgs) -> Option<&'static str> {
    [
        (!args.namespaces.is_empty(), "--namespace"),
        (args.all_namespaces, "--all-namespaces"),
        (args.to != "auto", "--to"),
        (args.managed_dataplane, "--managed-dataplane"),
        (args.no_restart, "--no-restart"),
        (args.gateways, "--gateways"),
        (args.no_gateways, "--no-gateways"),
        (args.parallel != 1, "--parallel"),
        (args.restart_all_kinds, "--restart-all-kinds"),
    ]
    .into_iter()
    .find_map(|(given, flag)| given.then_some(flag))
}

impl RetireSpec {
    /// Validates `args`.
    pub fn from_args(args: &MigrateArgs) -> Result<Self, Error> {
        let mesh = target_spec(&args.target, false, args.output, &args.timeout)?;
        if let Some(flag) = moving_flag(args) {
            return Err(Error::usage(
                "ASM-E101",
                format!(
                    "{flag} moves workloads; --finish only deletes the old control plane: run \
                     them separately (asm migrate first, then asm migrate --finish)"
                ),
            ));
        }
        if args.detailed_exitcode && !args.dry_run {
            return Err(Error::usage(
                "ASM-E101",
                "--detailed-exitcode applies to a plan only: add --dry-run",
            ));
        }
        if args.plan_out.is_some() {
            return Err(Error::usage(
                "ASM-E101",
                "--plan-out is not offered with --finish: review the deletes with --dry-run, \
                 then run with --yes (each delete is refused if its object changed since)",
            ));
        }
        let plan = PlanFlags::new(
            args.dry_run,
            args.yes,
            args.detailed_exitcode,
            None,
            args.output_dir.as_deref(),
        )?;
        Ok(RetireSpec { mesh, plan })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(extra: &[&str]) -> MigrateArgs {
        let mut argv = vec![
            "asm",
            "migrate",
            "--finish",
            "--cluster",
            "asm-incluster/us-central1-c/cluster-1",
        ];
        argv.extend(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Migrate(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn finish_alone_is_valid() {
        let s = RetireSpec::from_args(&args(&["--dry-run"])).unwrap();
        assert!(s.plan.dry_run);
        assert_eq!(s.mesh.clusters.len(), 1);
    }

    #[test]
    fn flags_that_move_workloads_are_refused_with_finish() {
        let cases: [&[&str]; 4] = [
            &["--namespace", "shop"],
            &["--all-namespaces"],
            &["--to", "asm-managed-rapid"],
            &["--parallel", "3"],
        ];
        for extra in cases {
            let e = RetireSpec::from_args(&args(extra)).unwrap_err();
            assert_eq!(e.exit_code, 2, "{extra:?}");
            assert!(e.message.starts_with(extra[0]), "{}", e.message);
        }
        let e = RetireSpec::from_args(&args(&["--detailed-exitcode"])).unwrap_err();
        assert!(e.message.contains("--dry-run"), "{}", e.message);
        let e = RetireSpec::from_args(&args(&["--plan-out", "plan.json"])).unwrap_err();
        assert!(e.message.starts_with("--plan-out"), "{}", e.message);
    }
}
