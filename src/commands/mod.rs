//! One module per command: turn validated input into effects through the Printer.

pub mod sandbox;
