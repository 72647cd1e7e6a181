//! Args → validated Spec. Every rejection happens here, before any request, as a usage
//! error (exit 2) naming the input and the rule it breaks.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::install::{
    CaArg, CaArgs, ChannelArg, ControlPlaneArgs, EnableArgs, InstallArgs, ManagementArg, OutputArg,
    TargetArgs, UnsupportedArgs, ValidateArgs,
};
use crate::error::Error;

/// A Google Cloud project ID: `^[a-z][a-z0-9-]{4,28}[a-z0-9]$`, optionally `domain:` first.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct ProjectId(String);

/// A GKE zone or region: `^[a-z]+-[a-z]+[0-9]+(-[a-z])?$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location(String);

/// A GKE cluster name: `^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterName(String);

/// One cluster: project, location, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterRef {
    pub project: ProjectId,
    pub location: Location,
    pub name: ClusterName,
}

/// A release channel of the managed control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Channel {
    #[default]
    Regular,
    Rapid,
    Stable,
}

/// How the managed control plane is provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Management {
    /// Fleet automatic management (gkehub v2 membership feature).
    Automatic,
    /// A ControlPlaneRevision applied to the cluster.
    Revision,
}

/// Output format of plans and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

/// A control plane option (`--option NAME`), mapped to an `ASM_OPTS` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MeshOption {
    /// `cni-managed` → `CNI=on`.
    CniManaged,
}

/// The mesh certificate authority.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CertificateAuthority {
    /// Mesh CA (the default; nothing in `ASM_OPTS`).
    #[default]
    MeshCa,
    /// Certificate Authority Service: `CA=PRIVATECA;CAAddr=POOL` in `ASM_OPTS`.
    PrivateCa { pool: String },
}

impl CertificateAuthority {
    /// `mesh_ca` or `gcp_cas` (asmcli's `--ca` values).
    pub fn name(&self) -> &'static str {
        match self {
            CertificateAuthority::MeshCa => "mesh_ca",
            CertificateAuthority::PrivateCa { .. } => "gcp_cas",
        }
    }

    /// Validates a CA Service pool: `projects/P/locations/L/caPools/N`, optionally followed by
    /// `:projects/P/locations/L/certificateTemplates/T` (asmcli flow C).
    pub fn parse_pool(value: &str) -> Result<String, Error> {
        let (pool, template) = match value.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (value, None),
        };
        let seg_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        };
        let shape = |s: &str, kind: &str| {
            let parts: Vec<&str> = s.split('/').collect();
            matches!(parts.as_slice(), ["projects", p, "locations", l, k, n]
                if *k == kind && seg_ok(p) && seg_ok(l) && seg_ok(n))
        };
        if shape(pool, "caPools") && template.is_none_or(|t| shape(t, "certificateTemplates")) {
            Ok(value.to_string())
        } else {
            Err(usage(format!(
                "--ca-pool {value:?} is malformed: it must be of the form \
                 projects/PROJECT/locations/REGION/caPools/POOL \
                 (optionally :projects/PROJECT/locations/REGION/certificateTemplates/TEMPLATE)"
            )))
        }
    }
}

/// What a mesh command covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Everything: prerequisites and the control plane.
    #[default]
    Full,
    /// asmcli `--only_enable`: only the enable-* actions (APIs, workload identity, labels,
    /// registration, fleet feature); no namespace, options or control plane.
    EnableOnly,
}

/// What asm may change besides the control plane (asmcli's `--enable-*` flags, README "install_asm / asmcli compatibility").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EnableFlags {
    pub apis: bool,
    pub iam_roles: bool,
    pub components: bool,
    pub cluster_labels: bool,
    pub registration: bool,
    pub namespace_creation: bool,
}

/// How to reach the clusters' Kubernetes APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeAccess {
    /// GKE's `endpoint` + `masterAuth.clusterCaCertificate` with the Google token.
    Gke,
    /// A kubeconfig (`--kubeconfig` and/or `--context`); exactly one cluster.
    Kubeconfig {
        path: Option<PathBuf>,
        context: Option<String>,
    },
}

