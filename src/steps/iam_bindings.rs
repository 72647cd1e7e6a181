//! IAM bindings the mesh needs besides the caller's own permissions (those are
//! [`super::iam`]): the fleet host project's service agents on every other cluster project,
//! and, for Certificate Authority Service (`--ca gcp_cas`), the workload identity pool's
//! roles on the CA pool. One action per missing binding under `--enable-gcp-iam-roles`
//! (implied by `--managed` and `--enable-all`); without it, one failed check per binding.
//!
//! Which bindings: GKE Hub registers a cluster of project P in a fleet hosted in F only
//! when F's GKE Hub service agent holds `roles/gkehub.serviceAgent` on P, and the managed
//! control plane of F needs F's service mesh agent as `roles/anthosservicemesh.serviceAgent`
//! on P (https://cloud.google.com/service-mesh/docs/managed/provision-managed-anthos-service-mesh#cross-project);
//! workloads request certificates from a CA pool as `group:F.svc.id.goog:/allAuthenticatedUsers/`
//! (https://cloud.google.com/service-mesh/docs/security/certificate-authority-service).

use std::collections::BTreeMap;

use crate::plan::{Check, CheckStatus, Op, Target};
use crate::spec::{CertificateAuthority, ProjectId};

use super::{Planner, Step, codes, estimate};

/// The resource whose IAM policy holds a binding.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum PolicyResource {
    /// A project (cloudresourcemanager v1), by ID.
    Project(ProjectId),
    /// A CA Service pool (privateca v1): `projects/P/locations/L/caPools/N`.
    CaPool(String),
}

impl PolicyResource {
    /// `projects/P` or the pool's full name: the key of [`super::Observed::policies`].
    pub fn name(&self) -> String {
        match self {
            PolicyResource::Project(p) => format!("projects/{p}"),
            PolicyResource::CaPool(pool) => pool.clone(),
        }
    }

    /// `project P` / `CA pool projects/…/caPools/N`, for messages.
    pub fn describe(&self) -> String {
        match self {
            PolicyResource::Project(p) => format!("project {p}"),
            PolicyResource::CaPool(pool) => format!("CA pool {pool}"),
        }
    }

    /// `P` / `caPools/N`: the short form used in action ids.
    fn short(&self) -> String {
        match self {
            PolicyResource::Project(p) => p.to_string(),
            PolicyResource::CaPool(pool) => {
                let name = pool.rsplit('/').next().unwrap_or_default();
                format!("caPools/{name}")
            }
        }
    }

    fn api(&self) -> &'static str {
        match self {
            PolicyResource::Project(_) => "cloudresourcemanager.googleapis.com/v1",
            PolicyResource::CaPool(_) => "privateca.googleapis.com/v1",
        }
    }

    /// The gcloud command that adds a binding by hand.
    fn gcloud(&self, role: &str, member: &str) -> String {
        match self {
            PolicyResource::Project(p) => format!(
                "gcloud projects add-iam-policy-binding {p} --member={member} --role={role} --condition=None"
            ),
            PolicyResource::CaPool(pool) => {
                let parts: Vec<&str> = pool.split('/').collect();
                let (project, location, name) = match parts.as_slice() {
                    [_, p, _, l, _, n] => (*p, *l, *n),
                    _ => ("PROJECT", "LOCATION", pool.as_str()),
                };
                format!(
                    "gcloud privateca pools add-iam-policy-binding {name} --project={project} --location={location} --member={member} --role={role}"
                )
            }
        }
    }
}

/// One binding the mesh needs: `member` holds `role` on `resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedBinding {
    pub resource: PolicyResource,
    pub role: &'static str,
    pub member: String,
    /// Why it is needed, for the check.
    pub why: &'static str,
}

/// The unconditional bindings of one IAM policy, as `(role, member)` pairs, and its etag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyObs {
    pub bindings: std::collections::BTreeSet<(String, String)>,
    /// Part of the saved-plan fingerprint: a changed policy is a drifted plan.
    pub etag: String,
}

impl PolicyObs {
    /// Whether `member` holds `role` unconditionally.
    pub fn has(&self, role: &str, member: &str) -> bool {
        self.bindings
            .contains(&(role.to_string(), member.to_string()))
    }
}

