//! Google credentials: where the access token comes from, kept in memory only.
//!
//! Today: an explicit `--access-token-file`, then `CLOUDSDK_AUTH_ACCESS_TOKEN_FILE`, then
//! `CLOUDSDK_AUTH_ACCESS_TOKEN` (both as gcloud reads them). Service-account keys,
//! Application Default Credentials and the gcloud fallback (DESIGN §4) slot in as further
//! [`TokenSource`] variants resolved by [`resolve_credentials`].

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::environment::Environment;
use crate::error::{Error, exit};

/// Environment variable gcloud reads an access-token file path from.
pub const TOKEN_FILE_VAR: &str = "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE";
/// Environment variable gcloud reads a literal access token from.
pub const TOKEN_VAR: &str = "CLOUDSDK_AUTH_ACCESS_TOKEN";

/// An OAuth2 access token. Never printed: `Debug` shows `[REDACTED]`, there is no `Display`.
#[derive(Clone)]
pub struct AccessToken(SecretString);

impl AccessToken {
    /// Wraps a token (surrounding whitespace is trimmed).
    pub fn new(token: impl Into<String>) -> Self {
        let token: String = token.into();
        AccessToken(SecretString::from(token.trim().to_string()))
    }

    /// The token text, for an `Authorization` header only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The token as a [`SecretString`] (e.g. for kube's `AuthInfo::token`).
    pub fn secret(&self) -> SecretString {
        self.0.clone()
    }

    /// Whether the token is empty.
    pub fn is_empty(&self) -> bool {
        self.0.expose_secret().is_empty()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

/// Where the credentials came from. Printable (plans, `-v`); never contains the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `--access-token-file PATH`.
    FlagFile(PathBuf),
    /// `CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=PATH`.
    EnvFile(PathBuf),
    /// `CLOUDSDK_AUTH_ACCESS_TOKEN` (literal token in the environment).
    EnvToken,
    /// A token handed over in-process (tests, the sandbox).
    Static,
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::FlagFile(p) => write!(f, "--access-token-file {}", p.display()),
            TokenSource::EnvFile(p) => write!(f, "{TOKEN_FILE_VAR}={}", p.display()),
            TokenSource::EnvToken => write!(f, "{TOKEN_VAR}"),
            TokenSource::Static => f.write_str("static token"),
        }
    }
}

/// A token together with where it came from.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub token: AccessToken,
    pub source: TokenSource,
}

impl Credentials {
    /// Credentials from an in-process token.
    pub fn fixed(token: AccessToken) -> Self {
        Credentials {
            token,
            source: TokenSource::Static,
        }
    }
}

/// Resolves credentials: `explicit_file` (the `--access-token-file` flag) first, then the
/// gcloud environment variables. No source at all → `ASM-E403` (exit 2).
pub async fn resolve_credentials(
    env: &Environment,
    explicit_file: Option<&Path>,
) -> Result<Credentials, Error> {
    if let Some(path) = explicit_file {
        return read_token_file(TokenSource::FlagFile(path.to_path_buf())).await;
    }
    if let Some(path) = env.var(TOKEN_FILE_VAR) {
        return read_token_file(TokenSource::EnvFile(PathBuf::from(path))).await;
    }
    if let Some(token) = env.var(TOKEN_VAR) {
        let token = AccessToken::new(token);
        if !token.is_empty() {
            return Ok(Credentials {
                token,
                source: TokenSource::EnvToken,
            });
        }
    }
    Err(Error::usage("ASM-E403", "no Google credentials found").with_hint(format!(
        "pass --access-token-file FILE or set {TOKEN_FILE_VAR} (e.g. `gcloud auth print-access-token > FILE`)"
    )))
}

/// Reads a token file named by `source` (a file-based [`TokenSource`]). Trailing whitespace
/// is trimmed; an unreadable file is `ASM-E402`, an empty one `ASM-E401` (both exit 2).
pub async fn read_token_file(source: TokenSource) -> Result<Credentials, Error> {
    let path = match &source {
        TokenSource::FlagFile(p) | TokenSource::EnvFile(p) => p.clone(),
        other => {
            return Err(Error::usage(
                "ASM-E402",
                format!("{other} is not a token file"),
            ));
        }
    };
    let text = tokio::fs::read_to_string(&path).await.map_err(|e| {
        Error::usage(
            "ASM-E402",
            format!("cannot read access token file {}: {e}", path.display()),
        )
        .with_hint(format!("token source: {source}"))
    })?;
    let token = parse_token_text(&text).ok_or_else(|| {
        Error::new(
            "ASM-E401",
            exit::USAGE,
            format!("access token file {} is empty", path.display()),
        )
        .with_hint("write a token into it, e.g. `gcloud auth print-access-token > FILE`")
    })?;
    Ok(Credentials { token, source })
}

/// The token in a token file's text: trimmed, `None` when empty.
pub fn parse_token_text(text: &str) -> Option<AccessToken> {
    let t = text.trim();
    (!t.is_empty()).then(|| AccessToken::new(t))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let t = AccessToken::new("ya29.secret\n");
        assert_eq!(format!("{t:?}"), "AccessToken([REDACTED])");
        assert_eq!(t.expose(), "ya29.secret");
        let c = Credentials::fixed(t);
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn token_text() {
        assert!(parse_token_text("  \n").is_none());
        assert_eq!(
            parse_token_text("abc\n").map(|t| t.expose().to_string()),
            Some("abc".into())
        );
    }

    #[tokio::test]
    async fn resolve_order_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("tok");
        std::fs::write(&good, "tok-1\n").unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();

        let env =
            Environment::with_vars([(TOKEN_FILE_VAR.to_string(), good.display().to_string())]);
        let c = resolve_credentials(&env, None).await.unwrap();
        assert_eq!(c.token.expose(), "tok-1");
        assert_eq!(c.source, TokenSource::EnvFile(good.clone()));

        let err = resolve_credentials(&env, Some(&empty)).await.unwrap_err();
        assert_eq!(err.code, "ASM-E401");
        assert_eq!(err.exit_code, exit::USAGE);
        assert!(err.message.contains("empty"), "{}", err.message);

        let err = resolve_credentials(&Environment::default(), None)
            .await
            .unwrap_err();
        assert_eq!(err.code, "ASM-E403");

        let err = resolve_credentials(&env, Some(&dir.path().join("nope")))
            .await
            .unwrap_err();
        assert_eq!(err.code, "ASM-E402");
    }
}
