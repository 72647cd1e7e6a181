//! Per-service base URLs, overridable like gcloud's `api_endpoint_overrides` (a path prefix
//! is allowed: `http://127.0.0.1:P/container/` + `v1/projects/…`).

use crate::environment::Environment;
use crate::error::Error;

/// A Google API asm talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Container,
    GkeHub,
    ServiceUsage,
    CloudResourceManager,
    /// `meshconfig.googleapis.com` (no gcloud override exists; asm's own variable).
    MeshConfig,
    /// `privateca.googleapis.com` (Certificate Authority Service).
    PrivateCa,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 6] = [
        Service::Container,
        Service::GkeHub,
        Service::ServiceUsage,
        Service::CloudResourceManager,
        Service::MeshConfig,
        Service::PrivateCa,
    ];

    /// The production base URL, e.g. `https://container.googleapis.com/`.
    pub fn default_base(self) -> &'static str {
        match self {
            Service::Container => "https://container.googleapis.com/",
            Service::GkeHub => "https://gkehub.googleapis.com/",
            Service::ServiceUsage => "https://serviceusage.googleapis.com/",
            Service::CloudResourceManager => "https://cloudresourcemanager.googleapis.com/",
            Service::MeshConfig => "https://meshconfig.googleapis.com/",
            Service::PrivateCa => "https://privateca.googleapis.com/",
        }
    }

    /// The environment variable overriding the base URL.
    pub fn override_var(self) -> &'static str {
        match self {
            Service::Container => "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER",
            Service::GkeHub => "CLOUDSDK_API_ENDPOINT_OVERRIDES_GKEHUB",
            Service::ServiceUsage => "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE",
            Service::CloudResourceManager => "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER",
            Service::MeshConfig => "ASM_API_ENDPOINT_OVERRIDES_MESHCONFIG",
            Service::PrivateCa => "CLOUDSDK_API_ENDPOINT_OVERRIDES_PRIVATECA",
        }
    }
}

/// Base URLs of every service, each ending with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    container: String,
    gkehub: String,
    serviceusage: String,
    crm: String,
    meshconfig: String,
    privateca: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            container: Service::Container.default_base().into(),
            gkehub: Service::GkeHub.default_base().into(),
            serviceusage: Service::ServiceUsage.default_base().into(),
            crm: Service::CloudResourceManager.default_base().into(),
            meshconfig: Service::MeshConfig.default_base().into(),
            privateca: Service::PrivateCa.default_base().into(),
        }
    }
}

impl Endpoints {
    /// Defaults overridden by the `*_API_ENDPOINT_OVERRIDES_*` variables in `env`.
    /// An override that is not an absolute `http(s)://` URL is `ASM-E404` (exit 2).
    pub fn from_env(env: &Environment) -> Result<Self, Error> {
        let mut e = Endpoints::default();
        for service in Service::ALL {
            if let Some(v) = env.var(service.override_var()) {
                e = e.with_base(service, v).map_err(|err| {
                    Error::usage("ASM-E404", format!("{}: {err}", service.override_var()))
                })?;
            }
        }
        Ok(e)
    }

    /// Replaces one base URL (a missing trailing `/` is added).
    pub fn with_base(mut self, service: Service, base: &str) -> Result<Self, String> {
        let base = normalize_base(base)?;
        *self.slot(service) = base;
        Ok(self)
    }

    fn slot(&mut self, service: Service) -> &mut String {
        match service {
            Service::Container => &mut self.container,
            Service::GkeHub => &mut self.gkehub,
            Service::ServiceUsage => &mut self.serviceusage,
            Service::CloudResourceManager => &mut self.crm,
            Service::MeshConfig => &mut self.meshconfig,
            Service::PrivateCa => &mut self.privateca,
        }
    }

    /// The base URL of `service` (ends with `/`).
    pub fn base(&self, service: Service) -> &str {
        match service {
            Service::Container => &self.container,
            Service::GkeHub => &self.gkehub,
            Service::ServiceUsage => &self.serviceusage,
            Service::CloudResourceManager => &self.crm,
            Service::MeshConfig => &self.meshconfig,
            Service::PrivateCa => &self.privateca,
        }
    }

    /// `base(service)` joined with a relative `path` such as `v1/projects/p`.
    pub fn url(&self, service: Service, path: &str) -> String {
        join(self.base(service), path)
    }
}

