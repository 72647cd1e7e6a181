//! `asm install` and `asm validate`: which clusters, what asm may change, how to show it.
//!
//! Values are kept as typed by the user; `spec` validates them (names, enums, conflicts)
//! so that every rejection names the input and the rule, before any request.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Which clusters, and how to reach them.
#[derive(Debug, Args, Clone, Default)]
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

    /// Read the Google access token from this file instead of the default credentials.
    #[arg(long, value_name = "FILE")]
    pub access_token_file: Option<PathBuf>,
}

/// What asm may change besides the control plane itself (asmcli's permission predicates).
#[derive(Debug, Args, Clone, Default)]
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

/// `asm install`.
#[derive(Debug, Args, Clone)]
pub struct InstallArgs {
    /// Install the Google-managed control plane (the only kind asm installs).
    #[arg(long)]
    pub managed: bool,

    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub enable: EnableArgs,

    /// Control plane management (`automatic` or `revision`).
    #[arg(long, value_enum, default_value_t = ManagementArg::Automatic)]
    pub management: ManagementArg,

    /// Release channel whose revision tag to request (default: the cluster's GKE channel).
    #[arg(long, value_enum)]
    pub channel: Option<ChannelArg>,

    /// A control plane option, e.g. `cni-managed` (revision management). Repeatable.
    #[arg(long = "option", value_name = "NAME")]
    pub options: Vec<String>,

    /// Show the plan and stop; send no mutating request.
    #[arg(long = "dry-run", alias = "dry_run")]
    pub dry_run: bool,

    /// Plan format: `text` or `json` (one object on stdout).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputArg::Text)]
    pub output: OutputArg,

    /// Apply without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// How long to wait for the control plane, e.g. `10m`, `90s`, `1h`.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub timeout: String,

    /// Accepted for install_asm compatibility and ignored (`--mode install`).
    #[arg(short = 'm', long = "mode", hide = true, value_name = "MODE")]
    pub mode: Option<String>,
}

/// `asm validate`.
#[derive(Debug, Args, Clone)]
pub struct ValidateArgs {
    /// Validate for the managed control plane (implies --enable-gcp-components).
    #[arg(long)]
    pub managed: bool,

    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub enable: EnableArgs,

    /// Control plane management (`automatic` or `revision`).
    #[arg(long, value_enum, default_value_t = ManagementArg::Automatic)]
    pub management: ManagementArg,

    /// Release channel whose revision tag to request (default: the cluster's GKE channel).
    #[arg(long, value_enum)]
    pub channel: Option<ChannelArg>,

    /// A control plane option, e.g. `cni-managed`. Repeatable.
    #[arg(long = "option", value_name = "NAME")]
    pub options: Vec<String>,

    /// Report format: `text` or `json` (one object on stdout).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputArg::Text)]
    pub output: OutputArg,

    /// How long all checks together may take, e.g. `2m`.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub timeout: String,
}
