//! `asm enable-dataplane`: the Google-managed data plane
//! (https://cloud.google.com/service-mesh/docs/managed/provision-managed-anthos-service-mesh).
//!
//! [`plan_dataplane`] is the pure function `(DataplaneSpec, Observed) -> Plan` behind the
//! command: prechecks (control plane ready, channel, managed CNI, fleet feature, namespaces
//! and their labels), the annotations, the wait for the DataPlaneControl, and per namespace
//! a warning naming what the managed data plane will not manage.

pub mod execute;
pub mod observe;
pub mod saved;
pub mod spec;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::kube::metadata::Changes;
use crate::plan::{Action, Check, CheckStatus, Plan};
use crate::spec::Channel;
use crate::steps::control_plane::MANAGEMENT_AUTOMATIC;
use crate::steps::kube_actions::{KubeStep, KubeWait, set_metadata_action, wait_action};
use crate::steps::{Step, codes as mesh_codes};

pub use spec::{DataplaneSpec, Namespaces};

/// The annotation that turns the managed data plane on or off for a namespace or pod.
pub const PROXY_ANNOTATION: &str = "mesh.cloud.google.com/proxy";
/// Where the injector records what it injected (`revision` among others).
pub const SIDECAR_STATUS: &str = "sidecar.istio.io/status";
/// The revisions of the managed control plane.
pub const MANAGED_REVISIONS: [&str; 3] = ["asm-managed", "asm-managed-rapid", "asm-managed-stable"];

/// Stable check codes of `enable-dataplane`.
pub mod codes {
    pub const CHANNEL: &str = "ASM-C301";
    pub const CONTROL_PLANE: &str = "ASM-C302";
    pub const MANAGED_CNI: &str = "ASM-C303";
    pub const FEATURE: &str = "ASM-C304";
    pub const NAMESPACE: &str = "ASM-C305";
    pub const POD: &str = "ASM-C306";
    pub const UNMANAGED: &str = "ASM-C307";
    pub const DISABLE: &str = "ASM-C308";
}

/// The exact value of [`PROXY_ANNOTATION`]: `{"managed":"true"}`, or `"false"` to disable.
pub fn proxy_value(disable: bool) -> &'static str {
    if disable {
        r#"{"managed":"false"}"#
    } else {
        r#"{"managed":"true"}"#
    }
}

/// A namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceObs {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Its [`PROXY_ANNOTATION`].
    pub proxy: Option<String>,
    /// `metadata.resourceVersion` (for saved plans' fingerprints).
    pub resource_version: Option<String>,
}

/// A pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodObs {
    pub namespace: String,
    pub name: String,
    /// Its [`PROXY_ANNOTATION`].
    pub proxy: Option<String>,
    /// Whether it carries [`SIDECAR_STATUS`] (it runs an injected proxy).
    pub injected: bool,
    /// The `revision` of [`SIDECAR_STATUS`].
    pub injected_revision: Option<String>,
    /// Its controller `(kind, name)`.
    pub owner: Option<(String, String)>,
    /// Label `pod-template-hash` (the ReplicaSet of a Deployment is `DEPLOYMENT-HASH`).
    pub template_hash: Option<String>,
    /// Not terminating, not finished.
    pub live: bool,
    /// `metadata.resourceVersion` (for saved plans' fingerprints).
    pub resource_version: Option<String>,
}

/// A Deployment, StatefulSet, DaemonSet or Job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadObs {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Its pod template already carries [`SIDECAR_STATUS`]: `istioctl kube-inject` output.
    pub template_injected: bool,
}

/// What one cluster holds for the data plane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataplaneObs {
    pub namespaces: Vec<NamespaceObs>,
    pub pods: Vec<PodObs>,
    pub workloads: Vec<WorkloadObs>,
    /// `(spec.revision, status.state)` of each DataPlaneControl.
    pub controls: Vec<(String, Option<String>)>,
}

/// The observation of one run: install's (GKE, fleet, control plane) and the data plane's,
/// per cluster in the spec's order (`None`: not read, the cluster was not reachable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub mesh: crate::steps::Observed,
    pub clusters: Vec<Option<Result<DataplaneObs, String>>>,
}

