//! Saved secret plans (`create-mesh --plan-out FILE`, `create-remote-secret --apply-to …
//! --plan-out FILE`, then `asm apply FILE`): the `asm.plan/v1` object of `-o json` plus the
//! command's flags (`inputs`), a fingerprint of what was observed and every action's
//! payload. Never a token, key or kubeconfig: a remote secret's payload names what to read
//! (the source cluster, its reader ServiceAccount and token Secret) and where to write (the
//! target cluster, namespace and Secret name); `asm apply` reads the token again.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::plan::saved::{SavedCommand, SavedPlan, read_command, saved_plan};
use crate::steps::remote_secret::{
    FleetMembership, Member, MemberObs, MeshStep, SecretPlan, references_sa, token_secret_name,
};

/// The commands whose plans this module saves.
pub const COMMANDS: [&str; 2] = ["create-mesh", "create-remote-secret"];

/// The name of a member, for fingerprint keys and payloads.
fn member_name(members: &[Member], i: usize) -> String {
    members
        .get(i)
        .map(|m| m.display.clone())
        .unwrap_or_else(|| format!("member #{i}"))
}

/// The token Secret a source's remote secrets are built from: `--secret-name`, else the
/// first token Secret of its ServiceAccount observed, else the one asm creates.
fn token_secret_of(m: &Member, obs: Option<&MemberObs>) -> String {
    if let Some(n) = &m.secret_name {
        return n.clone();
    }
    obs.and_then(|o| {
        o.secrets
            .iter()
            .find(|s| references_sa(s, &m.service_account))
            .and_then(|s| s.pointer("/metadata/name"))
            .and_then(Value::as_str)
            .map(str::to_string)
    })
    .unwrap_or_else(|| token_secret_name(&m.service_account))
}

/// What `asm apply` reads to build a remote secret: the source's token Secret, by name.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReadFrom {
    /// The source cluster.
    pub cluster: String,
    pub namespace: String,
    /// The reader ServiceAccount.
    pub service_account: String,
    /// The token Secret of that ServiceAccount.
    pub token_secret: String,
}

/// Where a remote secret is written.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WriteTo {
    /// The target cluster.
    pub cluster: String,
    pub namespace: String,
    /// The remote secret's name.
    pub secret: String,
}

/// A secret plan's payload as saved: the step with its member indices (into the
/// members of `inputs`), plus, for a remote secret, what is read and written, by name.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum SecretPayload {
    /// Server-side apply of a non-secret object in member `cluster`.
    Apply { cluster: usize, object: Value },
    /// Wait until member `cluster`'s token Secret `secret` is issued.
    WaitToken { cluster: usize, secret: String },
    /// The remote secret of member `source`, applied to member `target`.
    RemoteSecret {
        source: usize,
        target: usize,
        read: Option<ReadFrom>,
        write: Option<WriteTo>,
    },
    /// Register GKE cluster `gke` (`PROJECT/LOCATION/NAME`) to `fleet` as membership
    /// `location/id`.
    RegisterMembership {
        cluster: usize,
        gke: String,
        fleet: String,
        location: String,
        id: String,
    },
}

/// `create-mesh`'s flags as saved (`inputs`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CreateMeshInputs {
    /// `--cluster` values.
    pub clusters: Vec<String>,
    /// `--context` values.
    pub contexts: Vec<String>,
    /// `--kubeconfig`, by path.
    pub kubeconfig: Option<String>,
    pub fleet_id: Option<String>,
    pub all_memberships: bool,
    pub register: bool,
    pub verify: bool,
    /// `--timeout` as given, e.g. `5m`.
    pub timeout: String,
}

