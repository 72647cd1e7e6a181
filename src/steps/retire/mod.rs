//! `asm migrate --finish`: retire the in-cluster control plane once nothing uses it.
//!
//! [`plan_retire`] is the pure function `(RetireSpec, Observed) -> Plan`. Per cluster and
//! per in-cluster revision R (found from istiod's objects in istio-system and from the
//! injector webhooks): a check that no live pod still runs a proxy R injected (else the
//! plan is blocked, listing those pods), a warning per namespace whose labels still select
//! R, then the deletes — first every webhook configuration that calls R (its injector, the
//! tags pointing at it, its validation webhook), so no admission request reaches an istiod
//! that is going away, then the Services, HorizontalPodAutoscaler and PodDisruptionBudget,
//! last the Deployment, each named `istiod-R`, or `istiod` when it belongs to R.
//! The seed's own command (`kubectl delete … istiod -n istio-system`) misses the
//! revisioned names and the webhooks.

pub mod observe;
pub mod spec;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::plan::{Check, CheckStatus, Plan};
use crate::steps::codes as mesh_codes;
use crate::steps::dataplane::{DataplaneStep, MANAGED_REVISIONS, on_cluster};
use crate::steps::kube_actions::{cluster_label, delete_action};
use crate::steps::status::report::{injectors, resolve};

pub use spec::RetireSpec;

/// Where the in-cluster control plane lives.
pub const ISTIO_NAMESPACE: &str = "istio-system";

/// The kinds of the control plane's own objects in istio-system, as `(apiVersion, kind)`.
pub const CONTROL_PLANE_KINDS: [(&str, &str); 4] = [
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
];

/// Stable check codes of `migrate --finish`.
pub mod codes {
    /// Pods still run proxies of the revision to retire.
    pub const IN_USE: &str = "ASM-C550";
    /// No in-cluster control plane: nothing to retire.
    pub const NONE_FOUND: &str = "ASM-C551";
    /// A namespace's labels still select the revision.
    pub const NAMESPACE_LABEL: &str = "ASM-C552";
    /// An object of the revision lacks what a delete needs (kind, name).
    pub const UNDELETABLE: &str = "ASM-C553";
}

/// A live pod running an injected proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InjectedPod {
    pub namespace: String,
    pub name: String,
    /// The revision that injected it (`sidecar.istio.io/status`, else its `istio.io/rev`
    /// label).
    pub revision: Option<String>,
}

/// What one cluster holds of in-cluster control planes and their users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetireObs {
    /// Every object of [`CONTROL_PLANE_KINDS`] in istio-system, `apiVersion`/`kind` set.
    pub control_plane: Vec<Value>,
    /// Every MutatingWebhookConfiguration, `apiVersion`/`kind` set.
    pub mutating_webhooks: Vec<Value>,
    /// Every ValidatingWebhookConfiguration, `apiVersion`/`kind` set.
    pub validating_webhooks: Vec<Value>,
    /// Every namespace with its labels.
    pub namespaces: Vec<(String, BTreeMap<String, String>)>,
    /// Every live pod with an injected proxy.
    pub pods: Vec<InjectedPod>,
}

/// The observation of one run: install's (GKE, fleet, control plane) and the in-cluster
/// control planes', per cluster in the spec's order (`None`: not read).
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub mesh: crate::steps::Observed,
    pub clusters: Vec<Option<Result<RetireObs, String>>>,
}

/// The plan type of `migrate --finish` (Kubernetes steps only).
pub type RetirePlan = Plan<DataplaneStep>;

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

fn name_of(v: &Value) -> &str {
    str_at(v, "/metadata/name").unwrap_or_default()
}

/// The in-cluster revision an istiod object (Deployment, Service, autoscaler or disruption
/// budget named `istiod` or `istiod-REV`, labelled `app: istiod` as Istio's chart labels
/// them) belongs to: its `istio.io/rev` label, else what its name says (`istiod` is the
/// `default` revision). `None` for any other object and for managed revisions.
pub fn istiod_revision(object: &Value) -> Option<String> {
    let name = name_of(object);
    if label(object, "app") != Some("istiod") || !(name == "istiod" || name.starts_with("istiod-"))
    {
        return None;
    }
    let rev = match label(object, "istio.io/rev") {
        Some(r) => r.to_string(),
        None => name
            .strip_prefix("istiod-")
            .unwrap_or("default")
            .to_string(),
    };
    (!MANAGED_REVISIONS.contains(&rev.as_str())).then_some(rev)
}

