//! `asm apply FILE`: apply a plan saved by `asm install --plan-out FILE`, exactly.

use std::path::PathBuf;

use clap::Args;

use super::install::{OutputArg, parse_output};

/// `asm apply`.
#[derive(Debug, Args, Clone)]
pub struct ApplyArgs {
    /// The saved plan (`asm install --managed … --plan-out FILE`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Apply without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Report format: `text` or `json` (one object on stdout).
    #[arg(short = 'o', long = "output", value_parser = parse_output, default_value = "text", value_name = "FORMAT")]
    pub output: OutputArg,

    /// How long to wait for the control plane (default: the saved plan's --timeout).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Write the plan, every manifest applied and a log into DIR.
    #[arg(
        short = 'D',
        long = "output-dir",
        alias = "output_dir",
        value_name = "DIR"
    )]
    pub output_dir: Option<PathBuf>,

    /// Read the Google access token from this file instead of the default credentials.
    #[arg(long, value_name = "FILE")]
    pub access_token_file: Option<PathBuf>,

    /// Authenticate as the service account of this JSON key file.
    #[arg(
        short = 'k',
        long = "key-file",
        value_name = "FILE",
        alias = "key_file"
    )]
    pub key_file: Option<PathBuf>,

    /// The service account the --key-file must belong to.
    #[arg(
        short = 's',
        long = "service-account",
        value_name = "EMAIL",
        alias = "service_account",
        requires = "key_file"
    )]
    pub service_account: Option<String>,
}

impl ApplyArgs {
    /// The credential flags, for [`crate::gcp::auth::CredentialChain`].
    pub fn credential_options(&self) -> crate::gcp::auth::CredentialOptions {
        crate::gcp::auth::CredentialOptions {
            access_token_file: self.access_token_file.clone(),
            key_file: self.key_file.clone(),
            service_account: self.service_account.clone(),
        }
    }
}