/// `roles/gkehub.serviceAgent`: lets the fleet's GKE Hub agent read and register clusters.
pub const GKEHUB_AGENT_ROLE: &str = "roles/gkehub.serviceAgent";
/// `roles/anthosservicemesh.serviceAgent`: lets the fleet's mesh agent manage the control plane.
pub const MESH_AGENT_ROLE: &str = "roles/anthosservicemesh.serviceAgent";
/// CA pool roles of the mesh's workload identity pool.
pub const CA_POOL_ROLES: [&str; 2] = [
    "roles/privateca.workloadCertificateRequester",
    "roles/privateca.auditor",
];

/// The policies [`wanted`] will look at (known before the fleet project number is): every
/// cluster project other than the fleet project, and the CA pool.
pub fn resources(spec: &crate::spec::MeshSpec) -> Vec<PolicyResource> {
    let mut out: Vec<PolicyResource> = Vec::new();
    for c in &spec.clusters {
        let r = PolicyResource::Project(c.project.clone());
        if c.project != spec.fleet_project && !out.contains(&r) {
            out.push(r);
        }
    }
    if let Some(pool) = ca_pool(&spec.ca) {
        out.push(PolicyResource::CaPool(pool));
    }
    out
}

/// The pool of `--ca-pool` without a certificate template suffix.
fn ca_pool(ca: &CertificateAuthority) -> Option<String> {
    match ca {
        CertificateAuthority::PrivateCa { pool } => Some(
            pool.split_once(':')
                .map_or(pool.as_str(), |(p, _)| p)
                .to_string(),
        ),
        CertificateAuthority::MeshCa => None,
    }
}

/// Every binding the mesh needs, given the fleet project's number (service agents are named
/// after it).
pub fn wanted(spec: &crate::spec::MeshSpec, fleet_number: &str) -> Vec<WantedBinding> {
    let mut out = Vec::new();
    for r in resources(spec) {
        match &r {
            PolicyResource::Project(_) => {
                out.push(WantedBinding {
                    resource: r.clone(),
                    role: GKEHUB_AGENT_ROLE,
                    member: format!(
                        "serviceAccount:service-{fleet_number}@gcp-sa-gkehub.iam.gserviceaccount.com"
                    ),
                    why: "the fleet's GKE Hub service agent registers clusters of this project",
                });
                out.push(WantedBinding {
                    resource: r.clone(),
                    role: MESH_AGENT_ROLE,
                    member: format!(
                        "serviceAccount:service-{fleet_number}@gcp-sa-servicemesh.iam.gserviceaccount.com"
                    ),
                    why: "the fleet's service mesh agent manages the control plane of this project's clusters",
                });
            }
            PolicyResource::CaPool(_) => {
                for role in CA_POOL_ROLES {
                    out.push(WantedBinding {
                        resource: r.clone(),
                        role,
                        member: format!(
                            "group:{}.svc.id.goog:/allAuthenticatedUsers/",
                            spec.fleet_project
                        ),
                        why: "the mesh's workloads request their certificates from this pool",
                    });
                }
            }
        }
    }
    out
}

/// The role without `roles/` (action ids).
fn role_short(role: &str) -> &str {
    role.strip_prefix("roles/").unwrap_or(role)
}

