//! In-process tests of the API server: the controllers asm's install waits on.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::KubeApiServer;
use crate::config::Timing;
use crate::http::{Handler, Request, Response};
use crate::member::MemberCluster;
use crate::scenario::Scenario;

const TOKEN: &str = "test-admin";

fn server() -> Arc<KubeApiServer> {
    let cluster = Scenario::named("fresh").unwrap().clusters[0].clone();
    let timing = Timing {
        cpr_ready: Duration::from_millis(50),
        token_fill: Duration::from_millis(10),
        namespace_finalize: Duration::from_millis(10),
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

fn cpr_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "controlplanerevisions.mesh.cloud.google.com"},
        "spec": {"group": "mesh.cloud.google.com", "scope": "Namespaced",
            "names": {"kind": "ControlPlaneRevision", "listKind": "ControlPlaneRevisionList", "plural": "controlplanerevisions", "singular": "controlplanerevision"},
            "versions": [{"name": "v1beta1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    })
}

#[tokio::test]
async fn cpr_becomes_provisioned_and_gets_its_webhook() {
    let s = server();
    s.apply_object(cpr_crd()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let crd = s
        .get_object(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "controlplanerevisions.mesh.cloud.google.com",
        )
        .unwrap();
    assert!(
        crd["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    );
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}});
    assert_eq!(
        call(
            &s,
            "PATCH",
            "/api/v1/namespaces/istio-system?fieldManager=asm",
            "application/apply-patch+yaml",
            ns
        )
        .await
        .status,
        201
    );
    let cpr = json!({"apiVersion": "mesh.cloud.google.com/v1beta1", "kind": "ControlPlaneRevision",
        "metadata": {"name": "asm-managed", "namespace": "istio-system"}, "spec": {"type": "managed_service", "channel": "regular"}});
    let r = call(&s, "PATCH", "/apis/mesh.cloud.google.com/v1beta1/namespaces/istio-system/controlplanerevisions/asm-managed?fieldManager=asm", "application/apply-patch+yaml", cpr).await;
    assert_eq!(r.status, 201, "{}", r.body_json());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpr = s
        .get_object(
            "mesh.cloud.google.com/v1beta1",
            "ControlPlaneRevision",
            Some("istio-system"),
            "asm-managed",
        )
        .unwrap();
    assert!(
        cpr["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "ProvisioningFinished" && c["status"] == "True"),
        "{cpr}"
    );
    let wh = s
        .get_object(
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
            None,
            "istiod-asm-managed",
        )
        .unwrap();
    assert_eq!(wh["webhooks"][0]["timeoutSeconds"], 10);
}

#[tokio::test]
async fn token_secret_is_filled_and_authenticates() {
    let s = server();
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}});
    assert_eq!(
        call(
            &s,
            "POST",
            "/api/v1/namespaces/default/serviceaccounts",
            "application/json",
            sa
        )
        .await
        .status,
        201
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "robot-token", "annotations": {"kubernetes.io/service-account.name": "robot"}}});
    assert_eq!(
        call(
            &s,
            "POST",
            "/api/v1/namespaces/default/secrets",
            "application/json",
            secret
        )
        .await
        .status,
        201
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let secret = s
        .get_object("v1", "Secret", Some("default"), "robot-token")
        .unwrap();
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["token"].as_str().unwrap())
        .unwrap();
    let token = String::from_utf8(token).unwrap();
    assert_eq!(secret["data"]["ca.crt"], "Q0E=");
    let req = Request::new("GET", "/api/v1/namespaces/default/configmaps", "")
        .with_header("Authorization", &format!("Bearer {token}"));
    let r = s.clone().handle(req).await;
    assert_eq!(r.status, 403);
    assert!(
        r.body_json()["message"]
            .as_str()
            .unwrap()
            .contains("system:serviceaccount:default:robot")
    );
    // A secret for a missing ServiceAccount is deleted by the token controller.
    let orphan = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "orphan", "annotations": {"kubernetes.io/service-account.name": "nobody"}}});
    call(
        &s,
        "POST",
        "/api/v1/namespaces/default/secrets",
        "application/json",
        orphan,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        s.get_object("v1", "Secret", Some("default"), "orphan")
            .is_none()
    );
}

#[tokio::test]
async fn kube_system_uid_is_stable_and_namespaces_finalize() {
    let a = server();
    let b = server();
    let uid = |s: &Arc<KubeApiServer>| {
        s.get_object("v1", "Namespace", None, "kube-system")
            .unwrap()["metadata"]["uid"]
            .clone()
    };
    assert_eq!(uid(&a), uid(&b));
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}});
    call(&a, "POST", "/api/v1/namespaces", "application/json", ns).await;
    assert!(
        a.get_object("v1", "ServiceAccount", Some("gone"), "default")
            .is_some()
    );
    let r = call(
        &a,
        "DELETE",
        "/api/v1/namespaces/gone",
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(r.body_json()["status"]["phase"], "Terminating");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(a.get_object("v1", "Namespace", None, "gone").is_none());
    assert!(
        a.get_object("v1", "ServiceAccount", Some("gone"), "default")
            .is_none()
    );
}
