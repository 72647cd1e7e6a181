//! One module per capability; each has an observation part (I/O, in `observe`) and a pure
//! planning part that turns what was observed into checks and actions.
//!
//! [`plan_mesh`] is the pure function `(MeshSpec, Observed) -> Plan<Step>` behind
//! `asm install --managed` and `asm validate`.

pub mod apis;
pub mod apply;
pub mod cluster;
pub mod control_plane;
pub mod dataplane;
pub mod fleet;
pub mod gateway;
pub mod iam;
pub mod iam_bindings;
pub mod kube_actions;
pub mod kube_permissions;
pub mod mesh;
pub mod migrate;
pub mod observe;
pub mod remote_secret;
pub mod retire;
pub mod rollback;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::plan::{Action, Check, Op, Plan, Target};
use crate::spec::{Channel, ClusterRef, MeshSpec, ProjectId, Scope};

/// The executable payload of an action: the exact change to make. Clusters are indexes
/// into `MeshSpec::clusters`. Serialized into saved plans (`--plan-out`); no secrets.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// `serviceusage batchEnable` on `project`.
    EnableApis {
        project: ProjectId,
        services: Vec<String>,
    },
    /// Create the fleet `servicemesh` feature.
    CreateFeature { project: ProjectId },
    /// `PUT cluster` with `desiredWorkloadIdentityConfig`.
    EnableWorkloadIdentity { cluster: usize, pool: String },
    /// Read-modify-write of the cluster labels with `labelFingerprint`.
    SetClusterLabel {
        cluster: usize,
        key: String,
        value: String,
    },
    /// Create the fleet membership.
    RegisterMembership {
        cluster: usize,
        location: String,
        id: String,
    },
    /// Server-side apply of a Kubernetes object (namespace, ConfigMap, CR).
    Apply { cluster: usize, object: Value },
    /// gkehub v2 membership feature patch: management automatic.
    SetAutomaticManagement {
        cluster: usize,
        location: String,
        id: String,
    },
    /// Wait for fleet management to report the revision ready and the CR to be provisioned.
    WaitManaged {
        cluster: usize,
        location: String,
        id: String,
    },
    /// Wait for the ControlPlaneRevision CRD to be Established.
    WaitCrd { cluster: usize },
    /// Wait for ControlPlaneRevision `revision` to be `ProvisioningFinished=True`.
    WaitRevision { cluster: usize, revision: String },
    /// Read-modify-write of `resource`'s IAM policy (guarded by its etag) adding `member`
    /// to `role`.
    AddIamBinding {
        resource: iam_bindings::PolicyResource,
        role: String,
        member: String,
    },
}

/// The plan type of the mesh commands.
pub type MeshPlan = Plan<Step>;

/// Every service the mesh needs on the fleet project, in the order they are enabled.
pub const MESH_SERVICES: [&str; 3] = [
    "mesh.googleapis.com",
    "meshconfig.googleapis.com",
    "gkehub.googleapis.com",
];

/// A control plane status as GKE Hub reports it (`controlPlaneManagement`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlPlaneState {
    /// `ACTIVE`, `PROVISIONING`, …
    pub state: Option<String>,
    /// `details[].code`, e.g. `REVISION_READY`.
    pub codes: Vec<String>,
}

impl ControlPlaneState {
    /// ACTIVE with REVISION_READY.
    pub fn ready(&self) -> bool {
        self.state.as_deref() == Some("ACTIVE") && self.codes.iter().any(|c| c == "REVISION_READY")
    }

