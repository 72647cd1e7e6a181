//! The asm REST and kube-rs client layers (`asm::gcp`, `asm::kube`) against the simulator.

use std::time::Duration;

use asm::environment::Environment;
use asm::gcp::container::Cluster;
use asm::gcp::gkehub::{self, SERVICEMESH};
use asm::gcp::{GcpClients, RetryPolicy, auth};
use asm::kube::apply::{self, ApplyOptions};
use asm_sim::SimConfig;
use serde_json::json;

use crate::support::TestSandbox;

const PROJECT: &str = "asm-fresh";
const NUMBER: &str = "418276145901";
const LOCATION: &str = "us-central1-c";
const CLUSTER: &str = "cluster-1";

fn fast(scenario: &str) -> SimConfig {
    SimConfig::new(scenario)
        .set("timing.gke_op_ms", "300")
        .set("timing.hub_op_ms", "300")
        .set("timing.crd_install_ms", "300")
}

fn clients(sb: &TestSandbox) -> GcpClients {
    let env = Environment::with_vars(sb.env());
    let creds = sb
        .block_on(auth::resolve_credentials(&env, None))
        .expect("sandbox exports a token file");
    GcpClients::new(&env, creds.token, RetryPolicy::fast()).expect("clients")
}

#[test]
fn google_reads() {
    let sb = TestSandbox::with(fast("fresh"));
    let g = clients(&sb);
    sb.block_on(async {
        assert_eq!(
            g.crm.project_number(PROJECT).await.expect("project"),
            NUMBER
        );
        let c = g
            .container
            .get_cluster(PROJECT, LOCATION, CLUSTER)
            .await
            .expect("cluster");
        assert_eq!(c.name, CLUSTER);
        assert!(!c.endpoint.is_empty());
        assert_eq!(c.workload_pool(), Some("asm-fresh.svc.id.goog"));
        assert!(
            c.master_auth
                .is_some_and(|m| !m.cluster_ca_certificate.is_empty())
        );
        let missing = g
            .container
            .get_cluster_opt(PROJECT, LOCATION, "nope")
            .await
            .expect("404 is None");
        assert!(missing.is_none());
        assert_eq!(
            g.container
                .list_clusters(PROJECT, None)
                .await
                .expect("list")
                .len(),
            1
        );
        let enabled = g.serviceusage.enabled_ids(PROJECT).await.expect("services");
        assert!(enabled.contains("container.googleapis.com"), "{enabled:?}");
        assert!(!enabled.contains("gkehub.googleapis.com"));
        let perms = vec!["gkehub.memberships.create".to_string()];
        assert_eq!(
            g.crm
                .test_iam_permissions(PROJECT, &perms)
                .await
                .expect("test"),
            perms
        );
        let policy = g.crm.get_iam_policy(PROJECT).await.expect("policy");
        assert!(!policy.etag.is_empty());
    });
    assert!(g.requests() >= 7, "{}", g.requests());
}

#[test]
fn google_service_disabled_is_typed() {
    let sb = TestSandbox::with(fast("fresh"));
    let g = clients(&sb);
    let err = sb
        .block_on(g.gkehub.list_memberships(PROJECT))
        .expect_err("gkehub is disabled in the fresh scenario");
    assert_eq!(
        err.service_disabled().as_deref(),
        Some("gkehub.googleapis.com"),
        "{err}"
    );
    let coded = asm::error::Error::from(err);
    assert_eq!(coded.code, "ASM-E412");
}

