//! The simulated Google APIs (container v1, gkehub v1/v1beta/v2, serviceusage v1,
//! cloudresourcemanager v1, privateca v1 CA pool policies) behind one [`Handler`], told
//! apart by path prefix: `/container/`, `/gkehub/`, `/serviceusage/`, `/crm/`,
//! `/privateca/` (what the sandbox exports as `CLOUDSDK_API_ENDPOINT_OVERRIDES_*`).
//!
//! Every request goes through the same gate, in the order Google's front end applies it:
//! 1. the bearer token (401 UNAUTHENTICATED when missing or wrong): an access token the
//!    sandbox issued, or a JWT self-signed with a registered service-account key (see
//!    [`crate::tokens`]);
//! 2. the project's per-minute request quota of the API (429 RESOURCE_EXHAUSTED with
//!    `Retry-After`; see [`quota`]);
//! 3. the project (unknown projects are answered like forbidden ones: 403);
//! 4. the API being enabled in the project (403 SERVICE_DISABLED);
//! 5. the permission of the route (403 PERMISSION_DENIED with ErrorInfo
//!    `IAM_PERMISSION_DENIED`), from the table below;
//! 6. only then the resource itself (404, 409, 400 …).
//!
//! # Permissions per route
//!
//! | API | route | permission |
//! |---|---|---|
//! | container | `GET …/clusters/N` | `container.clusters.get` |
//! | container | `GET …/locations/L\|-/clusters` | `container.clusters.list` |
//! | container | `GET …/clusters/N/nodePools` | `container.clusters.get` |
//! | container | `POST …/clusters/N:setResourceLabels`, `PUT …/clusters/N` | `container.clusters.update` |
//! | container | `GET …/operations/OP` | `container.operations.get` |
//! | serviceusage | `GET projects/P/services` | `serviceusage.services.list` |
//! | serviceusage | `GET …/services/S`, `GET …/services:batchGet` | `serviceusage.services.get` |
//! | serviceusage | `POST …/services/S:enable`, `POST …/services:batchEnable` | `serviceusage.services.enable` |
//! | serviceusage | `GET v1/operations/…` | (token only) |
//! | crm | `GET v1/projects/P` | `resourcemanager.projects.get` |
//! | crm | `POST v1/projects/P:getIamPolicy` | `resourcemanager.projects.getIamPolicy` |
//! | crm | `POST v1/projects/P:setIamPolicy` | `resourcemanager.projects.setIamPolicy` |
//! | crm | `POST v1/projects/P:testIamPermissions` | (token only) |
//! | privateca | `GET v1/…/caPools/N:getIamPolicy` | `privateca.caPools.getIamPolicy` |
//! | privateca | `POST v1/…/caPools/N:setIamPolicy` | `privateca.caPools.setIamPolicy` |
//! | gkehub | `POST …/memberships?membershipId=` | `gkehub.memberships.create` |
//! | gkehub | `GET …/memberships/M` | `gkehub.memberships.get` |
//! | gkehub | `GET …/locations/L\|-/memberships` | `gkehub.memberships.list` |
//! | gkehub | `PATCH …/memberships/M` | `gkehub.memberships.update` |
//! | gkehub | `DELETE …/memberships/M` | `gkehub.memberships.delete` |
//! | gkehub | `POST …/features?featureId=` | `gkehub.features.create` |
//! | gkehub | `GET …/features/F` | `gkehub.features.get` |
//! | gkehub | `GET …/features` | `gkehub.features.list` |
//! | gkehub | `PATCH …/features/F` | `gkehub.features.update` |
//! | gkehub | `DELETE …/features/F` | `gkehub.features.delete` |
//! | gkehub v2 | `GET …/memberships/M/features/F` | `gkehub.membershipfeatures.get` |
//! | gkehub v2 | `PATCH …/memberships/M/features/F` | `gkehub.membershipfeatures.update` (and `.create` with `allowMissing` when absent) |
//! | gkehub | `GET …/operations/ID` | `gkehub.operations.get` |
//!
//! Besides the APIs, `POST /oauth2/token` is the OAuth token endpoint of the sandbox's
//! service-account key file (`token_uri`): a `jwt-bearer` grant signed with a registered key
//! is exchanged for an opaque access token of that service account. Every authenticated
//! principal has the scenario's permissions.
//!
//! The APIs checked for enablement are `container.googleapis.com`, `gkehub.googleapis.com`,
//! `serviceusage.googleapis.com`, `cloudresourcemanager.googleapis.com` and
//! `privateca.googleapis.com`, each in the project the request names.
//!
//! A sandbox has one or two projects (`state::Project`): the clusters' project and, in
//! `cross-project`, a fleet host project. Clusters are only in the first, memberships and
//! features only in the fleet host (another project's fleet reads as empty); services and
//! IAM policies belong to each.

