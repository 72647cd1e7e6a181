//! Planner tests of `enable-dataplane`: observations in, checks and actions out.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::plan::Op;
use crate::spec::{EnableFlags, Management};
use crate::steps::tests::{installed, spec as mesh_spec};

const C1: &str = "asm-fresh/us-central1-c/cluster-1";

fn spec(namespaces: Namespaces, disable: bool, components: bool) -> DataplaneSpec {
    let enable = EnableFlags {
        components,
        ..EnableFlags::default()
    };
    DataplaneSpec {
        mesh: mesh_spec(&[C1], enable, Management::Automatic),
        namespaces,
        pods: vec![],
        disable,
        plan: crate::spec::PlanFlags {
            yes: true,
            ..Default::default()
        },
    }
}

fn shop() -> Namespaces {
    Namespaces::Named(vec!["shop".into()])
}

fn ns(name: &str, labels: &[(&str, &str)], proxy: Option<&str>) -> NamespaceObs {
    NamespaceObs {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        proxy: proxy.map(str::to_string),
        resource_version: Some("1".into()),
    }
}

/// `installed` with namespace shop labelled for asm-managed and a Ready DataPlaneControl.
fn observed(s: &DataplaneSpec, dp: DataplaneObs) -> Observed {
    Observed {
        mesh: installed(&s.mesh),
        clusters: vec![Some(Ok(dp))],
    }
}

fn ready_cluster(namespaces: Vec<NamespaceObs>) -> DataplaneObs {
    DataplaneObs {
        namespaces,
        controls: vec![("asm-managed".into(), Some("Ready".into()))],
        ..DataplaneObs::default()
    }
}

fn statuses(p: &DataplanePlan, code: &str) -> Vec<CheckStatus> {
    p.checks
        .iter()
        .filter(|c| c.code == code)
        .map(|c| c.status)
        .collect()
}

fn ids(p: &DataplanePlan) -> Vec<&str> {
    p.actions.iter().map(|a| a.id.as_str()).collect()
}

