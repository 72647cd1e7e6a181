//! Building a `kube::Client` for a cluster: from a GKE cluster (endpoint + CA + Google
//! token, refreshed before it expires; no kubeconfig or auth plugin) or from a kubeconfig
//! and context.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::bearer::BearerLayer;
use super::trace::TraceLayer;
use super::{KubeError, KubeResult};
use crate::environment::Environment;
use crate::transport::{AccessToken, BearerSource, TokenProvider, TraceFn};

/// A client together with what it points at (for messages and plans).
#[derive(Clone)]
pub struct KubeContext {
    pub client: Client,
    /// Context name (kubeconfig) or `gke_PROJECT_LOCATION_NAME`-style label.
    pub context: String,
    pub cluster_url: String,
    pub default_namespace: String,
}

impl std::fmt::Debug for KubeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeContext")
            .field("context", &self.context)
            .field("cluster_url", &self.cluster_url)
            .field("default_namespace", &self.default_namespace)
            .finish_non_exhaustive()
    }
}

/// Decodes the PEM certificates in `pem` into DER (what kube's `root_cert` takes).
pub fn pem_to_der(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            body = Some(String::new());
        } else if line.starts_with("-----END CERTIFICATE-----") {
            let b64 = body.take().ok_or("END without BEGIN in PEM")?;
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| format!("bad base64 in PEM certificate: {e}"))?;
            out.push(der);
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    if out.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(out)
}

/// Decodes `masterAuth.clusterCaCertificate` (base64 of PEM) into DER certificates.
pub fn cluster_ca_to_der(ca_b64: &str) -> Result<Vec<Vec<u8>>, String> {
    let pem = base64::engine::general_purpose::STANDARD
        .decode(ca_b64.trim().as_bytes())
        .map_err(|e| format!("clusterCaCertificate is not base64: {e}"))?;
    let pem = String::from_utf8(pem).map_err(|_| "clusterCaCertificate is not PEM text")?;
    pem_to_der(&pem)
}

/// A kube `Config` for `server_url` trusting the CA `ca_b64` (base64 PEM) and sending
/// `token` as bearer.
pub fn config_for_endpoint(
    server_url: &str,
    ca_b64: &str,
    token: &AccessToken,
    default_namespace: &str,
) -> KubeResult<Config> {
    let uri = server_url.parse().map_err(|e| KubeError::Invalid {
        message: format!("bad cluster URL {server_url:?}: {e}"),
    })?;
    let mut config = Config::new(uri);
    if !ca_b64.trim().is_empty() {
        let certs = cluster_ca_to_der(ca_b64).map_err(|m| KubeError::Invalid {
            message: format!("cluster {server_url}: {m}"),
        })?;
        config.root_cert = Some(certs);
    }
    config.auth_info.token = Some(token.secret());
    config.default_namespace = default_namespace.to_string();
    Ok(config)
}

/// A `kube::Client` for `config`, every request reported to `trace` when given
/// ([`TraceLayer`]: method, URL without userinfo, status, duration). Must be called inside a
/// tokio runtime.
pub fn build_client(config: Config, trace: Option<TraceFn>) -> Result<Client, kube::Error> {
    build_client_with(config, None, trace)
}

/// [`build_client`] with every request's `Authorization` taken from `bearer` (a refreshing
/// token source) when given.
pub fn build_client_with(
    config: Config,
    bearer: Option<Arc<dyn TokenProvider>>,
    trace: Option<TraceFn>,
) -> Result<Client, kube::Error> {
    let cluster_url = config.cluster_url.clone();
    let mut builder = ClientBuilder::try_from(config)?;
    if let Some(provider) = bearer {
        builder = builder.with_layer(&BearerLayer::new(provider));
    }
    Ok(match trace {
        Some(t) => builder
            .with_layer(&TraceLayer::new(t).with_base(&cluster_url))
            .build(),
        None => builder.build(),
    })
}

/// Where a GKE cluster's API server is and which CA signs it (from the cluster's `endpoint`
/// and `masterAuth.clusterCaCertificate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    /// The cluster's name (for messages and as the context label).
    pub name: String,
    /// `https://ENDPOINT`; empty while the cluster has no endpoint.
    pub server_url: String,
    /// Base64 of the PEM CA certificate; empty to trust the system roots.
    pub ca_certificate: String,
}

/// A client for a GKE cluster from its endpoint and CA (a [`ClusterEndpoint`], or anything
/// that converts into one, like the GKE API's cluster), authenticating with the Google
/// access token of `bearer` — asked before every request when it refreshes, so the client
/// outlives any one token; requests traced to `trace` when given. Must be called inside a
/// tokio runtime.
pub fn client_for_gke(
    cluster: impl Into<ClusterEndpoint>,
    bearer: &BearerSource,
    trace: Option<TraceFn>,
) -> KubeResult<KubeContext> {
    let cluster: ClusterEndpoint = cluster.into();
    if cluster.server_url.is_empty() {
        return Err(KubeError::Invalid {
            message: format!(
                "cluster {} has no endpoint (is it still provisioning?)",
                cluster.name
            ),
        });
    }
    let url = cluster.server_url.clone();
    let mut config = config_for_endpoint(&url, &cluster.ca_certificate, bearer.first(), "default")?;
    if bearer.provider().is_some() {
        // The layer sets the header per request; a fixed one would go stale.
        config.auth_info.token = None;
    }
    let client = build_client_with(config, bearer.provider().cloned(), trace)
        .map_err(|e| KubeError::from_kube(format!("client for cluster {}", cluster.name), e))?;
    Ok(KubeContext {
        client,
        context: cluster.name.clone(),
        cluster_url: url,
        default_namespace: "default".into(),
    })
}

