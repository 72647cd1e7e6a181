//! Access tokens of a service-account key through its OAuth 2.0 token endpoint (the key's
//! `token_uri`): a JWT signed with the key is exchanged for an access token (the RFC 7523
//! `jwt-bearer` grant, as gcloud and Google's other client libraries do for keys,
//! https://developers.google.com/identity/protocols/oauth2/service-account#httprest). The
//! answer says how long the token lives (`expires_in`); [`KeyTokenProvider`] hands out the
//! cached one until it is close to expiry and then exchanges a new assertion, so neither the
//! Google clients nor the Kubernetes clients of GKE clusters keep a token past its life.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use futures::future::BoxFuture;
use rustls::SignatureScheme;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::SigningKey;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::error::Error;
use crate::transport::{AccessToken, TokenProvider};

/// How long the signed assertion is valid (Google accepts at most an hour).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);
/// The longest a token is refreshed before its expiry.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// How long one exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// When a token obtained at `obtained` and living `lifetime` should be replaced: a quarter
/// of its life before expiry, at most five minutes before (a one-hour token is refreshed
/// after 55 minutes, a two-second one after 1.5 s).
pub fn refresh_at(obtained: Instant, lifetime: Duration) -> Instant {
    let margin = (lifetime / 4).min(MAX_REFRESH_MARGIN);
    obtained + lifetime.saturating_sub(margin)
}

/// Whether `uri` may receive a signed assertion: `https://`, or `http://` to a loopback
/// host only (a local emulator), so the assertion never crosses a network in clear text.
pub fn token_uri_allowed(uri: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(uri) else {
        return false;
    };
    match url.scheme() {
        "https" => true,
        "http" => {
            let host = url
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']');
            host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

/// The PKCS#8 DER inside a `-----BEGIN PRIVATE KEY-----` PEM.
fn pkcs8_der(pem: &str) -> Option<Vec<u8>> {
    let mut body = String::new();
    let mut inside = false;
    for line in pem.lines() {
        let line = line.trim();
        if line == "-----BEGIN PRIVATE KEY-----" {
            inside = true;
        } else if line == "-----END PRIVATE KEY-----" {
            break;
        } else if inside {
            body.push_str(line);
        }
    }
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .ok()
        .filter(|d| !d.is_empty())
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A service-account key able to sign `jwt-bearer` assertions.
struct SigningAccount {
    email: String,
    key_id: String,
    key: Arc<dyn SigningKey>,
    token_uri: String,
    scope: String,
}

impl SigningAccount {
    /// The RS256 assertion for the token endpoint, valid from `now`.
    fn assertion(&self, now: SystemTime) -> Result<SecretString, String> {
        let iat = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the system clock is before 1970".to_string())?
            .as_secs();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.key_id});
        let claims = json!({
            "iss": self.email,
            "sub": self.email,
            "scope": self.scope,
            "aud": self.token_uri,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME.as_secs(),
        });
        let signed = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signer = self
            .key
            .choose_scheme(&[SignatureScheme::RSA_PKCS1_SHA256])
            .ok_or("the key cannot sign RS256")?;
        let sig = signer
            .sign(signed.as_bytes())
            .map_err(|_| "signing the assertion failed".to_string())?;
        Ok(SecretString::from(format!("{signed}.{}", b64url(&sig))))
    }
}

/// A token and when to replace it.
struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

/// Access tokens of a service-account key from its token endpoint, cached until close to
/// expiry (see the module docs).
pub struct KeyTokenProvider {
    account: SigningAccount,
    http: reqwest::Client,
    /// Held across an exchange, so concurrent requests wait for one exchange.
    cache: tokio::sync::Mutex<Option<Cached>>,
    /// What to call the source in errors (`--key-file PATH`).
    source: String,
}

impl fmt::Debug for KeyTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyTokenProvider({}, {})",
            self.source, self.account.email
        )
    }
}

