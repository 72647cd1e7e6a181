//! `meta/v1 Status` bodies: every error the API server answers, shaped like kube-apiserver's
//! (reason, message and details are what clients branch on).

use serde_json::{Map, Value, json};

use crate::http::Response;

/// An API error, rendered as a `Status` (or as the plain-text 404 of an unserved path).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: Option<&'static str>,
    pub message: String,
    pub details: Option<Value>,
    /// The plain-text `404 page not found` of the apiserver's mux.
    pub plain_not_found: bool,
}

/// What the details of a Status name: `{name, group, kind}` where kind is the resource.
#[derive(Debug, Clone, Default)]
pub struct Target<'a> {
    pub group: &'a str,
    /// The plural resource name (`configmaps`).
    pub resource: &'a str,
    pub name: &'a str,
}

impl Target<'_> {
    /// `configmaps` or `customresourcedefinitions.apiextensions.k8s.io`, as messages name it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn details(&self, with_name: bool) -> Map<String, Value> {
        let mut d = Map::new();
        if with_name && !self.name.is_empty() {
            d.insert("name".into(), json!(self.name));
        }
        if !self.group.is_empty() {
            d.insert("group".into(), json!(self.group));
        }
        d.insert("kind".into(), json!(self.resource));
        d
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: u16, reason: Option<&'static str>, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            plain_not_found: false,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The mux's answer for a path nothing serves (an unserved group/version).
    pub fn page_not_found() -> Self {
        ApiError {
            plain_not_found: true,
            ..ApiError::new(404, Some("NotFound"), "404 page not found")
        }
    }

    pub fn not_found(t: &Target) -> Self {
        ApiError::new(
            404,
            Some("NotFound"),
            format!("{} \"{}\" not found", t.qualified(), t.name),
        )
        .with_details(Value::Object(t.details(true)))
    }

    pub fn already_exists(t: &Target) -> Self {
        ApiError::new(
            409,
            Some("AlreadyExists"),
            format!("{} \"{}\" already exists", t.qualified(), t.name),
        )
        .with_details(Value::Object(t.details(true)))
    }

    pub fn conflict_modified(t: &Target) -> Self {
        ApiError::new(
            409,
            Some("Conflict"),
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                t.qualified(),
                t.name
            ),
        )
        .with_details(Value::Object(t.details(true)))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, Some("BadRequest"), message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(500, None, message)
    }

    pub fn unauthorized() -> Self {
        ApiError::new(401, Some("Unauthorized"), "Unauthorized")
    }

    /// RBAC denial of a resource request.
    pub fn forbidden(user: &str, verb: &str, t: &Target, namespace: Option<&str>) -> Self {
        let subject = if t.name.is_empty() {
            t.qualified()
        } else {
            format!("{} \"{}\"", t.qualified(), t.name)
        };
        let scope = match namespace {
            Some(ns) if !ns.is_empty() => format!("in the namespace \"{ns}\""),
            _ => "at the cluster scope".to_string(),
        };
        ApiError::new(
            403,
            Some("Forbidden"),
            format!(
                "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                t.resource, t.group
            ),
        )
        .with_details(Value::Object(t.details(true)))
    }

    /// RBAC denial of a non-resource path.
    pub fn forbidden_path(user: &str, verb: &str, path: &str) -> Self {
        ApiError::new(
            403,
            Some("Forbidden"),
            format!("forbidden: User \"{user}\" cannot {verb} path \"{path}\""),
        )
        .with_details(json!({}))
    }

    /// 422 Invalid with field causes; `kind` is the Kind (not the resource) as validation names it.
    pub fn invalid(
        kind_qualified: &str,
        group: &str,
        kind: &str,
        name: &str,
        causes: Vec<Cause>,
    ) -> Self {
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let summary = if summary.len() == 1 {
            summary.join("")
        } else {
            format!("[{}]", summary.join(", "))
        };
        let mut d = Map::new();
        if !name.is_empty() {
            d.insert("name".into(), json!(name));
        }
        if !group.is_empty() {
            d.insert("group".into(), json!(group));
        }
        d.insert("kind".into(), json!(kind));
        d.insert(
            "causes".into(),
            Value::Array(
                causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect(),
            ),
        );
        ApiError::new(
            422,
            Some("Invalid"),
            format!("{kind_qualified} \"{name}\" is invalid: {summary}"),
        )
        .with_details(Value::Object(d))
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("Status"));
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("metadata".into(), json!({}));
        m.insert("status".into(), json!("Failure"));
        m.insert("message".into(), json!(self.message));
        if let Some(r) = self.reason {
            m.insert("reason".into(), json!(r));
        }
        if let Some(d) = &self.details {
            m.insert("details".into(), d.clone());
        }
        m.insert("code".into(), json!(self.code));
        Value::Object(m)
    }

    pub fn response(&self) -> Response {
        if self.plain_not_found {
            return Response::text(404, "text/plain; charset=utf-8", "404 page not found\n");
        }
        Response::json(self.code, &self.status())
    }
}

/// One `details.causes` entry.
#[derive(Debug, Clone)]
pub struct Cause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

impl Cause {
    pub fn new(reason: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Cause {
            reason,
            message: message.into(),
            field: field.into(),
        }
    }
}

/// A `Status` of success (what DELETE of most objects answers).
pub fn success(t: &Target, uid: &str) -> Value {
    let mut d = t.details(true);
    d.insert("uid".into(), json!(uid));
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": Value::Object(d)})
}
