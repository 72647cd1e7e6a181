//! Planner tests: observations in, checks and actions out — no server.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::*;
use crate::plan::CheckStatus;
use crate::spec::{EnableFlags, KubeAccess, Management, MeshOption, MeshSpec, OutputFormat};

pub fn spec(clusters: &[&str], enable: EnableFlags, management: Management) -> MeshSpec {
    let clusters: Vec<ClusterRef> = clusters
        .iter()
        .map(|c| ClusterRef::parse(c).unwrap())
        .collect();
    MeshSpec {
        fleet_project: clusters[0].project.clone(),
        clusters,
        management,
        channel: None,
        options: vec![],
        enable,
        output: OutputFormat::Text,
        timeout: Duration::from_secs(600),
        kube: KubeAccess::Gke,
        ca: Default::default(),
        scope: Default::default(),
    }
}

fn all_granted(spec: &MeshSpec) -> BTreeMap<String, Result<BTreeSet<String>, String>> {
    let mut m = BTreeMap::new();
    for p in std::iter::once(spec.fleet_project.to_string())
        .chain(spec.clusters.iter().map(|c| c.project.to_string()))
    {
        m.insert(
            p,
            Ok(iam::CANDIDATES.iter().map(|s| s.to_string()).collect()),
        );
    }
    m
}

fn fresh_cluster() -> ClusterObs {
    ClusterObs {
        gke: Ok(Some(GkeObs {
            status: Some("RUNNING".into()),
            master_version: Some("1.32.6-gke.1025000".into()),
            channel: Some("REGULAR".into()),
            workload_pool: Some("asm-fresh.svc.id.goog".into()),
            labels: [("env".to_string(), "dev".to_string())].into(),
            self_link: None,
            label_fingerprint: Some("a1b2c3".into()),
        })),
        kube: Some(Ok(KubeObs {
            version: "v1.32.6".into(),
            ..Default::default()
        })),
        membership_feature: None,
    }
}

/// The `fresh` scenario as observed.
pub fn fresh(spec: &MeshSpec) -> Observed {
    Observed {
        fleet: FleetObs {
            project_number: Ok("418276145901".into()),
            enabled_services: Ok(["container.googleapis.com".to_string()].into()),
            memberships: Ok(vec![]),
            feature: Ok(None),
        },
        clusters: spec.clusters.iter().map(|_| fresh_cluster()).collect(),
        permissions: all_granted(spec),
        policies: BTreeMap::new(),
    }
}

/// The `installed` scenario as observed.
pub fn installed(spec: &MeshSpec) -> Observed {
    let mut o = fresh(spec);
    o.fleet.enabled_services = Ok(MESH_SERVICES.iter().map(|s| s.to_string()).collect());
    o.fleet.memberships = Ok(spec
        .clusters
        .iter()
        .map(|c| MembershipObs {
            name: format!(
                "projects/{}/locations/{}/memberships/{}",
                spec.fleet_project,
                c.location.region(),
                c.name
            ),
            resource_link: Some(format!("//container.googleapis.com/{}", c.resource_name())),
            state: Some("READY".into()),
        })
        .collect());
    o.fleet.feature = Ok(Some(FeatureObs {
        state: Some("ACTIVE".into()),
        membership_states: BTreeMap::new(),
        update_time: None,
    }));
    for c in &mut o.clusters {
        if let Ok(Some(g)) = &mut c.gke {
            g.labels
                .insert("mesh_id".into(), "proj-418276145901".into());
        }
        if let Some(Ok(k)) = &mut c.kube {
            k.namespace = true;
            k.crd = Some(true);
            k.cprs = vec![CprObs {
                name: "asm-managed".into(),
                channel: Some("regular".into()),
                tags: None,
                provisioning_finished: true,
            }];
        }
        c.membership_feature = Some(Ok(Some(MembershipFeatureObs {
            management: Some("MANAGEMENT_AUTOMATIC".into()),
            control_plane: Some(ControlPlaneState {
                state: Some("ACTIVE".into()),
                codes: vec!["REVISION_READY".into()],
            }),
            update_time: None,
        })));
    }
    o
}

