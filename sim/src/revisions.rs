//! Proxy versions of the managed control plane revisions: what the managed injector puts
//! into Pods and what the managed data plane targets (`DataPlaneControl.spec.proxyVersion`).
//!
//! One handle is shared by the Google side and every cluster of a sandbox, so a version
//! changed while the sandbox runs (an upgrade of the channel) is seen by both.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The managed revisions and their default proxy versions, one per release channel
/// (versions of the shape the channels carried in 2025, see
/// https://cloud.google.com/service-mesh/docs/release-notes).
pub const MANAGED_REVISIONS: &[(&str, &str)] = &[
    ("asm-managed-rapid", "1.24.6-asm.3"),
    ("asm-managed", "1.23.6-asm.14"),
    ("asm-managed-stable", "1.22.8-asm.4"),
];

/// The image repository of managed proxies (`gcr.io/gke-release/asm/proxyv2:<version>`).
pub const MANAGED_PROXY_REPOSITORY: &str = "gcr.io/gke-release/asm/proxyv2";

/// The managed revision of a GKE release channel (`RAPID` → `asm-managed-rapid`,
/// `STABLE` → `asm-managed-stable`, anything else → `asm-managed`, the regular channel's).
pub fn managed_revision_of_channel(channel: Option<&str>) -> &'static str {
    match channel {
        Some("RAPID") => "asm-managed-rapid",
        Some("STABLE") => "asm-managed-stable",
        _ => "asm-managed",
    }
}

/// Whether `revision` is one of the managed revisions.
pub fn is_managed(revision: &str) -> bool {
    MANAGED_REVISIONS.iter().any(|(r, _)| *r == revision)
}

/// The proxy version of each managed revision; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct ProxyVersions(Arc<RwLock<BTreeMap<String, String>>>);

impl Default for ProxyVersions {
    fn default() -> Self {
        ProxyVersions::new(&BTreeMap::new())
    }
}

impl ProxyVersions {
    /// The defaults of [`MANAGED_REVISIONS`], with `overrides` (revision → version) applied.
    pub fn new(overrides: &BTreeMap<String, String>) -> ProxyVersions {
        let mut map: BTreeMap<String, String> = MANAGED_REVISIONS
            .iter()
            .map(|(r, v)| (r.to_string(), v.to_string()))
            .collect();
        map.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        ProxyVersions(Arc::new(RwLock::new(map)))
    }

    /// The proxy version of `revision`, if it is a known managed revision.
    pub fn get(&self, revision: &str) -> Option<String> {
        let map = match self.0.read() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.get(revision).cloned()
    }

    /// Changes the proxy version of `revision` (a channel upgrade).
    pub fn set(&self, revision: &str, version: &str) {
        let mut map = match self.0.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.insert(revision.to_string(), version.to_string());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_overrides_and_runtime_changes_are_shared() {
        let overrides = BTreeMap::from([("asm-managed".to_string(), "1.2.3-asm.4".to_string())]);
        let v = ProxyVersions::new(&overrides);
        assert_eq!(v.get("asm-managed").unwrap(), "1.2.3-asm.4");
        assert_eq!(v.get("asm-managed-rapid").unwrap(), "1.24.6-asm.3");
        assert_eq!(v.get("asm-1232-1"), None);
        let shared = v.clone();
        shared.set("asm-managed-rapid", "1.25.0-asm.1");
        assert_eq!(v.get("asm-managed-rapid").unwrap(), "1.25.0-asm.1");
        assert!(is_managed("asm-managed-stable"));
        assert!(!is_managed("default"));
    }

    #[test]
    fn proxy_version_knob_accepts_managed_revisions_only() {
        let set = |k: &str, v: &str| {
            crate::scenario::Scenario::build("fresh", &[(k.to_string(), v.to_string())])
        };
        let s = set("revision.asm-managed-rapid.proxy_version", "1.25.1-asm.2").unwrap();
        assert_eq!(
            ProxyVersions::new(&s.proxy_versions)
                .get("asm-managed-rapid")
                .unwrap(),
            "1.25.1-asm.2"
        );
        assert!(set("revision.asm-1232-1.proxy_version", "1.0.0").is_err());
        assert!(set("revision.asm-managed.image", "x").is_err());
        assert!(set("revision.asm-managed.proxy_version", "").is_err());
    }
}
