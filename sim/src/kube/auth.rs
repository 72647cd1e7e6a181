//! Authentication (the sandbox Google token is a cluster admin, ServiceAccount tokens the
//! server minted stand for their ServiceAccount, no token is `system:anonymous`) and RBAC
//! authorization over the stored Roles, ClusterRoles and bindings.

use serde_json::{Value, json};

use super::store::{State, TokenInfo};
use super::util::{b64url, now_secs};

/// The audience the API server accepts (its service-account issuer).
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// Who a request is from.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: Option<Value>,
    /// In `system:masters`: every request is allowed.
    pub admin: bool,
    /// The ServiceAccount (namespace, name) a token stands for.
    pub service_account: Option<(String, String)>,
}

impl User {
    pub fn anonymous() -> User {
        User {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
            extra: None,
            admin: false,
            service_account: None,
        }
    }

    pub fn admin() -> User {
        User {
            name: "sandbox-admin@asm-sim.invalid".into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            extra: None,
            admin: true,
            service_account: None,
        }
    }

    pub fn service_account(namespace: &str, name: &str, uid: &str, jti: Option<&str>) -> User {
        User {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            uid: uid.into(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
            extra: jti.map(
                |j| json!({"authentication.kubernetes.io/credential-id": [format!("JTI={j}")]}),
            ),
            admin: false,
            service_account: Some((namespace.into(), name.into())),
        }
    }

    /// A user named by `Impersonate-User` (ServiceAccounts get their groups).
    pub fn impersonated(name: &str, groups: Vec<String>) -> User {
        if let Some(rest) = name.strip_prefix("system:serviceaccount:")
            && let Some((ns, sa)) = rest.split_once(':')
        {
            let mut u = User::service_account(ns, sa, "", None);
            u.groups.extend(groups);
            return u;
        }
        let admin = groups.iter().any(|g| g == "system:masters");
        let mut all = groups;
        all.push("system:authenticated".into());
        User {
            name: name.into(),
            uid: String::new(),
            groups: all,
            extra: None,
            admin,
            service_account: None,
        }
    }
}

/// Mints a JWT-shaped ServiceAccount token and remembers what it stands for.
pub fn mint_token(state: &mut State, info: TokenInfo) -> String {
    let header = json!({"alg": "RS256", "kid": "asm-sim"});
    let mut claims = json!({
        "aud": info.audiences,
        "iss": API_AUDIENCE,
        "sub": format!("system:serviceaccount:{}:{}", info.namespace, info.sa_name),
        "kubernetes.io": {"namespace": info.namespace, "serviceaccount": {"name": info.sa_name, "uid": info.sa_uid}},
        "jti": info.jti,
        "iat": now_secs(),
        "nbf": now_secs(),
    });
    if let Some(exp) = info.expires {
        claims["exp"] = json!(exp);
    }
    if let Some(secret) = &info.secret {
        claims["kubernetes.io/serviceaccount/secret.name"] = json!(secret);
    }
    let sig = state.rng.bytes(64);
    let token = format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes()),
        b64url(&sig)
    );
    state.tokens.insert(token.clone(), info);
    token
}

/// The user of a bearer token, or `None` (401) when it is unknown, expired, for another
/// audience, or its ServiceAccount/Secret is gone.
pub fn authenticate_token(state: &State, token: &str) -> Option<User> {
    let info = state.tokens.get(token)?;
    if !info.audiences.iter().any(|a| a == API_AUDIENCE) {
        return None;
    }
    if info.expires.is_some_and(|e| e <= now_secs()) {
        return None;
    }
    let sa = state.objects.iter().find(|(k, _)| {
        k.group.is_empty()
            && k.plural == "serviceaccounts"
            && k.namespace == info.namespace
            && k.name == info.sa_name
    })?;
    if sa.1.pointer("/metadata/uid").and_then(Value::as_str) != Some(info.sa_uid.as_str()) {
        return None;
    }
    if let Some(secret) = &info.secret {
        let exists = state.objects.keys().any(|k| {
            k.group.is_empty()
                && k.plural == "secrets"
                && k.namespace == info.namespace
                && &k.name == secret
        });
        if !exists {
            return None;
        }
    }
    Some(User::service_account(
        &info.namespace,
        &info.sa_name,
        &info.sa_uid,
        Some(&info.jti),
    ))
}

