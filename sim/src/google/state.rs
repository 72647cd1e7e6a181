//! The state of the simulated project, shared by every API behind one mutex, and how it
//! is built from a [`Scenario`].
//!
//! Everything a client can observe lives here; the API modules only parse requests and
//! render this state in each API's own JSON shape.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::ClusterEndpoint;
use super::ops::Operation;
use crate::config::Timing;
use crate::member::MemberCluster;
use crate::revisions::ProxyVersions;
use crate::scenario::Scenario;

/// Services the simulated project knows about, with their console titles. An unfiltered
/// `services list` returns all of them with their states.
pub const SERVICE_CATALOGUE: &[(&str, &str)] = &[
    ("anthos.googleapis.com", "Anthos API"),
    (
        "cloudresourcemanager.googleapis.com",
        "Cloud Resource Manager API",
    ),
    ("cloudtrace.googleapis.com", "Cloud Trace API"),
    ("compute.googleapis.com", "Compute Engine API"),
    ("connectgateway.googleapis.com", "Connect Gateway API"),
    ("container.googleapis.com", "Kubernetes Engine API"),
    ("gkeconnect.googleapis.com", "GKE Connect API"),
    ("gkehub.googleapis.com", "GKE Hub API"),
    (
        "iam.googleapis.com",
        "Identity and Access Management (IAM) API",
    ),
    (
        "iamcredentials.googleapis.com",
        "IAM Service Account Credentials API",
    ),
    ("logging.googleapis.com", "Cloud Logging API"),
    ("mesh.googleapis.com", "Cloud Service Mesh API"),
    (
        "meshca.googleapis.com",
        "Anthos Service Mesh Certificate Authority API",
    ),
    ("meshconfig.googleapis.com", "Mesh Configuration API"),
    ("monitoring.googleapis.com", "Cloud Monitoring API"),
    ("networksecurity.googleapis.com", "Network Security API"),
    ("privateca.googleapis.com", "Certificate Authority API"),
    ("networkservices.googleapis.com", "Network Services API"),
    ("serviceusage.googleapis.com", "Service Usage API"),
    ("stackdriver.googleapis.com", "Stackdriver API"),
    ("trafficdirector.googleapis.com", "Traffic Director API"),
    (
        "workloadcertificate.googleapis.com",
        "Workload Certificate API",
    ),
];

/// The console title of a service (`GKE Hub API`), if it is in the catalogue.
pub fn service_title(service: &str) -> Option<&'static str> {
    SERVICE_CATALOGUE
        .iter()
        .find(|(n, _)| *n == service)
        .map(|(_, t)| *t)
}

/// The service agents of a fleet host project present in its own policy (the APIs that
/// create them are enabled there): `(service, role)`.
pub const SERVICE_AGENTS: &[(&str, &str)] = &[
    ("gkehub", "roles/gkehub.serviceAgent"),
    ("servicemesh", "roles/anthosservicemesh.serviceAgent"),
];

/// Where the ControlPlaneRevision CRD stands in one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrdState {
    Absent,
    /// The controller task is waiting `timing.crd_install`.
    Scheduled,
    Installed,
}

/// A GKE cluster as container v1 reports it.
#[derive(Debug)]
pub struct Cluster {
    pub name: String,
    pub location: String,
    /// `RAPID`/`REGULAR`/`STABLE`/`EXTENDED`, `None` = no release channel.
    pub channel: Option<String>,
    pub version: String,
    pub labels: BTreeMap<String, String>,
    pub label_fingerprint: String,
    /// Bumped on every label write so the fingerprint changes even for equal labels.
    pub label_writes: u64,
    pub workload_pool: Option<String>,
    pub mesh_certificates: bool,
    pub fleet_project: Option<String>,
    pub endpoint: String,
    pub ca_pem: String,
    pub id: String,
    pub create_time: SystemTime,
    /// `RUNNING`, or `RECONCILING` while an update runs.
    pub status: &'static str,
    /// Short name of the GKE operation running on this cluster, if any.
    pub running_op: Option<String>,
    pub crd: CrdState,
    pub member: Option<Arc<dyn MemberCluster>>,
    /// `spec.owner.id` of the in-cluster `memberships.hub.gke.io/membership` object as
    /// last applied, `None` when there is none.
    pub membership_object: Option<String>,
    /// Whether the managed data plane controller task watches this cluster.
    pub dataplane_controller: bool,
}

