//! Runs the actions of a secret plan ([`MeshStep`]): server-side applies, waits for token
//! Secrets, fleet registrations and remote secrets built from the source's credentials
//! (never written anywhere but the target cluster; redacted from errors).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use serde_json::Value;
use tokio::time::Instant;

use crate::error::Error;
use crate::gcp::GcpClients;
use crate::kube::KubeContext;
use crate::kube::apply::{ApplyOptions, apply, get_opt};
use crate::plan::Action;
use crate::steps::apply::register_membership;
use crate::steps::observe::kube_retry;
use crate::steps::remote_secret::{
    AuthType, Member, MemberObs, MeshStep, SourceCreds, creds_for, missing_token_error,
    pick_token_secret, redact, remote_secret_for,
};

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

    /// The client of member `i`.
    pub fn client(&self, i: usize) -> Result<&Client, Error> {
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
