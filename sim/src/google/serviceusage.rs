//! serviceusage.googleapis.com v1: list (filtered, paged), get, batchGet, enable,
//! batchEnable, disable, and `operations/…` (https://cloud.google.com/service-usage/docs/reference/rest/v1/services).

use base64::Engine as _;
use serde_json::{Value, json};

use super::errors::{ApiError, ApiResult, ok};
use super::ops::{Effect, OpStyle, Operation};
use super::state::{Project, SERVICE_CATALOGUE, service_title, uuid_like};
use super::{Api, Ctx};
use crate::http::Request;

/// The largest page `services list` returns.
const MAX_PAGE: usize = 200;
/// The page size when the client asks for none.
const DEFAULT_PAGE: usize = 50;

/// Routes `/serviceusage/<rest>`.
pub fn route(ctx: &mut Ctx<'_>, req: &Request, rest: &str) -> ApiResult {
    let segs: Vec<&str> = rest.split('/').collect();
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["v1", "operations", id]) => match ctx.st.ops.get(&format!("su/operations/{id}")) {
            Some(op) => ok(&op.json(ctx.st)),
            None => Err(ApiError::not_found(format!(
                "Operation 'operations/{id}' not found."
            ))),
        },
        (method, ["v1", "projects", project, services, tail @ ..]) => {
            let project = *project;
            // Unknown projects fail in the guard; this index only serves known ones.
            let pi = ctx.st.project_index(project).unwrap_or(0);
            let parent = format!("projects/{}", ctx.st.projects[pi].number);
            let (collection, verb) = services
                .split_once(':')
                .map_or((*services, None), |(c, v)| (c, Some(v)));
            if collection != "services" {
                return Err(super::not_found_url(req));
            }
            match (method, verb, tail) {
                ("GET", None, []) => {
                    ctx.guard(
                        Api::ServiceUsage,
                        project,
                        Some("serviceusage.services.list"),
                        &parent,
                    )?;
                    list(&ctx.st.projects[pi], req)
                }
                ("GET", Some("batchGet"), []) => {
                    ctx.guard(
                        Api::ServiceUsage,
                        project,
                        Some("serviceusage.services.get"),
                        &parent,
                    )?;
                    let names: Vec<String> = req
                        .query_pairs()
                        .into_iter()
                        .filter(|(k, _)| k == "names")
                        .map(|(_, v)| v)
                        .collect();
                    if names.is_empty() || names.len() > 30 {
                        return Err(ApiError::invalid("Between 1 and 30 names must be given."));
                    }
                    let mut out = Vec::new();
                    for n in names {
                        let id = n.rsplit('/').next().unwrap_or_default().to_string();
                        known(&ctx.st.projects[pi], &id)?;
                        out.push(service_json(&ctx.st.projects[pi], &id));
                    }
                    ok(&json!({"services": out}))
                }
                ("POST", Some("batchEnable"), []) => {
                    ctx.guard(
                        Api::ServiceUsage,
                        project,
                        Some("serviceusage.services.enable"),
                        &parent,
                    )?;
                    let body: Value = serde_json::from_slice(&req.body).unwrap_or(json!({}));
                    let ids: Vec<String> = body
                        .get("serviceIds")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    if ids.is_empty() {
                        return Err(ApiError::invalid("serviceIds must not be empty."));
                    }
                    if ids.len() > 20 {
                        return Err(ApiError::invalid(format!(
                            "Too many services in a batch request: {} given, at most 20 allowed.",
                            ids.len()
                        )));
                    }
                    for id in &ids {
                        known(&ctx.st.projects[pi], id)?;
                    }
                    enable(ctx, pi, ids, true)
                }
                (method, verb, [service_and_verb]) if verb.is_none() => {
                    let (id, verb) = service_and_verb
                        .split_once(':')
                        .map_or((*service_and_verb, None), |(s, v)| (s, Some(v)));
                    let resource = format!("{parent}/services/{id}");
                    match (method, verb) {
                        ("GET", None) => {
                            ctx.guard(
                                Api::ServiceUsage,
                                project,
                                Some("serviceusage.services.get"),
                                &resource,
                            )?;
                            known(&ctx.st.projects[pi], id)?;
                            ok(&service_json(&ctx.st.projects[pi], id))
                        }
                        ("POST", Some("enable")) => {
                            ctx.guard(
                                Api::ServiceUsage,
                                project,
                                Some("serviceusage.services.enable"),
                                &resource,
                            )?;
                            known(&ctx.st.projects[pi], id)?;
                            enable(ctx, pi, vec![id.to_string()], false)
                        }
                        ("POST", Some("disable")) => {
                            ctx.guard(
                                Api::ServiceUsage,
                                project,
                                Some("serviceusage.services.disable"),
                                &resource,
                            )?;
                            known(&ctx.st.projects[pi], id)?;
                            ctx.st.projects[pi].enabled.remove(id);
                            let seed = ctx.st.fresh_hex(16);
                            let p = &ctx.st.projects[pi];
                            let name =
                                format!("operations/acf.p2-{}-{}", p.number, uuid_like(&seed));
                            ok(&json!({"name": name, "done": true, "response": {
                                "@type": "type.googleapis.com/google.api.serviceusage.v1.DisableServiceResponse",
                                "service": service_json(p, id)}}))
                        }
                        _ => Err(super::not_found_url(req)),
                    }
                }
                _ => Err(super::not_found_url(req)),
            }
        }
        _ => Err(super::not_found_url(req)),
    }
}

