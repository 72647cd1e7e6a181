//! Long-running operations of the three styles (as the real APIs answer: https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.operations, https://cloud.google.com/service-usage/docs/reference/rest/v1/operations, https://cloud.google.com/anthos/fleet-management/docs/reference/rest/v1/projects.locations.operations): GKE's own
//! `Operation` (short name, `status: DONE`), Service Usage's `operations/…` and GKE Hub's
//! `projects/P/locations/L/operations/ID`.
//!
//! An operation carries the change it makes as an [`Effect`]. The effect runs once, when
//! the simulated duration has passed: lazily on the next request ([`State::settle`]) or by
//! the timer task started with the operation, whichever comes first; it is taken out of the
//! operation before it runs, so it cannot run twice.

use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

use super::errors::ApiError;
use super::state::{ControlPlane, State, rfc3339};
use super::{container, gkehub, serviceusage};

/// Which API an operation belongs to, with what its shape needs.
#[derive(Debug, Clone)]
pub enum OpStyle {
    /// container v1: polled at `…/locations/LOCATION/operations/NAME`.
    Gke {
        location: String,
        op_type: &'static str,
        target_link: String,
    },
    /// serviceusage v1: polled at `v1/operations/…`.
    ServiceUsage,
    /// gkehub: polled at `VERSION/projects/P/locations/L/operations/ID`.
    Hub {
        version: String,
        location: String,
        verb: &'static str,
        target: String,
    },
}

/// A change an operation makes when it completes.
#[derive(Debug, Clone)]
pub enum Effect {
    SetLabels {
        location: String,
        cluster: String,
        labels: std::collections::BTreeMap<String, String>,
    },
    UpdateCluster {
        location: String,
        cluster: String,
        update: Value,
    },
    EnableServices {
        /// Index of the project in `State::projects`.
        project: usize,
        ids: Vec<String>,
        batch: bool,
    },
    MembershipCreated {
        location: String,
        id: String,
        version: String,
    },
    MembershipUpdated {
        location: String,
        id: String,
        issuer: Option<String>,
        version: String,
    },
    MembershipDeleted {
        location: String,
        id: String,
    },
    FeatureCreated {
        feature: String,
        version: String,
    },
    FeatureUpdated {
        feature: String,
        specs: Vec<((String, String), Option<Value>)>,
        fleet_default: Option<Value>,
        version: String,
    },
    FeatureDeleted {
        feature: String,
    },
    MembershipFeatureSet {
        feature: String,
        location: String,
        id: String,
        spec: Value,
        version: String,
    },
}

/// One operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub style: OpStyle,
    /// The name as clients see it (GKE: short; Service Usage: `operations/…`; Hub: full).
    pub name: String,
    pub start: SystemTime,
    pub end: Option<SystemTime>,
    /// When the effect is due.
    pub deadline: Instant,
    /// `None` once applied.
    pub effect: Option<Effect>,
    /// The result once done: the `response` value, or the error.
    pub outcome: Option<Result<Value, ApiError>>,
}

impl Operation {
    /// A new running operation, due `timing` from `now`.
    pub fn new(
        style: OpStyle,
        name: String,
        effect: Effect,
        now: Instant,
        duration: std::time::Duration,
    ) -> Self {
        Operation {
            style,
            name,
            start: SystemTime::now(),
            end: None,
            deadline: now + duration,
            effect: Some(effect),
            outcome: None,
        }
    }

    pub fn done(&self) -> bool {
        self.outcome.is_some()
    }

    /// Records the result of the effect.
    pub fn finish(&mut self, outcome: Result<Value, ApiError>) {
        self.end = Some(SystemTime::now());
        self.outcome = Some(outcome);
    }

