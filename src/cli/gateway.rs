//! `asm install-gateway`: an ingress gateway injected by the managed control plane.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::install::{OutputArg, TargetArgs, parse_output};

/// `--injection`: how the gateway pods get their proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum InjectionArg {
    /// Label the namespace for the revision.
    #[default]
    Namespace,
    /// Label only the gateway pods; remove the namespace's injection labels.
    Pod,
}

/// `--service-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ServiceTypeArg {
    #[default]
    #[value(name = "LoadBalancer")]
    LoadBalancer,
    #[value(name = "NodePort")]
    NodePort,
    #[value(name = "ClusterIP")]
    ClusterIp,
}

/// `asm install-gateway`.
#[derive(Debug, Args, Clone)]
pub struct InstallGatewayArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Namespace of the gateway.
    #[arg(long = "namespace", value_name = "NS")]
    pub namespace: String,

    /// Name of the gateway's Deployment, Service, ServiceAccount, PDB and autoscaler.
    #[arg(long, default_value = "istio-ingressgateway", value_name = "NAME")]
    pub name: String,

    /// `auto` (the cluster's managed revision), asm-managed, asm-managed-rapid or
    /// asm-managed-stable.
    #[arg(long, default_value = "auto", value_name = "REVISION")]
    pub revision: String,

    /// Label the namespace (`namespace`) or only the gateway pods (`pod`).
    #[arg(long, value_enum, default_value_t = InjectionArg::Namespace)]
    pub injection: InjectionArg,

    /// Service type: LoadBalancer, NodePort or ClusterIP.
    #[arg(long = "service-type", value_enum, default_value_t = ServiceTypeArg::LoadBalancer)]
    pub service_type: ServiceTypeArg,

    /// The autoscaler's minReplicas (asm never sets the Deployment's replicas).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub replicas: u32,

    /// Create the namespace if it is missing.
    #[arg(
        long = "enable-namespace-creation",
        alias = "enable_namespace_creation"
    )]
    pub enable_namespace_creation: bool,

    /// Allow a gateway in istio-system (discouraged: gateways belong in their own namespace).
    #[arg(long = "allow-istio-system")]
    pub allow_istio_system: bool,

    /// Show the plan and stop; send no mutating request.
    #[arg(long = "dry-run", alias = "dry_run")]
    pub dry_run: bool,

    /// With --dry-run or --plan-out: exit 10 when the plan has changes to make.
    #[arg(long = "detailed-exitcode")]
    pub detailed_exitcode: bool,

    /// Save the plan to FILE (JSON, no token) and stop; `asm apply FILE` applies exactly
    /// it, refusing if what it was planned from has changed.
    #[arg(long = "plan-out", value_name = "FILE")]
    pub plan_out: Option<PathBuf>,

    /// Write the plan (text and JSON), the manifests, the run report and a log into DIR.
    #[arg(short = 'D', long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Plan format: `text` or `json` (one object on stdout).
    #[arg(short = 'o', long = "output", value_parser = parse_output, default_value = "text", value_name = "FORMAT")]
    pub output: OutputArg,

    /// Apply without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// How long the whole run may take (waits included), e.g. `10m`.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub timeout: String,

    #[command(flatten)]
    pub lock: super::lock::LockArgs,
}
