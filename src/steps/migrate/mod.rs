//! `asm migrate`: namespaces and gateways from an in-cluster Istio control plane to the
//! managed one
//! (https://cloud.google.com/service-mesh/docs/managed/migrate-to-managed-control-plane).
//!
//! [`plan_migrate`] is the pure function `(MigrateSpec, Observed) -> Plan` behind it:
//! prechecks (managed control plane ready, the old control plane ASM ≥ 1.9 with Mesh CA,
//! namespaces exist), the migration record first, then per namespace — one after another
//! unless `--parallel` — relabel, restart its Deployments, wait until they are rolled out
//! and every new pod runs a proxy of the managed revision; then the gateways; then the
//! record marked migrated. A failed wait skips everything after it (the health gate).
//!
//! Which revision a namespace or pod resolves to comes from `asm status`'s pure functions
//! ([`crate::steps::status::report`]).

pub mod execute;
pub mod observe;
pub mod record;
pub mod saved;
pub mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::kube::metadata::{Changes, string_map, unmet};
use crate::kube::rollout::WorkloadKind;
use crate::plan::{Action, Check, CheckStatus, Op, Plan, Target};
use crate::spec::Channel;
use crate::steps::codes as mesh_codes;
use crate::steps::dataplane::spec::is_system_namespace;
use crate::steps::dataplane::{MANAGED_REVISIONS, PROXY_ANNOTATION, proxy_value};
use crate::steps::kube_actions::{
    KubeStep, KubeWait, apply_action, cluster_label, restart_action, set_metadata_action,
    wait_action,
};
use crate::steps::status::KubeSnapshot;
use crate::steps::status::report::{
    Injector, condition_true, image_tag, injectors, istiod_ca, istiod_container, labels_of,
    opted_out, pod_revision, points_at, resolve,
};

use record::{GatewayRecord, MigrationRecord, NamespaceRecord, RecordState};
pub use spec::{MigrateSpec, Namespaces};

/// Stable check codes of `migrate` and `rollback`.
pub mod codes {
    pub const CONTROL_PLANE: &str = "ASM-C501";
    pub const OLD_CONTROL_PLANE: &str = "ASM-C502";
    pub const NAMESPACE: &str = "ASM-C503";
    pub const MANUAL_RESTART: &str = "ASM-C504";
    pub const RECORD: &str = "ASM-C505";
    pub const NOTHING: &str = "ASM-C506";
    pub const GATEWAY: &str = "ASM-C507";
}

/// The namespace labels migrate sets or removes.
pub const INJECTION_LABEL: &str = "istio-injection";
pub const REV_LABEL: &str = "istio.io/rev";
/// The pod-template annotation that selects the gateway injection template.
const TEMPLATES_ANNOTATION: &str = "inject.istio.io/templates";
/// The oldest in-cluster ASM a migration starts from.
const MIN_VERSION: (u32, u32) = (1, 9);

/// A Deployment, StatefulSet or DaemonSet as the plans need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// `deployment.kubernetes.io/revision` (Deployments).
    pub revision: Option<String>,
    /// `spec.replicas` (none for DaemonSets).
    pub replicas: Option<i64>,
    /// `spec.selector.matchLabels`, when the selector has nothing else.
    pub match_labels: Option<BTreeMap<String, String>>,
    pub template_labels: BTreeMap<String, String>,
    /// Its pods get Istio's gateway injection template.
    pub gateway: bool,
    /// `metadata.generation` (a spec change bumps it; status updates do not).
    pub generation: Option<i64>,
}

impl Workload {
    /// Reads a workload of `kind` from its JSON.
    pub fn from_json(kind: &str, w: &Value) -> Workload {
        let s = |p: &str| {
            w.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let selector = w.pointer("/spec/selector");
        let only_labels = selector
            .and_then(Value::as_object)
            .is_some_and(|m| m.keys().all(|k| k == "matchLabels"));
        let template_labels = string_map(w.pointer("/spec/template/metadata/labels"));
        Workload {
            kind: kind.to_string(),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name"),
            revision: w
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(crate::kube::rollout::REVISION))
                .and_then(Value::as_str)
                .map(str::to_string),
            replicas: w.pointer("/spec/replicas").and_then(Value::as_i64),
            generation: w.pointer("/metadata/generation").and_then(Value::as_i64),
            match_labels: only_labels
                .then(|| selector.and_then(|s| s.get("matchLabels")))
                .flatten()
                .filter(|m| m.is_object())
                .map(|m| string_map(Some(m))),
            template_labels,
            gateway: w
                .pointer("/spec/template/metadata/annotations")
                .and_then(|a| a.get(TEMPLATES_ANNOTATION))
                .and_then(Value::as_str)
                .is_some_and(|t| t.split(',').any(|x| x.trim() == "gateway")),
        }
    }

