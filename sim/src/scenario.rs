//! Scenarios are data: the starting state of a simulated project and its clusters.
//! `fresh`, `installed`, `missing-permission`, `in-cluster`, `installed-workloads` and
//! `cross-project` are YAML files under `sim/scenarios/`; `fleet-N` is `fresh` with N clusters. `--set
//! key=value` tunes any of them. In a cluster's `objects`, the string
//! `${MANAGED_REVISION}` stands for the managed revision of the cluster's channel (after
//! the knobs), so `installed-workloads` follows `--set cluster.channel=…`.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::config::Timing;

/// The starting state of a sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub project_id: String,
    /// int64 as the APIs send it: a string of digits.
    pub project_number: String,
    /// The caller every accepted access token stands for.
    pub principal: String,
    /// Full service names (`container.googleapis.com`).
    pub enabled_services: Vec<String>,
    /// Permissions the principal lacks (`testIamPermissions` omits them, calls needing them
    /// answer 403 PERMISSION_DENIED).
    pub denied_permissions: Vec<String>,
    /// Whether the fleet `servicemesh` feature exists.
    pub servicemesh_feature: bool,
    /// CA Service pools (`projects/P/locations/L/caPools/N`, P one of the scenario's
    /// projects), each with an empty IAM policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_pools: Vec<String>,
    /// The project hosting the fleet when it is not the clusters' project (memberships
    /// and features live there); `None`: the clusters' project hosts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_project: Option<FleetProjectSpec>,
    pub clusters: Vec<ClusterSpec>,
    /// Simulated durations (not part of the scenario files; set with `timing.*`).
    #[serde(skip)]
    pub timing: Timing,
    /// Per-minute request quotas of the Google APIs (set with `quota.*`).
    #[serde(skip)]
    pub quotas: crate::google::quota::Quotas,
    /// Proxy versions of managed revisions that differ from the defaults (set with
    /// `revision.NAME.proxy_version`).
    #[serde(skip)]
    pub proxy_versions: BTreeMap<String, String>,
    /// How many `setIamPolicy` calls carrying an etag meet a concurrent writer (set with
    /// `iam.concurrent_writes=N`): another principal's change lands first, so the etag
    /// sent is stale and the call fails with 409 ABORTED.
    #[serde(skip)]
    pub iam_concurrent_writes: u32,
    /// Lifetime of the access tokens the sandbox issues (`token.ttl_s=N`); `None`: the
    /// hour Google gives them.
    #[serde(skip)]
    pub token_ttl: Option<std::time::Duration>,
}

/// A fleet host project other than the clusters' project. Its policy holds its own GKE Hub
/// and service mesh service agents (`service-NUMBER@gcp-sa-gkehub…`, `…@gcp-sa-servicemesh…`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetProjectSpec {
    pub project_id: String,
    /// int64 as the APIs send it: a string of digits.
    pub project_number: String,
    /// Full service names.
    pub enabled_services: Vec<String>,
}

/// One GKE cluster of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub name: String,
    /// Zone or region.
    pub location: String,
    /// `RAPID`, `REGULAR`, `STABLE`, or `null` for no release channel.
    pub channel: Option<String>,
    pub workload_identity: bool,
    /// GKE version, e.g. `1.32.6-gke.1025000`.
    pub kubernetes_version: String,
    pub labels: BTreeMap<String, String>,
    /// Whether a fleet membership for this cluster exists.
    pub registered: bool,
    /// Fleet management of the mesh for this membership (`MANAGEMENT_AUTOMATIC`), if any.
    pub management: Option<String>,
    /// Kubernetes manifests applied at sandbox start, in order; the sandbox is ready once
    /// every Pod they produce is Running and Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<serde_json::Value>,
    /// `NS/NAME` of workloads whose Pods created after start never become Ready (set with
    /// `workload.NS/NAME.ready=false`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unready_workloads: Vec<String>,
}

const FRESH: &str = include_str!("../scenarios/fresh.yaml");
const INSTALLED: &str = include_str!("../scenarios/installed.yaml");
const MISSING_PERMISSION: &str = include_str!("../scenarios/missing-permission.yaml");
const IN_CLUSTER: &str = include_str!("../scenarios/in-cluster.yaml");
const INSTALLED_WORKLOADS: &str = include_str!("../scenarios/installed-workloads.yaml");
const CROSS_PROJECT: &str = include_str!("../scenarios/cross-project.yaml");

