//! Who a Google bearer token stands for, shared by the Google side and every Kubernetes API
//! server of a sandbox (GKE accepts Google OAuth tokens as cluster credentials).
//!
//! Two kinds of token are accepted, as Google's front end accepts them:
//! - opaque access tokens the sandbox issued (the `access-token` file, and tokens the
//!   simulated OAuth token endpoint mints), each mapped to a principal; minted ones expire
//!   after an hour, or after `--set token.ttl_s=N` (then 401, as Google answers an expired
//!   token);
//! - self-signed JWTs (`alg: RS256`, `kid` = a registered key id, `iss` = `sub` = the
//!   service account's email, an `exp` in the future and a `scope` or `aud`), which is what
//!   the official client libraries send for a service-account key. The signature is checked
//!   with the registered public key.
//!
//! Any accepted token can be revoked ([`TokenRegistry::revoke`], the `expire` fault): from
//! then on it is refused as an expired one is. A client holding a service-account key mints
//! a new token; the sandbox's own token file cannot be renewed, so revoking that token locks
//! its users out for the rest of the sandbox's life.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine as _;
use serde_json::Value;

/// A Google principal as IAM writes it: `user:EMAIL` or `serviceAccount:EMAIL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(pub String);

impl Principal {
    /// `serviceAccount:EMAIL`.
    pub fn service_account(email: &str) -> Principal {
        Principal(format!("serviceAccount:{email}"))
    }

    /// `user:EMAIL`.
    pub fn user(email: &str) -> Principal {
        Principal(format!("user:{email}"))
    }

    /// The email part.
    pub fn email(&self) -> &str {
        self.0.split_once(':').map_or(self.0.as_str(), |(_, e)| e)
    }
}

#[derive(Debug, Clone)]
struct RegisteredKey {
    email: String,
    /// PKCS#1 `RSAPublicKey` DER.
    public_key: Vec<u8>,
}

/// An opaque access token: whom it stands for and, for tokens the token endpoint minted,
/// when it stops being accepted.
#[derive(Debug, Clone)]
struct Issued {
    principal: Principal,
    expires: Option<Instant>,
}

#[derive(Debug, Default)]
struct Inner {
    tokens: HashMap<String, Issued>,
    keys: HashMap<String, RegisteredKey>,
    /// Revoked self-signed JWTs (a revoked opaque token is marked expired instead).
    revoked_jwts: HashSet<String>,
    /// Lifetime of the tokens the token endpoint mints (`token.ttl_s`); `None`: an hour.
    issued_lifetime: Option<Duration>,
}

/// How long Google's access tokens live (`expires_in` of its token endpoint).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// The tokens and service-account keys a sandbox accepts.
#[derive(Debug, Default)]
pub struct TokenRegistry {
    inner: Mutex<Inner>,
}

/// A freshly generated service-account key.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// The key id (`private_key_id`, the JWT `kid`).
    pub id: String,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key_pem: String,
}

impl TokenRegistry {
    pub fn new() -> Arc<TokenRegistry> {
        Arc::new(TokenRegistry::default())
    }

    /// A registry accepting one opaque `token` as `principal` (nothing when `token` is empty).
    pub fn with_token(token: &str, principal: Principal) -> Arc<TokenRegistry> {
        let r = TokenRegistry::new();
        if !token.is_empty() {
            r.add_token(token, principal);
        }
        r
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Accepts the opaque `token` as `principal`, for ever (the sandbox's own token file).
    pub fn add_token(&self, token: &str, principal: Principal) {
        self.lock().tokens.insert(
            token.to_string(),
            Issued {
                principal,
                expires: None,
            },
        );
    }

    /// Accepts the opaque `token` as `principal` for [`TokenRegistry::issued_lifetime`]
    /// from now (what the token endpoint mints); returns that lifetime.
    pub fn issue_token(&self, token: &str, principal: Principal) -> Duration {
        let mut inner = self.lock();
        let lifetime = inner.issued_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME);
        inner.tokens.insert(
            token.to_string(),
            Issued {
                principal,
                expires: Some(Instant::now() + lifetime),
            },
        );
        lifetime
    }

    /// Makes the tokens minted from now on live `lifetime` (`--set token.ttl_s=N`).
    pub fn set_issued_lifetime(&self, lifetime: Duration) {
        self.lock().issued_lifetime = Some(lifetime);
    }

    /// How long minted tokens live.
    pub fn issued_lifetime(&self) -> Duration {
        self.lock()
            .issued_lifetime
            .unwrap_or(DEFAULT_TOKEN_LIFETIME)
    }

    /// Accepts JWTs signed by key `id` (PKCS#1 public key DER) for service account `email`.
    pub fn add_key(&self, id: &str, email: &str, public_key: Vec<u8>) {
        self.lock().keys.insert(
            id.to_string(),
            RegisteredKey {
                email: email.to_string(),
                public_key,
            },
        );
    }

    /// Generates an RSA-2048 key for `email`, registers it under `id` and returns its PEM.
    pub fn generate_key(&self, id: &str, email: &str) -> anyhow::Result<GeneratedKey> {
        let kp = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("generating an RSA key"))?;
        let der = kp
            .as_der()
            .map_err(|_| anyhow::anyhow!("encoding the RSA key"))?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        use aws_lc_rs::signature::KeyPair as _;
        self.add_key(id, email, kp.public_key().as_ref().to_vec());
        Ok(GeneratedKey {
            id: id.to_string(),
            private_key_pem: pem,
        })
    }