impl KeyTokenProvider {
    /// A provider for the key file `json` (already checked to be a service-account key);
    /// `source` names it in errors. The `token_uri` must pass [`token_uri_allowed`].
    pub fn new(json: &Value, scope: &str, source: String) -> Result<Self, String> {
        let field = |name: &str| {
            json.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("has no \"{name}\" field"))
        };
        let token_uri = field("token_uri")?;
        if !token_uri_allowed(token_uri) {
            return Err(format!(
                "has a token_uri that is neither https nor a loopback http address ({token_uri})"
            ));
        }
        let der = pkcs8_der(field("private_key")?)
            .ok_or("has a private_key that is not a PKCS#8 PEM key")?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der));
        let key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key_der)
            .map_err(|_| "has a private_key that is not a usable RSA key".to_string())?;
        let http = reqwest::Client::builder()
            .timeout(EXCHANGE_TIMEOUT)
            .user_agent(concat!("asm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(KeyTokenProvider {
            account: SigningAccount {
                email: field("client_email")?.to_string(),
                key_id: field("private_key_id")?.to_string(),
                key,
                token_uri: token_uri.to_string(),
                scope: scope.to_string(),
            },
            http,
            cache: tokio::sync::Mutex::new(None),
            source,
        })
    }

    fn error(&self, why: impl fmt::Display) -> Error {
        Error::apply(
            "ASM-E407",
            format!("cannot get an access token for {}: {why}", self.source),
        )
        .with_hint("check the key file (it may have been deleted or disabled) and the network")
    }

    /// One exchange: assertion → `(access token, lifetime)`.
    async fn exchange(&self) -> Result<(AccessToken, Duration), Error> {
        let assertion = self
            .account
            .assertion(SystemTime::now())
            .map_err(|e| self.error(e))?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.expose_secret()),
        ];
        let resp = self
            .http
            .post(&self.account.token_uri)
            .form(&form)
            .send()
            .await
            .map_err(|e| self.error(format!("the token endpoint did not answer ({e})")))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            // OAuth errors carry a code and a description, never the assertion.
            let code = body.get("error").and_then(Value::as_str).unwrap_or("error");
            let text = body
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Err(self.error(format!(
                "the token endpoint answered {} ({code}: {text})",
                status.as_u16()
            )));
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.error("the token endpoint's answer has no access_token"))?;
        // Google's answer always says; an hour is what it gives when it does not.
        let lifetime = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .map_or(ASSERTION_LIFETIME, Duration::from_secs);
        Ok((AccessToken::new(token), lifetime))
    }

    /// The cached token while it is fresh, else a new one.
    pub async fn current(&self) -> Result<AccessToken, Error> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let obtained = Instant::now();
        let (token, lifetime) = self.exchange().await?;
        tracing::debug!(target: "asm::gcp::auth", "access token of {} obtained, valid {}s", self.account.email, lifetime.as_secs());
        *cache = Some(Cached {
            token: token.clone(),
            refresh_at: refresh_at(obtained, lifetime),
        });
        Ok(token)
    }

    /// Drops the cached token when it is `refused`; a later [`KeyTokenProvider::current`]
    /// exchanges a new assertion. When the cache already holds another token (a concurrent
    /// request replaced it), that one stays.
    pub async fn forget_token(&self, refused: &AccessToken) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| c.token.same_as(refused)) {
            tracing::debug!(target: "asm::gcp::auth", "the access token of {} was refused; a new one will be obtained", self.account.email);
            *cache = None;
        }
    }
}

impl TokenProvider for KeyTokenProvider {
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, Error>> {
        Box::pin(self.current())
    }

    /// The key can always sign a new assertion, so a refused token can be replaced.
    fn forget<'a>(&'a self, refused: &'a AccessToken) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            self.forget_token(refused).await;
            true
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn refresh_comes_before_expiry_with_a_bounded_margin() {
        let t0 = Instant::now();
        assert_eq!(
            refresh_at(t0, Duration::from_secs(3600)),
            t0 + Duration::from_secs(3300)
        );
        assert_eq!(
            refresh_at(t0, Duration::from_secs(2)),
            t0 + Duration::from_millis(1500)
        );
        assert_eq!(refresh_at(t0, Duration::ZERO), t0);
    }

    #[test]
    fn assertions_go_to_https_or_loopback_only() {
        assert!(token_uri_allowed("https://oauth2.googleapis.com/token"));
        assert!(token_uri_allowed("http://127.0.0.1:8089/oauth2/token"));
        assert!(token_uri_allowed("http://[::1]:8089/oauth2/token"));
        assert!(token_uri_allowed("http://localhost/oauth2/token"));
        assert!(!token_uri_allowed("http://oauth2.googleapis.com/token"));
        assert!(!token_uri_allowed("http://10.0.0.1/token"));
        assert!(!token_uri_allowed("ftp://127.0.0.1/token"));
        assert!(!token_uri_allowed("not a url"));
    }

    fn provider() -> KeyTokenProvider {
        let email = "sa@p.iam.gserviceaccount.com";
        let key = asm_sim::tokens::TokenRegistry::new()
            .generate_key("k1", email)
            .unwrap();
        let json = json!({
            "type": "service_account",
            "client_email": email,
            "private_key_id": key.id,
            "private_key": key.private_key_pem,
            "token_uri": "http://127.0.0.1:9/token",
        });
        KeyTokenProvider::new(&json, "s", "--key-file k.json".into()).unwrap()
    }

    async fn cache(p: &KeyTokenProvider, token: &str) {
        *p.cache.lock().await = Some(Cached {
            token: AccessToken::new(token),
            refresh_at: Instant::now() + Duration::from_secs(60),
        });
    }

    #[tokio::test]
    async fn a_refused_token_is_dropped_from_the_cache_and_can_be_replaced() {
        let p = provider();
        cache(&p, "ya29.a").await;
        assert_eq!(p.current().await.unwrap().expose(), "ya29.a");
        assert!(p.forget(&AccessToken::new("ya29.a")).await);
        assert!(p.cache.lock().await.is_none());
    }

    #[tokio::test]
    async fn forgetting_an_older_token_keeps_the_newer_one() {
        let p = provider();
        cache(&p, "ya29.b").await;
        assert!(p.forget(&AccessToken::new("ya29.a")).await);
        assert_eq!(p.current().await.unwrap().expose(), "ya29.b");
    }

    #[test]
    fn pem_body_is_decoded() {
        let pem = "-----BEGIN PRIVATE KEY-----\nAAEC\nAwQ=\n-----END PRIVATE KEY-----\n";
        assert_eq!(pkcs8_der(pem).unwrap(), vec![0, 1, 2, 3, 4]);
        assert!(pkcs8_der("no key").is_none());
    }
}
