//! Google credentials: where the access token comes from, kept in memory only (ARCHITECTURE.md, "Talking to Google"; README "Credentials").
//!
//! [`CredentialChain::plan`] decides, without I/O, which sources to try and in which order:
//! 1. `--access-token-file`, then `CLOUDSDK_AUTH_ACCESS_TOKEN_FILE`, then
//!    `CLOUDSDK_AUTH_ACCESS_TOKEN` (as gcloud reads them);
//! 2. `--key-file` (a service-account key JSON, read by this process — never activated in
//!    the user's gcloud configuration);
//! 3. Application Default Credentials through the official `google-cloud-auth` crate: the file
//!    named by `GOOGLE_APPLICATION_CREDENTIALS` or gcloud's well-known ADC file (authorized
//!    user, service account, impersonated service account, workload identity federation),
//!    else the metadata server (`GCE_METADATA_HOST`, probed with a short timeout);
//! 4. `gcloud auth print-access-token`, when `gcloud` is on the environment's `PATH`.
//!
//! The first source present wins; only the metadata server falls through when it does not
//! answer. [`CredentialChain::resolve`] is the I/O edge. Every variable is read from the
//! injected [`Environment`]; the file-based ADC types are parsed here and handed to the
//! crate's per-type builders so that the crate never reads the process environment for them.
//! The crate's metadata client does read `GCE_METADATA_HOST` itself (before its
//! `with_endpoint`); we pass the environment's value as the endpoint, which is the same value
//! in the real process.
//!
//! Key-file and ADC tokens refresh: a service-account key exchanges a signed assertion at
//! its `token_uri` ([`super::oauth`]) and does it again shortly before the token expires;
//! the other ADC types are cached and refreshed by the crate. [`Credentials::provider`] is
//! consulted per request by `GoogleHttp` and by the Kubernetes clients of GKE clusters.
//! Tokens from files, the environment and gcloud are used as given (they last an hour;
//! installs take minutes).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::environment::Environment;
use crate::error::{Error, exit};

/// Environment variable gcloud reads an access-token file path from.
pub const TOKEN_FILE_VAR: &str = "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE";
/// Environment variable gcloud reads a literal access token from.
pub const TOKEN_VAR: &str = "CLOUDSDK_AUTH_ACCESS_TOKEN";
/// Environment variable naming the Application Default Credentials file.
pub const ADC_VAR: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// Environment variable overriding the metadata server's `host[:port]`.
pub const METADATA_HOST_VAR: &str = "GCE_METADATA_HOST";
/// Environment variable overriding the metadata server's IP (used when the host is unset).
pub const METADATA_IP_VAR: &str = "GCE_METADATA_IP";
/// The metadata server's link-local address (no DNS lookup needed to probe it).
pub const DEFAULT_METADATA_HOST: &str = "169.254.169.254";
/// The OAuth scope asm requests.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// How long the metadata-server probe may take before asm moves on.
pub const METADATA_PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a `gcloud` call may take.
pub const GCLOUD_TIMEOUT: Duration = Duration::from_secs(60);

pub use crate::transport::AccessToken;

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
    /// `--key-file PATH` (service-account key).
    KeyFile(PathBuf),
    /// An Application Default Credentials file of `kind`; `from_env`: named by
    /// `GOOGLE_APPLICATION_CREDENTIALS` (else gcloud's well-known file).
    AdcFile {
        kind: AdcKind,
        path: PathBuf,
        from_env: bool,
    },
    /// The metadata server at `host` (ADC on Google Cloud compute).
    MetadataServer { host: String },
    /// `gcloud auth print-access-token`.
    Gcloud,
}

/// The `type` of an Application Default Credentials file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdcKind {
    /// `authorized_user` (`gcloud auth application-default login`).
    AuthorizedUser,
    /// `service_account` (a key file).
    ServiceAccount,
    /// `impersonated_service_account`.
    Impersonated,
    /// `external_account` (workload identity federation).
    ExternalAccount,
}

impl AdcKind {
    /// The kind for a file's `type` field.
    pub fn from_type(t: &str) -> Option<AdcKind> {
        Some(match t {
            "authorized_user" => AdcKind::AuthorizedUser,
            "service_account" => AdcKind::ServiceAccount,
            "impersonated_service_account" => AdcKind::Impersonated,
            "external_account" => AdcKind::ExternalAccount,
            _ => return None,
        })
    }
}