mod container;
mod controller;
mod crm;
pub mod errors;
mod gkehub;
mod ops;
mod privateca;
pub mod quota;
mod service_dependencies;
mod serviceusage;
mod state;

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::config::FaultKind;
use crate::http::{Handler, HandlerFuture, Request, Response};
use crate::member::MemberCluster;
use crate::scenario::Scenario;
use crate::tokens::{Principal, TokenRegistry};
use errors::ApiError;
use state::State;

/// What the Google side knows of a simulated cluster's Kubernetes API server.
#[derive(Debug, Clone)]
pub struct ClusterEndpoint {
    pub name: String,
    /// `127.0.0.1:PORT`, as GKE's `endpoint`.
    pub endpoint: String,
    /// The sandbox CA as PEM (GKE sends it base64-encoded in `masterAuth.clusterCaCertificate`).
    pub ca_pem: String,
    /// The cluster, for the simulated servicemesh controllers.
    pub member: Arc<dyn MemberCluster>,
}

/// The principal of the sandbox's own access token (the `access-token` file).
pub const SANDBOX_USER: &str = "sandbox-admin@asm-sim.invalid";

/// The Google API router and its state.
#[derive(Debug)]
pub struct GoogleApi {
    state: Mutex<State>,
    /// Per-minute request quotas per project.
    quota: Mutex<quota::Meter>,
    tokens: Arc<TokenRegistry>,
    /// Lets timer and controller tasks reach the API without keeping it alive.
    this: Weak<GoogleApi>,
}

/// One of the four simulated APIs: how it names itself in errors and what must be enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Container,
    GkeHub,
    ServiceUsage,
    ResourceManager,
    PrivateCa,
}

impl Api {
    /// The service that must be enabled in the project for calls to this API.
    pub fn service(self) -> &'static str {
        match self {
            Api::Container => "container.googleapis.com",
            Api::GkeHub => "gkehub.googleapis.com",
            Api::ServiceUsage => "serviceusage.googleapis.com",
            Api::ResourceManager => "cloudresourcemanager.googleapis.com",
            Api::PrivateCa => "privateca.googleapis.com",
        }
    }

    /// The permission-denied message in this API's own words.
    fn denied_message(self, permission: &str, resource: &str) -> String {
        match self {
            Api::Container => {
                format!("Required \"{permission}\" permission(s) for \"{resource}\".")
            }
            Api::GkeHub => format!("Permission '{permission}' denied on '{resource}'"),
            Api::ServiceUsage => {
                format!("Permission '{permission}' denied on resource '{resource}'.")
            }
            Api::ResourceManager => "The caller does not have permission".to_string(),
            Api::PrivateCa => format!(
                "Permission '{permission}' denied on resource '{resource}' (or it may not exist)."
            ),
        }
    }
}

/// What a route handler works with: the locked state, the request time, and the
/// operation timers it starts.
pub(crate) struct Ctx<'a> {
    pub st: &'a mut State,
    pub now: Instant,
    /// Durations after which the timer task must settle operations.
    pub timers: Vec<Duration>,
}

