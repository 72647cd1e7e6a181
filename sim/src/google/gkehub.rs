//! gkehub.googleapis.com (GKE Hub / Fleet): memberships (v1, v1beta, v1alpha), features
//! (v1) and membership features (v2, v2alpha, v2beta), with LRO style 2c
//! (https://cloud.google.com/anthos/fleet-management/docs/reference/rest). All versions share one state; only the type URLs and
//! `apiVersion` in operation metadata differ.

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::errors::{ApiError, ApiResult, ok};
use super::ops::{Effect, OpStyle, Operation};
use super::state::{ControlPlane, Feature, Membership, State, epoch_ms, rfc3339, uuid_like};
use super::{Api, Ctx, query_bool};
use crate::http::Request;

/// Routes `/gkehub/<rest>`.
pub fn route(ctx: &mut Ctx<'_>, req: &Request, rest: &str) -> ApiResult {
    let segs: Vec<&str> = rest.split('/').collect();
    let [
        version,
        "projects",
        project,
        "locations",
        location,
        tail @ ..,
    ] = segs.as_slice()
    else {
        return Err(super::not_found_url(req));
    };
    let v2 = matches!(*version, "v2" | "v2alpha" | "v2beta");
    if !v2 && !matches!(*version, "v1" | "v1alpha" | "v1beta") {
        return Err(super::not_found_url(req));
    }
    let (version, project, location) = (*version, *project, *location);
    let parent = format!("projects/{project}/locations/{location}");
    let method = req.method.as_str();
    if ctx.st.is_project(project) && !ctx.st.is_fleet(project) {
        return other_project(ctx, req, project, &parent, tail);
    }
    match (method, tail) {
        ("GET", ["memberships"]) => {
            ctx.guard(
                Api::GkeHub,
                project,
                Some("gkehub.memberships.list"),
                &format!("{parent}/memberships"),
            )?;
            let list: Vec<Value> = ctx
                .st
                .memberships
                .values()
                .filter(|m| location == "-" || m.location == location)
                .map(|m| membership_json(ctx.st, m))
                .collect();
            if list.is_empty() {
                ok(&json!({}))
            } else {
                ok(&json!({"resources": list}))
            }
        }
        ("POST", ["memberships"]) => {
            let id = req.query_param("membershipId").unwrap_or_default();
            ctx.guard(
                Api::GkeHub,
                project,
                Some("gkehub.memberships.create"),
                &format!("{parent}/memberships/{id}"),
            )?;
            create_membership(ctx, req, version, location, &id)
        }
        (_, ["memberships", id]) => {
            let resource = format!("{parent}/memberships/{id}");
            let permission = match method {
                "GET" => "gkehub.memberships.get",
                "PATCH" => "gkehub.memberships.update",
                "DELETE" => "gkehub.memberships.delete",
                _ => return Err(super::not_found_url(req)),
            };
            ctx.guard(Api::GkeHub, project, Some(permission), &resource)?;
            let key = (location.to_string(), id.to_string());
            let Some(m) = ctx.st.memberships.get(&key).cloned() else {
                return Err(ApiError::not_found(format!(
                    "Resource '{resource}' was not found"
                )));
            };
            match method {
                "GET" => ok(&membership_json(ctx.st, &m)),
                "PATCH" => update_membership(ctx, req, version, m),
                _ => {
                    if let Some(m) = ctx.st.memberships.get_mut(&key) {
                        m.state = "DELETING";
                    }
                    let effect = Effect::MembershipDeleted {
                        location: location.into(),
                        id: id.to_string(),
                    };
                    hub_op(
                        ctx,
                        version,
                        location,
                        "delete",
                        ctx.st.membership_name(location, id),
                        effect,
                    )
                }
            }
        }
        (_, ["memberships", id, "features", feature]) if v2 => {
            membership_feature(ctx, req, version, location, id, feature)
        }
        ("GET", ["features"]) => {
            ctx.guard(
                Api::GkeHub,
                project,
                Some("gkehub.features.list"),
                &format!("{parent}/features"),
            )?;
            let list: Vec<Value> = ctx
                .st
                .features
                .keys()
                .map(|f| feature_json(ctx.st, f))
                .collect();
            if list.is_empty() {
                ok(&json!({}))
            } else {
                ok(&json!({"resources": list}))
            }
        }
        ("POST", ["features"]) => {
            let id = req.query_param("featureId").unwrap_or_default();
            ctx.guard(
                Api::GkeHub,
                project,
                Some("gkehub.features.create"),
                &format!("{parent}/features/{id}"),
            )?;
            create_feature(ctx, req, version, location, &id)
        }
        (_, ["features", feature]) => {
            let resource = format!("{parent}/features/{feature}");
            let permission = match method {
                "GET" => "gkehub.features.get",
                "PATCH" => "gkehub.features.update",
                "DELETE" => "gkehub.features.delete",
                _ => return Err(super::not_found_url(req)),
            };
            ctx.guard(Api::GkeHub, project, Some(permission), &resource)?;
            if location != "global" || !ctx.st.features.contains_key(*feature) {
                return Err(ApiError::not_found(format!(
                    "Resource '{resource}' was not found"
                )));
            }
            match method {
                // `returnPartialSuccess` only matters when some region is unreachable; none is.
                "GET" => ok(&feature_json(ctx.st, feature)),
                "PATCH" => update_feature(ctx, req, version, feature),
                _ => {
                    if let Some(f) = ctx.st.features.get_mut(*feature) {
                        f.state = "DISABLING";
                    }
                    let effect = Effect::FeatureDeleted {
                        feature: feature.to_string(),
                    };
                    let target = format!(
                        "projects/{}/locations/global/features/{feature}",
                        ctx.st.fleet_host().id
                    );
                    hub_op(ctx, version, "global", "delete", target, effect)
                }
            }
        }
        ("GET", ["operations", id]) => {
            let resource = format!("{parent}/operations/{id}");
            ctx.guard(
                Api::GkeHub,
                project,
                Some("gkehub.operations.get"),
                &resource,
            )?;
            match ctx.st.ops.get(&format!("hub/{id}")) {
                Some(op) if matches!(&op.style, OpStyle::Hub { location: l, .. } if l == location) => {
                    ok(&op.json(ctx.st))
                }
                _ => Err(ApiError::not_found(format!(
                    "Resource '{resource}' was not found"
                ))),
            }
        }
        _ => Err(super::not_found_url(req)),
    }
}