impl fmt::Display for AdcKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AdcKind::AuthorizedUser => "authorized user",
            AdcKind::ServiceAccount => "service account key",
            AdcKind::Impersonated => "impersonated service account",
            AdcKind::ExternalAccount => "workload identity federation",
        })
    }
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::FlagFile(p) => write!(f, "--access-token-file {}", p.display()),
            TokenSource::EnvFile(p) => write!(f, "{TOKEN_FILE_VAR}={}", p.display()),
            TokenSource::EnvToken => write!(f, "{TOKEN_VAR}"),
            TokenSource::Static => f.write_str("static token"),
            TokenSource::KeyFile(p) => write!(f, "--key-file {}", p.display()),
            TokenSource::AdcFile {
                kind,
                path,
                from_env: true,
            } => write!(
                f,
                "application default credentials ({kind}, {ADC_VAR}={})",
                path.display()
            ),
            TokenSource::AdcFile {
                kind,
                path,
                from_env: false,
            } => write!(
                f,
                "application default credentials ({kind}, {})",
                path.display()
            ),
            TokenSource::MetadataServer { host } => {
                write!(
                    f,
                    "application default credentials (metadata server {host})"
                )
            }
            TokenSource::Gcloud => f.write_str("gcloud auth print-access-token"),
        }
    }
}

pub use crate::transport::TokenProvider;

/// A token together with where it came from and whom it stands for.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The token fetched while resolving (also what Kubernetes clients of GKE clusters use).
    pub token: AccessToken,
    pub source: TokenSource,
    /// The principal's email, when known (never the token).
    pub principal: Option<String>,
    /// Refreshes the token (key files, ADC); `None`: `token` is used as is.
    pub provider: Option<Arc<dyn TokenProvider>>,
}

impl Credentials {
    /// Credentials from an in-process token.
    pub fn fixed(token: AccessToken) -> Self {
        Credentials::from_token(token, TokenSource::Static)
    }

    fn from_token(token: AccessToken, source: TokenSource) -> Self {
        Credentials {
            token,
            source,
            principal: None,
            provider: None,
        }
    }

    /// `SOURCE (PRINCIPAL)`, e.g. `--key-file k.json (sa@p.iam.gserviceaccount.com)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({})",
            self.source,
            self.principal.as_deref().unwrap_or("principal unknown")
        )
    }
}

/// What the user named explicitly (flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialOptions {
    /// `--access-token-file`.
    pub access_token_file: Option<PathBuf>,
    /// `--key-file` (asmcli's `-k/--key_file`).
    pub key_file: Option<PathBuf>,
    /// `--service-account`: the key file's `client_email` must be this.
    pub service_account: Option<String>,
}

/// One source to try, in [`CredentialChain`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// A token file ([`TokenSource::FlagFile`] or [`TokenSource::EnvFile`]).
    TokenFile(TokenSource),
    /// `CLOUDSDK_AUTH_ACCESS_TOKEN`.
    EnvToken,
    /// `--key-file`.
    KeyFile(PathBuf),
    /// An ADC file.
    AdcFile { path: PathBuf, from_env: bool },
    /// The metadata server (probed; skipped when it does not answer).
    MetadataServer { host: String },
    /// `gcloud` at this path.
    Gcloud { program: PathBuf },
}

/// Facts about the machine the plan depends on (gathered by [`probe`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// gcloud's well-known ADC file, when it exists.
    pub adc_well_known: Option<PathBuf>,
    /// `gcloud` found on the environment's `PATH`.
    pub gcloud: Option<PathBuf>,
}

/// The sources to try, in order, and the explicit ones a higher-precedence source shadows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialChain {
    pub candidates: Vec<Candidate>,
    /// e.g. `--key-file k.json (CLOUDSDK_AUTH_ACCESS_TOKEN_FILE takes precedence)`.
    pub ignored: Vec<String>,
}

impl CredentialChain {
    /// Pure: which sources to try, in order. The first present source is final, except
    /// the metadata server, after which gcloud may still follow.
    pub fn plan(env: &Environment, opts: &CredentialOptions, probe: &Probe) -> CredentialChain {
        let mut first: Option<(Candidate, String)> = None;
        let mut ignored = Vec::new();
        let mut offer = |c: Candidate, name: String| match &first {
            None => first = Some((c, name)),
            Some((_, winner)) => ignored.push(format!("{name} ({winner} takes precedence)")),
        };
        if let Some(p) = &opts.access_token_file {
            offer(
                Candidate::TokenFile(TokenSource::FlagFile(p.clone())),
                "--access-token-file".into(),
            );
        }
        if let Some(p) = env.var(TOKEN_FILE_VAR) {
            offer(
                Candidate::TokenFile(TokenSource::EnvFile(PathBuf::from(p))),
                TOKEN_FILE_VAR.into(),
            );
        }
        if env.var(TOKEN_VAR).is_some_and(|t| !t.trim().is_empty()) {
            offer(Candidate::EnvToken, TOKEN_VAR.into());
        }
        if let Some(p) = &opts.key_file {
            offer(
                Candidate::KeyFile(p.clone()),
                format!("--key-file {}", p.display()),
            );
        }
        if let Some(p) = env.var(ADC_VAR) {
            offer(
                Candidate::AdcFile {
                    path: PathBuf::from(p),
                    from_env: true,
                },
                ADC_VAR.into(),
            );
        }
        // Only explicit sources are worth a warning when shadowed.
        let explicit_ignored = ignored;
        let candidates = match first {
            Some((c, _)) => vec![c],
            None => match &probe.adc_well_known {
                Some(p) => vec![Candidate::AdcFile {
                    path: p.clone(),
                    from_env: false,
                }],
                None => {
                    let mut v = vec![Candidate::MetadataServer {
                        host: metadata_host(env),
                    }];
                    if let Some(g) = &probe.gcloud {
                        v.push(Candidate::Gcloud { program: g.clone() });
                    }
                    v
                }
            },
        };
        CredentialChain {
            candidates,
            ignored: explicit_ignored,
        }
    }