/// One authorization question.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// Set for non-resource requests.
    pub path: Option<String>,
}

/// Whether the user may do it, and the RBAC reason when a binding allows it.
pub fn authorize(state: &State, user: &User, attrs: &Attributes) -> (bool, Option<String>) {
    // system:masters is allowed everything before RBAC is asked (the privileged-group
    // authorizer kube-apiserver puts first).
    if user.admin {
        return (true, None);
    }
    // Everything else comes from RBAC objects, the bootstrap policy (bootstrap_rbac.rs)
    // included: discovery, health and self-reviews are allowed by its bindings.
    let subject_matches = |s: &Value, binding_ns: &str| subject_is(user, s, binding_ns);
    let find = |plural: &str, ns: &str, name: &str| {
        state
            .objects
            .iter()
            .find(|(k, _)| {
                k.group == "rbac.authorization.k8s.io"
                    && k.plural == plural
                    && k.namespace == ns
                    && k.name == name
            })
            .map(|(_, v)| v)
    };
    // How the RBAC reason names the subject that matched (upstream `describeSubject`).
    let subject_desc = |s: &Value, binding_ns: &str| {
        let kind = s["kind"].as_str().unwrap_or_default();
        let name = s["name"].as_str().unwrap_or_default();
        if kind == "ServiceAccount" {
            let ns = s["namespace"].as_str().unwrap_or(binding_ns);
            format!("ServiceAccount \"{name}/{ns}\"")
        } else {
            format!("{kind} \"{name}\"")
        }
    };
    for (key, binding) in &state.objects {
        if key.group != "rbac.authorization.k8s.io"
            || (key.plural != "clusterrolebindings" && key.plural != "rolebindings")
        {
            continue;
        }
        let cluster_binding = key.plural == "clusterrolebindings";
        if !cluster_binding && (attrs.path.is_some() || key.namespace != attrs.namespace) {
            continue;
        }
        let Some(subject) = binding["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| subject_matches(s, &key.namespace))
        else {
            continue;
        };
        let role_kind = binding["roleRef"]["kind"].as_str().unwrap_or_default();
        let role_name = binding["roleRef"]["name"].as_str().unwrap_or_default();
        let role = if role_kind == "ClusterRole" {
            find("clusterroles", "", role_name)
        } else {
            find("roles", &key.namespace, role_name)
        };
        let Some(role) = role else { continue };
        if role["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| rule_allows(r, attrs))
        {
            let binding_desc = if cluster_binding {
                format!("ClusterRoleBinding \"{}\"", key.name)
            } else {
                format!("RoleBinding \"{}/{}\"", key.name, key.namespace)
            };
            let reason = format!(
                "RBAC: allowed by {binding_desc} of {role_kind} \"{role_name}\" to {}",
                subject_desc(subject, &key.namespace)
            );
            return (true, Some(reason));
        }
    }
    (false, None)
}

fn has(list: &Value, want: &str) -> bool {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|v| v == "*" || v == want)
}

fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    if !has(&rule["verbs"], &a.verb) {
        return false;
    }
    if let Some(path) = &a.path {
        return rule["nonResourceURLs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|u| {
                u == "*" || u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
            });
    }
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let names_ok = rule["resourceNames"]
        .as_array()
        .is_none_or(|n| n.is_empty() || n.iter().any(|x| x.as_str() == Some(a.name.as_str())));
    has(&rule["apiGroups"], &a.group)
        && resource_matches(&rule["resources"], &resource, &a.subresource)
        && names_ok
}