#[test]
fn google_writes_and_operations() {
    let sb = TestSandbox::with(fast("fresh"));
    let g = clients(&sb);
    sb.block_on(async {
        let ids: Vec<String> = [
            "gkehub.googleapis.com",
            "meshconfig.googleapis.com",
            "mesh.googleapis.com",
        ]
        .map(String::from)
        .to_vec();
        let op = g
            .serviceusage
            .batch_enable(PROJECT, &ids)
            .await
            .expect("batchEnable");
        g.lro.wait(op).await.expect("enable op");
        let enabled = g.serviceusage.enabled_ids(PROJECT).await.expect("services");
        assert!(ids.iter().all(|i| enabled.contains(i)), "{enabled:?}");

        // Labels: read-modify-write with the fingerprint.
        let c: Cluster = g
            .container
            .get_cluster(PROJECT, LOCATION, CLUSTER)
            .await
            .expect("cluster");
        let mut labels = c.resource_labels.clone();
        labels.insert("mesh_id".into(), format!("proj-{NUMBER}"));
        let op = g
            .container
            .set_resource_labels(PROJECT, LOCATION, CLUSTER, &labels, &c.label_fingerprint)
            .await
            .expect("setResourceLabels");
        g.lro.wait(op).await.expect("labels op");
        let c2 = g
            .container
            .get_cluster(PROJECT, LOCATION, CLUSTER)
            .await
            .expect("cluster");
        assert_eq!(
            c2.resource_labels.get("mesh_id").map(String::as_str),
            Some("proj-418276145901")
        );
        assert_ne!(c2.label_fingerprint, c.label_fingerprint);
        let stale = g
            .container
            .set_resource_labels(PROJECT, LOCATION, CLUSTER, &labels, &c.label_fingerprint)
            .await;
        assert!(stale.is_err(), "a stale fingerprint is refused");

        // Fleet registration.
        let region = c.region().to_string();
        let link = gkehub::gke_resource_link(PROJECT, LOCATION, CLUSTER);
        let issuer = gkehub::gke_issuer(PROJECT, LOCATION, CLUSTER);
        let op = g
            .gkehub
            .create_membership(PROJECT, &region, CLUSTER, &link, Some(&issuer))
            .await
            .expect("create membership");
        let m = g.lro.wait(op).await.expect("membership op");
        assert_eq!(
            m["name"],
            format!("projects/{PROJECT}/locations/{region}/memberships/{CLUSTER}")
        );
        let again = g
            .gkehub
            .create_membership(PROJECT, &region, CLUSTER, &link, Some(&issuer))
            .await
            .expect_err("exists");
        assert!(again.is_already_exists(), "{again}");
        let ms = g.gkehub.list_memberships(PROJECT).await.expect("list");
        let found = gkehub::find_membership_for_cluster(&ms, &[PROJECT, NUMBER], LOCATION, CLUSTER)
            .expect("membership for the cluster");
        assert_eq!(found.id(), CLUSTER);
        assert_eq!(found.location(), region);

        // servicemesh feature + fleet management.
        assert!(
            g.gkehub
                .get_feature(PROJECT, SERVICEMESH)
                .await
                .expect("get")
                .is_none()
        );
        let op = g
            .gkehub
            .create_feature(PROJECT, SERVICEMESH, &json!({}))
            .await
            .expect("create feature");
        g.lro.wait(op).await.expect("feature op");
        let f = g
            .gkehub
            .get_feature(PROJECT, SERVICEMESH)
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(
            f.name,
            format!("projects/{PROJECT}/locations/global/features/servicemesh")
        );
        let op = g
            .gkehub
            .patch_membership_feature(
                PROJECT,
                &region,
                CLUSTER,
                SERVICEMESH,
                &json!({"servicemesh": {"management": "MANAGEMENT_AUTOMATIC"}}),
            )
            .await
            .expect("patch v2");
        g.lro.wait(op).await.expect("v2 op");
        let mf = g
            .gkehub
            .get_membership_feature(PROJECT, &region, CLUSTER, SERVICEMESH)
            .await
            .expect("get v2")
            .expect("exists");
        assert_eq!(mf.management(), Some("MANAGEMENT_AUTOMATIC"));
    });
}

