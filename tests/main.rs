//! The one integration-test crate: the real binary, gcloud and kubectl against asm-sim.

mod support;

mod cli_docs;
mod clients;
mod compat;
mod confirm;
mod create_mesh;
mod credentials;
// Run the README and the CI recipes, which start sandboxes with `asm sandbox serve`.
#[cfg(feature = "sandbox")]
mod docs;
mod gcloud_fidelity;
mod golden_replay;
mod install;
mod kubectl_fidelity;
#[cfg(not(feature = "sandbox"))]
mod no_sandbox;
mod output_dir;
mod remote_secret;
#[cfg(feature = "sandbox")]
mod sandbox_cli;
mod saved_plan;
mod validate;
mod verbose;
