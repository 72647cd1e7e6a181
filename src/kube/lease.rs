//! One asm run per cluster at a time: a `coordination.k8s.io/v1` Lease `kube-system/asm-lock`
//! (https://kubernetes.io/docs/concepts/architecture/leases/), taken after the prechecks and
//! the confirmation gate (a dry run or a refused run takes none), renewed every few seconds
//! with a short duration, released at the end.
//!
//! A second run finds the lease held: it waits up to `--lock-timeout`, or stops naming the
//! holder. A holder on this host whose process is gone (a killed run) is taken over at once;
//! any other only once its lease has expired — so a run killed anywhere is resumed by the
//! next one without waiting, and a run on another machine is never cut short.
//!
//! The decision ([`decide`]) is a pure function of the lease found, who we are and the time;
//! the I/O around it ([`ClusterLocks`]) creates, replaces (with the `resourceVersion` seen, so
//! two takers cannot both win) and deletes the object.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use tokio::task::JoinHandle;

use crate::error::{Error, exit};
use crate::kube::KubeError;
use crate::output::Printer;

/// Where the lock lives on every cluster.
pub const NAMESPACE: &str = "kube-system";
/// The Lease's name.
pub const NAME: &str = "asm-lock";
/// How long a lease lasts without renewal.
pub const DURATION: Duration = Duration::from_secs(15);
/// How often a held lease is renewed (well inside [`DURATION`]).
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How often a waiting run looks again.
const POLL: Duration = Duration::from_secs(1);

/// Who holds a lock: `HOST/PID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
}

impl Holder {
    /// This process on this host.
    pub fn this_process() -> Holder {
        Holder {
            host: host_name(),
            pid: std::process::id(),
        }
    }

    /// The `holderIdentity` written into the Lease.
    pub fn identity(&self) -> String {
        format!("{}/{}", self.host, self.pid)
    }

    /// Parses a `holderIdentity` asm wrote; `None` for anything else (another tool's).
    pub fn parse(identity: &str) -> Option<Holder> {
        let (host, pid) = identity.rsplit_once('/')?;
        Some(Holder {
            host: host.to_string(),
            pid: pid.parse().ok()?,
        })
    }
}

/// The parts of a found Lease the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub holder: Option<String>,
    pub renewed: Option<Timestamp>,
    pub duration: Duration,
    pub resource_version: Option<String>,
}

/// What to do about the lock on one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No lease: create it.
    Create,
    /// A lease that nobody holds any more (expired, released, or its holder's process is
    /// gone): replace it, guarded by this `resourceVersion`.
    TakeOver { resource_version: Option<String> },
    /// Someone else holds it until about `until`.
    Wait {
        holder: String,
        until: Option<Timestamp>,
    },
}

/// Decides about `found` for `me` at `now`; `process_alive(pid)` answers for holders on
/// this host (`None`: cannot tell, then only expiry frees the lease).
pub fn decide(
    found: Option<&Found>,
    me: &Holder,
    now: Timestamp,
    process_alive: impl Fn(u32) -> Option<bool>,
) -> Decision {
    let Some(found) = found else {
        return Decision::Create;
    };
    let take_over = Decision::TakeOver {
        resource_version: found.resource_version.clone(),
    };
    let Some(holder) = found.holder.as_deref().filter(|h| !h.is_empty()) else {
        return take_over;
    };
    let until = found.renewed.and_then(|r| {
        SignedDuration::try_from(found.duration)
            .ok()
            .and_then(|d| r.checked_add(d).ok())
    });
    if until.is_some_and(|u| u <= now) {
        return take_over;
    }
    if let Some(h) = Holder::parse(holder)
        && h.host == me.host
        && (h.pid == me.pid || process_alive(h.pid) == Some(false))
    {
        return take_over;
    }
    Decision::Wait {
        holder: holder.to_string(),
        until,
    }
}

/// Whether process `pid` on this host exists (Linux: `/proc/PID`); `None` elsewhere.
pub fn process_alive(pid: u32) -> Option<bool> {
    if cfg!(target_os = "linux") {
        Some(std::path::Path::new(&format!("/proc/{pid}")).exists())
    } else {
        None
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn found_of(lease: &Lease) -> Found {
    let spec = lease.spec.clone().unwrap_or_default();
    Found {
        holder: spec.holder_identity,
        renewed: spec.renew_time.or(spec.acquire_time).map(|t| t.0),
        duration: Duration::from_secs(
            spec.lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0),
        ),
        resource_version: lease.metadata.resource_version.clone(),
    }
}

fn lease_object(me: &Holder, now: Timestamp, resource_version: Option<String>) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            namespace: Some(NAMESPACE.into()),
            resource_version,
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(me.identity()),
            lease_duration_seconds: Some(DURATION.as_secs() as i32),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    }
}