#[test]
fn google_retries_transient_errors() {
    let config = fast("fresh")
        .fault("GET /crm/v1/projects/*:503,rate=0.4")
        .expect("fault")
        .seed(4);
    let sb = TestSandbox::with(config);
    let g = clients(&sb);
    sb.block_on(async {
        for i in 0..8 {
            let n = g.crm.project_number(PROJECT).await;
            assert_eq!(
                n.as_deref().ok(),
                Some(NUMBER),
                "call {i}, {} requests: {n:?}",
                g.requests()
            );
        }
    });
    assert!(
        g.requests() > 8,
        "some requests were retried: {}",
        g.requests()
    );
}

#[test]
fn kube_apply_get_diff_and_wait() {
    let sb = TestSandbox::with(fast("fresh"));
    let g = clients(&sb);
    sb.block_on(async {
        let c = g.container.get_cluster(PROJECT, LOCATION, CLUSTER).await.expect("cluster");
        let kc = asm::kube::client_for_gke(&c, &g.bearer(), None).expect("kube client");
        let client = kc.client;
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}});
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "asm-options", "namespace": "istio-system"}, "data": {"multicluster_mode": "connected"}});
        apply::apply_all(&client, &[ns, cm.clone()], ApplyOptions::default())
            .await
            .expect("apply");
        let live = apply::get_live(&client, &cm).await.expect("get").expect("exists");
        let live = serde_json::to_value(&live).expect("json");
        assert!(!apply::diff_needed(&live, &cm));
        let changed = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "asm-options", "namespace": "istio-system"}, "data": {"multicluster_mode": "off"}});
        assert!(apply::diff_needed(&live, &changed));
        let dry = apply::apply(&client, &changed, ApplyOptions { force: false, dry_run: true })
            .await
            .expect("dry run");
        assert_eq!(dry.data["data"]["multicluster_mode"], "off");
        let live = apply::get_live(&client, &cm).await.expect("get").expect("exists");
        assert_eq!(live.data["data"]["multicluster_mode"], "connected", "dry run persisted nothing");
        let absent = apply::get_opt(&client, "v1", "ConfigMap", Some("istio-system"), "nope")
            .await
            .expect("get");
        assert!(absent.is_none());

        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                     "versions": [{"name": "v1", "served": true, "storage": true,
                                   "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
        apply::apply(&client, &crd, ApplyOptions::default()).await.expect("apply crd");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        asm::kube::wait_crd_established(&client, "widgets.example.com", deadline, None)
            .await
            .expect("established");
        let w = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w1", "namespace": "istio-system"}, "spec": {"size": 1}});
        apply::apply(&client, &w, ApplyOptions::default()).await.expect("apply discovered kind");
    });
}

#[test]
fn kube_wait_times_out_with_exit_4() {
    let sb = TestSandbox::with(fast("fresh"));
    let g = clients(&sb);
    sb.block_on(async {
        let c = g
            .container
            .get_cluster(PROJECT, LOCATION, CLUSTER)
            .await
            .expect("cluster");
        let kc = asm::kube::client_for_gke(&c, &g.bearer(), None).expect("kube client");
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        let err =
            asm::kube::wait_crd_established(&kc.client, "missing.example.com", deadline, None)
                .await
                .expect_err("times out");
        let coded = asm::error::Error::from(err);
        assert_eq!(coded.exit_code, asm::error::exit::TIMEOUT, "{coded}");
    });
}

#[test]
fn kubeconfig_client() {
    let sb = TestSandbox::with(fast("fresh"));
    let env = Environment::with_vars(sb.env());
    sb.block_on(async {
        let kc = asm::kube::client_from_kubeconfig(&env, None, None, None)
            .await
            .expect("client from the sandbox kubeconfig");
        assert!(kc.context.contains(CLUSTER), "{}", kc.context);
        let v = kc.client.apiserver_version().await.expect("version");
        assert!(!v.git_version.is_empty());
        let err = asm::kube::client_from_kubeconfig(&env, None, Some("nope"), None)
            .await
            .expect_err("unknown context");
        assert!(err.to_string().contains("nope"));
    });
}
