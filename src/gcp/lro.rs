//! One poller for the three long-running-operation styles (https://google.aip.dev/151;
//! ARCHITECTURE.md, "Talking to Google"): GKE `Operation` (`status: DONE`), Service Usage
//! `operations/…` and GKE Hub `projects/P/locations/L/operations/ID` (then
//! `GET {response.name}`).

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::endpoints::{Endpoints, Service};
use super::http::{GcpError, GcpResult, GoogleHttp, capped_exponential};

/// A started long-running operation, with what is needed to poll it.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// container v1 `Operation`; polled at `v1/projects/P/locations/L/operations/SHORT`.
    Gke {
        project: String,
        location: String,
        op: Value,
    },
    /// serviceusage v1 `operations/…`; polled at `v1/{name}`.
    ServiceUsage { op: Value },
    /// gkehub `projects/P/locations/L/operations/ID`; polled at `{version}/{name}`.
    Hub { version: String, op: Value },
}

impl Operation {
    /// The operation's `name`.
    pub fn name(&self) -> &str {
        self.raw()
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The operation as last seen.
    pub fn raw(&self) -> &Value {
        match self {
            Operation::Gke { op, .. }
            | Operation::ServiceUsage { op }
            | Operation::Hub { op, .. } => op,
        }
    }

    /// Its state as last seen.
    pub fn state(&self) -> OpState {
        match self {
            Operation::Gke { op, .. } => decode_gke(op),
            Operation::ServiceUsage { op } | Operation::Hub { op, .. } => decode_longrunning(op),
        }
    }

    fn with_raw(&self, raw: Value) -> Operation {
        match self {
            Operation::Gke {
                project, location, ..
            } => Operation::Gke {
                project: project.clone(),
                location: location.clone(),
                op: raw,
            },
            Operation::ServiceUsage { .. } => Operation::ServiceUsage { op: raw },
            Operation::Hub { version, .. } => Operation::Hub {
                version: version.clone(),
                op: raw,
            },
        }
    }

    /// The URL polling this operation.
    pub fn poll_url(&self, endpoints: &Endpoints) -> String {
        match self {
            Operation::Gke {
                project, location, ..
            } => {
                let short = self.name().rsplit('/').next().unwrap_or_default();
                endpoints.url(
                    Service::Container,
                    &format!("v1/projects/{project}/locations/{location}/operations/{short}"),
                )
            }
            Operation::ServiceUsage { .. } => {
                endpoints.url(Service::ServiceUsage, &format!("v1/{}", self.name()))
            }
            Operation::Hub { version, .. } => {
                endpoints.url(Service::GkeHub, &format!("{version}/{}", self.name()))
            }
        }
    }
}

/// Decoded operation state.
#[derive(Debug, Clone, PartialEq)]
pub enum OpState {
    Running,
    /// Finished; GKE: the operation itself; google.longrunning: its `response` (`{}` if none).
    Done(Value),
    Failed {
        message: String,
        details: Value,
    },
}

/// Decodes a GKE `Operation`: `DONE` + `statusMessage`/`error` is a failure.
pub fn decode_gke(op: &Value) -> OpState {
    if op.get("status").and_then(Value::as_str) != Some("DONE") {
        return OpState::Running;
    }
    let status_message = op
        .get("statusMessage")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let error = op.get("error").filter(|e| !e.is_null());
    match (status_message, error) {
        (None, None) => OpState::Done(op.clone()),
        (msg, err) => OpState::Failed {
            message: msg
                .map(str::to_string)
                .or_else(|| {
                    err.and_then(|e| e.get("message"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "operation failed".to_string()),
            details: err
                .and_then(|e| e.get("details"))
                .cloned()
                .unwrap_or(Value::Null),
        },
    }
}

/// Decodes a `google.longrunning.Operation` (Service Usage, GKE Hub).
pub fn decode_longrunning(op: &Value) -> OpState {
    if op.get("done").and_then(Value::as_bool) != Some(true) {
        return OpState::Running;
    }
    if let Some(err) = op.get("error").filter(|e| !e.is_null()) {
        return OpState::Failed {
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("operation failed")
                .to_string(),
            details: err.get("details").cloned().unwrap_or(Value::Null),
        };
    }
    OpState::Done(
        op.get("response")
            .cloned()
            .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
    )
}

/// Polling cadence and deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    /// Delay before the first poll; doubles each time.
    pub initial: Duration,
    /// Ceiling of the delay between polls.
    pub max: Duration,
    /// Deadline per operation.
    pub timeout: Duration,
}

impl Default for PollPolicy {
    /// 1 s doubling to 5 s (jittered), 20 minutes. GKE and GKE Hub operations take seconds
    /// at least; polling sooner only adds requests (one per cluster at fleet scale).
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(5),
            timeout: Duration::from_secs(20 * 60),
        }
    }
}

impl PollPolicy {
    /// `ASM_RETRY_POLICY=fast`: 100 ms doubling to 1 s, for endpoints whose operations finish
    /// in well under a second (local endpoints, tests).
    pub fn fast() -> Self {
        PollPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..PollPolicy::default()
        }
    }

