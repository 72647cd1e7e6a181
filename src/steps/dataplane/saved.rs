//! Saved plans of `enable-dataplane` and `install-gateway` (`--plan-out FILE`, then
//! `asm apply FILE`): the `asm.plan/v1` object of `-o json` plus the command's flags
//! (`inputs`), a fingerprint of what was observed and every action's payload. The
//! fingerprint is install's (the GKE cluster, its channel, the control plane, the fleet
//! feature) plus the resourceVersion, or absence, of every object the plan changes: the
//! namespaces and pods enable-dataplane annotates; the gateway's namespace and each of its
//! objects. Never a token: the inputs name the clusters and the kubeconfig by its path.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::kube::apply::object_ref;
use crate::plan::Plan;
use crate::plan::saved::{SavedPlan, TargetInputs, saved_plan};
use crate::steps::Step;
use crate::steps::kube_actions::KubeStep;

use super::{DataplaneSpec, DataplaneStep, Observed, selected_namespaces};
use crate::steps::gateway::{self, GatewaySpec};

/// The commands whose plans this module saves.
pub const COMMANDS: [&str; 2] = ["enable-dataplane", "install-gateway"];

/// A data plane or gateway payload as saved.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum DataplanePayload {
    /// A fleet step (the servicemesh feature), as install saves it.
    Fleet(Step),
    /// A Kubernetes step.
    Kube(KubePayload),
}

/// A Kubernetes step as saved: the step's fields, then the index of its cluster.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct KubePayload {
    #[serde(flatten)]
    pub step: KubeStep,
    /// Its cluster: an index into the clusters `inputs.target` names, in order.
    pub cluster: usize,
}

/// A payload as saved: a fleet step as install saves it; a Kubernetes step with the index
/// of its cluster among the spec's clusters.
pub fn payload(step: &DataplaneStep) -> DataplanePayload {
    match step {
        DataplaneStep::Fleet(s) => DataplanePayload::Fleet(s.clone()),
        DataplaneStep::Kube { cluster, step } => DataplanePayload::Kube(KubePayload {
            step: step.clone(),
            cluster: *cluster,
        }),
    }
}

/// `(id, op, payload)` of every action of `plan`, as saved.
pub fn actions_of(plan: &Plan<DataplaneStep>) -> Vec<(String, String, Value)> {
    plan.actions
        .iter()
        .map(|a| {
            (
                a.id.clone(),
                serde_json::to_value(a.op)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                serde_json::to_value(payload(&a.payload)).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// `enable-dataplane`'s flags as saved (`inputs`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DataplaneInputs {
    pub target: TargetInputs,
    /// `--namespace` values.
    pub namespaces: Vec<String>,
    pub all_namespaces: bool,
    /// `--pod` values (`NAMESPACE/NAME`).
    pub pods: Vec<String>,
    pub disable: bool,
    pub enable_gcp_components: bool,
    /// `--timeout` as given, e.g. `10m`.
    pub timeout: String,
}

/// `install-gateway`'s flags as saved (`inputs`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GatewayInputs {
    pub target: TargetInputs,
    pub namespace: String,
    pub name: String,
    pub revision: String,
    /// `--injection`.
    #[schemars(extend("enum" = ["namespace", "pod"]))]
    pub injection: &'static str,
    /// `--service-type`.
    #[schemars(extend("enum" = ["LoadBalancer", "NodePort", "ClusterIP"]))]
    pub service_type: &'static str,
    pub replicas: u32,
    pub enable_namespace_creation: bool,
    pub allow_istio_system: bool,
    /// `--timeout` as given, e.g. `10m`.
    pub timeout: String,
}

/// The `inputs` of a saved data plane or gateway plan: the flags of the command that saved
/// it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum DataplaneOrGatewayInputs {
    EnableDataplane(DataplaneInputs),
    InstallGateway(GatewayInputs),
}

impl DataplaneOrGatewayInputs {
    /// The command these inputs are the flags of.
    pub fn command(&self) -> &'static str {
        match self {
            DataplaneOrGatewayInputs::EnableDataplane(_) => COMMANDS[0],
            DataplaneOrGatewayInputs::InstallGateway(_) => COMMANDS[1],
        }
    }
}

/// A saved enable-dataplane or install-gateway plan.
pub type SavedDataplanePlan = SavedPlan<DataplaneOrGatewayInputs, DataplanePayload>;