const C1: &str = "asm-fresh/us-central1-c/cluster-1";

fn ids(p: &MeshPlan) -> Vec<&str> {
    p.actions.iter().map(|a| a.id.as_str()).collect()
}

fn status_of(p: &MeshPlan, code: &str) -> Vec<CheckStatus> {
    p.checks
        .iter()
        .filter(|c| c.code == code)
        .map(|c| c.status)
        .collect()
}

#[test]
fn fresh_with_enable_all_plans_everything() {
    let s = spec(&[C1], EnableFlags::all(), Management::Automatic);
    let p = plan_mesh(&s, &fresh(&s));
    assert!(!p.blocked(), "{:#?}", p.checks);
    assert_eq!(
        ids(&p),
        vec![
            "fleet/apis",
            "fleet/servicemesh-feature",
            "cluster-1/mesh-id-label",
            "cluster-1/membership",
            "cluster-1/istio-system",
            "cluster-1/management",
            "cluster-1/wait-managed",
        ]
    );
    let apis = p.action("fleet/apis").unwrap();
    assert_eq!(
        apis.payload,
        Step::EnableApis {
            project: s.fleet_project.clone(),
            services: MESH_SERVICES.iter().map(|s| s.to_string()).collect()
        }
    );
    assert_eq!(
        apis.would,
        "Would enable 3 APIs (mesh.googleapis.com, meshconfig.googleapis.com, gkehub.googleapis.com) on project asm-fresh"
    );
    let m = p.action("cluster-1/membership").unwrap();
    assert_eq!(
        m.payload,
        Step::RegisterMembership {
            cluster: 0,
            location: "us-central1".into(),
            id: "cluster-1".into()
        }
    );
    let mgmt = p.action("cluster-1/management").unwrap();
    for d in [
        "cluster-1/membership",
        "fleet/servicemesh-feature",
        "fleet/apis",
        "cluster-1/istio-system",
    ] {
        assert!(mgmt.depends_on.contains(&d.to_string()), "{d}");
    }
    let label = p.action("cluster-1/mesh-id-label").unwrap();
    assert_eq!(
        label.payload,
        Step::SetClusterLabel {
            cluster: 0,
            key: "mesh_id".into(),
            value: "proj-418276145901".into()
        }
    );
    let s2 = p.summary();
    assert_eq!((s2.create, s2.update, s2.wait), (4, 2, 1));
    let (cp, _) = p.critical_path(|a| a.estimate);
    assert_eq!(
        cp.last().map(String::as_str),
        Some("cluster-1/wait-managed")
    );
}

#[test]
fn installed_plans_nothing() {
    {
        let s = spec(&[C1], EnableFlags::all(), Management::Automatic);
        let p = plan_mesh(&s, &installed(&s));
        assert!(p.actions.is_empty(), "{:#?}", p.actions);
        assert!(
            p.checks.iter().all(|c| c.status == CheckStatus::Ok),
            "{:#?}",
            p.checks
        );
    }
}

#[test]
fn revision_management_on_installed_cluster_plans_nothing() {
    let s = spec(&[C1], EnableFlags::all(), Management::Revision);
    let p = plan_mesh(&s, &installed(&s));
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
}

#[test]
fn revision_management_on_fresh() {
    let mut s = spec(&[C1], EnableFlags::all(), Management::Revision);
    s.options = vec![MeshOption::CniManaged];
    let p = plan_mesh(&s, &fresh(&s));
    assert_eq!(
        ids(&p),
        vec![
            "fleet/apis",
            "fleet/servicemesh-feature",
            "cluster-1/mesh-id-label",
            "cluster-1/membership",
            "cluster-1/istio-system",
            "cluster-1/wait-crd",
            "cluster-1/asm-options",
            "cluster-1/control-plane-revision",
            "cluster-1/wait-revision",
        ]
    );
    let cr = p.action("cluster-1/control-plane-revision").unwrap();
    for d in [
        "cluster-1/wait-crd",
        "cluster-1/asm-options",
        "cluster-1/istio-system",
    ] {
        assert!(cr.depends_on.contains(&d.to_string()), "{d}");
    }
    let Step::Apply { object, .. } = &p.action("cluster-1/asm-options").unwrap().payload else {
        panic!()
    };
    assert_eq!(object["data"]["ASM_OPTS"], "CNI=on");
}