    /// Tries the candidates in order (I/O: files, the metadata server, gcloud). When none
    /// gives a token, the error lists every source of the chain and why it was not used.
    pub async fn resolve(
        &self,
        env: &Environment,
        opts: &CredentialOptions,
    ) -> Result<Credentials, Error> {
        let mut metadata = None;
        let mut gcloud = None;
        for c in &self.candidates {
            match c {
                Candidate::TokenFile(source) => return read_token_file(source.clone()).await,
                Candidate::EnvToken => {
                    let token = AccessToken::new(env.var(TOKEN_VAR).unwrap_or_default());
                    return Ok(Credentials::from_token(token, TokenSource::EnvToken));
                }
                Candidate::KeyFile(path) => {
                    return key_file_credentials(path, opts.service_account.as_deref()).await;
                }
                Candidate::AdcFile { path, from_env } => {
                    return adc_file_credentials(path, *from_env).await;
                }
                Candidate::MetadataServer { host } => match metadata_email(host).await {
                    Some(email) => return metadata_credentials(host, email).await,
                    None => metadata = Some(host.clone()),
                },
                Candidate::Gcloud { program } => match gcloud_credentials(env, program).await {
                    Ok(creds) => return Ok(creds),
                    Err(e) => gcloud = Some((program.clone(), e)),
                },
            }
        }
        Err(no_credentials_error(&tried_sources(
            env,
            opts,
            metadata.as_deref(),
            gcloud.as_ref().map(|(p, e)| (p.as_path(), e)),
        )))
    }
}

/// One source of the chain that gave no credentials, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// e.g. `--key-file`, `$GOOGLE_APPLICATION_CREDENTIALS`, `gcloud (/usr/bin/gcloud)`.
    pub source: String,
    /// e.g. `flag not given`, `not set`, `no such file`, gcloud's own message.
    pub why: String,
}

/// Pure: every source of the chain, in order, with why it was not used, for the case where
/// none gave credentials (so none of the files, flags and variables was present).
/// `metadata` is the host that did not answer; `gcloud` the program that failed, if any.
pub fn tried_sources(
    env: &Environment,
    opts: &CredentialOptions,
    metadata: Option<&str>,
    gcloud: Option<(&Path, &Error)>,
) -> Vec<Tried> {
    let tried = |source: &str, why: &str| Tried {
        source: source.to_string(),
        why: why.to_string(),
    };
    let flag =
        |name: &str, given: bool| tried(name, if given { "given" } else { "flag not given" });
    let var = |name: &str| match env.vars.get(name) {
        None => tried(&format!("${name}"), "not set"),
        Some(v) if v.trim().is_empty() => tried(&format!("${name}"), "set but empty"),
        Some(_) => tried(&format!("${name}"), "set"),
    };
    let mut out = vec![
        flag("--access-token-file", opts.access_token_file.is_some()),
        var(TOKEN_FILE_VAR),
        var(TOKEN_VAR),
        flag("--key-file", opts.key_file.is_some()),
        var(ADC_VAR),
    ];
    out.push(match adc_well_known_path(env) {
        Some(p) => tried(
            &format!("gcloud's ADC file {}", p.display()),
            "no such file (written by `gcloud auth application-default login`)",
        ),
        None => tried("gcloud's ADC file", "unknown: HOME is not set"),
    });
    let host = metadata.map_or_else(|| metadata_host(env), str::to_string);
    out.push(tried(
        &format!("metadata server {host}"),
        "did not answer (asm is not running on Google Cloud)",
    ));
    out.push(match gcloud {
        None => tried("gcloud", "not found on PATH"),
        Some((program, err)) => tried(&format!("gcloud ({})", program.display()), &err.message),
    });
    out
}

/// `ASM-E403` (exit 2): the sources tried, one per line, then the fix.
pub fn no_credentials_error(tried: &[Tried]) -> Error {
    let mut message = String::from("no Google credentials work; tried, in order:");
    for (i, t) in tried.iter().enumerate() {
        let mut why = t.why.lines();
        message.push_str(&format!(
            "\n  {}. {}: {}",
            i + 1,
            t.source,
            why.next().unwrap_or_default()
        ));
        // gcloud's message keeps its lines, indented under its source.
        for line in why {
            message.push_str(&format!("\n       {line}"));
        }
    }
    Error::usage("ASM-E403", message).with_hint(format!(
        "on a workstation run `gcloud auth login` (asm then asks gcloud) or \
         `gcloud auth application-default login`; in CI use a service-account key \
         (--key-file FILE, or {ADC_VAR}=FILE), workload identity federation ({ADC_VAR} \
         naming its credential configuration), or a token (--access-token-file FILE)"
    ))
}