impl Ctx<'_> {
    /// The gate every route passes (see the module docs): project, API enabled, permission.
    pub fn guard(
        &self,
        api: Api,
        project: &str,
        permission: Option<&str>,
        resource: &str,
    ) -> Result<(), ApiError> {
        let st = &self.st;
        let Some(p) = st.project(project) else {
            // Google does not reveal whether a project exists to those who may not see it.
            let permission = permission.unwrap_or("resourcemanager.projects.get");
            return Err(ApiError::permission_denied(
                api.service(),
                api.denied_message(permission, resource),
                permission,
                resource,
            ));
        };
        if !p.enabled.contains(api.service()) {
            let title = state::service_title(api.service()).unwrap_or(api.service());
            return Err(ApiError::service_disabled(api.service(), title, &p.number));
        }
        if let Some(permission) = permission
            && st.denied.contains(permission)
        {
            return Err(ApiError::permission_denied(
                api.service(),
                api.denied_message(permission, resource),
                permission,
                resource,
            ));
        }
        Ok(())
    }

    /// Starts an operation: stores it and, if it is due now, applies it at once.
    pub fn start_op(&mut self, key: String, op: ops::Operation) -> serde_json::Value {
        let due_now = op.deadline <= self.now;
        if !due_now {
            self.timers
                .push(op.deadline.saturating_duration_since(self.now));
        }
        self.st.ops.insert(key.clone(), op);
        if due_now {
            self.st.settle(self.now);
        }
        self.st
            .ops
            .get(&key)
            .map(|op| op.json(self.st))
            .unwrap_or_default()
    }
}

