//! Planner tests of `migrate --finish`: observations in, checks and actions out.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::plan::Op;
use crate::spec::{EnableFlags, Management};
use crate::steps::kube_actions::KubeStep;
use crate::steps::tests::{installed, spec as mesh_spec};

const C1: &str = "asm-incluster/us-central1-c/cluster-1";
const REV: &str = "asm-191-1";

fn spec() -> RetireSpec {
    RetireSpec {
        mesh: mesh_spec(&[C1], EnableFlags::default(), Management::Automatic),
        plan: crate::spec::PlanFlags {
            yes: true,
            ..Default::default()
        },
    }
}

fn object(api: &str, kind: &str, name: &str, labels: Value) -> Value {
    json!({"apiVersion": api, "kind": kind, "metadata": {
        "name": name, "namespace": ISTIO_NAMESPACE, "labels": labels,
        "uid": format!("uid-{kind}-{name}"), "resourceVersion": "7"}})
}

fn istiod_objects(name: &str, rev: &str) -> Vec<Value> {
    CONTROL_PLANE_KINDS
        .iter()
        .map(|(api, kind)| {
            object(
                api,
                kind,
                name,
                json!({"app": "istiod", "istio.io/rev": rev}),
            )
        })
        .collect()
}

/// An injector configuration calling `service` (a Service in istio-system) or a URL.
fn injector(name: &str, labels: Value, service: Option<&str>, ns_selector: Value) -> Value {
    let client = match service {
        Some(s) => json!({"service": {"name": s, "namespace": ISTIO_NAMESPACE}}),
        None => json!({"url": "https://meshconfig.googleapis.com/inject"}),
    };
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": labels, "uid": format!("uid-{name}"), "resourceVersion": "3"},
        "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io", "clientConfig": client,
            "namespaceSelector": ns_selector}]})
}

fn rev_selector(rev: &str) -> Value {
    json!({"matchExpressions": [
        {"key": "istio.io/rev", "operator": "In", "values": [rev]},
        {"key": "istio-injection", "operator": "DoesNotExist"}]})
}

/// The in-cluster scenario's control plane: istiod-asm-191-1 (four kinds), the `istiod`
/// Service of the same revision, its injector, the default tag pointing at it, a validation
/// webhook; the managed revision's injector beside it.
fn in_cluster() -> RetireObs {
    let mut control_plane = istiod_objects("istiod-asm-191-1", REV);
    control_plane.push(object(
        "v1",
        "Service",
        "istiod",
        json!({"app": "istiod", "istio.io/rev": REV}),
    ));
    // Not istiod's: never planned.
    control_plane.push(object(
        "v1",
        "Service",
        "istio-ingressgateway",
        json!({"app": "istio-ingressgateway"}),
    ));
    RetireObs {
        control_plane,
        mutating_webhooks: vec![
            injector(
                "istio-sidecar-injector-asm-191-1",
                json!({"istio.io/rev": REV}),
                Some("istiod-asm-191-1"),
                rev_selector(REV),
            ),
            injector(
                "istio-sidecar-injector",
                json!({"istio.io/rev": REV, "istio.io/tag": "default"}),
                Some("istiod-asm-191-1"),
                json!({"matchLabels": {"istio-injection": "enabled"}}),
            ),
            injector(
                "istiod-asm-managed",
                json!({"istio.io/rev": "asm-managed"}),
                None,
                rev_selector("asm-managed"),
            ),
        ],
        validating_webhooks: vec![json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "istio-validator-asm-191-1-istio-system", "uid": "v1", "resourceVersion": "4"},
            "webhooks": [{"name": "rev.validation.istio.io",
                "clientConfig": {"service": {"name": "istiod-asm-191-1", "namespace": ISTIO_NAMESPACE}}}]
        })],
        namespaces: vec![
            (
                "frontend".into(),
                [("istio.io/rev".to_string(), "asm-managed".to_string())].into(),
            ),
            ("istio-system".into(), BTreeMap::new()),
        ],
        pods: vec![InjectedPod {
            namespace: "frontend".into(),
            name: "web-1".into(),
            revision: Some("asm-managed".into()),
        }],
    }
}

