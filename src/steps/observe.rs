//! Observation (I/O): every read of `install`/`validate`, concurrently, into [`Observed`].
//!
//! Wave 1 reads the fleet project (number, services, memberships, feature, permissions)
//! and every GKE cluster at once; wave 2 reads each cluster's Kubernetes API and its
//! membership feature. A read answering SERVICE_DISABLED is "absent", not an error.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use serde_json::Value;

use crate::environment::Environment;
use crate::gcp::GcpClients;
use crate::gcp::container::Cluster;
use crate::gcp::crm::IamPolicy;
use crate::gcp::gkehub::{Feature, Membership, MembershipFeature};
use crate::kube::apply::{dynamic_api, get_opt, resolve_resource};
use crate::kube::wait::has_true_condition;
use crate::kube::{KubeContext, KubeError, KubeResult, client_for_gke, client_from_kubeconfig};
use crate::spec::{ClusterRef, KubeAccess, MeshSpec};

use super::control_plane::{ASM_OPTIONS, CPR_CRD, NAMESPACE, TAGS_ANNOTATION};
use super::{
    ClusterObs, ControlPlaneState, CprObs, FeatureObs, FleetObs, GkeObs, KubeObs,
    MembershipFeatureObs, MembershipObs, Observed, fleet, iam, iam_bindings,
};
use iam_bindings::{PolicyObs, PolicyResource};

/// Connections made while observing, reused by the executor.
#[derive(Debug, Clone, Default)]
pub struct Handles {
    /// GKE clusters as read (same order as the spec).
    pub gke: Vec<Option<Cluster>>,
    /// Kubernetes clients (same order as the spec).
    pub kube: Vec<Option<KubeContext>>,
}

fn message(e: &crate::gcp::GcpError) -> String {
    e.to_error().message
}

pub(crate) fn membership_obs(m: &Membership) -> MembershipObs {
    MembershipObs {
        name: m.name.clone(),
        resource_link: m.gke_resource_link().map(str::to_string),
        state: m.state.as_ref().map(|s| s.code.clone()),
    }
}

fn cp_state(v: &Value) -> Option<ControlPlaneState> {
    ControlPlaneState::from_json(v)
}

