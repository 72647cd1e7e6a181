//! In-process tests of Service allocation, the load-balancer controller, the bootstrap RBAC
//! policy, ClusterRole aggregation and RBAC evaluation (SelfSubjectAccessReviews as JSON).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::KubeApiServer;
use crate::config::Timing;
use crate::http::{Body, Handler, Request, Response};
use crate::scenario::Scenario;

const TOKEN: &str = "test-admin";
const LB_IP_DELAY: Duration = Duration::from_millis(30);

fn server() -> Arc<KubeApiServer> {
    let cluster = Scenario::named("fresh").unwrap().clusters[0].clone();
    let timing = Timing {
        lb_ip: LB_IP_DELAY,
        token_fill: Duration::from_millis(10),
        ..Timing::default()
    };
    KubeApiServer::new(&cluster, "CA".into(), TOKEN.into(), timing)
}

async fn call_as(
    s: &Arc<KubeApiServer>,
    token: Option<&str>,
    method: &str,
    path: &str,
    ct: &str,
    body: Value,
) -> (u16, Value) {
    let b = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let mut req = Request::new(method, path, b)
        .with_header("Content-Type", ct)
        .with_header("User-Agent", "unit/1");
    if let Some(t) = token {
        req = req.with_header("Authorization", &format!("Bearer {t}"));
    }
    let resp: Response = s.clone().handle(req).await;
    let v = match resp.body {
        Body::Full(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
        Body::Stream(_) => Value::Null,
    };
    (resp.status, v)
}

async fn admin(s: &Arc<KubeApiServer>, method: &str, path: &str, body: Value) -> (u16, Value) {
    let ct = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    call_as(s, Some(TOKEN), method, path, ct, body).await
}

fn service(name: &str, ty: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"type": ty, "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443}]}})
}

fn node_ports(svc: &Value) -> Vec<u64> {
    svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["nodePort"].as_u64())
        .collect()
}

const SVCS: &str = "/api/v1/namespaces/default/services";

