//! What the Google and the Kubernetes clients share, so neither depends on the other: the
//! bearer access token and where fresh ones come from, the `-v` request-trace callback and
//! the progress callback of waits.

use std::fmt;
use std::future::Future;
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

    /// Whether both hold the same token text.
    pub fn same_as(&self, other: &AccessToken) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

/// Fetches a current access token (refreshing it when it is about to expire).
pub trait TokenProvider: Send + Sync + fmt::Debug {
    /// The token to send now.
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, Error>>;

    /// A server refused `refused` (401): drop it if it is the token held, so that the next
    /// [`TokenProvider::token`] gets a new one. Whether a different token can now be had;
    /// `false` (the default) for a source that would hand out the same token again.
    fn forget<'a>(&'a self, refused: &'a AccessToken) -> BoxFuture<'a, bool> {
        let _ = refused;
        Box::pin(async { false })
    }
}

/// Sends a request with `provider`'s current token (`send`) and, when the answer says the
/// token was refused (`refused`, judged from the typed answer: an HTTP 401) and the provider
/// can replace it ([`TokenProvider::forget`]), sends it once more with a new token. A token
/// can be revoked, or expire early when clocks disagree, before the provider's own refresh;
/// one new token fixes that, a second refusal is the answer. This runs per attempt, below the
/// retry policy ([`crate::retry`]), which never repeats a 401 itself.
pub async fn with_one_new_token<T, E, F, Fut>(
    provider: &dyn TokenProvider,
    refused: impl Fn(&Result<T, E>) -> bool,
    mut send: F,
) -> Result<T, E>
where
    F: FnMut(AccessToken) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<Error>,
{
    let token = provider.token().await?;
    let answer = send(token.clone()).await;
    if !refused(&answer) || !provider.forget(&token).await {
        return answer;
    }
    tracing::debug!(target: "asm::auth", "the access token was refused (401); sending again with a new one");
    let token = provider.token().await?;
    send(token).await
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Hands out `t1`, `t2`, … ; a forgotten token is replaced by the next one.
    #[derive(Debug)]
    struct Counting {
        replaceable: bool,
        current: Mutex<u32>,
        forgotten: Mutex<Vec<String>>,
    }

    impl Counting {
        fn new(replaceable: bool) -> Self {
            Counting {
                replaceable,
                current: Mutex::new(1),
                forgotten: Mutex::new(Vec::new()),
            }
        }
    }

    impl TokenProvider for Counting {
        fn token(&self) -> BoxFuture<'_, Result<AccessToken, Error>> {
            let n = *self.current.lock().unwrap();
            Box::pin(async move { Ok(AccessToken::new(format!("t{n}"))) })
        }

        fn forget<'a>(&'a self, refused: &'a AccessToken) -> BoxFuture<'a, bool> {
            Box::pin(async move {
                if !self.replaceable {
                    return false;
                }
                self.forgotten
                    .lock()
                    .unwrap()
                    .push(refused.expose().to_string());
                *self.current.lock().unwrap() += 1;
                true
            })
        }
    }

    /// Sends with `provider`, the server accepting only `accepted`; the tokens sent.
    async fn send_accepting(
        provider: &Counting,
        accepted: &[&str],
    ) -> (Result<u16, Error>, Vec<String>) {
        let sent = Mutex::new(Vec::new());
        let answer = with_one_new_token(
            provider,
            |a: &Result<u16, Error>| matches!(a, Ok(401)),
            |token| {
                let ok = accepted.contains(&token.expose());
                sent.lock().unwrap().push(token.expose().to_string());
                async move { Ok(if ok { 200 } else { 401 }) }
            },
        )
        .await;
        (answer, sent.into_inner().unwrap())
    }

    #[tokio::test]
    async fn a_refused_replaceable_token_is_replaced_once_and_the_request_sent_again() {
        let p = Counting::new(true);
        let (answer, sent) = send_accepting(&p, &["t2"]).await;
        assert_eq!(answer.unwrap(), 200);
        assert_eq!(sent, ["t1", "t2"]);
        assert_eq!(*p.forgotten.lock().unwrap(), ["t1"]);
    }

    #[tokio::test]
    async fn a_second_refusal_is_the_answer() {
        let p = Counting::new(true);
        let (answer, sent) = send_accepting(&p, &[]).await;
        assert_eq!(answer.unwrap(), 401);
        assert_eq!(sent, ["t1", "t2"]);
    }

    #[tokio::test]
    async fn a_token_that_cannot_be_replaced_is_sent_once() {
        let p = Counting::new(false);
        let (answer, sent) = send_accepting(&p, &["t2"]).await;
        assert_eq!(answer.unwrap(), 401);
        assert_eq!(sent, ["t1"]);
    }

    #[tokio::test]
    async fn an_accepted_token_is_not_replaced() {
        let p = Counting::new(true);
        let (answer, sent) = send_accepting(&p, &["t1"]).await;
        assert_eq!(answer.unwrap(), 200);
        assert_eq!(sent, ["t1"]);
        assert!(p.forgotten.lock().unwrap().is_empty());
    }
}
