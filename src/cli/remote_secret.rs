//! `asm create-remote-secret`: the flags of `istioctl create-remote-secret` (≥ 1.28), plus
//! `--apply-to` and the plan flags.
//!
//! Values are kept as typed; `commands::create_remote_secret` validates them before any
//! request.

use std::path::PathBuf;

use clap::Args;

use super::install::OutputArg;
use super::{PLAN_HEADING, TARGETS_HEADING};

/// Help heading of the flags that shape the secret (istioctl's).
const SECRET_HEADING: &str = "The secret";

/// `asm create-remote-secret`.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = SECRET_HEADING)]
pub struct CreateRemoteSecretArgs {
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(short = 'c', long, value_name = "FILE", help_heading = TARGETS_HEADING)]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context of the cluster the secret gives access to (default: current).
    #[arg(long, value_name = "NAME", help_heading = TARGETS_HEADING)]
    pub context: Option<String>,

    /// Cluster name (the data key, and `istio-remote-secret-NAME`). Default: `cn-P-L-N` for a
    /// `gke_P_L_N` context, else the UID of the `kube-system` namespace.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Namespace of the Secret and of the ServiceAccount lookups (default: the current
    /// context's namespace, else --istio-namespace).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Istio system namespace.
    #[arg(
        short = 'i',
        long = "istio-namespace",
        alias = "istioNamespace",
        value_name = "NAMESPACE",
        default_value = "istio-system"
    )]
    pub istio_namespace: String,

    /// ServiceAccount whose token the secret carries (default: istio-reader-service-account,
    /// or istiod with --type config).
    #[arg(long, value_name = "NAME")]
    pub service_account: Option<String>,

    /// Create the ServiceAccount and its RBAC when missing.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub create_service_account: bool,

    /// API server URL written into the kubeconfig (default: the context's server).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,

    /// `tls-server-name` written into the kubeconfig.
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,

    /// The token Secret to use (default: the first token Secret of the ServiceAccount, or a
    /// new `<sa>-istio-remote-secret-token`).
    #[arg(long, value_name = "NAME")]
    pub secret_name: Option<String>,

    /// `remote` (istio-remote-secret-NAME) or `config` (istio-kubeconfig).
    #[arg(long = "type", value_name = "TYPE", default_value = "remote")]
    pub secret_type: String,

    /// `bearer-token` or `plugin`.
    #[arg(long, value_name = "TYPE", default_value = "bearer-token")]
    pub auth_type: String,

    /// Auth provider name (with --auth-type plugin).
    #[arg(long, value_name = "NAME", default_value = "")]
    pub auth_plugin_name: String,

    /// Auth provider config `k1=v1,k2=v2` (with --auth-type plugin). Repeatable.
    #[arg(long, value_name = "K=V,…")]
    pub auth_plugin_config: Vec<String>,

    /// Apply the secret to this kubeconfig context instead of printing it. Repeatable.
    #[arg(long = "apply-to", value_name = "CONTEXT", help_heading = TARGETS_HEADING)]
    pub apply_to: Vec<String>,

    /// With --apply-to: show the plan and stop; send no mutating request.
    #[arg(long = "dry-run", help_heading = PLAN_HEADING)]
    pub dry_run: bool,

    /// With --apply-to: plan format, `text` or `json`.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputArg::Text, help_heading = PLAN_HEADING)]
    pub output: OutputArg,

    /// With --apply-to: apply without asking.
    #[arg(short = 'y', long, help_heading = PLAN_HEADING)]
    pub yes: bool,

    /// How long to wait for the token to be issued (and, with --apply-to, for everything).
    #[arg(long, default_value = "2m", value_name = "DURATION", help_heading = PLAN_HEADING)]
    pub timeout: String,

    #[command(flatten)]
    pub lock: super::lock::LockArgs,

    /// With --apply-to and --dry-run or --plan-out: exit 10 when there are changes to make.
    #[arg(long = "detailed-exitcode", help_heading = PLAN_HEADING)]
    pub detailed_exitcode: bool,

    /// With --apply-to: save the plan to FILE (JSON, no token or kubeconfig) and stop;
    /// `asm apply FILE` applies exactly it, reading the token again.
    #[arg(long = "plan-out", value_name = "FILE", help_heading = PLAN_HEADING)]
    pub plan_out: Option<PathBuf>,

    /// With --apply-to: write the plan, the run report and a log into DIR (no secrets).
    #[arg(short = 'D', long = "output-dir", value_name = "DIR", help_heading = PLAN_HEADING)]
    pub output_dir: Option<PathBuf>,
}