/// Checks every wanted binding and plans one action per missing one (when allowed).
/// Returns the action ids by resource, for the steps that need the bindings first.
pub fn plan(p: &mut Planner, apis: Option<&str>) -> BTreeMap<PolicyResource, Vec<String>> {
    let mut planned: BTreeMap<PolicyResource, Vec<String>> = BTreeMap::new();
    let Ok(number) = p.obs.fleet.project_number.clone() else {
        // The fleet project check already fails; the agents' names are unknown.
        return planned;
    };
    for w in wanted(p.spec, &number) {
        let resource = w.resource.name();
        if let PolicyResource::Project(project) = &w.resource {
            p.require(project, "resourcemanager.projects.getIamPolicy");
        }
        let policy = match p.obs.policies.get(&resource) {
            Some(Ok(policy)) => policy,
            Some(Err(e)) => {
                p.check(
                    Check::new(
                        codes::IAM_BINDINGS,
                        CheckStatus::Fail,
                        None,
                        format!(
                            "cannot read the IAM policy of {}: {e}",
                            w.resource.describe()
                        ),
                    )
                    .hint("retry; check getIamPolicy permission on it"),
                );
                continue;
            }
            None => {
                p.check(Check::new(
                    codes::IAM_BINDINGS,
                    CheckStatus::Fail,
                    None,
                    format!("the IAM policy of {} was not read", w.resource.describe()),
                ));
                continue;
            }
        };
        let binding = format!("{} → {} on {}", w.member, w.role, w.resource.describe());
        if policy.has(w.role, &w.member) {
            p.check(Check::new(
                codes::IAM_BINDINGS,
                CheckStatus::Ok,
                None,
                format!("IAM binding {binding}"),
            ));
            continue;
        }
        if let PolicyResource::Project(project) = &w.resource {
            p.require(project, "resourcemanager.projects.setIamPolicy");
        }
        let message = format!("missing IAM binding {binding} ({})", w.why);
        if !p.spec.enable.iam_roles {
            p.check(
                Check::new(codes::IAM_BINDINGS, CheckStatus::Fail, None, message).hint(format!(
                    "pass --enable-gcp-iam-roles (implied by --managed and --enable-all), or run `{}`",
                    w.resource.gcloud(w.role, &w.member)
                )),
            );
            continue;
        }
        let id = format!("iam/{}/{}", w.resource.short(), role_short(w.role));
        p.check(
            Check::new(codes::IAM_BINDINGS, CheckStatus::Fix, None, message)
                .hint(format!("{id} adds it")),
        );
        // Binding on a CA pool needs the privateca API enabled first.
        let deps: Vec<String> = match &w.resource {
            PolicyResource::CaPool(_) => apis.map(str::to_string).into_iter().collect(),
            PolicyResource::Project(_) => Vec::new(),
        };
        let what = format!("{} to {} on {}", w.role, w.member, w.resource.describe());
        let id = p.action(
            id,
            Op::Update,
            None,
            Target {
                api: w.resource.api().into(),
                kind: "IamPolicy".into(),
                namespace: None,
                name: resource.clone(),
            },
            format!("{} does not hold {} on {resource}", w.member, w.role),
            deps,
            format!("Would grant {what}"),
            format!("Granted {what}"),
            estimate::IAM_BINDING,
            Step::AddIamBinding {
                resource: w.resource.clone(),
                role: w.role.to_string(),
                member: w.member.clone(),
            },
        );
        planned.entry(w.resource.clone()).or_default().push(id);
    }
    planned
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::spec::{EnableFlags, Management};
    use crate::steps::tests::{fresh, spec};
    use crate::steps::{Observed, plan_mesh};

    const FLEET_NUMBER: &str = "418276145901";

    fn cross(enable: EnableFlags) -> crate::spec::MeshSpec {
        let mut s = spec(
            &["asm-clusters/us-central1-c/cluster-1"],
            enable,
            Management::Automatic,
        );
        s.fleet_project = ProjectId::parse("--fleet-id", "asm-fresh").unwrap();
        s
    }

    fn with_policy(mut o: Observed, resource: &str, bindings: &[(&str, &str)]) -> Observed {
        o.policies.insert(
            resource.to_string(),
            Ok(PolicyObs {
                bindings: bindings
                    .iter()
                    .map(|(r, m)| (r.to_string(), m.to_string()))
                    .collect(),
                etag: "BwY=".into(),
            }),
        );
        o
    }

    fn agent(kind: &str) -> String {
        format!("serviceAccount:service-{FLEET_NUMBER}@gcp-sa-{kind}.iam.gserviceaccount.com")
    }

    #[test]
    fn same_project_needs_no_binding() {
        let s = spec(
            &["asm-fresh/us-central1-c/cluster-1"],
            EnableFlags::all(),
            Management::Automatic,
        );
        assert!(resources(&s).is_empty());
        let plan = plan_mesh(&s, &fresh(&s));
        assert!(!plan.checks.iter().any(|c| c.code == codes::IAM_BINDINGS));
        assert!(
            !plan
                .actions
                .iter()
                .any(|a| matches!(a.payload, Step::AddIamBinding { .. }))
        );
    }

    #[test]
    fn cross_project_plans_one_action_per_missing_agent_binding() {
        let s = cross(EnableFlags::all());
        let o = with_policy(fresh(&s), "projects/asm-clusters", &[]);
        let plan = plan_mesh(&s, &o);
        let bindings: Vec<(&str, &str, &str)> = plan
            .actions
            .iter()
            .filter_map(|a| match &a.payload {
                Step::AddIamBinding {
                    resource: PolicyResource::Project(p),
                    role,
                    member,
                } => Some((p.as_str(), role.as_str(), member.as_str())),
                _ => None,
            })
            .collect();
        let (hub, mesh) = (agent("gkehub"), agent("servicemesh"));
        assert_eq!(
            bindings,
            vec![
                ("asm-clusters", GKEHUB_AGENT_ROLE, hub.as_str()),
                ("asm-clusters", MESH_AGENT_ROLE, mesh.as_str()),
            ]
        );
        // Registration waits for the GKE Hub agent's binding.
        let membership = plan
            .actions
            .iter()
            .find(|a| a.id == "cluster-1/membership")
            .unwrap();
        assert!(
            membership
                .depends_on
                .contains(&"iam/asm-clusters/gkehub.serviceAgent".to_string()),
            "{:?}",
            membership.depends_on
        );
    }

    #[test]
    fn present_bindings_plan_nothing() {
        let s = cross(EnableFlags::all());
        let (hub, mesh) = (agent("gkehub"), agent("servicemesh"));
        let o = with_policy(
            fresh(&s),
            "projects/asm-clusters",
            &[(GKEHUB_AGENT_ROLE, &hub), (MESH_AGENT_ROLE, &mesh)],
        );
        let plan = plan_mesh(&s, &o);
        let checks: Vec<_> = plan
            .checks
            .iter()
            .filter(|c| c.code == codes::IAM_BINDINGS)
            .collect();
        assert_eq!(checks.len(), 2);
        assert!(checks.iter().all(|c| c.status == CheckStatus::Ok));
        assert!(
            !plan
                .actions
                .iter()
                .any(|a| matches!(a.payload, Step::AddIamBinding { .. }))
        );
    }

    #[test]
    fn without_iam_roles_each_missing_binding_fails_by_name() {
        let s = cross(EnableFlags {
            iam_roles: false,
            ..EnableFlags::all()
        });
        let hub = agent("gkehub");
        // One of the two is there already.
        let o = with_policy(
            fresh(&s),
            "projects/asm-clusters",
            &[(GKEHUB_AGENT_ROLE, &hub)],
        );
        let plan = plan_mesh(&s, &o);
        let failed: Vec<&str> = plan
            .checks
            .iter()
            .filter(|c| c.code == codes::IAM_BINDINGS && c.status == CheckStatus::Fail)
            .map(|c| c.message.as_str())
            .collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].contains(&agent("servicemesh")));
        assert!(failed[0].contains(MESH_AGENT_ROLE));
        assert!(failed[0].contains("project asm-clusters"));
    }

    #[test]
    fn ca_pool_roles_go_to_the_workload_identity_pool() {
        let mut s = spec(
            &["asm-fresh/us-central1-c/cluster-1"],
            EnableFlags::all(),
            Management::Automatic,
        );
        let pool = "projects/asm-fresh/locations/us-central1/caPools/mesh";
        s.ca = CertificateAuthority::PrivateCa {
            pool: format!("{pool}:projects/asm-fresh/locations/us-central1/certificateTemplates/t"),
        };
        assert_eq!(resources(&s), vec![PolicyResource::CaPool(pool.into())]);
        let w = wanted(&s, FLEET_NUMBER);
        assert_eq!(
            w.iter().map(|w| w.role).collect::<Vec<_>>(),
            CA_POOL_ROLES.to_vec()
        );
        assert!(
            w.iter()
                .all(|w| w.member == "group:asm-fresh.svc.id.goog:/allAuthenticatedUsers/")
        );
        let o = with_policy(fresh(&s), pool, &[]);
        let plan = plan_mesh(&s, &o);
        let ids: Vec<&str> = plan
            .actions
            .iter()
            .filter(|a| matches!(a.payload, Step::AddIamBinding { .. }))
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(
            ids,
            [
                "iam/caPools/mesh/privateca.workloadCertificateRequester",
                "iam/caPools/mesh/privateca.auditor"
            ]
        );
    }
}