/// Names of the injector configurations (injectors and tags) that call revision `rev`
/// through an in-cluster Service.
fn injector_configurations(obs: &RetireObs, rev: &str) -> BTreeSet<String> {
    injectors(&obs.mutating_webhooks)
        .into_iter()
        .filter(|i| i.revision == rev && !i.by_url)
        .map(|i| i.name)
        .collect()
}

/// Whether a ValidatingWebhookConfiguration is revision `rev`'s: labelled `istio.io/rev:
/// rev`, or one of its Istio webhooks calls the Service `istiod-rev` in istio-system.
pub fn validates_for(vwc: &Value, rev: &str) -> bool {
    let hooks: Vec<&Value> = vwc
        .get("webhooks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|w| str_at(w, "/name").is_some_and(|n| n.ends_with("istio.io")))
        .collect();
    if hooks.is_empty() {
        return false;
    }
    if let Some(l) = label(vwc, "istio.io/rev") {
        return l == rev;
    }
    let service = format!("istiod-{rev}");
    hooks.iter().any(|w| {
        str_at(w, "/clientConfig/service/namespace") == Some(ISTIO_NAMESPACE)
            && str_at(w, "/clientConfig/service/name") == Some(service.as_str())
    })
}

/// The in-cluster revisions of a cluster: those of istiod's objects and of the injector
/// configurations served in-cluster (so a run interrupted after some deletes still finds
/// what is left), managed revisions excepted.
pub fn in_cluster_revisions(obs: &RetireObs) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = obs
        .control_plane
        .iter()
        .filter_map(istiod_revision)
        .collect();
    out.extend(
        injectors(&obs.mutating_webhooks)
            .into_iter()
            .filter(|i| !i.by_url && !MANAGED_REVISIONS.contains(&i.revision.as_str()))
            .map(|i| i.revision),
    );
    out
}

/// The live pods whose proxy revision `rev` injected, as `namespace/name`, sorted.
pub fn pods_on(obs: &RetireObs, rev: &str) -> Vec<String> {
    let mut out: Vec<String> = obs
        .pods
        .iter()
        .filter(|p| p.revision.as_deref() == Some(rev))
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    out.sort();
    out
}

/// Namespaces whose labels select revision `rev` (Istio's precedence, through the
/// injector configurations as they are now).
pub fn namespaces_selecting(obs: &RetireObs, rev: &str) -> Vec<String> {
    let inj = injectors(&obs.mutating_webhooks);
    let none = BTreeMap::new();
    obs.namespaces
        .iter()
        .filter(|(_, labels)| resolve(&inj, labels, &none).as_deref() == Some(rev))
        .map(|(n, _)| n.clone())
        .collect()
}

/// Plans `migrate --finish` (pure).
pub fn plan_retire(spec: &RetireSpec, obs: &Observed) -> RetirePlan {
    let mut plan = RetirePlan::default();
    for i in 0..spec.mesh.clusters.len() {
        plan_cluster(spec, obs, i, &mut plan);
    }
    plan
}

const IN_USE_HINT: &str = "move them to the managed control plane first (asm migrate), then \
     run asm migrate --finish again";

