//! A simulated Kubernetes API server (one per cluster), shaped like the golden exchanges
//! recorded from kube-apiserver v1.32.6 (`tests/k8s-golden`).
//!
//! Modules, bottom-up: [`util`] (time, randomness), [`status`] (Status errors), [`registry`]
//! (resource types), [`store`] (objects, resourceVersions, event history), [`fieldset`] and
//! [`managed`] (managedFields and server-side apply), [`patch`] (merge/JSON/strategic patches),
//! [`selectors`], [`validate`] and [`kinds`] (per-kind defaulting and serialisation),
//! [`auth`] (authentication and RBAC), [`watch`], [`discovery`], [`openapi`], [`table`],
//! then [`handlers`] (the REST verbs) and [`controllers`] (what kube-controller-manager,
//! the apiextensions server and the managed control plane do asynchronously).

mod auth;
mod controllers;
mod discovery;
mod fieldset;
mod handlers;
mod kinds;
mod managed;
mod openapi;
mod patch;
mod protobuf;
#[cfg(test)]
mod protobuf_gen;
// Generated (protobuf_gen.rs); formatting it would only make it longer.
#[rustfmt::skip]
mod protobuf_schema;
#[cfg(test)]
mod protobuf_tests;
mod registry;
mod selectors;
mod status;
mod store;
mod table;
#[cfg(test)]
mod tests;
mod util;
mod validate;
mod watch;

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{FaultKind, Timing};
use crate::http::{Handler, HandlerFuture, Request, Response};
use crate::member::MemberCluster;
use crate::scenario::ClusterSpec;
use crate::tokens::{Principal, TokenRegistry};

use self::auth::User;
use self::status::ApiError;
use self::store::State;

/// One cluster's API server and its state.
#[derive(Debug)]
pub struct KubeApiServer {
    name: String,
    /// `v1.32.6-gke.1025000`.
    git_version: String,
    ca_pem: String,
    google_tokens: Arc<TokenRegistry>,
    timing: Timing,
    state: Mutex<State>,
    /// Controllers run as tasks holding a weak handle, so a dropped server stops them.
    me: Weak<KubeApiServer>,
}

impl KubeApiServer {
    /// A fresh cluster: `ca_pem` is the sandbox CA (token Secrets' `ca.crt`), `google_token`
    /// the sandbox access token (accepted as an admin credential, as GKE accepts Google OAuth
    /// tokens). Must be called inside a tokio runtime (controllers run as tasks).
    pub fn new(
        cluster: &ClusterSpec,
        ca_pem: String,
        google_token: String,
        timing: Timing,
    ) -> Arc<Self> {
        let tokens =
            TokenRegistry::with_token(&google_token, Principal::user(crate::google::SANDBOX_USER));
        KubeApiServer::with_google_tokens(cluster, ca_pem, tokens, timing)
    }