    /// The operation in its API's shape.
    pub fn json(&self, st: &State) -> Value {
        match &self.style {
            OpStyle::Gke {
                location,
                op_type,
                target_link,
            } => {
                let mut op = json!({
                    "name": self.name,
                    "zone": location,
                    "operationType": op_type,
                    "status": if self.done() { "DONE" } else { "RUNNING" },
                    "selfLink": format!("https://container.googleapis.com/v1/projects/{}/zones/{location}/operations/{}", st.home().number, self.name),
                    "targetLink": target_link,
                    "startTime": rfc3339(self.start),
                });
                if let Some(end) = self.end {
                    op["endTime"] = json!(rfc3339(end));
                }
                if let Some(Err(e)) = &self.outcome {
                    op["statusMessage"] = json!(e.message);
                    op["error"] = json!({"code": e.rpc_code(), "message": e.message});
                }
                op
            }
            OpStyle::ServiceUsage => {
                let mut op = json!({
                    "name": self.name,
                    "metadata": {"@type": "type.googleapis.com/google.protobuf.Empty"},
                });
                match &self.outcome {
                    None => {}
                    Some(Ok(response)) => {
                        op["done"] = json!(true);
                        op["response"] = response.clone();
                    }
                    Some(Err(e)) => {
                        op["done"] = json!(true);
                        op["error"] = json!({"code": e.rpc_code(), "message": e.message, "details": e.details});
                    }
                }
                op
            }
            OpStyle::Hub {
                version,
                verb,
                target,
                ..
            } => {
                let mut metadata = json!({
                    "@type": format!("type.googleapis.com/google.cloud.gkehub.{version}.OperationMetadata"),
                    "createTime": rfc3339(self.start),
                    "target": target,
                    "verb": verb,
                    "apiVersion": version,
                });
                if let Some(end) = self.end {
                    metadata["endTime"] = json!(rfc3339(end));
                }
                let mut op = json!({"name": self.name, "metadata": metadata, "done": self.done()});
                match &self.outcome {
                    None => {}
                    Some(Ok(response)) => op["response"] = response.clone(),
                    Some(Err(e)) => {
                        op["error"] = json!({"code": e.rpc_code(), "message": e.message})
                    }
                }
                op
            }
        }
    }
}

fn with_type(mut value: Value, type_url: String) -> Value {
    if let Value::Object(map) = &mut value {
        map.shift_insert(0, "@type".to_string(), json!(type_url));
    }
    value
}

fn empty() -> Value {
    json!({"@type": "type.googleapis.com/google.protobuf.Empty"})
}

