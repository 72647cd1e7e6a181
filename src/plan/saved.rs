//! Saved plans (`asm install --plan-out FILE`, `asm apply FILE`): the `asm.plan/v1` object
//! `-o json` prints, plus what `asm apply` needs — `inputs` (the validated spec), each
//! action's `payload` (the exact change) and `fingerprint` (what the plan was made from:
//! etags, label fingerprints, resourceVersions, states). Never a secret: no token, no
//! credential file, no key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::cli::credentials::CredentialArgs;
use crate::cli::install::TargetArgs;
use crate::error::Error;
use crate::spec::{
    CertificateAuthority, Channel, ClusterRef, EnableFlags, KubeAccess, Management, MeshOption,
    MeshSpec, OutputFormat, ProjectId, Scope, parse_duration,
};
use crate::steps::{MeshPlan, Step};

use super::Plan;
use super::document::{PlanAction, PlanBody, pretty};
use super::render::{self, millis};

/// Version of the saved-plan extension fields (`inputs`, `fingerprint`, `payload`).
pub const SAVED_VERSION: u32 = 1;

fn management_name(m: Management) -> &'static str {
    match m {
        Management::Automatic => "automatic",
        Management::Revision => "revision",
    }
}

/// `saved`: what makes a plan document a saved plan, and whose it is.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SavedHeader {
    /// Version of the saved-plan fields (`inputs`, `fingerprint`, `payload`): 1.
    #[schemars(extend("const" = 1))]
    pub version: u32,
    /// The asm version that saved it.
    pub asm_version: &'static str,
    /// The command whose plan it is (`asm apply` hands it back to that command).
    pub command: &'static str,
}

impl SavedHeader {
    /// The header of a plan `command` saves now.
    pub fn new(command: &'static str) -> Self {
        SavedHeader {
            version: SAVED_VERSION,
            asm_version: env!("CARGO_PKG_VERSION"),
            command,
        }
    }
}

/// One action of a saved plan: the plan's entry plus `payload`, the exact change.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(rename = "SavedAction_{P}")]
pub struct SavedAction<P> {
    #[serde(flatten)]
    pub action: PlanAction,
    /// The exact change (`step` plus its fields); clusters are indexes into the inputs.
    pub payload: P,
}

/// A saved plan: the `asm.plan/v1` body with a payload on every action, `dry_run: true`,
/// `saved`, the command's `inputs` (`I`) and the `fingerprint` of what was observed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(rename = "SavedPlan_{I}_{P}")]
pub struct SavedPlan<I, P> {
    #[serde(flatten)]
    pub plan: PlanBody<SavedAction<P>>,
    /// Always `true`: a saved plan has not been applied.
    #[schemars(extend("const" = true))]
    pub dry_run: bool,
    pub saved: SavedHeader,
    /// What the command was asked to do: its validated flags, never a secret.
    pub inputs: I,
    /// One descriptor per thing observed (etags, label fingerprints, resourceVersions,
    /// states); `asm apply` refuses when one changed.
    pub fingerprint: BTreeMap<String, String>,
}

/// The saved plan of `command`: `plan`'s body with `payload(action)` on every action.
pub fn saved_plan<P, I, S>(
    command: &'static str,
    plan: &Plan<P>,
    inputs: I,
    fingerprint: &BTreeMap<String, String>,
    payload: impl Fn(&P) -> S,
) -> SavedPlan<I, S> {
    SavedPlan {
        plan: render::body(plan, None, |a, timing| SavedAction {
            action: render::plan_action(a, timing),
            payload: payload(&a.payload),
        }),
        dry_run: true,
        saved: SavedHeader::new(command),
        inputs,
        fingerprint: fingerprint.clone(),
    }
}

/// The certificate authority of install's inputs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CaInput {
    /// Mesh CA.
    MeshCa,
    /// Certificate Authority Service: `pool` is `projects/P/locations/L/caPools/N`.
    GcpCas { pool: String },
}

/// How install reaches the clusters' Kubernetes APIs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "access", rename_all = "snake_case")]
pub enum KubeInput {
    /// Through GKE's endpoint and CA with the Google access token.
    Gke,
    /// Through a kubeconfig (one cluster): its path (`null`: the default) and context.
    Kubeconfig {
        path: Option<String>,
        context: Option<String>,
    },
}

