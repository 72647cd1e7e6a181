//! `google.rpc.Status` errors, the one error format of every simulated Google API.
//!
//! The `status` string matters as much as the HTTP code: gcloud keys behaviour on it
//! (ALREADY_EXISTS means "already registered", FAILED_PRECONDITION + "is not enabled" means
//! "wait for the API"), so every error carries both.

use serde_json::{Value, json};

use crate::http::Response;

/// An error answer of a simulated Google API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// The canonical `google.rpc.Code` name (`NOT_FOUND`, …).
    pub status: &'static str,
    pub message: String,
    /// `google.rpc.Status.details`, each with its `@type`.
    pub details: Vec<Value>,
    /// Extra response headers (`Retry-After`).
    pub headers: Vec<(String, String)>,
}

/// What every route handler returns.
pub type ApiResult = Result<Response, ApiError>;

impl ApiError {
    /// An error with no details.
    pub fn new(code: u16, status: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            status,
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Adds one `details` entry.
    pub fn detail(mut self, detail: Value) -> Self {
        self.details.push(detail);
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(400, "INVALID_ARGUMENT", message)
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        ApiError::new(400, "FAILED_PRECONDITION", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(404, "NOT_FOUND", message)
    }

    pub fn already_exists(message: impl Into<String>) -> Self {
        ApiError::new(409, "ALREADY_EXISTS", message)
    }

    pub fn aborted(message: impl Into<String>) -> Self {
        ApiError::new(409, "ABORTED", message)
    }

    /// The answer to a request without (or with a wrong) access token, as Google's front end
    /// gives it.
    pub fn unauthenticated() -> Self {
        ApiError::new(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        )
        .detail(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "metadata": {"service": "googleapis.com"},
        }))
    }

    /// 403 for a permission the principal lacks, with the ErrorInfo clients read the
    /// permission from.
    pub fn permission_denied(
        domain: &str,
        message: String,
        permission: &str,
        resource: &str,
    ) -> Self {
        ApiError::new(403, "PERMISSION_DENIED", message).detail(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "IAM_PERMISSION_DENIED",
            "domain": domain,
            "metadata": {"permission": permission, "resource": resource},
        }))
    }

    /// 403 SERVICE_DISABLED, byte for byte the shape Google's front end sends when `service`
    /// is not enabled in the consumer project.
    pub fn service_disabled(service: &str, title: &str, project_number: &str) -> Self {
        let url = format!(
            "https://console.developers.google.com/apis/api/{service}/overview?project={project_number}"
        );
        let message = format!(
            "{title} has not been used in project {project_number} before or it is disabled. Enable it by visiting {url} then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry."
        );
        ApiError::new(403, "PERMISSION_DENIED", message.clone())
            .detail(json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "SERVICE_DISABLED",
                "domain": "googleapis.com",
                "metadata": {
                    "service": service,
                    "consumer": format!("projects/{project_number}"),
                    "activationUrl": url,
                    "containerInfo": project_number,
                    "serviceTitle": title,
                },
            }))
            .detail(json!({
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": message,
            }))
            .detail(json!({
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [{"description": "Google developers console API activation", "url": url}],
            }))
    }

    /// The `google.rpc.Status` body.
    pub fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message, "status": self.status});
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details.clone());
        }
        json!({ "error": error })
    }

    /// The HTTP response.
    pub fn into_response(self) -> Response {
        let mut response = Response::json(self.code, &self.body());
        for (k, v) in &self.headers {
            response = response.with_header(k, v);
        }
        response
    }

    /// The numeric `google.rpc.Code` of the status (for LRO `error.code`).
    pub fn rpc_code(&self) -> u32 {
        match self.status {
            "CANCELLED" => 1,
            "UNKNOWN" => 2,
            "INVALID_ARGUMENT" => 3,
            "DEADLINE_EXCEEDED" => 4,
            "NOT_FOUND" => 5,
            "ALREADY_EXISTS" => 6,
            "PERMISSION_DENIED" => 7,
            "RESOURCE_EXHAUSTED" => 8,
            "FAILED_PRECONDITION" => 9,
            "ABORTED" => 10,
            "OUT_OF_RANGE" => 11,
            "UNIMPLEMENTED" => 12,
            "INTERNAL" => 13,
            "UNAVAILABLE" => 14,
            "DATA_LOSS" => 15,
            "UNAUTHENTICATED" => 16,
            _ => 2,
        }
    }
}

/// A 200 JSON answer.
pub fn ok(value: &Value) -> ApiResult {
    Ok(Response::json(200, value))
}
