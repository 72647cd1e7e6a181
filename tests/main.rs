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
mod enable_dataplane;
mod fleet_scale;
mod gcloud_fidelity;
mod golden_replay;
mod iam_bindings;
mod install;
mod install_gateway;
mod kubectl_create;
mod kubectl_fidelity;
mod kubectl_services_rbac;
mod kubectl_workloads;
mod lock;
mod migrate;
mod migrate_finish;
mod migrate_seed;
#[cfg(not(feature = "sandbox"))]
mod no_sandbox;
mod output_dir;
mod plan_executors;
mod remote_secret;
mod rollback;
mod runner_contract;
#[cfg(feature = "sandbox")]
mod sandbox_cli;
mod sandbox_dataplane;
mod sandbox_scenarios;
mod saved_dataplane_plan;
mod saved_plan;
mod saved_secret_plan;
mod schemas;
mod status;
mod terminal;
mod token_refresh;
mod trust;
mod validate;
mod verbose;
