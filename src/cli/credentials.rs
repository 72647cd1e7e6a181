//! Credential flags shared by every command that calls Google (README "Credentials").

use std::path::PathBuf;

use clap::Args;

use super::CREDENTIALS_HEADING;
use crate::gcp::auth::CredentialOptions;

/// Which Google credentials to use; without any, the chain tries Application Default
/// Credentials, then `gcloud auth print-access-token`.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = CREDENTIALS_HEADING)]
pub struct CredentialArgs {
    /// Read the Google access token from this file instead of the default credentials.
    #[arg(long, value_name = "FILE")]
    pub access_token_file: Option<PathBuf>,

    /// Authenticate as the service account of this JSON key file (read by asm; the gcloud
    /// configuration is not changed).
    #[arg(
        short = 'k',
        long = "key-file",
        value_name = "FILE",
        alias = "key_file"
    )]
    pub key_file: Option<PathBuf>,

    /// The service account the --key-file must belong to (checked against its client_email).
    #[arg(
        short = 's',
        long = "service-account",
        value_name = "EMAIL",
        alias = "service_account",
        requires = "key_file"
    )]
    pub service_account: Option<String>,
}

impl CredentialArgs {
    /// The flags as [`crate::gcp::auth::CredentialChain`] takes them.
    pub fn options(&self) -> CredentialOptions {
        CredentialOptions {
            access_token_file: self.access_token_file.clone(),
            key_file: self.key_file.clone(),
            service_account: self.service_account.clone(),
        }
    }
}