/// The metadata server's `host[:port]` from the environment.
pub fn metadata_host(env: &Environment) -> String {
    env.var(METADATA_HOST_VAR)
        .or_else(|| env.var(METADATA_IP_VAR))
        .unwrap_or(DEFAULT_METADATA_HOST)
        .to_string()
}

/// gcloud's well-known ADC file for this environment (`$HOME/.config/gcloud/…`, or
/// `%APPDATA%\gcloud\…` on Windows; `CLOUDSDK_CONFIG` moves gcloud's directory).
pub fn adc_well_known_path(env: &Environment) -> Option<PathBuf> {
    let dir = match env.var("CLOUDSDK_CONFIG") {
        Some(d) => PathBuf::from(d),
        None if cfg!(windows) => PathBuf::from(env.var("APPDATA")?).join("gcloud"),
        None => PathBuf::from(env.var("HOME")?)
            .join(".config")
            .join("gcloud"),
    };
    Some(dir.join("application_default_credentials.json"))
}

/// `program` on the environment's `PATH`, if any (an executable file).
pub fn find_on_path(env: &Environment, program: &str) -> Option<PathBuf> {
    let path = env.var("PATH")?;
    let names: Vec<String> = if cfg!(windows) {
        vec![format!("{program}.cmd"), format!("{program}.exe")]
    } else {
        vec![program.to_string()]
    };
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// Gathers the [`Probe`] facts (file existence, `PATH` lookup).
pub fn probe(env: &Environment) -> Probe {
    Probe {
        adc_well_known: adc_well_known_path(env).filter(|p| p.is_file()),
        gcloud: find_on_path(env, "gcloud"),
    }
}

/// Plans and resolves: the whole chain.
pub async fn resolve_chain(
    env: &Environment,
    opts: &CredentialOptions,
) -> Result<(Credentials, CredentialChain), Error> {
    let chain = CredentialChain::plan(env, opts, &probe(env));
    let creds = chain.resolve(env, opts).await?;
    Ok((creds, chain))
}

/// Resolves credentials with only `--access-token-file` given (see [`resolve_chain`]).
pub async fn resolve_credentials(
    env: &Environment,
    explicit_file: Option<&Path>,
) -> Result<Credentials, Error> {
    let opts = CredentialOptions {
        access_token_file: explicit_file.map(Path::to_path_buf),
        ..Default::default()
    };
    Ok(resolve_chain(env, &opts).await?.0)
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
    Ok(Credentials::from_token(token, source))
}

/// The token in a token file's text: trimmed, `None` when empty.
pub fn parse_token_text(text: &str) -> Option<AccessToken> {
    let t = text.trim();
    (!t.is_empty()).then(|| AccessToken::new(t))
}

/// Tokens from `google-cloud-auth` credentials (cached and refreshed by the crate).
struct GoogleAuthProvider {
    creds: google_cloud_auth::credentials::AccessTokenCredentials,
    source: String,
}

impl fmt::Debug for GoogleAuthProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GoogleAuthProvider({})", self.source)
    }
}

/// `forget` keeps its default (no new token after a 401): google-cloud-auth caches its token
/// until close to expiry and offers no way to drop it, so asking again would return the
/// refused one.
impl TokenProvider for GoogleAuthProvider {
    fn token(&self) -> BoxFuture<'_, Result<AccessToken, Error>> {
        Box::pin(async move {
            match self.creds.access_token().await {
                Ok(t) => Ok(AccessToken::new(t.token)),
                Err(e) => Err(Error::apply(
                    "ASM-E407",
                    format!("cannot refresh the access token from {}: {e}", self.source),
                )),
            }
        })
    }
}

/// Fetches the first token of `creds` now, so that a broken source fails before any work.
async fn first_token(
    creds: google_cloud_auth::credentials::AccessTokenCredentials,
    source: TokenSource,
    principal: Option<String>,
    describe_error: impl FnOnce(String) -> Error,
) -> Result<Credentials, Error> {
    let token = match creds.access_token().await {
        Ok(t) => AccessToken::new(t.token),
        Err(e) => return Err(describe_error(e.to_string())),
    };
    if token.is_empty() {
        return Err(describe_error(
            "the credentials returned an empty token".into(),
        ));
    }
    let provider = GoogleAuthProvider {
        creds,
        source: source.to_string(),
    };
    Ok(Credentials {
        token,
        source,
        principal,
        provider: Some(Arc::new(provider)),
    })
}

