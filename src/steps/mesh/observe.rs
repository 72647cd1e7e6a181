//! What `create-mesh` and `create-remote-secret` read before planning: the members (a GKE
//! cluster through its endpoint, or a kubeconfig context), their cluster IDs, what each
//! member holds of the reader ServiceAccount, its RBAC and token Secrets, and for
//! `--register` the fleet memberships. Reads only.

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::config::Kubeconfig;
use serde_json::Value;

use super::spec::{CreateMeshSpec, MemberRef};
use futures::future::join_all;

use crate::environment::Environment;
use crate::error::{Error, exit};
use crate::gcp::GcpClients;
use crate::gcp::container::Cluster;
use crate::gcp::gkehub::gke_resource_link;
use crate::kube::apply::get_opt;
use crate::kube::client::read_kubeconfig;
use crate::kube::{KubeContext, KubeError, client_for_gke, client_from_kubeconfig};
use crate::output::Printer;
use crate::spec::{ClusterRef, ProjectId};
use crate::steps::MembershipObs;
use crate::steps::fleet::{find_membership, membership_id};
use crate::steps::observe::{kube_retry, membership_obs, permitted};
use crate::steps::remote_secret::{
    AuthType, ClusterId, FleetMembership, ISTIO_NAMESPACE, Member, MemberObs, READER_SA,
    SecretType, reader_role_name,
};
use crate::transport::TraceFn;

/// The raw `server` of `context` (else the current context) in the kubeconfig, as istioctl
/// reads it (no normalisation).
pub fn kubeconfig_server(kc: &Kubeconfig, context: Option<&str>) -> Result<String, Error> {
    let ctx_name = context
        .map(str::to_string)
        .or_else(|| kc.current_context.clone())
        .unwrap_or_default();
    let ctx = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| {
            Error::usage(
                "ASM-E477",
                format!("could not find cluster for context {ctx_name:?}"),
            )
        })?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| {
            Error::usage(
                "ASM-E477",
                format!("could not find cluster for context {ctx_name:?}"),
            )
        })?;
    Ok(cluster.server.clone().unwrap_or_default())
}

/// The UID of namespace kube-system (istioctl's default cluster name).
pub async fn kube_system_uid(client: &Client) -> Result<ClusterId, Error> {
    let ns = kube_retry(|| get_opt(client, "v1", "Namespace", None, "kube-system"))
        .await
        .map_err(Error::from)?;
    let uid = ns
        .and_then(|n| n.metadata.uid)
        .ok_or_else(|| Error::apply("ASM-E478", "namespace kube-system has no uid"))?;
    ClusterId::parse("the uid of namespace kube-system", &uid)
}

/// Reads what the planner needs of member `m`.
pub async fn observe_member(client: &Client, m: &Member) -> Result<MemberObs, String> {
    let ns = m.namespace.as_str();
    let role = reader_role_name(ns);
    let get = |api: &'static str, kind: &'static str, nsp: Option<&'static str>, name: String| {
        let nsp = nsp.map(|_| ns.to_string());
        async move {
            kube_retry(|| get_opt(client, api, kind, nsp.as_deref(), &name))
                .await
                .map(|o| o.and_then(|o| serde_json::to_value(o).ok()))
        }
    };
    let secrets = async {
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        kube_retry(|| async {
            api.list(&ListParams::default())
                .await
                .map_err(|e| KubeError::from_kube(format!("list Secrets in {ns}"), e))
        })
        .await
        .map(|l| {
            l.items
                .iter()
                .filter_map(|s| serde_json::to_value(s).ok())
                .collect::<Vec<Value>>()
        })
    };
    let (namespace, sa, cr, crb, secrets) = tokio::join!(
        get("v1", "Namespace", None, ns.to_string()),
        get("v1", "ServiceAccount", Some(""), m.service_account.clone()),
        get(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            role.clone()
        ),
        get(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            None,
            role
        ),
        secrets,
    );
    // A read the caller may not make is a missing permission (reported as such), not an
    // unreadable cluster.
    let mut forbidden = Vec::new();
    let in_ns = |what: &str| format!("{what} in {ns}");
    Ok(MemberObs {
        namespace: permitted(namespace, "get namespaces", &mut forbidden)?.is_some(),
        service_account: permitted(sa, &in_ns("get serviceaccounts"), &mut forbidden)?,
        cluster_role: permitted(
            cr,
            "get clusterroles.rbac.authorization.k8s.io",
            &mut forbidden,
        )?,
        cluster_role_binding: permitted(
            crb,
            "get clusterrolebindings.rbac.authorization.k8s.io",
            &mut forbidden,
        )?,
        secrets: permitted(secrets, &in_ns("list secrets"), &mut forbidden)?,
        forbidden,
    })
}