    /// The delay before poll number `n + 1` (0-based `n`), without jitter.
    pub fn delay(&self, n: u32) -> Duration {
        capped_exponential(self.initial, 2.0, n, self.max)
    }

    /// The jittered delays before each poll (the first poll included), from `initial`
    /// doubling to `max`.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let policy = crate::retry::RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: self.initial,
            max_backoff: self.max,
            jitter: true,
            ..crate::retry::RetryPolicy::standard()
        };
        backon::BackoffBuilder::build(policy.backoff())
    }
}

pub use crate::transport::ProgressFn;

/// Whether an operation's `response` holds a resource's fields, not just its name.
fn carries_resource(response: &Value) -> bool {
    response
        .as_object()
        .is_some_and(|m| m.contains_key("name") && m.keys().any(|k| k != "name" && k != "@type"))
}

/// Waits for operations of every style.
#[derive(Debug, Clone)]
pub struct LroPoller {
    http: GoogleHttp,
    endpoints: Endpoints,
    policy: PollPolicy,
}

impl LroPoller {
    /// A poller using `http` against `endpoints`.
    pub fn new(http: GoogleHttp, endpoints: Endpoints, policy: PollPolicy) -> Self {
        LroPoller {
            http,
            endpoints,
            policy,
        }
    }

    /// The polling policy.
    pub fn policy(&self) -> &PollPolicy {
        &self.policy
    }

    /// Waits for `op` under the policy's timeout. Returns: GKE — the final operation;
    /// Service Usage — the `response`; Hub — the resource (the `response`, or the one named by `response.name`
    /// (fetched with the same API version), or the `response` if it has no name.
    pub async fn wait(&self, op: Operation) -> GcpResult<Value> {
        let deadline = Instant::now() + self.policy.timeout;
        self.wait_until(op, deadline, None).await
    }

    /// Like [`LroPoller::wait`] with an explicit deadline and an optional progress callback
    /// (called before each poll). Timeout → [`GcpError::Timeout`] (exit 4).
    pub async fn wait_until(
        &self,
        op: Operation,
        deadline: Instant,
        progress: Option<&ProgressFn>,
    ) -> GcpResult<Value> {
        let started = Instant::now();
        let mut current = op;
        // A google.longrunning op that is already done needs no poll; a GKE op is always
        // polled (its first answer is the operation as started). Operations take seconds, so
        // the first poll comes after the policy's initial delay, not at once: at fleet scale
        // each avoided poll is one per cluster.
        let need_poll =
            matches!(current, Operation::Gke { .. }) || current.state() == OpState::Running;
        if !need_poll {
            return match current.state() {
                OpState::Done(result) => self.finish(&current, result).await,
                OpState::Failed { message, details } => Err(GcpError::OperationFailed {
                    operation: current.name().to_string(),
                    message,
                    details,
                }),
                OpState::Running => Ok(Value::Null),
            };
        }
        let mut delays = self.policy.delays();
        loop {
            let delay = delays.next().unwrap_or(self.policy.max);
            if Instant::now() + delay > deadline {
                return Err(GcpError::Timeout {
                    what: format!("operation {}", current.name()),
                    after: started.elapsed(),
                });
            }
            tokio::time::sleep(delay).await;
            {
                if let Some(p) = progress {
                    p(&format!("waiting for operation {}", current.name()));
                }
                let url = current.poll_url(&self.endpoints);
                let raw: Value = self.http.get(&url).await?;
                current = current.with_raw(raw);
            }
            match current.state() {
                OpState::Running => {}
                OpState::Failed { message, details } => {
                    return Err(GcpError::OperationFailed {
                        operation: current.name().to_string(),
                        message,
                        details,
                    });
                }
                OpState::Done(result) => return self.finish(&current, result).await,
            }
        }
    }

