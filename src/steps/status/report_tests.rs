#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::steps::status::{
    ClusterObserved, GkeInfo, KubeSnapshot, ManagementInfo, MembershipInfo, MeshFeatureInfo,
};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn expr(key: &str, op: &str, values: &[&str]) -> Value {
    if values.is_empty() {
        json!({"key": key, "operator": op})
    } else {
        json!({"key": key, "operator": op, "values": values})
    }
}

/// Istio's revision webhooks (`rev.namespace.`, `rev.object.`) for `rev`, as the chart
/// `istio-discovery/templates/mutatingwebhook.yaml` writes them.
fn rev_hooks(rev: &str, client: Value) -> Vec<Value> {
    vec![
        json!({"name": "rev.namespace.sidecar-injector.istio.io", "clientConfig": client,
            "namespaceSelector": {"matchExpressions": [expr("istio.io/rev", "In", &[rev]), expr("istio-injection", "DoesNotExist", &[])]},
            "objectSelector": {"matchExpressions": [expr("sidecar.istio.io/inject", "NotIn", &["false"])]}}),
        json!({"name": "rev.object.sidecar-injector.istio.io", "clientConfig": client,
            "namespaceSelector": {"matchExpressions": [expr("istio.io/rev", "DoesNotExist", &[]), expr("istio-injection", "DoesNotExist", &[])]},
            "objectSelector": {"matchExpressions": [expr("sidecar.istio.io/inject", "NotIn", &["false"]), expr("istio.io/rev", "In", &[rev])]}}),
    ]
}

fn in_cluster_mwc(rev: &str) -> Value {
    let svc = json!({"service": {"name": format!("istiod-{rev}"), "namespace": "istio-system", "path": "/inject"}});
    json!({"metadata": {"name": format!("istio-sidecar-injector-{rev}"), "labels": {"istio.io/rev": rev}},
        "webhooks": rev_hooks(rev, svc)})
}

fn managed_mwc(rev: &str) -> Value {
    let url = json!({"url": format!("https://meshconfig.googleapis.com/inject/{rev}")});
    json!({"metadata": {"name": format!("istiod-{rev}"), "labels": {"istio.io/rev": rev}},
        "webhooks": rev_hooks(rev, url)})
}

/// A default-tag configuration for `rev` (`istioctl tag set default`): also injects
/// `istio-injection=enabled` namespaces.
fn default_tag(rev: &str) -> Value {
    let svc = json!({"service": {"name": format!("istiod-{rev}"), "namespace": "istio-system"}});
    let mut hooks = rev_hooks("default", svc.clone());
    hooks.push(json!({"name": "namespace.sidecar-injector.istio.io", "clientConfig": svc,
        "namespaceSelector": {"matchExpressions": [expr("istio-injection", "In", &["enabled"])]},
        "objectSelector": {"matchExpressions": [expr("sidecar.istio.io/inject", "NotIn", &["false"])]}}));
    json!({"metadata": {"name": "istio-revision-tag-default", "labels": {"istio.io/rev": rev, "istio.io/tag": "default"}},
        "webhooks": hooks})
}

fn ns(name: &str, l: Value) -> Value {
    json!({"metadata": {"name": name, "labels": l}})
}