impl Cluster {
    /// Recomputes the label fingerprint: 8 hex digits, new after every write.
    pub fn refresh_fingerprint(&mut self) {
        let mut h = Sha256::new();
        h.update(self.label_writes.to_be_bytes());
        for (k, v) in &self.labels {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        }
        self.label_fingerprint = hex(&h.finalize()[..4]);
    }

    /// The managed revision fleet management installs for this cluster's channel.
    pub fn managed_revision(&self) -> (&'static str, &'static str) {
        match self.channel.as_deref() {
            Some("RAPID") => ("asm-managed-rapid", "rapid"),
            Some("STABLE") => ("asm-managed-stable", "stable"),
            _ => ("asm-managed", "regular"),
        }
    }
}

/// The managed control plane of one membership, as the servicemesh feature reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlPlane {
    Off,
    Provisioning { since: SystemTime },
    Active { revision: String, since: SystemTime },
}

/// A fleet membership.
#[derive(Debug, Clone)]
pub struct Membership {
    pub location: String,
    pub id: String,
    /// Name of the simulated cluster it points at.
    pub cluster: Option<String>,
    /// `endpoint.gkeCluster.resourceLink` as sent by the client.
    pub resource_link: String,
    pub issuer: Option<String>,
    /// `CREATING`, `READY`, `UPDATING`, `DELETING`.
    pub state: &'static str,
    pub unique_id: String,
    pub create_time: SystemTime,
    pub update_time: SystemTime,
    pub labels: Value,
    pub description: Option<String>,
    pub control_plane: ControlPlane,
}

/// A fleet feature (v1 `Feature`, global).
#[derive(Debug, Clone)]
pub struct Feature {
    /// `ENABLING`, `ACTIVE`, `DISABLING`.
    pub state: &'static str,
    pub create_time: SystemTime,
    pub update_time: SystemTime,
    pub labels: Value,
    pub fleet_default_member_config: Option<Value>,
}

/// The project IAM policy.
#[derive(Debug, Clone)]
pub struct IamPolicy {
    pub version: i64,
    pub bindings: Value,
    pub audit_configs: Option<Value>,
    /// Bumped on every write; the etag is derived from it.
    pub serial: u64,
}

impl IamPolicy {
    /// Another principal's write (`iam.concurrent_writes`): grants
    /// `user:concurrent-writer-N@example.com` `roles/viewer` and moves the etag on.
    pub fn concurrent_write(&mut self) {
        let member = format!("user:concurrent-writer-{}@example.com", self.serial);
        let mut bindings = self.bindings.as_array().cloned().unwrap_or_default();
        match bindings.iter_mut().find(|b| b["role"] == "roles/viewer") {
            Some(b) => {
                if let Some(m) = b["members"].as_array_mut() {
                    m.push(json!(member));
                }
            }
            None => bindings.push(json!({"role": "roles/viewer", "members": [member]})),
        }
        self.bindings = Value::Array(bindings);
        self.serial += 1;
    }

    /// The etag: base64 of 8 bytes, like Google's (`BwYAAAAAAAA=`).
    pub fn etag(&self) -> String {
        let mut bytes = [0u8; 8];
        bytes[0] = 0x07;
        bytes[1] = 0x06;
        bytes[2..].copy_from_slice(&self.serial.to_be_bytes()[2..]);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    pub fn json(&self) -> Value {
        let mut p = json!({"version": self.version, "etag": self.etag()});
        // Google leaves `bindings` out of an empty policy.
        if self.bindings.as_array().is_some_and(|b| !b.is_empty()) {
            p["bindings"] = self.bindings.clone();
        }
        if let Some(a) = &self.audit_configs {
            p["auditConfigs"] = a.clone();
        }
        p
    }
}

/// One Google Cloud project of the sandbox: its identity, enabled services and IAM policy.
#[derive(Debug)]
pub struct Project {
    pub id: String,
    /// int64 as the APIs send it: a string of digits.
    pub number: String,
    pub create_time: SystemTime,
    pub enabled: BTreeSet<String>,
    pub iam: IamPolicy,
}

impl Project {
    fn new(
        id: &str,
        number: &str,
        created: SystemTime,
        enabled: &[String],
        bindings: Value,
    ) -> Project {
        Project {
            id: id.to_string(),
            number: number.to_string(),
            create_time: created,
            enabled: enabled.iter().cloned().collect(),
            iam: IamPolicy {
                version: 1,
                bindings,
                audit_configs: None,
                // Distinct per project so that one project's etag is stale for another.
                serial: 0x1a2b3c + number.bytes().map(u64::from).sum::<u64>(),
            },
        }
    }