/// The payload of a data plane action: a fleet step (the servicemesh feature) or a
/// Kubernetes step on cluster `cluster` (an index into the spec's clusters).
#[derive(Debug, Clone, PartialEq)]
pub enum DataplaneStep {
    Fleet(Step),
    Kube { cluster: usize, step: KubeStep },
}

/// The plan type of `enable-dataplane`.
pub type DataplanePlan = Plan<DataplaneStep>;

/// Typical time for the managed data plane to report Ready (used for the critical path).
const WAIT_READY: Duration = Duration::from_secs(120);

/// `a` as an action of a data plane plan on cluster `cluster` (an index into the spec's
/// clusters).
pub fn on_cluster(a: Action<KubeStep>, cluster: usize) -> Action<DataplaneStep> {
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
        payload: DataplaneStep::Kube {
            cluster,
            step: a.payload,
        },
    }
}

/// Whether a namespace carries an injection label (`istio.io/rev` or
/// `istio-injection=enabled`).
pub fn has_injection_label(ns: &NamespaceObs) -> bool {
    ns.labels.contains_key("istio.io/rev")
        || ns.labels.get("istio-injection").map(String::as_str) == Some("enabled")
}

/// The namespaces a run covers on a cluster: those named, or (`--all-namespaces`) those
/// with an injection label, system namespaces excepted.
pub fn selected_namespaces(namespaces: &Namespaces, dp: &DataplaneObs) -> Vec<String> {
    match namespaces {
        Namespaces::Named(names) => names.clone(),
        Namespaces::AllLabelled => dp
            .namespaces
            .iter()
            .filter(|n| !spec::is_system_namespace(&n.name) && has_injection_label(n))
            .map(|n| n.name.clone())
            .collect(),
    }
}

/// The Deployment a pod belongs to (through its ReplicaSet `DEPLOYMENT-HASH`).
fn deployment_of(pod: &PodObs) -> Option<String> {
    let (kind, rs) = pod.owner.as_ref()?;
    if kind != "ReplicaSet" {
        return None;
    }
    let hash = pod.template_hash.as_deref()?;
    rs.strip_suffix(&format!("-{hash}")).map(str::to_string)
}

/// What the managed data plane will not manage in namespace `ns`, by name: uninjected pods,
/// pods injected by a non-managed revision, workloads injected with `istioctl kube-inject`,
/// Jobs, StatefulSets and DaemonSets.
pub fn unmanaged(ns: &str, obs: &DataplaneObs) -> Vec<String> {
    let mut out = Vec::new();
    let manual: Vec<&str> = obs
        .workloads
        .iter()
        .filter(|w| w.namespace == ns && w.kind == "Deployment" && w.template_injected)
        .map(|w| w.name.as_str())
        .collect();
    for w in obs.workloads.iter().filter(|w| w.namespace == ns) {
        match w.kind.as_str() {
            "Deployment" if w.template_injected => out.push(format!(
                "Deployment {} (injected with istioctl kube-inject)",
                w.name
            )),
            "Deployment" => {}
            kind => out.push(format!("{kind} {}", w.name)),
        }
    }
    for p in obs.pods.iter().filter(|p| p.namespace == ns && p.live) {
        let owned_elsewhere = p
            .owner
            .as_ref()
            .is_some_and(|(k, _)| matches!(k.as_str(), "Job" | "StatefulSet" | "DaemonSet"))
            || deployment_of(p).is_some_and(|d| manual.contains(&d.as_str()));
        if owned_elsewhere {
            continue;
        }
        if !p.injected {
            out.push(format!("pod {} (not injected)", p.name));
        } else if let Some(r) = &p.injected_revision
            && !MANAGED_REVISIONS.contains(&r.as_str())
        {
            out.push(format!("pod {} (injected by revision {r})", p.name));
        }
    }
    out
}

const UNMANAGED_HINT: &str = "uninjected pods: label the namespace and restart them \
     (kubectl rollout restart); kube-inject: redeploy without istioctl kube-inject so the \
     webhook injects them; Jobs, StatefulSets, DaemonSets: the managed data plane does not \
     restart them, restart them yourself after each proxy upgrade";

/// Plans `enable-dataplane` (pure).
pub fn plan_dataplane(spec: &DataplaneSpec, obs: &Observed) -> DataplanePlan {
    let mut plan = DataplanePlan::default();
    let feature = plan_feature(spec, obs, &mut plan);
    for i in 0..spec.mesh.clusters.len() {
        plan_cluster(spec, obs, i, feature.as_deref(), &mut plan);
    }
    plan
}

