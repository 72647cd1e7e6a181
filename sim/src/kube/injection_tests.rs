//! The injection matrix row by row (pure functions), then the admission hooked into the
//! API server's Pod creates.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::config::Timing;
use crate::http::{Handler, Request, Response};
use crate::member::MemberCluster;

fn rule() -> Value {
    json!([{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}])
}

fn not_false() -> Value {
    json!({"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]})
}

/// The two revision webhooks of github.com/istio/istio
/// `manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml`.
fn rev_webhooks(rev: &str, service: Value, failure: &str) -> Vec<Value> {
    vec![
        json!({"name": "rev.namespace.sidecar-injector.istio.io", "clientConfig": service.clone(), "rules": rule(),
            "failurePolicy": failure,
            "namespaceSelector": {"matchExpressions": [
                {"key": "istio.io/rev", "operator": "In", "values": [rev]},
                {"key": "istio-injection", "operator": "DoesNotExist"}]},
            "objectSelector": {"matchExpressions": [not_false()]}}),
        json!({"name": "rev.object.sidecar-injector.istio.io", "clientConfig": service, "rules": rule(),
            "failurePolicy": failure,
            "namespaceSelector": {"matchExpressions": [
                {"key": "istio.io/rev", "operator": "DoesNotExist"},
                {"key": "istio-injection", "operator": "DoesNotExist"}]},
            "objectSelector": {"matchExpressions": [not_false(),
                {"key": "istio.io/rev", "operator": "In", "values": [rev]}]}}),
    ]
}

fn managed_mwc(rev: &str) -> Value {
    json!({"metadata": {"name": format!("istiod-{rev}"), "labels": {"istio.io/rev": rev}},
        "webhooks": rev_webhooks(rev, json!({"url": format!("https://meshconfig.googleapis.com/inject/istio-system/{rev}")}), "Fail")})
}

fn in_cluster_mwc(rev: &str, failure: &str) -> Value {
    let svc = json!({"service": {"name": format!("istiod-{rev}"), "namespace": "istio-system", "path": "/inject", "port": 443}});
    json!({"metadata": {"name": format!("istio-sidecar-injector-{rev}"), "labels": {"istio.io/rev": rev}},
        "webhooks": rev_webhooks(rev, svc, failure)})
}

/// The default revision's configuration: its revision webhooks plus `namespace.` and
/// `object.` (istio-injection=enabled and the pod-level inject label).
fn default_mwc() -> Value {
    let svc = json!({"service": {"name": "istiod", "namespace": "istio-system", "path": "/inject", "port": 443}});
    let mut webhooks = rev_webhooks("default", svc.clone(), "Fail");
    webhooks.push(json!({"name": "namespace.sidecar-injector.istio.io", "clientConfig": svc.clone(), "rules": rule(),
        "failurePolicy": "Fail",
        "namespaceSelector": {"matchExpressions": [{"key": "istio-injection", "operator": "In", "values": ["enabled"]}]},
        "objectSelector": {"matchExpressions": [not_false()]}}));
    webhooks.push(
        json!({"name": "object.sidecar-injector.istio.io", "clientConfig": svc, "rules": rule(),
        "failurePolicy": "Fail",
        "namespaceSelector": {"matchExpressions": [
            {"key": "istio-injection", "operator": "DoesNotExist"},
            {"key": "istio.io/rev", "operator": "DoesNotExist"}]},
        "objectSelector": {"matchExpressions": [
            {"key": "sidecar.istio.io/inject", "operator": "In", "values": ["true"]},
            {"key": "istio.io/rev", "operator": "DoesNotExist"}]}}),
    );
    json!({"metadata": {"name": "istio-sidecar-injector", "labels": {"istio.io/rev": "default", "app": "sidecar-injector"}},
        "webhooks": webhooks})
}

fn served(rev: &str) -> ServedRevision {
    ServedRevision {
        revision: rev.to_string(),
        proxy_image: format!("gcr.io/gke-release/asm/proxyv2:1.0.0-{rev}"),
        proxy_version: format!("1.0.0-{rev}"),
        cni: false,
        discovery_address: "istiod.istio-system.svc:15012".into(),
    }
}

/// Every revision named here is served.
fn all_served(rev: &str) -> Option<ServedRevision> {
    Some(served(rev))
}

fn configurations() -> Vec<Value> {
    vec![
        managed_mwc("asm-managed"),
        managed_mwc("asm-managed-rapid"),
        default_mwc(),
    ]
}

fn pod(labels: Value, annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop", "labels": labels, "annotations": annotations},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]}})
}

/// The revision the admission injected, or None when the Pod is unchanged.
fn injected_revision(pod: &Value, ns_labels: Value, configs: &[Value]) -> Option<String> {
    match admit(pod, "shop", Some(&ns_labels), configs, all_served) {
        Admission::Unchanged => None,
        Admission::Injected(p) => Some(
            p.pointer("/metadata/annotations/istio.io~1rev")
                .and_then(Value::as_str)
                .unwrap()
                .to_string(),
        ),
        Admission::Rejected { message, .. } => panic!("rejected: {message}"),
    }
}

#[test]
fn namespace_rev_label_injects_that_revision() {
    let p = pod(json!({"app": "web"}), json!({}));
    assert_eq!(
        injected_revision(
            &p,
            json!({"istio.io/rev": "asm-managed-rapid"}),
            &configurations()
        ),
        Some("asm-managed-rapid".into())
    );
}

#[test]
fn istio_injection_enabled_uses_the_default_injector_only() {
    let p = pod(json!({"app": "web"}), json!({}));
    assert_eq!(
        injected_revision(&p, json!({"istio-injection": "enabled"}), &configurations()),
        Some("default".into())
    );
    // Without a default injector, istio-injection=enabled selects nobody.
    let managed_only = vec![managed_mwc("asm-managed")];
    assert_eq!(
        injected_revision(&p, json!({"istio-injection": "enabled"}), &managed_only),
        None
    );
}

#[test]
fn istio_injection_label_beats_the_namespace_rev_label() {
    let p = pod(json!({"app": "web"}), json!({}));
    let both = json!({"istio-injection": "enabled", "istio.io/rev": "asm-managed"});
    assert_eq!(
        injected_revision(&p, both, &configurations()),
        Some("default".into())
    );
    let disabled = json!({"istio-injection": "disabled", "istio.io/rev": "asm-managed"});
    assert_eq!(injected_revision(&p, disabled, &configurations()), None);
}

#[test]
fn unlabelled_namespace_and_pod_are_not_injected() {
    let p = pod(json!({"app": "web"}), json!({}));
    assert_eq!(injected_revision(&p, json!({}), &configurations()), None);
}

#[test]
fn pod_label_inject_false_opts_out_in_a_labelled_namespace() {
    let p = pod(json!({"sidecar.istio.io/inject": "false"}), json!({}));
    assert_eq!(
        injected_revision(
            &p,
            json!({"istio.io/rev": "asm-managed"}),
            &configurations()
        ),
        None
    );
    assert_eq!(
        injected_revision(&p, json!({"istio-injection": "enabled"}), &configurations()),
        None
    );
}

#[test]
fn pod_annotation_inject_false_opts_out_inside_the_injector() {
    let p = pod(json!({}), json!({"sidecar.istio.io/inject": "false"}));
    assert_eq!(
        injected_revision(
            &p,
            json!({"istio.io/rev": "asm-managed"}),
            &configurations()
        ),
        None
    );
    // The label wins over the annotation.
    let p = pod(
        json!({"sidecar.istio.io/inject": "true"}),
        json!({"sidecar.istio.io/inject": "false"}),
    );
    assert_eq!(
        injected_revision(
            &p,
            json!({"istio.io/rev": "asm-managed"}),
            &configurations()
        ),
        Some("asm-managed".into())
    );
}

#[test]
fn pod_rev_label_injects_in_an_unlabelled_namespace() {
    let p = pod(json!({"istio.io/rev": "asm-managed"}), json!({}));
    assert_eq!(
        injected_revision(&p, json!({}), &configurations()),
        Some("asm-managed".into())
    );
}

#[test]
fn namespace_rev_label_beats_the_pod_rev_label() {
    let p = pod(json!({"istio.io/rev": "asm-managed-rapid"}), json!({}));
    assert_eq!(
        injected_revision(
            &p,
            json!({"istio.io/rev": "asm-managed"}),
            &configurations()
        ),
        Some("asm-managed".into())
    );
}

#[test]
fn default_tag_object_webhook_injects_pods_labelled_inject_true() {
    let p = pod(json!({"sidecar.istio.io/inject": "true"}), json!({}));
    assert_eq!(
        injected_revision(&p, json!({}), &configurations()),
        Some("default".into())
    );
    // The managed injectors have no default tag: the same Pod with only them stays as is.
    let managed_only = vec![managed_mwc("asm-managed"), managed_mwc("asm-managed-rapid")];
    assert_eq!(injected_revision(&p, json!({}), &managed_only), None);
}

#[test]
fn manual_injection_is_left_alone() {
    let mut p = pod(json!({}), json!({}));
    p["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0"}));
    assert!(manually_injected(&p));
    assert_eq!(
        injected_revision(
            &p,
            json!({"istio.io/rev": "asm-managed"}),
            &configurations()
        ),
        None
    );
}