/// A project of the sandbox that hosts no fleet: its lists are empty, its resources absent,
/// and it takes no new ones (the sandbox has one fleet).
fn other_project(
    ctx: &mut Ctx<'_>,
    req: &Request,
    project: &str,
    parent: &str,
    tail: &[&str],
) -> ApiResult {
    let (permission, list) = match (req.method.as_str(), tail) {
        ("GET", ["memberships"]) => ("gkehub.memberships.list", true),
        ("GET", ["features"]) => ("gkehub.features.list", true),
        ("GET", ["memberships", ..]) => ("gkehub.memberships.get", false),
        ("GET", ["features", ..]) => ("gkehub.features.get", false),
        ("GET", ["operations", ..]) => ("gkehub.operations.get", false),
        _ => {
            return Err(ApiError::new(
                400,
                "FAILED_PRECONDITION",
                format!("Project {project} hosts no fleet in this sandbox."),
            ));
        }
    };
    let resource = format!("{parent}/{}", tail.join("/"));
    ctx.guard(Api::GkeHub, project, Some(permission), &resource)?;
    if list {
        ok(&json!({}))
    } else {
        Err(ApiError::not_found(format!(
            "Resource '{resource}' was not found"
        )))
    }
}

fn body_json(req: &Request) -> Result<Value, ApiError> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))
}

/// Starts a GKE Hub operation for `target` and answers with it.
fn hub_op(
    ctx: &mut Ctx<'_>,
    version: &str,
    location: &str,
    verb: &'static str,
    target: String,
    effect: Effect,
) -> ApiResult {
    let id = format!(
        "operation-{}-{}-{}-{}",
        epoch_ms(SystemTime::now()),
        ctx.st.fresh_hex(13),
        ctx.st.fresh_hex(8),
        ctx.st.fresh_hex(8)
    );
    let name = format!(
        "projects/{}/locations/{location}/operations/{id}",
        ctx.st.fleet_host().id
    );
    let style = OpStyle::Hub {
        version: version.to_string(),
        location: location.to_string(),
        verb,
        target,
    };
    let duration = ctx.st.timing.hub_op;
    let op = Operation::new(style, name, effect, ctx.now, duration);
    let op = ctx.start_op(format!("hub/{id}"), op);
    ok(&op)
}

/// RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
fn is_rfc1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The `(project, location, name)` of the cluster a resourceLink or issuer points at. Only
/// the `projects/…/clusters/N` suffix counts: gcloud builds these URLs from the effective
/// container endpoint, so with an endpoint override they start `//127.0.0.1:PORT/container/`.
fn cluster_ref(link: &str) -> Option<(String, String, String)> {
    let start = link.find("projects/")?;
    let parts: Vec<&str> = link[start..].trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        ["projects", p, "locations" | "zones", l, "clusters", n] => {
            Some((p.to_string(), l.to_string(), n.to_string()))
        }
        _ => None,
    }
}

/// Resolves a link to a simulated cluster's name, or explains why it does not name one.
fn resolve_cluster(st: &State, link: &str) -> Result<String, ApiError> {
    let Some((p, l, n)) = cluster_ref(link) else {
        return Err(ApiError::invalid(format!(
            "Invalid GKE cluster resource link {link:?}: expected //container.googleapis.com/projects/PROJECT/locations/LOCATION/clusters/NAME"
        )));
    };
    match st.cluster(&l, &n) {
        Some(c) if st.is_home(&p) => Ok(c.name.clone()),
        _ => Err(ApiError::not_found(format!(
            "GKE cluster projects/{p}/locations/{l}/clusters/{n} was not found."
        ))),
    }
}

fn create_membership(
    ctx: &mut Ctx<'_>,
    req: &Request,
    version: &str,
    location: &str,
    id: &str,
) -> ApiResult {
    if !is_rfc1123_label(id) {
        return Err(ApiError::invalid(format!(
            "Invalid membershipId {id:?}: it must be an RFC 1123 label ([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters)."
        )));
    }
    if location == "-" {
        return Err(ApiError::invalid(
            "A membership cannot be created in location \"-\".",
        ));
    }
    let name = ctx.st.membership_name(location, id);
    if ctx
        .st
        .memberships
        .contains_key(&(location.to_string(), id.to_string()))
    {
        return Err(ApiError::already_exists(format!(
            "Resource '{name}' already exists"
        )));
    }
    let body = body_json(req)?;
    let Some(link) = body
        .pointer("/endpoint/gkeCluster/resourceLink")
        .and_then(Value::as_str)
    else {
        return Err(ApiError::invalid(
            "Membership endpoint is required: set endpoint.gkeCluster.resourceLink (only GKE clusters exist in this project).",
        ));
    };
    let cluster = resolve_cluster(ctx.st, link)?;
    if let Some(other) = ctx
        .st
        .memberships
        .values()
        .find(|m| m.cluster.as_deref() == Some(cluster.as_str()))
    {
        return Err(ApiError::already_exists(format!(
            "GKE cluster {link} is already registered as membership '{}'.",
            ctx.st.membership_name(&other.location, &other.id)
        )));
    }
    let issuer = body
        .pointer("/authority/issuer")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(issuer) = &issuer {
        check_issuer(ctx.st, issuer, &cluster)?;
    }
    let now = SystemTime::now();
    let membership = Membership {
        location: location.to_string(),
        id: id.to_string(),
        cluster: Some(cluster),
        resource_link: link.to_string(),
        issuer,
        state: "CREATING",
        unique_id: uuid_like(&format!("{name}/{:?}", now)),
        create_time: now,
        update_time: now,
        labels: body.get("labels").cloned().unwrap_or(json!({})),
        description: body
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        control_plane: ControlPlane::Off,
    };
    ctx.st
        .memberships
        .insert((location.to_string(), id.to_string()), membership);
    let effect = Effect::MembershipCreated {
        location: location.into(),
        id: id.into(),
        version: version.into(),
    };
    hub_op(ctx, version, location, "create", name, effect)
}

fn check_issuer(st: &State, issuer: &str, cluster: &str) -> Result<(), ApiError> {
    match resolve_cluster(st, issuer) {
        Ok(c) if c == cluster => Ok(()),
        _ => Err(ApiError::invalid(format!(
            "authority.issuer {issuer:?} is not the OIDC issuer of the registered GKE cluster {cluster}."
        ))),
    }
}

