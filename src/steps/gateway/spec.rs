//! `asm install-gateway`: args → validated [`GatewaySpec`] (every rejection before any
//! request, exit 2).

use crate::cli::gateway::{InjectionArg, InstallGatewayArgs, ServiceTypeArg};
use crate::error::Error;
use crate::spec::{MeshSpec, PlanFlags, namespace_name, target_spec};
use crate::steps::dataplane::MANAGED_REVISIONS;

/// Everything `asm install-gateway` needs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySpec {
    pub mesh: MeshSpec,
    pub namespace: String,
    pub name: String,
    /// `None`: `auto`, the cluster's managed revision.
    pub revision: Option<String>,
    /// `--injection pod`: label the pods, not the namespace.
    pub pod_injection: bool,
    /// `LoadBalancer`, `NodePort` or `ClusterIP`.
    pub service_type: &'static str,
    pub replicas: u32,
    pub create_namespace: bool,
    /// `--dry-run`, `--yes`, `--detailed-exitcode`, `--plan-out`, `-D`.
    pub plan: PlanFlags,
}

fn usage(message: impl Into<String>) -> Error {
    Error::usage("ASM-E101", message)
}

impl GatewaySpec {
    /// Validates `args`.
    pub fn from_args(args: &InstallGatewayArgs) -> Result<Self, Error> {
        let mesh = target_spec(&args.target, false, args.output, &args.timeout)?;
        let namespace = namespace_name("--namespace", &args.namespace)?;
        if namespace == "istio-system" && !args.allow_istio_system {
            return Err(usage(
                "--namespace istio-system: deploy gateways in their own namespace, not in \
                 istio-system (pass --allow-istio-system to do it anyway)",
            ));
        }
        // The name prefixes `<name>-sds` and labels pods: an RFC 1123 label with room.
        let name = namespace_name("--name", &args.name)?;
        if name.len() > 59 {
            return Err(usage(format!(
                "--name {name:?} is too long: at most 59 characters (it names {name}-sds)"
            )));
        }
        let revision = match args.revision.as_str() {
            "auto" => None,
            r if MANAGED_REVISIONS.contains(&r) => Some(r.to_string()),
            r => {
                return Err(usage(format!(
                    "--revision {r:?}: expected auto, {}",
                    MANAGED_REVISIONS.join(", ")
                )));
            }
        };
        if args.replicas == 0 {
            return Err(usage("--replicas must be at least 1"));
        }
        let plan = PlanFlags::new(
            args.dry_run,
            args.yes,
            args.detailed_exitcode,
            args.plan_out.as_deref(),
            args.output_dir.as_deref(),
        )?;
        Ok(GatewaySpec {
            mesh,
            namespace,
            name,
            revision,
            pod_injection: args.injection == InjectionArg::Pod,
            service_type: match args.service_type {
                ServiceTypeArg::LoadBalancer => "LoadBalancer",
                ServiceTypeArg::NodePort => "NodePort",
                ServiceTypeArg::ClusterIp => "ClusterIP",
            },
            replicas: args.replicas,
            create_namespace: args.enable_namespace_creation,
            plan,
        })
    }
}