#[test]
fn channel_flag_adds_a_tag() {
    let mut s = spec(&[C1], EnableFlags::all(), Management::Revision);
    s.channel = Some(Channel::Rapid);
    let p = plan_mesh(&s, &installed(&s));
    let cr = p.action("cluster-1/control-plane-revision").unwrap();
    assert_eq!(cr.op, Op::Update);
    let Step::Apply { object, .. } = &cr.payload else {
        panic!()
    };
    assert_eq!(object["metadata"]["name"], "asm-managed");
    assert_eq!(
        object["metadata"]["annotations"]["mesh.cloud.google.com/tags"],
        "asm-managed-rapid"
    );
    assert_eq!(status_of(&p, codes::CHANNEL), vec![CheckStatus::Warn]);
}

#[test]
fn without_enable_flags_everything_blocks_but_components() {
    let managed = EnableFlags {
        components: true,
        iam_roles: true,
        ..Default::default()
    };
    let s = spec(&[C1], managed, Management::Automatic);
    let p = plan_mesh(&s, &fresh(&s));
    assert!(p.blocked());
    for code in [
        codes::APIS,
        codes::MESH_ID_LABEL,
        codes::MEMBERSHIP,
        codes::NAMESPACE,
    ] {
        assert_eq!(status_of(&p, code), vec![CheckStatus::Fail], "{code}");
    }
    assert_eq!(status_of(&p, codes::FEATURE), vec![CheckStatus::Fix]);
}

#[test]
fn workload_identity_off_needs_components() {
    let s = spec(&[C1], EnableFlags::default(), Management::Automatic);
    let mut o = installed(&s);
    if let Ok(Some(g)) = &mut o.clusters[0].gke {
        g.workload_pool = None;
    }
    let p = plan_mesh(&s, &o);
    assert_eq!(
        status_of(&p, codes::WORKLOAD_IDENTITY),
        vec![CheckStatus::Fail]
    );
    let mut s2 = s.clone();
    s2.enable.components = true;
    let p = plan_mesh(&s2, &o);
    assert_eq!(
        status_of(&p, codes::WORKLOAD_IDENTITY),
        vec![CheckStatus::Fix]
    );
    assert_eq!(ids(&p), vec!["cluster-1/workload-identity"]);
}

#[test]
fn gke_mutations_of_one_cluster_are_chained() {
    let s = spec(&[C1], EnableFlags::all(), Management::Automatic);
    let mut o = fresh(&s);
    if let Ok(Some(g)) = &mut o.clusters[0].gke {
        g.workload_pool = None;
    }
    let p = plan_mesh(&s, &o);
    let label = p.action("cluster-1/mesh-id-label").unwrap();
    assert_eq!(label.depends_on, vec!["cluster-1/workload-identity"]);
}

#[test]
fn missing_permission_blocks_and_names_it() {
    let s = spec(&[C1], EnableFlags::all(), Management::Automatic);
    let mut o = fresh(&s);
    if let Some(Ok(g)) = o.permissions.get_mut("asm-fresh") {
        g.remove("gkehub.memberships.create");
    }
    let p = plan_mesh(&s, &o);
    assert!(p.blocked());
    let c = p
        .checks
        .iter()
        .find(|c| c.code == codes::PERMISSIONS)
        .unwrap();
    assert_eq!(c.status, CheckStatus::Fail);
    assert!(
        c.message.contains("gkehub.memberships.create"),
        "{}",
        c.message
    );
    assert!(c.hint.as_deref().unwrap().contains("roles/gkehub.admin"));
}

