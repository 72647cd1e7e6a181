//! A running sandbox: the Google API server, one Kubernetes API server per cluster, the
//! token file and kubeconfig, and the environment that points clients at them.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::SimConfig;
use crate::faults::FaultInjector;
use crate::google::{ClusterEndpoint, GoogleApi};
use crate::http::{RunningServer, ServeContext, serve};
use crate::kube::KubeApiServer;
use crate::member::MemberCluster;
use crate::request_log::RequestLog;
use crate::scenario::Scenario;
use crate::tls::CertificateAuthority;
use crate::tokens::{GeneratedKey, Principal, TokenRegistry};

/// The account part of the sandbox's service account
/// (`asm-installer@PROJECT.iam.gserviceaccount.com`).
pub const SERVICE_ACCOUNT_ID: &str = "asm-installer";

/// The path prefix of each simulated Google API on the Google server, with the
/// `CLOUDSDK_API_ENDPOINT_OVERRIDES_*` suffix gcloud reads it from.
pub const GOOGLE_SERVICES: [(&str, &str); 5] = [
    ("CONTAINER", "container"),
    ("GKEHUB", "gkehub"),
    ("SERVICEUSAGE", "serviceusage"),
    ("CLOUDRESOURCEMANAGER", "crm"),
    ("PRIVATECA", "privateca"),
];

/// One simulated cluster of a running sandbox.
#[derive(Debug)]
pub struct SandboxCluster {
    pub name: String,
    pub location: String,
    /// `127.0.0.1:PORT` of its Kubernetes API server.
    pub endpoint: String,
    /// The server itself, for tests that inspect state directly.
    pub api: Arc<KubeApiServer>,
    server: RunningServer,
}

impl SandboxCluster {
    /// The kubeconfig name of this cluster (`gke_PROJECT_LOCATION_NAME`).
    pub fn context_name(&self, project: &str) -> String {
        format!("gke_{project}_{}_{}", self.location, self.name)
    }
}

/// A running sandbox. Dropping it stops nothing; call [`Sandbox::shutdown`].
#[derive(Debug)]
pub struct Sandbox {
    pub scenario: Scenario,
    pub google_addr: std::net::SocketAddr,
    pub clusters: Vec<SandboxCluster>,
    pub google: Arc<GoogleApi>,
    token: String,
    state_dir: PathBuf,
    owns_state_dir: bool,
    google_server: RunningServer,
    /// Shared by every server of this sandbox (latency, faults, request log).
    serve_context: Arc<ServeContext>,
    ca_pem: String,
    tokens: Arc<TokenRegistry>,
    sa_key: GeneratedKey,
}