/// Reads and parses a JSON credentials file; errors name the file, never its content.
async fn read_json_file(path: &Path, what: &str) -> Result<Value, Error> {
    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
        Error::usage(
            "ASM-E402",
            format!("cannot read {what} {}: {e}", path.display()),
        )
    })?;
    serde_json::from_str::<Value>(&text)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            Error::usage(
                "ASM-E405",
                format!("{what} {} is not valid JSON", path.display()),
            )
            .with_hint("download a new key: `gcloud iam service-accounts keys create FILE --iam-account EMAIL`")
        })
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Checks that `json` is a service-account key; returns its `client_email`.
fn service_account_email(json: &Value, path: &Path, what: &str) -> Result<String, Error> {
    let malformed = |why: String| {
        Error::usage("ASM-E405", format!("{what} {} {why}", path.display())).with_hint(
            "download a new key: `gcloud iam service-accounts keys create FILE --iam-account EMAIL`",
        )
    };
    match str_field(json, "type") {
        Some("service_account") => {}
        Some(other) => {
            return Err(malformed(format!(
                "is not a service-account key (type \"{other}\")"
            )));
        }
        None => return Err(malformed("has no \"type\" field".into())),
    }
    for field in ["private_key", "private_key_id", "client_email"] {
        if str_field(json, field).is_none() {
            return Err(malformed(format!("has no \"{field}\" field")));
        }
    }
    Ok(str_field(json, "client_email")
        .unwrap_or_default()
        .to_string())
}

/// `--key-file`: a service-account key, read by this process and exchanged at its token
/// endpoint for access tokens (no gcloud configuration changes).
async fn key_file_credentials(path: &Path, expected: Option<&str>) -> Result<Credentials, Error> {
    let json = read_json_file(path, "service-account key file").await?;
    let email = service_account_email(&json, path, "service-account key file")?;
    if let Some(expected) = expected
        && !expected.eq_ignore_ascii_case(&email)
    {
        return Err(Error::usage(
            "ASM-E406",
            format!(
                "--service-account {expected} does not match the key file {} (its client_email is {email})",
                path.display()
            ),
        )
        .with_hint("pass the key of that service account, or drop --service-account"));
    }
    service_account_credentials(json, path, TokenSource::KeyFile(path.to_path_buf()), email).await
}

/// A service-account key (`--key-file`, or an ADC file of that type): tokens from the key's
/// token endpoint, refreshed before they expire ([`super::oauth::KeyTokenProvider`]). The
/// first one is fetched now, so that a broken key fails before any work.
async fn service_account_credentials(
    json: Value,
    path: &Path,
    source: TokenSource,
    email: String,
) -> Result<Credentials, Error> {
    let provider = super::oauth::KeyTokenProvider::new(&json, CLOUD_PLATFORM_SCOPE, source.to_string())
        .map_err(|why| {
            // Never the key's content: only what is wrong with it.
            Error::usage(
                "ASM-E405",
                format!("the service-account key file {} {why}", path.display()),
            )
            .with_hint("download a new key: `gcloud iam service-accounts keys create FILE --iam-account EMAIL`")
        })?;
    let token = provider.current().await?;
    Ok(Credentials {
        token,
        source,
        principal: Some(email),
        provider: Some(Arc::new(provider)),
    })
}

/// The impersonated service account named by a `service_account_impersonation_url`.
fn impersonated_email(json: &Value) -> Option<String> {
    let url = str_field(json, "service_account_impersonation_url")?;
    let tail = url.rsplit_once("/serviceAccounts/")?.1;
    let email = tail.split_once(':').map_or(tail, |(e, _)| e);
    (!email.is_empty()).then(|| email.to_string())
}

/// An Application Default Credentials file, by its `type`.
async fn adc_file_credentials(path: &Path, from_env: bool) -> Result<Credentials, Error> {
    use google_cloud_auth::credentials::{external_account, impersonated, user_account};
    let what = if from_env {
        format!("{ADC_VAR} file")
    } else {
        "application default credentials file".to_string()
    };
    let json = read_json_file(path, &what).await?;
    let t = str_field(&json, "type").unwrap_or_default().to_string();
    let Some(kind) = AdcKind::from_type(&t) else {
        return Err(Error::usage(
            "ASM-E405",
            format!(
                "{what} {} has an unsupported credential type \"{t}\"",
                path.display()
            ),
        )
        .with_hint("supported: authorized_user, service_account, impersonated_service_account, external_account"));
    };
    let source = TokenSource::AdcFile {
        kind,
        path: path.to_path_buf(),
        from_env,
    };
    let scopes = [CLOUD_PLATFORM_SCOPE];
    let src = source.to_string();
    let failed = move |e: String| {
        Error::usage(
            "ASM-E407",
            format!("cannot get an access token from {src}: {e}"),
        )
        .with_hint("refresh them with `gcloud auth application-default login`, or pass --key-file")
    };
    let built = match kind {
        AdcKind::ServiceAccount => {
            let email = service_account_email(&json, path, &what)?;
            return service_account_credentials(json, path, source, email).await;
        }
        AdcKind::AuthorizedUser => {
            let principal = str_field(&json, "account").map(str::to_string);
            user_account::Builder::new(json)
                .with_scopes(scopes)
                .build_access_token_credentials()
                .map(|c| (c, principal))
        }
        AdcKind::Impersonated => {
            let principal = impersonated_email(&json);
            impersonated::Builder::new(json)
                .with_scopes(scopes)
                .build_access_token_credentials()
                .map(|c| (c, principal))
        }
        AdcKind::ExternalAccount => {
            let principal = impersonated_email(&json);
            external_account::Builder::new(json)
                .with_scopes(scopes)
                .build_access_token_credentials()
                .map(|c| (c, principal))
        }
    };
    let (creds, principal) = built.map_err(|e| {
        Error::usage(
            "ASM-E405",
            format!("{what} {} is malformed: {e}", path.display()),
        )
    })?;
    first_token(creds, source, principal, failed).await
}