/// Services that exist: the catalogue and anything the scenario enabled.
fn known(project: &Project, id: &str) -> Result<(), ApiError> {
    if service_title(id).is_some() || project.enabled.contains(id) {
        return Ok(());
    }
    Err(ApiError::new(
        403,
        "PERMISSION_DENIED",
        format!("Not found or permission denied for service(s): {id}."),
    )
    .detail(json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "SERVICE_CONFIG_NOT_FOUND_OR_PERMISSION_DENIED",
        "domain": "serviceusage.googleapis.com",
        "metadata": {"services": id},
    })))
}

fn enable(ctx: &mut Ctx<'_>, project: usize, ids: Vec<String>, batch: bool) -> ApiResult {
    let seed = ctx.st.fresh_hex(16);
    let name = format!(
        "operations/acat.p2-{}-{}",
        ctx.st.projects[project].number,
        uuid_like(&seed)
    );
    let duration = ctx.st.timing.serviceusage_op;
    let op = Operation::new(
        OpStyle::ServiceUsage,
        name.clone(),
        Effect::EnableServices {
            project,
            ids,
            batch,
        },
        ctx.now,
        duration,
    );
    let op = ctx.start_op(format!("su/{name}"), op);
    ok(&op)
}

fn list(st: &Project, req: &Request) -> ApiResult {
    let filter = req.query_param("filter").unwrap_or_default();
    let want: Option<&str> = match filter.trim() {
        "" => None,
        "state:ENABLED" | "state:enabled" | "state = ENABLED" => Some("ENABLED"),
        "state:DISABLED" | "state:disabled" | "state = DISABLED" => Some("DISABLED"),
        other => {
            return Err(ApiError::invalid(format!(
                "Invalid filter: {other:?}. Supported: state:ENABLED, state:DISABLED."
            )));
        }
    };
    let page_size = match req.query_param("pageSize") {
        None => DEFAULT_PAGE,
        Some(s) => match s.parse::<usize>() {
            Ok(0) => DEFAULT_PAGE,
            Ok(n) => n.min(MAX_PAGE),
            Err(_) => {
                return Err(ApiError::invalid(format!(
                    "Invalid value for pageSize: {s:?}"
                )));
            }
        },
    };
    let offset = match req.query_param("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => decode_token(&t)
            .ok_or_else(|| ApiError::invalid(format!("Invalid page token: {t:?}")))?,
    };
    let mut ids: Vec<String> = SERVICE_CATALOGUE
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    ids.extend(
        st.enabled
            .iter()
            .filter(|s| service_title(s).is_none())
            .cloned(),
    );
    ids.sort();
    let matching: Vec<&String> = ids
        .iter()
        .filter(|id| want.is_none_or(|w| (w == "ENABLED") == st.enabled.contains(id.as_str())))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|id| service_json(st, id))
        .collect();
    let mut out = json!({});
    if !page.is_empty() {
        out["services"] = Value::Array(page);
    }
    if offset + page_size < matching.len() {
        out["nextPageToken"] = json!(encode_token(offset + page_size));
    }
    ok(&out)
}

fn encode_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("svc-offset:{offset}"))
}

fn decode_token(token: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("svc-offset:")?
        .parse()
        .ok()
}

/// A `Service` resource (names use the project number, whatever the request used).
pub fn service_json(st: &Project, id: &str) -> Value {
    let parent = format!("projects/{}", st.number);
    json!({
        "name": format!("{parent}/services/{id}"),
        "config": {"name": id, "title": service_title(id).unwrap_or(id)},
        "state": if st.enabled.contains(id) { "ENABLED" } else { "DISABLED" },
        "parent": parent,
    })
}