    fn kind(&self) -> WorkloadKind {
        match self.kind.as_str() {
            "StatefulSet" => WorkloadKind::StatefulSet,
            "DaemonSet" => WorkloadKind::DaemonSet,
            _ => WorkloadKind::Deployment,
        }
    }
}

/// What one cluster holds for a migration or rollback.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterState {
    /// `asm status`'s reads: control planes, webhooks, namespaces, pods.
    pub snapshot: KubeSnapshot,
    pub workloads: Vec<Workload>,
    /// The migration record, if any.
    pub record: Option<MigrationRecord>,
}

/// The observation of one run: install's (GKE, fleet, control plane) and each cluster's
/// [`ClusterState`] in the spec's order (`None`: not read, the cluster was not reachable).
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub mesh: crate::steps::Observed,
    pub clusters: Vec<Option<Result<ClusterState, String>>>,
}

/// What a migrate or rollback action does. Serialized with the `step` tag its Kubernetes
/// steps already carry (a `kind` tag would collide with their `kind` field).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum MigrateStep {
    /// Set or remove pod-template labels of a Deployment (a rollout).
    SetTemplateLabels {
        namespace: String,
        name: String,
        labels: Changes,
    },
    /// `kubectl rollout undo deployment/NAME --to-revision=REVISION`.
    Undo {
        namespace: String,
        name: String,
        revision: String,
    },
    /// Labels, annotations, restarts, the record, waits.
    #[serde(untagged)]
    Kube(KubeStep),
}

/// The payload of an action: a step on cluster `cluster` (an index into the spec's clusters).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ClusterStep {
    pub cluster: usize,
    pub step: MigrateStep,
}

/// The plan type of `migrate` and `rollback`.
pub type MigratePlan = Plan<ClusterStep>;

/// Typical durations, for the critical path of a dry run.
pub const WAIT_ROLLOUT: Duration = Duration::from_secs(30);
pub const WAIT_PODS: Duration = Duration::from_secs(5);

/// `a`, a Kubernetes action, on cluster `cluster`.
pub fn on_cluster(a: Action<KubeStep>, cluster: usize) -> Action<ClusterStep> {
    Action {
        id: a.id,
        op: a.op,
        cluster: a.cluster,
        target: a.target,
        reason: a.reason,
        depends_on: a.depends_on,
        would: a.would,
        done: a.done,
        estimate: a.estimate,
        payload: ClusterStep {
            cluster,
            step: MigrateStep::Kube(a.payload),
        },
    }
}

/// The revisions Google manages in a cluster: the channel revisions, every
/// ControlPlaneRevision and every injector called by URL (as `asm status` counts them).
pub fn managed_revisions(snap: &KubeSnapshot, injectors: &[Injector]) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = MANAGED_REVISIONS.iter().map(|s| s.to_string()).collect();
    for c in &snap.control_plane_revisions {
        if let Some(n) = c.pointer("/metadata/name").and_then(Value::as_str) {
            out.insert(n.to_string());
        }
    }
    out.extend(
        injectors
            .iter()
            .filter(|i| i.by_url)
            .map(|i| i.revision.clone()),
    );
    out
}

fn text<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

/// Live pods (not terminating, not finished) of namespace `ns`.
pub fn live_pods<'a>(snap: &'a KubeSnapshot, ns: &str) -> Vec<&'a Value> {
    snap.pods
        .iter()
        .filter(|p| text(p, "/metadata/namespace") == ns)
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .filter(|p| !matches!(text(p, "/status/phase"), "Succeeded" | "Failed"))
        .collect()
}

