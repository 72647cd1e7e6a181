//! Execution (I/O): carries out one [`Step`] — the request, its long-running operation or
//! its wait — under the run's deadline. Every step is idempotent: re-running it after a
//! crash (or after another run did it) succeeds without changing anything twice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::error::{Error, exit};
use crate::gcp::gkehub::{gke_issuer, gke_resource_link};
use crate::gcp::{GcpClients, GcpError, Operation};
use crate::kube::KubeContext;
use crate::kube::apply::{ApplyOptions, apply};
use crate::kube::wait::{wait_control_plane_revision, wait_crd_established};
use crate::output::Printer;
use crate::plan::Action;
use crate::retry::{self, RetryPolicy, Verdict, retry_until_api_enabled};
use crate::spec::{ClusterRef, MeshSpec};
use crate::transport::ProgressFn;

use super::control_plane::{CPR_CRD, MANAGEMENT_AUTOMATIC, NAMESPACE};
use super::iam_bindings::PolicyResource;
use super::observe::{Handles, kube_retry, list_cprs};
use super::{ControlPlaneState, Step};

/// Everything the steps need: clients, the spec, connections, the deadline.
#[derive(Debug, Clone)]
pub struct Executor {
    pub gcp: GcpClients,
    pub spec: MeshSpec,
    pub handles: Handles,
    pub deadline: Instant,
    pub printer: Printer,
}

fn timeout_error(what: &str, after: Duration, last: &str) -> Error {
    Error::new(
        "ASM-E460",
        exit::TIMEOUT,
        format!(
            "timed out after {}s waiting for {what} (last seen: {last})",
            after.as_secs()
        ),
    )
    .with_hint("raise --timeout, or re-run asm to keep waiting; nothing is rolled back")
}

impl Executor {
    fn cluster(&self, i: usize) -> Result<&ClusterRef, Error> {
        self.spec
            .clusters
            .get(i)
            .ok_or_else(|| Error::apply("ASM-E999", format!("no cluster #{i} in the spec")))
    }