/// A cluster whose lock a run takes: its label in messages and its client.
#[derive(Clone)]
pub struct LockTarget {
    pub cluster: String,
    pub client: Client,
}

struct Held {
    cluster: String,
    api: Api<Lease>,
    renew: JoinHandle<()>,
}

/// The locks a run holds, renewed in the background until [`ClusterLocks::release`].
pub struct ClusterLocks {
    held: Vec<Held>,
    me: Holder,
    /// How long taking them waited for other runs (not charged to `--timeout`).
    pub waited: Duration,
}

/// The outcome of one attempt on one cluster.
enum Attempt {
    Taken,
    Busy {
        holder: String,
        until: Option<Timestamp>,
    },
}

impl ClusterLocks {
    /// Takes the lock on every target, waiting up to `wait` while another run holds one:
    /// all or none (a partly taken set is given back before waiting, so two runs over
    /// overlapping clusters cannot hold each other up).
    pub async fn acquire(
        targets: &[LockTarget],
        me: Holder,
        wait: Duration,
        printer: &Printer,
    ) -> Result<ClusterLocks, Error> {
        let started = tokio::time::Instant::now();
        let deadline = started + wait;
        let mut announced = false;
        loop {
            let attempts = futures::future::join_all(targets.iter().map(|t| attempt(t, &me))).await;
            let mut held = Vec::new();
            let mut busy = Vec::new();
            let mut failed = None;
            for (t, a) in targets.iter().zip(attempts) {
                match a {
                    Ok(Attempt::Taken) => held.push(t),
                    Ok(Attempt::Busy { holder, until }) => busy.push((t, holder, until)),
                    Err(e) => failed = Some(e),
                }
            }
            if busy.is_empty() && failed.is_none() {
                let held = held
                    .into_iter()
                    .map(|t| {
                        let api: Api<Lease> = Api::namespaced(t.client.clone(), NAMESPACE);
                        Held {
                            cluster: t.cluster.clone(),
                            renew: tokio::spawn(renew(api.clone(), me.clone())),
                            api,
                        }
                    })
                    .collect();
                return Ok(ClusterLocks {
                    held,
                    me,
                    waited: started.elapsed(),
                });
            }
            for t in held {
                let api: Api<Lease> = Api::namespaced(t.client.clone(), NAMESPACE);
                let _ = release_one(&api, &me).await;
            }
            if let Some(e) = failed {
                return Err(e);
            }
            let (first, holder, until) = &busy[0];
            if tokio::time::Instant::now() + POLL > deadline {
                return Err(Error::new(
                    "ASM-E480",
                    exit::LOCKED,
                    format!(
                        "cluster {} is locked by another asm run ({holder}, lease {NAMESPACE}/{NAME}{})",
                        first.cluster,
                        until
                            .map(|u| format!(", held until {}", u.round(k8s_openapi::jiff::Unit::Second).unwrap_or(u)))
                            .unwrap_or_default()
                    ),
                )
                .with_hint(
                    "wait for it to finish, or pass --lock-timeout DURATION to wait for it; a run that died frees its lock within 15s",
                ));
            }
            if !announced {
                printer.progress(&format!(
                    "Waiting for the lock of cluster {} (held by {holder})…",
                    first.cluster
                ));
                announced = true;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Gives every lock back (deletes the Lease if it is still ours).
    pub async fn release(self) {
        for h in &self.held {
            h.renew.abort();
        }
        let releases = self.held.iter().map(|h| release_one(&h.api, &self.me));
        for (h, r) in self
            .held
            .iter()
            .zip(futures::future::join_all(releases).await)
        {
            if let Err(e) = r {
                tracing::debug!(target: "asm", cluster = %h.cluster, error = %e, "releasing the lock failed; it expires by itself");
            }
        }
    }

    /// How many clusters are locked.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// No cluster locked.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

impl Drop for ClusterLocks {
    fn drop(&mut self) {
        // An early return without release(): stop renewing, the lease expires by itself.
        for h in &self.held {
            h.renew.abort();
        }
    }
}

async fn attempt(t: &LockTarget, me: &Holder) -> Result<Attempt, Error> {
    // Reading, deciding and writing again is safe after a transient failure: a create or
    // takeover that did land reads back as ours and is taken over by ourselves.
    crate::steps::observe::kube_retry(|| attempt_once(t, me))
        .await
        .map_err(|e| {
            Error::new(
                "ASM-E481",
                exit::APPLY_FAILED,
                format!(
                    "taking the lock of cluster {} ({NAMESPACE}/{NAME}): {e}",
                    t.cluster
                ),
            )
        })
}

async fn attempt_once(t: &LockTarget, me: &Holder) -> Result<Attempt, KubeError> {
    let api: Api<Lease> = Api::namespaced(t.client.clone(), NAMESPACE);
    let what = format!("{NAMESPACE}/{NAME}");
    let found = api
        .get_opt(NAME)
        .await
        .map_err(|e| KubeError::from_kube(format!("get Lease {what}"), e))?;
    let now = Timestamp::now();
    let decision = decide(
        found.as_ref().map(found_of).as_ref(),
        me,
        now,
        process_alive,
    );
    let result = match decision {
        Decision::Create => {
            api.create(&PostParams::default(), &lease_object(me, now, None))
                .await
        }
        Decision::TakeOver { resource_version } => {
            api.replace(
                NAME,
                &PostParams::default(),
                &lease_object(me, now, resource_version),
            )
            .await
        }
        Decision::Wait { holder, until } => return Ok(Attempt::Busy { holder, until }),
    };
    match result {
        Ok(_) => Ok(Attempt::Taken),
        // Another run created or took it in between: it holds it now.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Busy {
            holder: "another asm run".into(),
            until: None,
        }),
        Err(e) => Err(KubeError::from_kube(format!("write Lease {what}"), e)),
    }
}

/// Renews the lease every [`RENEW_EVERY`] while it is ours.
async fn renew(api: Api<Lease>, me: Holder) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let Ok(Some(mut lease)) = api.get_opt(NAME).await else {
            continue;
        };
        let ours = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(me.identity().as_str());
        if !ours {
            return;
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(MicroTime(Timestamp::now()));
        }
        if let Err(e) = api.replace(NAME, &PostParams::default(), &lease).await {
            tracing::debug!(target: "asm", error = %e, "renewing the lock failed; retrying");
        }
    }
}

