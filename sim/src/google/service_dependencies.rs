//! Which services enabling a service also enables. Service Usage enables a service's
//! dependencies with it ("Enabling a service also enables the services it depends on",
//! https://cloud.google.com/service-usage/docs/enable-disable); the table below is data,
//! each entry with the public page that lists them.

use std::collections::BTreeSet;

/// One service and the services enabling it enables too.
#[derive(Debug)]
pub struct Dependency {
    pub service: &'static str,
    pub enables: &'static [&'static str],
    /// Where the list is published (data for readers; the tests check every entry has one).
    #[cfg_attr(not(test), allow(dead_code))]
    pub source: &'static str,
}

/// The dependencies the simulated project knows about.
pub const DEPENDENCIES: &[Dependency] = &[
    Dependency {
        service: "mesh.googleapis.com",
        enables: &[
            "meshconfig.googleapis.com",
            "meshca.googleapis.com",
            "container.googleapis.com",
            "gkehub.googleapis.com",
            "monitoring.googleapis.com",
            "logging.googleapis.com",
            "cloudtrace.googleapis.com",
            "trafficdirector.googleapis.com",
            "networkservices.googleapis.com",
            "networksecurity.googleapis.com",
        ],
        // "Enabling mesh.googleapis.com enables the following APIs".
        source: "https://cloud.google.com/service-mesh/docs/onboarding/provision-control-plane",
    },
    Dependency {
        service: "container.googleapis.com",
        enables: &["compute.googleapis.com"],
        // The Kubernetes Engine API page: enabling it enables the Compute Engine API.
        source: "https://console.cloud.google.com/apis/library/container.googleapis.com",
    },
];

/// `ids` and everything they depend on, transitively.
pub fn with_dependencies(ids: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = ids.to_vec();
    while let Some(id) = todo.pop() {
        if !out.insert(id.clone()) {
            continue;
        }
        if let Some(d) = DEPENDENCIES.iter().find(|d| d.service == id) {
            todo.extend(d.enables.iter().map(|s| s.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesh_enables_gkehub_and_container_enables_compute_transitively() {
        let all = with_dependencies(&["mesh.googleapis.com".to_string()]);
        assert!(all.contains("mesh.googleapis.com"));
        assert!(all.contains("gkehub.googleapis.com"));
        assert!(all.contains("meshconfig.googleapis.com"));
        assert!(all.contains("compute.googleapis.com"));
        let only = with_dependencies(&["iam.googleapis.com".to_string()]);
        assert_eq!(only.len(), 1);
    }

    #[test]
    fn every_dependency_is_in_the_catalogue_and_has_a_source() {
        for d in DEPENDENCIES {
            assert!(d.source.starts_with("https://"), "{}", d.service);
            for s in d.enables.iter().chain([&d.service]) {
                assert!(super::super::state::service_title(s).is_some(), "{s}");
            }
        }
    }
}
