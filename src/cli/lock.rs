//! `--lock-timeout`: how long a changing command waits for another asm run's cluster lock.

use clap::Args;

use super::PLAN_HEADING;

/// The cluster-lock flag of commands that change clusters.
#[derive(Debug, Args, Clone)]
pub struct LockArgs {
    /// How long to wait when another asm run holds a targeted cluster's lock (Lease
    /// kube-system/asm-lock), e.g. `2m`; `0s` stops at once, naming the holder (exit 6).
    #[arg(
        long = "lock-timeout",
        default_value = "0s",
        value_name = "DURATION",
        help_heading = PLAN_HEADING
    )]
    pub lock_timeout: String,
}

impl Default for LockArgs {
    /// The flag's default: do not wait.
    fn default() -> Self {
        LockArgs {
            lock_timeout: "0s".into(),
        }
    }
}