/// The workload `(kind, name)` a pod belongs to: its controller, a Deployment through its
/// ReplicaSet `DEPLOYMENT-HASH`.
pub fn pod_workload(pod: &Value) -> Option<(String, String)> {
    let owner = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?;
    let kind = text(owner, "/kind");
    let name = text(owner, "/name");
    if kind == "ReplicaSet" {
        let hash = pod
            .pointer("/metadata/labels/pod-template-hash")
            .and_then(Value::as_str)?;
        return name
            .strip_suffix(&format!("-{hash}"))
            .map(|d| ("Deployment".to_string(), d.to_string()));
    }
    Some((kind.to_string(), name.to_string()))
}

/// Live pods of workload `w`.
pub fn pods_of<'a>(snap: &'a KubeSnapshot, w: &Workload) -> Vec<&'a Value> {
    live_pods(snap, &w.namespace)
        .into_iter()
        .filter(|p| pod_workload(p).is_some_and(|(k, n)| k == w.kind && n == w.name))
        .collect()
}

/// Whether some pod of `pods` (opted-out pods aside) does not run a proxy of `want`
/// (`None`: is injected at all).
pub fn off_revision(pods: &[&Value], want: Option<&str>) -> bool {
    pods.iter()
        .filter(|p| !opted_out(p))
        .any(|p| pod_revision(p).as_deref() != want)
}

/// `(major, minor)` of an ASM image tag (`1.9.1-asm.1` → `(1, 9)`).
pub fn version_of(tag: &str) -> Option<(u32, u32)> {
    let mut parts = tag.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The in-cluster istiod Deployment of `revision` (label `istio.io/rev`; `default` for
/// one without).
pub fn istiod_of<'a>(snap: &'a KubeSnapshot, revision: &str) -> Option<&'a Value> {
    snap.istiods.iter().find(|d| {
        d.pointer("/metadata/labels")
            .and_then(|l| l.get(REV_LABEL))
            .and_then(Value::as_str)
            .unwrap_or("default")
            == revision
    })
}

/// The precheck of an in-cluster control plane a migration leaves: ASM 1.9 or newer with
/// Mesh CA (or CA Service), from the istiod Deployment's image tag and `CA_ADDR`.
pub fn old_control_plane_check(snap: &KubeSnapshot, revision: &str, cluster: &str) -> Check {
    let Some(d) = istiod_of(snap, revision) else {
        return Check::new(
            codes::OLD_CONTROL_PLANE,
            CheckStatus::Warn,
            Some(cluster),
            format!(
                "no istiod Deployment of revision {revision} in istio-system: its version and \
                 CA were not checked"
            ),
        );
    };
    let name = text(d, "/metadata/name");
    let tag = istiod_container(d)
        .and_then(|c| c.get("image"))
        .and_then(Value::as_str)
        .and_then(image_tag);
    let version = tag.as_deref().and_then(version_of);
    let ca = istiod_ca(d);
    let new_enough = version.is_some_and(|v| v >= MIN_VERSION);
    let google_ca = ca == "mesh_ca" || ca == "gcp_cas";
    let shown = tag.clone().unwrap_or_else(|| "an unknown version".into());
    if new_enough && google_ca {
        return Check::new(
            codes::OLD_CONTROL_PLANE,
            CheckStatus::Ok,
            Some(cluster),
            format!("in-cluster control plane {name} ({revision}) is {shown} with {ca}"),
        );
    }
    let mut why = Vec::new();
    if !new_enough {
        why.push(format!("is {shown}, older than ASM 1.9"));
    }
    if !google_ca {
        why.push(format!("uses CA {ca}, not Mesh CA"));
    }
    Check::new(
        codes::OLD_CONTROL_PLANE,
        CheckStatus::Fail,
        Some(cluster),
        format!(
            "in-cluster control plane {name} ({revision}) {}: only ASM 1.9 or later with Mesh CA \
             migrates to the managed control plane",
            why.join(" and ")
        ),
    )
    .hint(
        "an Istio CA must first move to Mesh CA, and older versions upgrade in-cluster to ASM \
         1.9 or later first; then run asm migrate again",
    )
}