/// Upstream `ResourceMatches`: `*`, the exact `resource[/subresource]`, or `*/subresource`.
fn resource_matches(list: &Value, combined: &str, subresource: &str) -> bool {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|r| {
            r == "*"
                || r == combined
                || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
        })
}

/// What SelfSubjectRulesReview answers for `user` in `namespace`: (resourceRules,
/// nonResourceRules) in the form of authorization/v1 ResourceRule and NonResourceRule. Besides
/// the user's bindings, every authenticated user holds the default roles
/// system:basic-user, system:discovery and system:public-info-viewer
/// (https://kubernetes.io/docs/reference/access-authn-authz/rbac/#default-roles-and-role-bindings),
/// which come from the bootstrap policy's bindings like any other; an admin (system:masters)
/// holds cluster-admin.
pub fn rules_for(state: &State, user: &User, namespace: &str) -> (Vec<Value>, Vec<Value>) {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    let mut add = |rule: &Value| {
        if let Some(urls) = rule.get("nonResourceURLs").filter(|u| has_items(u)) {
            non_resource_rules.push(json!({"verbs": rule["verbs"], "nonResourceURLs": urls}));
            return;
        }
        let mut r = serde_json::Map::new();
        r.insert("verbs".into(), rule["verbs"].clone());
        for k in ["apiGroups", "resources", "resourceNames"] {
            if let Some(v) = rule.get(k).filter(|v| has_items(v)) {
                r.insert(k.into(), v.clone());
            }
        }
        resource_rules.push(Value::Object(r));
    };
    if user.admin {
        add(&json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        add(&json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
    }
    for role in bound_roles(state, user, namespace) {
        for rule in role["rules"].as_array().into_iter().flatten() {
            add(rule);
        }
    }
    (resource_rules, non_resource_rules)
}

fn has_items(v: &Value) -> bool {
    v.as_array().is_some_and(|a| !a.is_empty())
}

/// The roles bound to `user` that apply in `namespace`: ClusterRoleBindings first, then the
/// namespace's RoleBindings (the order the real rule resolver visits them).
fn bound_roles<'a>(state: &'a State, user: &User, namespace: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for plural in ["clusterrolebindings", "rolebindings"] {
        for (key, binding) in &state.objects {
            if key.group != "rbac.authorization.k8s.io" || key.plural != plural {
                continue;
            }
            if plural == "rolebindings" && key.namespace != namespace {
                continue;
            }
            let subject_matches = binding["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| subject_is(user, s, &key.namespace));
            if !subject_matches {
                continue;
            }
            let role_kind = binding["roleRef"]["kind"].as_str().unwrap_or_default();
            let role_name = binding["roleRef"]["name"].as_str().unwrap_or_default();
            let (role_plural, role_ns) = if role_kind == "ClusterRole" {
                ("clusterroles", "")
            } else {
                ("roles", key.namespace.as_str())
            };
            let role = state.objects.iter().find(|(k, _)| {
                k.group == "rbac.authorization.k8s.io"
                    && k.plural == role_plural
                    && k.namespace == role_ns
                    && k.name == role_name
            });
            if let Some((_, role)) = role {
                out.push(role);
            }
        }
    }
    out
}

/// Whether an RBAC subject names `user` (a ServiceAccount subject without namespace means the
/// binding's namespace).
fn subject_is(user: &User, s: &Value, binding_ns: &str) -> bool {
    match s["kind"].as_str() {
        Some("ServiceAccount") => user.service_account.as_ref().is_some_and(|(ns, name)| {
            s["name"].as_str() == Some(name.as_str())
                && s["namespace"].as_str().unwrap_or(binding_ns) == ns
        }),
        Some("User") => s["name"].as_str() == Some(user.name.as_str()),
        Some("Group") => user
            .groups
            .iter()
            .any(|g| s["name"].as_str() == Some(g.as_str())),
        _ => false,
    }
}