    async fn finish(&self, op: &Operation, result: Value) -> GcpResult<Value> {
        match op {
            // The response is the resource itself when it carries more than its name;
            // fetched only when it does not (one read less per operation at fleet scale).
            Operation::Hub { .. } if carries_resource(&result) => Ok(result),
            Operation::Hub { version, .. } => match result.get("name").and_then(Value::as_str) {
                Some(name) if !name.is_empty() => {
                    let url = self
                        .endpoints
                        .url(Service::GkeHub, &format!("{version}/{name}"));
                    self.http.get(&url).await
                }
                _ => Ok(result),
            },
            _ => Ok(result),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gke_states() {
        assert_eq!(
            decode_gke(&json!({"name": "op", "status": "RUNNING"})),
            OpState::Running
        );
        let done = json!({"name": "op", "status": "DONE"});
        assert_eq!(decode_gke(&done), OpState::Done(done.clone()));
        let failed = json!({"name": "op", "status": "DONE", "statusMessage": "boom",
                            "error": {"code": 9, "message": "inner"}});
        assert_eq!(
            decode_gke(&failed),
            OpState::Failed {
                message: "boom".into(),
                details: Value::Null
            }
        );
        let failed = json!({"name": "op", "status": "DONE", "error": {"code": 9, "message": "inner", "details": [1]}});
        assert_eq!(
            decode_gke(&failed),
            OpState::Failed {
                message: "inner".into(),
                details: json!([1])
            }
        );
        assert_eq!(
            decode_gke(&json!({"status": "DONE", "statusMessage": ""})),
            OpState::Done(json!({"status": "DONE", "statusMessage": ""}))
        );
    }

    #[test]
    fn longrunning_states() {
        assert_eq!(
            decode_longrunning(&json!({"name": "operations/x"})),
            OpState::Running
        );
        assert_eq!(
            decode_longrunning(&json!({"name": "operations/x", "done": true})),
            OpState::Done(json!({}))
        );
        assert_eq!(
            decode_longrunning(
                &json!({"done": true, "response": {"name": "projects/p/locations/l/memberships/m"}})
            ),
            OpState::Done(json!({"name": "projects/p/locations/l/memberships/m"}))
        );
        assert_eq!(
            decode_longrunning(&json!({"done": true, "error": {"code": 7, "message": "denied"}})),
            OpState::Failed {
                message: "denied".into(),
                details: Value::Null
            }
        );
    }

    #[test]
    fn poll_urls() {
        let e = Endpoints::default()
            .with_base(Service::Container, "http://127.0.0.1:1/container")
            .unwrap();
        let op = Operation::Gke {
            project: "p".into(),
            location: "us-central1-c".into(),
            op: json!({"name": "operation-1", "selfLink": "https://container.googleapis.com/v1/projects/1/zones/us-central1-c/operations/operation-1"}),
        };
        assert_eq!(
            op.poll_url(&e),
            "http://127.0.0.1:1/container/v1/projects/p/locations/us-central1-c/operations/operation-1"
        );
        let op = Operation::ServiceUsage {
            op: json!({"name": "operations/acat.p2-1"}),
        };
        assert_eq!(
            op.poll_url(&e),
            "https://serviceusage.googleapis.com/v1/operations/acat.p2-1"
        );
        let op = Operation::Hub {
            version: "v2".into(),
            op: json!({"name": "projects/p/locations/us-central1/operations/op-1"}),
        };
        assert_eq!(
            op.poll_url(&e),
            "https://gkehub.googleapis.com/v2/projects/p/locations/us-central1/operations/op-1"
        );
    }

    #[test]
    fn poll_delays_double_to_the_ceiling_and_jitter_stays_within_twice_each() {
        let p = PollPolicy::default();
        assert_eq!(p.delay(0), Duration::from_secs(1));
        assert_eq!(p.delay(1), Duration::from_secs(2));
        assert_eq!(p.delay(5), Duration::from_secs(5));
        assert_eq!(p.delay(60), Duration::from_secs(5));
        for (n, d) in p.delays().take(8).enumerate() {
            let base = p.delay(n as u32);
            assert!(d >= base && d < base * 2, "poll {n}: {d:?} vs {base:?}");
        }
    }
}
