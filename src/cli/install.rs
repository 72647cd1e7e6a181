//! `asm install` and `asm validate`: which clusters, what asm may change, how to show it.
//!
//! Values are kept as typed by the user; `spec` validates them (names, enums, conflicts)
//! so that every rejection names the input and the rule, before any request.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::credentials::CredentialArgs;
use super::{CHANGES_HEADING, CONTROL_PLANE_HEADING, PLAN_HEADING, TARGETS_HEADING};

/// Which clusters, and how to reach them.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = TARGETS_HEADING)]
pub struct TargetArgs {
    /// Project of the cluster (with `-l` and `-n`).
    #[arg(
        short = 'p',
        long = "project",
        value_name = "PROJECT",
        visible_alias = "project-id",
        alias = "project_id"
    )]
    pub project: Option<String>,

    /// Zone or region of the cluster (with `-p` and `-n`).
    #[arg(
        short = 'l',
        long = "location",
        value_name = "LOCATION",
        alias = "cluster_location",
        alias = "cluster-location"
    )]
    pub location: Option<String>,

    /// Name of the cluster (with `-p` and `-l`).
    #[arg(
        short = 'n',
        long = "cluster-name",
        value_name = "NAME",
        alias = "cluster_name"
    )]
    pub cluster_name: Option<String>,

    /// A cluster as PROJECT/LOCATION/NAME; repeat for several clusters (instead of -p/-l/-n).
    #[arg(long = "cluster", value_name = "PROJECT/LOCATION/NAME")]
    pub clusters: Vec<String>,

    /// Fleet host project (default: the clusters' project).
    #[arg(long = "fleet-id", value_name = "PROJECT", alias = "fleet_id")]
    pub fleet_id: Option<String>,

    /// Kubeconfig to reach the cluster instead of GKE's endpoint (then exactly one cluster).
    /// Without it and without --context, $KUBECONFIG is ignored.
    #[arg(long, value_name = "FILE", alias = "kc")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (then exactly one cluster).
    #[arg(long, value_name = "NAME", alias = "ctx")]
    pub context: Option<String>,

    #[command(flatten)]
    pub credentials: CredentialArgs,
}

/// What asm may change besides the control plane itself (asmcli's permission predicates).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = CHANGES_HEADING)]
pub struct EnableArgs {
    /// Grant every --enable-* permission below.
    #[arg(short = 'e', long = "enable-all", alias = "enable_all")]
    pub enable_all: bool,
    /// Enable the Google APIs the mesh needs (mesh, meshconfig, gkehub).
    #[arg(long = "enable-gcp-apis", alias = "enable_gcp_apis")]
    pub enable_gcp_apis: bool,
    /// Grant the IAM roles the mesh needs.
    #[arg(long = "enable-gcp-iam-roles", alias = "enable_gcp_iam_roles")]
    pub enable_gcp_iam_roles: bool,
    /// Change GKE and fleet components (workload identity, servicemesh feature); implied by
    /// --managed.
    #[arg(long = "enable-gcp-components", alias = "enable_gcp_components")]
    pub enable_gcp_components: bool,
    /// Add the `mesh_id` label to the cluster.
    #[arg(long = "enable-cluster-labels", alias = "enable_cluster_labels")]
    pub enable_cluster_labels: bool,
    /// Register the cluster to the fleet.
    #[arg(long = "enable-registration", alias = "enable_registration")]
    pub enable_registration: bool,
    /// Create the istio-system namespace.
    #[arg(
        long = "enable-namespace-creation",
        alias = "enable_namespace_creation"
    )]
    pub enable_namespace_creation: bool,
    /// asmcli's meshconfig initialisation: implied by --managed; accepted and ignored.
    #[arg(
        long = "enable-meshconfig-init",
        alias = "enable_meshconfig_init",
        hide = true
    )]
    pub enable_meshconfig_init: bool,
}

/// `--management`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ManagementArg {
    #[default]
    Automatic,
    Revision,
}

/// `--channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChannelArg {
    Regular,
    Rapid,
    Stable,
}

/// `-o/--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputArg {
    #[default]
    Text,
    Json,
}

/// Parses `-o/--output`. asmcli's `-o NAME` (an IstioOperator option) is `--option NAME`
/// here; the error says so.
pub fn parse_output(value: &str) -> Result<OutputArg, String> {
    match value {
        "text" => Ok(OutputArg::Text),
        "json" => Ok(OutputArg::Json),
        other => Err(format!(
            "expected `text` or `json`. In asm, `-o` is the output format; asmcli's `-o {other}` \
             (short for --option) is not supported: write `--option {other}`"
        )),
    }
}

/// `-c/--ca`: the mesh certificate authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaArg {
    /// Mesh CA (the default).
    #[value(name = "mesh_ca", alias = "mesh-ca")]
    MeshCa,
    /// Certificate Authority Service: a CA pool of yours (`--ca-pool`).
    #[value(name = "gcp_cas", alias = "gcp-cas")]
    GcpCas,
    /// In-cluster Citadel: not available with the managed control plane (rejected).
    #[value(name = "citadel", hide = true)]
    Citadel,
}

/// The certificate authority of the mesh (asmcli `-c/--ca`, `--ca_pool`).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = CONTROL_PLANE_HEADING)]
pub struct CaArgs {
    /// Certificate authority: `mesh_ca` (default) or `gcp_cas` (with --ca-pool).
    #[arg(short = 'c', long = "ca", value_enum, value_name = "CA")]
    pub ca: Option<CaArg>,
    /// CA Service pool for `--ca gcp_cas`: projects/P/locations/L/caPools/N.
    #[arg(long = "ca-pool", alias = "ca_pool", value_name = "POOL")]
    pub ca_pool: Option<String>,
}

