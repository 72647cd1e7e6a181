//! What the Google and the Kubernetes clients share, so neither depends on the other: the
//! bearer access token and where fresh ones come from, the `-v` request-trace callback and
//! the progress callback of waits.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

use crate::error::Error;

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

/// Fetches a current access token (refreshing it when it is about to expire).
pub trait TokenProvider: Send + Sync + fmt::Debug {
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, Error>>;
}

/// Where a client takes its bearer token from before each request: a token used as is, or
/// a [`TokenProvider`] that hands out a fresh one when the last is about to expire.
#[derive(Clone, Debug)]
pub struct BearerSource {
    fixed: AccessToken,
    provider: Option<Arc<dyn TokenProvider>>,
}

impl BearerSource {
    /// Always `token` (tokens from files, the environment, gcloud).
    pub fn fixed(token: AccessToken) -> Self {
        BearerSource {
            fixed: token,
            provider: None,
        }
    }

    /// `provider`'s current token; `first` is the one fetched when the credentials were
    /// resolved.
    pub fn refreshing(first: AccessToken, provider: Arc<dyn TokenProvider>) -> Self {
        BearerSource {
            fixed: first,
            provider: Some(provider),
        }
    }

    /// The provider of fresh tokens, if the token refreshes.
    pub fn provider(&self) -> Option<&Arc<dyn TokenProvider>> {
        self.provider.as_ref()
    }

    /// The token resolved first (for a client that cannot refresh).
    pub fn first(&self) -> &AccessToken {
        &self.fixed
    }

    /// The token to send now.
    pub async fn current(&self) -> Result<AccessToken, Error> {
        match &self.provider {
            Some(p) => p.token().await,
            None => Ok(self.fixed.clone()),
        }
    }
}

/// One finished HTTP attempt, for `-v` traces. Never holds headers or bodies.
#[derive(Debug, Clone)]
pub struct RequestTrace {
    pub method: String,
    pub url: String,
    /// HTTP status, `None` when the connection failed.
    pub status: Option<u16>,
    pub duration: Duration,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Transport error text when `status` is `None`.
    pub error: Option<String>,
}

impl fmt::Display for RequestTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.method, self.url)?;
        match (self.status, &self.error) {
            (Some(s), _) => write!(f, "{s}")?,
            (None, Some(e)) => write!(f, "failed ({e})")?,
            (None, None) => write!(f, "failed")?,
        }
        write!(f, " {}ms", self.duration.as_millis())?;
        if self.attempt > 1 {
            write!(f, " (attempt {})", self.attempt)?;
        }
        Ok(())
    }
}

/// Callback receiving every [`RequestTrace`] (e.g. `printer.detail(&trace.to_string())`).
pub type TraceFn = Arc<dyn Fn(&RequestTrace) + Send + Sync>;

/// Progress callback: one line describing what is being waited for.
pub type ProgressFn = dyn Fn(&str) + Send + Sync;