    /// Reads `{state, details:[{code}]}`.
    pub fn from_json(v: &Value) -> Option<Self> {
        let obj = v.as_object()?;
        Some(ControlPlaneState {
            state: obj.get("state").and_then(Value::as_str).map(str::to_string),
            codes: obj
                .get("details")
                .and_then(Value::as_array)
                .map(|d| {
                    d.iter()
                        .filter_map(|x| x.get("code").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// A fleet membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipObs {
    /// `projects/P/locations/L/memberships/ID`.
    pub name: String,
    /// `endpoint.gkeCluster.resourceLink`.
    pub resource_link: Option<String>,
    /// `state.code`.
    pub state: Option<String>,
}

impl MembershipObs {
    pub fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or_default()
    }

    pub fn location(&self) -> &str {
        let parts: Vec<&str> = self.name.split('/').collect();
        parts
            .iter()
            .position(|p| *p == "locations")
            .and_then(|i| parts.get(i + 1))
            .copied()
            .unwrap_or("global")
    }
}

/// The fleet `servicemesh` feature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeatureObs {
    /// `resourceState.state`.
    pub state: Option<String>,
    /// `membershipStates[KEY].servicemesh.controlPlaneManagement`, by key.
    pub membership_states: BTreeMap<String, ControlPlaneState>,
    /// `updateTime` (part of the saved-plan fingerprint).
    pub update_time: Option<String>,
}

/// The gkehub v2 membership feature `servicemesh` of one membership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipFeatureObs {
    /// `spec.servicemesh.management`.
    pub management: Option<String>,
    /// `state.servicemesh.controlPlaneManagement`.
    pub control_plane: Option<ControlPlaneState>,
    /// `updateTime` (part of the saved-plan fingerprint).
    pub update_time: Option<String>,
}

/// What GKE says about a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GkeObs {
    pub status: Option<String>,
    pub master_version: Option<String>,
    /// `releaseChannel.channel`.
    pub channel: Option<String>,
    /// `workloadIdentityConfig.workloadPool`.
    pub workload_pool: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub self_link: Option<String>,
    /// `labelFingerprint` (part of the saved-plan fingerprint).
    pub label_fingerprint: Option<String>,
}

/// A ControlPlaneRevision in the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CprObs {
    pub name: String,
    pub channel: Option<String>,
    /// Annotation `mesh.cloud.google.com/tags`.
    pub tags: Option<String>,
    pub provisioning_finished: bool,
}

/// What the cluster's Kubernetes API says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeObs {
    /// `/version` gitVersion.
    pub version: String,
    /// Namespace istio-system exists.
    pub namespace: bool,
    /// CRD controlplanerevisions: `None` absent, `Some(established)`.
    pub crd: Option<bool>,
    /// ConfigMap istio-system/asm-options: `None` absent, `Some(ASM_OPTS)`.
    pub asm_options: Option<String>,
    /// ControlPlaneRevisions in istio-system.
    pub cprs: Vec<CprObs>,
    /// In-cluster istiod Deployments (`namespace/name`).
    pub istiod: Vec<String>,
    /// `resourceVersion` of each object read, keyed `Kind/[namespace/]name` (part of the
    /// saved-plan fingerprint).
    pub versions: BTreeMap<String, String>,
    /// Reads the caller may not make (403), e.g. `get customresourcedefinitions`.
    pub forbidden: Vec<String>,
}

/// Everything observed about one cluster. `None` = not read (an earlier read failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterObs {
    /// `Ok(None)`: the cluster does not exist.
    pub gke: Result<Option<GkeObs>, String>,
    pub kube: Option<Result<KubeObs, String>>,
    /// `Ok(None)`: no membership feature yet.
    pub membership_feature: Option<Result<Option<MembershipFeatureObs>, String>>,
}

/// Everything observed about the fleet project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetObs {
    pub project_number: Result<String, String>,
    /// Enabled services (full names).
    pub enabled_services: Result<BTreeSet<String>, String>,
    /// Memberships of the fleet (any location). SERVICE_DISABLED reads as empty.
    pub memberships: Result<Vec<MembershipObs>, String>,
    /// `Ok(None)`: the feature does not exist (or gkehub is disabled).
    pub feature: Result<Option<FeatureObs>, String>,
}

/// The observation of one `install`/`validate` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub fleet: FleetObs,
    /// Same order as `MeshSpec::clusters`.
    pub clusters: Vec<ClusterObs>,
    /// Granted permissions (`testIamPermissions`) by project.
    pub permissions: BTreeMap<String, Result<BTreeSet<String>, String>>,
    /// IAM policies of the resources [`iam_bindings::resources`] names, by
    /// [`iam_bindings::PolicyResource::name`].
    pub policies: BTreeMap<String, Result<iam_bindings::PolicyObs, String>>,
}

