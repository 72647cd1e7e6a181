//! Planner tests of `install-gateway`: observations in, checks and actions out.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;
use crate::plan::Op;
use crate::spec::{EnableFlags, Management};
use crate::steps::kube_actions::KubeStep;
use crate::steps::tests::{installed, spec as mesh_spec};

const C1: &str = "asm-fresh/us-central1-c/cluster-1";

fn spec(pod_injection: bool) -> GatewaySpec {
    GatewaySpec {
        mesh: mesh_spec(&[C1], EnableFlags::default(), Management::Automatic),
        namespace: "gw".into(),
        name: "istio-ingressgateway".into(),
        revision: None,
        pod_injection,
        service_type: "LoadBalancer",
        replicas: 2,
        create_namespace: true,
        plan: crate::spec::PlanFlags {
            yes: true,
            ..Default::default()
        },
    }
}

fn observed(s: &GatewaySpec, gw: GatewayObs) -> Observed {
    Observed {
        mesh: installed(&s.mesh),
        clusters: vec![Some(Ok(gw))],
    }
}

#[test]
fn manifests_hold_the_gateway_template_ports_sds_role_and_min_replicas() {
    let s = spec(false);
    let m = manifests(&s, "asm-managed").unwrap();
    let kind = |k: &str| m.iter().find(|o| o["kind"] == k).unwrap();
    let d = kind("Deployment");
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"]["inject.istio.io/templates"],
        "gateway"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "auto"
    );
    assert!(
        d["spec"].get("replicas").is_none(),
        "the autoscaler owns replicas"
    );
    let ports: Vec<(&str, i64)> = kind("Service")["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["port"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        ports,
        [("status-port", 15021), ("http", 80), ("https", 443)]
    );
    assert_eq!(kind("Role")["metadata"]["name"], "istio-ingressgateway-sds");
    assert_eq!(
        kind("Role")["rules"][0]["verbs"],
        json!(["get", "watch", "list"])
    );
    assert_eq!(kind("HorizontalPodAutoscaler")["spec"]["minReplicas"], 2);
    assert!(
        d["spec"]["template"]["metadata"]["labels"]
            .get("istio.io/rev")
            .is_none()
    );
}

#[test]
fn pod_injection_labels_the_pods_and_strips_the_namespace_labels() {
    let s = spec(true);
    let m = manifests(&s, "asm-managed").unwrap();
    let d = m.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"]["istio.io/rev"],
        "asm-managed"
    );
    let live_ns = json!({"metadata": {"name": "gw", "labels": {"istio-injection": "enabled"}}});
    let o = observed(
        &s,
        GatewayObs {
            namespace: Some(live_ns),
            live: vec![None; m.len()],
            address: None,
        },
    );
    let p = plan_gateway(&s, &o).unwrap();
    let relabel = p
        .actions
        .iter()
        .find(|a| a.id == "cluster-1/namespace-labels")
        .unwrap();
    let DataplaneStep::Kube {
        step: KubeStep::SetMetadata { labels, .. },
        ..
    } = &relabel.payload
    else {
        panic!("{:?}", relabel.payload)
    };
    assert_eq!(labels.get("istio-injection"), Some(&None));
    assert_eq!(
        labels.len(),
        1,
        "istio.io/rev is absent already: {labels:?}"
    );
}

/// The manifests as the server holds them: the Deployment defaulted to one replica and
/// rolled out (`rolled_out`) or with its pod not yet available.
fn live_gateway(s: &GatewaySpec, rolled_out: bool) -> Vec<Option<Value>> {
    manifests(s, "asm-managed")
        .unwrap()
        .into_iter()
        .map(|mut o| {
            if o["kind"] == "Deployment" {
                o["metadata"]["generation"] = json!(1);
                o["spec"]["replicas"] = json!(1);
                o["status"] = json!({
                    "observedGeneration": 1,
                    "replicas": 1,
                    "updatedReplicas": 1,
                    "availableReplicas": if rolled_out { 1 } else { 0 },
                });
            }
            Some(o)
        })
        .collect()
}

fn ids(p: &GatewayPlan) -> Vec<&str> {
    p.actions.iter().map(|a| a.id.as_str()).collect()
}

#[test]
fn live_objects_equal_to_the_manifests_plan_nothing() {
    let s = spec(false);
    let live_ns = json!({"metadata": {"name": "gw", "labels": {"istio.io/rev": "asm-managed"}}});
    let o = observed(
        &s,
        GatewayObs {
            namespace: Some(live_ns),
            live: live_gateway(&s, true),
            address: Some("203.0.113.7".into()),
        },
    );
    let p = plan_gateway(&s, &o).unwrap();
    assert!(p.actions.is_empty(), "{:?}", ids(&p));
    assert!(!p.blocked());
}

#[test]
fn objects_in_place_but_not_ready_plan_the_waits_only() {
    let s = spec(false);
    let live_ns = json!({"metadata": {"name": "gw", "labels": {"istio.io/rev": "asm-managed"}}});
    let waits = [
        "cluster-1/available",
        "cluster-1/injected",
        "cluster-1/address",
    ];
    for (rolled_out, address) in [(false, Some("203.0.113.7")), (true, None)] {
        let o = observed(
            &s,
            GatewayObs {
                namespace: Some(live_ns.clone()),
                live: live_gateway(&s, rolled_out),
                address: address.map(str::to_string),
            },
        );
        let p = plan_gateway(&s, &o).unwrap();
        assert_eq!(
            ids(&p),
            waits,
            "rolled out {rolled_out}, address {address:?}"
        );
        assert_eq!(p.summary().changes(), 0);
    }
}

#[test]
fn missing_namespace_without_creation_fails_and_unready_revision_fails() {
    let mut s = spec(false);
    s.create_namespace = false;
    s.revision = Some("asm-managed-rapid".into());
    let o = observed(
        &s,
        GatewayObs {
            namespace: None,
            live: vec![None; 8],
            address: None,
        },
    );
    let p = plan_gateway(&s, &o).unwrap();
    let failed: Vec<&str> = p
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .map(|c| c.code)
        .collect();
    assert_eq!(failed, [codes::REVISION, codes::NAMESPACE]);
    assert!(p.actions.iter().all(|a| a.op != Op::Delete));
}
