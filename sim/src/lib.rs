//! asm-sim: a simulator of the Google Cloud APIs (GKE, GKE Hub, Service Usage, Resource
//! Manager) and of Kubernetes API servers, served on loopback.
//!
//! It exists so that asm can be run and tested with no cloud account; it is also the user
//! feature `asm sandbox`. Its worth is its fidelity: the real `gcloud` and `kubectl` must
//! accept it. Where it and the real services differ, it is wrong.

pub mod config;
pub mod faults;
pub mod google;
pub mod http;
pub mod kube;
pub mod member;
pub mod request_log;
pub mod revisions;
pub mod sandbox;
pub mod scenario;
pub mod tls;
pub mod tokens;

pub use config::{Fault, FaultKind, SimConfig, Timing};
pub use sandbox::Sandbox;
pub use scenario::Scenario;