impl Sandbox {
    /// Starts every server and writes the token file and kubeconfig. Must be called inside
    /// a tokio runtime.
    pub async fn start(config: SimConfig) -> Result<Sandbox> {
        let scenario = Scenario::build(&config.scenario, &config.sets)?;
        let request_log = config
            .request_log
            .as_deref()
            .map(RequestLog::create)
            .transpose()?;
        let (state_dir, owns_state_dir) = match &config.state_dir {
            Some(dir) => (dir.clone(), false),
            None => (fresh_temp_dir()?, true),
        };
        let token = format!("ya29.sandbox-{:016x}{:016x}", random_u64(), random_u64());
        let ca = CertificateAuthority::generate()?;
        // Everything the Google side accepts, the clusters accept too (as GKE does).
        let tokens =
            TokenRegistry::with_token(&token, Principal::user(crate::google::SANDBOX_USER));
        if let Some(ttl) = scenario.token_ttl {
            tokens.set_issued_lifetime(ttl);
        }
        let ctx = Arc::new(ServeContext {
            latency: config.latency,
            faults: FaultInjector::new(config.faults.clone(), config.seed),
            request_log,
            tokens: tokens.clone(),
        });
        let sa_key = tokens.generate_key(
            &crate::tokens::random_hex(20),
            &service_account_email(&scenario.project_id),
        )?;

        let mut clusters = Vec::new();
        for spec in &scenario.clusters {
            let listener = TcpListener::bind(("127.0.0.1", 0))
                .await
                .context("binding a cluster API server")?;
            let api = KubeApiServer::with_google_tokens(
                spec,
                ca.pem().to_string(),
                tokens.clone(),
                scenario.timing.clone(),
            );
            let acceptor = ca.server_acceptor(&spec.name)?;
            let server = serve(
                listener,
                Some(acceptor),
                spec.name.clone(),
                ctx.clone(),
                api.clone(),
            )?;
            clusters.push(SandboxCluster {
                name: spec.name.clone(),
                location: spec.location.clone(),
                endpoint: format!("127.0.0.1:{}", server.addr.port()),
                api,
                server,
            });
        }

        let endpoints = clusters
            .iter()
            .map(|c| ClusterEndpoint {
                name: c.name.clone(),
                endpoint: c.endpoint.clone(),
                ca_pem: ca.pem().to_string(),
                member: c.api.clone() as Arc<dyn MemberCluster>,
            })
            .collect();
        let google = GoogleApi::with_tokens(scenario.clone(), tokens.clone(), endpoints);
        // Scenario objects settle last, in each cluster's final state: a managed revision
        // the Google side provisions at start (and its proxy version) serves their Pods.
        for (c, spec) in clusters.iter().zip(&scenario.clusters) {
            c.api.use_proxy_versions(google.proxy_versions());
            c.api
                .settle_scenario_objects(&spec.objects)
                .with_context(|| format!("settling cluster {}", spec.name))?;
        }
        let listener = TcpListener::bind(("127.0.0.1", config.port.unwrap_or(0)))
            .await
            .with_context(|| {
                format!(
                    "binding the Google API server on port {}",
                    config.port.unwrap_or(0)
                )
            })?;
        let google_server = serve(listener, None, "google".into(), ctx.clone(), google.clone())?;

        let sandbox = Sandbox {
            scenario,
            google_addr: google_server.addr,
            clusters,
            google,
            token,
            state_dir,
            owns_state_dir,
            google_server,
            serve_context: ctx,
            ca_pem: ca.pem().to_string(),
            tokens,
            sa_key,
        };
        sandbox.write_files()?;
        Ok(sandbox)
    }

    /// Turns the configured `--fault`s on or off for every server of the sandbox, so a
    /// harness can inspect the end state of a faulty run without faults.
    pub fn set_faults_enabled(&self, enabled: bool) {
        self.serve_context.faults.set_enabled(enabled);
    }

    /// The sandbox access token (what `CLOUDSDK_AUTH_ACCESS_TOKEN_FILE` holds).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The sandbox CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Base URL of one simulated Google API, e.g. `http://127.0.0.1:PORT/container/`.
    pub fn google_url(&self, prefix: &str) -> String {
        format!("http://{}/{prefix}/", self.google_addr)
    }

    pub fn token_path(&self) -> PathBuf {
        self.state_dir.join("access-token")
    }

    /// The sandbox service account's key file (`ASM_SANDBOX_KEY_FILE`).
    pub fn key_file_path(&self) -> PathBuf {
        self.state_dir.join("service-account-key.json")
    }

    /// The sandbox service account (`asm-installer@PROJECT.iam.gserviceaccount.com`).
    pub fn service_account(&self) -> String {
        service_account_email(&self.scenario.project_id)
    }

    /// The tokens and keys the sandbox accepts (shared by the Google and Kubernetes sides).
    pub fn tokens(&self) -> &Arc<TokenRegistry> {
        &self.tokens
    }

    /// The service-account key file's content, shaped as one Google issues; its `token_uri`
    /// is the sandbox's own OAuth token endpoint.
    pub fn key_file(&self) -> serde_json::Value {
        let email = self.service_account();
        json!({
            "type": "service_account",
            "project_id": self.scenario.project_id,
            "private_key_id": self.sa_key.id,
            "private_key": self.sa_key.private_key_pem,
            "client_email": email,
            "client_id": client_id(&email),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": format!("http://{}/oauth2/token", self.google_addr),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!("https://www.googleapis.com/robot/v1/metadata/x509/{}", email.replace('@', "%40")),
            "universe_domain": "googleapis.com",
        })
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.state_dir.join("kubeconfig")
    }

