//! `asm migrate`: args → validated [`MigrateSpec`] (every rejection before any request,
//! exit 2).

use crate::cli::migrate::MigrateArgs;
use crate::error::Error;
use crate::spec::{MeshSpec, PlanFlags, namespace_name, target_spec};
use crate::steps::dataplane::MANAGED_REVISIONS;
use crate::steps::dataplane::spec::is_system_namespace;

/// Which namespaces move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    /// `--namespace`, in the order given.
    Named(Vec<String>),
    /// `--all-namespaces`: those whose labels or pods point at a non-managed revision.
    InMeshOffManaged,
}

/// Everything `asm migrate` needs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateSpec {
    /// Clusters, fleet project, Kubernetes access, output, timeout.
    pub mesh: MeshSpec,
    pub namespaces: Namespaces,
    /// `--to`: `None` for `auto` (the cluster's channel's managed revision).
    pub to: Option<String>,
    pub managed_dataplane: bool,
    pub no_restart: bool,
    /// `--gateways` (`Some(true)`), `--no-gateways` (`Some(false)`), neither (`None`: every
    /// old-revision gateway with --all-namespaces, else those in the namespaces named).
    pub gateways: Option<bool>,
    /// Namespaces in flight at once.
    pub parallel: usize,
    pub restart_all_kinds: bool,
    /// `--dry-run`, `--yes`, `--detailed-exitcode`, `--plan-out`, `-D`.
    pub plan: PlanFlags,
}

fn usage(message: impl Into<String>) -> Error {
    Error::usage("ASM-E101", message)
}

/// Validates `--namespace` values: names, not system namespaces, deduplicated in order.
pub fn named_namespaces(values: &[String]) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for ns in values {
        let ns = namespace_name("--namespace", ns)?;
        if is_system_namespace(&ns) {
            return Err(usage(format!(
                "--namespace {ns:?}: system namespaces (kube-system, kube-public, \
                 kube-node-lease, istio-system, gke-*) are never relabelled; gateways in \
                 them move with --gateways"
            )));
        }
        if !out.contains(&ns) {
            out.push(ns);
        }
    }
    Ok(out)
}

impl MigrateSpec {
    /// Validates `args`.
    pub fn from_args(args: &MigrateArgs) -> Result<Self, Error> {
        let mesh = target_spec(&args.target, false, args.output, &args.timeout)?;
        if args.namespaces.is_empty() && !args.all_namespaces {
            return Err(usage(
                "name the namespaces to migrate: --namespace NS (repeatable) or --all-namespaces",
            ));
        }
        let namespaces = named_namespaces(&args.namespaces)?;
        let to = match args.to.as_str() {
            "auto" => None,
            r if MANAGED_REVISIONS.contains(&r) => Some(r.to_string()),
            r => {
                return Err(usage(format!(
                    "--to {r:?}: expected auto, {}",
                    MANAGED_REVISIONS.join(", ")
                )));
            }
        };
        if !(1..=64).contains(&args.parallel) {
            return Err(usage(format!(
                "--parallel {}: expected 1 to 64 namespaces at once",
                args.parallel
            )));
        }
        if args.gateways && args.no_gateways {
            return Err(usage("--gateways and --no-gateways contradict each other"));
        }
        let plan = PlanFlags::new(
            args.dry_run,
            args.yes,
            args.detailed_exitcode,
            args.plan_out.as_deref(),
            args.output_dir.as_deref(),
        )?;
        Ok(MigrateSpec {
            mesh,
            namespaces: if args.all_namespaces {
                Namespaces::InMeshOffManaged
            } else {
                Namespaces::Named(namespaces)
            },
            to,
            managed_dataplane: args.managed_dataplane,
            no_restart: args.no_restart,
            gateways: if args.no_gateways {
                Some(false)
            } else if args.gateways {
                Some(true)
            } else {
                None
            },
            parallel: args.parallel,
            restart_all_kinds: args.restart_all_kinds,
            plan,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cli::install::{OutputArg, TargetArgs};

    pub(crate) fn args() -> MigrateArgs {
        MigrateArgs {
            lock: Default::default(),
            target: TargetArgs {
                project: Some("asm-incluster".into()),
                location: Some("us-central1-c".into()),
                cluster_name: Some("cluster-1".into()),
                ..TargetArgs::default()
            },
            namespaces: vec!["frontend".into(), "backend".into(), "frontend".into()],
            all_namespaces: false,
            to: "auto".into(),
            managed_dataplane: false,
            no_restart: false,
            gateways: false,
            no_gateways: false,
            parallel: 1,
            restart_all_kinds: false,
            finish: false,
            dry_run: false,
            detailed_exitcode: false,
            output_dir: None,
            plan_out: None,
            output: OutputArg::Text,
            yes: true,
            timeout: "10m".into(),
        }
    }

    #[test]
    fn namespaces_keep_their_order_without_repeats() {
        let s = MigrateSpec::from_args(&args()).unwrap();
        assert_eq!(
            s.namespaces,
            Namespaces::Named(vec!["frontend".into(), "backend".into()])
        );
        assert_eq!((s.to, s.gateways, s.parallel), (None, None, 1));
    }

    #[test]
    fn bad_input_is_a_usage_error_naming_the_flag() {
        let cases: Vec<(MigrateArgs, &str)> = vec![
            (
                MigrateArgs {
                    namespaces: vec![],
                    ..args()
                },
                "--all-namespaces",
            ),
            (
                MigrateArgs {
                    namespaces: vec!["Front".into()],
                    ..args()
                },
                "--namespace",
            ),
            (
                MigrateArgs {
                    namespaces: vec!["istio-system".into()],
                    ..args()
                },
                "system namespaces",
            ),
            (
                MigrateArgs {
                    to: "asm-191-1".into(),
                    ..args()
                },
                "--to",
            ),
            (
                MigrateArgs {
                    parallel: 0,
                    ..args()
                },
                "--parallel",
            ),
            (
                MigrateArgs {
                    detailed_exitcode: true,
                    ..args()
                },
                "--dry-run",
            ),
            (
                MigrateArgs {
                    timeout: "soon".into(),
                    ..args()
                },
                "--timeout",
            ),
        ];
        let n = cases.len();
        for (a, needle) in cases {
            let e = MigrateSpec::from_args(&a).unwrap_err();
            assert_eq!(e.exit_code, 2, "{}", e.message);
            assert!(e.message.contains(needle), "{needle}: {}", e.message);
        }
        assert_eq!(n, 7);
    }
}