fn update_membership(ctx: &mut Ctx<'_>, req: &Request, version: &str, m: Membership) -> ApiResult {
    let mask = req.query_param("updateMask").unwrap_or_default();
    if mask.is_empty() {
        return Err(ApiError::invalid("update_mask is required."));
    }
    let body = body_json(req)?;
    let mut issuer = None;
    for field in mask.split(',').map(str::trim) {
        match field {
            "authority" | "authority.issuer" => {
                let i = body
                    .pointer("/authority/issuer")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                if let (Some(i), Some(c)) = (&i, &m.cluster) {
                    check_issuer(ctx.st, i, c)?;
                }
                issuer = Some(i.unwrap_or_default());
            }
            "labels" | "description" | "externalId" | "infrastructureType" => {}
            other => {
                return Err(ApiError::invalid(format!(
                    "Field {other:?} in update_mask cannot be updated."
                )));
            }
        }
    }
    let key = (m.location.clone(), m.id.clone());
    if let Some(stored) = ctx.st.memberships.get_mut(&key) {
        stored.state = "UPDATING";
        if mask.contains("labels") {
            stored.labels = body.get("labels").cloned().unwrap_or(json!({}));
        }
        if mask.contains("description") {
            stored.description = body
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        // An empty issuer removes the authority.
        if issuer.as_deref() == Some("") {
            stored.issuer = None;
            issuer = None;
        }
    }
    let effect = Effect::MembershipUpdated {
        location: m.location.clone(),
        id: m.id.clone(),
        issuer,
        version: version.into(),
    };
    let target = ctx.st.membership_name(&m.location, &m.id);
    hub_op(ctx, version, &m.location, "update", target, effect)
}

fn create_feature(
    ctx: &mut Ctx<'_>,
    req: &Request,
    version: &str,
    location: &str,
    id: &str,
) -> ApiResult {
    if id.is_empty() {
        return Err(ApiError::invalid("featureId is required."));
    }
    if location != "global" {
        return Err(ApiError::invalid(format!(
            "Feature {id:?} can only be created in location \"global\"."
        )));
    }
    let name = format!(
        "projects/{}/locations/global/features/{id}",
        ctx.st.fleet_host().id
    );
    if ctx.st.features.contains_key(id) {
        return Err(ApiError::already_exists(format!(
            "Resource '{name}' already exists"
        )));
    }
    // The servicemesh feature needs the Mesh Config API; gcloud waits and retries on this
    // exact wording ("<api> … is not enabled").
    if id == "servicemesh"
        && !ctx
            .st
            .fleet_host()
            .enabled
            .contains("meshconfig.googleapis.com")
    {
        return Err(ApiError::precondition(format!(
            "The servicemesh Feature requires the API meshconfig.googleapis.com, which is not enabled for project {}. Enable it and retry.",
            ctx.st.fleet_host().number
        )));
    }
    let body = body_json(req)?;
    let now = SystemTime::now();
    ctx.st.features.insert(
        id.to_string(),
        Feature {
            state: "ENABLING",
            create_time: now,
            update_time: now,
            labels: body.get("labels").cloned().unwrap_or(json!({})),
            fleet_default_member_config: body.get("fleetDefaultMemberConfig").cloned(),
        },
    );
    let specs = parse_specs(ctx.st, &body)?;
    if !specs.is_empty() {
        for ((l, m), spec) in specs {
            if let Some(spec) = spec {
                ctx.st.membership_specs.insert((id.to_string(), l, m), spec);
            }
        }
    }
    let effect = Effect::FeatureCreated {
        feature: id.to_string(),
        version: version.into(),
    };
    hub_op(ctx, version, "global", "create", name, effect)
}

/// One `membershipSpecs` entry: the (location, membership id) and its new spec (`None` = remove).
type SpecChange = ((String, String), Option<Value>);

/// The `membershipSpecs` of a Feature body, keys normalised to (location, membership id).
fn parse_specs(st: &State, body: &Value) -> Result<Vec<SpecChange>, ApiError> {
    let mut out = Vec::new();
    let Some(map) = body.get("membershipSpecs").and_then(Value::as_object) else {
        return Ok(out);
    };
    for (key, spec) in map {
        let Some(target) = st.parse_membership_key(key) else {
            return Err(ApiError::invalid(format!(
                "Invalid membershipSpecs key {key:?}: expected projects/PROJECT/locations/LOCATION/memberships/MEMBERSHIP of this project."
            )));
        };
        if let Some(mgmt) = spec.pointer("/mesh/management").and_then(Value::as_str) {
            check_enum(
                "management",
                mgmt,
                &[
                    "MANAGEMENT_UNSPECIFIED",
                    "MANAGEMENT_AUTOMATIC",
                    "MANAGEMENT_MANUAL",
                ],
            )?;
        }
        let empty = spec.as_object().is_none_or(Map::is_empty);
        out.push((target, (!empty).then(|| spec.clone())));
    }
    Ok(out)
}

fn check_enum(field: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "Invalid value at '{field}': \"{value}\""
        )))
    }
}