fn observed(ro: RetireObs) -> Observed {
    let s = spec();
    Observed {
        mesh: installed(&s.mesh),
        clusters: vec![Some(Ok(ro))],
    }
}

fn ids(p: &RetirePlan) -> Vec<&str> {
    p.actions.iter().map(|a| a.id.as_str()).collect()
}

#[test]
fn unused_revision_plans_webhooks_then_both_istiod_names_then_the_deployment() {
    let p = plan_retire(&spec(), &observed(in_cluster()));
    assert!(!p.blocked(), "{:#?}", p.checks);
    assert_eq!(
        ids(&p),
        [
            "cluster-1/mutating-webhook/istio-sidecar-injector-asm-191-1",
            "cluster-1/mutating-webhook/istio-sidecar-injector",
            "cluster-1/validating-webhook/istio-validator-asm-191-1-istio-system",
            "cluster-1/service/istiod-asm-191-1",
            "cluster-1/hpa/istiod-asm-191-1",
            "cluster-1/pdb/istiod-asm-191-1",
            "cluster-1/service/istiod",
            "cluster-1/deployment/istiod-asm-191-1",
        ]
    );
    assert!(p.actions.iter().all(|a| a.op == Op::Delete));
    let id_list = |r: std::ops::Range<usize>| -> Vec<String> {
        p.actions[r].iter().map(|a| a.id.clone()).collect()
    };
    for a in &p.actions[..3] {
        assert!(a.depends_on.is_empty(), "{}", a.id);
    }
    for a in &p.actions[3..7] {
        assert_eq!(a.depends_on, id_list(0..3), "{}", a.id);
    }
    assert_eq!(p.actions[7].depends_on, id_list(3..7));
    // The preconditions are the observed object's.
    let DataplaneStep::Kube { cluster: 0, step } = &p.actions[6].payload else {
        panic!("{:?}", p.actions[6].payload);
    };
    assert_eq!(
        step,
        &KubeStep::Delete {
            api_version: "v1".into(),
            kind: "Service".into(),
            namespace: Some(ISTIO_NAMESPACE.into()),
            name: "istiod".into(),
            uid: Some("uid-Service-istiod".into()),
            resource_version: Some("7".into()),
        }
    );
    let ok = p.checks.iter().find(|c| c.code == codes::IN_USE).unwrap();
    assert_eq!(ok.status, CheckStatus::Ok);
}

#[test]
fn pods_still_injected_block_the_plan_and_are_listed() {
    let mut ro = in_cluster();
    for (ns, name) in [("legacy", "monolith-2"), ("backend", "orders-1")] {
        ro.pods.push(InjectedPod {
            namespace: ns.into(),
            name: name.into(),
            revision: Some(REV.into()),
        });
    }
    let p = plan_retire(&spec(), &observed(ro));
    assert!(p.blocked());
    assert!(p.actions.is_empty(), "{:?}", ids(&p));
    let c = p.checks.iter().find(|c| c.code == codes::IN_USE).unwrap();
    assert_eq!(c.status, CheckStatus::Fail);
    assert_eq!(
        c.message,
        "revision asm-191-1 still injects 2 pods: backend/orders-1, legacy/monolith-2"
    );
}

#[test]
fn a_second_run_after_the_deletes_plans_nothing() {
    let mut ro = in_cluster();
    ro.control_plane.retain(|o| istiod_revision(o).is_none());
    ro.mutating_webhooks
        .retain(|w| w["metadata"]["name"] == "istiod-asm-managed");
    ro.validating_webhooks.clear();
    let p = plan_retire(&spec(), &observed(ro));
    assert!(p.actions.is_empty(), "{:?}", ids(&p));
    assert!(!p.blocked());
    let c = p
        .checks
        .iter()
        .find(|c| c.code == codes::NONE_FOUND)
        .unwrap();
    assert_eq!(c.status, CheckStatus::Ok);
}

#[test]
fn a_run_interrupted_after_some_deletes_plans_the_rest() {
    let mut ro = in_cluster();
    ro.control_plane.retain(|o| o["kind"] != "Service");
    ro.mutating_webhooks
        .retain(|w| w["metadata"]["name"] != "istio-sidecar-injector");
    let p = plan_retire(&spec(), &observed(ro));
    assert_eq!(
        ids(&p),
        [
            "cluster-1/mutating-webhook/istio-sidecar-injector-asm-191-1",
            "cluster-1/validating-webhook/istio-validator-asm-191-1-istio-system",
            "cluster-1/hpa/istiod-asm-191-1",
            "cluster-1/pdb/istiod-asm-191-1",
            "cluster-1/deployment/istiod-asm-191-1",
        ]
    );
}

