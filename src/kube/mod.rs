//! Kubernetes glue on kube-rs (ARCHITECTURE.md, "Talking to Kubernetes"): a client per
//! cluster (from a GKE cluster's endpoint or a kubeconfig), server-side apply with field
//! manager `asm`, label/annotation changes, rollout restarts, deletes with preconditions and
//! watch-based waits. Mutations return the prior state they replaced
//! ([`crate::plan::record::Prior`]) for the run report.
//!
//! Errors are [`KubeError`]; callers test them (`is_not_found()`, `is_conflict()`) and
//! convert the rest with `Error::from` into a coded [`crate::error::Error`].

pub mod apply;
pub mod client;
pub mod delete;
pub mod metadata;
pub mod remote_kubeconfig;
pub mod rollout;
pub mod template;
pub mod trace;
pub mod wait;

use std::fmt;
use std::time::Duration;

use crate::error::{Error, exit};

pub use apply::{ApplyOptions, FIELD_MANAGER, diff_needed};
pub use client::{ClusterEndpoint, KubeContext, client_for_gke, client_from_kubeconfig};
pub use wait::{wait_condition, wait_crd_established};

/// Everything a Kubernetes call made by asm can fail with.
#[derive(Debug)]
pub enum KubeError {
    /// The API server answered with a failure `Status`.
    Api {
        /// What was being done, e.g. `apply ConfigMap istio-system/asm-options`.
        what: String,
        status: Box<::kube::core::Status>,
    },
    /// Transport, TLS, auth plugin, decoding: anything without an API status.
    Client { what: String, message: String },
    /// A manifest or configuration asm was given is unusable.
    Invalid { message: String },
    /// A wait exceeded its deadline.
    Timeout { what: String, after: Duration },
}

impl KubeError {
    /// Wraps a kube-rs error with what was being done.
    pub fn from_kube(what: impl Into<String>, err: ::kube::Error) -> Self {
        let what = what.into();
        match err {
            ::kube::Error::Api(status) => KubeError::Api { what, status },
            other => KubeError::Client {
                what,
                message: error_chain(&other),
            },
        }
    }

    /// The API status, if the server answered.
    pub fn status(&self) -> Option<&::kube::core::Status> {
        match self {
            KubeError::Api { status, .. } => Some(status),
            _ => None,
        }
    }

    /// 404 NotFound.
    pub fn is_not_found(&self) -> bool {
        self.status().is_some_and(|s| s.is_not_found())
    }

    /// 409 Conflict (including server-side apply field-manager conflicts).
    pub fn is_conflict(&self) -> bool {
        self.status().is_some_and(|s| s.is_conflict())
    }

    /// 409 AlreadyExists.
    pub fn is_already_exists(&self) -> bool {
        self.status().is_some_and(|s| s.is_already_exists())
    }

    /// 403 Forbidden.
    pub fn is_forbidden(&self) -> bool {
        self.status().is_some_and(|s| s.is_forbidden())
    }

    /// The coded error for the user.
    pub fn to_error(&self) -> Error {
        match self {
            KubeError::Api { what, status } => {
                let message = format!(
                    "{what}: {} {}: {}",
                    status.code, status.reason, status.message
                );
                if status.is_forbidden() {
                    Error::apply("ASM-E452", message)
                        .with_hint("the Kubernetes user lacks an RBAC permission (asm needs cluster-admin)")
                } else if status.is_conflict() && status.reason == "Conflict" {
                    Error::apply("ASM-E453", message).with_hint(
                        "another field manager owns these fields; re-run with --force-conflicts to take them over",
                    )
                } else if status.code == 401 {
                    Error::apply("ASM-E456", message)
                        .with_hint("the cluster rejected the credentials; refresh the access token")
                } else {
                    Error::apply("ASM-E451", message)
                }
            }
            KubeError::Client { what, message } => Error::apply(
                "ASM-E450",
                format!("{what}: {message}"),
            )
            .with_hint("check that the cluster's API server is reachable (network, private endpoint, credentials)"),
            KubeError::Invalid { message } => Error::apply("ASM-E454", message.clone()),
            KubeError::Timeout { what, after } => Error::new(
                "ASM-E455",
                exit::TIMEOUT,
                format!("timed out after {}s waiting for {what}", after.as_secs()),
            )
            .with_hint("re-run asm to keep waiting; nothing is rolled back"),
        }
    }
}

impl fmt::Display for KubeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_error().message)
    }
}

impl std::error::Error for KubeError {}

impl From<KubeError> for Error {
    fn from(e: KubeError) -> Error {
        e.to_error()
    }
}

/// Result of a Kubernetes call.
pub type KubeResult<T> = Result<T, KubeError>;

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