    fn kube(&self, i: usize) -> Result<&KubeContext, Error> {
        self.handles
            .kube
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| {
                Error::apply(
                    "ASM-E450",
                    format!(
                        "no Kubernetes connection to cluster {}",
                        self.spec
                            .clusters
                            .get(i)
                            .map(|c| c.to_string())
                            .unwrap_or_default()
                    ),
                )
            })
    }

    fn progress(&self, id: &str) -> Arc<ProgressFn> {
        let printer = self.printer.clone();
        let id = id.to_string();
        Arc::new(move |line: &str| printer.detail(&format!("  {id}: {line}")))
    }

    async fn wait_op(&self, id: &str, op: Operation) -> Result<Value, Error> {
        let progress = self.progress(id);
        self.gcp
            .lro
            .wait_until(op, self.deadline, Some(&*progress))
            .await
            .map_err(Error::from)
    }

    /// Runs one action.
    pub async fn run(&self, action: &Action<Step>) -> Result<(), Error> {
        let id = action.id.as_str();
        match &action.payload {
            Step::EnableApis { project, services } => {
                let op = self
                    .gcp
                    .serviceusage
                    .batch_enable(project.as_str(), services)
                    .await?;
                self.wait_op(id, op).await?;
                Ok(())
            }
            Step::CreateFeature { project } => {
                let policy = self.gcp.http.retry_policy().clone();
                let body = json!({});
                let created = retry_until_api_enabled(&policy, || {
                    self.gcp
                        .gkehub
                        .create_feature(project.as_str(), "servicemesh", &body)
                })
                .await;
                match created {
                    Ok(op) => {
                        self.wait_op(id, op).await?;
                        Ok(())
                    }
                    // Created by an earlier attempt whose answer was lost, or by someone else:
                    // done once it is read back (the servicemesh feature has no spec to match).
                    Err(e) if e.is_already_exists() => {
                        match self
                            .gcp
                            .gkehub
                            .get_feature(project.as_str(), "servicemesh")
                            .await?
                        {
                            Some(_) => Ok(()),
                            None => Err(e.into()),
                        }
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Step::EnableWorkloadIdentity { cluster, pool } => {
                let c = self.cluster(*cluster)?.clone();
                let op = self
                    .gke_mutation(|| {
                        self.gcp.container.set_workload_pool(
                            c.project.as_str(),
                            c.location.as_str(),
                            c.name.as_str(),
                            pool,
                        )
                    })
                    .await?;
                self.wait_op(id, op).await?;
                Ok(())
            }
            Step::SetClusterLabel {
                cluster,
                key,
                value,
            } => self.set_label(id, *cluster, key, value).await,
            Step::RegisterMembership {
                cluster,
                location,
                id: membership,
            } => self.register(id, *cluster, location, membership).await,
            Step::Apply { cluster, object } => {
                let ctx = self.kube(*cluster)?;
                let opts = ApplyOptions {
                    force: true,
                    dry_run: false,
                };
                // Server-side apply is idempotent: safe to retry.
                kube_retry(|| apply(&ctx.client, object, opts))
                    .await
                    .map_err(Error::from)?;
                Ok(())
            }
            Step::SetAutomaticManagement {
                cluster: _,
                location,
                id: membership,
            } => {
                let fleet = self.spec.fleet_project.as_str();
                // Keep whatever spec is there; change only the management field. The spec is
                // read from the fleet-wide feature every cluster's step shares (v1
                // `membershipSpecs`, whose servicemesh spec is named `mesh` where v2 says
                // `servicemesh`), not with one read per membership.
                let mut spec: Map<String, Value> = self
                    .gcp
                    .fleet_poll
                    .feature(fleet, "servicemesh")
                    .await?
                    .and_then(|f| {
                        let suffix = format!("/locations/{location}/memberships/{membership}");
                        f.membership_specs
                            .into_iter()
                            .find(|(k, _)| k.ends_with(&suffix))
                            .map(|(_, v)| v)
                    })
                    .and_then(|v| v.as_object().cloned())
                    .map(|m| {
                        m.into_iter()
                            .map(|(k, v)| {
                                if k == "mesh" {
                                    ("servicemesh".to_string(), v)
                                } else {
                                    (k, v)
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let sm = spec
                    .entry("servicemesh".to_string())
                    .or_insert_with(|| json!({}));
                if !sm.is_object() {
                    *sm = json!({});
                }
                sm["management"] = json!(MANAGEMENT_AUTOMATIC);
                let policy = self.gcp.http.retry_policy().clone();
                let spec = Value::Object(spec);
                let op = retry_until_api_enabled(&policy, || {
                    self.gcp.gkehub.patch_membership_feature(
                        fleet,
                        location,
                        membership,
                        "servicemesh",
                        &spec,
                    )
                })
                .await?;
                self.wait_op(id, op).await?;
                Ok(())
            }
            Step::WaitManaged {
                cluster,
                location,
                id: membership,
            } => self.wait_managed(id, *cluster, location, membership).await,
            Step::WaitCrd { cluster } => {
                let ctx = self.kube(*cluster)?;
                let progress = self.progress(id);
                wait_crd_established(&ctx.client, CPR_CRD, self.deadline, Some(&*progress))
                    .await
                    .map_err(Error::from)
            }
            Step::WaitRevision { cluster, revision } => {
                self.wait_revision(id, *cluster, revision).await
            }
            Step::AddIamBinding {
                resource,
                role,
                member,
            } => {
                // Concurrent writers make the etag stale (409 ABORTED): each one costs a
                // fresh read-modify-write.
                const ATTEMPTS: u32 = 5;
                match resource {
                    PolicyResource::Project(p) => {
                        self.gcp
                            .crm
                            .add_iam_binding(p.as_str(), role, member, ATTEMPTS)
                            .await?
                    }
                    PolicyResource::CaPool(pool) => {
                        self.gcp
                            .privateca
                            .add_pool_iam_binding(pool, role, member, ATTEMPTS)
                            .await?
                    }
                };
                Ok(())
            }
        }
    }

    /// A GKE mutation, retried while the cluster is busy with another operation (GKE runs
    /// one at a time per cluster, answering FAILED_PRECONDITION; a killed earlier run may
    /// have left one running), until the deadline.
    async fn gke_mutation<F, Fut>(&self, call: F) -> Result<Operation, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Operation, GcpError>>,
    {
        let busy = |e: &GcpError| {
            if e.is_failed_precondition() {
                Verdict::Retry { after: None }
            } else {
                Verdict::Stop
            }
        };
        retry::run_until(&RetryPolicy::gke_busy(), self.deadline, false, busy, call)
            .await
            .map_err(Error::from)
    }

    /// Sets one resource label: read the cluster, write the labels with its fingerprint, and
    /// on a stale fingerprint (or a busy cluster, or a lost answer) read again and re-plan —
    /// a write that was made shows up in the re-read.
    async fn set_label(&self, id: &str, i: usize, key: &str, value: &str) -> Result<(), Error> {
        let c = self.cluster(i)?.clone();
        let (project, location, name) = (c.project.as_str(), c.location.as_str(), c.name.as_str());
        let mut planned = self.handles.gke.get(i).cloned().flatten();
        let op = retry::run_until(
            &RetryPolicy::gke_busy(),
            self.deadline,
            true,
            retry::classify_guarded_write,
            || {
                // The first try writes on the fingerprint read while planning; any retry
                // reads the cluster again.
                let observed = planned.take();
                async move {
                    let cluster = match observed {
                        Some(c) => c,
                        None => {
                            self.gcp
                                .container
                                .get_cluster(project, location, name)
                                .await?
                        }
                    };
                    if cluster.resource_labels.get(key).map(String::as_str) == Some(value) {
                        return Ok(None);
                    }
                    let mut labels = cluster.resource_labels.clone();
                    labels.insert(key.to_string(), value.to_string());
                    self.gcp
                        .container
                        .set_resource_labels(
                            project,
                            location,
                            name,
                            &labels,
                            &cluster.label_fingerprint,
                        )
                        .await
                        .map(Some)
                }
            },
        )
        .await?;
        if let Some(op) = op {
            self.wait_op(id, op).await?;
        }
        Ok(())
    }

    async fn register(
        &self,
        id: &str,
        i: usize,
        location: &str,
        membership: &str,
    ) -> Result<(), Error> {
        let c = self.cluster(i)?.clone();
        let progress = self.progress(id);
        register_membership(
            &self.gcp,
            self.spec.fleet_project.as_str(),
            &c,
            location,
            membership,
            self.deadline,
            Some(&*progress),
        )
        .await
    }

    /// The control-plane state of `location/membership` as the fleet's servicemesh Feature
    /// reports it (`membershipStates`, what `gcloud container fleet mesh describe` shows),
    /// from the fleet-wide read every waiter shares.
    async fn fleet_state(
        &self,
        location: &str,
        membership: &str,
    ) -> Result<ControlPlaneState, Error> {
        let fleet = self.spec.fleet_project.as_str();
        let feature = self.gcp.fleet_poll.feature(fleet, "servicemesh").await?;
        let suffix = format!("/locations/{location}/memberships/{membership}");
        Ok(feature
            .and_then(|f| serde_json::to_value(&f).ok())
            .and_then(|v| {
                v.get("membershipStates")
                    .and_then(Value::as_object)
                    .and_then(|m| {
                        m.iter()
                            .find(|(k, _)| k.ends_with(&suffix))
                            .and_then(|(_, s)| {
                                s.pointer("/servicemesh/controlPlaneManagement")
                                    .and_then(ControlPlaneState::from_json)
                            })
                    })
            })
            .unwrap_or_default())
    }

    async fn wait_managed(
        &self,
        id: &str,
        i: usize,
        location: &str,
        membership: &str,
    ) -> Result<(), Error> {
        let c = self.cluster(i)?.clone();
        let ctx = self.kube(i)?;
        let started = Instant::now();
        let mut delays = self.gcp.fleet_poll.delays();
        let mut last: String;
        let progress = self.progress(id);
        progress(&format!(
            "waiting for the fleet to report REVISION_READY for {location}/{membership}"
        ));
        loop {
            let state = self.fleet_state(location, membership).await?;
            if state.ready() {
                let cprs = list_cprs(ctx)
                    .await
                    .map_err(|e| Error::apply("ASM-E451", e))?;
                if cprs.iter().any(|r| r.provisioning_finished) {
                    return Ok(());
                }
                last = "REVISION_READY, ControlPlaneRevision not ProvisioningFinished".into();
            } else {
                last = format!(
                    "{} {}",
                    state.state.as_deref().unwrap_or("no state"),
                    state.codes.join(",")
                )
                .trim()
                .to_string();
            }
            let delay = delays.next().unwrap_or(Duration::from_secs(5));
            if Instant::now() + delay > self.deadline {
                return Err(timeout_error(
                    &format!("the managed control plane of cluster {}", c.name),
                    started.elapsed(),
                    &last,
                ));
            }
            tokio::time::sleep(delay).await;
        }
    }

    async fn wait_revision(&self, id: &str, i: usize, revision: &str) -> Result<(), Error> {
        let ctx = self.kube(i)?;
        let progress = self.progress(id);
        wait_control_plane_revision(
            &ctx.client,
            NAMESPACE,
            revision,
            self.deadline,
            Some(&*progress),
        )
        .await
        .map_err(Error::from)
    }
}

/// Registers GKE cluster `c` to `fleet` as `location/membership` (resource link and
/// workload-identity issuer of the cluster) and waits for the operation. Idempotent: an
/// existing membership of the same cluster is success; one of another cluster is an error.
/// Shared by install's `RegisterMembership` step and `create-mesh --register`.
pub(crate) async fn register_membership(
    gcp: &GcpClients,
    fleet: &str,
    c: &ClusterRef,
    location: &str,
    membership: &str,
    deadline: Instant,
    progress: Option<&ProgressFn>,
) -> Result<(), Error> {
    let link = gke_resource_link(c.project.as_str(), c.location.as_str(), c.name.as_str());
    let issuer = gke_issuer(c.project.as_str(), c.location.as_str(), c.name.as_str());
    let policy = gcp.http.retry_policy().clone();
    let created = retry_until_api_enabled(&policy, || {
        gcp.gkehub
            .create_membership(fleet, location, membership, &link, Some(&issuer))
    })
    .await;
    match created {
        Ok(op) => {
            gcp.lro.wait_until(op, deadline, progress).await?;
            Ok(())
        }
        Err(e) if e.is_already_exists() => {
            let existing = gcp
                .gkehub
                .get_membership(fleet, location, membership)
                .await?;
            let projects = [c.project.as_str()];
            match existing {
                Some(m) if m.is_for_cluster(&projects, c.location.as_str(), c.name.as_str()) => {
                    Ok(())
                }
                Some(m) => Err(Error::apply(
                    "ASM-E461",
                    format!(
                        "membership {} already exists for another cluster ({})",
                        m.name,
                        m.gke_resource_link().unwrap_or("no GKE link")
                    ),
                )
                .with_hint("re-run asm: it picks another membership id")),
                None => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}