fn update_feature(ctx: &mut Ctx<'_>, req: &Request, version: &str, feature: &str) -> ApiResult {
    let mask = req.query_param("updateMask").unwrap_or_default();
    if mask.is_empty() {
        return Err(ApiError::invalid("update_mask is required."));
    }
    let body = body_json(req)?;
    let mut specs = Vec::new();
    let mut fleet_default = None;
    for field in mask.split(',').map(str::trim) {
        match field {
            "membershipSpecs" | "membership_specs" => specs = parse_specs(ctx.st, &body)?,
            "fleetDefaultMemberConfig" | "fleet_default_member_config" => {
                fleet_default = Some(
                    body.get("fleetDefaultMemberConfig")
                        .cloned()
                        .unwrap_or(json!({})),
                );
            }
            "spec" | "labels" => {
                if field == "labels"
                    && let Some(f) = ctx.st.features.get_mut(feature)
                {
                    f.labels = body.get("labels").cloned().unwrap_or(json!({}));
                }
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "Field {other:?} in update_mask cannot be updated."
                )));
            }
        }
    }
    if let Some(f) = ctx.st.features.get_mut(feature) {
        f.state = "UPDATING";
    }
    let target = format!(
        "projects/{}/locations/global/features/{feature}",
        ctx.st.fleet_host().id
    );
    let effect = Effect::FeatureUpdated {
        feature: feature.to_string(),
        specs,
        fleet_default,
        version: version.into(),
    };
    hub_op(ctx, version, "global", "update", target, effect)
}