    /// Stops accepting `token` from now on, as if it had expired (the `expire` fault); whether
    /// it was a token this registry accepted.
    pub fn revoke(&self, token: &str) -> bool {
        let mut inner = self.lock();
        let now = Instant::now();
        if let Some(t) = inner.tokens.get_mut(token) {
            let live = t.expires.is_none_or(|e| now < e);
            t.expires = Some(t.expires.map_or(now, |e| e.min(now)));
            return live;
        }
        if verify_jwt(&inner, token).is_some() {
            return inner.revoked_jwts.insert(token.to_string());
        }
        false
    }

    /// Revokes every token the token endpoint minted that is still accepted (a test's
    /// "the tokens expire now"); how many.
    pub fn revoke_issued(&self) -> usize {
        let mut inner = self.lock();
        let now = Instant::now();
        let mut n = 0;
        for t in inner.tokens.values_mut() {
            if let Some(e) = t.expires.as_mut()
                && now < *e
            {
                *e = now;
                n += 1;
            }
        }
        n
    }

    /// The principal `token` stands for, or `None` (401: unknown, expired or revoked).
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let inner = self.lock();
        if let Some(t) = inner.tokens.get(token) {
            if t.expires.is_some_and(|e| Instant::now() >= e) {
                return None;
            }
            return Some(t.principal.clone());
        }
        if inner.revoked_jwts.contains(token) {
            return None;
        }
        let claims = verify_jwt(&inner, token)?;
        // An access JWT names what it is for: OAuth scopes or an API audience.
        let has_scope = claims.get("scope").and_then(Value::as_str).is_some();
        let has_aud = claims.get("aud").and_then(Value::as_str).is_some();
        if !has_scope && !has_aud {
            return None;
        }
        Some(Principal::service_account(claims["iss"].as_str()?))
    }

    /// The claims of `assertion` when it is a valid JWT signed by a registered key (as the
    /// OAuth token endpoint checks a `jwt-bearer` grant).
    pub fn verify_assertion(&self, assertion: &str) -> Option<Value> {
        verify_jwt(&self.lock(), assertion)
    }
}

/// Checks signature (RS256, registered `kid`), `iss` (= the key's account), `exp` and `iat`.
fn verify_jwt(inner: &Inner, token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&b64url_decode(h)?).ok()?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return None;
    }
    let key = inner.keys.get(header.get("kid")?.as_str()?)?;
    let sig = b64url_decode(s)?;
    let signed = &token.as_bytes()[..h.len() + 1 + c.len()];
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &key.public_key)
        .verify(signed, &sig)
        .ok()?;
    let claims: Value = serde_json::from_slice(&b64url_decode(c)?).ok()?;
    if claims.get("iss").and_then(Value::as_str) != Some(key.email.as_str()) {
        return None;
    }
    let now = now_secs();
    let exp = claims.get("exp").and_then(Value::as_i64)?;
    let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(now);
    // Google accepts self-signed JWTs valid for at most an hour, with a little clock skew.
    if exp <= now || iat > now + 300 || exp - iat > 3600 + 600 {
        return None;
    }
    Some(claims)
}