    /// Whether `p` names this project (by id or number).
    pub fn is(&self, p: &str) -> bool {
        p == self.id || p == self.number
    }
}

/// The bindings a new project's policy starts with: the GKE service agent, the default
/// compute and Google APIs service accounts as editors, `owner` as owner, and the service
/// agents of `agents` (`(service, role)`: `gkehub` → `service-N@gcp-sa-gkehub…`).
fn default_bindings(number: &str, owner: &str, agents: &[(&str, &str)]) -> Value {
    let mut bindings = vec![
        json!({"role": "roles/container.serviceAgent",
               "members": [format!("serviceAccount:service-{number}@container-engine-robot.iam.gserviceaccount.com")]}),
        json!({"role": "roles/editor",
               "members": [format!("serviceAccount:{number}-compute@developer.gserviceaccount.com"),
                           format!("serviceAccount:{number}@cloudservices.gserviceaccount.com")]}),
        json!({"role": "roles/owner", "members": [owner]}),
    ];
    for (service, role) in agents {
        bindings.push(json!({"role": role, "members": [
            format!("serviceAccount:service-{number}@gcp-sa-{service}.iam.gserviceaccount.com")
        ]}));
    }
    Value::Array(bindings)
}

/// Everything the simulated Google APIs know.
#[derive(Debug)]
pub struct State {
    /// The clusters' project first, then the fleet host project when it is another one.
    pub projects: Vec<Project>,
    /// Index in `projects` of the fleet host project (memberships and features live there).
    pub fleet: usize,
    /// Who every accepted token stands for (kept for inspection; IAM messages do not name it).
    #[allow(dead_code)]
    pub principal: String,
    pub denied: BTreeSet<String>,
    /// `setIamPolicy` calls still to meet a concurrent writer (`iam.concurrent_writes`).
    pub iam_concurrent_writes: u32,
    /// CA Service pools by full name (`projects/P/locations/L/caPools/N`), with their IAM
    /// policies.
    pub ca_pools: BTreeMap<String, IamPolicy>,
    pub clusters: Vec<Cluster>,
    /// Keyed by (location, membership id).
    pub memberships: BTreeMap<(String, String), Membership>,
    /// Keyed by feature id (`servicemesh`).
    pub features: BTreeMap<String, Feature>,
    /// Per-membership feature specs in the v1 `MembershipFeatureSpec` shape
    /// (`{"mesh": {...}, "origin": {...}}`), keyed by (feature id, location, membership id);
    /// the v1 `membershipSpecs` map and the v2 MembershipFeature `spec` are two views of it.
    pub membership_specs: BTreeMap<(String, String, String), Value>,
    pub timing: Timing,
    /// Proxy versions of the managed revisions (the handle the clusters share).
    pub proxy_versions: ProxyVersions,
    /// All operations of the three styles, keyed by their lookup name (GKE: short name,
    /// Service Usage: `operations/…`, Hub: the last path segment).
    pub ops: BTreeMap<String, Operation>,
    seq: u64,
}

impl State {
    /// The starting state of `scenario`; the Kubernetes side of `installed` is applied by
    /// the caller.
    pub fn from_scenario(scenario: &Scenario, endpoints: &[ClusterEndpoint]) -> State {
        let now = SystemTime::now();
        let created = now - std::time::Duration::from_secs(86_400 * 30);
        let id = &scenario.project_id;
        let number = &scenario.project_number;
        let mut projects = vec![Project::new(
            id,
            number,
            created,
            &scenario.enabled_services,
            default_bindings(number, &scenario.principal, &[]),
        )];
        if let Some(f) = &scenario.fleet_project {
            projects.push(Project::new(
                &f.project_id,
                &f.project_number,
                created,
                &f.enabled_services,
                default_bindings(&f.project_number, &scenario.principal, SERVICE_AGENTS),
            ));
        }
        let fleet = projects.len() - 1;
        let fleet_id = projects[fleet].id.clone();
        let mut st = State {
            projects,
            fleet,
            principal: scenario.principal.clone(),
            denied: scenario.denied_permissions.iter().cloned().collect(),
            iam_concurrent_writes: scenario.iam_concurrent_writes,
            ca_pools: scenario
                .ca_pools
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let policy = IamPolicy {
                        version: 1,
                        bindings: json!([]),
                        audit_configs: None,
                        serial: 0x2c3d4e + i as u64,
                    };
                    (name.clone(), policy)
                })
                .collect(),
            clusters: Vec::new(),
            memberships: BTreeMap::new(),
            features: BTreeMap::new(),
            membership_specs: BTreeMap::new(),
            timing: scenario.timing.clone(),
            proxy_versions: ProxyVersions::new(&scenario.proxy_versions),
            ops: BTreeMap::new(),
            seq: 0,
        };
        if scenario.servicemesh_feature {
            st.features.insert(
                "servicemesh".into(),
                Feature {
                    state: "ACTIVE",
                    create_time: created,
                    update_time: created,
                    labels: json!({}),
                    fleet_default_member_config: None,
                },
            );
        }
        for spec in &scenario.clusters {
            let ep = endpoints.iter().find(|e| e.name == spec.name);
            let mut c = Cluster {
                name: spec.name.clone(),
                location: spec.location.clone(),
                channel: spec.channel.clone(),
                version: spec.kubernetes_version.clone(),
                labels: spec.labels.clone(),
                label_fingerprint: String::new(),
                label_writes: 0,
                workload_pool: spec.workload_identity.then(|| format!("{id}.svc.id.goog")),
                mesh_certificates: false,
                fleet_project: None,
                endpoint: ep.map(|e| e.endpoint.clone()).unwrap_or_default(),
                ca_pem: ep.map(|e| e.ca_pem.clone()).unwrap_or_default(),
                id: hex(&Sha256::digest(format!("{id}/{}/{}", spec.location, spec.name))[..16]),
                create_time: created,
                status: "RUNNING",
                running_op: None,
                crd: CrdState::Absent,
                member: ep.map(|e| e.member.clone()),
                membership_object: None,
                dataplane_controller: false,
            };
            c.refresh_fingerprint();
            if spec.registered {
                let location = region_of(&spec.location).to_string();
                let automatic = spec.management.as_deref() == Some("MANAGEMENT_AUTOMATIC");
                if scenario.servicemesh_feature {
                    c.crd = CrdState::Installed;
                }
                let control_plane = if automatic && scenario.servicemesh_feature {
                    ControlPlane::Active {
                        revision: c.managed_revision().0.to_string(),
                        since: created,
                    }
                } else {
                    ControlPlane::Off
                };
                if let Some(m) = &spec.management {
                    st.membership_specs.insert(
                        ("servicemesh".into(), location.clone(), spec.name.clone()),
                        json!({"mesh": {"management": m}}),
                    );
                }
                c.fleet_project = Some(fleet_id.clone());
                let membership = Membership {
                    location: location.clone(),
                    id: spec.name.clone(),
                    cluster: Some(spec.name.clone()),
                    resource_link: format!(
                        "//container.googleapis.com/projects/{id}/locations/{}/clusters/{}",
                        spec.location, spec.name
                    ),
                    issuer: spec.workload_identity.then(|| {
                        format!(
                            "https://container.googleapis.com/v1/projects/{id}/locations/{}/clusters/{}",
                            spec.location, spec.name
                        )
                    }),
                    state: "READY",
                    unique_id: uuid_like(&format!("{fleet_id}/{location}/{}", spec.name)),
                    create_time: created,
                    update_time: created,
                    labels: json!({}),
                    description: None,
                    control_plane,
                };
                st.memberships
                    .insert((location, spec.name.clone()), membership);
            }
            st.clusters.push(c);
        }
        st
    }

    /// Whether `p` names one of the sandbox's projects (by id or number).
    pub fn is_project(&self, p: &str) -> bool {
        self.project_index(p).is_some()
    }

    /// The index in `projects` of the project `p` names (by id or number).
    pub fn project_index(&self, p: &str) -> Option<usize> {
        self.projects.iter().position(|x| x.is(p))
    }

    /// The project `p` names (by id or number).
    pub fn project(&self, p: &str) -> Option<&Project> {
        self.projects.iter().find(|x| x.is(p))
    }

    /// The clusters' project.
    pub fn home(&self) -> &Project {
        &self.projects[0]
    }

    /// The fleet host project (the clusters' project unless the scenario names another).
    pub fn fleet_host(&self) -> &Project {
        &self.projects[self.fleet]
    }

    /// Whether `p` names the clusters' project.
    pub fn is_home(&self, p: &str) -> bool {
        self.home().is(p)
    }

    /// Whether `p` names the fleet host project.
    pub fn is_fleet(&self, p: &str) -> bool {
        self.fleet_host().is(p)
    }

    /// A fresh number for names and ids.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Random-looking hex of `len` digits, unique per call.
    pub fn fresh_hex(&mut self, len: usize) -> String {
        let seq = self.next_seq();
        let mut h = Sha256::new();
        h.update(seq.to_be_bytes());
        h.update(format!("{:?}{}", SystemTime::now(), self.home().number));
        let mut s = hex(&h.finalize());
        s.truncate(len);
        s
    }

    pub fn cluster(&self, location: &str, name: &str) -> Option<&Cluster> {
        self.clusters
            .iter()
            .find(|c| c.name == name && (location == "-" || c.location == location))
    }

    pub fn cluster_mut(&mut self, location: &str, name: &str) -> Option<&mut Cluster> {
        self.clusters
            .iter_mut()
            .find(|c| c.name == name && (location == "-" || c.location == location))
    }

    pub fn cluster_by_name(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// Key of a membership in v1 `membershipSpecs`/`membershipStates` maps (project number).
    pub fn membership_key(&self, location: &str, id: &str) -> String {
        format!(
            "projects/{}/locations/{location}/memberships/{id}",
            self.fleet_host().number
        )
    }

    /// The full name of a membership (project id, as GKE Hub names resources).
    pub fn membership_name(&self, location: &str, id: &str) -> String {
        format!(
            "projects/{}/locations/{location}/memberships/{id}",
            self.fleet_host().id
        )
    }

    /// The membership an `membershipSpecs` key names (`projects/ID|NUMBER/locations/L/memberships/M`).
    pub fn parse_membership_key(&self, key: &str) -> Option<(String, String)> {
        let parts: Vec<&str> = key.split('/').collect();
        match parts.as_slice() {
            ["projects", p, "locations", l, "memberships", m] if self.is_fleet(p) => {
                Some((l.to_string(), m.to_string()))
            }
            _ => None,
        }
    }

    /// Applies every operation whose simulated duration has passed. Each effect is applied
    /// exactly once: it is taken out of the operation before it runs.
    pub fn settle(&mut self, now: Instant) -> bool {
        let mut due: Vec<(Instant, String)> = self
            .ops
            .iter()
            .filter(|(_, op)| op.effect.is_some() && op.deadline <= now)
            .map(|(k, op)| (op.deadline, k.clone()))
            .collect();
        due.sort();
        let changed = !due.is_empty();
        for (_, key) in due {
            let Some(effect) = self.ops.get_mut(&key).and_then(|op| op.effect.take()) else {
                continue;
            };
            let outcome = super::ops::apply_effect(self, effect);
            if let Some(op) = self.ops.get_mut(&key) {
                op.finish(outcome);
            }
        }
        changed
    }
}