#[test]
fn leftovers_without_the_deployment_still_name_the_revision() {
    // The seed's command deleted the objects named `istiod`; the Deployment is gone too.
    let mut ro = in_cluster();
    ro.control_plane
        .retain(|o| o["kind"] == "PodDisruptionBudget" || o["kind"] == "HorizontalPodAutoscaler");
    let p = plan_retire(&spec(), &observed(ro));
    assert_eq!(
        ids(&p)[3..],
        [
            "cluster-1/hpa/istiod-asm-191-1",
            "cluster-1/pdb/istiod-asm-191-1"
        ]
    );
}

#[test]
fn an_istiod_service_of_another_revision_is_left_alone() {
    let mut ro = in_cluster();
    ro.control_plane
        .retain(|o| o["metadata"]["name"] != "istiod");
    ro.control_plane.push(object(
        "v1",
        "Service",
        "istiod",
        json!({"app": "istiod", "istio.io/rev": "asm-1232-1"}),
    ));
    ro.pods.push(InjectedPod {
        namespace: "shop".into(),
        name: "cart-1".into(),
        revision: Some("asm-1232-1".into()),
    });
    let p = plan_retire(&spec(), &observed(ro));
    // asm-1232-1 is in use (blocked), so the plan as a whole stops; asm-191-1's deletes are
    // planned without the other revision's `istiod`.
    assert!(p.blocked());
    assert!(
        !ids(&p).contains(&"cluster-1/service/istiod"),
        "{:?}",
        ids(&p)
    );
    assert!(ids(&p).contains(&"cluster-1/service/istiod-asm-191-1"));
}

#[test]
fn namespaces_still_selecting_the_revision_are_warned_about() {
    let mut ro = in_cluster();
    ro.namespaces.push((
        "legacy".into(),
        [("istio-injection".to_string(), "enabled".to_string())].into(),
    ));
    ro.namespaces.push((
        "backend".into(),
        [("istio.io/rev".to_string(), REV.to_string())].into(),
    ));
    let p = plan_retire(&spec(), &observed(ro));
    let warned: Vec<&str> = p
        .checks
        .iter()
        .filter(|c| c.code == codes::NAMESPACE_LABEL)
        .map(|c| {
            assert_eq!(c.status, CheckStatus::Warn);
            c.message.as_str()
        })
        .collect();
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(warned[0].starts_with("namespace legacy is labelled for asm-191-1"));
    assert!(warned[1].starts_with("namespace backend is labelled for asm-191-1"));
    assert!(!p.blocked());
}

#[test]
fn istiod_revision_reads_labels_then_names_and_skips_others() {
    let unlabelled = json!({"metadata": {"name": "istiod", "labels": {"app": "istiod"}}});
    assert_eq!(istiod_revision(&unlabelled).as_deref(), Some("default"));
    let named = json!({"metadata": {"name": "istiod-asm-1102-3", "labels": {"app": "istiod"}}});
    assert_eq!(istiod_revision(&named).as_deref(), Some("asm-1102-3"));
    let other_app = json!({"metadata": {"name": "istiod-x", "labels": {"app": "web"}}});
    assert_eq!(istiod_revision(&other_app), None);
    let managed = json!({"metadata": {"name": "istiod-asm-managed",
        "labels": {"app": "istiod", "istio.io/rev": "asm-managed"}}});
    assert_eq!(istiod_revision(&managed), None);
}

#[test]
fn an_unreachable_cluster_is_a_failed_check() {
    let s = spec();
    let obs = Observed {
        mesh: installed(&s.mesh),
        clusters: vec![Some(Err("connection refused".into()))],
    };
    let p = plan_retire(&s, &obs);
    assert!(p.blocked());
    assert!(
        p.checks
            .iter()
            .any(|c| c.code == mesh_codes::CLUSTER_REACHABLE && c.message.contains("refused"))
    );
}