/// Everything `install --managed` and `validate` need, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshSpec {
    pub clusters: Vec<ClusterRef>,
    pub fleet_project: ProjectId,
    pub management: Management,
    pub channel: Option<Channel>,
    pub options: Vec<MeshOption>,
    pub enable: EnableFlags,
    pub output: OutputFormat,
    pub timeout: Duration,
    pub kube: KubeAccess,
    pub ca: CertificateAuthority,
    pub scope: Scope,
}

impl MeshSpec {
    /// The `ASM_OPTS` entries this spec wants in ConfigMap `istio-system/asm-options`: the
    /// `--option`s (revision management only; fleet automatic management chooses its own)
    /// and the CA entries (both managements).
    pub fn asm_opts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if self.management == Management::Revision {
            out.extend(self.options.iter().map(|o| o.asm_opt().to_string()));
        }
        if let CertificateAuthority::PrivateCa { pool } = &self.ca {
            out.push("CA=PRIVATECA".into());
            out.push(format!("CAAddr={pool}"));
        }
        out
    }
}

/// `asm install --managed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSpec {
    pub mesh: MeshSpec,
    /// `--dry-run`, `--yes` (implied by `--mode install`), `--detailed-exitcode`,
    /// `--plan-out`, `-D`.
    pub plan: PlanFlags,
    /// `--lock-timeout`: how long to wait for another run's cluster lock.
    pub lock_timeout: Duration,
}