/// Names accepted by [`Scenario::named`] (for help texts).
pub const SCENARIO_NAMES: &str = "fresh, installed, missing-permission, in-cluster, installed-workloads, cross-project, fleet-N (N ≥ 1)";

/// What `${MANAGED_REVISION}` in a cluster's objects becomes.
const MANAGED_REVISION_PLACEHOLDER: &str = "${MANAGED_REVISION}";

impl Scenario {
    /// The scenario called `name`.
    pub fn named(name: &str) -> Result<Scenario> {
        let text = match name {
            "fresh" => FRESH,
            "installed" => INSTALLED,
            "missing-permission" => MISSING_PERMISSION,
            "in-cluster" => IN_CLUSTER,
            "installed-workloads" => INSTALLED_WORKLOADS,
            "cross-project" => CROSS_PROJECT,
            other => match other.strip_prefix("fleet-").map(str::parse::<usize>) {
                Some(Ok(n)) if (1..=500).contains(&n) => return Scenario::fleet(n),
                _ => bail!(
                    "unknown scenario {name:?}; expected one of: {SCENARIO_NAMES} (N at most 500)"
                ),
            },
        };
        serde_yaml::from_str(text).with_context(|| format!("scenario {name} is malformed"))
    }

    /// `fresh` with `n` clusters `cluster-1..n`, all in one project and location.
    pub fn fleet(n: usize) -> Result<Scenario> {
        let mut s: Scenario = serde_yaml::from_str(FRESH).context("scenario fresh is malformed")?;
        s.project_id = "asm-fleet".into();
        s.project_number = "718276145904".into();
        let template = s.clusters[0].clone();
        s.clusters = (1..=n)
            .map(|i| ClusterSpec {
                name: format!("cluster-{i}"),
                ..template.clone()
            })
            .collect();
        Ok(s)
    }