/// Stable check codes.
pub mod codes {
    pub const CLUSTER_EXISTS: &str = "ASM-C101";
    pub const CLUSTER_REACHABLE: &str = "ASM-C102";
    pub const WORKLOAD_IDENTITY: &str = "ASM-C103";
    pub const CHANNEL: &str = "ASM-C104";
    pub const KUBE_VERSION: &str = "ASM-C105";
    pub const MESH_ID_LABEL: &str = "ASM-C106";
    pub const NAMESPACE: &str = "ASM-C107";
    pub const IN_CLUSTER_ISTIOD: &str = "ASM-C108";
    pub const CONTROL_PLANE: &str = "ASM-C109";
    pub const KUBE_PERMISSIONS: &str = "ASM-C110";
    pub const APIS: &str = "ASM-C201";
    pub const PERMISSIONS: &str = "ASM-C202";
    pub const PROJECT: &str = "ASM-C203";
    pub const MEMBERSHIP: &str = "ASM-C204";
    pub const FEATURE: &str = "ASM-C205";
    pub const IAM_BINDINGS: &str = "ASM-C206";
}

/// Planning state shared by the capability modules.
pub struct Planner<'a> {
    pub spec: &'a MeshSpec,
    pub obs: &'a Observed,
    pub plan: MeshPlan,
    /// Permissions the needed changes and reads require, by project.
    pub required: BTreeMap<String, BTreeSet<&'static str>>,
}

/// Per-cluster facts derived during planning and used by later steps.
#[derive(Debug, Clone, Default)]
pub struct ClusterPlan {
    /// Ids of GKE mutations of this cluster, in order (one at a time).
    pub gke_chain: Vec<String>,
    /// The workload identity action, if planned.
    pub workload_identity: Option<String>,
    /// Ids the fleet-side control plane setup depends on.
    pub fleet_deps: Vec<String>,
    /// Ids the in-cluster objects depend on (namespace).
    pub namespace_deps: Vec<String>,
    /// The membership (existing or to be created) as (location, id), if any.
    pub membership: Option<(String, String)>,
    /// Whether the cluster is usable at all (exists and reachable).
    pub usable: bool,
    /// The channel whose CR applies (from GKE).
    pub channel: Channel,
}

impl<'a> Planner<'a> {
    pub fn new(spec: &'a MeshSpec, obs: &'a Observed) -> Self {
        Planner {
            spec,
            obs,
            plan: Plan::default(),
            required: BTreeMap::new(),
        }
    }

    pub fn cluster(&self, i: usize) -> &'a ClusterRef {
        &self.spec.clusters[i]
    }

    /// Short label of cluster `i` for action ids: its name if unique, else `P.L.N`.
    pub fn label(&self, i: usize) -> String {
        let c = self.cluster(i);
        let dup = self
            .spec
            .clusters
            .iter()
            .filter(|o| o.name == c.name)
            .count()
            > 1;
        if dup {
            format!("{}.{}.{}", c.project, c.location, c.name)
        } else {
            c.name.to_string()
        }
    }

    pub fn check(&mut self, check: Check) {
        self.plan.checks.push(check);
    }

    pub fn require(&mut self, project: &ProjectId, permission: &'static str) {
        self.required
            .entry(project.to_string())
            .or_default()
            .insert(permission);
    }

    /// Adds an action and returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn action(
        &mut self,
        id: String,
        op: Op,
        cluster: Option<usize>,
        target: Target,
        reason: impl Into<String>,
        depends_on: Vec<String>,
        would: String,
        done: String,
        estimate: Duration,
        payload: Step,
    ) -> String {
        let mut deps: Vec<String> = Vec::new();
        for d in depends_on {
            if !deps.contains(&d) {
                deps.push(d);
            }
        }
        self.plan.actions.push(Action {
            id: id.clone(),
            op,
            cluster: cluster.map(|i| self.cluster(i).to_string()),
            target,
            reason: reason.into(),
            depends_on: deps,
            would,
            done,
            estimate,
            payload,
        });
        id
    }
}

