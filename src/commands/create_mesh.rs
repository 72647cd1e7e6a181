//! `asm create-mesh`: endpoint discovery among N clusters — every cluster gets the remote
//! secret of every other one (N×(N−1)), planned from what is there, applied concurrently.
//!
//! Also the I/O half shared with `create-remote-secret --apply-to`: observing members,
//! executing a [`SecretPlan`], presenting it under the plan contract, and `--verify`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cli::create_mesh::CreateMeshArgs;
use crate::cli::install::OutputArg;
use crate::commands::confirm;
use crate::commands::google::{google_clients, request_trace};
use crate::commands::install::{CONCURRENCY, stdout_color};
use crate::environment::Environment;
use crate::error::{Error, Result, exit};
use crate::gcp::GcpClients;
use crate::gcp::TraceFn;
use crate::gcp::container::Cluster;
use crate::gcp::gkehub::gke_resource_link;
use crate::kube::apply::{ApplyOptions, apply, get_opt};
use crate::kube::client::read_kubeconfig;
use crate::kube::{KubeContext, KubeError, client_for_gke, client_from_kubeconfig};
use crate::output::Printer;
use crate::plan::Action;
use crate::plan::execute::{Outcome, execute};
use crate::plan::render::{self, Mood, TextOptions, millis};
use crate::spec::{ClusterRef, ProjectId, parse_duration};
use crate::steps::MembershipObs;
use crate::steps::apply::register_membership;
use crate::steps::fleet::{find_membership, membership_id};
use crate::steps::observe::{kube_retry, membership_obs};
use crate::steps::remote_secret::{
    AuthType, ClusterId, FleetMembership, ISTIO_NAMESPACE, Member, MemberObs, MeshStep, READER_SA,
    SecretPlan, SecretType, SourceCreds, VERIFY_RESOURCES, all_pairs, creds_for,
    missing_token_error, pick_token_secret, plan_registrations, plan_secrets, reader_role_name,
    redact, remote_secret_for,
};

/// How a member is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRef {
    Gke(ClusterRef),
    Context(String),
}

/// `create-mesh`, validated.
#[derive(Debug, Clone)]
pub struct CreateMeshSpec {
    pub members: Vec<MemberRef>,
    pub fleet: Option<ProjectId>,
    pub all_memberships: bool,
    pub register: bool,
    pub verify: bool,
    pub dry_run: bool,
    pub json: bool,
    pub yes: bool,
    pub timeout: Duration,
}

impl CreateMeshSpec {
    /// Every rejection before any request (exit 2).
    pub fn from_args(a: &CreateMeshArgs) -> Result<Self, Error> {
        let mut members = Vec::new();
        for c in &a.clusters {
            let r = MemberRef::Gke(ClusterRef::parse(c)?);
            if members.contains(&r) {
                return Err(Error::usage(
                    "ASM-E101",
                    format!("--cluster {c:?} is given twice"),
                ));
            }
            members.push(r);
        }
        for c in &a.contexts {
            if c.is_empty() {
                return Err(Error::usage("ASM-E101", "--context must not be empty"));
            }
            let r = MemberRef::Context(c.clone());
            if members.contains(&r) {
                return Err(Error::usage(
                    "ASM-E101",
                    format!("--context {c:?} is given twice"),
                ));
            }
            members.push(r);
        }
        let fleet = a
            .fleet_id
            .as_deref()
            .map(|f| ProjectId::parse("--fleet-id", f))
            .transpose()?;
        if a.all_memberships && !members.is_empty() {
            return Err(Error::usage(
                "ASM-E101",
                "--all-memberships takes the clusters from the fleet: drop --cluster/--context",
            ));
        }
        if !a.all_memberships && members.len() < 2 {
            return Err(Error::usage(
                "ASM-E101",
                format!(
                    "create-mesh needs at least 2 clusters (--cluster P/L/N or --context CTX, repeated), or --fleet-id F --all-memberships; got {}",
                    members.len()
                ),
            ));
        }
        if a.register && fleet.is_none() {
            return Err(Error::usage("ASM-E101", "--register needs --fleet-id"));
        }
        Ok(CreateMeshSpec {
            members,
            fleet,
            all_memberships: a.all_memberships,
            register: a.register,
            verify: a.verify,
            dry_run: a.dry_run,
            json: a.output == OutputArg::Json,
            yes: a.yes,
            timeout: parse_duration("--timeout", &a.timeout)?,
        })
    }
}

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
                .map_err(|e| e.to_string())
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
        .map_err(|e| e.to_string())
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
    Ok(MemberObs {
        namespace: namespace?.is_some(),
        service_account: sa?,
        cluster_role: cr?,
        cluster_role_binding: crb?,
        secrets: secrets?,
    })
}