/// The fleet servicemesh feature: a check, and its creation with `-e`.
fn plan_feature(spec: &DataplaneSpec, obs: &Observed, plan: &mut DataplanePlan) -> Option<String> {
    let project = &spec.mesh.fleet_project;
    match &obs.mesh.fleet.feature {
        Ok(Some(f)) => {
            let state = f.state.as_deref().unwrap_or("UNKNOWN");
            let status = if state == "ACTIVE" {
                CheckStatus::Ok
            } else {
                CheckStatus::Warn
            };
            plan.checks.push(Check::new(
                codes::FEATURE,
                status,
                None,
                format!("fleet servicemesh feature is enabled on {project} ({state})"),
            ));
            None
        }
        Ok(None) if spec.mesh.enable.components && !spec.disable => {
            let id = "fleet/servicemesh-feature".to_string();
            plan.checks.push(
                Check::new(
                    codes::FEATURE,
                    CheckStatus::Fix,
                    None,
                    format!("fleet servicemesh feature is not enabled on {project}"),
                )
                .hint(format!("{id} enables it")),
            );
            plan.actions.push(Action {
                id: id.clone(),
                op: crate::plan::Op::Create,
                cluster: None,
                target: crate::plan::Target {
                    api: "gkehub.googleapis.com/v1".into(),
                    kind: "Feature".into(),
                    namespace: None,
                    name: format!("projects/{project}/locations/global/features/servicemesh"),
                },
                reason: "the servicemesh feature does not exist".into(),
                depends_on: Vec::new(),
                would: format!("Would enable the fleet servicemesh feature on project {project}"),
                done: format!("Enabled the fleet servicemesh feature on project {project}"),
                estimate: crate::steps::estimate::CREATE_FEATURE,
                payload: DataplaneStep::Fleet(Step::CreateFeature {
                    project: project.clone(),
                }),
            });
            Some(id)
        }
        Ok(None) if spec.disable => None,
        Ok(None) => {
            plan.checks.push(
                Check::new(
                    codes::FEATURE,
                    CheckStatus::Fail,
                    None,
                    format!("fleet servicemesh feature is not enabled on {project}"),
                )
                .hint("pass --enable-gcp-components (-e) to enable it"),
            );
            None
        }
        Err(e) => {
            plan.checks.push(Check::new(
                codes::FEATURE,
                CheckStatus::Fail,
                None,
                format!("cannot read the fleet servicemesh feature: {e}"),
            ));
            None
        }
    }
}