#[tokio::test]
async fn loadbalancer_service_gets_allocations_then_an_external_ip() {
    let s = server();
    let (code, svc) = admin(&s, "POST", SVCS, service("gw", "LoadBalancer")).await;
    assert_eq!(code, 201, "{svc}");
    let ip = svc["spec"]["clusterIP"].as_str().unwrap();
    assert!(ip.starts_with("10.0.0.") && ip != "10.0.0.1", "{ip}");
    assert_eq!(svc["spec"]["clusterIPs"], json!([ip]));
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(svc["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(svc["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(svc["spec"]["ports"][1]["targetPort"], 443);
    assert_eq!(svc["spec"]["ports"][1]["protocol"], "TCP");
    let ports = node_ports(&svc);
    assert_eq!(ports.len(), 2);
    assert!(ports.iter().all(|p| (30000..=32767).contains(p)));
    assert_ne!(ports[0], ports[1]);
    assert_eq!(svc["status"], json!({"loadBalancer": {}}));
    // Only the decoder's defaults are the writer's; allocations belong to no one.
    let owned = &svc["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
    assert!(owned.get("f:clusterIP").is_none() && owned.get("f:ipFamilies").is_none());
    assert!(owned.get("f:sessionAffinity").is_some());

    tokio::time::sleep(LB_IP_DELAY * 4).await;
    let (_, svc) = admin(&s, "GET", &format!("{SVCS}/gw"), Value::Null).await;
    let ingress = &svc["status"]["loadBalancer"]["ingress"];
    assert!(
        ingress[0]["ip"]
            .as_str()
            .unwrap()
            .starts_with("198.51.100."),
        "{svc}"
    );
    assert_eq!(ingress[0]["ipMode"], "VIP");
    let managers: Vec<&str> = svc["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["subresource"] == "status")
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, ["cloud-controller-manager"]);
}

#[tokio::test]
async fn changing_type_to_clusterip_releases_node_ports_and_the_external_ip() {
    let s = server();
    let (code, created) = admin(&s, "POST", SVCS, service("gw", "LoadBalancer")).await;
    assert_eq!(code, 201);
    tokio::time::sleep(LB_IP_DELAY * 4).await;
    let path = format!("{SVCS}/gw");
    let (code, svc) = admin(&s, "PATCH", &path, json!({"spec": {"type": "ClusterIP"}})).await;
    assert_eq!(code, 200, "{svc}");
    assert!(node_ports(&svc).is_empty(), "{svc}");
    assert_eq!(svc["spec"]["clusterIP"], created["spec"]["clusterIP"]);
    assert!(svc["spec"].get("externalTrafficPolicy").is_none());
    assert!(svc["spec"].get("allocateLoadBalancerNodePorts").is_none());
    tokio::time::sleep(LB_IP_DELAY * 4).await;
    let (_, svc) = admin(&s, "GET", &path, Value::Null).await;
    assert_eq!(svc["status"], json!({"loadBalancer": {}}), "{svc}");
}

#[tokio::test]
async fn a_taken_node_port_or_cluster_ip_is_rejected_with_422() {
    let s = server();
    let (_, first) = admin(&s, "POST", SVCS, service("a", "NodePort")).await;
    let taken = node_ports(&first)[0];
    let mut second = service("b", "NodePort");
    second["spec"]["ports"][0]["nodePort"] = json!(taken);
    let (code, st) = admin(&s, "POST", SVCS, second).await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["message"],
        format!(
            "Service \"b\" is invalid: spec.ports[0].nodePort: Invalid value: {taken}: provided port is already allocated"
        )
    );
    let mut third = service("c", "ClusterIP");
    third["spec"]["clusterIP"] = first["spec"]["clusterIP"].clone();
    let (code, st) = admin(&s, "POST", SVCS, third).await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["details"]["causes"][0]["field"], "spec.clusterIPs");
}

#[tokio::test]
async fn headless_service_has_cluster_ip_none_and_no_node_ports() {
    let s = server();
    let mut svc = service("h", "ClusterIP");
    svc["spec"]["clusterIP"] = json!("None");
    let (code, svc) = admin(&s, "POST", SVCS, svc).await;
    assert_eq!(code, 201, "{svc}");
    assert_eq!(svc["spec"]["clusterIPs"], json!(["None"]));
    assert_eq!(svc["spec"]["ipFamilyPolicy"], "SingleStack");
    assert!(node_ports(&svc).is_empty());
}

#[tokio::test]
async fn the_kubernetes_service_holds_the_first_service_ip() {
    let s = server();
    let (code, svc) = admin(&s, "GET", &format!("{SVCS}/kubernetes"), Value::Null).await;
    assert_eq!(code, 200);
    assert_eq!(svc["spec"]["clusterIP"], "10.0.0.1");
}

const CLUSTERROLES: &str = "/apis/rbac.authorization.k8s.io/v1/clusterroles";

fn resources_of(role: &Value) -> Vec<String> {
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let groups: Vec<String> = r["apiGroups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| g.as_str().unwrap().to_string())
                .collect();
            r["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|res| {
                    let res = res.as_str().unwrap();
                    groups
                        .iter()
                        .map(|g| format!("{g}/{res}"))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn view_edit_admin_are_aggregated_from_their_parts() {
    let s = server();
    let (code, view) = admin(&s, "GET", &format!("{CLUSTERROLES}/view"), Value::Null).await;
    assert_eq!(code, 200);
    assert_eq!(
        view["metadata"]["labels"]["kubernetes.io/bootstrapping"],
        "rbac-defaults"
    );
    assert_eq!(
        view["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
        "true"
    );
    let (_, part) = admin(
        &s,
        "GET",
        &format!("{CLUSTERROLES}/system:aggregate-to-view"),
        Value::Null,
    )
    .await;
    assert_eq!(view["rules"], part["rules"]);
    let managers: Vec<(&str, &str)> = view["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().unwrap(),
                m["operation"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        managers,
        [
            ("clusterrole-aggregation-controller", "Apply"),
            ("kube-apiserver", "Update")
        ]
    );
    let (_, edit) = admin(&s, "GET", &format!("{CLUSTERROLES}/edit"), Value::Null).await;
    let (_, adm) = admin(&s, "GET", &format!("{CLUSTERROLES}/admin"), Value::Null).await;
    let (view_r, edit_r, admin_r) = (resources_of(&view), resources_of(&edit), resources_of(&adm));
    assert!(!view_r.contains(&"/secrets".to_string()));
    assert!(edit_r.contains(&"/secrets".to_string()));
    assert!(
        !edit_r
            .iter()
            .any(|r| r.starts_with("rbac.authorization.k8s.io/"))
    );
    assert!(admin_r.contains(&"rbac.authorization.k8s.io/rolebindings".to_string()));
    assert!(view_r.iter().all(|r| admin_r.contains(r)));
}

#[tokio::test]
async fn a_crd_aggregate_to_view_role_extends_view_and_leaves_it_when_deleted() {
    let s = server();
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "widgets-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}]});
    let (code, _) = admin(&s, "POST", CLUSTERROLES, role).await;
    assert_eq!(code, 201);
    for name in ["view", "edit", "admin"] {
        let (_, r) = admin(&s, "GET", &format!("{CLUSTERROLES}/{name}"), Value::Null).await;
        assert!(
            resources_of(&r).contains(&"example.com/widgets".to_string()),
            "{name}"
        );
    }
    let (code, _) = admin(
        &s,
        "DELETE",
        &format!("{CLUSTERROLES}/widgets-view"),
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let (_, view) = admin(&s, "GET", &format!("{CLUSTERROLES}/view"), Value::Null).await;
    assert!(!resources_of(&view).contains(&"example.com/widgets".to_string()));
}

/// A ServiceAccount `reader` in `default` bound to `role` by a RoleBinding, and its token.
async fn bound_service_account(s: &Arc<KubeApiServer>, role: &str) -> String {
    let (code, _) = admin(
        s,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}}),
    )
    .await;
    assert_eq!(code, 201);
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "default"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}});
    let (code, _) = admin(
        s,
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        binding,
    )
    .await;
    assert_eq!(code, 201);
    let (code, tr) = admin(
        s,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/reader/token",
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
    )
    .await;
    assert_eq!(code, 201, "{tr}");
    tr["status"]["token"].as_str().unwrap().to_string()
}

/// SelfSubjectAccessReview `allowed` for (verb, group, resource, subresource, namespace, name).
async fn can(s: &Arc<KubeApiServer>, token: &str, attrs: Value) -> bool {
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attrs}});
    let (code, r) = call_as(
        s,
        Some(token),
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "application/json",
        review,
    )
    .await;
    assert_eq!(code, 201, "{r}");
    r["status"]["allowed"] == true
}

