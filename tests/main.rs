//! The one integration-test crate: the real binary, gcloud and kubectl against asm-sim.

mod support;

mod clients;
mod compat;
mod confirm;
mod create_mesh;
mod credentials;
mod enable_dataplane;
mod gcloud_fidelity;
mod golden_replay;
mod install;
mod install_gateway;
mod kubectl_create;
mod kubectl_fidelity;
mod kubectl_services_rbac;
mod kubectl_workloads;
mod output_dir;
mod plan_executors;
mod remote_secret;
mod runner_contract;
mod sandbox_cli;
mod sandbox_dataplane;
mod saved_plan;
mod trust;
mod validate;
mod verbose;