/// Install's `--enable-*` flags.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EnableInputs {
    pub apis: bool,
    pub iam_roles: bool,
    pub components: bool,
    pub cluster_labels: bool,
    pub registration: bool,
    pub namespace_creation: bool,
}

/// Install's validated spec (`inputs` of its saved plans).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InstallInputs {
    /// `PROJECT/LOCATION/NAME` of every cluster.
    pub clusters: Vec<String>,
    pub fleet_project: ProjectId,
    /// `automatic` or `revision`.
    #[schemars(extend("enum" = ["automatic", "revision"]))]
    pub management: &'static str,
    /// `regular`, `rapid`, `stable`, or `null` (the cluster's GKE channel).
    pub channel: Option<&'static str>,
    /// `--option` values, e.g. `cni-managed`.
    pub options: Vec<&'static str>,
    pub ca: CaInput,
    pub enable: EnableInputs,
    /// `full`, or `enable-only` (`--only-enable`).
    #[schemars(extend("enum" = ["full", "enable-only"]))]
    pub scope: &'static str,
    /// `--timeout` in milliseconds.
    pub timeout_ms: u64,
    pub kube: KubeInput,
}

/// The validated spec as saved (`inputs`).
pub fn inputs(spec: &MeshSpec) -> InstallInputs {
    let e = &spec.enable;
    InstallInputs {
        clusters: spec.clusters.iter().map(ToString::to_string).collect(),
        fleet_project: spec.fleet_project.clone(),
        management: management_name(spec.management),
        channel: spec.channel.map(Channel::as_str),
        options: spec
            .options
            .iter()
            .map(|o| match o {
                MeshOption::CniManaged => "cni-managed",
            })
            .collect(),
        ca: match &spec.ca {
            CertificateAuthority::MeshCa => CaInput::MeshCa,
            CertificateAuthority::PrivateCa { pool } => CaInput::GcpCas { pool: pool.clone() },
        },
        enable: EnableInputs {
            apis: e.apis,
            iam_roles: e.iam_roles,
            components: e.components,
            cluster_labels: e.cluster_labels,
            registration: e.registration,
            namespace_creation: e.namespace_creation,
        },
        scope: match spec.scope {
            Scope::Full => "full",
            Scope::EnableOnly => "enable-only",
        },
        timeout_ms: millis(spec.timeout),
        kube: match &spec.kube {
            KubeAccess::Gke => KubeInput::Gke,
            KubeAccess::Kubeconfig { path, context } => KubeInput::Kubeconfig {
                path: path.as_ref().map(|p| p.display().to_string()),
                context: context.clone(),
            },
        },
    }
}

/// Install's saved plan.
pub type InstallPlan = SavedPlan<InstallInputs, Step>;

/// The saved plan: `-o json`'s object with `dry_run: true`, `inputs`, `fingerprint` and a
/// `payload` on every action.
pub fn document(
    plan: &MeshPlan,
    spec: &MeshSpec,
    fingerprint: &BTreeMap<String, String>,
) -> InstallPlan {
    saved_plan("install", plan, inputs(spec), fingerprint, Step::clone)
}

/// Writes the saved plan to `path` (mode 0600).
pub fn write(path: &Path, doc: &impl Serialize) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| {
        Error::usage(
            "ASM-E105",
            format!("--plan-out {:?}: cannot write: {e}", path.display()),
        )
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    f.write_all(pretty(doc).as_bytes()).map_err(fail)
}

/// A saved plan read back: the spec it was made for, its fingerprint and actions.
#[derive(Debug, Clone)]
pub struct Saved {
    pub spec: MeshSpec,
    pub fingerprint: BTreeMap<String, String>,
    /// `(id, op, payload)` of every saved action, in order.
    pub actions: Vec<(String, String, Value)>,
    pub doc: Value,
}

fn bad(file: &Path, what: impl std::fmt::Display) -> Error {
    Error::usage(
        "ASM-E106",
        format!("plan file {:?}: {what}", file.display()),
    )
    .with_hint("make a new one with `asm install --managed … --plan-out FILE`")
}

fn str_at<'v>(v: &'v Value, key: &str, file: &Path) -> Result<&'v str, Error> {
    v[key]
        .as_str()
        .ok_or_else(|| bad(file, format!("inputs.{key} is missing or not a string")))
}

