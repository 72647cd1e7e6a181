//! Execution (I/O): carries out one [`Step`] — the request, its long-running operation or
//! its wait — under the run's deadline. Every step is idempotent: re-running it after a
//! crash (or after another run did it) succeeds without changing anything twice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::error::{Error, exit};
use crate::gcp::gkehub::{gke_issuer, gke_resource_link};
use crate::gcp::http::retry_until_api_enabled;
use crate::gcp::{GcpClients, GcpError, Operation};
use crate::kube::KubeContext;
use crate::kube::apply::{ApplyOptions, apply};
use crate::kube::wait::{wait_control_plane_revision, wait_crd_established};
use crate::output::Printer;
use crate::plan::Action;
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
                    Err(e) if e.is_already_exists() => Ok(()),
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
                let existing = self
                    .gcp
                    .gkehub
                    .get_membership_feature(fleet, location, membership, "servicemesh")
                    .await?;
                // Keep whatever spec is there; change only the management field.
                let mut spec: Map<String, Value> =
                    existing.map(|m| m.spec.clone()).unwrap_or_default();
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
    /// one at a time per cluster; a killed earlier run may have left one running).
    async fn gke_mutation<F, Fut>(&self, call: F) -> Result<Operation, Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Operation, GcpError>>,
    {
        let mut delay = Duration::from_millis(500);
        loop {
            match call().await {
                Ok(op) => return Ok(op),
                Err(e) if busy(&e) && Instant::now() + delay < self.deadline => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn set_label(&self, id: &str, i: usize, key: &str, value: &str) -> Result<(), Error> {
        let c = self.cluster(i)?.clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let cluster = self
                .gcp
                .container
                .get_cluster(c.project.as_str(), c.location.as_str(), c.name.as_str())
                .await?;
            if cluster.resource_labels.get(key).map(String::as_str) == Some(value) {
                return Ok(());
            }
            let mut labels = cluster.resource_labels.clone();
            labels.insert(key.to_string(), value.to_string());
            let sent = self
                .gke_mutation(|| {
                    self.gcp.container.set_resource_labels(
                        c.project.as_str(),
                        c.location.as_str(),
                        c.name.as_str(),
                        &labels,
                        &cluster.label_fingerprint,
                    )
                })
                .await;
            match sent {
                Ok(op) => {
                    self.wait_op(id, op).await?;
                    return Ok(());
                }
                // A stale fingerprint: someone changed the labels; read them again.
                Err(e)
                    if attempt < 5
                        && (e.message.contains("ABORTED")
                            || e.message.contains("FAILED_PRECONDITION")
                            || e.message.to_lowercase().contains("fingerprint")) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
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

    async fn fleet_state(
        &self,
        location: &str,
        membership: &str,
    ) -> Result<ControlPlaneState, Error> {
        let fleet = self.spec.fleet_project.as_str();
        let mf = self
            .gcp
            .gkehub
            .get_membership_feature(fleet, location, membership, "servicemesh")
            .await?;
        let v2 = mf
            .and_then(|m| serde_json::to_value(&m).ok())
            .and_then(|v| {
                v.pointer("/state/servicemesh/controlPlaneManagement")
                    .and_then(ControlPlaneState::from_json)
            });
        if let Some(s) = &v2
            && s.ready()
        {
            return Ok(s.clone());
        }
        // The v1 feature's membershipStates (what `fleet mesh describe` shows).
        let v1 = self
            .gcp
            .gkehub
            .get_feature(fleet, "servicemesh")
            .await?
            .and_then(|f| serde_json::to_value(&f).ok())
            .and_then(|v| {
                v.get("membershipStates")
                    .and_then(Value::as_object)
                    .and_then(|m| {
                        m.iter()
                            .find(|(k, _)| {
                                k.ends_with(&format!(
                                    "/locations/{location}/memberships/{membership}"
                                ))
                            })
                            .and_then(|(_, s)| {
                                s.pointer("/servicemesh/controlPlaneManagement")
                                    .and_then(ControlPlaneState::from_json)
                            })
                    })
            });
        Ok(v1
            .filter(ControlPlaneState::ready)
            .or(v2)
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
        let mut delay = Duration::from_millis(200);
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
            if Instant::now() + delay > self.deadline {
                return Err(timeout_error(
                    &format!("the managed control plane of cluster {}", c.name),
                    started.elapsed(),
                    &last,
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
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

/// Whether GKE refused because another operation is running on the cluster.
fn busy(e: &GcpError) -> bool {
    e.api().is_some_and(|a| {
        (a.status == "FAILED_PRECONDITION" || a.http_status == 409 || a.http_status == 400)
            && a.message.to_lowercase().contains("operation")
    })
}