/// The kubeconfig files to read: `explicit`, else `$KUBECONFIG` (`:`-separated), else
/// `$HOME/.kube/config`.
pub fn kubeconfig_paths(env: &Environment, explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    if let Some(v) = env.var("KUBECONFIG") {
        let sep = if cfg!(windows) { ';' } else { ':' };
        return v
            .split(sep)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
    }
    env.var("HOME")
        .map(|h| vec![Path::new(h).join(".kube").join("config")])
        .unwrap_or_default()
}

/// Reads and merges the kubeconfig files ([`kubeconfig_paths`]).
pub fn read_kubeconfig(env: &Environment, explicit: Option<&Path>) -> KubeResult<Kubeconfig> {
    let paths = kubeconfig_paths(env, explicit);
    if paths.is_empty() {
        return Err(KubeError::Invalid {
            message: "no kubeconfig: pass --kubeconfig or set KUBECONFIG".into(),
        });
    }
    let mut merged: Option<Kubeconfig> = None;
    for p in &paths {
        if explicit.is_none() && paths.len() > 1 && !p.exists() {
            continue;
        }
        let k = Kubeconfig::read_from(p).map_err(|e| KubeError::Invalid {
            message: format!(
                "cannot read kubeconfig {}: {}",
                p.display(),
                super::error_chain(&e)
            ),
        })?;
        merged = Some(match merged {
            None => k,
            Some(m) => m.merge(k).map_err(|e| KubeError::Invalid {
                message: format!("cannot merge kubeconfig {}: {e}", p.display()),
            })?,
        });
    }
    merged.ok_or_else(|| KubeError::Invalid {
        message: "no kubeconfig file exists".into(),
    })
}

/// A client from a kubeconfig (`path`, else `$KUBECONFIG`, else `~/.kube/config`) and a
/// context (else the current context). Exec plugins and proxies are handled by kube-rs.
/// Requests are traced to `trace` when given.
pub async fn client_from_kubeconfig(
    env: &Environment,
    path: Option<&Path>,
    context: Option<&str>,
    trace: Option<TraceFn>,
) -> KubeResult<KubeContext> {
    let kubeconfig = read_kubeconfig(env, path)?;
    let context_name = match context {
        Some(c) => c.to_string(),
        None => kubeconfig
            .current_context
            .clone()
            .ok_or_else(|| KubeError::Invalid {
                message: "the kubeconfig has no current context; pass --context".into(),
            })?,
    };
    if !kubeconfig.contexts.iter().any(|c| c.name == context_name) {
        return Err(KubeError::Invalid {
            message: format!("context {context_name:?} not found in the kubeconfig"),
        });
    }
    let options = KubeConfigOptions {
        context: Some(context_name.clone()),
        ..KubeConfigOptions::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| KubeError::Invalid {
            message: format!(
                "kubeconfig context {context_name:?}: {}",
                super::error_chain(&e)
            ),
        })?;
    let cluster_url = config.cluster_url.to_string();
    let default_namespace = config.default_namespace.clone();
    let client = build_client(config, trace)
        .map_err(|e| KubeError::from_kube(format!("client for context {context_name}"), e))?;
    Ok(KubeContext {
        client,
        context: context_name,
        cluster_url,
        default_namespace,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nAAEC\nAwQ=\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBQY=\n-----END CERTIFICATE-----\n";

    #[test]
    fn pem_decoding() {
        assert_eq!(
            pem_to_der(PEM).unwrap(),
            vec![vec![0, 1, 2, 3, 4], vec![5, 6]]
        );
        assert!(pem_to_der("nothing").is_err());
        let b64 = base64::engine::general_purpose::STANDARD.encode(PEM);
        assert_eq!(cluster_ca_to_der(&b64).unwrap().len(), 2);
        assert!(cluster_ca_to_der("!!").is_err());
    }

    #[test]
    fn config_has_token_ca_and_namespace() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(PEM);
        let c = config_for_endpoint(
            "https://127.0.0.1:6443",
            &b64,
            &AccessToken::new("t"),
            "istio-system",
        )
        .unwrap();
        assert_eq!(c.default_namespace, "istio-system");
        assert_eq!(c.root_cert.as_ref().map(Vec::len), Some(2));
        assert!(c.auth_info.token.is_some());
        assert_eq!(c.cluster_url.to_string(), "https://127.0.0.1:6443/");
    }

    #[test]
    fn kubeconfig_path_resolution() {
        let env = Environment::with_vars([
            ("KUBECONFIG".to_string(), "/a:/b".to_string()),
            ("HOME".to_string(), "/home/u".to_string()),
        ]);
        assert_eq!(
            kubeconfig_paths(&env, None),
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(
            kubeconfig_paths(&env, Some(Path::new("/x"))),
            vec![PathBuf::from("/x")]
        );
        let env = Environment::with_vars([("HOME".to_string(), "/home/u".to_string())]);
        assert_eq!(
            kubeconfig_paths(&env, None),
            vec![PathBuf::from("/home/u/.kube/config")]
        );
    }
}
