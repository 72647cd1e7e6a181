//! The one integration-test crate: the real binary, gcloud and kubectl against asm-sim.

mod support;

mod clients;
mod credentials;
mod create_mesh;
mod gcloud_fidelity;
mod golden_replay;
mod install;
mod kubectl_fidelity;
mod remote_secret;
mod sandbox_cli;
mod validate;