    /// kubectl's cache directory for this sandbox (`KUBECACHEDIR`).
    pub fn kube_cache_path(&self) -> PathBuf {
        self.state_dir.join("kube-cache")
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The environment that points gcloud, kubectl and asm at this sandbox, in the order
    /// `asm sandbox serve` prints it (`ASM_SANDBOX_CLUSTERS` last).
    pub fn exports(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = GOOGLE_SERVICES
            .iter()
            .map(|(var, prefix)| {
                (
                    format!("CLOUDSDK_API_ENDPOINT_OVERRIDES_{var}"),
                    self.google_url(prefix),
                )
            })
            .collect();
        env.push((
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE".into(),
            self.token_path().display().to_string(),
        ));
        env.push((
            "KUBECONFIG".into(),
            self.kubeconfig_path().display().to_string(),
        ));
        // kubectl caches discovery under ~/.kube/cache keyed by host:port for hours; the next
        // sandbox may get the same port with other resources, so each sandbox has its own cache.
        env.push((
            "KUBECACHEDIR".into(),
            self.kube_cache_path().display().to_string(),
        ));
        // gcloud needs a project; asm never reads this one.
        env.push((
            "CLOUDSDK_CORE_PROJECT".into(),
            self.scenario.project_id.clone(),
        ));
        env.push((
            "ASM_SANDBOX_PROJECT".into(),
            self.scenario.project_id.clone(),
        ));
        env.push((
            "ASM_SANDBOX_LOCATION".into(),
            self.scenario.location().to_string(),
        ));
        env.push((
            "ASM_SANDBOX_KEY_FILE".into(),
            self.key_file_path().display().to_string(),
        ));
        if let Some(f) = &self.scenario.fleet_project {
            env.push(("ASM_SANDBOX_FLEET_PROJECT".into(), f.project_id.clone()));
        }
        let names: Vec<&str> = self.clusters.iter().map(|c| c.name.as_str()).collect();
        env.push(("ASM_SANDBOX_CLUSTERS".into(), names.join(" ")));
        env
    }

    /// A kubeconfig with one cluster, user and context per cluster, all named
    /// `gke_PROJECT_LOCATION_NAME`, authenticating with the sandbox token.
    pub fn kubeconfig(&self) -> serde_json::Value {
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let project = &self.scenario.project_id;
        let names: Vec<String> = self
            .clusters
            .iter()
            .map(|c| c.context_name(project))
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": self.clusters.iter().zip(&names).map(|(c, n)| json!({
                "cluster": {"certificate-authority-data": ca, "server": format!("https://{}", c.endpoint)},
                "name": n,
            })).collect::<Vec<_>>(),
            "contexts": names.iter().map(|n| json!({"context": {"cluster": n, "user": n}, "name": n})).collect::<Vec<_>>(),
            "current-context": names.first().cloned().unwrap_or_default(),
            "preferences": {},
            "users": names.iter().map(|n| json!({"name": n, "user": {"token": self.token}})).collect::<Vec<_>>(),
        })
    }

    fn write_files(&self) -> Result<()> {
        write_private(&self.token_path(), self.token.as_bytes())?;
        let key =
            serde_json::to_string_pretty(&self.key_file()).context("rendering the key file")?;
        write_private(&self.key_file_path(), key.as_bytes())?;
        let kubeconfig =
            serde_yaml::to_string(&self.kubeconfig()).context("rendering the kubeconfig")?;
        write_private(&self.kubeconfig_path(), kubeconfig.as_bytes())
    }

    /// Stops every server and removes the state directory it created.
    pub fn shutdown(self) {
        self.google_server.stop();
        for c in &self.clusters {
            c.server.stop();
        }
        if self.owns_state_dir {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
    }
}

fn service_account_email(project: &str) -> String {
    format!("{SERVICE_ACCOUNT_ID}@{project}.iam.gserviceaccount.com")
}

/// A stable 21-digit numeric id for `email` (Google's `client_id` shape).
fn client_id(email: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(email.as_bytes());
    let mut n = 1u128;
    for b in &d[..9] {
        n = n * 256 + u128::from(*b);
    }
    format!("1{:020}", n % 100_000_000_000_000_000_000)
}

fn random_u64() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

fn fresh_temp_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "asm-sandbox-{}-{:08x}",
        std::process::id(),
        random_u64() as u32
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    set_mode(&dir, 0o700)?;
    Ok(dir)
}

/// Writes `bytes` to a file only its owner can read (created 0600 on Unix, never readable
/// by others even for a moment).
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    set_mode(path, 0o600)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting permissions of {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}