fn attrs(verb: &str, group: &str, resource: &str) -> Value {
    json!({"namespace": "default", "verb": verb, "group": group, "resource": resource})
}

#[tokio::test]
async fn view_binding_reads_but_never_secrets_nor_writes() {
    let s = server();
    let t = bound_service_account(&s, "view").await;
    let cases = [
        (attrs("list", "", "pods"), true),
        (attrs("get", "", "configmaps"), true),
        (attrs("watch", "apps", "deployments"), true),
        (
            json!({"namespace": "default", "verb": "get", "resource": "pods", "subresource": "log"}),
            true,
        ),
        (attrs("get", "", "secrets"), false),
        (attrs("list", "", "secrets"), false),
        (attrs("create", "", "configmaps"), false),
        (attrs("delete", "", "pods"), false),
        (
            json!({"namespace": "default", "verb": "get", "resource": "pods", "subresource": "exec"}),
            false,
        ),
        (
            json!({"namespace": "kube-system", "verb": "list", "resource": "pods"}),
            false,
        ),
    ];
    for (a, want) in &cases {
        assert_eq!(can(&s, &t, a.clone()).await, *want, "{a}");
    }
}

#[tokio::test]
async fn edit_writes_but_not_rbac_and_admin_adds_roles_and_bindings() {
    let s = server();
    let t = bound_service_account(&s, "edit").await;
    assert!(can(&s, &t, attrs("create", "", "configmaps")).await);
    assert!(can(&s, &t, attrs("get", "", "secrets")).await);
    assert!(can(&s, &t, attrs("patch", "apps", "deployments")).await);
    assert!(
        !can(
            &s,
            &t,
            attrs("create", "rbac.authorization.k8s.io", "roles")
        )
        .await
    );
    assert!(
        !can(
            &s,
            &t,
            attrs("create", "rbac.authorization.k8s.io", "rolebindings")
        )
        .await
    );

    let s = server();
    let t = bound_service_account(&s, "admin").await;
    assert!(
        can(
            &s,
            &t,
            attrs("create", "rbac.authorization.k8s.io", "rolebindings")
        )
        .await
    );
    assert!(
        can(
            &s,
            &t,
            attrs("delete", "rbac.authorization.k8s.io", "roles")
        )
        .await
    );
    assert!(
        !can(
            &s,
            &t,
            attrs("create", "rbac.authorization.k8s.io", "clusterroles")
        )
        .await
    );
}

#[tokio::test]
async fn resource_names_and_subresource_wildcards_are_honoured() {
    let s = server();
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
    "metadata": {"name": "narrow"},
    "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"], "verbs": ["get"]},
        {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]},
    ]});
    assert_eq!(admin(&s, "POST", CLUSTERROLES, role).await.0, 201);
    let t = bound_service_account(&s, "narrow").await;
    let named = |name: &str| json!({"namespace": "default", "verb": "get", "resource": "configmaps", "name": name});
    assert!(can(&s, &t, named("one")).await);
    assert!(!can(&s, &t, named("two")).await);
    assert!(!can(&s, &t, attrs("list", "", "configmaps")).await);
    let scale = json!({"namespace": "default", "verb": "update", "group": "apps", "resource": "deployments", "subresource": "scale"});
    assert!(can(&s, &t, scale).await);
    assert!(!can(&s, &t, attrs("update", "apps", "deployments")).await);
}

#[tokio::test]
async fn discovery_is_for_authenticated_callers_and_version_for_everyone() {
    let s = server();
    let t = bound_service_account(&s, "view").await;
    let get = |token: Option<&str>, path: &str| {
        let s = s.clone();
        let token = token.map(String::from);
        let path = path.to_string();
        async move {
            call_as(&s, token.as_deref(), "GET", &path, "", Value::Null)
                .await
                .0
        }
    };
    assert_eq!(get(Some(&t), "/api").await, 200);
    assert_eq!(get(Some(&t), "/apis/apps/v1").await, 200);
    assert_eq!(get(None, "/version").await, 200);
    assert_eq!(get(None, "/readyz").await, 200);
    assert_eq!(get(None, "/api").await, 403);
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"nonResourceAttributes": {"path": "/api", "verb": "get"}}});
    let (code, r) = call_as(
        &s,
        Some(&t),
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "application/json",
        review,
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(
        r["status"]["reason"],
        "RBAC: allowed by ClusterRoleBinding \"system:discovery\" of ClusterRole \"system:discovery\" to Group \"system:authenticated\""
    );
}