fn pod(ns: &str, name: &str, rev: Option<&str>, proxy: Option<&str>) -> Value {
    let mut p = json!({"metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]}});
    if let Some(r) = rev {
        p["metadata"]["annotations"] = json!({
            "sidecar.istio.io/status": json!({"revision": r, "containers": ["istio-proxy"]}).to_string(),
            "istio.io/rev": r,
        });
        p["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "istio-proxy", "image": format!("gcr.io/gke-release/asm/proxyv2:{}", proxy.unwrap())}));
    }
    p
}

fn istiod(rev: &str, tag: &str, ca_addr: Option<&str>) -> Value {
    let mut env = vec![json!({"name": "REVISION", "value": rev})];
    if let Some(a) = ca_addr {
        env.push(json!({"name": "CA_ADDR", "value": a}));
    }
    json!({"metadata": {"name": format!("istiod-{rev}"), "namespace": "istio-system",
            "labels": {"app": "istiod", "istio.io/rev": rev}},
        "spec": {"template": {"spec": {"containers": [
            {"name": "discovery", "image": format!("gcr.io/gke-release/asm/pilot:{tag}"), "env": env}]}}},
        "status": {"conditions": [{"type": "Available", "status": "True"}]}})
}

fn cpr(name: &str, ready: bool) -> Value {
    json!({"metadata": {"name": name, "namespace": "istio-system"}, "spec": {"channel": "regular"},
        "status": {"conditions": [{"type": "ProvisioningFinished", "status": if ready {"True"} else {"False"}, "reason": "Provisioned"}]}})
}

fn observed(kube: KubeSnapshot) -> ClusterObserved {
    ClusterObserved {
        cluster: "p/us-central1-c/c1".into(),
        gke: Ok(Some(GkeInfo {
            status: Some("RUNNING".into()),
            channel: Some("REGULAR".into()),
            master_version: Some("1.32.6".into()),
        })),
        membership: Ok(Some(MembershipInfo {
            name: "projects/p/locations/us-central1/memberships/c1".into(),
            state: Some("READY".into()),
            feature: Ok(Some(MeshFeatureInfo {
                management: Some("MANAGEMENT_AUTOMATIC".into()),
                control_plane: Some(ManagementInfo {
                    state: "ACTIVE".into(),
                    codes: vec!["REVISION_READY".into()],
                }),
                data_plane: None,
            })),
        })),
        kube: Ok(kube),
    }
}

/// A cluster mid-migration: managed asm-managed ready, in-cluster asm-191-1 with Mesh CA.
fn mid_migration() -> KubeSnapshot {
    KubeSnapshot {
        control_plane_revisions: vec![cpr("asm-managed", true)],
        istiods: vec![istiod(
            "asm-191-1",
            "1.9.1-asm.1",
            Some("meshca.googleapis.com:443"),
        )],
        webhooks: vec![managed_mwc("asm-managed"), in_cluster_mwc("asm-191-1")],
        namespaces: vec![
            ns("frontend", json!({"istio.io/rev": "asm-managed"})),
            ns("legacy", json!({"istio.io/rev": "asm-191-1"})),
            ns("batch", json!({})),
            ns("kube-system", json!({})),
            ns("istio-system", json!({})),
        ],
        pods: vec![
            // Relabelled but not restarted yet.
            pod("frontend", "web-1", Some("asm-191-1"), Some("1.9.1-asm.1")),
            pod(
                "frontend",
                "web-2",
                Some("asm-managed"),
                Some("1.23.6-asm.14"),
            ),
            pod("legacy", "old-1", Some("asm-191-1"), Some("1.9.1-asm.1")),
            pod("batch", "job-1", None, None),
            pod("kube-system", "dns", None, None),
            pod("istio-system", "istiod-asm-191-1-abc", None, None),
        ],
        ..Default::default()
    }
}

#[test]
fn selector_operators_follow_kubernetes_semantics() {
    let l = labels(&[("a", "1"), ("b", "2")]);
    let sel = |v: Value| selector_matches(Some(&v), &l);
    assert!(selector_matches(None, &l));
    assert!(sel(json!({"matchLabels": {"a": "1"}})));
    assert!(!sel(json!({"matchLabels": {"a": "2"}})));
    assert!(sel(
        json!({"matchExpressions": [expr("a", "In", &["1", "3"])]})
    ));
    assert!(!sel(json!({"matchExpressions": [expr("c", "In", &["1"])]})));
    assert!(sel(
        json!({"matchExpressions": [expr("c", "NotIn", &["1"])]})
    ));
    assert!(!sel(
        json!({"matchExpressions": [expr("a", "NotIn", &["1"])]})
    ));
    assert!(sel(json!({"matchExpressions": [expr("b", "Exists", &[])]})));
    assert!(!sel(
        json!({"matchExpressions": [expr("b", "DoesNotExist", &[])]})
    ));
    assert!(!sel(json!({"matchExpressions": [expr("b", "Bogus", &[])]})));
}

#[test]
fn istio_injection_beats_the_rev_label_and_enabled_means_the_default_injector() {
    let inj = injectors(&[
        in_cluster_mwc("asm-191-1"),
        managed_mwc("asm-managed"),
        default_tag("asm-managed"),
    ]);
    let none = BTreeMap::new();
    // istio.io/rev alone.
    let rev = labels(&[("istio.io/rev", "asm-191-1")]);
    assert_eq!(resolve(&inj, &rev, &none).as_deref(), Some("asm-191-1"));
    assert_eq!(points_at(&rev).as_deref(), Some("asm-191-1"));
    // istio-injection=enabled wins over istio.io/rev: the default tag's revision.
    let both = labels(&[
        ("istio-injection", "enabled"),
        ("istio.io/rev", "asm-191-1"),
    ]);
    assert_eq!(resolve(&inj, &both, &none).as_deref(), Some("asm-managed"));
    assert_eq!(points_at(&both).as_deref(), Some("default"));
    // Any other istio-injection value disables injection, whatever istio.io/rev says.
    let disabled = labels(&[
        ("istio-injection", "disabled"),
        ("istio.io/rev", "asm-191-1"),
    ]);
    assert_eq!(resolve(&inj, &disabled, &none), None);
    assert_eq!(points_at(&disabled), None);
    // A pod's own istio.io/rev counts only in an unlabelled namespace.
    let pod_rev = labels(&[("istio.io/rev", "asm-managed")]);
    assert_eq!(
        resolve(&inj, &none, &pod_rev).as_deref(),
        Some("asm-managed")
    );
    assert_eq!(resolve(&inj, &rev, &pod_rev).as_deref(), Some("asm-191-1"));
    // sidecar.istio.io/inject=false on the pod: no injector matches.
    let opt_out = labels(&[("sidecar.istio.io/inject", "false")]);
    assert_eq!(resolve(&inj, &rev, &opt_out), None);
    // Without a default injector, istio-injection=enabled resolves to nothing.
    let only_rev = injectors(&[in_cluster_mwc("asm-191-1")]);
    assert_eq!(
        resolve(&only_rev, &labels(&[("istio-injection", "enabled")]), &none),
        None
    );
}

#[test]
fn webhooks_report_revision_tag_default_and_managed() {
    let mut o = observed(KubeSnapshot {
        webhooks: vec![
            in_cluster_mwc("asm-191-1"),
            managed_mwc("asm-managed"),
            default_tag("asm-managed"),
            json!({"metadata": {"name": "unrelated"}, "webhooks": [{"name": "x.example.com"}]}),
        ],
        ..Default::default()
    });
    o.membership = Ok(None);
    let r = cluster_report(&o);
    let rows: Vec<(&str, &str, Option<&str>, bool, bool)> = r
        .injection_webhooks
        .iter()
        .map(|w| {
            (
                w.name.as_str(),
                w.revision.as_str(),
                w.tag.as_deref(),
                w.default,
                w.managed,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "istio-revision-tag-default",
                "asm-managed",
                Some("default"),
                true,
                true
            ),
            (
                "istio-sidecar-injector-asm-191-1",
                "asm-191-1",
                None,
                false,
                false
            ),
            ("istiod-asm-managed", "asm-managed", None, false, true),
        ]
    );
}

#[test]
fn pods_are_counted_by_revision_and_restarts_follow_the_namespace_label() {
    let r = cluster_report(&observed(mid_migration()));
    let ns: Vec<(&str, Option<&str>, usize, usize, usize)> = r
        .namespaces
        .iter()
        .map(|n| {
            (
                n.name.as_str(),
                n.revision.as_deref(),
                n.pods,
                n.injected,
                n.restart_needed,
            )
        })
        .collect();
    // kube-system hidden; istio-system hidden (no injected pod).
    assert_eq!(
        ns,
        [
            ("batch", None, 1, 0, 0),
            ("frontend", Some("asm-managed"), 2, 2, 1),
            ("legacy", Some("asm-191-1"), 1, 1, 0),
        ]
    );
    let by_rev: Vec<(&str, Option<&str>, bool, usize)> = r
        .pods_by_revision
        .iter()
        .map(|p| {
            (
                p.revision.as_str(),
                p.proxy_version.as_deref(),
                p.managed,
                p.pods,
            )
        })
        .collect();
    assert_eq!(
        by_rev,
        [
            ("asm-191-1", Some("1.9.1-asm.1"), false, 2),
            ("asm-managed", Some("1.23.6-asm.14"), true, 1),
        ]
    );
    assert_eq!(r.uninjected_pods.len(), 1);
    assert_eq!(r.uninjected_pods[0].name, "job-1");
    assert_eq!(
        r.restart_needed,
        [RestartNeeded {
            namespace: "frontend".into(),
            name: "web-1".into(),
            revision: Some("asm-191-1".into()),
            expected: Some("asm-managed".into()),
        }]
    );
    assert_eq!(
        r.in_cluster_control_planes,
        [IstiodReport {
            name: "istiod-asm-191-1".into(),
            revision: "asm-191-1".into(),
            version: Some("1.9.1-asm.1".into()),
            ca: "mesh_ca".into(),
            available: true,
        }]
    );
}

#[test]
fn migrated_ignores_uninjected_pods_and_the_old_istiod_but_not_old_labels_or_pods() {
    let report = status_report(&[observed(mid_migration())]);
    assert!(!report.migrated.met);
    assert_eq!(
        report.migrated.missing,
        [
            "p/us-central1-c/c1: namespace legacy: labels point at asm-191-1, not a managed revision",
            "p/us-central1-c/c1: namespace frontend: 1 pod on asm-191-1",
            "p/us-central1-c/c1: namespace legacy: 1 pod on asm-191-1",
        ]
    );
    assert!(report.ready.met, "{:?}", report.ready);
    // Relabelled and restarted: migrated, although istiod-asm-191-1 and an uninjected pod remain.
    let mut k = mid_migration();
    k.namespaces[1] = ns("legacy", json!({"istio.io/rev": "asm-managed"}));
    k.pods[0] = pod(
        "frontend",
        "web-1",
        Some("asm-managed"),
        Some("1.23.6-asm.14"),
    );
    k.pods[2] = pod(
        "legacy",
        "old-1",
        Some("asm-managed"),
        Some("1.23.6-asm.14"),
    );
    let report = status_report(&[observed(k)]);
    assert!(report.migrated.met, "{:?}", report.migrated);
    assert_eq!(
        report.clusters[0].cleanup,
        ["in-cluster control plane istiod-asm-191-1 (asm-191-1) still exists"]
    );
}

#[test]
fn istio_system_is_shown_only_with_injected_pods() {
    let mut k = mid_migration();
    k.pods.push(pod(
        "istio-system",
        "ingressgateway-1",
        Some("asm-191-1"),
        Some("1.9.1-asm.1"),
    ));
    let r = cluster_report(&observed(k));
    let sys = r
        .namespaces
        .iter()
        .find(|n| n.name == "istio-system")
        .unwrap();
    // The istiod pod itself is not counted; the gateway is.
    assert_eq!((sys.pods, sys.injected), (1, 1));
    assert!(
        r.to_migrate
            .iter()
            .any(|m| m == "namespace istio-system: 1 pod on asm-191-1")
    );
}

#[test]
fn ready_needs_a_provisioned_revision_fleet_ready_and_the_annotated_data_plane() {
    // No ControlPlaneRevision.
    let r = cluster_report(&observed(KubeSnapshot::default()));
    assert_eq!(
        r.not_ready,
        ["no managed control plane (no ControlPlaneRevision in istio-system)"]
    );
    // Provisioning, and the fleet says so.
    let mut o = observed(KubeSnapshot {
        control_plane_revisions: vec![cpr("asm-managed", false)],
        ..Default::default()
    });
    if let Ok(Some(m)) = &mut o.membership {
        m.feature = Ok(Some(MeshFeatureInfo {
            management: Some("MANAGEMENT_AUTOMATIC".into()),
            control_plane: Some(ManagementInfo {
                state: "PROVISIONING".into(),
                codes: vec!["PROVISIONING".into()],
            }),
            data_plane: None,
        }));
    }
    assert_eq!(
        cluster_report(&o).not_ready,
        [
            "ControlPlaneRevision asm-managed not ProvisioningFinished",
            "fleet control plane management is PROVISIONING (PROVISIONING), not ACTIVE (REVISION_READY)",
        ]
    );
    // Annotated for the managed data plane: its DataPlaneControl must be Ready.
    let mut k = mid_migration();
    k.namespaces[0]["metadata"]["annotations"] =
        json!({"mesh.cloud.google.com/proxy": "{\"managed\":\"true\"}"});
    let r = cluster_report(&observed(k.clone()));
    assert_eq!(
        r.not_ready,
        [
            "namespace frontend: managed data plane asked for, but no DataPlaneControl for asm-managed"
        ]
    );
    k.dataplane_controls = vec![json!({"metadata": {"name": "asm-managed"},
        "spec": {"revision": "asm-managed", "proxyVersion": "1.23.6-asm.14"}})];
    assert_eq!(
        cluster_report(&observed(k.clone())).not_ready,
        ["namespace frontend: DataPlaneControl asm-managed is without state, not Ready"]
    );
    k.dataplane_controls[0]["status"] = json!({"state": "Ready"});
    assert!(cluster_report(&observed(k)).not_ready.is_empty());
}

#[test]
fn an_unreachable_cluster_is_neither_ready_nor_migrated() {
    let mut o = observed(KubeSnapshot::default());
    o.kube = Err("connection refused".into());
    let report = status_report(&[o]);
    assert!(!report.ready.met && !report.migrated.met);
    assert_eq!(
        report.migrated.missing,
        ["p/us-central1-c/c1: Kubernetes API: connection refused"]
    );
}

#[test]
fn pod_facts_come_from_the_injection_status_and_the_proxy_image() {
    let p = pod("a", "b", Some("asm-managed"), Some("1.23.6-asm.14"));
    assert_eq!(pod_revision(&p).as_deref(), Some("asm-managed"));
    assert_eq!(proxy_version(&p).as_deref(), Some("1.23.6-asm.14"));
    assert_eq!(pod_revision(&pod("a", "b", None, None)), None);
    assert_eq!(image_tag("localhost:5000/proxyv2"), None);
    assert_eq!(
        image_tag("r/proxyv2:1.2@sha256:abc").as_deref(),
        Some("1.2")
    );
    let mut out = pod("a", "b", None, None);
    out["metadata"]["annotations"] = json!({"sidecar.istio.io/inject": "false"});
    assert!(opted_out(&out));
    assert_eq!(istiod_ca(&istiod("r", "1.9.1-asm.1", None)), "istiod");
    assert!(proxy_managed("{\"managed\":\"true\"}"));
    assert!(!proxy_managed("{\"managed\":\"false\"}"));
}

#[test]
fn secrets_are_reduced_to_name_cluster_and_keys() {
    let secret = json!({"metadata": {"name": "istio-remote-secret-c2", "annotations": {
            "networking.istio.io/cluster": "c2",
            "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"c2\":\"SECRET\"}}"}},
        "data": {"c2": "U0VDUkVU"}});
    let reduced = crate::steps::status::observe::reduce_secret(&secret);
    assert_eq!(
        reduced,
        json!({"name": "istio-remote-secret-c2", "cluster": "c2", "data_keys": ["c2"]})
    );
    assert!(!reduced.to_string().contains("SECRET") && !reduced.to_string().contains("U0VD"));
}

#[test]
fn finished_pods_are_not_counted() {
    let mut k = mid_migration();
    let mut done = pod("legacy", "job-done", Some("asm-191-1"), Some("1.9.1-asm.1"));
    done["status"] = json!({"phase": "Succeeded"});
    k.pods.push(done);
    let r = cluster_report(&observed(k));
    let legacy = r.namespaces.iter().find(|n| n.name == "legacy").unwrap();
    assert_eq!((legacy.pods, legacy.injected), (1, 1));
    assert!(
        r.to_migrate
            .iter()
            .any(|m| m == "namespace legacy: 1 pod on asm-191-1")
    );
}