/// The cluster's inputs, or the check saying why they are missing.
pub fn cluster_inputs<'a>(
    obs: &'a Observed,
    i: usize,
    cref: &str,
) -> Result<(Option<&'a str>, &'a ClusterState), Check> {
    let fail = |code, m: String| Check::new(code, CheckStatus::Fail, Some(cref), m);
    let channel = match obs.mesh.clusters.get(i).map(|c| &c.gke) {
        Some(Ok(Some(g))) => g.channel.as_deref(),
        Some(Ok(None)) => {
            return Err(fail(
                mesh_codes::CLUSTER_EXISTS,
                format!("cluster {cref} does not exist"),
            ));
        }
        Some(Err(e)) => {
            return Err(fail(
                mesh_codes::CLUSTER_EXISTS,
                format!("cannot read cluster {cref}: {e}"),
            ));
        }
        None => None,
    };
    match obs.clusters.get(i) {
        Some(Some(Ok(s))) => Ok((channel, s)),
        Some(Some(Err(e))) => Err(fail(
            mesh_codes::CLUSTER_REACHABLE,
            format!("cannot read the Kubernetes API of {cref}: {e}"),
        )),
        _ => Err(fail(
            mesh_codes::CLUSTER_REACHABLE,
            format!("the Kubernetes API of {cref} was not read"),
        )),
    }
}

/// Restarts, rollout waits and revision waits for `workloads`, each restart depending on
/// `after`; returns the actions and the ids that finish the namespace.
#[allow(clippy::too_many_arguments)]
pub fn restart_and_wait(
    id: &str,
    cluster: usize,
    cref: &str,
    workloads: &[&Workload],
    revision: Option<&str>,
    reason: &str,
    after: &[String],
    plan: &mut MigratePlan,
) -> Vec<String> {
    let mut ends = Vec::new();
    for w in workloads {
        let base = format!("{id}/{}-{}", w.kind.to_ascii_lowercase(), w.name);
        let mut r = restart_action(
            format!("{base}/restart"),
            Some(cref),
            w.kind(),
            &w.namespace,
            &w.name,
            reason,
        );
        r.depends_on = after.to_vec();
        let restart_id = r.id.clone();
        plan.actions.push(on_cluster(r, cluster));
        let mut last = restart_id.clone();
        if w.kind == "Deployment" {
            let mut a = wait_action(
                format!("{base}/rollout"),
                Some(cref),
                KubeWait::DeploymentAvailable {
                    namespace: w.namespace.clone(),
                    name: w.name.clone(),
                },
                "restarted: its new pods must be Ready",
                WAIT_ROLLOUT,
            );
            a.depends_on = vec![restart_id.clone()];
            last = a.id.clone();
            plan.actions.push(on_cluster(a, cluster));
        }
        if let (Some(rev), Some(labels)) = (revision, &w.match_labels) {
            let mut a = wait_action(
                format!("{base}/pods"),
                Some(cref),
                KubeWait::PodsOnRevision {
                    namespace: w.namespace.clone(),
                    labels: labels.clone(),
                    revision: rev.to_string(),
                    min_pods: usize::try_from(w.replicas.unwrap_or(1).max(0)).unwrap_or(1),
                },
                format!("every new pod must run a proxy of {rev}"),
                WAIT_PODS,
            );
            a.depends_on = vec![last];
            last = a.id.clone();
            plan.actions.push(on_cluster(a, cluster));
        }
        ends.push(last);
    }
    ends
}

/// The action writing `record` to the cluster (after `after`).
pub fn record_action(
    id: String,
    cluster: usize,
    cref: &str,
    record: &MigrationRecord,
    exists: bool,
    reason: &str,
    after: Vec<String>,
) -> Option<Action<ClusterStep>> {
    let mut a = apply_action(id, Some(cref), record.config_map(), exists, reason).ok()?;
    let state = match record.state {
        RecordState::Migrating => "migrating",
        RecordState::Migrated => "migrated",
        RecordState::RolledBack => "rolled back",
    };
    a.would = format!(
        "Would {} the migration record istio-system/asm-migration ({state})",
        if exists { "update" } else { "write" }
    );
    a.done = format!(
        "{} the migration record istio-system/asm-migration ({state})",
        if exists { "Updated" } else { "Wrote" }
    );
    a.depends_on = after;
    Some(on_cluster(a, cluster))
}

/// Plans `asm migrate` (pure).
pub fn plan_migrate(spec: &MigrateSpec, obs: &Observed) -> MigratePlan {
    let mut plan = MigratePlan::default();
    for i in 0..spec.mesh.clusters.len() {
        plan_cluster(spec, obs, i, &mut plan);
    }
    plan
}

