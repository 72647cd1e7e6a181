//! `asm install-gateway`: an ingress gateway injected by the managed control plane, from
//! the embedded `manifests/gateway.yaml`.
//!
//! [`plan_gateway`] is pure: `(GatewaySpec, Observed) -> Plan` — the revision and namespace
//! checks, the namespace (created or relabelled), a server-side apply for each object that
//! is missing or differs, and the waits (Available, pods injected by the revision, the
//! LoadBalancer address).

pub mod observe;
pub mod spec;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::Error;
use crate::kube::apply::{diff_needed, parse_yaml_documents};
use crate::kube::metadata::Changes;
use crate::kube::rollout::{Rollout, deployment_rollout};
use crate::plan::{Check, CheckStatus, Plan};
use crate::spec::Channel;
use crate::steps::codes as mesh_codes;
use crate::steps::dataplane::{DataplaneStep, MANAGED_REVISIONS};
use crate::steps::kube_actions::{KubeWait, apply_action, set_metadata_action, wait_action};

pub use spec::GatewaySpec;

const MANIFEST: &str = include_str!("../../../manifests/gateway.yaml");

/// Stable check codes of `install-gateway`.
pub mod codes {
    pub const REVISION: &str = "ASM-C401";
    pub const NAMESPACE: &str = "ASM-C402";
}

/// What one cluster holds for the gateway.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayObs {
    /// The namespace, if it exists.
    pub namespace: Option<Value>,
    /// The live object of each manifest (same order as [`manifests`]).
    pub live: Vec<Option<Value>>,
    /// The Service's LoadBalancer address, if any.
    pub address: Option<String>,
}

/// The observation of one run: install's and the gateway's per cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub mesh: crate::steps::Observed,
    pub clusters: Vec<Option<Result<GatewayObs, String>>>,
}

/// The plan type of `install-gateway`.
pub type GatewayPlan = Plan<DataplaneStep>;

/// The pod labels of the gateway (its selector).
pub fn pod_labels(name: &str) -> BTreeMap<String, String> {
    [
        ("app".to_string(), name.to_string()),
        ("istio".to_string(), "ingressgateway".to_string()),
    ]
    .into()
}

/// The gateway's objects for `spec`; with `--injection pod` the pod template carries
/// `istio.io/rev: revision`.
pub fn manifests(spec: &GatewaySpec, revision: &str) -> Result<Vec<Value>, Error> {
    let text = MANIFEST
        .replace("NAMESPACE", &spec.namespace)
        .replace("SERVICE_TYPE", spec.service_type)
        .replace("MIN_REPLICAS", &spec.replicas.to_string())
        .replace("NAME", &spec.name);
    let mut objects = parse_yaml_documents(&text).map_err(Error::from)?;
    if spec.pod_injection {
        for o in &mut objects {
            if o["kind"] == "Deployment" {
                o["spec"]["template"]["metadata"]["labels"]["istio.io/rev"] = json!(revision);
            }
        }
    }
    Ok(objects)
}

/// The namespace labels the injection mode wants (`None`: remove).
fn namespace_labels(spec: &GatewaySpec, revision: &str) -> Changes {
    let rev = (!spec.pod_injection).then(|| revision.to_string());
    [
        ("istio-injection".to_string(), None),
        ("istio.io/rev".to_string(), rev),
    ]
    .into()
}