/// Applies one effect to the state; the `Ok` value is the operation's `response`.
pub fn apply_effect(st: &mut State, effect: Effect) -> Result<Value, ApiError> {
    match effect {
        Effect::SetLabels {
            location,
            cluster,
            labels,
        } => {
            let Some(c) = st.cluster_mut(&location, &cluster) else {
                return Err(ApiError::not_found(format!(
                    "Cluster {cluster} was deleted."
                )));
            };
            c.labels = labels;
            c.label_writes += 1;
            c.refresh_fingerprint();
            c.running_op = None;
            Ok(Value::Null)
        }
        Effect::UpdateCluster {
            location,
            cluster,
            update,
        } => {
            let project_id = st.home().id.clone();
            let Some(c) = st.cluster_mut(&location, &cluster) else {
                return Err(ApiError::not_found(format!(
                    "Cluster {cluster} was deleted."
                )));
            };
            container::apply_update(c, &update, &project_id);
            c.status = "RUNNING";
            c.running_op = None;
            Ok(Value::Null)
        }
        Effect::EnableServices {
            project,
            ids,
            batch,
        } => {
            let Some(p) = st.projects.get_mut(project) else {
                return Err(ApiError::not_found(
                    "project deleted while enabling services",
                ));
            };
            // Dependencies are enabled too; the response names only the requested ones.
            p.enabled
                .extend(super::service_dependencies::with_dependencies(&ids));
            let services: Vec<Value> = ids
                .iter()
                .map(|id| serviceusage::service_json(p, id))
                .collect();
            Ok(if batch {
                json!({"@type": "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse", "services": services})
            } else {
                json!({"@type": "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse",
                       "service": services.into_iter().next().unwrap_or(Value::Null)})
            })
        }
        Effect::MembershipCreated {
            location,
            id,
            version,
        } => {
            let key = (location, id);
            let Some(m) = st.memberships.get_mut(&key) else {
                return Err(ApiError::not_found(
                    "membership deleted while being created",
                ));
            };
            m.state = "READY";
            m.update_time = SystemTime::now();
            let m = m.clone();
            let fleet_id = st.fleet_host().id.clone();
            if let Some(c) = m
                .cluster
                .as_deref()
                .and_then(|n| st.clusters.iter_mut().find(|c| c.name == n))
            {
                c.fleet_project = Some(fleet_id);
            }
            Ok(with_type(
                gkehub::membership_json(st, &m),
                format!("type.googleapis.com/google.cloud.gkehub.{version}.Membership"),
            ))
        }
        Effect::MembershipUpdated {
            location,
            id,
            issuer,
            version,
        } => {
            let Some(m) = st.memberships.get_mut(&(location, id)) else {
                return Err(ApiError::not_found(
                    "membership deleted while being updated",
                ));
            };
            if issuer.is_some() {
                m.issuer = issuer;
            }
            m.state = "READY";
            m.update_time = SystemTime::now();
            let m = m.clone();
            Ok(with_type(
                gkehub::membership_json(st, &m),
                format!("type.googleapis.com/google.cloud.gkehub.{version}.Membership"),
            ))
        }
        Effect::MembershipDeleted { location, id } => {
            if let Some(m) = st.memberships.remove(&(location.clone(), id.clone()))
                && let Some(c) = m
                    .cluster
                    .as_deref()
                    .and_then(|n| st.clusters.iter_mut().find(|c| c.name == n))
            {
                c.fleet_project = None;
            }
            st.membership_specs
                .retain(|(_, l, m), _| !(*l == location && *m == id));
            Ok(empty())
        }
        Effect::FeatureCreated { feature, version } => {
            let Some(f) = st.features.get_mut(&feature) else {
                return Err(ApiError::not_found("feature deleted while being created"));
            };
            f.state = "ACTIVE";
            f.update_time = SystemTime::now();
            Ok(with_type(
                gkehub::feature_json(st, &feature),
                format!("type.googleapis.com/google.cloud.gkehub.{version}.Feature"),
            ))
        }
        Effect::FeatureUpdated {
            feature,
            specs,
            fleet_default,
            version,
        } => {
            for ((location, id), spec) in specs {
                let key = (feature.clone(), location, id);
                match spec {
                    Some(spec) => {
                        st.membership_specs.insert(key, spec);
                    }
                    None => {
                        st.membership_specs.remove(&key);
                    }
                }
            }
            if let Some(f) = st.features.get_mut(&feature) {
                if fleet_default.is_some() {
                    f.fleet_default_member_config = fleet_default;
                }
                f.state = "ACTIVE";
                f.update_time = SystemTime::now();
            }
            Ok(with_type(
                gkehub::feature_json(st, &feature),
                format!("type.googleapis.com/google.cloud.gkehub.{version}.Feature"),
            ))
        }
        Effect::FeatureDeleted { feature } => {
            st.features.remove(&feature);
            st.membership_specs.retain(|(f, _, _), _| *f != feature);
            if feature == "servicemesh" {
                for m in st.memberships.values_mut() {
                    m.control_plane = ControlPlane::Off;
                }
            }
            Ok(empty())
        }
        Effect::MembershipFeatureSet {
            feature,
            location,
            id,
            spec,
            version,
        } => {
            st.membership_specs
                .insert((feature.clone(), location.clone(), id.clone()), spec);
            if let Some(f) = st.features.get_mut(&feature) {
                f.update_time = SystemTime::now();
            }
            Ok(with_type(
                gkehub::membership_feature_json(st, &feature, &location, &id),
                format!("type.googleapis.com/google.cloud.gkehub.{version}.MembershipFeature"),
            ))
        }
    }
}