fn bool_at(v: &Value, key: &str, file: &Path) -> Result<bool, Error> {
    v[key].as_bool().ok_or_else(|| {
        bad(
            file,
            format!("inputs.enable.{key} is missing or not a boolean"),
        )
    })
}

/// Reads and validates a saved plan; every input goes through the same validation as the
/// command line (a hand-edited file cannot smuggle in what a flag could not).
pub fn read(file: &Path, text: &str) -> Result<Saved, Error> {
    let doc: Value = serde_json::from_str(text).map_err(|e| bad(file, format!("not JSON: {e}")))?;
    if doc["schema"] != render::SCHEMA {
        return Err(bad(
            file,
            format!("schema is {}, expected {}", doc["schema"], render::SCHEMA),
        ));
    }
    if doc["saved"]["version"] != SAVED_VERSION {
        return Err(bad(
            file,
            "not a saved plan (no `saved.version`; `-o json` output cannot be applied)",
        ));
    }
    let i = &doc["inputs"];
    let clusters = i["clusters"]
        .as_array()
        .ok_or_else(|| bad(file, "inputs.clusters is missing"))?
        .iter()
        .map(|c| {
            c.as_str()
                .ok_or_else(|| bad(file, "inputs.clusters holds a non-string"))
                .and_then(|c| ClusterRef::parse(c).map_err(|e| bad(file, e.message)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if clusters.is_empty() {
        return Err(bad(file, "inputs.clusters is empty"));
    }
    let fleet_project = ProjectId::parse("inputs.fleet_project", str_at(i, "fleet_project", file)?)
        .map_err(|e| bad(file, e.message))?;
    let management = match str_at(i, "management", file)? {
        "automatic" => Management::Automatic,
        "revision" => Management::Revision,
        other => return Err(bad(file, format!("inputs.management {other:?} is unknown"))),
    };
    let channel = match &i["channel"] {
        Value::Null => None,
        Value::String(s) => Some(match s.as_str() {
            "regular" => Channel::Regular,
            "rapid" => Channel::Rapid,
            "stable" => Channel::Stable,
            other => return Err(bad(file, format!("inputs.channel {other:?} is unknown"))),
        }),
        _ => return Err(bad(file, "inputs.channel is not a string")),
    };
    let options = i["options"]
        .as_array()
        .ok_or_else(|| bad(file, "inputs.options is missing"))?
        .iter()
        .map(|o| {
            MeshOption::parse(o.as_str().unwrap_or_default()).map_err(|e| bad(file, e.message))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ca = match i["ca"]["kind"].as_str() {
        Some("mesh_ca") => CertificateAuthority::MeshCa,
        Some("gcp_cas") => CertificateAuthority::PrivateCa {
            pool: CertificateAuthority::parse_pool(i["ca"]["pool"].as_str().unwrap_or_default())
                .map_err(|e| bad(file, e.message))?,
        },
        _ => return Err(bad(file, "inputs.ca.kind must be mesh_ca or gcp_cas")),
    };
    let e = &i["enable"];
    let enable = EnableFlags {
        apis: bool_at(e, "apis", file)?,
        iam_roles: bool_at(e, "iam_roles", file)?,
        components: bool_at(e, "components", file)?,
        cluster_labels: bool_at(e, "cluster_labels", file)?,
        registration: bool_at(e, "registration", file)?,
        namespace_creation: bool_at(e, "namespace_creation", file)?,
    };
    let scope = match str_at(i, "scope", file)? {
        "full" => Scope::Full,
        "enable-only" => Scope::EnableOnly,
        other => return Err(bad(file, format!("inputs.scope {other:?} is unknown"))),
    };
    let timeout = i["timeout_ms"]
        .as_u64()
        .map(Duration::from_millis)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| bad(file, "inputs.timeout_ms is missing or zero"))?;
    let kube = match i["kube"]["access"].as_str() {
        Some("gke") => KubeAccess::Gke,
        Some("kubeconfig") => {
            if clusters.len() != 1 {
                return Err(bad(file, "kubeconfig access reaches exactly one cluster"));
            }
            KubeAccess::Kubeconfig {
                path: i["kube"]["path"].as_str().map(Into::into),
                context: i["kube"]["context"].as_str().map(str::to_string),
            }
        }
        _ => return Err(bad(file, "inputs.kube.access must be gke or kubeconfig")),
    };
    let fingerprint: BTreeMap<String, String> = serde_json::from_value(doc["fingerprint"].clone())
        .map_err(|e| bad(file, format!("fingerprint: {e}")))?;
    if fingerprint.is_empty() {
        return Err(bad(file, "fingerprint is empty"));
    }
    let actions = doc["actions"]
        .as_array()
        .ok_or_else(|| bad(file, "actions is missing"))?
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap_or_default().to_string(),
                a["op"].as_str().unwrap_or_default().to_string(),
                a["payload"].clone(),
            )
        })
        .collect();
    Ok(Saved {
        spec: MeshSpec {
            clusters,
            fleet_project,
            management,
            channel,
            options,
            enable,
            output: OutputFormat::Text,
            timeout,
            kube,
            ca,
            scope,
        },
        fingerprint,
        actions,
        doc,
    })
}

/// Lines naming how `plan` differs from the saved actions (empty when identical).
pub fn action_differences(saved: &[(String, String, Value)], plan: &MeshPlan) -> Vec<String> {
    let now: Vec<(String, String, Value)> = plan
        .actions
        .iter()
        .map(|a| {
            (
                a.id.clone(),
                serde_json::to_value(a.op)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                serde_json::to_value(&a.payload).unwrap_or(Value::Null),
            )
        })
        .collect();
    differences(saved, &now)
}

/// Lines naming how the `(id, op, payload)` planned `now` differ from the `saved` ones
/// (empty when identical).
pub fn differences(
    saved: &[(String, String, Value)],
    now: &[(String, String, Value)],
) -> Vec<String> {
    let mut out = Vec::new();
    for s in saved {
        match now.iter().find(|n| n.0 == s.0) {
            None => out.push(format!("{} ({}) is no longer planned", s.0, s.1)),
            Some(n) if n != s => out.push(format!("{} would now send a different request", s.0)),
            Some(_) => {}
        }
    }
    for n in now {
        if !saved.iter().any(|s| s.0 == n.0) {
            out.push(format!("{} ({}) is planned now but not saved", n.0, n.1));
        }
    }
    out
}

/// What differs between two fingerprints, one line per key: `KEY: OLD → NEW`.
pub fn drift(saved: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<String> {
    let keys: BTreeSet<&String> = saved.keys().chain(now.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (saved.get(k), now.get(k));
            (a != b).then(|| {
                format!(
                    "{k}: {} → {}",
                    a.map(String::as_str).unwrap_or("(not observed)"),
                    b.map(String::as_str).unwrap_or("(not observed)")
                )
            })
        })
        .collect()
}

/// A saved plan of a command that records its flags (`inputs`) rather than a typed spec:
/// create-mesh, create-remote-secret, enable-dataplane, install-gateway. The command
/// validates the inputs as it validates flags.
#[derive(Debug, Clone)]
pub struct SavedCommand {
    pub file: PathBuf,
    /// `saved.command`: whose plan it is.
    pub command: String,
    pub inputs: Value,
    pub fingerprint: BTreeMap<String, String>,
    /// `(id, op, payload)` of every saved action, in order.
    pub actions: Vec<(String, String, Value)>,
}

/// Reads a saved plan whose `saved.command` is one of `commands` (`doc` is the parsed file).
pub fn read_command(file: &Path, doc: &Value, commands: &[&str]) -> Result<SavedCommand, Error> {
    let bad = |what: String| {
        Error::usage(
            "ASM-E106",
            format!("plan file {:?}: {what}", file.display()),
        )
        .with_hint("make a new one with the command's --plan-out FILE")
    };
    if doc["schema"] != render::SCHEMA || doc["saved"]["version"] != SAVED_VERSION {
        return Err(bad(format!(
            "not a saved plan (schema {}, saved.version {})",
            doc["schema"], doc["saved"]["version"]
        )));
    }
    let command = doc["saved"]["command"]
        .as_str()
        .filter(|c| commands.contains(c))
        .ok_or_else(|| {
            bad(format!(
                "saved.command {} is unknown",
                doc["saved"]["command"]
            ))
        })?;
    if !doc["inputs"].is_object() {
        return Err(bad("inputs is missing".into()));
    }
    let fingerprint: BTreeMap<String, String> = serde_json::from_value(doc["fingerprint"].clone())
        .map_err(|e| bad(format!("fingerprint: {e}")))?;
    if fingerprint.is_empty() {
        return Err(bad("fingerprint is empty".into()));
    }
    let actions = doc["actions"]
        .as_array()
        .ok_or_else(|| bad("actions is missing".into()))?
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap_or_default().to_string(),
                a["op"].as_str().unwrap_or_default().to_string(),
                a["payload"].clone(),
            )
        })
        .collect();
    Ok(SavedCommand {
        file: file.to_path_buf(),
        command: command.to_string(),
        inputs: doc["inputs"].clone(),
        fingerprint,
        actions,
    })
}