#[test]
fn labelled_namespace_is_annotated_then_waited_for() {
    let s = spec(shop(), false, false);
    let o = observed(
        &s,
        ready_cluster(vec![ns("shop", &[("istio.io/rev", "asm-managed")], None)]),
    );
    let p = plan_dataplane(&s, &o);
    assert!(!p.blocked(), "{:#?}", p.checks);
    assert_eq!(
        ids(&p),
        ["cluster-1/namespace-shop", "cluster-1/dataplane-ready"]
    );
    let DataplaneStep::Kube { cluster: 0, step } = &p.actions[0].payload else {
        panic!("{:?}", p.actions[0].payload)
    };
    let KubeStep::SetMetadata { annotations, .. } = step else {
        panic!("{step:?}")
    };
    assert_eq!(
        annotations.get(PROXY_ANNOTATION),
        Some(&Some(r#"{"managed":"true"}"#.to_string()))
    );
    assert_eq!(p.actions[1].depends_on, ["cluster-1/namespace-shop"]);
}

#[test]
fn annotated_namespace_with_a_ready_data_plane_plans_nothing() {
    let s = spec(shop(), false, false);
    let o = observed(
        &s,
        ready_cluster(vec![ns(
            "shop",
            &[("istio.io/rev", "asm-managed")],
            Some(r#"{"managed":"true"}"#),
        )]),
    );
    assert!(plan_dataplane(&s, &o).actions.is_empty());
}

#[test]
fn stable_channel_fails_naming_the_channel() {
    let s = spec(shop(), false, false);
    let mut o = observed(
        &s,
        ready_cluster(vec![ns("shop", &[("istio.io/rev", "asm-managed")], None)]),
    );
    if let Ok(Some(g)) = &mut o.mesh.clusters[0].gke {
        g.channel = Some("STABLE".into());
    }
    let p = plan_dataplane(&s, &o);
    let c = p.checks.iter().find(|c| c.code == codes::CHANNEL).unwrap();
    assert_eq!(c.status, CheckStatus::Fail);
    assert!(c.message.contains("STABLE"), "{}", c.message);
    assert!(p.blocked());
}

#[test]
fn revision_management_without_cni_fails_with_the_install_hint() {
    let s = spec(shop(), false, false);
    let mut o = observed(
        &s,
        ready_cluster(vec![ns("shop", &[("istio.io/rev", "asm-managed")], None)]),
    );
    o.mesh.clusters[0].membership_feature = Some(Ok(None));
    let p = plan_dataplane(&s, &o);
    let c = p
        .checks
        .iter()
        .find(|c| c.code == codes::MANAGED_CNI)
        .unwrap();
    assert_eq!(c.status, CheckStatus::Fail);
    assert!(c.hint.as_deref().unwrap().contains("--option cni-managed"));
    if let Some(Ok(k)) = &mut o.mesh.clusters[0].kube {
        k.asm_options = Some("CNI=on".into());
    }
    let p = plan_dataplane(&s, &o);
    assert_eq!(statuses(&p, codes::MANAGED_CNI), [CheckStatus::Ok]);
}

#[test]
fn missing_feature_is_fixed_with_e_and_fails_without() {
    for (components, expected) in [(true, CheckStatus::Fix), (false, CheckStatus::Fail)] {
        let s = spec(shop(), false, components);
        let mut o = observed(
            &s,
            ready_cluster(vec![ns("shop", &[("istio.io/rev", "asm-managed")], None)]),
        );
        o.mesh.fleet.feature = Ok(None);
        let p = plan_dataplane(&s, &o);
        assert_eq!(statuses(&p, codes::FEATURE), [expected]);
        let has_action = ids(&p).contains(&"fleet/servicemesh-feature");
        assert_eq!(has_action, components);
        if components {
            let wait = p.actions.iter().find(|a| a.op == Op::Wait).unwrap();
            assert!(
                wait.depends_on
                    .contains(&"fleet/servicemesh-feature".to_string())
            );
        }
    }
}

#[test]
fn namespace_of_another_revision_warns_and_unlabelled_fails() {
    let s = spec(
        Namespaces::Named(vec!["old".into(), "plain".into()]),
        false,
        false,
    );
    let o = observed(
        &s,
        ready_cluster(vec![
            ns("old", &[("istio.io/rev", "asm-1191")], None),
            ns("plain", &[], None),
        ]),
    );
    let p = plan_dataplane(&s, &o);
    assert_eq!(
        statuses(&p, codes::NAMESPACE),
        [CheckStatus::Warn, CheckStatus::Fail]
    );
}

#[test]
fn all_namespaces_takes_labelled_ones_and_never_system_ones() {
    let s = spec(Namespaces::AllLabelled, false, false);
    let o = observed(
        &s,
        ready_cluster(vec![
            ns("shop", &[("istio.io/rev", "asm-managed")], None),
            ns("catalog", &[("istio-injection", "enabled")], None),
            ns("istio-system", &[("istio.io/rev", "asm-managed")], None),
            ns("gke-managed-x", &[("istio-injection", "enabled")], None),
            ns("plain", &[], None),
        ]),
    );
    let p = plan_dataplane(&s, &o);
    assert_eq!(
        ids(&p),
        [
            "cluster-1/namespace-shop",
            "cluster-1/namespace-catalog",
            "cluster-1/dataplane-ready"
        ]
    );
}

#[test]
fn disable_annotates_false_waits_for_nothing_and_warns_about_restarts() {
    let s = spec(shop(), true, false);
    let o = observed(
        &s,
        ready_cluster(vec![ns(
            "shop",
            &[("istio.io/rev", "asm-managed")],
            Some(r#"{"managed":"true"}"#),
        )]),
    );
    let p = plan_dataplane(&s, &o);
    assert_eq!(ids(&p), ["cluster-1/namespace-shop"]);
    assert_eq!(statuses(&p, codes::DISABLE), [CheckStatus::Warn]);
    assert!(p.actions[0].would.contains(r#"{"managed":"false"}"#));
}

#[test]
fn unmanaged_names_uninjected_pods_kube_inject_jobs_and_sets() {
    let pod = |name: &str,
               injected: Option<&str>,
               owner: Option<(&str, &str)>,
               hash: Option<&str>| PodObs {
        namespace: "shop".into(),
        name: name.into(),
        proxy: None,
        injected: injected.is_some(),
        injected_revision: injected.map(str::to_string),
        owner: owner.map(|(k, n)| (k.to_string(), n.to_string())),
        template_hash: hash.map(str::to_string),
        live: true,
        resource_version: None,
    };
    let workload = |kind: &str, name: &str, template_injected: bool| WorkloadObs {
        kind: kind.into(),
        namespace: "shop".into(),
        name: name.into(),
        template_injected,
    };
    let dp = DataplaneObs {
        pods: vec![
            pod(
                "web-5d8f-x",
                Some("asm-managed"),
                Some(("ReplicaSet", "web-5d8f")),
                Some("5d8f"),
            ),
            pod(
                "legacy-77aa-y",
                Some("asm-managed"),
                Some(("ReplicaSet", "legacy-77aa")),
                Some("77aa"),
            ),
            pod("bare", None, None, None),
            pod("old", Some("asm-1191"), None, None),
            pod("batch-z", None, Some(("Job", "batch")), None),
        ],
        workloads: vec![
            workload("Deployment", "web", false),
            workload("Deployment", "legacy", true),
            workload("Job", "batch", false),
            workload("DaemonSet", "agent", false),
        ],
        ..DataplaneObs::default()
    };
    assert_eq!(
        unmanaged("shop", &dp),
        [
            "Deployment legacy (injected with istioctl kube-inject)",
            "Job batch",
            "DaemonSet agent",
            "pod bare (not injected)",
            "pod old (injected by revision asm-1191)",
        ]
    );
}
