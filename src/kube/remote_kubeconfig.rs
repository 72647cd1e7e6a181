//! Clients from kubeconfigs that asm did not get from its user — the remote secrets it reads
//! back from clusters (`create-mesh --verify`). Such a kubeconfig is data written by whoever
//! could write that Secret, so only the server URL, the CA data and a bearer token are taken:
//! an `exec` or `auth-provider` entry would run a command on the operator's machine, and file
//! paths (`certificate-authority`, `tokenFile`, client keys) would read the operator's files.
//! Anything else that changes how the client authenticates is refused, naming the entry.

use kube::Config;
use kube::config::Kubeconfig;
use secrecy::SecretString;

use super::client::pem_to_der;

/// What a remote kubeconfig may contribute: where to connect, whom to trust, how to
/// authenticate.
pub struct RemoteCredentials {
    pub server: String,
    /// DER certificates of the CA (`certificate-authority-data`), if given.
    pub ca: Option<Vec<Vec<u8>>>,
    pub token: SecretString,
}

impl std::fmt::Debug for RemoteCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCredentials")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Parses a remote-secret kubeconfig, refusing every entry beyond server, CA data and token.
/// Errors name the offending entry and never quote values.
pub fn parse_remote_kubeconfig(text: &str) -> Result<RemoteCredentials, String> {
    let kc =
        Kubeconfig::from_yaml(text).map_err(|_| "the kubeconfig does not parse".to_string())?;
    let context_name = kc
        .current_context
        .clone()
        .or_else(|| (kc.contexts.len() == 1).then(|| kc.contexts[0].name.clone()))
        .ok_or("the kubeconfig names no current-context")?;
    let context = kc
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| format!("context {context_name:?} is not defined"))?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| format!("cluster {:?} is not defined", context.cluster))?;
    let user_name = context.user.clone().unwrap_or_default();
    let user = kc
        .auth_infos
        .iter()
        .find(|u| u.name == user_name)
        .and_then(|u| u.auth_info.as_ref())
        .ok_or_else(|| format!("user {user_name:?} is not defined"))?;

    let refused = |entry: &str| {
        Err(format!(
            "the kubeconfig's {entry} entry is refused: a kubeconfig read from a cluster may only give a server, certificate-authority-data and a token"
        ))
    };
    if user.exec.is_some() {
        return refused("user exec");
    }
    if user.auth_provider.is_some() {
        return refused("user auth-provider");
    }
    if user.token_file.is_some() {
        return refused("user tokenFile");
    }
    if user.client_certificate.is_some() || user.client_key.is_some() {
        return refused("user client-certificate/client-key file");
    }
    if user.client_certificate_data.is_some() || user.client_key_data.is_some() {
        return refused("user client-certificate-data/client-key-data");
    }
    if user.username.is_some() || user.password.is_some() {
        return refused("user username/password");
    }
    if user.impersonate.is_some() || user.impersonate_groups.is_some() {
        return refused("user as/as-groups (impersonation)");
    }
    if cluster.certificate_authority.is_some() {
        return refused("cluster certificate-authority file");
    }
    if cluster.insecure_skip_tls_verify == Some(true) {
        return refused("cluster insecure-skip-tls-verify");
    }
    if cluster.proxy_url.is_some() {
        return refused("cluster proxy-url");
    }
    let server = cluster
        .server
        .clone()
        .filter(|s| s.starts_with("https://"))
        .ok_or("the kubeconfig's cluster server must be an https:// URL")?;
    let ca = match &cluster.certificate_authority_data {
        None => None,
        Some(b64) => {
            use base64::Engine as _;
            let pem = base64::engine::general_purpose::STANDARD
                .decode(b64.trim().as_bytes())
                .map_err(|_| "certificate-authority-data is not base64".to_string())?;
            let pem = String::from_utf8(pem)
                .map_err(|_| "certificate-authority-data is not PEM text".to_string())?;
            Some(pem_to_der(&pem)?)
        }
    };
    let token = user
        .token
        .clone()
        .ok_or("the kubeconfig's user has no token")?;
    Ok(RemoteCredentials { server, ca, token })
}

/// A kube `Config` from remote credentials: nothing but URL, CA and bearer token.
pub fn config_for_remote(creds: &RemoteCredentials) -> Result<Config, String> {
    let uri = creds
        .server
        .parse()
        .map_err(|_| "the kubeconfig's server is not a URL".to_string())?;
    let mut config = Config::new(uri);
    config.root_cert = creds.ca.clone();
    config.auth_info.token = Some(creds.token.clone());
    Ok(config)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    fn kubeconfig(user: &str, cluster_extra: &str) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443
{cluster_extra}
contexts:
- name: c1
  context: {{cluster: c1, user: c1}}
current-context: c1
users:
- name: c1
  user:
{user}
"
        )
    }

    #[test]
    fn server_and_token_are_taken() {
        let c = parse_remote_kubeconfig(&kubeconfig("    token: abc.def", "")).unwrap();
        assert_eq!(c.server, "https://127.0.0.1:6443");
        assert_eq!(c.token.expose_secret(), "abc.def");
        assert!(c.ca.is_none());
    }

    #[test]
    fn exec_and_auth_provider_are_refused() {
        let exec = "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [-c, 'touch /tmp/pwned']";
        let err = parse_remote_kubeconfig(&kubeconfig(exec, "")).unwrap_err();
        assert!(err.contains("exec"), "{err}");
        assert!(!err.contains("/bin/sh"), "values are never quoted: {err}");
        let ap = "    auth-provider:\n      name: gcp\n      config: {cmd-path: /bin/sh}";
        let err = parse_remote_kubeconfig(&kubeconfig(ap, "")).unwrap_err();
        assert!(err.contains("auth-provider"), "{err}");
    }

    #[test]
    fn local_file_references_are_refused() {
        for (user, cluster, entry) in [
            ("    tokenFile: /etc/shadow", "", "tokenFile"),
            (
                "    token: t\n    client-key: /home/me/.ssh/id",
                "",
                "client-key",
            ),
            (
                "    token: t",
                "    certificate-authority: /etc/ssl/ca.pem",
                "certificate-authority file",
            ),
            (
                "    token: t",
                "    insecure-skip-tls-verify: true",
                "insecure",
            ),
            (
                "    token: t",
                "    proxy-url: http://evil:3128",
                "proxy-url",
            ),
        ] {
            let err = parse_remote_kubeconfig(&kubeconfig(user, cluster)).unwrap_err();
            assert!(err.contains(entry), "{entry}: {err}");
        }
    }

    #[test]
    fn plain_http_servers_are_refused() {
        let text = kubeconfig("    token: t", "").replace("https://", "http://");
        assert!(
            parse_remote_kubeconfig(&text)
                .unwrap_err()
                .contains("https")
        );
    }
}
