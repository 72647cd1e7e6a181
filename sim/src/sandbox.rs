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

/// The path prefix of each simulated Google API on the Google server, with the
/// `CLOUDSDK_API_ENDPOINT_OVERRIDES_*` suffix gcloud reads it from.
pub const GOOGLE_SERVICES: [(&str, &str); 4] = [
    ("CONTAINER", "container"),
    ("GKEHUB", "gkehub"),
    ("SERVICEUSAGE", "serviceusage"),
    ("CLOUDRESOURCEMANAGER", "crm"),
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
    ca_pem: String,
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
        let ctx = Arc::new(ServeContext {
            latency: config.latency,
            faults: FaultInjector::new(config.faults.clone(), config.seed),
            request_log,
        });
        let (state_dir, owns_state_dir) = match &config.state_dir {
            Some(dir) => (dir.clone(), false),
            None => (fresh_temp_dir()?, true),
        };
        let token = format!("ya29.sandbox-{:016x}{:016x}", random_u64(), random_u64());
        let ca = CertificateAuthority::generate()?;

        let mut clusters = Vec::new();
        for spec in &scenario.clusters {
            let listener = TcpListener::bind(("127.0.0.1", 0))
                .await
                .context("binding a cluster API server")?;
            let api = KubeApiServer::new(
                spec,
                ca.pem().to_string(),
                token.clone(),
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
        let google = GoogleApi::new(scenario.clone(), token.clone(), endpoints);
        let listener = TcpListener::bind(("127.0.0.1", config.port.unwrap_or(0)))
            .await
            .with_context(|| {
                format!(
                    "binding the Google API server on port {}",
                    config.port.unwrap_or(0)
                )
            })?;
        let google_server = serve(listener, None, "google".into(), ctx, google.clone())?;

        let sandbox = Sandbox {
            scenario,
            google_addr: google_server.addr,
            clusters,
            google,
            token,
            state_dir,
            owns_state_dir,
            google_server,
            ca_pem: ca.pem().to_string(),
        };
        sandbox.write_files()?;
        Ok(sandbox)
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

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.state_dir.join("kubeconfig")
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
        env.push((
            "ASM_SANDBOX_PROJECT".into(),
            self.scenario.project_id.clone(),
        ));
        env.push((
            "ASM_SANDBOX_LOCATION".into(),
            self.scenario.location().to_string(),
        ));
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

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
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
