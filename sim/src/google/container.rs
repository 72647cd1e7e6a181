//! container.googleapis.com v1 (GKE): clusters get/list, node pools, setResourceLabels,
//! cluster update, and GKE's own operation shape (https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.clusters).

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine as _;
use serde_json::{Value, json};

use super::errors::{ApiError, ApiResult, ok};
use super::ops::{Effect, OpStyle, Operation};
use super::state::{Cluster, State, epoch_ms, region_of, rfc3339};
use super::{Api, Ctx};
use crate::http::Request;

/// Routes `/container/<rest>`.
pub fn route(ctx: &mut Ctx<'_>, req: &Request, rest: &str) -> ApiResult {
    let segs: Vec<&str> = rest.split('/').collect();
    // `v1beta1` is what `gcloud beta container` speaks; the shapes we serve are the same.
    let [
        "v1" | "v1beta1",
        "projects",
        project,
        kind @ ("locations" | "zones"),
        location,
        tail @ ..,
    ] = segs.as_slice()
    else {
        return Err(super::not_found_url(req));
    };
    let (project, location, zonal_path) = (*project, *location, *kind == "zones");
    match (req.method.as_str(), tail) {
        ("GET", ["clusters"]) => {
            let resource = format!("projects/{project}/locations/{location}");
            ctx.guard(
                Api::Container,
                project,
                Some("container.clusters.list"),
                &resource,
            )?;
            if !ctx.st.is_home(project) {
                return ok(&json!({}));
            }
            list_clusters(ctx.st, location)
        }
        ("GET", ["operations", name]) => {
            let resource = format!("projects/{project}/locations/{location}/operations/{name}");
            ctx.guard(
                Api::Container,
                project,
                Some("container.operations.get"),
                &resource,
            )?;
            match ctx.st.ops.get(&format!("gke/{name}")) {
                Some(op) if matches!(&op.style, OpStyle::Gke { location: l, .. } if l == location) => {
                    ok(&op.json(ctx.st))
                }
                _ => Err(ApiError::not_found(format!("Not found: {resource}."))),
            }
        }
        (method, ["clusters", name_and_verb, sub @ ..]) => {
            let (name, verb) = match name_and_verb.split_once(':') {
                Some((n, v)) => (n, Some(v)),
                None => (*name_and_verb, None),
            };
            let resource = format!("projects/{project}/locations/{location}/clusters/{name}");
            let op = match (method, verb, sub) {
                ("GET", None, []) | ("GET", None, ["nodePools"]) => "container.clusters.get",
                ("POST", Some("setResourceLabels"), []) | ("PUT", None, []) => {
                    "container.clusters.update"
                }
                ("POST", None, ["resourceLabels"]) if zonal_path => "container.clusters.update",
                _ => return Err(super::not_found_url(req)),
            };
            ctx.guard(Api::Container, project, Some(op), &resource)?;
            // `locations/-` finds the cluster wherever it is; mutations then use its real location.
            let found = ctx
                .st
                .cluster(location, name)
                .filter(|_| ctx.st.is_home(project));
            let Some(location) = found.map(|c| c.location.clone()) else {
                return Err(ApiError::not_found(format!("Not found: {resource}.")));
            };
            let location = location.as_str();
            match (method, verb, sub) {
                ("GET", None, []) => {
                    let c = ctx
                        .st
                        .cluster(location, name)
                        .ok_or_else(|| ApiError::not_found(format!("Not found: {resource}.")))?;
                    ok(&cluster_json(ctx.st, c))
                }
                ("GET", None, ["nodePools"]) => {
                    let c = ctx
                        .st
                        .cluster(location, name)
                        .ok_or_else(|| ApiError::not_found(format!("Not found: {resource}.")))?;
                    ok(&json!({"nodePools": [node_pool_json(ctx.st, c)]}))
                }
                ("PUT", None, []) => update_cluster(ctx, req, location, name),
                _ => set_labels(ctx, req, location, name),
            }
        }
        _ => Err(super::not_found_url(req)),
    }
}

fn list_clusters(st: &State, location: &str) -> ApiResult {
    let clusters: Vec<Value> = st
        .clusters
        .iter()
        .filter(|c| location == "-" || c.location == location || region_of(&c.location) == location)
        .map(|c| cluster_json(st, c))
        .collect();
    if clusters.is_empty() {
        return ok(&json!({}));
    }
    ok(&json!({"clusters": clusters, "missingZones": []}))
}

fn body_json(req: &Request) -> Result<Value, ApiError> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))
}

/// Rejects a second mutation while an operation runs on the cluster, as GKE does.
fn ensure_idle(st: &State, location: &str, name: &str) -> Result<(), ApiError> {
    match st
        .cluster(location, name)
        .and_then(|c| c.running_op.clone())
    {
        Some(op) => Err(ApiError::precondition(format!(
            "Operation {op} is currently operating on cluster {name}. Please wait and try again once it is done."
        ))),
        None => Ok(()),
    }
}

