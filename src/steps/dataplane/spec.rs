//! `asm enable-dataplane`: args → validated [`DataplaneSpec`] (every rejection before any
//! request, exit 2).

use crate::cli::dataplane::EnableDataplaneArgs;
use crate::error::Error;
use crate::spec::{MeshSpec, PlanFlags, namespace_name, object_name, target_spec};

/// Namespaces whose proxies the managed data plane never manages (and `gke-*`).
pub const SYSTEM_NAMESPACES: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "istio-system",
];

/// Whether `name` is a system namespace (never selected, never accepted by name).
pub fn is_system_namespace(name: &str) -> bool {
    SYSTEM_NAMESPACES.contains(&name) || name.starts_with("gke-")
}

/// Which namespaces the command covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    /// `--namespace`, in the order given (possibly none when only `--pod` is given).
    Named(Vec<String>),
    /// `--all-namespaces`: those with an injection label, system namespaces excepted.
    AllLabelled,
}

/// Everything `asm enable-dataplane` needs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataplaneSpec {
    /// Clusters, fleet project, Kubernetes access, output, timeout, `-e`.
    pub mesh: MeshSpec,
    pub namespaces: Namespaces,
    /// `--pod NS/NAME`.
    pub pods: Vec<(String, String)>,
    /// `--disable`: `{"managed":"false"}`.
    pub disable: bool,
    /// `--dry-run`, `--yes`, `--detailed-exitcode`, `--plan-out`, `-D`.
    pub plan: PlanFlags,
}

fn usage(message: impl Into<String>) -> Error {
    Error::usage("ASM-E101", message)
}

fn not_system(flag: &str, ns: &str) -> Result<(), Error> {
    if is_system_namespace(ns) {
        return Err(usage(format!(
            "{flag} {ns:?}: the managed data plane does not manage proxies in system namespaces \
             (kube-system, kube-public, kube-node-lease, istio-system, gke-*)"
        )));
    }
    Ok(())
}

impl DataplaneSpec {
    /// Validates `args`.
    pub fn from_args(args: &EnableDataplaneArgs) -> Result<Self, Error> {
        let mesh = target_spec(
            &args.target,
            args.enable_gcp_components,
            args.output,
            &args.timeout,
        )?;
        if args.namespaces.is_empty() && !args.all_namespaces && args.pods.is_empty() {
            return Err(usage(
                "name what the managed data plane manages: --namespace NS (repeatable), \
                 --all-namespaces or --pod NS/NAME",
            ));
        }
        let mut namespaces = Vec::new();
        for ns in &args.namespaces {
            let ns = namespace_name("--namespace", ns)?;
            not_system("--namespace", &ns)?;
            if !namespaces.contains(&ns) {
                namespaces.push(ns);
            }
        }
        let mut pods = Vec::new();
        for p in &args.pods {
            let Some((ns, name)) = p.split_once('/') else {
                return Err(usage(format!("--pod {p:?} must be NAMESPACE/NAME")));
            };
            let ns = namespace_name("--pod", ns)?;
            not_system("--pod", &ns)?;
            let pod = (ns, object_name("--pod", name)?);
            if !pods.contains(&pod) {
                pods.push(pod);
            }
        }
        let plan = PlanFlags::new(
            args.dry_run,
            args.yes,
            args.detailed_exitcode,
            args.plan_out.as_deref(),
            args.output_dir.as_deref(),
        )?;
        Ok(DataplaneSpec {
            mesh,
            namespaces: if args.all_namespaces {
                Namespaces::AllLabelled
            } else {
                Namespaces::Named(namespaces)
            },
            pods,
            disable: args.disable,
            plan,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cli::install::{OutputArg, TargetArgs};

    fn args() -> EnableDataplaneArgs {
        EnableDataplaneArgs {
            lock: Default::default(),
            target: TargetArgs {
                project: Some("asm-installed".into()),
                location: Some("us-central1-c".into()),
                cluster_name: Some("cluster-1".into()),
                ..TargetArgs::default()
            },
            namespaces: vec!["shop".into(), "shop".into()],
            all_namespaces: false,
            pods: vec![],
            disable: false,
            enable_gcp_components: false,
            dry_run: false,
            detailed_exitcode: false,
            plan_out: None,
            output_dir: None,
            output: OutputArg::Text,
            yes: true,
            timeout: "10m".into(),
        }
    }

    #[test]
    fn namespaces_are_validated_and_deduplicated() {
        let s = DataplaneSpec::from_args(&args()).unwrap();
        assert_eq!(s.namespaces, Namespaces::Named(vec!["shop".into()]));
    }

    #[test]
    fn bad_input_is_a_usage_error_naming_the_flag() {
        let cases: Vec<(EnableDataplaneArgs, &str)> = vec![
            (
                EnableDataplaneArgs {
                    namespaces: vec!["Shop".into()],
                    ..args()
                },
                "--namespace",
            ),
            (
                EnableDataplaneArgs {
                    namespaces: vec!["kube-system".into()],
                    ..args()
                },
                "system namespaces",
            ),
            (
                EnableDataplaneArgs {
                    namespaces: vec![],
                    ..args()
                },
                "--all-namespaces",
            ),
            (
                EnableDataplaneArgs {
                    pods: vec!["no-slash".into()],
                    ..args()
                },
                "NAMESPACE/NAME",
            ),
            (
                EnableDataplaneArgs {
                    detailed_exitcode: true,
                    ..args()
                },
                "--dry-run",
            ),
            (
                EnableDataplaneArgs {
                    timeout: "soon".into(),
                    ..args()
                },
                "--timeout",
            ),
        ];
        let n = cases.len();
        for (a, needle) in cases {
            let e = DataplaneSpec::from_args(&a).unwrap_err();
            assert_eq!(e.exit_code, 2, "{}", e.message);
            assert!(e.message.contains(needle), "{needle}: {}", e.message);
        }
        assert_eq!(n, 6);
    }

    #[test]
    fn system_namespaces_include_gke_prefixed_ones() {
        assert!(is_system_namespace("gke-managed-system"));
        assert!(is_system_namespace("istio-system"));
        assert!(!is_system_namespace("shop"));
    }
}
