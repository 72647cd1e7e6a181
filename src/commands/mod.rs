//! One module per command: turn validated input into effects through the Printer.

pub mod apply;
pub mod completions;
pub mod confirm;
pub mod create_mesh;
pub mod create_remote_secret;
pub mod google;
pub mod install;
pub mod man;
pub mod sandbox;
pub mod validate;