/// `create-remote-secret --apply-to`'s flags as saved (`inputs`), with the context and
/// namespace as resolved when planning.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CreateRemoteSecretInputs {
    /// `--kubeconfig`, by path.
    pub kubeconfig: Option<String>,
    pub context: String,
    pub name: Option<String>,
    pub namespace: String,
    pub istio_namespace: String,
    pub service_account: Option<String>,
    pub create_service_account: bool,
    pub server: Option<String>,
    pub tls_server_name: Option<String>,
    pub secret_name: Option<String>,
    /// `--type`.
    #[serde(rename = "type")]
    pub secret_type: String,
    pub auth_type: String,
    pub auth_plugin_name: String,
    pub auth_plugin_config: Vec<String>,
    /// `--apply-to` contexts.
    pub apply_to: Vec<String>,
    /// `--timeout` as given, e.g. `5m`.
    pub timeout: String,
}

/// The `inputs` of a saved secret plan: the flags of the command that saved it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SecretInputs {
    CreateMesh(CreateMeshInputs),
    CreateRemoteSecret(Box<CreateRemoteSecretInputs>),
}

impl SecretInputs {
    /// The command these inputs are the flags of.
    pub fn command(&self) -> &'static str {
        match self {
            SecretInputs::CreateMesh(_) => COMMANDS[0],
            SecretInputs::CreateRemoteSecret(_) => COMMANDS[1],
        }
    }
}

/// A saved secret plan.
pub type SavedSecretPlan = SavedPlan<SecretInputs, SecretPayload>;

/// A payload as saved: the step with its member indices, plus (for a remote secret) what
/// `asm apply` reads and where it writes, by name.
pub fn payload(
    step: &MeshStep,
    members: &[Member],
    obs: &[Option<Result<MemberObs, String>>],
) -> SecretPayload {
    match step {
        MeshStep::Apply { cluster, object } => SecretPayload::Apply {
            cluster: *cluster,
            object: object.clone(),
        },
        MeshStep::WaitToken { cluster, secret } => SecretPayload::WaitToken {
            cluster: *cluster,
            secret: secret.clone(),
        },
        MeshStep::RemoteSecret { source, target } => SecretPayload::RemoteSecret {
            source: *source,
            target: *target,
            read: members.get(*source).map(|m| {
                let o = obs.get(*source).and_then(|o| o.as_ref()?.as_ref().ok());
                ReadFrom {
                    cluster: m.display.clone(),
                    namespace: m.namespace.clone(),
                    service_account: m.service_account.clone(),
                    token_secret: token_secret_of(m, o),
                }
            }),
            write: members
                .get(*target)
                .zip(members.get(*source))
                .map(|(t, s)| WriteTo {
                    cluster: t.display.clone(),
                    namespace: t.namespace.clone(),
                    secret: s.secret_type.secret_name(&s.id),
                }),
        },
        MeshStep::RegisterMembership {
            cluster,
            gke,
            fleet,
            location,
            id,
        } => SecretPayload::RegisterMembership {
            cluster: *cluster,
            gke: gke.to_string(),
            fleet: fleet.clone(),
            location: location.clone(),
            id: id.clone(),
        },
    }
}

fn resource_version(v: &Value) -> String {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(|rv| format!("resourceVersion {rv}"))
        .unwrap_or_else(|| "present".into())
}

fn presence(v: Option<&Value>) -> String {
    v.map(resource_version).unwrap_or_else(|| "absent".into())
}

/// Whether a Secret is one a secret plan reads: a token Secret of the member's
/// ServiceAccount, `--secret-name`, or a remote secret (`istio/multiCluster`).
fn planned_from(secret: &Value, m: &Member) -> bool {
    let name = secret.pointer("/metadata/name").and_then(Value::as_str);
    references_sa(secret, &m.service_account)
        || (m.secret_name.is_some() && name == m.secret_name.as_deref())
        || secret
            .pointer("/metadata/labels")
            .and_then(|l| l.get(crate::steps::remote_secret::MULTICLUSTER_LABEL))
            .is_some()
        || name.is_some_and(|n| {
            n.starts_with(crate::steps::remote_secret::SECRET_PREFIX)
                || n == crate::steps::remote_secret::CONFIG_SECRET_NAME
        })
}