fn plan_cluster(spec: &RetireSpec, obs: &Observed, i: usize, plan: &mut RetirePlan) {
    let cref = spec.mesh.clusters[i].to_string();
    let cluster = Some(cref.as_str());
    let fail = |code, message: String| Check::new(code, CheckStatus::Fail, cluster, message);
    let Some(co) = obs.mesh.clusters.get(i) else {
        return;
    };
    match &co.gke {
        Ok(Some(_)) => {}
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
    }
    let ro = match obs.clusters.get(i) {
        Some(Some(Ok(ro))) => ro,
        Some(Some(Err(e))) => {
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
    let revisions = in_cluster_revisions(ro);
    if revisions.is_empty() {
        plan.checks.push(Check::new(
            codes::NONE_FOUND,
            CheckStatus::Ok,
            cluster,
            "no in-cluster control plane: nothing to retire",
        ));
        return;
    }
    let id = cluster_label(&spec.mesh.clusters, i);
    for rev in &revisions {
        let pods = pods_on(ro, rev);
        if !pods.is_empty() {
            plan.checks.push(
                fail(
                    codes::IN_USE,
                    format!(
                        "revision {rev} still injects {} pod{}: {}",
                        pods.len(),
                        if pods.len() == 1 { "" } else { "s" },
                        pods.join(", ")
                    ),
                )
                .hint(IN_USE_HINT),
            );
            continue;
        }
        plan.checks.push(Check::new(
            codes::IN_USE,
            CheckStatus::Ok,
            cluster,
            format!("no pod runs a proxy injected by {rev}"),
        ));
        for ns in namespaces_selecting(ro, rev) {
            plan.checks.push(
                Check::new(
                    codes::NAMESPACE_LABEL,
                    CheckStatus::Warn,
                    cluster,
                    format!(
                        "namespace {ns} is labelled for {rev}: once {rev} is retired, its new \
                         pods are not injected"
                    ),
                )
                .hint(format!("asm migrate --namespace {ns}")),
            );
        }
        plan_revision(ro, rev, &id, cluster, i, plan);
    }
}

/// The deletes of revision `rev`: webhook configurations first, then istiod's objects.
fn plan_revision(
    ro: &RetireObs,
    rev: &str,
    id: &str,
    cluster: Option<&str>,
    i: usize,
    plan: &mut RetirePlan,
) {
    let reason = format!("no pod runs a proxy injected by {rev}");
    let injectors = injector_configurations(ro, rev);
    let webhooks = ro
        .mutating_webhooks
        .iter()
        .filter(|w| injectors.contains(name_of(w)))
        .map(|w| ("mutating-webhook", w))
        .chain(
            ro.validating_webhooks
                .iter()
                .filter(|w| validates_for(w, rev))
                .map(|w| ("validating-webhook", w)),
        );
    let mut webhook_ids = Vec::new();
    for (short, w) in webhooks {
        let action_id = format!("{id}/{short}/{}", name_of(w));
        if push_delete(plan, action_id.clone(), cluster, i, w, &reason, Vec::new()) {
            webhook_ids.push(action_id);
        }
    }
    // The Deployment goes last: deleting it ends istiod's pods, which changes the status
    // (and so the resourceVersion, a precondition) of its disruption budget and autoscaler.
    let objects: Vec<&Value> = ro
        .control_plane
        .iter()
        .filter(|o| istiod_revision(o).as_deref() == Some(rev))
        .collect();
    let (deployments, others): (Vec<&Value>, Vec<&Value>) = objects
        .into_iter()
        .partition(|o| str_at(o, "/kind") == Some("Deployment"));
    let mut other_ids = Vec::new();
    for o in others {
        let short = match str_at(o, "/kind") {
            Some("HorizontalPodAutoscaler") => "hpa",
            Some("PodDisruptionBudget") => "pdb",
            _ => "service",
        };
        let action_id = format!("{id}/{short}/{}", name_of(o));
        if push_delete(
            plan,
            action_id.clone(),
            cluster,
            i,
            o,
            &reason,
            webhook_ids.clone(),
        ) {
            other_ids.push(action_id);
        }
    }
    let last = if other_ids.is_empty() {
        webhook_ids
    } else {
        other_ids
    };
    for o in deployments {
        let action_id = format!("{id}/deployment/{}", name_of(o));
        push_delete(plan, action_id, cluster, i, o, &reason, last.clone());
    }
}

/// Adds the delete of `live` after `depends_on`; an object asm cannot name becomes a
/// failed check instead. Whether the action was added.
fn push_delete(
    plan: &mut RetirePlan,
    id: String,
    cluster: Option<&str>,
    i: usize,
    live: &Value,
    reason: &str,
    depends_on: Vec<String>,
) -> bool {
    match delete_action(id, cluster, live, reason) {
        Ok(mut a) => {
            a.depends_on = depends_on;
            plan.actions.push(on_cluster(a, i));
            true
        }
        Err(e) => {
            plan.checks.push(Check::new(
                codes::UNDELETABLE,
                CheckStatus::Fail,
                cluster,
                format!("cannot plan the delete of {}: {}", name_of(live), e.message),
            ));
            false
        }
    }
}
