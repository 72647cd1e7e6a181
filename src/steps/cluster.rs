//! The GKE cluster: exists and reachable, Kubernetes version, release channel, workload
//! identity, the `mesh_id` label. GKE allows one operation per cluster at a time, so this
//! cluster's mutations form a chain.

use crate::gcp::container::Cluster;
use crate::kube::client::ClusterEndpoint;
use crate::plan::{Check, CheckStatus, Op, Target};
use crate::spec::Channel;

use super::{ClusterPlan, GkeObs, Planner, Step, codes, estimate};

pub const CONTAINER_API: &str = "container.googleapis.com/v1";

/// Oldest Kubernetes minor version the managed control plane supports.
pub const MIN_KUBE_MINOR: (u32, u32) = (1, 26);

/// `1.32.6-gke.1025000` or `v1.32.6` → (1, 32).
pub fn minor_version(v: &str) -> Option<(u32, u32)> {
    let v = v.trim_start_matches('v');
    let mut parts = v.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The label key and value the mesh needs: `mesh_id=proj-NUMBER`.
pub fn mesh_id(project_number: &str) -> (String, String) {
    ("mesh_id".into(), format!("proj-{project_number}"))
}

/// How the Kubernetes client reaches a GKE cluster: its endpoint and CA. (Here, where both
/// the Google and the Kubernetes layer are known, so neither depends on the other.)
impl From<&Cluster> for ClusterEndpoint {
    fn from(c: &Cluster) -> Self {
        ClusterEndpoint {
            name: c.name.clone(),
            server_url: if c.endpoint.is_empty() {
                String::new()
            } else {
                c.server_url()
            },
            ca_certificate: c
                .master_auth
                .as_ref()
                .map(|m| m.cluster_ca_certificate.clone())
                .unwrap_or_default(),
        }
    }
}

/// Plans cluster `i`; returns what later steps need.
pub fn plan(p: &mut Planner, i: usize, project_number: Option<&str>) -> ClusterPlan {
    let c = p.cluster(i).clone();
    let cs = c.to_string();
    let label = p.label(i);
    p.require(&c.project, "container.clusters.get");
    let mut cp = ClusterPlan {
        channel: Channel::Regular,
        ..Default::default()
    };
    let obs = &p.obs.clusters[i];
    let gke: GkeObs = match &obs.gke {
        Ok(Some(g)) => g.clone(),
        Ok(None) => {
            p.check(
                Check::new(
                    codes::CLUSTER_EXISTS,
                    CheckStatus::Fail,
                    Some(&cs),
                    format!("cluster {} not found in {}/{}", c.name, c.project, c.location),
                )
                .hint("check -p/-l/-n (or --cluster); `gcloud container clusters list` shows the clusters"),
            );
            return cp;
        }
        Err(e) => {
            p.check(
                Check::new(
                    codes::CLUSTER_EXISTS,
                    CheckStatus::Fail,
                    Some(&cs),
                    format!("cannot read cluster {}: {e}", c.name),
                )
                .hint("check the project, location and your container.clusters.get permission"),
            );
            return cp;
        }
    };
    let status = gke.status.clone().unwrap_or_else(|| "UNKNOWN".into());
    let version = gke.master_version.clone().unwrap_or_default();
    let running = matches!(status.as_str(), "RUNNING" | "RECONCILING");
    p.check(
        Check::new(
            codes::CLUSTER_EXISTS,
            if running {
                CheckStatus::Ok
            } else {
                CheckStatus::Fail
            },
            Some(&cs),
            format!("cluster exists ({status}, GKE {version})"),
        )
        .hint_if(!running, "wait until the cluster is RUNNING"),
    );
    if !running {
        return cp;
    }
    cp.usable = true;

    match &obs.kube {
        Some(Ok(k)) => {
            p.check(Check::new(
                codes::CLUSTER_REACHABLE,
                CheckStatus::Ok,
                Some(&cs),
                format!("Kubernetes API reachable ({})", k.version),
            ));
            for what in &k.forbidden {
                p.check(missing_kube_permission(&cs, what));
            }
        }
        Some(Err(e)) => p.check(
            Check::new(
                codes::CLUSTER_REACHABLE,
                CheckStatus::Fail,
                Some(&cs),
                format!("Kubernetes API not reachable: {e}"),
            )
            .hint("check network access to the cluster endpoint (authorized networks, private clusters)"),
        ),
        None => {}
    }

    // Kubernetes version.
    let kube_version = obs
        .kube
        .as_ref()
        .and_then(|k| k.as_ref().ok())
        .map(|k| k.version.clone());
    let shown = if version.is_empty() {
        kube_version.clone().unwrap_or_default()
    } else {
        version.clone()
    };
    match minor_version(&shown) {
        Some(v) if v >= MIN_KUBE_MINOR => p.check(Check::new(
            codes::KUBE_VERSION,
            CheckStatus::Ok,
            Some(&cs),
            format!("Kubernetes {}.{} is supported", v.0, v.1),
        )),
        Some(v) => p.check(
            Check::new(
                codes::KUBE_VERSION,
                CheckStatus::Fail,
                Some(&cs),
                format!(
                    "Kubernetes {}.{} is too old (the managed control plane needs {}.{} or newer)",
                    v.0, v.1, MIN_KUBE_MINOR.0, MIN_KUBE_MINOR.1
                ),
            )
            .hint("upgrade the cluster's control plane"),
        ),
        None => p.check(Check::new(
            codes::KUBE_VERSION,
            CheckStatus::Warn,
            Some(&cs),
            format!("cannot tell the Kubernetes version from {shown:?}"),
        )),
    }

    // Release channel → which revision.
    cp.channel = Channel::from_gke(gke.channel.as_deref());
    let gke_channel = gke.channel.clone().unwrap_or_else(|| "none".into());
    match p.spec.channel {
        Some(want) if want != cp.channel => p.check(
            Check::new(
                codes::CHANNEL,
                CheckStatus::Warn,
                Some(&cs),
                format!(
                    "GKE channel {gke_channel} gives revision {}; --channel {want} only adds the tag {}",
                    cp.channel.revision(),
                    want.revision()
                ),
            )
            .hint("the control plane follows the cluster's release channel; change the cluster's channel to change the revision"),
        ),
        _ => p.check(Check::new(
            codes::CHANNEL,
            CheckStatus::Ok,
            Some(&cs),
            format!(
                "GKE channel {gke_channel}: revision {}",
                cp.channel.revision()
            ),
        )),
    }

    // Workload identity.
    let pool = format!("{}.svc.id.goog", c.project);
    match &gke.workload_pool {
        Some(wp) => p.check(Check::new(
            codes::WORKLOAD_IDENTITY,
            CheckStatus::Ok,
            Some(&cs),
            format!("workload identity on (pool {wp})"),
        )),
        None => {
            p.require(&c.project, "container.clusters.update");
            let message = "workload identity is off".to_string();
            if p.spec.enable.components {
                let id = format!("{label}/workload-identity");
                p.check(
                    Check::new(
                        codes::WORKLOAD_IDENTITY,
                        CheckStatus::Fix,
                        Some(&cs),
                        message,
                    )
                    .hint(format!("{id} turns it on")),
                );
                let id = p.action(
                    id,
                    Op::Update,
                    Some(i),
                    Target {
                        api: CONTAINER_API.into(),
                        kind: "Cluster".into(),
                        namespace: None,
                        name: c.resource_name(),
                    },
                    "workloadIdentityConfig is not set",
                    cp.gke_chain.clone(),
                    format!(
                        "Would enable workload identity (pool {pool}) on cluster {}",
                        c.name
                    ),
                    format!(
                        "Enabled workload identity (pool {pool}) on cluster {}",
                        c.name
                    ),
                    estimate::WORKLOAD_IDENTITY,
                    Step::EnableWorkloadIdentity {
                        cluster: i,
                        pool: pool.clone(),
                    },
                );
                cp.workload_identity = Some(id.clone());
                cp.gke_chain.push(id);
            } else {
                p.check(
                    Check::new(codes::WORKLOAD_IDENTITY, CheckStatus::Fail, Some(&cs), message)
                        .hint("pass --managed, --enable-gcp-components or --enable-all, or enable workload identity first"),
                );
            }
        }
    }

    // mesh_id label.
    if let Some(number) = project_number {
        let (key, value) = mesh_id(number);
        match gke.labels.get(&key) {
            Some(v) if *v == value => p.check(Check::new(
                codes::MESH_ID_LABEL,
                CheckStatus::Ok,
                Some(&cs),
                format!("label {key}={value} is set"),
            )),
            current => {
                p.require(&c.project, "container.clusters.update");
                let message = match current {
                    Some(v) => format!("label {key}={v} should be {key}={value}"),
                    None => format!("label {key}={value} is missing"),
                };
                if p.spec.enable.cluster_labels {
                    let id = format!("{label}/mesh-id-label");
                    p.check(
                        Check::new(codes::MESH_ID_LABEL, CheckStatus::Fix, Some(&cs), message)
                            .hint(format!("{id} sets it (other labels are kept)")),
                    );
                    let id = p.action(
                        id,
                        Op::Update,
                        Some(i),
                        Target {
                            api: CONTAINER_API.into(),
                            kind: "Cluster".into(),
                            namespace: None,
                            name: c.resource_name(),
                        },
                        match current {
                            Some(v) => format!("resourceLabels has {key}={v}"),
                            None => format!("resourceLabels has no {key}"),
                        },
                        cp.gke_chain.clone(),
                        format!("Would set label {key}={value} on cluster {}", c.name),
                        format!("Set label {key}={value} on cluster {}", c.name),
                        estimate::LABELS,
                        Step::SetClusterLabel {
                            cluster: i,
                            key,
                            value,
                        },
                    );
                    cp.gke_chain.push(id);
                } else {
                    p.check(
                        Check::new(codes::MESH_ID_LABEL, CheckStatus::Fail, Some(&cs), message)
                            .hint("pass --enable-cluster-labels or --enable-all, or set the label first"),
                    );
                }
            }
        }
    }
    cp
}

trait HintIf {
    fn hint_if(self, cond: bool, hint: &str) -> Self;
}

impl HintIf for Check {
    fn hint_if(self, cond: bool, hint: &str) -> Self {
        if cond { self.hint(hint) } else { self }
    }
}

/// The failed check of a Kubernetes permission the caller lacks (`what`: `VERB RESOURCE [in
/// NAMESPACE]`), with the two ways asmcli's users grant it.
pub fn missing_kube_permission(cluster: &str, what: &str) -> Check {
    Check::new(
        codes::KUBE_PERMISSIONS,
        CheckStatus::Fail,
        Some(cluster),
        format!("missing Kubernetes permission: {what}"),
    )
    .hint(
        "grant the caller roles/container.admin on the cluster's project, or bind it to cluster-admin as asmcli does: kubectl create clusterrolebinding asm-admin --clusterrole=cluster-admin --user=CALLER",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(minor_version("1.32.6-gke.1025000"), Some((1, 32)));
        assert_eq!(minor_version("v1.32.6"), Some((1, 32)));
        assert_eq!(minor_version("junk"), None);
        assert!(minor_version("1.25.0").unwrap() < MIN_KUBE_MINOR);
    }
}