    /// Applies one `--set key=value` knob:
    /// - `cluster.workload_identity=true|false`, `cluster.channel=RAPID|REGULAR|STABLE|NONE`,
    ///   `cluster.kubernetes_version=V`, `cluster.registered=true|false`,
    ///   `cluster.label.K=V` — for every cluster, or `cluster.NAME.…` for one;
    /// - `services.enabled=a,b,…` (replaces the list; short names get `.googleapis.com`),
    ///   `service.NAME=enabled|disabled`;
    /// - `deny=perm[,perm…]` (adds denied permissions), `allow=perm` (removes one);
    /// - `project.id=ID`, `project.number=N`, `principal=user:…`;
    /// - `clusters=N`: N copies of the first cluster, its objects included, named
    ///   `cluster-1..N` (a fleet of any scenario; apply it before `cluster.NAME.…` knobs);
    /// - `servicemesh_feature=true|false`;
    /// - `ca_pool=projects/P/locations/L/caPools/N` — a CA Service pool (empty policy; the
    ///   CA Service API is enabled in P);
    /// - `iam.concurrent_writes=N` — the next N `setIamPolicy` calls with an etag meet a
    ///   concurrent change (409 ABORTED);
    /// - `token.ttl_s=N` — access tokens the sandbox issues expire after N seconds;
    /// - `timing.NAME_ms=MS` (see [`Timing`]);
    /// - `quota.API.read_per_min=N`, `quota.API.write_per_min=N` (see
    ///   [`crate::google::quota`]);
    /// - `revision.NAME.proxy_version=V` (a managed revision's proxy version);
    /// - `workload.NS/NAME.ready=false|true` — Pods of workload NAME in NS (a Deployment,
    ///   StatefulSet, DaemonSet or Job) created after start crash-loop, in every cluster.
    pub fn apply_set(&mut self, key: &str, value: &str) -> Result<()> {
        let bad = || anyhow::anyhow!("--set {key}={value}: invalid value");
        let parse_bool = |v: &str| match v {
            "true" | "on" | "yes" => Ok(true),
            "false" | "off" | "no" => Ok(false),
            _ => Err(bad()),
        };
        if let Some(name) = key.strip_prefix("quota.") {
            return self.quotas.apply_set(name, value);
        }
        if let Some(name) = key.strip_prefix("timing.") {
            if self.timing.apply_set(name, value)? {
                return Ok(());
            }
            bail!("--set {key}: unknown timing knob");
        }
        if let Some(rest) = key.strip_prefix("workload.") {
            let workload = rest
                .strip_suffix(".ready")
                .filter(|w| {
                    w.split_once('/')
                        .is_some_and(|(ns, n)| !ns.is_empty() && !n.is_empty())
                })
                .ok_or_else(|| {
                    anyhow::anyhow!("--set {key}: expected workload.NAMESPACE/NAME.ready")
                })?;
            let ready = parse_bool(value)?;
            for c in &mut self.clusters {
                c.unready_workloads.retain(|w| w != workload);
                if !ready {
                    c.unready_workloads.push(workload.to_string());
                }
            }
            return Ok(());
        }
        if let Some(rest) = key.strip_prefix("revision.") {
            match rest.rsplit_once('.') {
                Some((rev, "proxy_version"))
                    if crate::revisions::is_managed(rev) && !value.is_empty() =>
                {
                    self.proxy_versions
                        .insert(rev.to_string(), value.to_string());
                    return Ok(());
                }
                _ => bail!(
                    "--set {key}: expected revision.asm-managed[-rapid|-stable].proxy_version"
                ),
            }
        }
        if let Some(rest) = key.strip_prefix("cluster.") {
            let (targets, field): (Vec<usize>, &str) = match rest.split_once('.') {
                Some((name, field)) if self.clusters.iter().any(|c| c.name == name) => (
                    self.clusters
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| c.name == name)
                        .map(|(i, _)| i)
                        .collect(),
                    field,
                ),
                _ => ((0..self.clusters.len()).collect(), rest),
            };
            for i in targets {
                let c = &mut self.clusters[i];
                match field {
                    "workload_identity" => c.workload_identity = parse_bool(value)?,
                    "registered" => c.registered = parse_bool(value)?,
                    "channel" => {
                        c.channel = match value.to_ascii_uppercase().as_str() {
                            "NONE" | "" => None,
                            v @ ("RAPID" | "REGULAR" | "STABLE" | "EXTENDED") => {
                                Some(v.to_string())
                            }
                            _ => return Err(bad()),
                        }
                    }
                    "kubernetes_version" => c.kubernetes_version = value.to_string(),
                    "location" => c.location = value.to_string(),
                    "management" => {
                        c.management =
                            (!value.is_empty() && value != "none").then(|| value.to_string())
                    }
                    f => match f.strip_prefix("label.") {
                        Some(label) => {
                            c.labels.insert(label.to_string(), value.to_string());
                        }
                        None => bail!("--set {key}: unknown cluster field {f:?}"),
                    },
                }
            }
            return Ok(());
        }
        if let Some(name) = key.strip_prefix("service.") {
            let full = full_service_name(name);
            self.enabled_services.retain(|s| *s != full);
            match value {
                "enabled" | "true" => self.enabled_services.push(full),
                "disabled" | "false" => {}
                _ => return Err(bad()),
            }
            return Ok(());
        }
        match key {
            "services.enabled" => {
                self.enabled_services = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(full_service_name)
                    .collect();
            }
            "deny" => self
                .denied_permissions
                .extend(value.split(',').map(|p| p.trim().to_string())),
            "allow" => self.denied_permissions.retain(|p| p != value),
            "clusters" => {
                let n: usize = value.parse().map_err(|_| bad())?;
                let template = self.clusters.first().cloned().ok_or_else(bad)?;
                if !(1..=500).contains(&n) {
                    return Err(bad());
                }
                self.clusters = (1..=n)
                    .map(|i| ClusterSpec {
                        name: format!("cluster-{i}"),
                        ..template.clone()
                    })
                    .collect();
            }
            "project.id" => self.project_id = value.to_string(),
            "project.number" => {
                if value.is_empty() || !value.chars().all(|c| c.is_ascii_digit()) {
                    return Err(bad());
                }
                self.project_number = value.to_string();
            }
            "principal" => self.principal = value.to_string(),
            "servicemesh_feature" => self.servicemesh_feature = parse_bool(value)?,
            "ca_pool" => {
                let parts: Vec<&str> = value.split('/').collect();
                let known = |p: &str| {
                    p == self.project_id
                        || self
                            .fleet_project
                            .as_ref()
                            .is_some_and(|f| f.project_id == p)
                };
                match parts.as_slice() {
                    ["projects", p, "locations", l, "caPools", n]
                        if known(p) && !l.is_empty() && !n.is_empty() =>
                    {
                        if !self.ca_pools.iter().any(|x| x == value) {
                            self.ca_pools.push(value.to_string());
                        }
                        // A pool exists only where the CA Service API is on.
                        let api = "privateca.googleapis.com".to_string();
                        let services = match &mut self.fleet_project {
                            Some(f) if f.project_id == *p => &mut f.enabled_services,
                            _ => &mut self.enabled_services,
                        };
                        if !services.contains(&api) {
                            services.push(api);
                        }
                    }
                    _ => bail!(
                        "--set ca_pool={value}: expected projects/PROJECT/locations/LOCATION/caPools/NAME in one of the scenario's projects"
                    ),
                }
            }
            "iam.concurrent_writes" => {
                self.iam_concurrent_writes = value.parse().map_err(|_| bad())?;
            }
            "token.ttl_s" => {
                let secs: u64 = value.parse().map_err(|_| bad())?;
                if secs == 0 {
                    return Err(bad());
                }
                self.token_ttl = Some(std::time::Duration::from_secs(secs));
            }
            _ => bail!("--set {key}: unknown knob"),
        }
        Ok(())
    }

    /// The scenario called `name` with every knob applied.
    pub fn build(name: &str, sets: &[(String, String)]) -> Result<Scenario> {
        let mut s = Scenario::named(name)?;
        for (k, v) in sets {
            s.apply_set(k, v)?;
        }
        for c in &mut s.clusters {
            let revision = crate::revisions::managed_revision_of_channel(c.channel.as_deref());
            for o in &mut c.objects {
                replace_strings(o, MANAGED_REVISION_PLACEHOLDER, revision);
            }
        }
        Ok(s)
    }

    /// The location all clusters share (the first cluster's).
    pub fn location(&self) -> &str {
        self.clusters
            .first()
            .map(|c| c.location.as_str())
            .unwrap_or("us-central1-c")
    }
}