/// The saved plan of the command whose `inputs` these are.
pub fn document(
    plan: &Plan<DataplaneStep>,
    inputs: DataplaneOrGatewayInputs,
    fingerprint: &BTreeMap<String, String>,
) -> SavedDataplanePlan {
    saved_plan(inputs.command(), plan, inputs, fingerprint, payload)
}

fn version_of(v: Option<&Value>) -> String {
    match v {
        None => "absent".into(),
        Some(o) => o
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(|rv| format!("resourceVersion={rv}"))
            .unwrap_or_else(|| "present".into()),
    }
}

fn version_str(rv: Option<&str>) -> String {
    rv.map(|rv| format!("resourceVersion={rv}"))
        .unwrap_or_else(|| "present".into())
}

/// What an enable-dataplane plan was made from: install's fingerprint, and per cluster the
/// namespaces it covers and the resourceVersion of each namespace and pod it annotates.
pub fn dataplane_fingerprint(spec: &DataplaneSpec, obs: &Observed) -> BTreeMap<String, String> {
    let mut fp = crate::steps::observe::fingerprint(&spec.mesh, &obs.mesh);
    for (c, o) in spec.mesh.clusters.iter().zip(&obs.clusters) {
        let dp = match o {
            Some(Ok(dp)) => dp,
            Some(Err(e)) => {
                fp.insert(
                    format!("cluster {c}: data plane"),
                    format!("unreadable ({e})"),
                );
                continue;
            }
            None => {
                fp.insert(format!("cluster {c}: data plane"), "not read".into());
                continue;
            }
        };
        let selected = selected_namespaces(&spec.namespaces, dp);
        fp.insert(
            format!("cluster {c}: namespaces covered"),
            selected.join(","),
        );
        for name in &selected {
            let v = dp
                .namespaces
                .iter()
                .find(|n| &n.name == name)
                .map(|n| version_str(n.resource_version.as_deref()))
                .unwrap_or_else(|| "absent".into());
            fp.insert(format!("cluster {c}: Namespace/{name}"), v);
        }
        for (ns, name) in &spec.pods {
            let v = dp
                .pods
                .iter()
                .find(|p| &p.namespace == ns && &p.name == name)
                .map(|p| version_str(p.resource_version.as_deref()))
                .unwrap_or_else(|| "absent".into());
            fp.insert(format!("cluster {c}: Pod/{ns}/{name}"), v);
        }
    }
    fp
}