/// The region of a zone (`us-central1-c` → `us-central1`); a region is returned as is.
pub fn region_of(location: &str) -> &str {
    match location.rsplit_once('-') {
        Some((region, zone)) if location.matches('-').count() >= 2 && zone.len() == 1 => region,
        _ => location,
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A deterministic UUID-shaped id for `seed`.
pub fn uuid_like(seed: &str) -> String {
    let h = hex(&Sha256::digest(seed.as_bytes()));
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// RFC 3339 UTC with nanoseconds, as Google APIs print timestamps.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, dd) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Milliseconds since the epoch (GKE operation names embed them).
pub fn epoch_ms(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_times() {
        assert_eq!(region_of("us-central1-c"), "us-central1");
        assert_eq!(region_of("us-central1"), "us-central1");
        assert_eq!(region_of("europe-west4-a"), "europe-west4");
        assert_eq!(
            rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20.000000000Z"
        );
    }

    #[test]
    fn installed_scenario_state() {
        let s = Scenario::named("installed").unwrap();
        let st = State::from_scenario(&s, &[]);
        let m = st
            .memberships
            .get(&("us-central1".to_string(), "cluster-1".to_string()))
            .unwrap();
        assert_eq!(m.state, "READY");
        assert!(matches!(m.control_plane, ControlPlane::Active { .. }));
        assert_eq!(st.clusters[0].crd, CrdState::Installed);
        assert_eq!(
            st.clusters[0].labels.get("mesh_id").map(String::as_str),
            Some("proj-518276145902")
        );
        assert!(st.features.contains_key("servicemesh"));
    }
}