fn usage(message: impl Into<String>) -> Error {
    Error::usage("ASM-E101", message)
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn valid_plain_project(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    (6..=30).contains(&n)
        && chars[0].is_ascii_lowercase()
        && chars[1..n - 1]
            .iter()
            .all(|&c| is_lower_alnum(c) || c == '-')
        && is_lower_alnum(chars[n - 1])
}

fn valid_domain(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| is_lower_alnum(c) || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl ProjectId {
    pub const RULE: &'static str = "6 to 30 characters: a lowercase letter, then lowercase letters, digits or hyphens, \
         not ending with a hyphen (optionally prefixed by `domain:`)";

    pub fn parse(flag: &str, value: &str) -> Result<Self, Error> {
        let ok = match value.split_once(':') {
            Some((domain, rest)) => valid_domain(domain) && valid_plain_project(rest),
            None => valid_plain_project(value),
        };
        if ok {
            Ok(ProjectId(value.to_string()))
        } else {
            Err(usage(format!(
                "{flag} {value:?} is not a valid project ID: {}",
                ProjectId::RULE
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Location {
    pub const RULE: &'static str = "a GKE region or zone such as `us-central1` or `us-central1-c`";

    pub fn parse(flag: &str, value: &str) -> Result<Self, Error> {
        if valid_location(value) {
            Ok(Location(value.to_string()))
        } else {
            Err(usage(format!(
                "{flag} {value:?} is not a valid location: {}",
                Location::RULE
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The region of a zone (`us-central1-c` → `us-central1`); a region is itself.
    pub fn region(&self) -> &str {
        let parts: Vec<&str> = self.0.split('-').collect();
        if parts.len() == 3 {
            let cut = self.0.len() - parts[2].len() - 1;
            &self.0[..cut]
        } else {
            &self.0
        }
    }
}

/// `^[a-z]+-[a-z]+[0-9]+(-[a-z])?$`
fn valid_location(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    if !(2..=3).contains(&parts.len()) {
        return false;
    }
    let first = !parts[0].is_empty() && parts[0].chars().all(|c| c.is_ascii_lowercase());
    let second = {
        let p = parts[1];
        let letters = p.chars().take_while(|c| c.is_ascii_lowercase()).count();
        let digits = p[letters..].chars().all(|c| c.is_ascii_digit());
        letters > 0 && letters < p.len() && digits
    };
    let third = parts
        .get(2)
        .is_none_or(|p| p.len() == 1 && p.chars().all(|c| c.is_ascii_lowercase()));
    first && second && third
}

impl ClusterName {
    pub const RULE: &'static str = "1 to 40 characters: a lowercase letter, then lowercase \
         letters, digits or hyphens, not ending with a hyphen";

    pub fn parse(flag: &str, value: &str) -> Result<Self, Error> {
        let chars: Vec<char> = value.chars().collect();
        let n = chars.len();
        let ok = (1..=40).contains(&n)
            && chars[0].is_ascii_lowercase()
            && (n == 1
                || (chars[1..n - 1]
                    .iter()
                    .all(|&c| is_lower_alnum(c) || c == '-')
                    && is_lower_alnum(chars[n - 1])));
        if ok {
            Ok(ClusterName(value.to_string()))
        } else {
            Err(usage(format!(
                "{flag} {value:?} is not a valid cluster name: {}",
                ClusterName::RULE
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ClusterRef {
    /// Parses `PROJECT/LOCATION/NAME` (`--cluster`).
    pub fn parse(value: &str) -> Result<Self, Error> {
        let parts: Vec<&str> = value.split('/').collect();
        let [p, l, n] = parts.as_slice() else {
            return Err(usage(format!(
                "--cluster {value:?} must have the form PROJECT/LOCATION/NAME"
            )));
        };
        Ok(ClusterRef {
            project: ProjectId::parse("--cluster project", p)?,
            location: Location::parse("--cluster location", l)?,
            name: ClusterName::parse("--cluster name", n)?,
        })
    }

    /// `projects/P/locations/L/clusters/N`.
    pub fn resource_name(&self) -> String {
        format!(
            "projects/{}/locations/{}/clusters/{}",
            self.project, self.location, self.name
        )
    }
}

impl fmt::Display for ClusterRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.project, self.location, self.name)
    }
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Regular => "regular",
            Channel::Rapid => "rapid",
            Channel::Stable => "stable",
        }
    }

    /// The revision (ControlPlaneRevision name, `istio.io/rev` label) of this channel.
    pub fn revision(self) -> &'static str {
        match self {
            Channel::Regular => "asm-managed",
            Channel::Rapid => "asm-managed-rapid",
            Channel::Stable => "asm-managed-stable",
        }
    }

    /// The channel used for a GKE release channel (as asmcli maps it): RAPID → rapid,
    /// STABLE → stable, anything else (REGULAR, EXTENDED, none) → regular.
    pub fn from_gke(gke: Option<&str>) -> Channel {
        match gke.map(str::to_ascii_uppercase).as_deref() {
            Some("RAPID") => Channel::Rapid,
            Some("STABLE") => Channel::Stable,
            _ => Channel::Regular,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl MeshOption {
    pub const KNOWN: &'static str = "cni-managed";

    pub fn parse(value: &str) -> Result<Self, Error> {
        match value {
            "cni-managed" => Ok(MeshOption::CniManaged),
            other => Err(usage(format!(
                "--option {other:?} is not a known option: expected one of {}",
                MeshOption::KNOWN
            ))),
        }
    }

    /// The `ASM_OPTS` entry of this option.
    pub fn asm_opt(self) -> &'static str {
        match self {
            MeshOption::CniManaged => "CNI=on",
        }
    }
}

impl EnableFlags {
    /// asmcli's predicates for these flags.
    pub fn from_args(args: &EnableArgs, managed: bool) -> EnableFlags {
        let all = args.enable_all;
        EnableFlags {
            apis: all || args.enable_gcp_apis,
            iam_roles: all || managed || args.enable_gcp_iam_roles,
            components: all || managed || args.enable_gcp_components,
            cluster_labels: all || args.enable_cluster_labels,
            registration: all || args.enable_registration,
            namespace_creation: all || args.enable_namespace_creation,
        }
    }

    /// Everything allowed (used to find what *would* be needed).
    pub fn all() -> EnableFlags {
        EnableFlags {
            apis: true,
            iam_roles: true,
            components: true,
            cluster_labels: true,
            registration: true,
            namespace_creation: true,
        }
    }
}

/// Parses `10m`, `90s`, `1h30m`, `500ms` or plain seconds.
pub fn parse_duration(flag: &str, value: &str) -> Result<Duration, Error> {
    let bad = || {
        usage(format!(
            "{flag} {value:?} is not a valid duration: use e.g. `10m`, `90s`, `1h30m` or seconds"
        ))
    };
    let v = value.trim();
    if v.is_empty() {
        return Err(bad());
    }
    if v.chars().all(|c| c.is_ascii_digit()) {
        let secs: u64 = v.parse().map_err(|_| bad())?;
        return positive(Duration::from_secs(secs)).ok_or_else(bad);
    }
    let mut total = Duration::ZERO;
    let mut rest = v;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(d);
    }
    positive(total).ok_or_else(bad)
}

/// `--lock-timeout`: a duration as [`parse_duration`] reads it, or zero (`0`, `0s`): do not
/// wait.
pub fn parse_lock_timeout(value: &str) -> Result<Duration, Error> {
    let v = value.trim();
    let (digits, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    if !digits.is_empty()
        && digits.chars().all(|c| c == '0')
        && matches!(unit, "" | "ms" | "s" | "m" | "h")
    {
        return Ok(Duration::ZERO);
    }
    parse_duration("--lock-timeout", value)
}

fn positive(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

fn clusters_from(t: &TargetArgs) -> Result<Vec<ClusterRef>, Error> {
    let single = [&t.project, &t.location, &t.cluster_name];
    let any_single = single.iter().any(|v| v.is_some());
    let mut clusters = Vec::new();
    if !t.clusters.is_empty() {
        if any_single {
            return Err(usage(
                "--cluster cannot be combined with -p/--project, -l/--location or -n/--cluster-name",
            ));
        }
        for c in &t.clusters {
            let r = ClusterRef::parse(c)?;
            if clusters.contains(&r) {
                return Err(usage(format!("--cluster {c:?} is given twice")));
            }
            clusters.push(r);
        }
        return Ok(clusters);
    }
    let missing: Vec<&str> = [
        ("-p/--project", &t.project),
        ("-l/--location", &t.location),
        ("-n/--cluster-name", &t.cluster_name),
    ]
    .iter()
    .filter(|(_, v)| v.is_none())
    .map(|(f, _)| *f)
    .collect();
    if !missing.is_empty() {
        return Err(usage(format!(
            "missing {}: name a cluster with -p PROJECT -l LOCATION -n NAME, or --cluster PROJECT/LOCATION/NAME",
            missing.join(", ")
        )));
    }
    let (Some(p), Some(l), Some(n)) = (&t.project, &t.location, &t.cluster_name) else {
        return Err(usage("missing cluster"));
    };
    clusters.push(ClusterRef {
        project: ProjectId::parse("-p/--project", p)?,
        location: Location::parse("-l/--location", l)?,
        name: ClusterName::parse("-n/--cluster-name", n)?,
    });
    Ok(clusters)
}

fn mesh_spec(
    target: &TargetArgs,
    enable: &EnableArgs,
    managed: bool,
    control_plane: &ControlPlaneArgs,
    output: OutputArg,
    timeout: &str,
) -> Result<MeshSpec, Error> {
    let ControlPlaneArgs {
        management,
        channel,
        options,
        ca,
        unsupported,
    } = control_plane;
    // asmcli checks the managed-only rejections first (README "install_asm / asmcli compatibility").
    if managed {
        reject_unmanaged(ca, unsupported)?;
    }
    let ca = certificate_authority(ca)?;
    let Targets {
        clusters,
        fleet_project,
        kube,
    } = targets(target)?;
    let mut opts = Vec::new();
    for o in options {
        let o = MeshOption::parse(o)?;
        if !opts.contains(&o) {
            opts.push(o);
        }
    }
    let management = match management {
        ManagementArg::Automatic => Management::Automatic,
        ManagementArg::Revision => Management::Revision,
    };
    Ok(MeshSpec {
        clusters,
        fleet_project,
        management,
        channel: channel.map(|c| match c {
            ChannelArg::Regular => Channel::Regular,
            ChannelArg::Rapid => Channel::Rapid,
            ChannelArg::Stable => Channel::Stable,
        }),
        options: opts,
        enable: EnableFlags::from_args(enable, managed),
        output: match output {
            OutputArg::Text => OutputFormat::Text,
            OutputArg::Json => OutputFormat::Json,
        },
        timeout: parse_duration("--timeout", timeout)?,
        kube,
        ca,
        scope: Scope::Full,
    })
}

/// The clusters a command targets, its fleet host project and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub clusters: Vec<ClusterRef>,
    pub fleet_project: ProjectId,
    pub kube: KubeAccess,
}

/// Validates `-p/-l/-n`, `--cluster`, `--fleet-id`, `--kubeconfig` and `--context`.
pub fn targets(target: &TargetArgs) -> Result<Targets, Error> {
    let clusters = clusters_from(target)?;
    let fleet_project = match &target.fleet_id {
        Some(f) => ProjectId::parse("--fleet-id", f)?,
        None => {
            let first = clusters[0].project.clone();
            if clusters.iter().any(|c| c.project != first) {
                return Err(usage(
                    "the clusters are in several projects: name the fleet host project with --fleet-id",
                ));
            }
            first
        }
    };
    let kube = if target.kubeconfig.is_some() || target.context.is_some() {
        if clusters.len() != 1 {
            return Err(usage(format!(
                "--kubeconfig/--context reach one cluster, but {} clusters are given",
                clusters.len()
            )));
        }
        KubeAccess::Kubeconfig {
            path: target.kubeconfig.clone(),
            context: target.context.clone(),
        }
    } else {
        KubeAccess::Gke
    };
    Ok(Targets {
        clusters,
        fleet_project,
        kube,
    })
}

/// The [`MeshSpec`] of a command that targets clusters like install but installs no control
/// plane (`enable-dataplane`, `install-gateway`): clusters, fleet project, Kubernetes access,
/// output and timeout; `components` is `--enable-gcp-components`.
pub fn target_spec(
    target: &TargetArgs,
    components: bool,
    output: OutputArg,
    timeout: &str,
) -> Result<MeshSpec, Error> {
    let enable = EnableArgs {
        enable_gcp_components: components,
        ..EnableArgs::default()
    };
    let control_plane = ControlPlaneArgs {
        management: ManagementArg::Automatic,
        channel: None,
        options: Vec::new(),
        ca: CaArgs::default(),
        unsupported: UnsupportedArgs::default(),
    };
    mesh_spec(target, &enable, false, &control_plane, output, timeout)
}

/// A Kubernetes namespace name (an RFC 1123 label: at most 63 lowercase letters, digits and
/// `-`, starting and ending with a letter or digit), or a usage error naming `flag`.
pub fn namespace_name(flag: &str, value: &str) -> Result<String, Error> {
    let ok = (1..=63).contains(&value.len())
        && value.chars().all(|c| is_lower_alnum(c) || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(value.to_string())
    } else {
        Err(usage(format!(
            "{flag} {value:?} is not a valid namespace name: at most 63 lowercase letters, \
             digits and '-', starting and ending with a letter or digit"
        )))
    }
}

/// An object name (an RFC 1123 subdomain: at most 253 lowercase letters, digits, `-` and
/// `.`), or a usage error naming `flag`.
pub fn object_name(flag: &str, value: &str) -> Result<String, Error> {
    if (1..=253).contains(&value.len()) && valid_domain(value) {
        Ok(value.to_string())
    } else {
        Err(usage(format!(
            "{flag} {value:?} is not a valid object name: lowercase letters, digits, '-' and \
             '.', at most 253 characters"
        )))
    }
}

/// How a changing command presents and applies its plan: the flags every such command
/// shares, validated together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanFlags {
    /// `--dry-run`: show the plan and stop.
    pub dry_run: bool,
    /// `--yes`: apply without asking.
    pub yes: bool,
    /// `--detailed-exitcode`: a plan that stops with changes to make exits 10.
    pub detailed_exitcode: bool,
    /// `--plan-out FILE`: save the plan and stop.
    pub plan_out: Option<PathBuf>,
    /// `-D/--output-dir DIR`.
    pub output_dir: Option<PathBuf>,
}

impl PlanFlags {
    /// The flags as given, once they pass the rules every command shares:
    /// `--detailed-exitcode` needs a plan that stops (`--dry-run` or `--plan-out`), `--plan-out`
    /// names a file in a directory that exists, `-D` names a directory.
    pub fn new(
        dry_run: bool,
        yes: bool,
        detailed_exitcode: bool,
        plan_out: Option<&std::path::Path>,
        output_dir: Option<&std::path::Path>,
    ) -> Result<Self, Error> {
        if detailed_exitcode && !dry_run && plan_out.is_none() {
            return Err(usage(
                "--detailed-exitcode applies to a plan only: add --dry-run or --plan-out FILE",
            ));
        }
        plan_out_file(plan_out)?;
        self::output_dir(output_dir)?;
        Ok(PlanFlags {
            dry_run,
            yes,
            detailed_exitcode,
            plan_out: plan_out.map(PathBuf::from),
            output_dir: output_dir.map(PathBuf::from),
        })
    }
}

/// `-D/--output-dir` must name a directory (created if missing).
fn output_dir(dir: Option<&std::path::Path>) -> Result<(), Error> {
    if let Some(d) = dir
        && (d.as_os_str().is_empty() || (d.exists() && !d.is_dir()))
    {
        return Err(usage(format!(
            "-D/--output-dir {:?} must be a directory (it is created if missing)",
            d.display()
        )));
    }
    Ok(())
}

/// `--plan-out FILE`: a file (not a directory) in a directory that exists.
fn plan_out_file(file: Option<&std::path::Path>) -> Result<(), Error> {
    let Some(f) = file else { return Ok(()) };
    if f.as_os_str().is_empty() || f.is_dir() {
        return Err(usage(format!(
            "--plan-out {:?} must name a file, not a directory",
            f.display()
        )));
    }
    if let Some(parent) = f.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        return Err(usage(format!(
            "--plan-out {:?}: directory {:?} does not exist",
            f.display(),
            parent.display()
        )));
    }
    Ok(())
}

/// install_asm/asmcli's rejections for `--managed` (README "install_asm / asmcli compatibility").
fn reject_unmanaged(ca: &CaArgs, u: &UnsupportedArgs) -> Result<(), Error> {
    if ca.ca == Some(CaArg::Citadel) {
        return Err(usage(
            "--ca citadel: Citadel is not supported with the managed control plane \
             (use mesh_ca, the default, or gcp_cas with --ca-pool)",
        ));
    }
    let custom_ca: Vec<&str> = [
        ("--ca_cert", u.ca_cert.is_some()),
        ("--ca_key", u.ca_key.is_some()),
        ("--root_cert", u.root_cert.is_some()),
        ("--cert_chain", u.cert_chain.is_some()),
    ]
    .iter()
    .filter(|(_, given)| *given)
    .map(|(f, _)| *f)
    .collect();
    if !custom_ca.is_empty() {
        return Err(usage(format!(
            "{}: specifying a custom CA with the managed control plane is not supported \
             (bring your own CA with --ca gcp_cas --ca-pool POOL)",
            custom_ca.join(", ")
        )));
    }
    if let Some(r) = &u.revision_name {
        return Err(usage(format!(
            "-r/--revision_name {r:?}: specifying a revision name with the managed control plane \
             is not supported (the revision is asm-managed, asm-managed-rapid or \
             asm-managed-stable, from the cluster's release channel)"
        )));
    }
    if let Some(f) = u.custom_overlay.first() {
        return Err(usage(format!(
            "--custom_overlay {:?}: specifying a custom overlay file with the managed control \
             plane is not supported",
            f.display()
        )));
    }
    Ok(())
}

fn certificate_authority(ca: &CaArgs) -> Result<CertificateAuthority, Error> {
    match (ca.ca, &ca.ca_pool) {
        (Some(CaArg::GcpCas), Some(pool)) => Ok(CertificateAuthority::PrivateCa {
            pool: CertificateAuthority::parse_pool(pool)?,
        }),
        (Some(CaArg::GcpCas), None) => Err(usage(
            "--ca gcp_cas needs --ca-pool projects/PROJECT/locations/REGION/caPools/POOL",
        )),
        (_, Some(_)) => Err(usage("--ca-pool applies to --ca gcp_cas only")),
        (Some(CaArg::Citadel), None) => Err(usage(
            "--ca citadel: Citadel is not supported with the managed control plane",
        )),
        (None | Some(CaArg::MeshCa), None) => Ok(CertificateAuthority::MeshCa),
    }
}

fn any_enable_flag(e: &EnableArgs) -> bool {
    e.enable_all
        || e.enable_gcp_apis
        || e.enable_gcp_iam_roles
        || e.enable_gcp_components
        || e.enable_cluster_labels
        || e.enable_registration
        || e.enable_namespace_creation
}

impl InstallSpec {
    pub fn from_args(args: &InstallArgs) -> Result<Self, Error> {
        if !args.managed {
            return Err(usage(
                "asm installs the managed control plane only: add --managed",
            ));
        }
        if let Some(mode) = &args.mode
            && !mode.eq_ignore_ascii_case("install")
        {
            return Err(usage(format!(
                "--mode {mode:?} is not supported: only `install` (and it is the default); \
                 migrate and upgrade are incompatible with the managed control plane"
            )));
        }
        let mut mesh = mesh_spec(
            &args.target,
            &args.enable,
            true,
            &args.control_plane,
            args.output,
            &args.timeout,
        )?;
        if args.only_enable {
            if args.only_validate {
                return Err(usage(
                    "--only_enable and --only_validate exclude each other",
                ));
            }
            if !any_enable_flag(&args.enable) {
                return Err(usage(
                    "--only-enable needs at least one --enable-* flag (e.g. --enable-all)",
                ));
            }
            mesh.scope = Scope::EnableOnly;
        }
        let plan = PlanFlags::new(
            args.dry_run,
            // install_asm never asked: `--mode install` keeps its scripts non-interactive.
            args.yes || args.mode.is_some(),
            args.detailed_exitcode,
            args.plan_out.as_deref(),
            args.output_dir.as_deref(),
        )?;
        Ok(InstallSpec {
            mesh,
            plan,
            lock_timeout: parse_lock_timeout(&args.lock.lock_timeout)?,
        })
    }
}

impl MeshSpec {
    /// The spec `asm validate` checks against.
    pub fn from_validate(args: &ValidateArgs) -> Result<Self, Error> {
        mesh_spec(
            &args.target,
            &args.enable,
            args.managed,
            &args.control_plane,
            args.output,
            &args.timeout,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_flags_follow_the_rules_every_command_shares() {
        use std::path::Path;
        let ok = PlanFlags::new(true, false, true, None, None).unwrap();
        assert!(ok.dry_run && ok.detailed_exitcode && !ok.yes);
        let saved = PlanFlags::new(false, false, true, Some(Path::new("plan.json")), None);
        assert_eq!(saved.unwrap().plan_out, Some(PathBuf::from("plan.json")));
        for (flags, rule) in [
            (
                PlanFlags::new(false, true, true, None, None),
                "--detailed-exitcode applies to a plan only",
            ),
            (
                PlanFlags::new(
                    true,
                    false,
                    false,
                    Some(Path::new("/no/such/dir/p.json")),
                    None,
                ),
                "does not exist",
            ),
            (
                PlanFlags::new(true, false, false, Some(Path::new("/")), None),
                "must name a file",
            ),
            (
                PlanFlags::new(true, false, false, None, Some(Path::new(""))),
                "-D/--output-dir",
            ),
        ] {
            let e = flags.unwrap_err();
            assert_eq!(e.exit_code, 2);
            assert!(e.message.contains(rule), "{}", e.message);
        }
    }

    #[test]
    fn project_ids() {
        for ok in [
            "asm-fresh",
            "a12345",
            "google.com:my-proj",
            "abcdefghij-abcdefghij-abcdefgh",
        ] {
            assert!(ProjectId::parse("-p", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Asm-fresh",
            "abcde",
            "1abcdef",
            "asm-fresh-",
            "asm_fresh",
            "abcdefghij-abcdefghij-abcdefghi",
            ":asm-fresh",
            "a..b:asm-fresh",
        ] {
            let e = ProjectId::parse("-p/--project", bad).unwrap_err();
            assert_eq!(e.exit_code, 2);
            assert!(e.message.contains("-p/--project"), "{}", e.message);
        }
    }

    #[test]
    fn locations() {
        for ok in [
            "us-central1",
            "us-central1-c",
            "europe-west4-a",
            "asia-northeast1",
        ] {
            assert!(Location::parse("-l", ok).is_ok(), "{ok}");
        }
        for bad in [
            "us",
            "us-central",
            "US-central1",
            "us-central1-cc",
            "us-1central",
            "us-central1-",
        ] {
            assert!(Location::parse("-l", bad).is_err(), "{bad}");
        }
        assert_eq!(Location("us-central1-c".into()).region(), "us-central1");
        assert_eq!(Location("us-central1".into()).region(), "us-central1");
    }

    #[test]
    fn cluster_names() {
        for ok in ["a", "cluster-1", "a234567890123456789012345678901234567890"] {
            assert!(ClusterName::parse("-n", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "a-",
            "Cluster",
            "a_b",
            "a2345678901234567890123456789012345678901",
        ] {
            assert!(ClusterName::parse("-n", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("--timeout", "10m").unwrap(),
            Duration::from_secs(600)
        );
        assert_eq!(
            parse_duration("--timeout", "90").unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            parse_duration("--timeout", "1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_duration("--timeout", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        for bad in ["", "0", "0s", "10x", "m", "-1s"] {
            assert!(parse_duration("--timeout", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lock_timeouts_accept_zero_and_name_the_flag() {
        for zero in ["0", "0s", "00m"] {
            assert_eq!(parse_lock_timeout(zero).unwrap(), Duration::ZERO, "{zero}");
        }
        assert_eq!(parse_lock_timeout("2m").unwrap(), Duration::from_secs(120));
        let e = parse_lock_timeout("soon").unwrap_err();
        assert!(e.message.contains("--lock-timeout"), "{}", e.message);
        assert!(parse_lock_timeout("0x").is_err());
    }

    #[test]
    fn cluster_refs_and_conflicts() {
        let r = ClusterRef::parse("asm-fleet/us-central1-c/cluster-2").unwrap();
        assert_eq!(r.name.as_str(), "cluster-2");
        assert!(ClusterRef::parse("asm-fleet/cluster-2").is_err());
        let t = TargetArgs {
            project: Some("asm-fleet".into()),
            clusters: vec!["asm-fleet/us-central1-c/cluster-2".into()],
            ..Default::default()
        };
        assert!(clusters_from(&t).unwrap_err().message.contains("--cluster"));
        let t = TargetArgs {
            project: Some("asm-fleet".into()),
            ..Default::default()
        };
        let e = clusters_from(&t).unwrap_err();
        assert!(e.message.contains("-l/--location"), "{}", e.message);
    }

    #[test]
    fn channels() {
        assert_eq!(Channel::from_gke(Some("RAPID")), Channel::Rapid);
        assert_eq!(Channel::from_gke(Some("EXTENDED")), Channel::Regular);
        assert_eq!(Channel::from_gke(None), Channel::Regular);
        assert_eq!(Channel::Stable.revision(), "asm-managed-stable");
    }

    #[test]
    fn enable_predicates() {
        let f = EnableFlags::from_args(&EnableArgs::default(), true);
        assert!(f.components && f.iam_roles && !f.apis && !f.registration);
        let all = EnableFlags::from_args(
            &EnableArgs {
                enable_all: true,
                ..Default::default()
            },
            false,
        );
        assert_eq!(all, EnableFlags::all());
    }
}