/// What an install-gateway plan was made from: install's fingerprint, and per cluster the
/// resourceVersion (or absence) of the namespace and of each of the gateway's objects.
pub fn gateway_fingerprint(
    spec: &GatewaySpec,
    obs: &gateway::Observed,
) -> Result<BTreeMap<String, String>, Error> {
    let mut fp = crate::steps::observe::fingerprint(&spec.mesh, &obs.mesh);
    // Names only: the revision does not change which objects there are.
    let desired = gateway::manifests(spec, "auto")?;
    for (c, o) in spec.mesh.clusters.iter().zip(&obs.clusters) {
        let gw = match o {
            Some(Ok(gw)) => gw,
            Some(Err(e)) => {
                fp.insert(format!("cluster {c}: gateway"), format!("unreadable ({e})"));
                continue;
            }
            None => {
                fp.insert(format!("cluster {c}: gateway"), "not read".into());
                continue;
            }
        };
        fp.insert(
            format!("cluster {c}: Namespace/{}", spec.namespace),
            version_of(gw.namespace.as_ref()),
        );
        for (d, live) in desired.iter().zip(&gw.live) {
            let r = object_ref(d).map_err(Error::from)?;
            let key = match &r.namespace {
                Some(ns) => format!("cluster {c}: {}/{ns}/{}", r.gvk.kind, r.name),
                None => format!("cluster {c}: {}/{}", r.gvk.kind, r.name),
            };
            fp.insert(key, version_of(live.as_ref()));
        }
    }
    Ok(fp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cli::install::TargetArgs;
    use crate::plan::saved::{drift_refusal, read_command, target_inputs};
    use crate::steps::dataplane::{DataplaneObs, NamespaceObs, Namespaces, plan_dataplane};
    use crate::steps::tests::{installed, spec as mesh_spec};
    use serde_json::json;

    const C1: &str = "asm-fresh/us-central1-c/cluster-1";

    fn spec() -> DataplaneSpec {
        DataplaneSpec {
            mesh: mesh_spec(
                &[C1],
                crate::spec::EnableFlags::default(),
                crate::spec::Management::Automatic,
            ),
            namespaces: Namespaces::Named(vec!["shop".into()]),
            pods: vec![],
            disable: false,
            plan: crate::spec::PlanFlags {
                yes: true,
                ..Default::default()
            },
        }
    }

    fn observed(s: &DataplaneSpec, rv: &str) -> Observed {
        Observed {
            mesh: installed(&s.mesh),
            clusters: vec![Some(Ok(DataplaneObs {
                namespaces: vec![NamespaceObs {
                    name: "shop".into(),
                    labels: [("istio.io/rev".to_string(), "asm-managed".to_string())].into(),
                    proxy: None,
                    resource_version: Some(rv.into()),
                }],
                ..DataplaneObs::default()
            }))],
        }
    }

    #[test]
    fn saved_dataplane_plan_round_trips_and_refuses_a_namespace_that_changed() {
        let s = spec();
        let obs = observed(&s, "41");
        let plan = plan_dataplane(&s, &obs);
        assert!(!plan.actions.is_empty());
        let fp = dataplane_fingerprint(&s, &obs);
        assert_eq!(
            fp[&format!("cluster {C1}: Namespace/shop")],
            "resourceVersion=41"
        );
        let inputs = DataplaneOrGatewayInputs::EnableDataplane(DataplaneInputs {
            target: target_inputs(&TargetArgs::default()),
            namespaces: vec!["shop".into()],
            all_namespaces: false,
            pods: vec![],
            disable: false,
            enable_gcp_components: false,
            timeout: "10m".into(),
        });
        let doc = serde_json::to_value(document(&plan, inputs, &fp)).unwrap();
        assert_eq!(doc["actions"][0]["payload"]["step"], "set_metadata");
        assert_eq!(doc["actions"][0]["payload"]["cluster"], 0);
        let text = format!("{doc:#}");
        let saved = read_command(
            std::path::Path::new("p.json"),
            &serde_json::from_str(&text).unwrap(),
            &COMMANDS,
        )
        .unwrap();
        assert_eq!(saved.command, "enable-dataplane");
        assert!(drift_refusal(&saved, &fp, &actions_of(&plan)).is_none());

        // Someone changed the namespace since: refused, naming it.
        let obs2 = observed(&s, "42");
        let e = drift_refusal(
            &saved,
            &dataplane_fingerprint(&s, &obs2),
            &actions_of(&plan),
        )
        .unwrap();
        assert_eq!(e.exit_code, 2);
        assert!(
            e.message
                .contains("Namespace/shop: resourceVersion=41 → resourceVersion=42"),
            "{}",
            e.message
        );
        // Another command's plan is not read as this one's.
        let mut other = doc.clone();
        other["saved"]["command"] = json!("create-mesh");
        assert!(read_command(std::path::Path::new("p.json"), &other, &COMMANDS).is_err());
    }

    #[test]
    fn gateway_fingerprint_names_the_namespace_and_every_object_present_or_absent() {
        let s = GatewaySpec {
            mesh: mesh_spec(
                &[C1],
                crate::spec::EnableFlags::default(),
                crate::spec::Management::Automatic,
            ),
            namespace: "gw".into(),
            name: "istio-ingressgateway".into(),
            revision: None,
            pod_injection: false,
            service_type: "LoadBalancer",
            replicas: 1,
            create_namespace: true,
            plan: crate::spec::PlanFlags {
                yes: true,
                ..Default::default()
            },
        };
        let desired = gateway::manifests(&s, "asm-managed").unwrap();
        let mut live: Vec<Option<Value>> = vec![None; desired.len()];
        let mut sa = desired[0].clone();
        sa["metadata"]["resourceVersion"] = json!("7");
        live[0] = Some(sa);
        let obs = gateway::Observed {
            mesh: installed(&s.mesh),
            clusters: vec![Some(Ok(gateway::GatewayObs {
                namespace: None,
                live,
                address: None,
            }))],
        };
        let fp = gateway_fingerprint(&s, &obs).unwrap();
        let of = |k: &str| fp[&format!("cluster {C1}: {k}")].as_str();
        assert_eq!(of("Namespace/gw"), "absent");
        assert_eq!(
            of("ServiceAccount/gw/istio-ingressgateway"),
            "resourceVersion=7"
        );
        assert_eq!(of("Deployment/gw/istio-ingressgateway"), "absent");
        assert_eq!(of("Role/gw/istio-ingressgateway-sds"), "absent");
        let objects = fp
            .keys()
            .filter(|k| k.starts_with(&format!("cluster {C1}: ")) && k.contains("/gw/"))
            .count();
        assert_eq!(objects, desired.len());
    }
}
