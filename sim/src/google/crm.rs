//! cloudresourcemanager.googleapis.com v1: projects get, getIamPolicy, setIamPolicy (etag
//! checked) and testIamPermissions (https://cloud.google.com/resource-manager/reference/rest/v1/projects).

use serde_json::{Value, json};

use super::errors::{ApiError, ApiResult, ok};
use super::state::{IamPolicy, Project, rfc3339};
use super::{Api, Ctx};
use crate::http::Request;

/// Routes `/crm/<rest>`.
pub fn route(ctx: &mut Ctx<'_>, req: &Request, rest: &str) -> ApiResult {
    let segs: Vec<&str> = rest.split('/').collect();
    let ["v1", "projects", project_and_verb] = segs.as_slice() else {
        return Err(super::not_found_url(req));
    };
    let (project, verb) = project_and_verb
        .split_once(':')
        .map_or((*project_and_verb, None), |(p, v)| (p, Some(v)));
    let resource = format!("projects/{project}");
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))?
    };
    match (req.method.as_str(), verb) {
        ("GET", None) => {
            ctx.guard(
                Api::ResourceManager,
                project,
                Some("resourcemanager.projects.get"),
                &resource,
            )?;
            let p = project_of(ctx, project)?;
            ok(&json!({
                "projectNumber": p.number,
                "projectId": p.id,
                "lifecycleState": "ACTIVE",
                "name": p.id,
                "createTime": rfc3339(p.create_time),
                "parent": {"type": "organization", "id": "433637338589"},
            }))
        }
        ("POST", Some("getIamPolicy")) => {
            ctx.guard(
                Api::ResourceManager,
                project,
                Some("resourcemanager.projects.getIamPolicy"),
                &resource,
            )?;
            ok(&project_of(ctx, project)?.iam.json())
        }
        ("POST", Some("setIamPolicy")) => {
            ctx.guard(
                Api::ResourceManager,
                project,
                Some("resourcemanager.projects.setIamPolicy"),
                &resource,
            )?;
            let i = ctx
                .st
                .project_index(project)
                .ok_or_else(|| ApiError::not_found(format!("Project {project} not found.")))?;
            if ctx.st.iam_concurrent_writes > 0 && body.pointer("/policy/etag").is_some() {
                ctx.st.iam_concurrent_writes -= 1;
                ctx.st.projects[i].iam.concurrent_write();
            }
            set_policy(&mut ctx.st.projects[i].iam, &body)
        }
        ("POST", Some("testIamPermissions")) => {
            ctx.guard(Api::ResourceManager, project, None, &resource)?;
            let asked: Vec<&str> = body
                .get("permissions")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if asked.len() > 100 {
                return Err(ApiError::invalid(
                    "At most 100 permissions may be tested at once.",
                ));
            }
            let granted: Vec<&str> = asked
                .into_iter()
                .filter(|p| !ctx.st.denied.contains(*p))
                .collect();
            if granted.is_empty() {
                ok(&json!({}))
            } else {
                ok(&json!({"permissions": granted}))
            }
        }
        _ => Err(super::not_found_url(req)),
    }
}

/// The project `p` names (the guard has already answered 403 for unknown ones).
fn project_of<'a>(ctx: &'a Ctx<'_>, p: &str) -> Result<&'a Project, ApiError> {
    ctx.st
        .project(p)
        .ok_or_else(|| ApiError::not_found(format!("Project {p} not found.")))
}

/// `setIamPolicy` on `iam`: the etag, when sent, must be current (else 409 ABORTED); the
/// bindings replace the old ones (the default update mask `bindings,etag`).
pub fn set_policy(iam: &mut IamPolicy, body: &Value) -> ApiResult {
    let Some(policy) = body.get("policy").filter(|p| p.is_object()) else {
        return Err(ApiError::invalid(
            "Request contains an invalid argument: policy is required.",
        ));
    };
    if let Some(etag) = policy.get("etag").and_then(Value::as_str)
        && etag != iam.etag()
    {
        return Err(ApiError::aborted(
            "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
        ));
    }
    let version = policy.get("version").and_then(Value::as_i64).unwrap_or(1);
    if !matches!(version, 0 | 1 | 3) {
        return Err(ApiError::invalid(format!(
            "Invalid policy version {version}: must be 1 or 3."
        )));
    }
    let bindings = policy.get("bindings").cloned().unwrap_or(json!([]));
    let Some(list) = bindings.as_array() else {
        return Err(ApiError::invalid("Policy bindings must be a list."));
    };
    for b in list {
        let role_ok = b.get("role").and_then(Value::as_str).is_some_and(|r| {
            r.starts_with("roles/") || r.starts_with("projects/") || r.starts_with("organizations/")
        });
        let members_ok = b.get("members").and_then(Value::as_array).is_some_and(|m| {
            m.iter()
                .all(|x| x.as_str().is_some_and(|s| s.contains(':')))
        });
        if !role_ok || !members_ok {
            return Err(ApiError::invalid(format!("Invalid policy binding: {b}")));
        }
        if b.get("condition").is_some() && version < 3 {
            return Err(ApiError::invalid(
                "Policy with conditions must be version 3 or higher.",
            ));
        }
    }
    iam.bindings = bindings;
    iam.version = version.max(1);
    if let Some(a) = policy.get("auditConfigs") {
        iam.audit_configs = Some(a.clone());
    }
    iam.serial += 1;
    ok(&iam.json())
}