/// install_asm/asmcli flags that the managed control plane does not support: accepted by the
/// parser only so that `spec` can reject them with asmcli's reason (exit 2).
#[derive(Debug, Args, Clone, Default)]
pub struct UnsupportedArgs {
    /// A custom IstioOperator overlay (rejected with --managed).
    #[arg(
        long = "custom-overlay",
        alias = "custom_overlay",
        alias = "co",
        hide = true,
        value_name = "FILE"
    )]
    pub custom_overlay: Vec<PathBuf>,
    /// A revision name (rejected with --managed).
    #[arg(
        short = 'r',
        long = "revision-name",
        alias = "revision_name",
        hide = true,
        value_name = "NAME"
    )]
    pub revision_name: Option<String>,
    /// Custom Citadel CA files (rejected with --managed).
    #[arg(long = "ca-cert", alias = "ca_cert", hide = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    #[arg(long = "ca-key", alias = "ca_key", hide = true, value_name = "FILE")]
    pub ca_key: Option<PathBuf>,
    #[arg(
        long = "root-cert",
        alias = "root_cert",
        hide = true,
        value_name = "FILE"
    )]
    pub root_cert: Option<PathBuf>,
    #[arg(
        long = "cert-chain",
        alias = "cert_chain",
        hide = true,
        value_name = "FILE"
    )]
    pub cert_chain: Option<PathBuf>,
}

/// What control plane to ask for (shared by `install` and `validate`, which checks for it).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = CONTROL_PLANE_HEADING)]
pub struct ControlPlaneArgs {
    /// Control plane management (`automatic` or `revision`).
    #[arg(long, value_enum, default_value_t = ManagementArg::Automatic)]
    pub management: ManagementArg,

    /// Release channel whose revision tag to request (default: the cluster's GKE channel).
    #[arg(long, value_enum)]
    pub channel: Option<ChannelArg>,

    /// A control plane option, e.g. `cni-managed` (revision management). Repeatable.
    #[arg(long = "option", value_name = "NAME")]
    pub options: Vec<String>,

    #[command(flatten)]
    pub ca: CaArgs,

    #[command(flatten)]
    pub unsupported: UnsupportedArgs,
}

/// `asm install`.
#[derive(Debug, Args, Clone)]
pub struct InstallArgs {
    // Field order is the order of the help headings: targets, credentials, what asm may
    // change, control plane, plan and output.
    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub enable: EnableArgs,

    /// Install the Google-managed control plane (the only kind asm installs).
    #[arg(long, help_heading = CONTROL_PLANE_HEADING)]
    pub managed: bool,

    #[command(flatten)]
    pub control_plane: ControlPlaneArgs,

    /// Show the plan and stop; send no mutating request.
    #[arg(long = "dry-run", alias = "dry_run", help_heading = PLAN_HEADING)]
    pub dry_run: bool,

    /// With --dry-run or --plan-out: exit 10 when the plan has changes to make.
    #[arg(long = "detailed-exitcode", help_heading = PLAN_HEADING)]
    pub detailed_exitcode: bool,

    /// Save the plan to FILE (JSON, no secrets) and stop; `asm apply FILE` applies exactly it.
    #[arg(long = "plan-out", value_name = "FILE", help_heading = PLAN_HEADING)]
    pub plan_out: Option<PathBuf>,

    /// Write the plan (text and JSON), every manifest applied and a log into DIR.
    #[arg(
        short = 'D',
        long = "output-dir",
        alias = "output_dir",
        value_name = "DIR",
        help_heading = PLAN_HEADING
    )]
    pub output_dir: Option<PathBuf>,

    /// Only the enable-* actions (APIs, workload identity, labels, registration, fleet
    /// feature); no control plane.
    #[arg(long = "only-enable", alias = "only_enable", help_heading = CHANGES_HEADING)]
    pub only_enable: bool,

    /// asmcli compatibility: run `asm validate` instead.
    #[arg(long = "only-validate", alias = "only_validate", hide = true)]
    pub only_validate: bool,

    /// Plan format: `text` or `json` (one object on stdout).
    #[arg(short = 'o', long = "output", value_parser = parse_output, default_value = "text", value_name = "FORMAT", help_heading = PLAN_HEADING)]
    pub output: OutputArg,

    /// Apply without asking.
    #[arg(short = 'y', long, help_heading = PLAN_HEADING)]
    pub yes: bool,

    /// How long to wait for the control plane, e.g. `10m`, `90s`, `1h`.
    #[arg(long, default_value = "10m", value_name = "DURATION", help_heading = PLAN_HEADING)]
    pub timeout: String,

    #[command(flatten)]
    pub lock: super::lock::LockArgs,

    /// install_asm compatibility: `--mode install` (deprecated; implies --yes, as install_asm
    /// never asked).
    #[arg(short = 'm', long = "mode", hide = true, value_name = "MODE")]
    pub mode: Option<String>,
}

/// `asm validate`.
#[derive(Debug, Args, Clone)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub enable: EnableArgs,

    /// Validate for the managed control plane (implies --enable-gcp-components).
    #[arg(long, help_heading = CONTROL_PLANE_HEADING)]
    pub managed: bool,

    #[command(flatten)]
    pub control_plane: ControlPlaneArgs,

    /// Report format: `text` or `json` (one object on stdout).
    #[arg(short = 'o', long = "output", value_parser = parse_output, default_value = "text", value_name = "FORMAT", help_heading = PLAN_HEADING)]
    pub output: OutputArg,

    /// How long all checks together may take, e.g. `2m`.
    #[arg(long, default_value = "10m", value_name = "DURATION", help_heading = PLAN_HEADING)]
    pub timeout: String,
}
