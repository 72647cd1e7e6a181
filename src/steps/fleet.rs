//! The fleet: project number, the `servicemesh` feature, memberships.

use crate::plan::{Check, CheckStatus, Op, Target};
use crate::spec::ClusterRef;

use super::{ClusterPlan, MembershipObs, Planner, Step, codes, estimate};

/// Facts about the fleet project later steps need.
#[derive(Debug, Clone, Default)]
pub struct FleetPlan {
    pub project_number: Option<String>,
}

pub const GKEHUB_API: &str = "gkehub.googleapis.com/v1";

/// Checks that the fleet project's number is known (the mesh id and membership keys use it).
pub fn plan_project(p: &mut Planner) -> FleetPlan {
    let project = p.spec.fleet_project.clone();
    p.require(&project, "resourcemanager.projects.get");
    match &p.obs.fleet.project_number {
        Ok(n) => {
            p.check(Check::new(
                codes::PROJECT,
                CheckStatus::Ok,
                None,
                format!("fleet project {project} (number {n})"),
            ));
            FleetPlan {
                project_number: Some(n.clone()),
            }
        }
        Err(e) => {
            p.check(
                Check::new(
                    codes::PROJECT,
                    CheckStatus::Fail,
                    None,
                    format!("cannot read fleet project {project}: {e}"),
                )
                .hint("check the project ID and that you may call resourcemanager.projects.get"),
            );
            FleetPlan::default()
        }
    }
}

/// The fleet `servicemesh` feature: create it when absent (a GCP component).
pub fn plan_feature(p: &mut Planner, apis: Option<&str>) -> Option<String> {
    let project = p.spec.fleet_project.clone();
    p.require(&project, "gkehub.features.get");
    match &p.obs.fleet.feature {
        Ok(Some(f)) => {
            let state = f.state.as_deref().unwrap_or("UNKNOWN");
            let status = if state == "ACTIVE" {
                CheckStatus::Ok
            } else {
                CheckStatus::Warn
            };
            p.check(Check::new(
                codes::FEATURE,
                status,
                None,
                format!("fleet servicemesh feature exists ({state})"),
            ));
            None
        }
        Ok(None) => {
            p.require(&project, "gkehub.features.create");
            let message = format!("fleet servicemesh feature is not enabled on {project}");
            if p.spec.enable.components {
                let id = "fleet/servicemesh-feature".to_string();
                p.check(
                    Check::new(codes::FEATURE, CheckStatus::Fix, None, message)
                        .hint(format!("{id} enables it")),
                );
                Some(p.action(
                    id,
                    Op::Create,
                    None,
                    Target {
                        api: GKEHUB_API.into(),
                        kind: "Feature".into(),
                        namespace: None,
                        name: format!("projects/{project}/locations/global/features/servicemesh"),
                    },
                    "the servicemesh feature does not exist",
                    apis.map(str::to_string).into_iter().collect(),
                    format!("Would enable the fleet servicemesh feature on project {project}"),
                    format!("Enabled the fleet servicemesh feature on project {project}"),
                    estimate::CREATE_FEATURE,
                    Step::CreateFeature { project },
                ))
            } else {
                p.check(
                    Check::new(codes::FEATURE, CheckStatus::Fail, None, message)
                        .hint("pass --managed, --enable-gcp-components or --enable-all"),
                );
                None
            }
        }
        Err(e) => {
            p.check(
                Check::new(
                    codes::FEATURE,
                    CheckStatus::Fail,
                    None,
                    format!("cannot read the fleet servicemesh feature: {e}"),
                )
                .hint("retry; check gkehub.features.get on the fleet project"),
            );
            None
        }
    }
}

/// Whether a membership's `resourceLink` points at `cluster` (the link's host and prefix
/// depend on the container endpoint, so only the `projects/…/clusters/N` suffix counts).
pub fn links_to(link: &str, cluster: &ClusterRef, project_number: Option<&str>) -> bool {
    let Some(i) = link.find("projects/") else {
        return false;
    };
    let parts: Vec<&str> = link[i..].split('/').collect();
    let [_, proj, kind, loc, clusters, name] = parts.as_slice() else {
        return false;
    };
    (*proj == cluster.project.as_str() || Some(*proj) == project_number)
        && (*kind == "locations" || *kind == "zones")
        && *loc == cluster.location.as_str()
        && *clusters == "clusters"
        && *name == cluster.name.as_str()
}

/// The membership of `cluster` among `memberships`, if registered.
pub fn find_membership<'m>(
    memberships: &'m [MembershipObs],
    cluster: &ClusterRef,
    project_number: Option<&str>,
) -> Option<&'m MembershipObs> {
    memberships.iter().find(|m| {
        m.resource_link
            .as_deref()
            .is_some_and(|l| links_to(l, cluster, project_number))
    })
}