/// Replaces every string value equal to `from` (map keys stay) by `to`.
fn replace_strings(v: &mut serde_json::Value, from: &str, to: &str) {
    match v {
        serde_json::Value::String(s) if s == from => *s = to.to_string(),
        serde_json::Value::Array(items) => {
            for i in items {
                replace_strings(i, from, to);
            }
        }
        serde_json::Value::Object(m) => {
            for i in m.values_mut() {
                replace_strings(i, from, to);
            }
        }
        _ => {}
    }
}

/// `mesh` → `mesh.googleapis.com`; full names pass through.
pub fn full_service_name(name: &str) -> String {
    if name.contains('.') {
        name.to_string()
    } else {
        format!("{name}.googleapis.com")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_scenarios_parse() {
        for name in [
            "fresh",
            "installed",
            "missing-permission",
            "in-cluster",
            "installed-workloads",
            "fleet-3",
        ] {
            let s = Scenario::named(name).unwrap();
            assert!(!s.clusters.is_empty(), "{name}");
        }
        let fresh = Scenario::named("fresh").unwrap();
        assert_eq!(fresh.project_id, "asm-fresh");
        assert_eq!(fresh.clusters[0].location, "us-central1-c");
        assert!(
            !fresh
                .enabled_services
                .contains(&"gkehub.googleapis.com".to_string())
        );
        assert_eq!(Scenario::named("fleet-3").unwrap().clusters.len(), 3);
        assert!(Scenario::named("fleet-0").is_err());
        assert!(Scenario::named("nope").is_err());
    }

    #[test]
    fn cluster_objects_are_optional_manifests() {
        let mut s = Scenario::named("fresh").unwrap();
        assert!(s.clusters[0].objects.is_empty());
        let text = serde_yaml::to_string(&s).unwrap();
        assert!(!text.contains("objects"));
        s.clusters[0].objects = vec![
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}),
        ];
        let back: Scenario = serde_yaml::from_str(&serde_yaml::to_string(&s).unwrap()).unwrap();
        assert_eq!(back.clusters[0].objects, s.clusters[0].objects);
    }

    /// The namespaces of a cluster's objects with their `istio.io/rev` label.
    fn rev_labels(s: &Scenario) -> Vec<(String, String)> {
        s.clusters[0]
            .objects
            .iter()
            .filter(|o| o["kind"] == "Namespace")
            .filter_map(|o| {
                let rev = o["metadata"]["labels"]["istio.io/rev"].as_str()?;
                Some((o["metadata"]["name"].as_str()?.to_string(), rev.to_string()))
            })
            .collect()
    }

    #[test]
    fn installed_workloads_namespaces_follow_the_channel_revision() {
        let regular = Scenario::build("installed-workloads", &[]).unwrap();
        assert_eq!(
            rev_labels(&regular),
            [
                ("shop".to_string(), "asm-managed".to_string()),
                ("catalog".to_string(), "asm-managed".to_string())
            ]
        );
        let rapid = Scenario::build(
            "installed-workloads",
            &[("cluster.channel".into(), "RAPID".into())],
        )
        .unwrap();
        assert!(
            rev_labels(&rapid)
                .iter()
                .all(|(_, r)| r == "asm-managed-rapid"),
            "{:?}",
            rev_labels(&rapid)
        );
        let text = serde_json::to_string(&rapid.clusters[0].objects).unwrap();
        assert!(!text.contains(MANAGED_REVISION_PLACEHOLDER), "{text}");
    }

    #[test]
    fn in_cluster_is_fresh_with_an_asm_191_control_plane() {
        let s = Scenario::named("in-cluster").unwrap();
        let fresh = Scenario::named("fresh").unwrap();
        assert_eq!(s.enabled_services, fresh.enabled_services);
        assert!(!s.servicemesh_feature && !s.clusters[0].registered);
        assert_eq!(s.clusters[0].channel.as_deref(), Some("REGULAR"));
        let names: Vec<(&str, &str)> = s.clusters[0]
            .objects
            .iter()
            .filter(|o| o["metadata"]["name"] == "istiod-asm-191-1")
            .map(|o| {
                (
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["labels"]["istio.io/rev"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("Deployment", "asm-191-1"),
                ("Service", "asm-191-1"),
                ("HorizontalPodAutoscaler", "asm-191-1"),
                ("PodDisruptionBudget", "asm-191-1")
            ]
        );
        assert_eq!(
            rev_labels(&s),
            [
                ("frontend".to_string(), "asm-191-1".to_string()),
                ("backend".to_string(), "asm-191-1".to_string())
            ]
        );
    }

    #[test]
    fn knobs_change_the_scenario() {
        let s = Scenario::build(
            "fleet-2",
            &[
                ("cluster.workload_identity".into(), "false".into()),
                ("cluster.cluster-2.channel".into(), "rapid".into()),
                ("service.gkehub".into(), "enabled".into()),
                ("deny".into(), "gkehub.features.create".into()),
                ("timing.gke_op_ms".into(), "0".into()),
            ],
        )
        .unwrap();
        assert!(s.clusters.iter().all(|c| !c.workload_identity));
        assert_eq!(s.clusters[0].channel.as_deref(), Some("REGULAR"));
        assert_eq!(s.clusters[1].channel.as_deref(), Some("RAPID"));
        assert!(
            s.enabled_services
                .contains(&"gkehub.googleapis.com".to_string())
        );
        assert_eq!(
            s.denied_permissions,
            vec!["gkehub.features.create".to_string()]
        );
        assert!(s.timing.gke_op.is_zero());
        let s = Scenario::build(
            "fleet-2",
            &[("workload.istio-system/gw.ready".into(), "false".into())],
        )
        .unwrap();
        assert!(
            s.clusters
                .iter()
                .all(|c| c.unready_workloads == vec!["istio-system/gw".to_string()])
        );
        assert!(Scenario::build("fresh", &[("workload.gw.ready".into(), "false".into())]).is_err());
        assert!(Scenario::build("fresh", &[("bogus".into(), "1".into())]).is_err());
        assert!(Scenario::build("fresh", &[("cluster.channel".into(), "weekly".into())]).is_err());
    }

    #[test]
    fn clusters_knob_copies_the_first_cluster_with_its_objects() {
        let one = Scenario::named("in-cluster").unwrap();
        let s = Scenario::build("in-cluster", &[("clusters".into(), "3".into())]).unwrap();
        let names: Vec<&str> = s.clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cluster-1", "cluster-2", "cluster-3"]);
        assert!(!one.clusters[0].objects.is_empty());
        for c in &s.clusters {
            assert_eq!(c.objects, one.clusters[0].objects);
        }
        for bad in ["0", "501", "x"] {
            assert!(Scenario::build("in-cluster", &[("clusters".into(), bad.into())]).is_err());
        }
    }
}