/// The default service account's email if a metadata server answers at `host` (short
/// timeout, no proxy: the metadata server is link-local).
async fn metadata_email(host: &str) -> Option<String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(METADATA_PROBE_TIMEOUT)
        .timeout(METADATA_PROBE_TIMEOUT)
        .build()
        .ok()?;
    let resp = client
        .get(format!(
            "http://{host}/computeMetadata/v1/instance/service-accounts/default/email"
        ))
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .ok()?;
    let flavored = resp
        .headers()
        .get("metadata-flavor")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"google"));
    if !resp.status().is_success() || !flavored {
        return None;
    }
    let email = resp.text().await.ok()?.trim().to_string();
    Some(email)
}

/// Metadata-server credentials (the VM's, node's or pod's service account).
async fn metadata_credentials(host: &str, email: String) -> Result<Credentials, Error> {
    use google_cloud_auth::credentials::mds;
    let source = TokenSource::MetadataServer {
        host: host.to_string(),
    };
    let src = source.to_string();
    let failed = move |e: String| {
        Error::usage(
            "ASM-E407",
            format!("cannot get an access token from {src}: {e}"),
        )
    };
    let creds = mds::Builder::default()
        .with_endpoint(format!("http://{host}"))
        .with_scopes([CLOUD_PLATFORM_SCOPE])
        .build_access_token_credentials()
        .map_err(|e| failed(e.to_string()))?;
    let principal = (!email.is_empty()).then_some(email);
    first_token(creds, source, principal, failed).await
}