/// Validates an override and makes it end with `/`. Plain `http://` is accepted only for
/// loopback hosts: requests carry a bearer token, which must not cross a network unencrypted.
pub fn normalize_base(base: &str) -> Result<String, String> {
    let base = base.trim();
    let (plain, rest) = match base.strip_prefix("https://") {
        Some(rest) => (false, rest),
        None => (
            true,
            base.strip_prefix("http://")
                .ok_or_else(|| format!("{base:?} must be an absolute http:// or https:// URL"))?,
        ),
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{base:?} has no host"));
    }
    if plain && !is_loopback_authority(rest) {
        return Err(format!(
            "{base:?} uses plain http:// for a host that is not loopback; use https:// (http:// is allowed only for 127.0.0.0/8, [::1] and localhost)"
        ));
    }
    if base.contains('?') || base.contains('#') {
        return Err(format!("{base:?} must not contain a query or fragment"));
    }
    Ok(if base.ends_with('/') {
        base.to_string()
    } else {
        format!("{base}/")
    })
}

/// Whether the host of `authority[/path]` (after `scheme://`) is a loopback address.
fn is_loopback_authority(rest: &str) -> bool {
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Joins a base URL and a relative path, keeping the base's path prefix: exactly one `/`
/// between them.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let e = Endpoints::default();
        assert_eq!(
            e.url(Service::Container, "v1/projects/p/locations/l/clusters/c"),
            "https://container.googleapis.com/v1/projects/p/locations/l/clusters/c"
        );
        assert_eq!(
            e.url(Service::CloudResourceManager, "/v1/projects/p"),
            "https://cloudresourcemanager.googleapis.com/v1/projects/p"
        );
    }

    #[test]
    fn overrides_keep_prefix_and_add_slash() {
        let env = Environment::with_vars([
            (
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER".to_string(),
                "http://127.0.0.1:8089/container/".to_string(),
            ),
            (
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_GKEHUB".to_string(),
                "http://127.0.0.1:8089/gkehub".to_string(),
            ),
            (
                "ASM_API_ENDPOINT_OVERRIDES_MESHCONFIG".to_string(),
                "http://127.0.0.1:9/".to_string(),
            ),
        ]);
        let e = Endpoints::from_env(&env).unwrap();
        assert_eq!(
            e.url(Service::Container, "v1/projects/p"),
            "http://127.0.0.1:8089/container/v1/projects/p"
        );
        assert_eq!(e.base(Service::GkeHub), "http://127.0.0.1:8089/gkehub/");
        assert_eq!(
            e.url(Service::GkeHub, "v1/projects/p"),
            "http://127.0.0.1:8089/gkehub/v1/projects/p"
        );
        assert_eq!(
            e.url(Service::MeshConfig, "v1alpha1/projects/p:initialize"),
            "http://127.0.0.1:9/v1alpha1/projects/p:initialize"
        );
        assert_eq!(
            e.base(Service::ServiceUsage),
            "https://serviceusage.googleapis.com/"
        );
    }

    #[test]
    fn bad_override() {
        let env = Environment::with_vars([(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE".to_string(),
            "127.0.0.1:8089/su/".to_string(),
        )]);
        let err = Endpoints::from_env(&env).unwrap_err();
        assert_eq!(err.code, "ASM-E404");
        assert!(err.message.contains("SERVICEUSAGE"));
        assert!(normalize_base("http:///x").is_err());
    }

    #[test]
    fn plain_http_only_for_loopback_hosts() {
        for ok in [
            "http://127.0.0.1:8089/container/",
            "http://127.9.9.9/",
            "http://localhost:1/x",
            "http://[::1]:8080/",
            "https://container.example.com/",
        ] {
            assert!(normalize_base(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://container.example.com/",
            "http://10.0.0.1:8080/",
            "http://[2001:db8::1]/",
            "http://127.0.0.1.evil.example/",
            "http://localhost.evil.example/",
        ] {
            let err = normalize_base(bad).unwrap_err();
            assert!(err.contains("not loopback"), "{bad}: {err}");
        }
    }

    #[test]
    fn join_slashes() {
        assert_eq!(join("http://h/a/", "/v1/x"), "http://h/a/v1/x");
        assert_eq!(join("http://h/a", "v1/x"), "http://h/a/v1/x");
        assert_eq!(join("http://h/", "v1/x"), "http://h/v1/x");
    }
}