/// The id to register `cluster` under: its name, or `NAME-PROJECT-LOCATION` when another
/// cluster's membership has that id; at most 63 characters.
pub fn membership_id(memberships: &[MembershipObs], cluster: &ClusterRef) -> String {
    let taken = |id: &str| memberships.iter().any(|m| m.id() == id);
    let name = cluster.name.to_string();
    if !taken(&name) {
        return name;
    }
    let long = format!(
        "{}-{}-{}",
        cluster.name,
        cluster.project.as_str().replace([':', '.'], "-"),
        cluster.location
    );
    let mut id: String = long.chars().take(63).collect();
    while id.ends_with('-') {
        id.pop();
    }
    id
}

/// Registration of cluster `i` to the fleet.
/// `deps`: what registration waits for (the APIs, the GKE Hub agent's binding).
pub fn plan_membership(p: &mut Planner, i: usize, cp: &mut ClusterPlan, deps: &[String]) {
    let c = p.cluster(i).clone();
    let label = p.label(i);
    let fleet = p.spec.fleet_project.clone();
    let cluster_s = c.to_string();
    let number = p.obs.fleet.project_number.as_ref().ok().cloned();
    p.require(&fleet, "gkehub.memberships.list");
    let memberships = match &p.obs.fleet.memberships {
        Ok(m) => m.clone(),
        Err(e) => {
            p.check(
                Check::new(
                    codes::MEMBERSHIP,
                    CheckStatus::Fail,
                    Some(&cluster_s),
                    format!("cannot list the fleet memberships of {fleet}: {e}"),
                )
                .hint("retry; check gkehub.memberships.list on the fleet project"),
            );
            return;
        }
    };
    if let Some(m) = find_membership(&memberships, &c, number.as_deref()) {
        let state = m.state.as_deref().unwrap_or("UNKNOWN");
        let status = if state == "READY" {
            CheckStatus::Ok
        } else {
            CheckStatus::Warn
        };
        p.check(Check::new(
            codes::MEMBERSHIP,
            status,
            Some(&cluster_s),
            format!("registered to fleet {fleet} as {} ({state})", m.name),
        ));
        cp.membership = Some((m.location().to_string(), m.id().to_string()));
        return;
    }
    p.require(&fleet, "gkehub.memberships.create");
    let location = c.location.region().to_string();
    let id = membership_id(&memberships, &c);
    let message = format!("not registered to fleet {fleet}");
    if !p.spec.enable.registration {
        p.check(
            Check::new(
                codes::MEMBERSHIP,
                CheckStatus::Fail,
                Some(&cluster_s),
                message,
            )
            .hint("pass --enable-registration or --enable-all, or register the cluster first"),
        );
        return;
    }
    let action_id = format!("{label}/membership");
    p.check(
        Check::new(
            codes::MEMBERSHIP,
            CheckStatus::Fix,
            Some(&cluster_s),
            message,
        )
        .hint(format!("{action_id} registers it as {id}")),
    );
    let mut deps: Vec<String> = deps.to_vec();
    // Fleet workload identity needs the cluster's workload identity first.
    deps.extend(cp.workload_identity.clone());
    let id_done = p.action(
        action_id,
        Op::Create,
        Some(i),
        Target {
            api: GKEHUB_API.into(),
            kind: "Membership".into(),
            namespace: None,
            name: format!("projects/{fleet}/locations/{location}/memberships/{id}"),
        },
        format!("cluster {} is not a member of fleet {fleet}", c.name),
        deps,
        format!(
            "Would register cluster {} to fleet {fleet} as {location}/{id}",
            c.name
        ),
        format!(
            "Registered cluster {} to fleet {fleet} as {location}/{id}",
            c.name
        ),
        estimate::MEMBERSHIP,
        Step::RegisterMembership {
            cluster: i,
            location: location.clone(),
            id: id.clone(),
        },
    );
    cp.fleet_deps.push(id_done);
    cp.membership = Some((location, id));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cref() -> ClusterRef {
        ClusterRef::parse("asm-fresh/us-central1-c/cluster-1").unwrap()
    }

    #[test]
    fn resource_links_match_by_suffix() {
        let c = cref();
        assert!(links_to(
            "//container.googleapis.com/projects/asm-fresh/locations/us-central1-c/clusters/cluster-1",
            &c,
            None
        ));
        assert!(links_to(
            "//127.0.0.1:9/container/projects/123/zones/us-central1-c/clusters/cluster-1",
            &c,
            Some("123")
        ));
        assert!(!links_to(
            "//container.googleapis.com/projects/asm-fresh/locations/us-central1-c/clusters/cluster-10",
            &c,
            None
        ));
        assert!(!links_to("garbage", &c, None));
    }

    #[test]
    fn membership_ids_avoid_other_clusters() {
        let c = cref();
        assert_eq!(membership_id(&[], &c), "cluster-1");
        let other = MembershipObs {
            name: "projects/asm-fresh/locations/us-central1/memberships/cluster-1".into(),
            resource_link: Some("//x/projects/other/locations/us-east1/clusters/cluster-1".into()),
            state: None,
        };
        assert_eq!(other.location(), "us-central1");
        assert_eq!(
            membership_id(&[other], &c),
            "cluster-1-asm-fresh-us-central1-c"
        );
    }
}