#[test]
fn sidecar_template_adds_init_container_proxy_labels_and_status() {
    let p = pod(json!({"app": "web", "version": "v2"}), json!({}));
    let out = inject(&p, &served("asm-managed"));
    let init: Vec<&str> = out["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(init, ["istio-init"]);
    let names: Vec<&str> = out["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "istio-proxy"]);
    assert_eq!(
        out["spec"]["containers"][1]["image"],
        "gcr.io/gke-release/asm/proxyv2:1.0.0-asm-managed"
    );
    let labels = &out["metadata"]["labels"];
    assert_eq!(labels["security.istio.io/tlsMode"], "istio");
    assert_eq!(labels["service.istio.io/canonical-name"], "web");
    assert_eq!(labels["service.istio.io/canonical-revision"], "v2");
    let status: Value = serde_json::from_str(
        out["metadata"]["annotations"]["sidecar.istio.io/status"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status["revision"], "asm-managed");
    assert_eq!(status["initContainers"], json!(["istio-init"]));
    assert_eq!(status["containers"], json!(["istio-proxy"]));
    assert!(status["volumes"].as_array().unwrap().len() >= 5);
    assert!(status.get("imagePullSecrets").is_some());
    let vols = names_of(&out["spec"]["volumes"]);
    assert!(vols.contains(&"istio-envoy".to_string()));
}

fn names_of(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn cni_replaces_istio_init_with_istio_validation() {
    let p = pod(json!({}), json!({}));
    let mut rev = served("asm-managed");
    rev.cni = true;
    let out = inject(&p, &rev);
    assert_eq!(
        names_of(&out["spec"]["initContainers"]),
        ["istio-validation"]
    );
    let args = out["spec"]["initContainers"][0]["args"].as_array().unwrap();
    assert!(args.contains(&json!("--run-validation")));
}

#[test]
fn gateway_template_fills_the_auto_image_without_init_container() {
    let p = json!({"metadata": {"name": "gw", "namespace": "shop",
            "labels": {"app": "istio-ingressgateway", "istio": "ingressgateway"},
            "annotations": {"inject.istio.io/templates": "gateway"}},
        "spec": {"containers": [{"name": "istio-proxy", "image": "auto",
            "ports": [{"containerPort": 8080}]}]}});
    assert!(!manually_injected(&p));
    let out = match admit(
        &p,
        "shop",
        Some(&json!({"istio.io/rev": "asm-managed"})),
        &configurations(),
        all_served,
    ) {
        Admission::Injected(out) => out,
        other => panic!("{other:?}"),
    };
    let containers = out["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(
        containers[0]["image"],
        "gcr.io/gke-release/asm/proxyv2:1.0.0-asm-managed"
    );
    // The Pod's own fields are kept.
    assert_eq!(containers[0]["ports"], json!([{"containerPort": 8080}]));
    assert_eq!(containers[0]["args"][1], "router");
    assert!(out["spec"].get("initContainers").is_none());
    let status: Value = serde_json::from_str(
        out["metadata"]["annotations"]["sidecar.istio.io/status"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status["initContainers"], Value::Null);
    assert_eq!(status["revision"], "asm-managed");
}

#[test]
fn unserved_revision_rejects_when_failing_closed_and_skips_when_ignored() {
    let p = pod(json!({}), json!({}));
    let ns = json!({"istio.io/rev": "asm-1232-1"});
    let none = |_: &str| None;
    match admit(
        &p,
        "shop",
        Some(&ns),
        &[in_cluster_mwc("asm-1232-1", "Fail")],
        none,
    ) {
        Admission::Rejected { webhook, message } => {
            assert_eq!(webhook, "rev.namespace.sidecar-injector.istio.io");
            assert!(
                message.contains("https://istiod-asm-1232-1.istio-system.svc:443/inject"),
                "{message}"
            );
            assert!(
                message.contains("no endpoints available for service \"istiod-asm-1232-1\""),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        admit(
            &p,
            "shop",
            Some(&ns),
            &[in_cluster_mwc("asm-1232-1", "Ignore")],
            none
        ),
        Admission::Unchanged
    );
}

#[test]
fn only_the_first_matching_injector_injects() {
    // Two configurations claiming istio-injection=enabled: both are called, in name
    // order, and the second finds the Pod already injected.
    let mut second = default_mwc();
    second["metadata"] =
        json!({"name": "istio-sidecar-injector-zz", "labels": {"istio.io/rev": "zz"}});
    let configs = vec![second, default_mwc()];
    let p = pod(json!({}), json!({}));
    let out = match admit(
        &p,
        "shop",
        Some(&json!({"istio-injection": "enabled"})),
        &configs,
        all_served,
    ) {
        Admission::Injected(out) => out,
        other => panic!("{other:?}"),
    };
    assert_eq!(out["metadata"]["annotations"]["istio.io/rev"], "default");
    assert_eq!(
        names_of(&out["spec"]["containers"])
            .iter()
            .filter(|n| *n == "istio-proxy")
            .count(),
        1
    );
}

#[test]
fn host_network_and_system_namespace_pods_are_not_injected() {
    let mut p = pod(json!({}), json!({}));
    assert!(injector_wants(&p, "shop"));
    assert!(!injector_wants(&p, "kube-system"));
    p["spec"]["hostNetwork"] = json!(true);
    assert!(!injector_wants(&p, "shop"));
}

#[test]
fn label_selector_operators() {
    let labels = json!({"a": "1", "b": "2"});
    let sel = |s: Value| selector_matches(Some(&s), Some(&labels));
    assert!(sel(json!({})));
    assert!(selector_matches(None, None));
    assert!(sel(json!({"matchLabels": {"a": "1"}})));
    assert!(!sel(json!({"matchLabels": {"a": "2"}})));
    assert!(!sel(json!({"matchLabels": {"c": "1"}})));
    let expr = |op: &str, key: &str, values: Value| {
        sel(json!({"matchExpressions": [{"key": key, "operator": op, "values": values}]}))
    };
    assert!(expr("In", "a", json!(["0", "1"])));
    assert!(!expr("In", "c", json!(["1"])));
    assert!(!expr("NotIn", "a", json!(["1"])));
    assert!(expr("NotIn", "c", json!(["1"])));
    assert!(expr("Exists", "b", Value::Null));
    assert!(!expr("Exists", "c", Value::Null));
    assert!(expr("DoesNotExist", "c", Value::Null));
    assert!(!expr("DoesNotExist", "a", Value::Null));
    assert!(!expr("Bogus", "a", json!(["1"])));
}

#[test]
fn rules_must_cover_pod_create() {
    assert!(rules_match_pod_create(Some(&rule())));
    assert!(rules_match_pod_create(Some(
        &json!([{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}])
    )));
    assert!(!rules_match_pod_create(Some(
        &json!([{"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}])
    )));
    assert!(!rules_match_pod_create(Some(
        &json!([{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["services"]}])
    )));
    assert!(!rules_match_pod_create(None));
}

#[test]
fn istiod_image_gives_proxy_image_and_version() {
    assert_eq!(
        proxy_of_istiod_image("gcr.io/gke-release/asm/pilot:1.9.1-asm.1"),
        Some((
            "gcr.io/gke-release/asm/proxyv2:1.9.1-asm.1".to_string(),
            "1.9.1-asm.1".to_string()
        ))
    );
    assert_eq!(proxy_of_istiod_image("gcr.io/istio/pilot"), None);
}

#[test]
fn configuration_revision_from_label_or_name() {
    assert_eq!(
        configuration_revision(&json!({"metadata": {"name": "istiod-asm-managed-stable"}})),
        Some("asm-managed-stable".into())
    );
    assert_eq!(
        configuration_revision(&json!({"metadata": {"name": "istio-sidecar-injector"}})),
        Some("default".into())
    );
    assert_eq!(
        configuration_revision(
            &json!({"metadata": {"name": "istio-revision-tag-default", "labels": {"istio.io/rev": "asm-1232-1"}}})
        ),
        Some("asm-1232-1".into())
    );
    assert_eq!(
        configuration_revision(&json!({"metadata": {"name": "gatekeeper"}})),
        None
    );
}

#[test]
fn canonical_service_from_deployment_owner() {
    let p = json!({"metadata": {"name": "web-5d8f9-abcde", "labels": {"pod-template-hash": "5d8f9"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d8f9", "controller": true}]}});
    assert_eq!(canonical_service(&p), ("web".into(), "latest".into()));
}

// ---------------------------------------------------------------------------------------
// In the API server

const TOKEN: &str = "test-admin";

fn server() -> Arc<KubeApiServer> {
    let cluster = crate::scenario::Scenario::named("fresh").unwrap().clusters[0].clone();
    let timing = Timing {
        cpr_ready: Duration::from_millis(20),
        ..Timing::default()
    };
    KubeApiServer::new(&cluster, "CA".into(), TOKEN.into(), timing)
}

async fn call(s: &Arc<KubeApiServer>, method: &str, path: &str, ct: &str, body: Value) -> Response {
    let b = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let req = Request::new(method, path, b)
        .with_header("Authorization", &format!("Bearer {TOKEN}"))
        .with_header("Content-Type", ct)
        .with_header("User-Agent", "unit/1");
    s.clone().handle(req).await
}

fn body(r: &Response) -> Value {
    r.body_json()
}

/// A cluster whose managed `asm-managed` revision is provisioned, with namespace `shop`
/// labelled for it.
async fn provisioned_cluster() -> Arc<KubeApiServer> {
    let s = server();
    s.apply_object(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "controlplanerevisions.mesh.cloud.google.com"},
        "spec": {"group": "mesh.cloud.google.com", "scope": "Namespaced",
            "names": {"kind": "ControlPlaneRevision", "listKind": "ControlPlaneRevisionList", "plural": "controlplanerevisions", "singular": "controlplanerevision"},
            "versions": [{"name": "v1beta1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    }))
    .unwrap();
    s.settle(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "controlplanerevisions.mesh.cloud.google.com",
    );
    s.apply_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
    )
    .unwrap();
    s.apply_object(
        json!({"apiVersion": "mesh.cloud.google.com/v1beta1", "kind": "ControlPlaneRevision",
        "metadata": {"name": "asm-managed", "namespace": "istio-system"},
        "spec": {"type": "managed_service", "channel": "regular"}}),
    )
    .unwrap();
    s.settle(
        "mesh.cloud.google.com/v1beta1",
        "ControlPlaneRevision",
        Some("istio-system"),
        "asm-managed",
    );
    s.apply_object(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"istio.io/rev": "asm-managed"}}}))
        .unwrap();
    s
}

fn web_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]}})
}

#[tokio::test]
async fn api_pod_create_is_injected_and_relabel_leaves_it_alone() {
    let s = provisioned_cluster().await;
    let r = call(
        &s,
        "POST",
        "/api/v1/namespaces/shop/pods",
        "application/json",
        web_pod("web-1"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body_json());
    let created = body(&r);
    assert_eq!(
        created["metadata"]["annotations"]["istio.io/rev"],
        "asm-managed"
    );
    assert_eq!(
        created["spec"]["containers"][1]["image"],
        "gcr.io/gke-release/asm/proxyv2:1.23.6-asm.14"
    );
    // Webhook mutations are not owned by the creator.
    let owned = created["metadata"]["managedFields"][0]["fieldsV1"].to_string();
    assert!(!owned.contains("istio-proxy"), "{owned}");

    // Relabelling the namespace away from the revision does not touch the running Pod.
    let r = call(
        &s,
        "PATCH",
        "/api/v1/namespaces/shop",
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"istio.io/rev": null}}}),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = call(
        &s,
        "GET",
        "/api/v1/namespaces/shop/pods/web-1",
        "",
        Value::Null,
    )
    .await;
    // (The scheduler binds the Pod meanwhile: compare what injection wrote.)
    for field in ["containers", "initContainers", "volumes"] {
        assert_eq!(body(&r)["spec"][field], created["spec"][field], "{field}");
    }
    // A new Pod in the relabelled namespace is not injected.
    let r = call(
        &s,
        "POST",
        "/api/v1/namespaces/shop/pods",
        "application/json",
        web_pod("web-2"),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(names_of(&body(&r)["spec"]["containers"]), ["web"]);
}

#[tokio::test]
async fn proxy_version_change_reaches_new_pods_only() {
    let s = provisioned_cluster().await;
    let versions = crate::revisions::ProxyVersions::default();
    s.use_proxy_versions(versions.clone());
    let first = body(
        &call(
            &s,
            "POST",
            "/api/v1/namespaces/shop/pods",
            "application/json",
            web_pod("a"),
        )
        .await,
    );
    versions.set("asm-managed", "1.23.7-asm.1");
    let second = body(
        &call(
            &s,
            "POST",
            "/api/v1/namespaces/shop/pods",
            "application/json",
            web_pod("b"),
        )
        .await,
    );
    assert_eq!(
        first["spec"]["containers"][1]["image"],
        "gcr.io/gke-release/asm/proxyv2:1.23.6-asm.14"
    );
    assert_eq!(
        second["spec"]["containers"][1]["image"],
        "gcr.io/gke-release/asm/proxyv2:1.23.7-asm.1"
    );
}

#[tokio::test]
async fn in_cluster_revision_is_served_only_when_istiod_is_available() {
    let s = server();
    s.apply_object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
    )
    .unwrap();
    s.apply_object(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"istio.io/rev": "asm-191-1"}}}))
        .unwrap();
    let mut mwc = in_cluster_mwc("asm-191-1", "Fail");
    mwc["apiVersion"] = json!("admissionregistration.k8s.io/v1");
    mwc["kind"] = json!("MutatingWebhookConfiguration");
    s.apply_object(mwc).unwrap();
    s.apply_object(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istiod-asm-191-1", "namespace": "istio-system", "labels": {"istio.io/rev": "asm-191-1", "app": "istiod"}},
        "spec": {"selector": {"matchLabels": {"app": "istiod"}},
            "template": {"metadata": {"labels": {"app": "istiod"}},
                "spec": {"containers": [{"name": "discovery", "image": "gcr.io/gke-release/asm/pilot:1.9.1-asm.1"}]}}}}))
    .unwrap();
    // Not Available yet: the webhook has no endpoints and fails closed.
    let r = call(
        &s,
        "POST",
        "/api/v1/namespaces/shop/pods",
        "application/json",
        web_pod("a"),
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.body_json());
    let status = body(&r);
    assert_eq!(status["reason"], "InternalError");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("Internal error occurred: failed calling webhook \"rev.namespace.sidecar-injector.istio.io\""),
        "{status}"
    );
    // Available: injected with the proxy matching istiod's tag.
    {
        let mut st = s.lock();
        let rt = st.type_for_kind("apps/v1", "Deployment").unwrap();
        let mut d = st
            .get(&rt, "istio-system", "istiod-asm-191-1")
            .unwrap()
            .clone();
        d["status"] = json!({"conditions": [{"type": "Available", "status": "True"}]});
        st.put(&rt, d, crate::kube::store::EventType::Modified);
    }
    let r = call(
        &s,
        "POST",
        "/api/v1/namespaces/shop/pods",
        "application/json",
        web_pod("b"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body_json());
    let p = body(&r);
    assert_eq!(
        p["spec"]["containers"][1]["image"],
        "gcr.io/gke-release/asm/proxyv2:1.9.1-asm.1"
    );
    assert_eq!(p["spec"]["initContainers"][0]["name"], "istio-init");
}
