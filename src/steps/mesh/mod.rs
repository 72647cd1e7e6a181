//! Endpoint discovery among clusters (`create-mesh`, `create-remote-secret --apply-to`),
//! along the same flow as install: [`spec`] (validated input) → [`observe`] (members and
//! what they hold) → planning (pure, in [`crate::steps::remote_secret`]) → [`execute`]
//! (the executor of secret plans) → [`verify`] (`--verify`).

pub mod execute;
pub mod observe;
pub mod saved;
pub mod spec;
pub mod verify;