/// What a secret plan was made from, as `key → value`: per member its cluster name and
/// server (what the kubeconfig would hold), its namespace, the reader ServiceAccount and
/// RBAC, and the resourceVersion of every token and remote Secret (so a token that changed
/// or a secret created meanwhile shows); `--register`'s memberships.
pub fn fingerprint(
    members: &[Member],
    obs: &[Option<Result<MemberObs, String>>],
    registrations: Option<&[(usize, FleetMembership)]>,
) -> BTreeMap<String, String> {
    let mut fp = BTreeMap::new();
    fp.insert(
        "members".to_string(),
        members
            .iter()
            .map(|m| m.display.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    );
    for (i, m) in members.iter().enumerate() {
        let c = &m.display;
        fp.insert(
            format!("{c}: cluster"),
            format!("name {}, server {}", m.id, m.server),
        );
        let o = match obs.get(i) {
            Some(Some(Ok(o))) => o,
            Some(Some(Err(_))) => {
                fp.insert(format!("{c}: observation"), "failed".into());
                continue;
            }
            _ => {
                fp.insert(format!("{c}: observation"), "not connected".into());
                continue;
            }
        };
        let ns = &m.namespace;
        fp.insert(
            format!("{c}: namespace {ns}"),
            if o.namespace { "present" } else { "absent" }.into(),
        );
        fp.insert(
            format!("{c}: serviceaccount {ns}/{}", m.service_account),
            presence(o.service_account.as_ref()),
        );
        let role = crate::steps::remote_secret::reader_role_name(ns);
        fp.insert(
            format!("{c}: clusterrole {role}"),
            presence(o.cluster_role.as_ref()),
        );
        fp.insert(
            format!("{c}: clusterrolebinding {role}"),
            presence(o.cluster_role_binding.as_ref()),
        );
        for s in o.secrets.iter().filter(|s| planned_from(s, m)) {
            let name = s
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            fp.insert(format!("{c}: secret {ns}/{name}"), resource_version(s));
        }
    }
    for (i, r) in registrations.unwrap_or_default() {
        let value = match r {
            FleetMembership::Registered { name, state } => format!(
                "registered as {name} ({})",
                state.as_deref().unwrap_or("no state")
            ),
            FleetMembership::Unregistered { location, id, .. } => {
                format!("not registered (would be {location}/{id})")
            }
        };
        fp.insert(
            format!("{}: fleet membership", member_name(members, *i)),
            value,
        );
    }
    fp
}

/// `(id, op, payload)` of every action of `plan`, as saved.
pub fn actions_of(
    plan: &SecretPlan,
    members: &[Member],
    obs: &[Option<Result<MemberObs, String>>],
) -> Vec<(String, String, Value)> {
    plan.actions
        .iter()
        .map(|a| {
            (
                a.id.clone(),
                serde_json::to_value(a.op)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                serde_json::to_value(payload(&a.payload, members, obs)).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// The saved plan of the command whose `inputs` these are: `-o json`'s object with
/// `dry_run: true`, `inputs` (the command's flags), `fingerprint` and a `payload` on every
/// action.
pub fn document(
    plan: &SecretPlan,
    members: &[Member],
    obs: &[Option<Result<MemberObs, String>>],
    inputs: SecretInputs,
    fingerprint: &BTreeMap<String, String>,
) -> SavedSecretPlan {
    saved_plan(inputs.command(), plan, inputs, fingerprint, |step| {
        payload(step, members, obs)
    })
}

/// Reads a saved plan of one of [`COMMANDS`] (`doc` is the parsed file).
pub fn read(file: &Path, doc: &Value) -> Result<SavedCommand, Error> {
    read_command(file, doc, &COMMANDS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::plan::saved::drift_refusal;
    use crate::steps::mesh::observe::mesh_member;
    use crate::steps::remote_secret::{
        ClusterId, READER_SA, all_pairs, plan_secrets, reader_manifests,
    };
    use serde_json::json;

    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl";

    fn member(n: &str) -> Member {
        mesh_member(
            n.into(),
            format!("p/l/{n}"),
            ClusterId::parse("test", &format!("cn-p-l-{n}")).unwrap(),
            format!("https://{n}.example"),
        )
    }

    /// A member whose reader, RBAC and issued token Secret are in place.
    fn ready(rv: &str) -> MemberObs {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut m = reader_manifests("istio-system").unwrap();
        for o in &mut m {
            o["metadata"]["resourceVersion"] = json!("1");
        }
        MemberObs {
            namespace: true,
            service_account: Some(m[0].clone()),
            cluster_role: Some(m[1].clone()),
            cluster_role_binding: Some(m[2].clone()),
            secrets: vec![json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": token_secret_name(READER_SA),
                    "namespace": "istio-system",
                    "resourceVersion": rv,
                    "annotations": {"kubernetes.io/service-account.name": READER_SA},
                },
                "type": "kubernetes.io/service-account-token",
                "data": {"token": b64(TOKEN), "ca.crt": b64("CA"), "namespace": b64("istio-system")},
            })],
            forbidden: vec![],
        }
    }

    #[test]
    fn a_refused_read_is_a_missing_permission_check_and_nothing_is_planned_from_it() {
        let members = vec![member("a"), member("b")];
        let mut refused = ready("8");
        refused.cluster_role = None;
        refused.forbidden = vec!["get clusterroles.rbac.authorization.k8s.io".into()];
        let obs = vec![Some(Ok(ready("7"))), Some(Ok(refused))];
        let plan = plan_secrets(&members, &obs, &all_pairs(2));
        let failed: Vec<(&str, &str)> = plan
            .checks
            .iter()
            .filter(|c| c.status == crate::plan::CheckStatus::Fail)
            .map(|c| (c.code, c.message.as_str()))
            .collect();
        assert_eq!(
            failed,
            [(
                "ASM-C110",
                "missing Kubernetes permission: get clusterroles.rbac.authorization.k8s.io"
            )]
        );
        assert!(plan.blocked());
        assert!(
            plan.actions
                .iter()
                .all(|a| a.cluster.as_deref() != Some("p/l/b")),
            "{:#?}",
            plan.actions
        );
    }

    #[test]
    fn saved_secret_plan_names_what_to_read_holds_no_token_and_refuses_a_changed_token() {
        let members = vec![member("a"), member("b")];
        let obs = vec![Some(Ok(ready("7"))), Some(Ok(ready("8")))];
        let plan = plan_secrets(&members, &obs, &all_pairs(2));
        let fp = fingerprint(&members, &obs, None);
        let inputs = SecretInputs::CreateMesh(CreateMeshInputs {
            clusters: vec![],
            contexts: vec![],
            kubeconfig: None,
            fleet_id: None,
            all_memberships: false,
            register: false,
            verify: false,
            timeout: "5m".into(),
        });
        let doc = serde_json::to_value(document(&plan, &members, &obs, inputs, &fp)).unwrap();
        let text = format!("{doc:#}");
        assert!(!text.contains(TOKEN) && !text.contains("c2VjcmV0LXBheWxvYWQ"));
        let secrets: Vec<&Value> = doc["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["payload"]["step"] == "remote_secret")
            .collect();
        assert_eq!(secrets.len(), 2, "{doc:#}");
        assert_eq!(
            secrets[0]["payload"]["read"]["token_secret"],
            token_secret_name(READER_SA)
        );

        let saved = read(Path::new("p.json"), &serde_json::from_str(&text).unwrap()).unwrap();
        let now = actions_of(&plan, &members, &obs);
        assert!(drift_refusal(&saved, &fp, &now).is_none());

        // b's token Secret was re-issued since: refused, naming it.
        let obs2 = vec![Some(Ok(ready("7"))), Some(Ok(ready("9")))];
        let fp2 = fingerprint(&members, &obs2, None);
        let e = drift_refusal(&saved, &fp2, &now).unwrap();
        assert_eq!(e.exit_code, 2);
        assert!(
            e.message.contains(&format!(
                "p/l/b: secret istio-system/{}",
                token_secret_name(READER_SA)
            )),
            "{}",
            e.message
        );

        // Not a secret plan's command: refused on reading.
        let mut other = doc.clone();
        other["saved"]["command"] = json!("install-gateway");
        assert!(read(Path::new("p.json"), &other).is_err());
    }
}