    /// A fresh cluster accepting every Google token `google_tokens` accepts (as a cluster
    /// admin named by the principal's email, as GKE maps Google identities).
    pub fn with_google_tokens(
        cluster: &ClusterSpec,
        ca_pem: String,
        google_tokens: Arc<TokenRegistry>,
        timing: Timing,
    ) -> Arc<Self> {
        let v = cluster.kubernetes_version.trim_start_matches('v');
        let server = Arc::new_cyclic(|me| KubeApiServer {
            name: cluster.name.clone(),
            git_version: format!("v{v}"),
            ca_pem,
            google_tokens,
            timing,
            state: Mutex::new(State::new()),
            me: me.clone(),
        });
        server.bootstrap(&cluster.name);
        server
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The namespaces a new cluster has, each with its `default` ServiceAccount and the
    /// `kube-root-ca.crt` ConfigMap; kube-system's uid is stable per cluster name (installers
    /// use it as the cluster's identity).
    fn bootstrap(&self, cluster: &str) {
        let mut st = self.lock();
        for ns in ["default", "kube-node-lease", "kube-public", "kube-system"] {
            let uid = if ns == "kube-system" {
                stable_uid(cluster)
            } else {
                st.uid()
            };
            let now = util::now_rfc3339();
            let obj = json!({
                "kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": ns, "uid": uid, "creationTimestamp": now,
                    "labels": {"kubernetes.io/metadata.name": ns},
                    "managedFields": [{"manager": "kube-apiserver", "operation": "Update", "apiVersion": "v1", "time": now,
                        "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}}}]},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"},
            });
            if let Some(rt) = st.type_for_kind("v1", "Namespace") {
                st.put(&rt, obj, store::EventType::Added);
            }
            self.namespace_content(&mut st, ns);
        }
        let rv = st.rv;
        for t in &mut st.types {
            t.since_rv = rv;
        }
    }

    fn later(&self, delay: Duration, f: impl FnOnce(&KubeApiServer) + Send + 'static) {
        let me = self.me.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(server) = me.upgrade() {
                    f(&server);
                }
            });
        }
    }

    /// The caller: 401 for a token nobody issued.
    fn authenticate(&self, req: &Request) -> Result<User, ApiError> {
        let user = match req.bearer_token() {
            None => return Ok(User::anonymous()),
            Some(t) => match self.google_tokens.authenticate(t) {
                Some(p) if p.email() == crate::google::SANDBOX_USER => User::admin(),
                Some(p) => User {
                    name: p.email().to_string(),
                    ..User::admin()
                },
                None => {
                    auth::authenticate_token(&self.lock(), t).ok_or_else(ApiError::unauthorized)?
                }
            },
        };
        // kubectl --as: only someone allowed to impersonate (the admin) may.
        if let Some(name) = req.header("impersonate-user") {
            if !user.admin {
                return Err(ApiError::new(
                    403,
                    Some("Forbidden"),
                    format!(
                        "users \"{name}\" is forbidden: User \"{}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
                        user.name
                    ),
                ));
            }
            let groups: Vec<String> = req
                .headers
                .get_all("impersonate-group")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(String::from)
                .collect();
            return Ok(User::impersonated(name, groups));
        }
        Ok(user)
    }

    fn version(&self) -> Value {
        let minor = self
            .git_version
            .trim_start_matches('v')
            .split('.')
            .nth(1)
            .unwrap_or("32")
            .to_string();
        json!({
            "major": "1", "minor": minor, "gitVersion": self.git_version,
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2025-06-01T00:00:00Z", "goVersion": "go1.23.10", "compiler": "gc", "platform": "linux/amd64",
        })
    }

    fn serve(&self, req: &Request) -> Response {
        let user = match self.authenticate(req) {
            Ok(u) => u,
            Err(e) => return e.response(),
        };
        let path = if req.path.len() > 1 {
            req.path.trim_end_matches('/')
        } else {
            req.path.as_str()
        };
        let resource_like = path == "/api"
            || path.starts_with("/api/")
            || path == "/apis"
            || path.starts_with("/apis/");
        let discovery_only = matches!(path.matches('/').count(), 1 | 2)
            || (path.starts_with("/apis/") && path.matches('/').count() == 3);
        if !resource_like || discovery_only {
            return self
                .non_resource(req, &user, path)
                .unwrap_or_else(|e| e.response());
        }
        // The simulator answers in JSON only; a client that accepts nothing else is refused
        // as a real server refuses media types it cannot produce.
        if !protobuf::accepts_json(req.header("accept")) {
            return ApiError::new(
                406,
                Some("NotAcceptable"),
                "only the following media types are accepted: application/json",
            )
            .response();
        }
        handlers::resource(self, req, user, path).unwrap_or_else(|e| e.response())
    }

    /// Health, version, discovery documents and OpenAPI.
    fn non_resource(&self, req: &Request, user: &User, path: &str) -> Result<Response, ApiError> {
        let verb = if req.method == "GET" || req.method == "HEAD" {
            "get"
        } else {
            &req.method.to_ascii_lowercase()
        };
        let attrs = auth::Attributes {
            verb: verb.into(),
            path: Some(path.into()),
            ..Default::default()
        };
        let (allowed, _) = auth::authorize(&self.lock(), user, &attrs);
        if !allowed {
            return Err(ApiError::forbidden_path(&user.name, verb, path));
        }
        if verb != "get" {
            return Err(ApiError::new(
                405,
                Some("MethodNotAllowed"),
                "the server does not allow this method on the requested resource",
            ));
        }
        let st = self.lock();
        let aggregated = discovery::wants_aggregated(req.header("accept"));
        let discovery_doc = |doc: Value, ct: &str| {
            let etag = discovery::etag(&doc);
            let mut r = Response::json(200, &doc);
            r.headers = vec![("Content-Type".into(), ct.into())];
            r.with_header("Vary", "Accept")
                .with_header("Cache-Control", "public")
                .with_header("Etag", &etag)
        };
        match path {
            "/version" => Ok(Response::json(200, &self.version())),
            "/healthz" | "/readyz" | "/livez" => {
                Ok(Response::text(200, "text/plain; charset=utf-8", "ok"))
            }
            "/api" if aggregated => Ok(discovery_doc(
                discovery::aggregated(&st.types, true),
                discovery::AGGREGATED,
            )),
            "/apis" if aggregated => Ok(discovery_doc(
                discovery::aggregated(&st.types, false),
                discovery::AGGREGATED,
            )),
            "/api" => {
                let host = req.header("host").unwrap_or("127.0.0.1:443").to_string();
                Ok(Response::json(200, &discovery::api_versions(&host)))
            }
            "/apis" => Ok(Response::json(200, &discovery::api_group_list(&st.types))),
            "/api/v1" => Ok(Response::json(
                200,
                &discovery::resource_list(&st.types, "", "v1"),
            )),
            "/openapi/v3" => {
                let body = serde_json::to_string(&openapi::index(&st.types)).unwrap_or_default();
                Ok(Response::text(200, "text/plain; charset=utf-8", body))
            }
            p if p.starts_with("/openapi/v3/") => {
                let doc = openapi::document(&st.types, &p["/openapi/v3/".len()..])
                    .ok_or_else(ApiError::page_not_found)?;
                let etag = format!("\"{}\"", openapi::hash(&doc));
                let cache = if req.query_param("hash").is_some() {
                    "public, immutable"
                } else {
                    "no-cache, private"
                };
                Ok(Response::json(200, &doc)
                    .with_header("Cache-Control", cache)
                    .with_header("Etag", &etag)
                    .with_header("Vary", "Accept"))
            }
            p if p.starts_with("/apis/") => {
                let rest = &p["/apis/".len()..];
                match rest.split_once('/') {
                    Some((g, v)) if st.serves(g, v) => Ok(Response::json(
                        200,
                        &discovery::resource_list(&st.types, g, v),
                    )),
                    Some(_) => Err(ApiError::page_not_found()),
                    None => discovery::api_group(&st.types, rest)
                        .map(|d| Response::json(200, &d))
                        .ok_or_else(ApiError::page_not_found),
                }
            }
            _ => Err(ApiError::page_not_found()),
        }
    }
}