/// Deletes the lease if `me` still holds it (uid/resourceVersion preconditions).
async fn release_one(api: &Api<Lease>, me: &Holder) -> Result<(), kube::Error> {
    let Some(lease) = api.get_opt(NAME).await? else {
        return Ok(());
    };
    let ours = lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        == Some(me.identity().as_str());
    if !ours {
        return Ok(());
    }
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: lease.metadata.uid.clone(),
            resource_version: lease.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    match api.delete(NAME, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn me() -> Holder {
        Holder {
            host: "ws1".into(),
            pid: 100,
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn held_by(holder: &str, renewed: i64) -> Found {
        Found {
            holder: Some(holder.into()),
            renewed: Some(at(renewed)),
            duration: DURATION,
            resource_version: Some("7".into()),
        }
    }

    const ALIVE: fn(u32) -> Option<bool> = |_| Some(true);
    const DEAD: fn(u32) -> Option<bool> = |_| Some(false);
    const UNKNOWN: fn(u32) -> Option<bool> = |_| None;

    #[test]
    fn no_lease_is_created() {
        assert_eq!(decide(None, &me(), at(0), ALIVE), Decision::Create);
    }

    #[test]
    fn a_live_holder_elsewhere_is_waited_for_until_its_lease_expires() {
        let f = held_by("ws2/5", 0);
        assert_eq!(
            decide(Some(&f), &me(), at(14), DEAD),
            Decision::Wait {
                holder: "ws2/5".into(),
                until: Some(at(15))
            }
        );
        assert_eq!(
            decide(Some(&f), &me(), at(15), ALIVE),
            Decision::TakeOver {
                resource_version: Some("7".into())
            }
        );
    }

    #[test]
    fn a_dead_holder_on_this_host_is_taken_over_at_once() {
        let f = held_by("ws1/42", 0);
        assert!(matches!(
            decide(Some(&f), &me(), at(1), DEAD),
            Decision::TakeOver { .. }
        ));
        assert!(matches!(
            decide(Some(&f), &me(), at(1), ALIVE),
            Decision::Wait { .. }
        ));
        assert!(matches!(
            decide(Some(&f), &me(), at(1), UNKNOWN),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn our_own_or_an_empty_lease_is_taken() {
        assert!(matches!(
            decide(Some(&held_by("ws1/100", 0)), &me(), at(1), ALIVE),
            Decision::TakeOver { .. }
        ));
        let empty = Found {
            holder: None,
            ..held_by("", 0)
        };
        assert!(matches!(
            decide(Some(&empty), &me(), at(1), ALIVE),
            Decision::TakeOver { .. }
        ));
    }

    #[test]
    fn another_tools_holder_identity_waits_for_expiry() {
        let f = held_by("kube-scheduler-xyz", 0);
        assert!(matches!(
            decide(Some(&f), &me(), at(3), DEAD),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn holder_identity_round_trips() {
        let h = Holder {
            host: "a/b".into(),
            pid: 9,
        };
        assert_eq!(Holder::parse(&h.identity()), Some(h));
    }
}
