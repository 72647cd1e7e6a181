//! One module per command: turn validated input into effects through the Printer.

pub mod apply;
pub mod completions;
pub mod create_mesh;
pub mod create_remote_secret;
pub mod enable_dataplane;
pub mod google;
pub mod install;
pub mod install_gateway;
pub mod man;
pub mod migrate;
pub mod migrate_finish;
pub mod rollback;
pub mod sandbox;
pub mod secret_plan;
pub mod status;
pub mod validate;

/// Converts any error into an [`Error`](crate::error::Error), keeping the codes of errors
/// that already have one (the clients' own error types convert themselves). It lives here,
/// above the clients, so `error` depends on neither of them.
pub fn classify(err: anyhow::Error) -> crate::error::Error {
    let err = match err.downcast::<crate::error::Error>() {
        Ok(e) => return e,
        Err(other) => other,
    };
    let err = match err.downcast::<crate::gcp::http::GcpError>() {
        Ok(e) => return e.into(),
        Err(other) => other,
    };
    match err.downcast::<crate::kube::KubeError>() {
        Ok(e) => e.into(),
        Err(other) => crate::error::Error::internal(&other),
    }
}