/// A uuid derived from a name (kube-system's uid must not change between runs).
fn stable_uid(seed: &str) -> String {
    let d = Sha256::digest(format!("asm-sim/kube-system/{seed}").as_bytes());
    let h: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

impl Handler for KubeApiServer {
    fn handle(self: Arc<Self>, req: Request) -> HandlerFuture {
        Box::pin(async move { self.serve(&req) })
    }

    fn fault_response(&self, kind: FaultKind) -> Response {
        let (code, reason, message) = match kind {
            FaultKind::TooManyRequests => (
                429,
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            ),
            FaultKind::Internal => (
                500,
                "InternalError",
                "an error on the server (\"injected fault\") has prevented the request from succeeding",
            ),
            _ => (
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
        };
        let r = ApiError::new(code, Some(reason), message)
            .with_details(json!({"retryAfterSeconds": 1}))
            .response();
        if code == 429 {
            r.with_header("Retry-After", "1")
        } else {
            r
        }
    }
}

impl MemberCluster for KubeApiServer {
    fn apply_object(&self, object: Value) -> anyhow::Result<Value> {
        handlers::controller_apply(self, object, "gke-servicemesh-controller")
            .map_err(|e| anyhow::anyhow!("{}", e.message))
    }

    fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let st = self.lock();
        let rt = st.type_for_kind(api_version, kind)?;
        st.get(&rt, namespace.unwrap_or_default(), name).cloned()
    }

    fn settle(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) {
        match (api_version, kind) {
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                self.establish_crd(name, true)
            }
            ("mesh.cloud.google.com/v1beta1", "ControlPlaneRevision") => {
                self.provision_cpr(namespace.unwrap_or_default(), name)
            }
            _ => {}
        }
    }
}
