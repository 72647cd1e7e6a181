//! REST layer for the Google APIs asm calls (ARCHITECTURE.md, "Talking to Google"; wire formats
//! in the API references at https://cloud.google.com/kubernetes-engine/docs/reference/rest and
//! https://cloud.google.com/service-mesh/docs).
//!
//! [`http::GoogleHttp`] does auth, JSON, errors and retries; [`lro::LroPoller`] waits for the
//! three operation styles; one small typed module per API. [`GcpClients`] bundles them.
//!
//! Errors are [`GcpError`]; callers test them (`is_not_found()`, `service_disabled()`, …)
//! and convert the rest with `Error::from` / `?` into a coded [`crate::error::Error`].

pub mod auth;
pub mod container;
pub mod crm;
pub mod endpoints;
pub mod fleet_poll;
pub mod gkehub;
pub mod http;
pub mod lro;
pub mod meshconfig;
pub mod oauth;
pub mod privateca;
pub mod serviceusage;

pub use auth::{AccessToken, Credentials, TokenSource};
pub use endpoints::{Endpoints, Service};
pub use http::{ApiError, GcpError, GcpResult, GoogleHttp, RetryPolicy, TraceFn};
pub use lro::{LroPoller, Operation, PollPolicy};

use crate::environment::Environment;
use crate::error::Error;

/// The per-project budget of fleet-wide polls: one read of a project's feature per second at
/// most, however many clusters wait (a small share of GKE Hub's per-minute read quota).
pub const FLEET_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Every Google API client asm uses, sharing one HTTP client and request counter.
#[derive(Debug, Clone)]
pub struct GcpClients {
    pub http: GoogleHttp,
    pub endpoints: Endpoints,
    pub container: container::ContainerApi,
    pub serviceusage: serviceusage::ServiceUsageApi,
    pub crm: crm::CrmApi,
    pub gkehub: gkehub::GkeHubApi,
    pub meshconfig: meshconfig::MeshConfigApi,
    pub privateca: privateca::PrivateCaApi,
    pub lro: LroPoller,
    /// Fleet-wide feature reads shared by every waiter (one read per poll per project).
    pub fleet_poll: fleet_poll::FleetPoller,
}

impl GcpClients {
    /// Clients with endpoints from `env` (overrides), authenticating with `token`.
    pub fn new(env: &Environment, token: AccessToken, retry: RetryPolicy) -> Result<Self, Error> {
        let endpoints = Endpoints::from_env(env)?;
        let http = GoogleHttp::new(token, retry)?;
        Ok(GcpClients::from_parts(
            http,
            endpoints,
            PollPolicy::default(),
        ))
    }

    /// Clients with endpoints from `env`, authenticating with `creds` (refreshing its token
    /// per request when it has a provider).
    pub fn from_credentials(
        env: &Environment,
        creds: &Credentials,
        retry: RetryPolicy,
    ) -> Result<Self, Error> {
        let endpoints = Endpoints::from_env(env)?;
        let http = GoogleHttp::new(creds.token.clone(), retry)?
            .with_token_provider(creds.provider.clone());
        Ok(GcpClients::from_parts(
            http,
            endpoints,
            PollPolicy::default(),
        ))
    }

    /// Clients over an already configured `http` (trace callback, shared counter).
    pub fn from_parts(http: GoogleHttp, endpoints: Endpoints, poll: PollPolicy) -> Self {
        GcpClients {
            container: container::ContainerApi::new(http.clone(), endpoints.clone()),
            serviceusage: serviceusage::ServiceUsageApi::new(http.clone(), endpoints.clone()),
            crm: crm::CrmApi::new(http.clone(), endpoints.clone()),
            gkehub: gkehub::GkeHubApi::new(http.clone(), endpoints.clone()),
            meshconfig: meshconfig::MeshConfigApi::new(http.clone(), endpoints.clone()),
            privateca: privateca::PrivateCaApi::new(http.clone(), endpoints.clone()),
            fleet_poll: fleet_poll::FleetPoller::new(
                gkehub::GkeHubApi::new(http.clone(), endpoints.clone()),
                FLEET_POLL_INTERVAL,
            ),
            lro: LroPoller::new(http.clone(), endpoints.clone(), poll),
            http,
            endpoints,
        }
    }

    /// The same clients with every request traced to `trace`.
    pub fn with_trace(self, trace: TraceFn) -> Self {
        let poll = self.lro.policy().clone();
        let http = self.http.with_trace(trace);
        GcpClients::from_parts(http, self.endpoints, poll)
    }

    /// The same clients with another polling policy.
    pub fn with_poll_policy(self, poll: PollPolicy) -> Self {
        GcpClients::from_parts(self.http, self.endpoints, poll)
    }

    /// Google API requests sent so far (retries and polls included).
    pub fn requests(&self) -> u64 {
        self.http.requests()
    }

    /// The access token (for Kubernetes clients of GKE clusters).
    pub fn token(&self) -> &AccessToken {
        self.http.token()
    }

    /// Where the bearer tokens come from (refreshing for key files and ADC), for Kubernetes
    /// clients of GKE clusters: they must not keep the first token past its life.
    pub fn bearer(&self) -> crate::transport::BearerSource {
        self.http.bearer()
    }

    /// The `-v` trace callback, if any (for Kubernetes clients built next to these).
    pub fn trace(&self) -> Option<TraceFn> {
        self.http.trace()
    }
}