/// Runs the actions of a [`SecretPlan`].
#[derive(Debug, Clone)]
pub struct SecretExecutor {
    pub members: Vec<Member>,
    pub clients: Vec<Option<KubeContext>>,
    /// Credentials of each source, as observed or as issued during the run.
    pub creds: Arc<Mutex<Vec<Option<SourceCreds>>>>,
    pub deadline: Instant,
    /// Google clients, for the fleet registrations of `create-mesh --register`.
    pub gcp: Option<GcpClients>,
}

impl SecretExecutor {
    pub fn new(
        members: Vec<Member>,
        clients: Vec<Option<KubeContext>>,
        obs: &[Option<Result<MemberObs, String>>],
        deadline: Instant,
    ) -> Self {
        let creds = members
            .iter()
            .zip(obs)
            .map(|(m, o)| {
                let o = o.as_ref()?.as_ref().ok()?;
                let s = match &m.secret_name {
                    Some(n) => o
                        .secrets
                        .iter()
                        .find(|s| s.pointer("/metadata/name").and_then(Value::as_str) == Some(n)),
                    None => pick_token_secret(&o.secrets, &m.service_account),
                }?;
                creds_for(&m.auth, s, "").ok()
            })
            .collect();
        SecretExecutor {
            members,
            clients,
            creds: Arc::new(Mutex::new(creds)),
            deadline,
            gcp: None,
        }
    }

    /// With Google clients (needed to run `RegisterMembership` actions).
    pub fn with_gcp(mut self, gcp: Option<GcpClients>) -> Self {
        self.gcp = gcp;
        self
    }

    fn client(&self, i: usize) -> Result<&Client, Error> {
        self.clients
            .get(i)
            .and_then(Option::as_ref)
            .map(|c| &c.client)
            .ok_or_else(|| Error::apply("ASM-E450", format!("no connection to member #{i}")))
    }

    fn cached(&self, i: usize) -> Option<SourceCreds> {
        match self.creds.lock() {
            Ok(g) => g.get(i).cloned().flatten(),
            Err(p) => p.into_inner().get(i).cloned().flatten(),
        }
    }

    fn store(&self, i: usize, c: SourceCreds) {
        let mut g = match self.creds.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(slot) = g.get_mut(i) {
            *slot = Some(c);
        }
    }