fn kube(
    a: crate::plan::Action<crate::steps::kube_actions::KubeStep>,
    cluster: usize,
) -> crate::plan::Action<DataplaneStep> {
    crate::plan::Action {
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

/// The revision of cluster `i`: `--revision`, or the channel's managed revision.
pub fn revision_of(spec: &GatewaySpec, obs: &Observed, i: usize) -> String {
    spec.revision.clone().unwrap_or_else(|| {
        let channel = match obs.mesh.clusters.get(i).map(|c| &c.gke) {
            Some(Ok(Some(g))) => g.channel.clone(),
            _ => None,
        };
        Channel::from_gke(channel.as_deref()).revision().to_string()
    })
}

/// Whether the observed gateway needs no wait: its Deployment rolled out (as `kubectl
/// rollout status` judges it) and, for a LoadBalancer, the Service has an address.
fn gateway_ready(spec: &GatewaySpec, desired: &[Value], gw: &GatewayObs) -> bool {
    let deployment = desired
        .iter()
        .zip(&gw.live)
        .find(|(d, _)| d["kind"] == "Deployment")
        .and_then(|(_, live)| live.as_ref());
    let rolled_out = deployment.is_some_and(|d| deployment_rollout(d) == Rollout::Complete);
    rolled_out && (spec.service_type != "LoadBalancer" || gw.address.is_some())
}

/// Plans `install-gateway` (pure).
pub fn plan_gateway(spec: &GatewaySpec, obs: &Observed) -> Result<GatewayPlan, Error> {
    let mut plan = GatewayPlan::default();
    for i in 0..spec.mesh.clusters.len() {
        plan_cluster(spec, obs, i, &mut plan)?;
    }
    Ok(plan)
}

fn plan_cluster(
    spec: &GatewaySpec,
    obs: &Observed,
    i: usize,
    plan: &mut GatewayPlan,
) -> Result<(), Error> {
    let cref = spec.mesh.clusters[i].to_string();
    let cluster = Some(cref.as_str());
    let id = crate::steps::kube_actions::cluster_label(&spec.mesh.clusters, i);
    let fail = |code, message: String| Check::new(code, CheckStatus::Fail, cluster, message);
    let Some(co) = obs.mesh.clusters.get(i) else {
        return Ok(());
    };
    if !matches!(co.gke, Ok(Some(_))) {
        plan.checks.push(fail(
            mesh_codes::CLUSTER_EXISTS,
            format!("cluster {cref} does not exist or cannot be read"),
        ));
        return Ok(());
    }
    let (kube_obs, gw) = match (&co.kube, obs.clusters.get(i)) {
        (Some(Ok(k)), Some(Some(Ok(g)))) => (k, g),
        (Some(Err(e)), _) | (_, Some(Some(Err(e)))) => {
            plan.checks.push(fail(
                mesh_codes::CLUSTER_REACHABLE,
                format!("cannot read the Kubernetes API of {cref}: {e}"),
            ));
            return Ok(());
        }
        _ => {
            plan.checks.push(fail(
                mesh_codes::CLUSTER_REACHABLE,
                format!("the Kubernetes API of {cref} was not read"),
            ));
            return Ok(());
        }
    };

    let revision = revision_of(spec, obs, i);
    if kube_obs
        .cprs
        .iter()
        .any(|r| r.name == revision && r.provisioning_finished)
    {
        plan.checks.push(Check::new(
            codes::REVISION,
            CheckStatus::Ok,
            cluster,
            format!("managed revision {revision} is ready"),
        ));
    } else {
        let ready: Vec<&str> = kube_obs
            .cprs
            .iter()
            .filter(|r| r.provisioning_finished && MANAGED_REVISIONS.contains(&r.name.as_str()))
            .map(|r| r.name.as_str())
            .collect();
        plan.checks.push(
            fail(
                codes::REVISION,
                format!("managed revision {revision} is not ready"),
            )
            .hint(if ready.is_empty() {
                "install the control plane first: asm install --managed".to_string()
            } else {
                format!("ready here: {}; pass --revision auto", ready.join(", "))
            }),
        );
    }

    // The namespace: created with its label, or relabelled.
    let ns = &spec.namespace;
    let wanted = namespace_labels(spec, &revision);
    let mut deps = Vec::new();
    match &gw.namespace {
        None if spec.create_namespace => {
            let labels: BTreeMap<&String, &String> = wanted
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
                .collect();
            let object = json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": labels}});
            plan.checks.push(Check::new(
                codes::NAMESPACE,
                CheckStatus::Fix,
                cluster,
                format!("namespace {ns} does not exist"),
            ));
            let a = apply_action(
                format!("{id}/namespace"),
                cluster,
                object,
                false,
                format!("namespace {ns} does not exist"),
            )?;
            deps.push(a.id.clone());
            plan.actions.push(kube(a, i));
        }
        None => plan.checks.push(
            fail(codes::NAMESPACE, format!("namespace {ns} does not exist"))
                .hint("pass --enable-namespace-creation, or create it"),
        ),
        Some(live) => {
            plan.checks.push(Check::new(
                codes::NAMESPACE,
                CheckStatus::Ok,
                cluster,
                format!("namespace {ns} exists"),
            ));
            let have = |k: &str| {
                live.pointer("/metadata/labels")
                    .and_then(|l| l.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let changes: Changes = wanted
                .iter()
                .filter(|(k, v)| have(k) != **v)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !changes.is_empty() {
                let a = set_metadata_action(
                    format!("{id}/namespace-labels"),
                    cluster,
                    "v1",
                    "Namespace",
                    None,
                    ns,
                    changes,
                    Changes::new(),
                    if spec.pod_injection {
                        "--injection pod: the namespace keeps no injection label".to_string()
                    } else {
                        format!("--injection namespace: the namespace selects {revision}")
                    },
                );
                deps.push(a.id.clone());
                plan.actions.push(kube(a, i));
            }
        }
    }

    // The objects: applied when missing or different.
    let desired = manifests(spec, &revision)?;
    let mut applied = Vec::new();
    for (d, live) in desired.iter().zip(&gw.live) {
        let needed = match live {
            None => true,
            Some(l) => diff_needed(l, d),
        };
        if !needed {
            continue;
        }
        let kind = d["kind"].as_str().unwrap_or_default().to_lowercase();
        let mut a = apply_action(
            format!("{id}/{kind}"),
            cluster,
            d.clone(),
            live.is_some(),
            if live.is_some() {
                format!("{kind} differs from the gateway's manifest")
            } else {
                format!("{kind} does not exist")
            },
        )?;
        a.depends_on = deps.clone();
        applied.push(a.id.clone());
        plan.actions.push(kube(a, i));
    }

    // Waits, when something changes or the gateway is not ready yet (a run killed after
    // its last write left it unwaited for).
    if applied.is_empty() && deps.is_empty() && gateway_ready(spec, &desired, gw) {
        return Ok(());
    }
    let mut all = deps.clone();
    all.extend(applied);
    let mut waits = vec![
        (
            "available",
            KubeWait::DeploymentAvailable {
                namespace: ns.clone(),
                name: spec.name.clone(),
            },
            "the gateway's pods must be available",
        ),
        (
            "injected",
            KubeWait::PodsOnRevision {
                namespace: ns.clone(),
                labels: pod_labels(&spec.name),
                revision: revision.clone(),
                min_pods: 1,
            },
            "the gateway's pods must run proxies of the revision",
        ),
    ];
    if spec.service_type == "LoadBalancer" {
        waits.push((
            "address",
            KubeWait::LoadBalancerAddress {
                namespace: ns.clone(),
                name: spec.name.clone(),
            },
            "the LoadBalancer Service must get an address",
        ));
    }
    for (suffix, w, reason) in waits {
        let mut a = wait_action(
            format!("{id}/{suffix}"),
            cluster,
            w,
            reason,
            Duration::from_secs(60),
        );
        a.depends_on = all.clone();
        plan.actions.push(kube(a, i));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
