//! The one integration-test crate: the real binary, gcloud and kubectl against asm-sim.

mod support;

mod clients;
mod gcloud_fidelity;
mod golden_replay;
mod kubectl_fidelity;
mod sandbox_cli;