fn valid_label_part(s: &str, key: bool) -> bool {
    s.len() <= 63
        && (!key || s.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn set_labels(ctx: &mut Ctx<'_>, req: &Request, location: &str, name: &str) -> ApiResult {
    let body = body_json(req)?;
    let Some(fingerprint) = body.get("labelFingerprint").and_then(Value::as_str) else {
        return Err(ApiError::invalid("Label fingerprint must be specified."));
    };
    let mut labels = BTreeMap::new();
    if let Some(map) = body.get("resourceLabels").and_then(Value::as_object) {
        for (k, v) in map {
            let v = v.as_str().unwrap_or_default();
            if k.is_empty() || !valid_label_part(k, true) || !valid_label_part(v, false) {
                return Err(ApiError::invalid(format!(
                    "Invalid resource label {k:?}: keys must start with a lowercase letter, and keys and values may contain only lowercase letters, digits, underscores and dashes (at most 63 characters)."
                )));
            }
            labels.insert(k.clone(), v.to_string());
        }
    }
    ensure_idle(ctx.st, location, name)?;
    let current = ctx
        .st
        .cluster(location, name)
        .map(|c| c.label_fingerprint.clone())
        .unwrap_or_default();
    if fingerprint != current {
        return Err(ApiError::precondition(format!(
            "Labels could not be set due to fingerprint mismatch: the provided label fingerprint \"{fingerprint}\" does not match the current fingerprint of cluster {name}. Read the cluster again and retry."
        )));
    }
    let effect = Effect::SetLabels {
        location: location.into(),
        cluster: name.into(),
        labels,
    };
    start_gke_op(ctx, location, name, "SET_LABELS", effect)
}

fn update_cluster(ctx: &mut Ctx<'_>, req: &Request, location: &str, name: &str) -> ApiResult {
    let body = body_json(req)?;
    let update = body.get("update").cloned().unwrap_or(json!({}));
    let desired = update
        .as_object()
        .map(|m| m.keys().filter(|k| k.starts_with("desired")).count())
        .unwrap_or(0);
    if desired == 0 {
        return Err(ApiError::invalid("Must specify a field to update."));
    }
    if let Some(pool) = update
        .pointer("/desiredWorkloadIdentityConfig/workloadPool")
        .and_then(Value::as_str)
    {
        let expected = format!("{}.svc.id.goog", ctx.st.home().id);
        if !pool.is_empty() && pool != expected {
            return Err(ApiError::invalid(format!(
                "Workload Identity Pool \"{pool}\" is not valid; it must be \"{expected}\"."
            )));
        }
    }
    if let Some(ch) = update
        .pointer("/desiredReleaseChannel/channel")
        .and_then(Value::as_str)
        && !matches!(
            ch,
            "UNSPECIFIED" | "RAPID" | "REGULAR" | "STABLE" | "EXTENDED"
        )
    {
        return Err(ApiError::invalid(format!(
            "Invalid value for field 'update.desiredReleaseChannel.channel': \"{ch}\""
        )));
    }
    ensure_idle(ctx.st, location, name)?;
    if let Some(c) = ctx.st.cluster_mut(location, name) {
        c.status = "RECONCILING";
    }
    let effect = Effect::UpdateCluster {
        location: location.into(),
        cluster: name.into(),
        update,
    };
    start_gke_op(ctx, location, name, "UPDATE_CLUSTER", effect)
}

fn start_gke_op(
    ctx: &mut Ctx<'_>,
    location: &str,
    name: &str,
    op_type: &'static str,
    effect: Effect,
) -> ApiResult {
    let op_name = format!(
        "operation-{}-{}",
        epoch_ms(SystemTime::now()),
        ctx.st.fresh_hex(8)
    );
    let target_link = format!(
        "https://container.googleapis.com/v1/projects/{}/zones/{location}/clusters/{name}",
        ctx.st.home().number
    );
    if let Some(c) = ctx.st.cluster_mut(location, name) {
        c.running_op = Some(op_name.clone());
    }
    let style = OpStyle::Gke {
        location: location.to_string(),
        op_type,
        target_link,
    };
    let duration = ctx.st.timing.gke_op;
    let op = Operation::new(style, op_name.clone(), effect, ctx.now, duration);
    let op = ctx.start_op(format!("gke/{op_name}"), op);
    ok(&op)
}

/// Applies a cluster `update` (the `desired*` fields asm and gcloud send; others are accepted
/// and ignored, as they change nothing an installer reads).
pub fn apply_update(c: &mut Cluster, update: &Value, project_id: &str) {
    if let Some(pool) = update
        .pointer("/desiredWorkloadIdentityConfig/workloadPool")
        .and_then(Value::as_str)
    {
        c.workload_pool = (!pool.is_empty()).then(|| pool.to_string());
    }
    if let Some(on) = update
        .pointer("/desiredMeshCertificates/enableCertificates")
        .and_then(Value::as_bool)
    {
        c.mesh_certificates = on;
    }
    if let Some(project) = update
        .pointer("/desiredFleet/project")
        .and_then(Value::as_str)
    {
        c.fleet_project = Some(if project.is_empty() {
            project_id.to_string()
        } else {
            project.to_string()
        });
    }
    if let Some(ch) = update
        .pointer("/desiredReleaseChannel/channel")
        .and_then(Value::as_str)
    {
        c.channel = (ch != "UNSPECIFIED").then(|| ch.to_string());
    }
}

fn zones_of(c: &Cluster) -> Vec<String> {
    if region_of(&c.location) == c.location {
        ["a", "b", "c"]
            .iter()
            .map(|z| format!("{}-{z}", c.location))
            .collect()
    } else {
        vec![c.location.clone()]
    }
}

fn self_link(st: &State, c: &Cluster) -> String {
    let kind = if region_of(&c.location) == c.location {
        "locations"
    } else {
        "zones"
    };
    format!(
        "https://container.googleapis.com/v1/projects/{}/{kind}/{}/clusters/{}",
        st.home().id,
        c.location,
        c.name
    )
}

fn node_pool_json(st: &State, c: &Cluster) -> Value {
    let mut config = json!({
        "machineType": "e2-standard-4",
        "diskSizeGb": 100,
        "oauthScopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "metadata": {"disable-legacy-endpoints": "true"},
        "imageType": "COS_CONTAINERD",
        "serviceAccount": "default",
        "diskType": "pd-balanced",
        "shieldedInstanceConfig": {"enableIntegrityMonitoring": true},
    });
    if c.workload_pool.is_some() {
        config["workloadMetadataConfig"] = json!({"mode": "GKE_METADATA"});
    }
    json!({
        "name": "default-pool",
        "config": config,
        "initialNodeCount": 3,
        "autoscaling": {},
        "management": {"autoUpgrade": true, "autoRepair": true},
        "podIpv4CidrSize": 24,
        "locations": zones_of(c),
        "selfLink": format!("{}/nodePools/default-pool", self_link(st, c)),
        "version": c.version,
        "status": "RUNNING",
        "upgradeSettings": {"maxSurge": 1, "strategy": "SURGE"},
    })
}

/// A cluster as `GET clusters/N` returns it (the `Cluster` resource of the GKE v1 REST reference).
pub fn cluster_json(st: &State, c: &Cluster) -> Value {
    let ca = base64::engine::general_purpose::STANDARD.encode(c.ca_pem.as_bytes());
    let region = region_of(&c.location);
    let mut v = json!({
        "name": c.name,
        "nodeConfig": node_pool_json(st, c)["config"].clone(),
        "masterAuth": {"clusterCaCertificate": ca},
        "loggingService": "logging.googleapis.com/kubernetes",
        "monitoringService": "monitoring.googleapis.com/kubernetes",
        "network": "default",
        "clusterIpv4Cidr": "10.4.0.0/14",
        "addonsConfig": {"httpLoadBalancing": {}, "horizontalPodAutoscaling": {}, "networkPolicyConfig": {"disabled": true}},
        "subnetwork": "default",
        "nodePools": [node_pool_json(st, c)],
        "locations": zones_of(c),
        "resourceLabels": c.labels,
        "labelFingerprint": c.label_fingerprint,
        "ipAllocationPolicy": {"useIpAliases": true, "clusterIpv4CidrBlock": "10.4.0.0/14", "servicesIpv4CidrBlock": "34.118.224.0/20"},
        "networkConfig": {
            "network": format!("projects/{}/global/networks/default", st.home().id),
            "subnetwork": format!("projects/{}/regions/{region}/subnetworks/default", st.home().id),
        },
        "releaseChannel": match &c.channel { Some(ch) => json!({"channel": ch}), None => json!({}) },
        "selfLink": self_link(st, c),
        "zone": c.location,
        "endpoint": c.endpoint,
        "initialClusterVersion": c.version,
        "currentMasterVersion": c.version,
        "currentNodeVersion": c.version,
        "createTime": rfc3339(c.create_time),
        "status": c.status,
        "servicesIpv4Cidr": "34.118.224.0/20",
        "currentNodeCount": 3 * zones_of(c).len(),
        "location": c.location,
        "autopilot": {},
        "id": c.id,
        "privateClusterConfig": {"publicEndpoint": c.endpoint.split(':').next().unwrap_or_default()},
        "loggingConfig": {"componentConfig": {"enableComponents": ["SYSTEM_COMPONENTS", "WORKLOADS"]}},
        "monitoringConfig": {"componentConfig": {"enableComponents": ["SYSTEM_COMPONENTS"]}},
    });
    if let Some(pool) = &c.workload_pool {
        v["workloadIdentityConfig"] = json!({"workloadPool": pool});
    }
    if c.mesh_certificates {
        v["meshCertificates"] = json!({"enableCertificates": true});
    }
    if let Some(project) = &c.fleet_project {
        let mut fleet = json!({"project": project});
        if let Some(m) = st
            .memberships
            .values()
            .find(|m| m.cluster.as_deref() == Some(c.name.as_str()))
        {
            fleet["membership"] = json!(format!(
                "//gkehub.googleapis.com/projects/{}/locations/{}/memberships/{}",
                st.fleet_host().number,
                m.location,
                m.id
            ));
            fleet["preRegistered"] = json!(false);
        }
        v["fleet"] = fleet;
    }
    v
}