/// A boolean query parameter, accepting gcloud's `True` as well as `true`.
pub(crate) fn query_bool(req: &Request, name: &str) -> bool {
    req.query_param(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

impl GoogleApi {
    /// Builds the state of `scenario`; `token` is the only accepted access token.
    pub fn new(scenario: Scenario, token: String, clusters: Vec<ClusterEndpoint>) -> Arc<Self> {
        let tokens = TokenRegistry::with_token(&token, Principal::user(SANDBOX_USER));
        GoogleApi::with_tokens(scenario, tokens, clusters)
    }

    /// Builds the state of `scenario`, accepting the tokens `tokens` accepts.
    pub fn with_tokens(
        scenario: Scenario,
        tokens: Arc<TokenRegistry>,
        clusters: Vec<ClusterEndpoint>,
    ) -> Arc<Self> {
        let state = State::from_scenario(&scenario, &clusters);
        let api = Arc::new_cyclic(|this| GoogleApi {
            state: Mutex::new(state),
            quota: Mutex::new(quota::Meter::new(scenario.quotas.clone())),
            tokens,
            this: this.clone(),
        });
        // The `installed` scenario starts with the controllers' work already done in the
        // clusters: CRD, namespace and a ready ControlPlaneRevision, applied right now.
        controller::apply_initial(&api);
        api
    }

    /// The managed revisions' proxy versions; changing them upgrades the channels.
    pub fn proxy_versions(&self) -> crate::revisions::ProxyVersions {
        self.lock().proxy_versions.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Serves one request synchronously (no await happens under the lock).
    fn serve(&self, req: &Request) -> (Response, Vec<Duration>) {
        let path = req.path.trim_start_matches('/');
        let (prefix, rest) = path.split_once('/').unwrap_or((path, ""));
        let api = match prefix {
            "container" => Api::Container,
            "gkehub" => Api::GkeHub,
            "serviceusage" => Api::ServiceUsage,
            "crm" => Api::ResourceManager,
            "privateca" => Api::PrivateCa,
            "oauth2" if rest == "token" && req.method == "POST" => {
                return (self.oauth_token(req), Vec::new());
            }
            _ => return (not_found_url(req).into_response(), Vec::new()),
        };
        if req
            .bearer_token()
            .and_then(|t| self.tokens.authenticate(t))
            .is_none()
        {
            return (ApiError::unauthenticated().into_response(), Vec::new());
        }
        let now = Instant::now();
        if let Err(e) = self.charge_quota(now, api, req, rest) {
            return (e.into_response(), Vec::new());
        }
        let mut st = self.lock();
        st.settle(now);
        let mut ctx = Ctx {
            st: &mut st,
            now,
            timers: Vec::new(),
        };
        let result = match api {
            Api::Container => container::route(&mut ctx, req, rest),
            Api::GkeHub => gkehub::route(&mut ctx, req, rest),
            Api::ServiceUsage => serviceusage::route(&mut ctx, req, rest),
            Api::ResourceManager => crm::route(&mut ctx, req, rest),
            Api::PrivateCa => privateca::route(&mut ctx, req, rest),
        };
        let timers = std::mem::take(&mut ctx.timers);
        drop(st);
        (result.unwrap_or_else(ApiError::into_response), timers)
    }

    /// Charges the request to its project's per-minute quota (see [`quota`]).
    fn charge_quota(
        &self,
        now: Instant,
        api: Api,
        req: &Request,
        rest: &str,
    ) -> Result<(), ApiError> {
        let Some(project) = quota::project_of(rest) else {
            return Ok(());
        };
        let number = self
            .lock()
            .project(project)
            .map(|p| p.number.clone())
            .unwrap_or_else(|| project.to_string());
        let mut meter = match self.quota.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        meter.charge(
            now,
            project,
            &number,
            api.service(),
            !quota::is_read(&req.method, rest),
        )
    }

    /// `POST /oauth2/token`: a `jwt-bearer` grant → an opaque access token (RFC 7523).
    fn oauth_token(&self, req: &Request) -> Response {
        let form = crate::http::parse_query(&String::from_utf8_lossy(&req.body));
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let oauth_error = |error: &str, description: &str| {
            Response::json(
                400,
                &serde_json::json!({"error": error, "error_description": description}),
            )
        };
        if field("grant_type") != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
            return oauth_error("unsupported_grant_type", "Invalid grant_type.");
        }
        let Some(claims) = field("assertion").and_then(|a| self.tokens.verify_assertion(a)) else {
            return oauth_error("invalid_grant", "Invalid JWT Signature.");
        };
        let Some(email) = claims.get("iss").and_then(serde_json::Value::as_str) else {
            return oauth_error("invalid_grant", "Invalid JWT: no issuer.");
        };
        let token = format!("ya29.c.sandbox-{}", crate::tokens::random_hex(16));
        let lifetime = self
            .tokens
            .issue_token(&token, Principal::service_account(email));
        Response::json(
            200,
            &serde_json::json!({"access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer"}),
        )
    }

    /// Settles due operations and lets the simulated controllers react.
    fn tick(self: &Arc<Self>) {
        self.lock().settle(Instant::now());
        controller::reconcile(self);
    }

    fn start_timers(&self, timers: Vec<Duration>) {
        if timers.is_empty() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        for d in timers {
            let this = self.this.clone();
            tokio::spawn(async move {
                tokio::time::sleep(d + Duration::from_millis(1)).await;
                if let Some(api) = this.upgrade() {
                    api.tick();
                }
            });
        }
    }
}

/// 404 for a URL no route serves, as Google's front end words it.
fn not_found_url(req: &Request) -> ApiError {
    ApiError::not_found(format!(
        "The requested URL {} was not found on this server.",
        req.path
    ))
}

impl Handler for GoogleApi {
    fn handle(self: Arc<Self>, req: Request) -> HandlerFuture {
        Box::pin(async move {
            let (response, timers) = self.serve(&req);
            self.start_timers(timers);
            controller::reconcile(&self);
            response
        })
    }

    fn fault_response(&self, kind: FaultKind) -> Response {
        let err = match kind {
            FaultKind::TooManyRequests => {
                let mut e = ApiError::new(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute per user' of service. Please retry after a short delay.",
                );
                e.headers.push(("Retry-After".into(), "1".into()));
                e
            }
            FaultKind::Internal => ApiError::new(500, "INTERNAL", "Internal error encountered."),
            FaultKind::Expire => ApiError::unauthenticated(),
            FaultKind::Unavailable | FaultKind::Drop | FaultKind::Lost | FaultKind::Slow { .. } => {
                ApiError::new(503, "UNAVAILABLE", "The service is currently unavailable.")
            }
        };
        err.into_response()
    }
}

#[cfg(test)]
mod tests;