/// The namespaces `--all-namespaces` selects: not system namespaces, whose labels or live
/// pods point at a non-managed revision; alphabetical.
pub fn namespaces_off_managed(
    snap: &KubeSnapshot,
    injectors: &[Injector],
    managed: &BTreeSet<String>,
) -> Vec<String> {
    let empty = BTreeMap::new();
    let mut out: Vec<String> = snap
        .namespaces
        .iter()
        .filter_map(|n| {
            let name = text(n, "/metadata/name");
            if is_system_namespace(name) {
                return None;
            }
            let labels = labels_of(n);
            let labelled_off = points_at(&labels).is_some()
                && !resolve(injectors, &labels, &empty).is_some_and(|r| managed.contains(&r));
            let pods_off = live_pods(snap, name)
                .iter()
                .any(|p| pod_revision(p).is_some_and(|r| !managed.contains(&r)));
            (labelled_off || pods_off).then(|| name.to_string())
        })
        .collect();
    out.sort();
    out
}

fn plan_cluster(spec: &MigrateSpec, obs: &Observed, i: usize, plan: &mut MigratePlan) {
    let cref = spec.mesh.clusters[i].to_string();
    let cluster = Some(cref.as_str());
    let id = cluster_label(&spec.mesh.clusters, i);
    let (channel, state) = match cluster_inputs(obs, i, &cref) {
        Ok(x) => x,
        Err(check) => {
            plan.checks.push(check);
            return;
        }
    };
    let snap = &state.snapshot;
    let to = spec
        .to
        .clone()
        .unwrap_or_else(|| Channel::from_gke(channel).revision().to_string());
    let fail = |code, m: String| Check::new(code, CheckStatus::Fail, cluster, m);

    // The managed control plane.
    let cpr = snap
        .control_plane_revisions
        .iter()
        .find(|c| text(c, "/metadata/name") == to);
    if cpr.is_some_and(|c| condition_true(c, "ProvisioningFinished")) {
        plan.checks.push(Check::new(
            codes::CONTROL_PLANE,
            CheckStatus::Ok,
            cluster,
            format!("managed control plane {to} is ready"),
        ));
    } else {
        plan.checks.push(
            fail(
                codes::CONTROL_PLANE,
                format!(
                    "managed control plane {to} is {}",
                    if cpr.is_some() {
                        "not ready (ControlPlaneRevision not ProvisioningFinished)"
                    } else {
                        "not installed (no ControlPlaneRevision)"
                    }
                ),
            )
            .hint("install it first: asm install --managed"),
        );
    }

    let inj = injectors(&snap.webhooks);
    let managed = managed_revisions(snap, &inj);
    let active = state.record.as_ref().filter(|r| r.active());
    if let Some(r) = active {
        plan.checks.push(Check::new(
            codes::RECORD,
            CheckStatus::Ok,
            cluster,
            format!(
                "continuing the migration record istio-system/asm-migration ({} namespaces, {} \
                 gateways to {})",
                r.namespaces.len(),
                r.gateways.len(),
                r.to
            ),
        ));
        if r.to != to {
            plan.checks.push(
                fail(
                    codes::RECORD,
                    format!("the migration in progress moves to {}, not {to}", r.to),
                )
                .hint(format!(
                    "finish it with --to {}, or asm rollback first",
                    r.to
                )),
            );
        }
    }

    // Which namespaces.
    let selected: Vec<String> = match &spec.namespaces {
        Namespaces::Named(names) => names.clone(),
        Namespaces::InMeshOffManaged => namespaces_off_managed(snap, &inj, &managed),
    };
    let empty = BTreeMap::new();
    let desired_labels: Changes = [
        (INJECTION_LABEL.to_string(), None),
        (REV_LABEL.to_string(), Some(to.clone())),
    ]
    .into();
    let desired_annotations: Changes = if spec.managed_dataplane {
        [(
            PROXY_ANNOTATION.to_string(),
            Some(proxy_value(false).to_string()),
        )]
        .into()
    } else {
        Changes::new()
    };

    let mut record = active.cloned().unwrap_or_else(|| MigrationRecord {
        schema: record::SCHEMA.to_string(),
        state: RecordState::Migrating,
        from: Vec::new(),
        to: to.clone(),
        namespaces: Vec::new(),
        gateways: Vec::new(),
    });
    let mut from: BTreeSet<String> = record.from.iter().cloned().collect();
    let record_id = format!("{id}/migration-record");
    let mut manual = Vec::new();
    let mut left_unrestarted = Vec::new();

    // Per namespace: (name, actions) planned into a local list first, chained below.
    struct NsPlan {
        actions: Vec<Action<ClusterStep>>,
        first: Vec<usize>,
        ends: Vec<String>,
    }
    let mut ns_plans: Vec<NsPlan> = Vec::new();
    for name in &selected {
        let Some(ns) = snap
            .namespaces
            .iter()
            .find(|n| text(n, "/metadata/name") == name)
        else {
            plan.checks.push(
                fail(codes::NAMESPACE, format!("namespace {name} does not exist")).hint(
                    "check the name (kubectl get namespaces); asm migrate moves existing \
                     namespaces",
                ),
            );
            continue;
        };
        let labels = labels_of(ns);
        let annotations = string_map(ns.pointer("/metadata/annotations"));
        let label_changes = unmet(&desired_labels, &labels);
        let annotation_changes = unmet(&desired_annotations, &annotations);
        let pods = live_pods(snap, name);
        let resolved = resolve(&inj, &labels, &empty);
        let old = resolved
            .clone()
            .filter(|r| !managed.contains(r))
            .or_else(|| {
                pods.iter()
                    .filter_map(|p| pod_revision(p))
                    .find(|r| !managed.contains(r))
            });
        let workloads: Vec<&Workload> = state
            .workloads
            .iter()
            .filter(|w| &w.namespace == name)
            .filter(|w| !(w.gateway && gateway_off_managed(w, &managed)))
            .filter(|w| off_revision(&pods_of(snap, w), Some(&to)))
            .collect();
        let (restart, by_hand): (Vec<&Workload>, Vec<&Workload>) = workloads
            .into_iter()
            .partition(|w| w.kind == "Deployment" || spec.restart_all_kinds);
        manual.extend(
            by_hand
                .iter()
                .map(|w| format!("{} {name}/{}", w.kind, w.name)),
        );
        if label_changes.is_empty() && annotation_changes.is_empty() && restart.is_empty() {
            continue;
        }
        if let Some(o) = &old {
            from.insert(o.clone());
        }
        if record.namespace(name).is_none() {
            record.namespaces.push(NamespaceRecord {
                name: name.clone(),
                revision: old.clone(),
                labels: desired_labels
                    .keys()
                    .map(|k| (k.clone(), labels.get(k).cloned()))
                    .collect(),
                annotations: desired_annotations
                    .keys()
                    .map(|k| (k.clone(), annotations.get(k).cloned()))
                    .collect(),
                deployments: state
                    .workloads
                    .iter()
                    .filter(|w| &w.namespace == name && w.kind == "Deployment")
                    .map(|w| (w.name.clone(), w.revision.clone()))
                    .collect(),
                rolled_back: false,
            });
        }
        let mut np = NsPlan {
            actions: Vec::new(),
            first: Vec::new(),
            ends: Vec::new(),
        };
        let nid = format!("{id}/{name}");
        let mut after = vec![record_id.clone()];
        if !label_changes.is_empty() || !annotation_changes.is_empty() {
            let mut a = set_metadata_action(
                format!("{nid}/labels"),
                cluster,
                "v1",
                "Namespace",
                None,
                name,
                label_changes,
                annotation_changes,
                match (&resolved, points_at(&labels)) {
                    (Some(r), _) => format!("namespace {name} injects from {r}"),
                    (None, Some(t)) => format!("namespace {name} points at {t}"),
                    (None, None) => format!("namespace {name} is not in the mesh"),
                },
            );
            a.depends_on = after.clone();
            after = vec![a.id.clone()];
            np.first.push(np.actions.len());
            np.ends.push(a.id.clone());
            np.actions.push(on_cluster(a, i));
        }
        if spec.no_restart {
            left_unrestarted.extend(
                restart
                    .iter()
                    .map(|w| format!("{} {name}/{}", w.kind, w.name)),
            );
        } else {
            let mut sub = MigratePlan::default();
            let ends = restart_and_wait(
                &nid,
                i,
                &cref,
                &restart,
                Some(&to),
                &format!(
                    "its pods run proxies of {}",
                    old.as_deref().unwrap_or("no revision")
                ),
                &after,
                &mut sub,
            );
            for a in sub.actions {
                if a.depends_on == after && np.ends.is_empty() {
                    np.first.push(np.actions.len());
                }
                np.actions.push(a);
            }
            if !ends.is_empty() {
                np.ends = ends;
            }
        }
        ns_plans.push(np);
    }
    if !manual.is_empty() {
        plan.checks.push(
            Check::new(
                codes::MANUAL_RESTART,
                CheckStatus::Warn,
                cluster,
                format!(
                    "not restarted by asm, restart by hand after the namespace moves: {}",
                    manual.join(", ")
                ),
            )
            .hint("kubectl rollout restart statefulset|daemonset NAME -n NS, or pass --restart-all-kinds"),
        );
    }
    if !left_unrestarted.is_empty() {
        plan.checks.push(
            Check::new(
                codes::MANUAL_RESTART,
                CheckStatus::Warn,
                cluster,
                format!(
                    "--no-restart: these keep their old proxies until restarted: {}",
                    left_unrestarted.join(", ")
                ),
            )
            .hint("kubectl rollout restart deployment -n NS"),
        );
    }

    // Gateways.
    let gateways: Vec<&Workload> = state
        .workloads
        .iter()
        .filter(|w| w.kind == "Deployment" && w.gateway && gateway_off_managed(w, &managed))
        .filter(|w| match (spec.gateways, &spec.namespaces) {
            (Some(on), _) => on,
            (None, Namespaces::InMeshOffManaged) => true,
            (None, Namespaces::Named(names)) => names.contains(&w.namespace),
        })
        .collect();
    if spec.gateways == Some(false) {
        let left: Vec<String> = state
            .workloads
            .iter()
            .filter(|w| w.kind == "Deployment" && w.gateway && gateway_off_managed(w, &managed))
            .map(|w| format!("{}/{}", w.namespace, w.name))
            .collect();
        if !left.is_empty() {
            plan.checks.push(Check::new(
                codes::GATEWAY,
                CheckStatus::Warn,
                cluster,
                format!(
                    "--no-gateways: gateways left on their revision: {}",
                    left.join(", ")
                ),
            ));
        }
    }
    let mut gw_plans = Vec::new();
    for g in &gateways {
        let old = g.template_labels.get(REV_LABEL).cloned();
        if let Some(o) = &old {
            from.insert(o.clone());
        }
        if record.gateway(&g.namespace, &g.name).is_none() {
            record.gateways.push(GatewayRecord {
                namespace: g.namespace.clone(),
                name: g.name.clone(),
                revision: g.revision.clone(),
                rev_label: old.clone(),
                rolled_back: false,
            });
        }
        let gid = format!("{id}/gateway-{}-{}", g.namespace, g.name);
        let labels: Changes = [(REV_LABEL.to_string(), Some(to.clone()))].into();
        let what = format!("Deployment {}/{}", g.namespace, g.name);
        let set = Action {
            id: format!("{gid}/revision"),
            op: Op::Update,
            cluster: Some(cref.clone()),
            target: Target {
                api: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some(g.namespace.clone()),
                name: g.name.clone(),
            },
            reason: format!(
                "its pod template asks for revision {}",
                old.as_deref().unwrap_or("?")
            ),
            depends_on: Vec::new(),
            would: format!("Would set pod-template label {REV_LABEL}={to} on {what} (a rollout)"),
            done: format!("Set pod-template label {REV_LABEL}={to} on {what}"),
            estimate: Duration::from_millis(100),
            payload: ClusterStep {
                cluster: i,
                step: MigrateStep::SetTemplateLabels {
                    namespace: g.namespace.clone(),
                    name: g.name.clone(),
                    labels,
                },
            },
        };
        let set_id = set.id.clone();
        let mut sub = MigratePlan::default();
        sub.actions.push(set);
        let waits = rollout_waits(&gid, i, &cref, g, Some(&to), &set_id, &mut sub);
        gw_plans.push((sub.actions, waits));
    }

    if ns_plans.is_empty() && gw_plans.is_empty() {
        if spec.namespaces == Namespaces::InMeshOffManaged && active.is_none() {
            plan.checks.push(Check::new(
                codes::NOTHING,
                CheckStatus::Ok,
                cluster,
                format!("nothing left to migrate to {to}"),
            ));
        }
        if let Some(r) = active
            && r.state == RecordState::Migrating
        {
            let done = MigrationRecord {
                state: RecordState::Migrated,
                ..r.clone()
            };
            if let Some(a) = record_action(
                format!("{id}/migration-record-migrated"),
                i,
                &cref,
                &done,
                true,
                "every namespace and gateway of the record is on the managed revision",
                Vec::new(),
            ) {
                plan.actions.push(a);
            }
        }
        return;
    }

    // Every old revision must be one asm can migrate from.
    for rev in &from {
        plan.checks.push(old_control_plane_check(snap, rev, &cref));
    }

    // The record first.
    record.from = from.into_iter().collect();
    record.state = RecordState::Migrating;
    let unchanged = active.is_some_and(|r| *r == record);
    if !unchanged
        && let Some(a) = record_action(
            record_id.clone(),
            i,
            &cref,
            &record,
            state.record.is_some(),
            if active.is_some() {
                "the record gains namespaces or gateways"
            } else {
                "what migrate changes is recorded before the first change"
            },
            Vec::new(),
        )
    {
        plan.actions.push(a);
    }

    // Namespaces: lane k runs namespaces k, k+N, k+2N… one after another.
    let lanes = spec.parallel.max(1);
    let mut lane_ends: Vec<Vec<String>> = vec![Vec::new(); lanes];
    for (n, mut np) in ns_plans.into_iter().enumerate() {
        let lane = n % lanes;
        if !lane_ends[lane].is_empty() {
            for &f in &np.first {
                np.actions[f].depends_on.extend(lane_ends[lane].clone());
            }
        }
        if !np.ends.is_empty() {
            lane_ends[lane] = np.ends.clone();
        }
        plan.actions.extend(np.actions);
    }
    let all_ns_ends: Vec<String> = lane_ends.into_iter().flatten().collect();

    // Gateways after every namespace.
    let mut ends = all_ns_ends.clone();
    for (actions, waits) in gw_plans {
        let mut actions = actions;
        if let Some(first) = actions.first_mut() {
            first.depends_on.push(record_id.clone());
            first.depends_on.extend(all_ns_ends.clone());
        }
        plan.actions.extend(actions);
        ends.extend(waits);
    }

    // The record marked migrated once everything moved.
    let done = MigrationRecord {
        state: RecordState::Migrated,
        ..record
    };
    ends.push(record_id);
    if let Some(a) = record_action(
        format!("{id}/migration-record-migrated"),
        i,
        &cref,
        &done,
        true,
        "once every namespace and gateway moved",
        ends,
    ) {
        plan.actions.push(a);
    }
}

