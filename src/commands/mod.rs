//! One module per command: turn validated input into effects through the Printer.

pub mod install;
pub mod sandbox;
pub mod validate;
