//! Errors with a stable code, an optional hint and the exit code they map to.
//!
//! Expected failures (bad input, a failed precheck, a timeout, an API refusal) are
//! [`Error`]s with a code users can search for. Anything else is a bug and surfaces as
//! `ASM-E999` with its context chain.

use std::fmt;

/// Exit codes, documented in the README and pinned by tests.
pub mod exit {
    /// Success.
    pub const SUCCESS: i32 = 0;
    /// Failed while applying changes.
    pub const APPLY_FAILED: i32 = 1;
    /// Invalid usage or input; nothing was sent.
    pub const USAGE: i32 = 2;
    /// Prechecks failed (something blocks that the plan cannot fix).
    pub const PRECHECK_FAILED: i32 = 3;
    /// Timed out waiting for a condition.
    pub const TIMEOUT: i32 = 4;
    /// Cancelled by the user.
    pub const CANCELLED: i32 = 5;
    /// Another asm run holds a targeted cluster's lock (nothing was changed).
    pub const LOCKED: i32 = 6;
    /// `--detailed-exitcode`: a dry run with changes to make.
    pub const CHANGES_PENDING: i32 = 10;
}

/// An expected failure, shown to the user as `error[CODE]: message` plus a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Stable code, e.g. `ASM-E101`.
    pub code: &'static str,
    pub message: String,
    pub hint: Option<String>,
    /// Process exit code (see [`exit`]).
    pub exit_code: i32,
}

impl Error {
    pub fn new(code: &'static str, exit_code: i32, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            hint: None,
            exit_code,
        }
    }

    /// Invalid usage or input (exit 2). `code` names the rule broken.
    pub fn usage(code: &'static str, message: impl Into<String>) -> Self {
        Error::new(code, exit::USAGE, message)
    }

    /// Failure while applying (exit 1).
    pub fn apply(code: &'static str, message: impl Into<String>) -> Self {
        Error::new(code, exit::APPLY_FAILED, message)
    }

    /// Adds a hint (builder style).
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Wraps an unexpected error: a bug or an environment failure asm has no code for.
    pub fn internal(err: &anyhow::Error) -> Self {
        Error::new("ASM-E999", exit::APPLY_FAILED, format!("{err:#}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error[{}]: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// Result alias for command code.
pub type Result<T, E = anyhow::Error> = std::result::Result<T, E>;