/// The refusal (exit 2) if the state a saved plan was made from drifted or the plan made
/// now differs from the saved actions; `None` when it may be applied.
pub fn drift_refusal(
    saved: &SavedCommand,
    now_fingerprint: &BTreeMap<String, String>,
    now_actions: &[(String, String, Value)],
) -> Option<Error> {
    let remake = format!("asm {} … --plan-out FILE", saved.command);
    let drifted = drift(&saved.fingerprint, now_fingerprint);
    if !drifted.is_empty() {
        return Some(refusal(
            &saved.file,
            "the state it was planned from has changed",
            &drifted,
            &remake,
        ));
    }
    let differences = differences(&saved.actions, now_actions);
    (!differences.is_empty()).then(|| {
        refusal(
            &saved.file,
            "the actions planned now differ from the saved ones",
            &differences,
            &remake,
        )
    })
}

/// `asm apply` of a saved plan: refuses (exit 2, see [`drift_refusal`]) unless the state
/// and the plan made now match it, then says so. Without a saved plan, nothing to check.
pub fn refuse_unless_it_matches(
    saved: Option<&SavedCommand>,
    now_fingerprint: &BTreeMap<String, String>,
    now_actions: impl FnOnce() -> Vec<(String, String, Value)>,
    printer: &crate::output::Printer,
) -> Result<(), Error> {
    let Some(saved) = saved else {
        return Ok(());
    };
    let actions = now_actions();
    if let Some(refused) = drift_refusal(saved, now_fingerprint, &actions) {
        return Err(refused);
    }
    printer.progress(&matches_line(saved, now_fingerprint.len(), actions.len()));
    Ok(())
}

