//! privateca.googleapis.com v1: the IAM policy of a CA pool, with the same etag rules as a
//! project's (https://cloud.google.com/certificate-authority-service/docs/reference/rest/v1/projects.locations.caPools/getIamPolicy).

use serde_json::{Value, json};

use super::errors::{ApiError, ApiResult, ok};
use super::{Api, Ctx};
use crate::http::Request;

/// Routes `/privateca/<rest>`.
pub fn route(ctx: &mut Ctx<'_>, req: &Request, rest: &str) -> ApiResult {
    let segs: Vec<&str> = rest.split('/').collect();
    let [
        "v1",
        "projects",
        project,
        "locations",
        location,
        "caPools",
        pool_and_verb,
    ] = segs.as_slice()
    else {
        return Err(super::not_found_url(req));
    };
    let (pool, verb) = pool_and_verb
        .split_once(':')
        .map_or((*pool_and_verb, None), |(p, v)| (p, Some(v)));
    let resource = format!("projects/{project}/locations/{location}/caPools/{pool}");
    let permission = match (req.method.as_str(), verb) {
        ("GET", Some("getIamPolicy")) => "privateca.caPools.getIamPolicy",
        ("POST", Some("setIamPolicy")) => "privateca.caPools.setIamPolicy",
        _ => return Err(super::not_found_url(req)),
    };
    ctx.guard(Api::PrivateCa, project, Some(permission), &resource)?;
    // Pools are keyed by the name they were declared with; a project number finds them too.
    let key = ctx.st.project(project).and_then(|p| {
        [p.id.as_str(), p.number.as_str()]
            .iter()
            .map(|id| format!("projects/{id}/locations/{location}/caPools/{pool}"))
            .find(|k| ctx.st.ca_pools.contains_key(k))
    });
    let Some(key) = key else {
        return Err(ApiError::not_found(format!(
            "Resource '{resource}' was not found"
        )));
    };
    if verb == Some("getIamPolicy") {
        return ok(&ctx.st.ca_pools[&key].json());
    }
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))?
    };
    if ctx.st.iam_concurrent_writes > 0 && body.pointer("/policy/etag").is_some() {
        ctx.st.iam_concurrent_writes -= 1;
        if let Some(p) = ctx.st.ca_pools.get_mut(&key) {
            p.concurrent_write();
        }
    }
    match ctx.st.ca_pools.get_mut(&key) {
        Some(policy) => super::crm::set_policy(policy, &body),
        None => Err(ApiError::not_found(format!(
            "Resource '{resource}' was not found"
        ))),
    }
}