fn feature_obs(f: &Feature) -> FeatureObs {
    let raw = serde_json::to_value(f).unwrap_or(Value::Null);
    let membership_states = raw
        .get("membershipStates")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    v.pointer("/servicemesh/controlPlaneManagement")
                        .and_then(cp_state)
                        .map(|s| (k.clone(), s))
                })
                .collect()
        })
        .unwrap_or_default();
    FeatureObs {
        state: f.resource_state.as_ref().map(|s| s.state.clone()),
        membership_states,
        update_time: raw
            .get("updateTime")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

fn membership_feature_obs(mf: &MembershipFeature) -> MembershipFeatureObs {
    let raw = serde_json::to_value(mf).unwrap_or(Value::Null);
    MembershipFeatureObs {
        management: mf.management().map(str::to_string),
        control_plane: raw
            .pointer("/state/servicemesh/controlPlaneManagement")
            .and_then(cp_state),
        update_time: raw
            .get("updateTime")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// The unconditional bindings of a policy and its etag.
fn policy_obs(p: &IamPolicy) -> PolicyObs {
    PolicyObs {
        bindings: p
            .bindings
            .iter()
            .filter(|b| b.condition.is_none())
            .flat_map(|b| b.members.iter().map(|m| (b.role.clone(), m.clone())))
            .collect(),
        etag: p.etag.clone(),
    }
}

fn gke_obs(c: &Cluster) -> GkeObs {
    GkeObs {
        status: Some(c.status.clone()).filter(|s| !s.is_empty()),
        master_version: Some(c.current_master_version.clone()).filter(|s| !s.is_empty()),
        channel: c.channel().map(str::to_string),
        workload_pool: c.workload_pool().map(str::to_string),
        labels: c.resource_labels.clone(),
        self_link: Some(c.self_link.clone()).filter(|s| !s.is_empty()),
        label_fingerprint: Some(c.label_fingerprint.clone()).filter(|s| !s.is_empty()),
    }
}

/// Reads everything `plan_mesh` needs.
pub async fn observe(gcp: &GcpClients, env: &Environment, spec: &MeshSpec) -> (Observed, Handles) {
    observe_reusing(gcp, env, spec, None).await
}

/// [`observe`], reaching each cluster through the Kubernetes client of `reuse` when it has
/// one (a command's second observation, after applying, keeps its connections instead of
/// opening new ones to every cluster).
pub async fn observe_reusing(
    gcp: &GcpClients,
    env: &Environment,
    spec: &MeshSpec,
    reuse: Option<&Handles>,
) -> (Observed, Handles) {
    let fleet = spec.fleet_project.as_str();
    let mut projects: BTreeSet<String> = BTreeSet::new();
    projects.insert(fleet.to_string());
    for c in &spec.clusters {
        projects.insert(c.project.to_string());
    }
    let candidates: Vec<String> = iam::CANDIDATES.iter().map(|s| s.to_string()).collect();

    let number = async { gcp.crm.project_number(fleet).await.map_err(|e| message(&e)) };
    let services = async {
        gcp.serviceusage
            .enabled_ids(fleet)
            .await
            .map(|ids| {
                ids.into_iter()
                    .map(|s| {
                        if s.contains('.') {
                            s
                        } else {
                            format!("{s}.googleapis.com")
                        }
                    })
                    .collect::<BTreeSet<String>>()
            })
            .map_err(|e| message(&e))
    };
    let memberships = async {
        match gcp.gkehub.list_memberships(fleet).await {
            Ok(ms) => Ok(ms.iter().map(membership_obs).collect::<Vec<_>>()),
            Err(e) if e.service_disabled().is_some() => Ok(Vec::new()),
            Err(e) => Err(message(&e)),
        }
    };
    let feature = async {
        match gcp.gkehub.get_feature(fleet, "servicemesh").await {
            Ok(f) => Ok(f.as_ref().map(feature_obs)),
            Err(e) if e.service_disabled().is_some() => Ok(None),
            Err(e) => Err(message(&e)),
        }
    };
    let permissions = join_all(projects.iter().map(|p| {
        let candidates = &candidates;
        async move {
            let r = gcp
                .crm
                .test_iam_permissions(p, candidates)
                .await
                .map(|granted| granted.into_iter().collect::<BTreeSet<String>>())
                .map_err(|e| message(&e));
            (p.clone(), r)
        }
    }));
    let policies = join_all(
        iam_bindings::resources(spec)
            .into_iter()
            .map(|r| async move {
                let read = match &r {
                    PolicyResource::Project(p) => gcp.crm.get_iam_policy(p.as_str()).await,
                    PolicyResource::CaPool(pool) => gcp.privateca.get_pool_iam_policy(pool).await,
                };
                (
                    r.name(),
                    read.map(|p| policy_obs(&p)).map_err(|e| message(&e)),
                )
            }),
    );
    let clusters = read_clusters(gcp, &spec.clusters);
    let (number, services, memberships, feature, permissions, policies, clusters) = tokio::join!(
        number,
        services,
        memberships,
        feature,
        permissions,
        policies,
        clusters
    );

    let permissions: BTreeMap<String, Result<BTreeSet<String>, String>> =
        permissions.into_iter().collect();
    let fleet_obs = FleetObs {
        project_number: number,
        enabled_services: services,
        memberships,
        feature,
    };

    // Wave 2: each cluster's Kubernetes API and membership feature.
    let number = fleet_obs.project_number.as_ref().ok().cloned();
    let wave2 = join_all(
        spec.clusters
            .iter()
            .zip(&clusters)
            .enumerate()
            .map(|(i, (c, g))| {
                let fleet_obs = &fleet_obs;
                let number = number.clone();
                let existing = reuse.and_then(|h| h.kube.get(i)).and_then(Option::as_ref);
                async move {
                    observe_cluster(gcp, env, spec, c, g, fleet_obs, number.as_deref(), existing)
                        .await
                }
            }),
    )
    .await;

    let mut handles = Handles::default();
    let mut cluster_obs = Vec::new();
    for (obs, gke, kube) in wave2 {
        cluster_obs.push(obs);
        handles.gke.push(gke);
        handles.kube.push(kube);
    }
    (
        Observed {
            fleet: fleet_obs,
            clusters: cluster_obs,
            permissions,
            policies: policies.into_iter().collect(),
        },
        handles,
    )
}

/// The GKE clusters of `clusters` (same order; `None` when absent). A project with several of
/// them is read with one list (a fleet-wide read instead of one GET per cluster); a list the
/// caller may not make, or one cluster, falls back to GETs.
async fn read_clusters(
    gcp: &GcpClients,
    clusters: &[ClusterRef],
) -> Vec<crate::gcp::GcpResult<Option<Cluster>>> {
    let mut per_project: BTreeMap<&str, usize> = BTreeMap::new();
    for c in clusters {
        *per_project.entry(c.project.as_str()).or_default() += 1;
    }
    let lists: BTreeMap<&str, Vec<Cluster>> = join_all(
        per_project
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(p, _)| async move { (*p, gcp.container.list_clusters(p, None).await) }),
    )
    .await
    .into_iter()
    .filter_map(|(p, r)| r.ok().map(|l| (p, l)))
    .collect();
    join_all(clusters.iter().map(|c| {
        let listed = lists.get(c.project.as_str());
        async move {
            if let Some(list) = listed {
                return Ok(list
                    .iter()
                    .find(|g| g.name == c.name.as_str() && g.location == c.location.as_str())
                    .cloned());
            }
            gcp.container
                .get_cluster_opt(c.project.as_str(), c.location.as_str(), c.name.as_str())
                .await
        }
    }))
    .await
}

#[allow(clippy::too_many_arguments)]
async fn observe_cluster(
    gcp: &GcpClients,
    env: &Environment,
    spec: &MeshSpec,
    c: &ClusterRef,
    gke: &crate::gcp::GcpResult<Option<Cluster>>,
    fleet_obs: &FleetObs,
    number: Option<&str>,
    existing: Option<&KubeContext>,
) -> (ClusterObs, Option<Cluster>, Option<KubeContext>) {
    let cluster = match gke {
        Ok(Some(cl)) => cl.clone(),
        Ok(None) => {
            return (
                ClusterObs {
                    gke: Ok(None),
                    kube: None,
                    membership_feature: None,
                },
                None,
                None,
            );
        }
        Err(e) => {
            return (
                ClusterObs {
                    gke: Err(message(e)),
                    kube: None,
                    membership_feature: None,
                },
                None,
                None,
            );
        }
    };
    let membership = fleet_obs
        .memberships
        .as_ref()
        .ok()
        .and_then(|ms| fleet::find_membership(ms, c, number).cloned());
    let kube = async {
        let ctx = match (existing, &spec.kube) {
            (Some(ctx), _) => Ok(ctx.clone()),
            (None, KubeAccess::Gke) => client_for_gke(&cluster, &gcp.bearer(), gcp.trace()),
            (None, KubeAccess::Kubeconfig { path, context }) => {
                client_from_kubeconfig(env, path.as_deref(), context.as_deref(), gcp.trace()).await
            }
        };
        match ctx {
            Ok(ctx) => {
                let obs = observe_kube(&ctx).await;
                (Some(obs), Some(ctx))
            }
            Err(e) => (Some(Err(e.to_error().message)), None),
        }
    };
    let mf = async {
        let m = membership.as_ref()?;
        let r = match gcp
            .gkehub
            .get_membership_feature(
                spec.fleet_project.as_str(),
                m.location(),
                m.id(),
                "servicemesh",
            )
            .await
        {
            Ok(mf) => Ok(mf.as_ref().map(membership_feature_obs)),
            Err(e) if e.service_disabled().is_some() => Ok(None),
            Err(e) => Err(message(&e)),
        };
        Some(r)
    };
    let ((kube_obs, ctx), mf) = tokio::join!(kube, mf);
    (
        ClusterObs {
            gke: Ok(Some(gke_obs(&cluster))),
            kube: kube_obs,
            membership_feature: mf,
        },
        Some(cluster),
        ctx,
    )
}

/// Runs an idempotent Kubernetes call (a read or a server-side apply) under the Kubernetes
/// retry policy ([`crate::retry::kube`]).
pub async fn kube_retry<T, F, Fut>(call: F) -> KubeResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = KubeResult<T>>,
{
    crate::retry::kube(&crate::retry::RetryPolicy::kubernetes(), call).await
}

/// Reads the in-cluster state. A read the caller may not make (403) is recorded in
/// [`KubeObs::forbidden`] and read as absent, so it is reported as a missing permission; any
/// other failed read makes the cluster "not reachable".
pub async fn observe_kube(ctx: &KubeContext) -> Result<KubeObs, String> {
    let client = &ctx.client;
    let version = async {
        kube_retry(|| async {
            client
                .apiserver_version()
                .await
                .map_err(|e| KubeError::from_kube("GET /version", e))
        })
        .await
        .map(|v| v.git_version)
    };
    let ns = async {
        kube_retry(|| get_opt(client, "v1", "Namespace", None, NAMESPACE))
            .await
            .map(|o| o.map(|o| rv(&o)))
    };
    let crd = async {
        kube_retry(|| {
            get_opt(
                client,
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                CPR_CRD,
            )
        })
        .await
        .map(|o| {
            o.map(|o| {
                let established = serde_json::to_value(&o)
                    .map(|v| has_true_condition(&v, "Established"))
                    .unwrap_or(false);
                (established, rv(&o))
            })
        })
    };
    let cm = async {
        kube_retry(|| get_opt(client, "v1", "ConfigMap", Some(NAMESPACE), ASM_OPTIONS))
            .await
            .map(|o| {
                o.map(|o| {
                    let opts = o
                        .data
                        .pointer("/data/ASM_OPTS")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    (opts, rv(&o))
                })
            })
    };
    let cprs = list_cprs_versioned(ctx);
    let istiod = async {
        use k8s_openapi::api::apps::v1::Deployment;
        use kube::api::{Api, ListParams};
        let api: Api<Deployment> = Api::all(client.clone());
        let lp = ListParams::default().labels("app=istiod");
        kube_retry(|| async {
            api.list(&lp)
                .await
                .map_err(|e| KubeError::from_kube("list Deployments", e))
        })
        .await
        .map(|l| {
            l.items
                .iter()
                .map(|d| {
                    format!(
                        "{}/{}",
                        d.metadata.namespace.clone().unwrap_or_default(),
                        d.metadata.name.clone().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
        })
    };
    let (version, ns, crd, cm, cprs, istiod) = tokio::join!(version, ns, crd, cm, cprs, istiod);
    let mut forbidden = Vec::new();
    let version = permitted(version, "get /version", &mut forbidden)?;
    let ns = permitted(ns, "get namespaces", &mut forbidden)?;
    let crd = permitted(
        crd,
        "get customresourcedefinitions.apiextensions.k8s.io",
        &mut forbidden,
    )?;
    let cm = permitted(
        cm,
        &format!("get configmaps in {NAMESPACE}"),
        &mut forbidden,
    )?;
    let cprs = permitted(
        cprs,
        &format!("list controlplanerevisions.mesh.cloud.google.com in {NAMESPACE}"),
        &mut forbidden,
    )?;
    let istiod = permitted(istiod, "list deployments.apps", &mut forbidden)?;
    let mut versions = BTreeMap::new();
    if let Some(v) = &ns {
        versions.insert(format!("Namespace/{NAMESPACE}"), v.clone());
    }
    if let Some((_, v)) = &crd {
        versions.insert(format!("CustomResourceDefinition/{CPR_CRD}"), v.clone());
    }
    if let Some((_, v)) = &cm {
        versions.insert(format!("ConfigMap/{NAMESPACE}/{ASM_OPTIONS}"), v.clone());
    }
    for (r, v) in &cprs {
        versions.insert(
            format!("ControlPlaneRevision/{NAMESPACE}/{}", r.name),
            v.clone(),
        );
    }
    Ok(KubeObs {
        version,
        namespace: ns.is_some(),
        crd: crd.map(|(e, _)| e),
        asm_options: cm.map(|(o, _)| o),
        cprs: cprs.into_iter().map(|(r, _)| r).collect(),
        istiod,
        versions,
        forbidden,
    })
}

/// A read's result: a 403 is recorded as the missing permission `what` and read as the
/// default (absent); any other failure is the cluster's error.
pub fn permitted<T: Default>(
    r: KubeResult<T>,
    what: &str,
    forbidden: &mut Vec<String>,
) -> Result<T, String> {
    match r {
        Ok(v) => Ok(v),
        Err(e) if e.status().is_some_and(|s| s.code == 403) => {
            forbidden.push(what.to_string());
            Ok(T::default())
        }
        Err(e) => Err(e.to_string()),
    }
}

fn rv(o: &kube::api::DynamicObject) -> String {
    o.metadata.resource_version.clone().unwrap_or_default()
}

/// The ControlPlaneRevisions in istio-system (empty when the CRD is not served).
pub async fn list_cprs(ctx: &KubeContext) -> Result<Vec<CprObs>, String> {
    list_cprs_versioned(ctx)
        .await
        .map(|v| v.into_iter().map(|(r, _)| r).collect())
        .map_err(|e| e.to_string())
}

/// [`list_cprs`] with each object's `resourceVersion`.
async fn list_cprs_versioned(ctx: &KubeContext) -> KubeResult<Vec<(CprObs, String)>> {
    use kube::api::ListParams;
    use kube::core::GroupVersionKind;
    let client = &ctx.client;
    let gvk = GroupVersionKind::gvk("mesh.cloud.google.com", "v1beta1", "ControlPlaneRevision");
    let (ar, scope) = match kube_retry(|| resolve_resource(client, &gvk)).await {
        Ok(r) => r,
        Err(e) if e.status().is_some_and(|s| s.code == 404) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let api = dynamic_api(client, &ar, &scope, Some(NAMESPACE));
    let lp = ListParams::default();
    let listed = kube_retry(|| async {
        api.list(&lp)
            .await
            .map_err(|e| KubeError::from_kube("list ControlPlaneRevisions", e))
    })
    .await;
    match listed {
        Ok(list) => Ok(list
            .items
            .iter()
            .map(|o| {
                let v = serde_json::to_value(o).unwrap_or(Value::Null);
                let cpr = CprObs {
                    name: o.metadata.name.clone().unwrap_or_default(),
                    channel: v
                        .pointer("/spec/channel")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    tags: o
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(TAGS_ANNOTATION).cloned()),
                    provisioning_finished: has_true_condition(&v, "ProvisioningFinished"),
                };
                (cpr, rv(o))
            })
            .collect()),
        // The group is not served yet (no CRD): the apiserver's plain-text 404.
        Err(e) if e.status().is_some_and(|s| s.code == 404) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// What a saved plan was made from: one human-readable descriptor per thing observed
/// (project number, enabled APIs, memberships and the fleet feature with its `updateTime`,
/// each cluster's status and `labelFingerprint`, each Kubernetes object's
/// `resourceVersion`, permissions). `asm apply` recomputes it and refuses when it differs.
pub fn fingerprint(spec: &MeshSpec, obs: &Observed) -> BTreeMap<String, String> {
    fn or_err<T>(r: &Result<T, String>, f: impl FnOnce(&T) -> String) -> String {
        match r {
            Ok(v) => f(v),
            Err(e) => format!("unreadable ({e})"),
        }
    }
    let fleet = &spec.fleet_project;
    let mut m = BTreeMap::new();
    m.insert(
        format!("project {fleet}: number"),
        or_err(&obs.fleet.project_number, Clone::clone),
    );
    m.insert(
        format!("project {fleet}: mesh APIs enabled"),
        or_err(&obs.fleet.enabled_services, |s| {
            let on: Vec<&str> = super::apis::wanted(spec)
                .into_iter()
                .filter(|x| s.contains(*x))
                .collect();
            if on.is_empty() {
                "none".into()
            } else {
                on.join(",")
            }
        }),
    );
    m.insert(
        format!("fleet {fleet}: memberships"),
        or_err(&obs.fleet.memberships, |ms| {
            let mut v: Vec<String> = ms
                .iter()
                .map(|x| format!("{} {}", x.name, x.state.as_deref().unwrap_or("-")))
                .collect();
            v.sort();
            if v.is_empty() {
                "none".into()
            } else {
                v.join(", ")
            }
        }),
    );
    m.insert(
        format!("fleet {fleet}: servicemesh feature"),
        or_err(&obs.fleet.feature, |f| match f {
            None => "absent".into(),
            Some(f) => format!(
                "state={} updateTime={}",
                f.state.as_deref().unwrap_or("-"),
                f.update_time.as_deref().unwrap_or("-")
            ),
        }),
    );
    for (resource, policy) in &obs.policies {
        m.insert(
            format!("{resource}: IAM policy"),
            or_err(policy, |p| format!("etag={}", p.etag)),
        );
    }
    for (project, granted) in &obs.permissions {
        m.insert(
            format!("project {project}: permissions granted"),
            or_err(granted, |g| g.iter().cloned().collect::<Vec<_>>().join(",")),
        );
    }
    for (c, o) in spec.clusters.iter().zip(&obs.clusters) {
        m.insert(
            format!("cluster {c}: GKE"),
            or_err(&o.gke, |g| match g {
                None => "absent".into(),
                Some(g) => format!(
                    "status={} labelFingerprint={} workloadPool={} channel={} labels={}",
                    g.status.as_deref().unwrap_or("-"),
                    g.label_fingerprint.as_deref().unwrap_or("-"),
                    g.workload_pool.as_deref().unwrap_or("-"),
                    g.channel.as_deref().unwrap_or("-"),
                    g.labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            }),
        );
        let kube = match &o.kube {
            None => "not read".to_string(),
            Some(Err(e)) => format!("unreachable ({e})"),
            Some(Ok(k)) => {
                let mut objects = vec![
                    format!("Namespace/{NAMESPACE}"),
                    format!("CustomResourceDefinition/{CPR_CRD}"),
                    format!("ConfigMap/{NAMESPACE}/{ASM_OPTIONS}"),
                ];
                objects.extend(k.versions.keys().cloned());
                objects.sort();
                objects.dedup();
                for key in objects {
                    let v = k
                        .versions
                        .get(&key)
                        .map(|rv| format!("resourceVersion={rv}"))
                        .unwrap_or_else(|| "absent".into());
                    m.insert(format!("cluster {c}: {key}"), v);
                }
                format!(
                    "version={} istiod={}",
                    k.version,
                    if k.istiod.is_empty() {
                        "none".to_string()
                    } else {
                        k.istiod.join(",")
                    }
                )
            }
        };
        m.insert(format!("cluster {c}: Kubernetes"), kube);
        let mf = match &o.membership_feature {
            None => "not read".to_string(),
            Some(Err(e)) => format!("unreadable ({e})"),
            Some(Ok(None)) => "absent".into(),
            Some(Ok(Some(f))) => format!(
                "management={} state={} updateTime={}",
                f.management.as_deref().unwrap_or("-"),
                f.control_plane
                    .as_ref()
                    .and_then(|s| s.state.clone())
                    .unwrap_or_else(|| "-".into()),
                f.update_time.as_deref().unwrap_or("-")
            ),
        };
        m.insert(format!("cluster {c}: servicemesh membership feature"), mf);
    }
    m
}
