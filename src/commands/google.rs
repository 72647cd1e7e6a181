//! Google API clients for a command: the credential chain resolved (README "Credentials"; one progress
//! line names the source and principal, never the token), endpoints from the environment,
//! and `-v` request traces (method, URL, status, duration — never headers or bodies).

use std::sync::Arc;

use crate::environment::Environment;
use crate::error::Error;
use crate::gcp::auth::{CredentialOptions, resolve_chain};
use crate::gcp::{GcpClients, PollPolicy, RetryPolicy, TraceFn};
use crate::output::{Printer, Verbosity};

/// Clients authenticated by the first credential source of the chain that answers.
///
/// `ASM_RETRY_POLICY=fast` shortens retry backoffs and operation polls (tests, local
/// endpoints).
pub async fn google_clients(
    env: &Environment,
    creds: &CredentialOptions,
    printer: &Printer,
) -> Result<GcpClients, Error> {
    let (creds, chain) = resolve_chain(env, creds).await?;
    for ignored in &chain.ignored {
        printer.warning(&format!("ignoring {ignored}"));
    }
    printer.progress(&format!("Using credentials: {}", creds.describe()));
    let (retry, poll) = match env.var("ASM_RETRY_POLICY") {
        Some("fast") => (RetryPolicy::fast(), PollPolicy::fast()),
        _ => (RetryPolicy::standard(), PollPolicy::default()),
    };
    let gcp = GcpClients::from_credentials(env, &creds, retry)?.with_poll_policy(poll);
    match request_trace(printer) {
        Some(trace) => Ok(gcp.with_trace(trace)),
        None => Ok(gcp),
    }
}

/// With `-v`, the callback printing each request trace (Google and Kubernetes) as a detail
/// line; `None` otherwise.
pub fn request_trace(printer: &Printer) -> Option<TraceFn> {
    if printer.verbosity() >= Verbosity::Verbose {
        let p = printer.clone();
        Some(Arc::new(move |t| p.detail(&format!("  {t}"))))
    } else {
        None
    }
}