#[test]
fn failure_paths_of_each_check() {
    let s = spec(&[C1], EnableFlags::all(), Management::Automatic);
    // Cluster missing.
    let mut o = fresh(&s);
    o.clusters[0].gke = Ok(None);
    o.clusters[0].kube = None;
    let p = plan_mesh(&s, &o);
    assert_eq!(
        status_of(&p, codes::CLUSTER_EXISTS),
        vec![CheckStatus::Fail]
    );
    assert!(p.actions.iter().all(|a| a.cluster.is_none()));
    // Unreachable.
    let mut o = fresh(&s);
    o.clusters[0].kube = Some(Err("connection refused".into()));
    let p = plan_mesh(&s, &o);
    assert_eq!(
        status_of(&p, codes::CLUSTER_REACHABLE),
        vec![CheckStatus::Fail]
    );
    // Old Kubernetes.
    let mut o = fresh(&s);
    if let Ok(Some(g)) = &mut o.clusters[0].gke {
        g.master_version = Some("1.24.3-gke.1".into());
    }
    let p = plan_mesh(&s, &o);
    assert_eq!(status_of(&p, codes::KUBE_VERSION), vec![CheckStatus::Fail]);
    // In-cluster istiod: a warning.
    let mut o = installed(&s);
    if let Some(Ok(k)) = &mut o.clusters[0].kube {
        k.istiod = vec!["istio-system/istiod-1-20".into()];
    }
    let p = plan_mesh(&s, &o);
    assert_eq!(
        status_of(&p, codes::IN_CLUSTER_ISTIOD),
        vec![CheckStatus::Warn]
    );
    assert!(!p.blocked());
    // Project unknown.
    let mut o = fresh(&s);
    o.fleet.project_number = Err("403 PERMISSION_DENIED".into());
    let p = plan_mesh(&s, &o);
    assert_eq!(status_of(&p, codes::PROJECT), vec![CheckStatus::Fail]);
    // Services unreadable.
    let mut o = fresh(&s);
    o.fleet.enabled_services = Err("boom".into());
    assert_eq!(
        status_of(&plan_mesh(&s, &o), codes::APIS),
        vec![CheckStatus::Fail]
    );
    // Channel mismatch is a warning.
    let mut s2 = s.clone();
    s2.channel = Some(Channel::Stable);
    assert_eq!(
        status_of(&plan_mesh(&s2, &installed(&s2)), codes::CHANNEL),
        vec![CheckStatus::Warn]
    );
}

#[test]
fn fleet_of_three_runs_clusters_independently() {
    let s = spec(
        &[
            "asm-fleet/us-central1-c/cluster-1",
            "asm-fleet/us-central1-c/cluster-2",
            "asm-fleet/us-central1-c/cluster-3",
        ],
        EnableFlags::all(),
        Management::Automatic,
    );
    let p = plan_mesh(&s, &fresh(&s));
    assert_eq!(p.summary().wait, 3);
    let fleet_actions = p.actions.iter().filter(|a| a.cluster.is_none()).count();
    assert_eq!(fleet_actions, 2);
    for a in &p.actions {
        if let Some(c) = &a.cluster {
            for d in &a.depends_on {
                let dep = p.action(d).unwrap();
                assert!(dep.cluster.is_none() || dep.cluster.as_ref() == Some(c));
            }
        }
    }
}

#[test]
fn existing_membership_is_found_by_resource_link() {
    let s = spec(&[C1], EnableFlags::all(), Management::Automatic);
    let mut o = fresh(&s);
    o.fleet.memberships = Ok(vec![MembershipObs {
        name: "projects/asm-fresh/locations/global/memberships/legacy-name".into(),
        resource_link: Some(
            "//container.googleapis.com/projects/asm-fresh/zones/us-central1-c/clusters/cluster-1"
                .into(),
        ),
        state: Some("READY".into()),
    }]);
    let p = plan_mesh(&s, &o);
    assert!(p.action("cluster-1/membership").is_none());
    let Step::SetAutomaticManagement { location, id, .. } =
        &p.action("cluster-1/management").unwrap().payload
    else {
        panic!()
    };
    assert_eq!((location.as_str(), id.as_str()), ("global", "legacy-name"));
}
