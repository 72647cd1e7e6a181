//! The one integration-test crate: the real binary, gcloud and kubectl against asm-sim.

mod support;

mod clients;
mod compat;
mod confirm;
mod create_mesh;
mod credentials;
mod gcloud_fidelity;
mod golden_replay;
mod install;
mod kubectl_create;
mod kubectl_fidelity;
mod output_dir;
mod remote_secret;
mod sandbox_cli;
mod saved_plan;
mod validate;
mod verbose;