/// A member of create-mesh with its connection.
pub struct Resolved {
    pub member: Member,
    pub ctx: KubeContext,
    /// The workload identity pool of a GKE member (`None`: off, or not a GKE member).
    pub workload_pool: Option<String>,
}

/// A member of `create-mesh`: the reader ServiceAccount in istio-system, bearer token.
pub fn mesh_member(label: String, display: String, id: ClusterId, server: String) -> Member {
    Member {
        label,
        display,
        id,
        server,
        tls_server_name: None,
        namespace: ISTIO_NAMESPACE.to_string(),
        service_account: READER_SA.to_string(),
        create_service_account: true,
        converge_rbac: true,
        secret_name: None,
        secret_type: SecretType::Remote,
        auth: AuthType::BearerToken,
    }
}

/// Memberships of `fleet` that point at GKE clusters, as cluster references.
pub async fn fleet_clusters(gcp: &GcpClients, fleet: &ProjectId) -> Result<Vec<ClusterRef>, Error> {
    let number = gcp.crm.project_number(fleet.as_str()).await.ok();
    let ms = gcp.gkehub.list_memberships(fleet.as_str()).await?;
    let mut out = Vec::new();
    for m in &ms {
        let Some(link) = m.gke_resource_link() else {
            continue;
        };
        let Some(i) = link.find("projects/") else {
            continue;
        };
        let parts: Vec<&str> = link[i..].split('/').collect();
        if let ["projects", p, "locations" | "zones", l, "clusters", n] = parts.as_slice() {
            let project = if Some(*p) == number.as_deref() {
                fleet.as_str()
            } else {
                p
            };
            if let Ok(r) = ClusterRef::parse(&format!("{project}/{l}/{n}"))
                && !out.contains(&r)
            {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// Connects to member `r` and names it (GKE: through the cluster's endpoint with the Google
/// token; context: through the kubeconfig, its ID from the context name or kube-system's uid).
pub async fn resolve(
    r: &MemberRef,
    gcp: Option<&GcpClients>,
    kubeconfig: Option<&Kubeconfig>,
    env: &Environment,
    path: Option<&std::path::Path>,
    trace: Option<TraceFn>,
) -> Result<Resolved, Error> {
    match r {
        MemberRef::Gke(c) => {
            let gcp = gcp.ok_or_else(|| Error::apply("ASM-E999", "no Google clients"))?;
            let cluster: Option<Cluster> = gcp
                .container
                .get_cluster_opt(c.project.as_str(), c.location.as_str(), c.name.as_str())
                .await?;
            let cluster = cluster.ok_or_else(|| {
                Error::new(
                    "ASM-E462",
                    exit::PRECHECK_FAILED,
                    format!("cluster {c} does not exist"),
                )
            })?;
            let ctx = client_for_gke(&cluster, &gcp.bearer(), trace).map_err(Error::from)?;
            let id = ClusterId::for_gke(c.project.as_str(), c.location.as_str(), c.name.as_str())?;
            Ok(Resolved {
                member: mesh_member(c.name.to_string(), c.to_string(), id, cluster.server_url()),
                ctx,
                workload_pool: cluster.workload_pool().map(str::to_string),
            })
        }
        MemberRef::Context(name) => {
            let kc = kubeconfig.ok_or_else(|| Error::apply("ASM-E999", "no kubeconfig"))?;
            let server = kubeconfig_server(kc, Some(name))?;
            let ctx = client_from_kubeconfig(env, path, Some(name), trace)
                .await
                .map_err(Error::from)?;
            let id = match ClusterId::for_context(name) {
                Some(id) => id?,
                None => kube_system_uid(&ctx.client).await?,
            };
            let label = crate::steps::remote_secret::gke_context_parts(name)
                .map(|(_, _, n)| n.to_string())
                .unwrap_or_else(|| name.clone());
            Ok(Resolved {
                member: mesh_member(label, name.clone(), id, server),
                ctx,
                workload_pool: None,
            })
        }
    }
}

/// `--register` (reads only): the fleet membership of every GKE member of `refs`, with
/// install's rules for a new one (membership id unique in the fleet, region of the
/// cluster). `pools[i]` is the workload identity pool of member `i`: a cluster to register
/// without workload identity is refused (exit 2), as its membership carries the cluster's
/// workload identity issuer.
pub async fn observe_registrations(
    gcp: &GcpClients,
    fleet: &ProjectId,
    refs: &[MemberRef],
    pools: &[Option<String>],
) -> Result<Vec<(usize, FleetMembership)>, Error> {
    let number = gcp.crm.project_number(fleet.as_str()).await.ok();
    let listed = gcp.gkehub.list_memberships(fleet.as_str()).await?;
    let mut memberships: Vec<MembershipObs> = listed.iter().map(membership_obs).collect();
    let mut out = Vec::new();
    let mut no_wi = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let MemberRef::Gke(c) = r else { continue };
        if let Some(m) = find_membership(&memberships, c, number.as_deref()) {
            out.push((
                i,
                FleetMembership::Registered {
                    name: m.name.clone(),
                    state: m.state.clone(),
                },
            ));
            continue;
        }
        if pools.get(i).cloned().flatten().is_none() {
            no_wi.push(c.clone());
            continue;
        }
        let id = membership_id(&memberships, c);
        let location = c.location.region().to_string();
        // Later members of this run must not take the same id.
        memberships.push(MembershipObs {
            name: format!("projects/{fleet}/locations/{location}/memberships/{id}"),
            resource_link: Some(gke_resource_link(
                c.project.as_str(),
                c.location.as_str(),
                c.name.as_str(),
            )),
            state: None,
        });
        out.push((
            i,
            FleetMembership::Unregistered {
                gke: c.clone(),
                location,
                id,
            },
        ));
    }
    if !no_wi.is_empty() {
        let names: Vec<String> = no_wi.iter().map(ToString::to_string).collect();
        let install: Vec<String> = no_wi.iter().map(|c| format!("--cluster {c}")).collect();
        return Err(Error::usage(
            "ASM-E124",
            format!(
                "--register: workload identity is off on {} ({}); a fleet membership needs it",
                if no_wi.len() == 1 { "cluster" } else { "clusters" },
                names.join(", ")
            ),
        )
        .with_hint(format!(
            "run `asm install --managed --enable-gcp-components {} --fleet-id {fleet}` (it turns workload identity on), then re-run create-mesh --register",
            install.join(" ")
        )));
    }
    Ok(out)
}

/// The members of `spec`: as given, or (`--all-memberships`) every GKE cluster registered
/// to the fleet — at least two.
pub async fn member_refs(
    spec: &CreateMeshSpec,
    gcp: Option<&GcpClients>,
) -> Result<Vec<MemberRef>, Error> {
    let mut refs = spec.members.clone();
    if spec.all_memberships
        && let (Some(gcp), Some(fleet)) = (gcp, &spec.fleet)
    {
        refs = fleet_clusters(gcp, fleet)
            .await?
            .into_iter()
            .map(MemberRef::Gke)
            .collect();
        if refs.len() < 2 {
            return Err(Error::usage(
                "ASM-E101",
                format!(
                    "fleet {fleet} has {} GKE membership(s); create-mesh needs at least 2",
                    refs.len()
                ),
            ));
        }
    }
    Ok(refs)
}

/// The members reached: per member its description, client and workload identity pool.
pub struct Connected {
    pub members: Vec<Member>,
    pub clients: Vec<Option<KubeContext>>,
    pub pools: Vec<Option<String>>,
}

/// Connects to every member of `refs` concurrently. A member that cannot be reached is
/// printed and fails the run; two members with one cluster ID are refused (exit 2); two
/// with one label are told apart by their IDs.
pub async fn connect(
    refs: &[MemberRef],
    gcp: Option<&GcpClients>,
    env: &Environment,
    kubeconfig_path: Option<&std::path::Path>,
    trace: Option<TraceFn>,
    printer: &Printer,
) -> Result<Connected, Error> {
    let kubeconfig = if refs.iter().any(|r| matches!(r, MemberRef::Context(_))) {
        Some(read_kubeconfig(env, kubeconfig_path).map_err(Error::from)?)
    } else {
        None
    };
    if let Some(kc) = &kubeconfig {
        for r in refs {
            if let MemberRef::Context(c) = r
                && !kc.contexts.iter().any(|x| &x.name == c)
            {
                return Err(Error::usage(
                    "ASM-E101",
                    format!("--context {c:?} is not a context of the kubeconfig"),
                ));
            }
        }
    }
    let resolved = join_all(refs.iter().map(|r| {
        let kubeconfig = kubeconfig.as_ref();
        let path = kubeconfig_path;
        let trace = trace.clone();
        async move { resolve(r, gcp, kubeconfig, env, path, trace).await }
    }))
    .await;
    let mut members = Vec::new();
    let mut clients = Vec::new();
    let mut pools = Vec::new();
    let mut errors = Vec::new();
    for (r, res) in refs.iter().zip(resolved) {
        match res {
            Ok(Resolved {
                member,
                ctx,
                workload_pool,
            }) => {
                members.push(member);
                clients.push(Some(ctx));
                pools.push(workload_pool);
            }
            Err(e) => errors.push((r, e)),
        }
    }
    if !errors.is_empty() {
        for (r, e) in &errors {
            let what = match r {
                MemberRef::Gke(c) => c.to_string(),
                MemberRef::Context(c) => c.clone(),
            };
            printer.error(&Error {
                message: format!("{what}: {}", e.message),
                ..e.clone()
            });
        }
        let first = errors.remove(0).1;
        return Err(Error {
            message: format!("cannot reach every cluster of the mesh: {}", first.message),
            ..first
        });
    }
    // Distinct cluster IDs (and labels).
    for i in 0..members.len() {
        for j in 0..i {
            if members[i].id == members[j].id {
                return Err(Error::usage(
                    "ASM-E120",
                    format!(
                        "{} and {} have the same cluster name {}",
                        members[j].display, members[i].display, members[i].id
                    ),
                ));
            }
            if members[i].label == members[j].label {
                members[i].label = members[i].id.to_string();
            }
        }
    }
    Ok(Connected {
        members,
        clients,
        pools,
    })
}

/// What every connected member holds (`None` for a member without a client).
pub async fn observe_members(
    members: &[Member],
    clients: &[Option<KubeContext>],
) -> Vec<Option<Result<MemberObs, String>>> {
    join_all(members.iter().zip(clients).map(|(m, c)| async move {
        match c {
            Some(ctx) => Some(observe_member(&ctx.client, m).await),
            None => None,
        }
    }))
    .await
}