/// v1 `MembershipFeatureSpec` (`{"mesh": …}`) → v2 `FeatureSpec` (`{"servicemesh": …}`).
fn spec_v1_to_v2(feature: &str, spec: &Value) -> Value {
    let mut out = Map::new();
    if let Some(map) = spec.as_object() {
        for (k, v) in map {
            let k = if k == "mesh" && feature == "servicemesh" {
                "servicemesh"
            } else {
                k.as_str()
            };
            out.insert(k.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// v2 `FeatureSpec` → v1 `MembershipFeatureSpec`.
fn spec_v2_to_v1(feature: &str, spec: &Value) -> Value {
    let mut out = Map::new();
    if let Some(map) = spec.as_object() {
        for (k, v) in map {
            let k = if k == "servicemesh" && feature == "servicemesh" {
                "mesh"
            } else {
                k.as_str()
            };
            out.insert(k.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

fn membership_feature(
    ctx: &mut Ctx<'_>,
    req: &Request,
    version: &str,
    location: &str,
    id: &str,
    feature: &str,
) -> ApiResult {
    let project = req.path.split('/').nth(4).unwrap_or_default().to_string();
    let resource =
        format!("projects/{project}/locations/{location}/memberships/{id}/features/{feature}");
    let spec_key = (feature.to_string(), location.to_string(), id.to_string());
    match req.method.as_str() {
        "GET" => {
            ctx.guard(
                Api::GkeHub,
                &project,
                Some("gkehub.membershipfeatures.get"),
                &resource,
            )?;
            let exists = ctx
                .st
                .memberships
                .contains_key(&(location.to_string(), id.to_string()))
                && ctx.st.membership_specs.contains_key(&spec_key);
            if !exists {
                return Err(ApiError::not_found(format!(
                    "Resource '{resource}' was not found"
                )));
            }
            ok(&membership_feature_json(ctx.st, feature, location, id))
        }
        "PATCH" => {
            ctx.guard(
                Api::GkeHub,
                &project,
                Some("gkehub.membershipfeatures.update"),
                &resource,
            )?;
            if !ctx
                .st
                .memberships
                .contains_key(&(location.to_string(), id.to_string()))
            {
                let m = format!("projects/{project}/locations/{location}/memberships/{id}");
                return Err(ApiError::not_found(format!("Resource '{m}' was not found")));
            }
            let exists = ctx.st.membership_specs.contains_key(&spec_key);
            if !exists {
                if !query_bool(req, "allowMissing") {
                    return Err(ApiError::not_found(format!(
                        "Resource '{resource}' was not found"
                    )));
                }
                ctx.guard(
                    Api::GkeHub,
                    &project,
                    Some("gkehub.membershipfeatures.create"),
                    &resource,
                )?;
            }
            let mask = req.query_param("updateMask").unwrap_or_default();
            if exists && mask.is_empty() {
                return Err(ApiError::invalid("update_mask is required."));
            }
            let body = body_json(req)?;
            let spec = body.get("spec").cloned().unwrap_or(json!({}));
            if let Some(mgmt) = spec
                .pointer("/servicemesh/management")
                .and_then(Value::as_str)
            {
                check_enum(
                    "spec.servicemesh.management",
                    mgmt,
                    &[
                        "MANAGEMENT_UNSPECIFIED",
                        "MANAGEMENT_AUTOMATIC",
                        "MANAGEMENT_MANUAL",
                    ],
                )?;
            }
            if let Some(cp) = spec
                .pointer("/servicemesh/controlPlane")
                .and_then(Value::as_str)
            {
                check_enum(
                    "spec.servicemesh.controlPlane",
                    cp,
                    &[
                        "CONTROL_PLANE_MANAGEMENT_UNSPECIFIED",
                        "AUTOMATIC",
                        "MANUAL",
                    ],
                )?;
            }
            let effect = Effect::MembershipFeatureSet {
                feature: feature.to_string(),
                location: location.to_string(),
                id: id.to_string(),
                spec: spec_v2_to_v1(feature, &spec),
                version: version.to_string(),
            };
            let target = format!(
                "projects/{}/locations/{location}/memberships/{id}/features/{feature}",
                ctx.st.fleet_host().id
            );
            hub_op(
                ctx,
                version,
                location,
                if exists { "update" } else { "create" },
                target,
                effect,
            )
        }
        _ => Err(super::not_found_url(req)),
    }
}

/// A Membership (the GKE Hub `Membership` resource).
pub fn membership_json(st: &State, m: &Membership) -> Value {
    let name = st.membership_name(&m.location, &m.id);
    let cluster = m.cluster.as_deref().and_then(|n| st.cluster_by_name(n));
    let mut endpoint =
        json!({"gkeCluster": {"resourceLink": m.resource_link}, "googleManaged": false});
    if let Some(c) = cluster {
        endpoint["kubernetesMetadata"] = json!({
            "kubernetesApiServerVersion": format!("v{}", c.version),
            "nodeCount": 3,
            "vcpuCount": 12,
            "memoryMb": 45000,
            "nodeProviderId": "gce",
            "updateTime": rfc3339(m.update_time),
        });
    }
    let mut v = json!({
        "name": name,
        "endpoint": endpoint,
        "state": {"code": m.state},
        "createTime": rfc3339(m.create_time),
        "updateTime": rfc3339(m.update_time),
        "uniqueId": m.unique_id,
    });
    if let Some(issuer) = &m.issuer {
        v["authority"] = json!({
            "issuer": issuer,
            "workloadIdentityPool": format!("{}.svc.id.goog", st.fleet_host().id),
            "identityProvider": format!("https://gkehub.googleapis.com/{name}"),
        });
    }
    if let Some(c) = cluster {
        v["monitoringConfig"] = json!({
            "projectId": st.home().id,
            "location": c.location,
            "cluster": c.name,
            "kubernetesMetricsPrefix": "kubernetes.io",
        });
    }
    if m.labels.as_object().is_some_and(|l| !l.is_empty()) {
        v["labels"] = m.labels.clone();
    }
    if let Some(d) = &m.description {
        v["description"] = json!(d);
    }
    v
}

/// `ServiceMeshMembershipState` (v1 and v2 share the shape) and the overall `state` of a
/// membership, from its control plane.
fn mesh_state(st: &State, m: &Membership) -> (Value, Value) {
    let cluster = m.cluster.as_deref().and_then(|n| st.cluster_by_name(n));
    let revision = cluster
        .map(|c| c.managed_revision().0)
        .unwrap_or("asm-managed");
    let disabled = |what: &str| json!({"details": [{"code": "DISABLED", "details": format!("{what} Management is not enabled.")}], "state": "DISABLED"});
    match &m.control_plane {
        ControlPlane::Off => (
            json!({"controlPlaneManagement": disabled("Control Plane"), "dataPlaneManagement": disabled("Data Plane")}),
            json!({"code": "OK", "description": "Please see https://cloud.google.com/service-mesh/docs/install for instructions to onboard to Anthos Service Mesh.", "updateTime": rfc3339(m.update_time)}),
        ),
        ControlPlane::Provisioning { since } => (
            json!({
                "controlPlaneManagement": {"details": [{"code": "PROVISIONING", "details": "Service is provisioning."}], "implementation": "TRAFFIC_DIRECTOR", "state": "PROVISIONING"},
                "dataPlaneManagement": {"details": [{"code": "PROVISIONING", "details": "Service is provisioning."}], "state": "PROVISIONING"},
            }),
            json!({"code": "OK", "description": format!("Provisioning revision {revision}."), "updateTime": rfc3339(*since)}),
        ),
        ControlPlane::Active { revision, since } => (
            json!({
                "controlPlaneManagement": {"details": [{"code": "REVISION_READY", "details": format!("Ready: {revision}")}], "implementation": "TRAFFIC_DIRECTOR", "state": "ACTIVE"},
                "dataPlaneManagement": {"details": [{"code": "OK", "details": "Service is running."}], "state": "ACTIVE"},
                "conditions": [{"code": "VPCSC_GA_SUPPORTED", "details": "This control plane supports VPC-SC GA.", "documentationLink": "http://cloud.google.com/service-mesh/docs/managed/vpc-sc", "severity": "INFO"}],
            }),
            json!({"code": "OK", "description": format!("Revision ready for use: {revision}."), "updateTime": rfc3339(*since)}),
        ),
    }
}

/// A v1 Feature (the GKE Hub v1 `Feature` resource); `membershipSpecs`/`membershipStates` keyed by
/// project number.
pub fn feature_json(st: &State, feature: &str) -> Value {
    let Some(f) = st.features.get(feature) else {
        return json!({"name": format!("projects/{}/locations/global/features/{feature}", st.fleet_host().id)});
    };
    let mut v = json!({
        "name": format!("projects/{}/locations/global/features/{feature}", st.fleet_host().id),
        "resourceState": {"state": f.state},
        "spec": {},
    });
    if f.labels.as_object().is_some_and(|l| !l.is_empty()) {
        v["labels"] = f.labels.clone();
    }
    let specs: Map<String, Value> = st
        .membership_specs
        .iter()
        .filter(|((fid, _, _), _)| fid == feature)
        .map(|((_, l, m), spec)| (st.membership_key(l, m), spec.clone()))
        .collect();
    if !specs.is_empty() {
        v["membershipSpecs"] = Value::Object(specs);
    }
    if feature == "servicemesh" && f.state != "ENABLING" {
        let states: Map<String, Value> = st
            .memberships
            .values()
            .filter(|m| m.state == "READY")
            .map(|m| {
                let (servicemesh, state) = mesh_state(st, m);
                (
                    st.membership_key(&m.location, &m.id),
                    json!({"servicemesh": servicemesh, "state": state}),
                )
            })
            .collect();
        if !states.is_empty() {
            v["membershipStates"] = Value::Object(states);
        }
        v["state"] = json!({"state": {"code": "OK", "description": "Ready", "updateTime": rfc3339(f.update_time)}});
    }
    if let Some(d) = &f.fleet_default_member_config {
        v["fleetDefaultMemberConfig"] = d.clone();
    }
    v["createTime"] = json!(rfc3339(f.create_time));
    v["updateTime"] = json!(rfc3339(f.update_time));
    v
}

/// A v2 MembershipFeature (the GKE Hub v2 `MembershipFeature` resource).
pub fn membership_feature_json(st: &State, feature: &str, location: &str, id: &str) -> Value {
    let name = format!(
        "projects/{}/locations/{location}/memberships/{id}/features/{feature}",
        st.fleet_host().id
    );
    let spec = st
        .membership_specs
        .get(&(feature.to_string(), location.to_string(), id.to_string()))
        .map(|s| spec_v1_to_v2(feature, s))
        .unwrap_or(json!({}));
    let mut v = json!({"name": name, "spec": spec, "lifecycleState": {"state": "ACTIVE"}});
    if let Some(m) = st.memberships.get(&(location.to_string(), id.to_string())) {
        if feature == "servicemesh" {
            let (servicemesh, state) = mesh_state(st, m);
            v["state"] = json!({"servicemesh": servicemesh, "state": state});
        }
        v["createTime"] = json!(rfc3339(m.create_time));
        v["updateTime"] = json!(rfc3339(m.update_time));
    }
    v
}