/// Whether a gateway's pod template asks for a non-managed revision.
fn gateway_off_managed(w: &Workload, managed: &BTreeSet<String>) -> bool {
    w.template_labels
        .get(REV_LABEL)
        .is_some_and(|r| !managed.contains(r))
}

/// The rollout and revision waits after a pod-template change of gateway `g` (action
/// `after`); returns the id that ends them.
pub fn rollout_waits(
    gid: &str,
    cluster: usize,
    cref: &str,
    g: &Workload,
    revision: Option<&str>,
    after: &str,
    plan: &mut MigratePlan,
) -> Vec<String> {
    let mut a = wait_action(
        format!("{gid}/rollout"),
        Some(cref),
        KubeWait::DeploymentAvailable {
            namespace: g.namespace.clone(),
            name: g.name.clone(),
        },
        "its pod template changed: new pods must be Ready",
        WAIT_ROLLOUT,
    );
    a.depends_on = vec![after.to_string()];
    let mut last = a.id.clone();
    plan.actions.push(on_cluster(a, cluster));
    if let (Some(revision), Some(labels)) = (revision, &g.match_labels) {
        let mut p = wait_action(
            format!("{gid}/pods"),
            Some(cref),
            KubeWait::PodsOnRevision {
                namespace: g.namespace.clone(),
                labels: labels.clone(),
                revision: revision.to_string(),
                min_pods: usize::try_from(g.replicas.unwrap_or(1).max(0)).unwrap_or(1),
            },
            format!("every new pod must run a proxy of {revision}"),
            WAIT_PODS,
        );
        p.depends_on = vec![last];
        last = p.id.clone();
        plan.actions.push(on_cluster(p, cluster));
    }
    vec![last]
}

#[cfg(test)]
pub(crate) mod tests;