/// A string input of a saved plan (`None` when null or absent).
pub fn opt_str(inputs: &Value, key: &str) -> Option<String> {
    inputs[key].as_str().map(str::to_string)
}

/// A list of strings of a saved plan's inputs.
pub fn str_list(inputs: &Value, key: &str) -> Vec<String> {
    inputs[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A boolean input of a saved plan; a missing or mistyped one is refused (exit 2).
pub fn bool_input(saved: &SavedCommand, key: &str) -> Result<bool, Error> {
    saved.inputs[key].as_bool().ok_or_else(|| {
        Error::usage(
            "ASM-E106",
            format!(
                "plan file {:?}: inputs.{key} is missing or not a boolean",
                saved.file.display()
            ),
        )
    })
}

/// The line `asm apply` prints when the state matches the saved plan.
fn matches_line(saved: &SavedCommand, observations: usize, actions: usize) -> String {
    format!(
        "The state matches the plan in {} ({observations} observations); applying its {actions} action{}.",
        saved.file.display(),
        if actions == 1 { "" } else { "s" }
    )
}

/// Saves `doc` to `file` and says how to apply it (`--plan-out`).
pub fn save_and_tell(
    file: &Path,
    doc: &impl Serialize,
    printer: &crate::output::Printer,
) -> Result<(), Error> {
    write(file, doc)?;
    printer.progress(&format!(
        "Saved the plan to {}; apply exactly it with `asm apply {}`.",
        file.display(),
        file.display()
    ));
    Ok(())
}

/// At most this many drifted items are listed in a refusal.
const SHOWN: usize = 20;

/// `asm apply`'s refusal (exit 2, nothing changed): `what` happened, `lines` name it;
/// `remake` is the command that makes a new plan.
pub fn refusal(file: &Path, what: &str, lines: &[String], remake: &str) -> Error {
    let mut msg = format!("refusing to apply {}: {what}:", file.display());
    for l in lines.iter().take(SHOWN) {
        msg.push_str(&format!("\n  {l}"));
    }
    if lines.len() > SHOWN {
        msg.push_str(&format!("\n  … and {} more", lines.len() - SHOWN));
    }
    Error::usage("ASM-E107", msg).with_hint(format!(
        "nothing was changed; make a new plan (`{remake}`), review it, apply it"
    ))
}

/// Parses a `--timeout` override for `asm apply`.
pub fn timeout_override(value: Option<&str>) -> Result<Option<Duration>, Error> {
    value.map(|v| parse_duration("--timeout", v)).transpose()
}

/// The target flags as saved (`inputs.target`): clusters and how to reach them; the
/// credentials come from `asm apply`'s own flags.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TargetInputs {
    pub project: Option<String>,
    pub location: Option<String>,
    pub cluster_name: Option<String>,
    /// `--cluster` values (`PROJECT/LOCATION/NAME`).
    pub clusters: Vec<String>,
    pub fleet_id: Option<String>,
    /// `--kubeconfig`, by path.
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
}

/// The target flags as saved (`inputs.target`).
pub fn target_inputs(t: &TargetArgs) -> TargetInputs {
    TargetInputs {
        project: t.project.clone(),
        location: t.location.clone(),
        cluster_name: t.cluster_name.clone(),
        clusters: t.clusters.clone(),
        fleet_id: t.fleet_id.clone(),
        kubeconfig: t.kubeconfig.as_ref().map(|p| p.display().to_string()),
        context: t.context.clone(),
    }
}

/// The target flags of a saved plan, with `asm apply`'s credentials.
pub fn target_from(saved: &SavedCommand, credentials: &CredentialArgs) -> TargetArgs {
    let t = &saved.inputs["target"];
    TargetArgs {
        project: opt_str(t, "project"),
        location: opt_str(t, "location"),
        cluster_name: opt_str(t, "cluster_name"),
        clusters: str_list(t, "clusters"),
        fleet_id: opt_str(t, "fleet_id"),
        kubeconfig: opt_str(t, "kubeconfig").map(PathBuf::from),
        context: opt_str(t, "context"),
        credentials: credentials.clone(),
    }
}

/// A string input of a saved plan that must be there (exit 2 otherwise).
pub fn required_str(saved: &SavedCommand, key: &str) -> Result<String, Error> {
    opt_str(&saved.inputs, key).ok_or_else(|| {
        Error::usage(
            "ASM-E106",
            format!(
                "plan file {:?}: inputs.{key} is missing or not a string",
                saved.file.display()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::tests::{fresh, spec};

    #[test]
    fn round_trips_the_spec_and_never_holds_a_token() {
        let mut s = spec(
            &["asm-fresh/us-central1-c/cluster-1"],
            EnableFlags::all(),
            Management::Revision,
        );
        s.options = vec![MeshOption::CniManaged];
        s.channel = Some(Channel::Rapid);
        s.ca = CertificateAuthority::PrivateCa {
            pool: "projects/p/locations/us-central1/caPools/pool-1".into(),
        };
        let obs = fresh(&s);
        let plan = crate::steps::plan_mesh(&s, &obs);
        let fp = crate::steps::observe::fingerprint(&s, &obs);
        let doc = serde_json::to_value(document(&plan, &s, &fp)).unwrap();
        let text = format!("{doc:#}");
        assert_eq!(doc["schema"], "asm.plan/v1");
        assert!(doc["actions"][0]["payload"]["step"].is_string());
        let back = read(Path::new("p.json"), &text).unwrap();
        assert_eq!(back.spec, s);
        assert_eq!(back.fingerprint, fp);
        assert!(action_differences(&back.actions, &plan).is_empty());
        // A tampered input is validated like a flag.
        let bad = text.replace("asm-fresh/us-central1-c/cluster-1", "Bad/x/y");
        assert_eq!(read(Path::new("p.json"), &bad).unwrap_err().exit_code, 2);
        // `-o json` output is not a saved plan.
        let plain = format!("{:#}", render::json(&plan, None));
        assert!(
            read(Path::new("p.json"), &plain)
                .unwrap_err()
                .message
                .contains("not a saved plan")
        );
    }
}