fn plan_cluster(
    spec: &DataplaneSpec,
    obs: &Observed,
    i: usize,
    feature: Option<&str>,
    plan: &mut DataplanePlan,
) {
    let cref = spec.mesh.clusters[i].to_string();
    let cluster = Some(cref.as_str());
    let id = crate::steps::kube_actions::cluster_label(&spec.mesh.clusters, i);
    let fail = |code, message: String| Check::new(code, CheckStatus::Fail, cluster, message);
    let Some(co) = obs.mesh.clusters.get(i) else {
        return;
    };
    let gke = match &co.gke {
        Ok(Some(g)) => g,
        Ok(None) => {
            plan.checks.push(fail(
                mesh_codes::CLUSTER_EXISTS,
                format!("cluster {cref} does not exist"),
            ));
            return;
        }
        Err(e) => {
            plan.checks.push(fail(
                mesh_codes::CLUSTER_EXISTS,
                format!("cannot read cluster {cref}: {e}"),
            ));
            return;
        }
    };
    let (kube, dp) = match (&co.kube, obs.clusters.get(i)) {
        (Some(Ok(k)), Some(Some(Ok(d)))) => (k, d),
        (Some(Err(e)), _) | (_, Some(Some(Err(e)))) => {
            plan.checks.push(fail(
                mesh_codes::CLUSTER_REACHABLE,
                format!("cannot read the Kubernetes API of {cref}: {e}"),
            ));
            return;
        }
        _ => {
            plan.checks.push(fail(
                mesh_codes::CLUSTER_REACHABLE,
                format!("the Kubernetes API of {cref} was not read"),
            ));
            return;
        }
    };

    // Channel: the managed data plane is offered on Rapid and Regular only.
    let channel = gke.channel.as_deref().unwrap_or("none");
    if matches!(channel, "RAPID" | "REGULAR") {
        plan.checks.push(Check::new(
            codes::CHANNEL,
            CheckStatus::Ok,
            cluster,
            format!("release channel {channel}"),
        ));
    } else {
        plan.checks.push(
            fail(
                codes::CHANNEL,
                format!(
                    "release channel {channel}: the managed data plane is available on the \
                     Rapid and Regular channels only"
                ),
            )
            .hint(format!(
                "move the cluster to Regular or Rapid: gcloud container clusters update {} \
                 --location {} --release-channel regular",
                spec.mesh.clusters[i].name, spec.mesh.clusters[i].location
            )),
        );
    }

    // Control plane: the channel's managed revision, provisioned.
    let revision = Channel::from_gke(gke.channel.as_deref()).revision();
    if kube
        .cprs
        .iter()
        .any(|r| r.name == revision && r.provisioning_finished)
    {
        plan.checks.push(Check::new(
            codes::CONTROL_PLANE,
            CheckStatus::Ok,
            cluster,
            format!("managed control plane {revision} is ready"),
        ));
    } else {
        plan.checks.push(
            fail(
                codes::CONTROL_PLANE,
                format!("managed control plane {revision} is not ready"),
            )
            .hint("install it first: asm install --managed"),
        );
    }

    // Managed CNI: automatic management provisions it; revision management needs CNI=on.
    let automatic = matches!(&co.membership_feature, Some(Ok(Some(mf)))
        if mf.management.as_deref() == Some(MANAGEMENT_AUTOMATIC));
    let cni_option = kube
        .asm_options
        .as_deref()
        .is_some_and(|o| o.split(';').any(|x| x.trim() == "CNI=on"));
    if automatic || cni_option {
        plan.checks.push(Check::new(
            codes::MANAGED_CNI,
            CheckStatus::Ok,
            cluster,
            if automatic {
                "managed CNI (automatic management provides it)".to_string()
            } else {
                "managed CNI (CNI=on in istio-system/asm-options)".to_string()
            },
        ));
    } else {
        plan.checks.push(
            fail(
                codes::MANAGED_CNI,
                "managed CNI is off: revision management without CNI=on in asm-options".into(),
            )
            .hint("asm install --managed --management revision --option cni-managed"),
        );
    }

    let value = proxy_value(spec.disable);
    let annotation: Changes = [(PROXY_ANNOTATION.to_string(), Some(value.to_string()))].into();
    let mut annotated = Vec::new();

    // Namespaces.
    let selected = selected_namespaces(&spec.namespaces, dp);
    if spec.namespaces == Namespaces::AllLabelled && selected.is_empty() {
        plan.checks.push(Check::new(
            codes::NAMESPACE,
            CheckStatus::Warn,
            cluster,
            "no namespace has an injection label (istio.io/rev or istio-injection=enabled)",
        ));
    }
    for name in &selected {
        let Some(ns) = dp.namespaces.iter().find(|n| &n.name == name) else {
            plan.checks.push(
                fail(codes::NAMESPACE, format!("namespace {name} does not exist")).hint(format!(
                    "create it: kubectl create namespace {name}; kubectl label namespace {name} \
                     istio.io/rev={revision}"
                )),
            );
            continue;
        };
        let relabel = format!(
            "kubectl label namespace {name} istio-injection- istio.io/rev={revision} --overwrite"
        );
        match (
            ns.labels.get("istio.io/rev"),
            ns.labels.get("istio-injection"),
        ) {
            (Some(r), _) if r == revision => plan.checks.push(Check::new(
                codes::NAMESPACE,
                CheckStatus::Ok,
                cluster,
                format!("namespace {name} is labelled istio.io/rev={r}"),
            )),
            (Some(r), _) => plan.checks.push(
                Check::new(
                    codes::NAMESPACE,
                    CheckStatus::Warn,
                    cluster,
                    format!(
                        "namespace {name} is labelled istio.io/rev={r}, not {revision}: the \
                         managed data plane only manages proxies the managed control plane \
                         injected"
                    ),
                )
                .hint(relabel),
            ),
            (None, Some(v)) if v == "enabled" => plan.checks.push(Check::new(
                codes::NAMESPACE,
                CheckStatus::Ok,
                cluster,
                format!("namespace {name} is labelled istio-injection=enabled"),
            )),
            _ if spec.disable => {}
            _ => plan.checks.push(
                fail(
                    codes::NAMESPACE,
                    format!("namespace {name} has no injection label"),
                )
                .hint(relabel),
            ),
        }
        if ns.proxy.as_deref() != Some(value) {
            let a = set_metadata_action(
                format!("{id}/namespace-{name}"),
                cluster,
                "v1",
                "Namespace",
                None,
                name,
                Changes::new(),
                annotation.clone(),
                format!(
                    "namespace {name} has {PROXY_ANNOTATION}={}",
                    ns.proxy.as_deref().unwrap_or("(unset)")
                ),
            );
            annotated.push(a.id.clone());
            plan.actions.push(on_cluster(a, i));
        }
        if !spec.disable {
            let left = unmanaged(name, dp);
            if !left.is_empty() {
                plan.checks.push(
                    Check::new(
                        codes::UNMANAGED,
                        CheckStatus::Warn,
                        cluster,
                        format!(
                            "namespace {name}: the managed data plane will not manage {}",
                            left.join(", ")
                        ),
                    )
                    .hint(UNMANAGED_HINT),
                );
            }
        }
    }

    // Pods.
    for (ns, name) in &spec.pods {
        let Some(pod) = dp
            .pods
            .iter()
            .find(|p| &p.namespace == ns && &p.name == name)
        else {
            plan.checks
                .push(fail(codes::POD, format!("pod {ns}/{name} does not exist")));
            continue;
        };
        match pod.injected_revision.as_deref() {
            Some(r) if r == revision => plan.checks.push(Check::new(
                codes::POD,
                CheckStatus::Ok,
                cluster,
                format!("pod {ns}/{name} runs a proxy of {r}"),
            )),
            other if !spec.disable => plan.checks.push(
                Check::new(
                    codes::POD,
                    CheckStatus::Warn,
                    cluster,
                    match other {
                        Some(r) => format!(
                            "pod {ns}/{name} runs a proxy of {r}, not {revision}: the managed \
                             data plane will not manage it"
                        ),
                        None => format!(
                            "pod {ns}/{name} has no injected proxy: the managed data plane \
                             will not manage it"
                        ),
                    },
                )
                .hint(UNMANAGED_HINT),
            ),
            _ => {}
        }
        if pod.proxy.as_deref() != Some(value) {
            let a = set_metadata_action(
                format!("{id}/pod-{ns}-{name}"),
                cluster,
                "v1",
                "Pod",
                Some(ns),
                name,
                Changes::new(),
                annotation.clone(),
                format!(
                    "pod {ns}/{name} has {PROXY_ANNOTATION}={}",
                    pod.proxy.as_deref().unwrap_or("(unset)")
                ),
            );
            annotated.push(a.id.clone());
            plan.actions.push(on_cluster(a, i));
        }
    }

    if spec.disable {
        if !annotated.is_empty() {
            plan.checks.push(
                Check::new(
                    codes::DISABLE,
                    CheckStatus::Warn,
                    cluster,
                    "with the managed data plane off, proxies keep their current image until \
                     their pods restart",
                )
                .hint("restart the workloads to pick up the control plane's proxy version: kubectl rollout restart deployment -n NAMESPACE"),
            );
        }
        return;
    }

    // Wait for the DataPlaneControl of the revision, when something changes or it is not
    // Ready yet.
    let ready = dp
        .controls
        .iter()
        .any(|(r, s)| r == revision && s.as_deref() == Some("Ready"));
    if ready && annotated.is_empty() && feature.is_none() {
        return;
    }
    let mut wait = wait_action(
        format!("{id}/dataplane-ready"),
        cluster,
        KubeWait::DataPlaneReady {
            revision: revision.to_string(),
        },
        if ready {
            format!("the DataPlaneControl of {revision} is Ready; confirm it after the changes")
        } else {
            format!("the DataPlaneControl of {revision} is not Ready yet")
        },
        WAIT_READY,
    );
    wait.depends_on = annotated;
    wait.depends_on.extend(feature.map(str::to_string));
    plan.actions.push(on_cluster(wait, i));
}

#[cfg(test)]
mod tests;