/// Runs `gcloud ARGS` with the environment's variables; stdout on success, a coded error
/// with gcloud's last stderr line otherwise. stdout is never logged.
async fn run_gcloud(env: &Environment, program: &Path, args: &[&str]) -> Result<String, Error> {
    let shown = format!("gcloud {}", args.join(" "));
    let child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(&env.vars)
        .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::usage(
                "ASM-E408",
                format!("cannot run {} ({shown}): {e}", program.display()),
            )
        })?;
    let out = tokio::time::timeout(GCLOUD_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            Error::usage(
                "ASM-E408",
                format!("`{shown}` did not finish in {}s", GCLOUD_TIMEOUT.as_secs()),
            )
        })?
        .map_err(|e| Error::usage("ASM-E408", format!("`{shown}` failed: {e}")))?;
    if !out.status.success() {
        return Err(Error::usage(
            "ASM-E408",
            format!(
                "`{shown}` failed ({}):\n{}",
                out.status,
                gcloud_message(&String::from_utf8_lossy(&out.stderr))
            ),
        )
        .with_hint("log in with `gcloud auth login`, or pass --key-file / --access-token-file"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// gcloud's own error message, as it printed it: its non-blank lines (at most 20, each at
/// most 300 characters), trimmed.
pub fn gcloud_message(stderr: &str) -> String {
    let lines: Vec<String> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(20)
        .map(|l| l.chars().take(300).collect())
        .collect();
    if lines.is_empty() {
        "(no message on stderr)".to_string()
    } else {
        lines.join("\n")
    }
}

/// `gcloud auth print-access-token` (whatever account gcloud is logged in as, including
/// its `auth/impersonate_service_account`), and `gcloud config get-value account`.
async fn gcloud_credentials(env: &Environment, program: &Path) -> Result<Credentials, Error> {
    let out = run_gcloud(env, program, &["auth", "print-access-token"]).await?;
    let token = parse_token_text(&out).ok_or_else(|| {
        Error::usage(
            "ASM-E408",
            "`gcloud auth print-access-token` printed no token",
        )
        .with_hint("log in with `gcloud auth login`")
    })?;
    let principal = run_gcloud(env, program, &["config", "get-value", "account"])
        .await
        .ok()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty() && a != "(unset)");
    Ok(Credentials {
        token,
        source: TokenSource::Gcloud,
        principal,
        provider: None,
    })
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

        // Nothing at all: the metadata server is probed at a closed loopback port (never
        // 169.254.169.254 from a test) and there is no gcloud on an empty PATH.
        let started = std::time::Instant::now();
        let err = resolve_credentials(&closed_env([]), None)
            .await
            .unwrap_err();
        assert_eq!(err.code, "ASM-E403");
        assert!(err.message.contains("127.0.0.1:9"), "{}", err.message);
        assert!(started.elapsed() < METADATA_PROBE_TIMEOUT, "not fast");

        let err = resolve_credentials(&env, Some(&dir.path().join("nope")))
            .await
            .unwrap_err();
        assert_eq!(err.code, "ASM-E402");
    }

    #[test]
    fn tried_sources_name_every_source_in_chain_order() {
        let env = closed_env([("HOME", "/home/u"), (TOKEN_VAR, "  ")]);
        let failed = Error::usage(
            "ASM-E408",
            "`gcloud auth print-access-token` failed:\nERROR: x\nPlease run: y",
        );
        let tried = tried_sources(
            &env,
            &CredentialOptions::default(),
            Some("127.0.0.1:9"),
            Some((Path::new("/bin/gcloud"), &failed)),
        );
        let lines: Vec<String> = tried
            .iter()
            .map(|t| format!("{}: {}", t.source, t.why))
            .collect();
        assert_eq!(
            lines,
            [
                "--access-token-file: flag not given",
                "$CLOUDSDK_AUTH_ACCESS_TOKEN_FILE: not set",
                "$CLOUDSDK_AUTH_ACCESS_TOKEN: set but empty",
                "--key-file: flag not given",
                "$GOOGLE_APPLICATION_CREDENTIALS: not set",
                "gcloud's ADC file /home/u/.config/gcloud/application_default_credentials.json: \
                 no such file (written by `gcloud auth application-default login`)",
                "metadata server 127.0.0.1:9: did not answer (asm is not running on Google Cloud)",
                "gcloud (/bin/gcloud): `gcloud auth print-access-token` failed:\nERROR: x\nPlease run: y",
            ]
        );
        let err = no_credentials_error(&tried);
        assert_eq!((err.code, err.exit_code), ("ASM-E403", exit::USAGE));
        let shown: Vec<&str> = err.message.lines().collect();
        assert_eq!(shown[0], "no Google credentials work; tried, in order:");
        assert_eq!(shown[1], "  1. --access-token-file: flag not given");
        assert_eq!(
            &shown[8..],
            [
                "  8. gcloud (/bin/gcloud): `gcloud auth print-access-token` failed:",
                "       ERROR: x",
                "       Please run: y"
            ]
        );

        // No HOME, no gcloud.
        let tried = tried_sources(&closed_env([]), &CredentialOptions::default(), None, None);
        assert_eq!(tried[5].why, "unknown: HOME is not set");
        assert_eq!(tried[6].source, "metadata server 127.0.0.1:9");
        assert_eq!(tried[7].why, "not found on PATH");
    }

    #[test]
    fn gcloud_message_keeps_its_lines_without_blanks() {
        assert_eq!(
            gcloud_message("ERROR: a\n\n  $ gcloud auth login\n\n"),
            "ERROR: a\n$ gcloud auth login"
        );
        assert_eq!(gcloud_message("\n"), "(no message on stderr)");
    }

    /// An environment whose metadata server is a closed loopback port, with `vars`.
    fn closed_env<const N: usize>(vars: [(&str, &str); N]) -> Environment {
        let mut all: Vec<(String, String)> = vec![
            (METADATA_HOST_VAR.into(), "127.0.0.1:9".into()),
            ("PATH".into(), String::new()),
        ];
        all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Environment::with_vars(all)
    }

    fn plan(env: &Environment, opts: &CredentialOptions, probe: &Probe) -> Vec<Candidate> {
        CredentialChain::plan(env, opts, probe).candidates
    }

    #[test]
    fn chain_order() {
        let opts = CredentialOptions {
            access_token_file: Some("flag.tok".into()),
            key_file: Some("key.json".into()),
            service_account: None,
        };
        let probe = Probe {
            adc_well_known: Some("/h/adc.json".into()),
            gcloud: Some("/bin/gcloud".into()),
        };
        let env = closed_env([
            (TOKEN_FILE_VAR, "env.tok"),
            (TOKEN_VAR, "ya29.x"),
            (ADC_VAR, "adc.json"),
        ]);
        // Flag token file beats everything, and the explicit sources it shadows are named.
        let chain = CredentialChain::plan(&env, &opts, &probe);
        assert_eq!(
            chain.candidates,
            vec![Candidate::TokenFile(TokenSource::FlagFile(
                "flag.tok".into()
            ))]
        );
        assert_eq!(chain.ignored.len(), 4, "{:?}", chain.ignored);
        assert!(chain.ignored[0].starts_with(TOKEN_FILE_VAR));

        let no_flag = CredentialOptions {
            access_token_file: None,
            ..opts.clone()
        };
        assert_eq!(
            plan(&env, &no_flag, &probe),
            vec![Candidate::TokenFile(TokenSource::EnvFile("env.tok".into()))]
        );
        let env = closed_env([(TOKEN_VAR, "ya29.x"), (ADC_VAR, "adc.json")]);
        assert_eq!(plan(&env, &no_flag, &probe), vec![Candidate::EnvToken]);
        let env = closed_env([(ADC_VAR, "adc.json")]);
        assert_eq!(
            plan(&env, &no_flag, &probe),
            vec![Candidate::KeyFile("key.json".into())]
        );
        let none = CredentialOptions::default();
        assert_eq!(
            plan(&env, &none, &probe),
            vec![Candidate::AdcFile {
                path: "adc.json".into(),
                from_env: true
            }]
        );
        let env = closed_env([]);
        assert_eq!(
            plan(&env, &none, &probe),
            vec![Candidate::AdcFile {
                path: "/h/adc.json".into(),
                from_env: false
            }]
        );
        // No file: metadata server (probed), then gcloud when it is on PATH.
        let no_adc = Probe {
            adc_well_known: None,
            ..probe.clone()
        };
        assert_eq!(
            plan(&env, &none, &no_adc),
            vec![
                Candidate::MetadataServer {
                    host: "127.0.0.1:9".into()
                },
                Candidate::Gcloud {
                    program: "/bin/gcloud".into()
                }
            ]
        );
        assert_eq!(
            plan(&Environment::default(), &none, &Probe::default()),
            vec![Candidate::MetadataServer {
                host: DEFAULT_METADATA_HOST.into()
            }]
        );
        // An empty literal token is no source.
        let env = closed_env([(TOKEN_VAR, " ")]);
        assert_eq!(
            plan(&env, &no_flag, &Probe::default()),
            vec![Candidate::KeyFile("key.json".into())]
        );
    }

    #[test]
    fn well_known_path_and_path_lookup() {
        let env = Environment::with_vars([("HOME".to_string(), "/home/u".to_string())]);
        if !cfg!(windows) {
            assert_eq!(
                adc_well_known_path(&env),
                Some(PathBuf::from(
                    "/home/u/.config/gcloud/application_default_credentials.json"
                ))
            );
        }
        let env = Environment::with_vars([("CLOUDSDK_CONFIG".to_string(), "/c".to_string())]);
        assert_eq!(
            adc_well_known_path(&env),
            Some(PathBuf::from("/c/application_default_credentials.json"))
        );
        assert_eq!(find_on_path(&Environment::default(), "gcloud"), None);
    }

    #[test]
    fn principals_and_descriptions() {
        let j = serde_json::json!({"service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken"});
        assert_eq!(
            impersonated_email(&j).as_deref(),
            Some("sa@p.iam.gserviceaccount.com")
        );
        assert_eq!(impersonated_email(&serde_json::json!({})), None);
        let mut c = Credentials::from_token(
            AccessToken::new("ya29.secret"),
            TokenSource::KeyFile("k.json".into()),
        );
        assert_eq!(c.describe(), "--key-file k.json (principal unknown)");
        c.principal = Some("sa@p".into());
        assert_eq!(c.describe(), "--key-file k.json (sa@p)");
        assert!(!format!("{c:?}").contains("secret"));
        let adc = TokenSource::AdcFile {
            kind: AdcKind::AuthorizedUser,
            path: "/a.json".into(),
            from_env: true,
        };
        assert_eq!(
            adc.to_string(),
            "application default credentials (authorized user, GOOGLE_APPLICATION_CREDENTIALS=/a.json)"
        );
    }

    #[tokio::test]
    async fn key_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{not json").unwrap();
        let err = key_file_credentials(&bad, None).await.unwrap_err();
        assert_eq!((err.code, err.exit_code), ("ASM-E405", exit::USAGE));
        assert!(err.message.contains("bad.json"), "{}", err.message);

        let user = dir.path().join("user.json");
        std::fs::write(&user, r#"{"type": "authorized_user"}"#).unwrap();
        let err = key_file_credentials(&user, None).await.unwrap_err();
        assert!(
            err.message.contains("not a service-account key"),
            "{}",
            err.message
        );

        let key = dir.path().join("key.json");
        let pem = "-----BEGIN PRIVATE KEY-----\nTUlJQ0FBQUFB\n-----END PRIVATE KEY-----\n";
        let json = serde_json::json!({"type": "service_account", "project_id": "p",
            "private_key_id": "k1", "private_key": pem, "client_email": "sa@p.iam.gserviceaccount.com"});
        std::fs::write(&key, json.to_string()).unwrap();
        let err = key_file_credentials(&key, Some("other@p.iam.gserviceaccount.com"))
            .await
            .unwrap_err();
        assert_eq!(err.code, "ASM-E406");
        assert!(err.message.contains("sa@p.iam.gserviceaccount.com"));
        let err = key_file_credentials(&key, None).await.unwrap_err();
        assert_eq!(err.code, "ASM-E405");
        assert!(!err.message.contains("TUlJ"), "{}", err.message);

        let err = key_file_credentials(&dir.path().join("nope.json"), None)
            .await
            .unwrap_err();
        assert_eq!(err.code, "ASM-E402");
        assert!(err.message.contains("nope.json"));
    }
}