/// The pure planner of `install --managed` / `validate`.
pub fn plan_mesh(spec: &MeshSpec, obs: &Observed) -> MeshPlan {
    let mut p = Planner::new(spec, obs);
    let fleet = fleet::plan_project(&mut p);
    let apis = apis::plan(&mut p);
    let bindings = iam_bindings::plan(&mut p, apis.as_deref());
    let feature = fleet::plan_feature(&mut p, apis.as_deref());
    for i in 0..spec.clusters.len() {
        let mut cp = cluster::plan(&mut p, i, fleet.project_number.as_deref());
        if !cp.usable {
            continue;
        }
        // The fleet's service agents act on this cluster's project once bound there.
        let project = iam_bindings::PolicyResource::Project(spec.clusters[i].project.clone());
        let project_bindings = bindings.get(&project).cloned().unwrap_or_default();
        let mut membership_deps: Vec<String> = apis.clone().into_iter().collect();
        membership_deps.extend(project_bindings.iter().cloned());
        fleet::plan_membership(&mut p, i, &mut cp, &membership_deps);
        cp.fleet_deps.extend(bindings.values().flatten().cloned());
        if let Some(f) = &feature {
            cp.fleet_deps.push(f.clone());
        }
        if let Some(a) = &apis {
            cp.fleet_deps.push(a.clone());
        }
        control_plane::plan(&mut p, i, &cp);
    }
    iam::plan(&mut p);
    // Checks: blocking first is not wanted — keep a stable order: fleet checks, then
    // clusters in order (the order they were added).
    match spec.scope {
        Scope::Full => p.plan,
        Scope::EnableOnly => enable_only(p.plan),
    }
}

/// Whether a step is one of the enable-* actions (`--only-enable`).
pub fn is_enable_step(step: &Step) -> bool {
    matches!(
        step,
        Step::EnableApis { .. }
            | Step::CreateFeature { .. }
            | Step::EnableWorkloadIdentity { .. }
            | Step::SetClusterLabel { .. }
            | Step::RegisterMembership { .. }
            | Step::AddIamBinding { .. }
    )
}

/// `--only-enable`: keeps the enable-* actions and the checks about them; drops the
/// namespace, options, control plane and their waits.
fn enable_only(plan: MeshPlan) -> MeshPlan {
    let actions: Vec<_> = plan
        .actions
        .into_iter()
        .filter(|a| is_enable_step(&a.payload))
        .collect();
    let kept: BTreeSet<String> = actions.iter().map(|a| a.id.clone()).collect();
    let actions = actions
        .into_iter()
        .map(|mut a| {
            a.depends_on.retain(|d| kept.contains(d));
            a
        })
        .collect();
    let dropped = [
        codes::NAMESPACE,
        codes::CONTROL_PLANE,
        codes::IN_CLUSTER_ISTIOD,
    ];
    Plan {
        checks: plan
            .checks
            .into_iter()
            .filter(|c| !dropped.contains(&c.code))
            .collect(),
        actions,
    }
}

/// Estimates used for the dry run's critical path (typical real-world durations).
pub mod estimate {
    use std::time::Duration;

    pub const ENABLE_APIS: Duration = Duration::from_secs(30);
    pub const CREATE_FEATURE: Duration = Duration::from_secs(10);
    pub const WORKLOAD_IDENTITY: Duration = Duration::from_secs(300);
    pub const LABELS: Duration = Duration::from_secs(10);
    pub const MEMBERSHIP: Duration = Duration::from_secs(20);
    pub const KUBE_APPLY: Duration = Duration::from_secs(1);
    pub const MANAGEMENT: Duration = Duration::from_secs(10);
    pub const WAIT_MANAGED: Duration = Duration::from_secs(300);
    pub const WAIT_CRD: Duration = Duration::from_secs(60);
    pub const WAIT_REVISION: Duration = Duration::from_secs(180);
    pub const IAM_BINDING: Duration = Duration::from_secs(2);
}

#[cfg(test)]
pub(crate) mod tests;
