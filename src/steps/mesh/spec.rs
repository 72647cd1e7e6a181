//! `create-mesh`'s input, validated: which clusters (GKE references or kubeconfig
//! contexts) and what to do. Every rejection happens here, before any request (exit 2).

use std::time::Duration;

use crate::cli::create_mesh::CreateMeshArgs;
use crate::cli::install::OutputArg;
use crate::error::Error;
use crate::spec::{ClusterRef, PlanFlags, ProjectId, parse_duration};

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
    /// `--dry-run`, `--yes`, `--detailed-exitcode`, `--plan-out`, `-D`.
    pub plan: PlanFlags,
    pub json: bool,
    pub timeout: Duration,
    /// `--lock-timeout`.
    pub lock_timeout: Duration,
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
        let plan = PlanFlags::new(
            a.dry_run,
            a.yes,
            a.detailed_exitcode,
            a.plan_out.as_deref(),
            a.output_dir.as_deref(),
        )?;
        Ok(CreateMeshSpec {
            members,
            fleet,
            all_memberships: a.all_memberships,
            register: a.register,
            verify: a.verify,
            plan,
            json: a.output == OutputArg::Json,
            timeout: parse_duration("--timeout", &a.timeout)?,
            lock_timeout: crate::spec::parse_lock_timeout(&a.lock.lock_timeout)?,
        })
    }
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
            lock: crate::cli::lock::LockArgs {
                lock_timeout: "0s".into(),
            },
            detailed_exitcode: false,
            output_dir: None,
            plan_out: None,
            credentials: Default::default(),
        };
        assert_eq!(CreateMeshSpec::from_args(&a).unwrap_err().exit_code, 2);
    }
}