    /// Polls the token Secret until the controller filled it, or the deadline.
    async fn wait_token(&self, i: usize, secret: &str) -> Result<SourceCreds, Error> {
        let m = &self.members[i];
        let client = self.client(i)?;
        let started = Instant::now();
        loop {
            let live = kube_retry(|| get_opt(client, "v1", "Secret", Some(&m.namespace), secret))
                .await
                .map_err(Error::from)?;
            let live = live.and_then(|o| serde_json::to_value(o).ok());
            let result = match &live {
                Some(v) => creds_for(&m.auth, v, &format!("{}/{secret}", m.namespace)),
                None => Err(missing_token_error(
                    &format!("{}/{secret}", m.namespace),
                    started.elapsed(),
                )),
            };
            match result {
                Ok(c) => {
                    self.store(i, c.clone());
                    return Ok(c);
                }
                Err(e) if Instant::now() + Duration::from_millis(200) >= self.deadline => {
                    // Nothing filled yet reads as "no token" (the controller fills both).
                    let has_token = live
                        .as_ref()
                        .and_then(|v| v.pointer("/data/token"))
                        .is_some();
                    let bearer = matches!(m.auth, AuthType::BearerToken);
                    return Err(if bearer && !has_token {
                        missing_token_error(&format!("{}/{secret}", m.namespace), started.elapsed())
                    } else {
                        e
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Runs one action.
    pub async fn run(&self, action: &Action<MeshStep>) -> Result<(), Error> {
        match &action.payload {
            MeshStep::Apply { cluster, object } => {
                let client = self.client(*cluster)?;
                let opts = ApplyOptions {
                    force: true,
                    dry_run: false,
                };
                kube_retry(|| apply(client, object, opts))
                    .await
                    .map_err(Error::from)?;
                Ok(())
            }
            MeshStep::WaitToken { cluster, secret } => {
                self.wait_token(*cluster, secret).await.map(|_| ())
            }
            MeshStep::RegisterMembership {
                cluster: _,
                gke,
                fleet,
                location,
                id,
            } => {
                let gcp = self.gcp.as_ref().ok_or_else(|| {
                    Error::apply("ASM-E999", "no Google clients to register the cluster")
                })?;
                register_membership(gcp, fleet, gke, location, id, self.deadline, None).await
            }
            MeshStep::RemoteSecret { source, target } => {
                let src = &self.members[*source];
                let creds = match self.cached(*source) {
                    Some(c) => c,
                    None => {
                        let name = src.secret_name.clone().unwrap_or_else(|| {
                            crate::steps::remote_secret::token_secret_name(&src.service_account)
                        });
                        self.wait_token(*source, &name).await?
                    }
                };
                let rs = remote_secret_for(src, &creds)?;
                let object = rs.object(&self.members[*target].namespace);
                let client = self.client(*target)?;
                let opts = ApplyOptions {
                    force: true,
                    dry_run: false,
                };
                let result = kube_retry(|| apply(client, &object, opts)).await;
                result.map(|_| ()).map_err(|e| {
                    let mut err = Error::from(e);
                    let secrets: Vec<&secrecy::SecretString> = creds
                        .token
                        .iter()
                        .chain(std::iter::once(&rs.kubeconfig))
                        .collect();
                    err.message = redact(&err.message, &secrets);
                    err
                })
            }
        }
    }
}

/// One verification: may the secret of `source` held by `target` read `source`?
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verification {
    pub source: String,
    pub target: String,
    pub secret: String,
    pub ok: bool,
    pub message: String,
}

/// `--verify`: for every pair, read the secret from the target, connect to the source with
/// its kubeconfig, and ask (SelfSubjectAccessReview) whether it may list pods, services,
/// endpoints and secrets cluster-wide.
pub async fn verify(exec: &SecretExecutor, pairs: &[(usize, usize)]) -> Vec<Verification> {
    join_all(pairs.iter().map(|&(s, t)| async move {
        let src = &exec.members[s];
        let dst = &exec.members[t];
        let name = src.secret_type.secret_name(&src.id);
        let key = src.secret_type.data_key(&src.id);
        let outcome = verify_one(exec, t, &dst.namespace, &name, &key).await;
        let (ok, message) = match outcome {
            Ok(()) => (
                true,
                format!(
                    "{name} in {} authenticates to {} and may list {}",
                    dst.label,
                    src.label,
                    VERIFY_RESOURCES.join(", ")
                ),
            ),
            Err(m) => (false, format!("{name} in {}: {m}", dst.label)),
        };
        Verification {
            source: src.display.clone(),
            target: dst.display.clone(),
            secret: name,
            ok,
            message,
        }
    }))
    .await
}

async fn verify_one(
    exec: &SecretExecutor,
    target: usize,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<(), String> {
    let client = exec.client(target).map_err(|e| e.message)?;
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = kube_retry(|| async {
        api.get_opt(name)
            .await
            .map_err(|e| KubeError::from_kube(format!("get Secret {namespace}/{name}"), e))
    })
    .await
    .map_err(|e| e.to_string())?
    .ok_or("the secret does not exist")?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .ok_or_else(|| format!("the secret has no data key {key:?}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "the kubeconfig is not UTF-8".to_string())?;
    let kc =
        Kubeconfig::from_yaml(&text).map_err(|_| "the kubeconfig does not parse".to_string())?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|_| "the kubeconfig is not usable".to_string())?;
    let reader =
        Client::try_from(config).map_err(|_| "no client from the kubeconfig".to_string())?;
    let ssar_api: Api<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview> =
        Api::all(reader);
    let mut denied = Vec::new();
    for resource in VERIFY_RESOURCES {
        let review: k8s_openapi::api::authorization::v1::SelfSubjectAccessReview =
            serde_json::from_value(json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": "list", "resource": resource, "group": ""}},
            }))
            .map_err(|e| e.to_string())?;
        let answer = ssar_api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) if s.code == 401 => {
                    "the token does not authenticate (401 Unauthorized)".to_string()
                }
                kube::Error::Api(s) => format!("{} {}", s.code, s.reason),
                _ => "cannot reach the API server of the kubeconfig".to_string(),
            })?;
        if !answer.status.is_some_and(|s| s.allowed) {
            denied.push(resource);
        }
    }
    if denied.is_empty() {
        Ok(())
    } else {
        Err(format!("may not list {} cluster-wide", denied.join(", ")))
    }
}

/// How a secret plan is presented and applied.
#[derive(Debug, Clone, Copy)]
pub struct PlanMode {
    pub dry_run: bool,
    pub json: bool,
    pub yes: bool,
    pub verify: bool,
}

/// Renders `plan`, stops for `--dry-run`, asks (or requires `--yes`), executes it with
/// progress, optionally verifies, and prints the result. Returns the exit code.
pub async fn present_and_apply(
    plan: &SecretPlan,
    exec: &SecretExecutor,
    pairs: &[(usize, usize)],
    mode: PlanMode,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    let color = stdout_color(env);
    let changes = plan.summary().changes();
    if mode.dry_run || plan.blocked() {
        if mode.json {
            let mut v = render::json(plan, None);
            v["dry_run"] = json!(mode.dry_run);
            printer.result(&format!("{v:#}\n"));
        } else {
            printer.result(&render::text(
                plan,
                TextOptions {
                    mood: Mood::Conditional,
                    color,
                },
            ));
        }
        if plan.blocked() {
            return Err(Error::new(
                "ASM-E301",
                exit::PRECHECK_FAILED,
                "a check failed (✖ above); nothing was changed",
            )
            .into());
        }
        return Ok(exit::SUCCESS);
    }
    if !mode.json {
        printer.result(&render::text(
            plan,
            TextOptions {
                mood: Mood::Imperative,
                color,
            },
        ));
    }
    confirm::gate(env, mode.yes, changes).await?;
    let started = Instant::now();
    let report = execute(
        plan,
        CONCURRENCY,
        |a| exec.run(a),
        |a, outcome| match outcome {
            Outcome::Done(d) => printer.progress(&format!(
                "{} {} ({:.1}s)",
                printer.paint("✔", "32"),
                a.done,
                d.as_secs_f64()
            )),
            Outcome::Failed(e, d) => printer.progress(&format!(
                "{} {}: failed after {:.1}s: {}",
                printer.paint("✖", "31"),
                a.id,
                d.as_secs_f64(),
                e.message
            )),
            Outcome::Skipped(dep) => printer.progress(&format!(
                "{} {}: skipped ({dep} failed)",
                printer.paint("-", "33"),
                a.id
            )),
        },
    )
    .await;
    let wall = started.elapsed();
    let failures = report.failures();
    let code = if failures.is_empty() {
        exit::SUCCESS
    } else if failures.iter().all(|(_, e)| e.exit_code == exit::TIMEOUT) {
        exit::TIMEOUT
    } else {
        exit::APPLY_FAILED
    };
    let verifications = if mode.verify && code == exit::SUCCESS {
        printer.progress("Verifying every secret against its cluster…");
        verify(exec, pairs).await
    } else {
        Vec::new()
    };
    let verify_failed = verifications.iter().any(|v| !v.ok);
    for v in &verifications {
        let sym = if v.ok {
            printer.paint("✔", "32")
        } else {
            printer.paint("✖", "31")
        };
        printer.progress(&format!("{sym} {}", v.message));
    }
    // Per cluster: what it received, what failed.
    let per_cluster = cluster_summary(plan, &report, exec);
    if mode.json {
        let measured = report.durations();
        let mut v = render::json(plan, Some(&measured));
        v["dry_run"] = json!(false);
        v["result"] = json!({
            "status": if code == exit::SUCCESS && !verify_failed { "applied" } else { "failed" },
            "wall_ms": millis(wall),
            "failures": failures.iter().map(|(id, e)| json!({"id": id, "code": e.code, "message": e.message})).collect::<Vec<Value>>(),
            "clusters": per_cluster.iter().map(|(c, ok, failed)| json!({"cluster": c, "secrets_applied": ok, "failed": failed})).collect::<Vec<Value>>(),
            "verify": verifications,
        });
        printer.result(&format!("{v:#}\n"));
    } else {
        let s = plan.summary();
        let mut out = format!(
            "\n{} {} to add, {} to change in {:.1}s.\n",
            if code == exit::SUCCESS {
                "Applied:"
            } else {
                "Partly applied:"
            },
            s.create,
            s.update,
            wall.as_secs_f64()
        );
        for (c, ok, failed) in &per_cluster {
            out.push_str(&format!(
                "  {c}: {ok} secret{} applied{}\n",
                if *ok == 1 { "" } else { "s" },
                if *failed > 0 {
                    format!(", {failed} failed")
                } else {
                    String::new()
                }
            ));
        }
        if !verifications.is_empty() {
            let good = verifications.iter().filter(|v| v.ok).count();
            out.push_str(&format!(
                "Verified: {good} of {} secrets authenticate and may read their cluster.\n",
                verifications.len()
            ));
        }
        printer.result(&out);
    }
    for (id, e) in &failures {
        printer.error(&Error {
            message: format!("{id}: {}", e.message),
            ..(*e).clone()
        });
    }
    if code != exit::SUCCESS {
        return Ok(code);
    }
    if verify_failed {
        return Err(Error::apply(
            "ASM-E479",
            "verification failed: a remote secret does not grant its reader access (✖ above)",
        )
        .into());
    }
    Ok(exit::SUCCESS)
}

/// `(cluster, remote secrets applied to it, actions of it that failed)` per member.
fn cluster_summary(
    plan: &SecretPlan,
    report: &crate::plan::execute::Report,
    exec: &SecretExecutor,
) -> Vec<(String, usize, usize)> {
    exec.members
        .iter()
        .map(|m| {
            let mine = plan
                .actions
                .iter()
                .filter(|a| a.cluster.as_deref() == Some(m.display.as_str()));
            let mut ok = 0;
            let mut failed = 0;
            for a in mine {
                match report.outcomes.get(&a.id) {
                    Some(Outcome::Done(_))
                        if matches!(a.payload, MeshStep::RemoteSecret { .. }) =>
                    {
                        ok += 1
                    }
                    Some(Outcome::Failed(..)) | Some(Outcome::Skipped(_)) => failed += 1,
                    _ => {}
                }
            }
            (m.display.clone(), ok, failed)
        })
        .collect()
}

/// A member of create-mesh with its connection.
struct Resolved {
    member: Member,
    ctx: KubeContext,
    /// The workload identity pool of a GKE member (`None`: off, or not a GKE member).
    workload_pool: Option<String>,
}

fn mesh_member(label: String, display: String, id: ClusterId, server: String) -> Member {
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
async fn fleet_clusters(gcp: &GcpClients, fleet: &ProjectId) -> Result<Vec<ClusterRef>, Error> {
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

/// Runs `asm create-mesh`.
pub async fn run(args: CreateMeshArgs, env: &Environment, printer: &Printer) -> Result<i32> {
    let spec = CreateMeshSpec::from_args(&args)?;
    let started = Instant::now();
    let deadline = started + spec.timeout;
    let needs_gcp = spec.all_memberships
        || spec.register
        || spec.members.iter().any(|m| matches!(m, MemberRef::Gke(_)));
    let gcp = if needs_gcp {
        Some(google_clients(env, &args.credentials.options(), printer).await?)
    } else {
        None
    };
    let mut refs = spec.members.clone();
    if spec.all_memberships
        && let (Some(gcp), Some(fleet)) = (&gcp, &spec.fleet)
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
            )
            .into());
        }
    }
    printer.progress(&format!("Reading the state of {} clusters…", refs.len()));
    // Connect to every member (concurrently); a member that cannot be reached is reported.
    let kubeconfig = if refs.iter().any(|r| matches!(r, MemberRef::Context(_))) {
        Some(read_kubeconfig(env, args.kubeconfig.as_deref()).map_err(Error::from)?)
    } else {
        None
    };
    if let Some(kc) = &kubeconfig {
        for r in &refs {
            if let MemberRef::Context(c) = r
                && !kc.contexts.iter().any(|x| &x.name == c)
            {
                return Err(Error::usage(
                    "ASM-E101",
                    format!("--context {c:?} is not a context of the kubeconfig"),
                )
                .into());
            }
        }
    }
    let trace = request_trace(printer);
    let resolved = join_all(refs.iter().map(|r| {
        let gcp = gcp.as_ref();
        let kubeconfig = kubeconfig.as_ref();
        let path = args.kubeconfig.as_deref();
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
        }
        .into());
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
                )
                .into());
            }
            if members[i].label == members[j].label {
                members[i].label = members[i].id.to_string();
            }
        }
    }
    let obs = join_all(members.iter().zip(&clients).map(|(m, c)| async move {
        match c {
            Some(ctx) => Some(observe_member(&ctx.client, m).await),
            None => None,
        }
    }))
    .await;
    let pairs = all_pairs(members.len());
    let mut plan = plan_secrets(&members, &obs, &pairs);
    if spec.register
        && let (Some(gcp), Some(fleet)) = (&gcp, &spec.fleet)
    {
        let status = observe_registrations(gcp, fleet, &refs, &pools).await?;
        plan = plan_registrations(plan, &members, fleet.as_str(), &status);
    }
    let exec = SecretExecutor::new(members, clients, &obs, deadline).with_gcp(gcp);
    present_and_apply(
        &plan,
        &exec,
        &pairs,
        PlanMode {
            dry_run: spec.dry_run,
            json: spec.json,
            yes: spec.yes,
            verify: spec.verify,
        },
        env,
        printer,
    )
    .await
}

async fn resolve(
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
            let ctx = client_for_gke(&cluster, gcp.token(), trace).map_err(Error::from)?;
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
async fn observe_registrations(
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn needs_two_clusters() {
        let a = CreateMeshArgs {
            clusters: vec!["asm-fleet/us-central1-c/cluster-1".into()],
            contexts: vec![],
            kubeconfig: None,
            fleet_id: None,
            all_memberships: false,
            register: false,
            verify: false,
            dry_run: false,
            output: OutputArg::Text,
            yes: false,
            timeout: "5m".into(),
            credentials: Default::default(),
        };
        assert_eq!(CreateMeshSpec::from_args(&a).unwrap_err().exit_code, 2);
    }
}