/// `bytes` random bytes as lowercase hex (token and key ids).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The system RNG does not fail on supported platforms; zeros would still be unique enough
    // for a loopback sandbox.
    let _ = aws_lc_rs::rand::fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Test helpers: sign a JWT with a PKCS#8 PEM key, as the client libraries do.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testing {
    use aws_lc_rs::rsa::KeyPair;
    use aws_lc_rs::signature::RSA_PKCS1_SHA256;
    use base64::Engine as _;
    use serde_json::Value;

    pub fn b64(v: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
    }

    pub fn sign(pem: &str, header: &Value, claims: &Value) -> String {
        let b64body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64body)
            .unwrap();
        let kp = KeyPair::from_pkcs8(&der).unwrap();
        let msg = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut sig = vec![0; kp.public_modulus_len()];
        kp.sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            msg.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{msg}.{}", b64(&sig))
    }

    /// Seconds since the epoch.
    pub fn now() -> i64 {
        super::now_secs()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::testing::{b64, sign};
    use super::*;
    use serde_json::json;

    #[test]
    fn issued_tokens_expire_after_their_lifetime() {
        let r = TokenRegistry::new();
        assert_eq!(r.issued_lifetime(), DEFAULT_TOKEN_LIFETIME);
        r.set_issued_lifetime(Duration::from_millis(50));
        assert_eq!(
            r.issue_token("ya29.short", Principal::user("a@b")),
            Duration::from_millis(50)
        );
        r.add_token("ya29.forever", Principal::user("a@b"));
        assert!(r.authenticate("ya29.short").is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(r.authenticate("ya29.short"), None);
        assert!(r.authenticate("ya29.forever").is_some());
    }

    #[test]
    fn revoked_tokens_are_refused_and_others_still_accepted() {
        let r = TokenRegistry::new();
        r.issue_token("ya29.minted", Principal::user("a@b"));
        r.issue_token("ya29.other", Principal::user("a@b"));
        r.add_token("ya29.forever", Principal::user("a@b"));
        assert!(r.revoke("ya29.minted"));
        assert_eq!(r.authenticate("ya29.minted"), None);
        assert!(r.authenticate("ya29.other").is_some());
        // A revoked token stays refused; revoking it again changes nothing.
        assert!(!r.revoke("ya29.minted"));
        assert!(!r.revoke("ya29.unknown"));
        // The fixed token can be revoked too, and nothing renews it.
        assert!(r.revoke("ya29.forever"));
        assert_eq!(r.authenticate("ya29.forever"), None);
        // A token minted after a revocation works.
        r.issue_token("ya29.new", Principal::user("a@b"));
        assert!(r.authenticate("ya29.new").is_some());
        assert_eq!(r.revoke_issued(), 2);
        assert_eq!(r.authenticate("ya29.other"), None);
        assert_eq!(r.authenticate("ya29.new"), None);

        let email = "sa@p.iam.gserviceaccount.com";
        let key = r.generate_key("k1", email).unwrap();
        let now = now_secs();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": "k1"});
        let claims = json!({"iss": email, "scope": "s", "iat": now, "exp": now + 600});
        let jwt = sign(&key.private_key_pem, &header, &claims);
        assert!(r.authenticate(&jwt).is_some());
        assert!(r.revoke(&jwt));
        assert_eq!(r.authenticate(&jwt), None);
        let fresh = json!({"iss": email, "scope": "s", "iat": now, "exp": now + 601});
        assert!(
            r.authenticate(&sign(&key.private_key_pem, &header, &fresh))
                .is_some()
        );
    }

    #[test]
    fn opaque_and_self_signed_tokens() {
        let r = TokenRegistry::with_token("ya29.t", Principal::user("a@b"));
        assert_eq!(r.authenticate("ya29.t"), Some(Principal::user("a@b")));
        assert_eq!(r.authenticate("ya29.other"), None);

        let email = "sa@p.iam.gserviceaccount.com";
        let key = r.generate_key("k1", email).unwrap();
        let now = now_secs();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": "k1"});
        let claims = json!({"iss": email, "sub": email, "scope": "https://www.googleapis.com/auth/cloud-platform", "iat": now, "exp": now + 3600});
        let jwt = sign(&key.private_key_pem, &header, &claims);
        assert_eq!(
            r.authenticate(&jwt),
            Some(Principal::service_account(email))
        );
        assert_eq!(r.authenticate(&jwt).unwrap().email(), email);

        // Tampered claims, expired, unknown kid, wrong issuer: all rejected.
        let mut parts: Vec<&str> = jwt.split('.').collect();
        let other = b64(
            json!({"iss": email, "scope": "x", "iat": now, "exp": now + 7000})
                .to_string()
                .as_bytes(),
        );
        parts[1] = &other;
        assert_eq!(r.authenticate(&parts.join(".")), None);
        let expired = json!({"iss": email, "scope": "x", "iat": now - 4000, "exp": now - 400});
        assert_eq!(
            r.authenticate(&sign(&key.private_key_pem, &header, &expired)),
            None
        );
        let unknown = json!({"alg": "RS256", "kid": "k2"});
        assert_eq!(
            r.authenticate(&sign(&key.private_key_pem, &unknown, &claims)),
            None
        );
        let wrong = json!({"iss": "x@y", "scope": "x", "iat": now, "exp": now + 60});
        assert_eq!(
            r.authenticate(&sign(&key.private_key_pem, &header, &wrong)),
            None
        );
        // No scope and no audience: not an access token.
        let bare = json!({"iss": email, "iat": now, "exp": now + 60});
        let bare = sign(&key.private_key_pem, &header, &bare);
        assert_eq!(r.authenticate(&bare), None);
        assert!(r.verify_assertion(&bare).is_some());
    }
}
