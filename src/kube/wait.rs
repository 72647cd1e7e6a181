//! Watch-based waits with deadlines (one list+watch, no gap between a GET and a watch), reporting what they wait for while they wait: one
//! object ([`wait_for`]) or a set of objects ([`wait_for_list`]), and the waits plans name —
//! CRD Established, a condition, a LoadBalancer address, a DataPlaneControl `Ready`, a
//! ControlPlaneRevision `ProvisioningFinished`.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use backon::BackoffBuilder;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::DynamicObject;
use kube::core::GroupVersionKind;
use kube::runtime::wait::{Condition, conditions};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use super::apply::{dynamic_api, resolve_resource};
use super::{KubeError, KubeResult, error_chain};
use crate::retry::{RetryPolicy, classify_kube};
use crate::transport::ProgressFn;

/// How often a wait repeats its progress line.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Consecutive watch failures (with no event in between) tolerated before a wait gives up.
const MAX_WATCH_ERRORS: u32 = 3;

/// Whether `obj` has `status.conditions[type == condition_type].status == "True"`.
pub fn has_true_condition(obj: &Value, condition_type: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some(condition_type)
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
}

/// Waits until `cond` holds for object `name` of `api`, or `deadline`. `what` names the
/// wait in progress lines and errors. Returns the object that satisfied the condition
/// (`None` if the condition accepts a missing object).
pub async fn wait_for<K, C>(
    api: Api<K>,
    name: &str,
    what: &str,
    cond: C,
    deadline: Instant,
    progress: Option<&ProgressFn>,
) -> KubeResult<Option<K>>
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
    C: Condition<K> + Clone,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    watch_until(
        api,
        config,
        what,
        |current| {
            let obj = current.values().find(|o| o.name_any() == name);
            cond.matches_object(obj).then(|| obj.cloned())
        },
        deadline,
        progress,
    )
    .await
}

/// Waits until CustomResourceDefinition `name` is `Established`.
pub async fn wait_crd_established(
    client: &Client,
    name: &str,
    deadline: Instant,
    progress: Option<&ProgressFn>,
) -> KubeResult<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    wait_for(
        api,
        name,
        &format!("CustomResourceDefinition {name} to be Established"),
        |obj: Option<&CustomResourceDefinition>| {
            conditions::is_crd_established().matches_object(obj)
        },
        deadline,
        progress,
    )
    .await
    .map(|_| ())
}

/// Waits until object `name` of `api` has condition `condition_type` with status `True`
/// (e.g. a ControlPlaneRevision's `ProvisioningFinished`); returns the object.
pub async fn wait_condition<K>(
    api: Api<K>,
    name: &str,
    condition_type: &str,
    deadline: Instant,
    progress: Option<&ProgressFn>,
) -> KubeResult<K>
where
    K: Clone + Debug + Send + DeserializeOwned + Serialize + Resource + 'static,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let what = format!("{kind} {name} to be {condition_type}");
    let ct = condition_type.to_string();
    let cond = move |obj: Option<&K>| {
        obj.and_then(|o| serde_json::to_value(o).ok())
            .is_some_and(|v| has_true_condition(&v, &ct))
    };
    wait_for(api, name, &what, cond, deadline, progress)
        .await?
        .ok_or_else(|| KubeError::Invalid {
            message: format!("{what}: object disappeared"),
        })
}

/// Waits until `done` holds for the set of objects `config` selects from `api` (kept current
/// by one list+watch), or `deadline`. `what` names the wait in progress lines and errors.
pub async fn wait_for_list<K>(
    api: Api<K>,
    config: watcher::Config,
    what: &str,
    done: impl Fn(&[K]) -> bool,
    deadline: Instant,
    progress: Option<&ProgressFn>,
) -> KubeResult<()>
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
{
    watch_until(
        api,
        config,
        what,
        |current| {
            let objects: Vec<K> = current.values().cloned().collect();
            done(&objects).then_some(())
        },
        deadline,
        progress,
    )
    .await
}

/// The objects a watch holds, by namespace and name.
type Current<K> = BTreeMap<(String, String), K>;

/// One list+watch of `config`'s objects until `check` returns `Some` for the current set
/// (checked after the initial list and after every change), or `deadline`. A failing watch
/// restarts after the retry policy's backoff; it gives up after [`MAX_WATCH_ERRORS`] failures
/// in a row (any event received in between resets the count) or at once on a failure that
/// repeating cannot cure (e.g. 403).
async fn watch_until<K, R>(
    api: Api<K>,
    config: watcher::Config,
    what: &str,
    mut check: impl FnMut(&Current<K>) -> Option<R>,
    deadline: Instant,
    progress: Option<&ProgressFn>,
) -> KubeResult<R>
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
{
    let started = Instant::now();
    if let Some(p) = progress {
        p(&format!("waiting for {what}"));
    }
    let mut ticker = tokio::time::interval_at(started + PROGRESS_EVERY, PROGRESS_EVERY);
    let stream = watcher(api, config);
    tokio::pin!(stream);
    let key = |o: &K| (o.namespace().unwrap_or_default(), o.name_any());
    let mut current: Current<K> = BTreeMap::new();
    let mut relisting: Current<K> = BTreeMap::new();
    let policy = RetryPolicy::kubernetes();
    let mut errors = WatchErrors::new(&policy);
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            _ = tokio::time::sleep_until(deadline) => {
                return Err(KubeError::Timeout { what: what.to_string(), after: started.elapsed() });
            }
            _ = ticker.tick() => {
                if let Some(p) = progress {
                    p(&format!("still waiting for {what} ({}s)", started.elapsed().as_secs()));
                }
                continue;
            }
        };
        let Some(event) = event else {
            return Err(KubeError::Client {
                what: format!("watch {what}"),
                message: "the watch ended".into(),
            });
        };
        let event = match event {
            Ok(event) => {
                errors.progress();
                event
            }
            Err(e) => {
                let failure = watch_failure(what, e);
                tracing::debug!(target: "asm::kube::wait", "{failure}");
                let Some(pause) = errors.failed(&failure) else {
                    return Err(failure);
                };
                if Instant::now() + pause >= deadline {
                    return Err(KubeError::Timeout {
                        what: what.to_string(),
                        after: started.elapsed(),
                    });
                }
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        match event {
            watcher::Event::Init => {
                relisting.clear();
                continue;
            }
            watcher::Event::InitApply(o) => {
                relisting.insert(key(&o), o);
                continue;
            }
            watcher::Event::InitDone => current = std::mem::take(&mut relisting),
            watcher::Event::Apply(o) => {
                current.insert(key(&o), o);
            }
            watcher::Event::Delete(o) => {
                current.remove(&key(&o));
            }
        }
        if let Some(r) = check(&current) {
            return Ok(r);
        }
    }
}

/// A watch's failure as a [`KubeError`] (classified like any other Kubernetes failure).
fn watch_failure(what: &str, e: watcher::Error) -> KubeError {
    let what = format!("watch {what}");
    match e {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => KubeError::from_kube(what, e),
        watcher::Error::WatchError(status) => KubeError::Api { what, status },
        other => KubeError::Client {
            what,
            message: error_chain(&other),
        },
    }
}

/// Consecutive watch failures and the backoff between them; progress resets both.
struct WatchErrors<'a> {
    policy: &'a RetryPolicy,
    consecutive: u32,
    backoff: backon::ExponentialBackoff,
}

impl<'a> WatchErrors<'a> {
    fn new(policy: &'a RetryPolicy) -> Self {
        WatchErrors {
            policy,
            consecutive: 0,
            backoff: policy.backoff().build(),
        }
    }

    /// An event arrived: the watch works again.
    fn progress(&mut self) {
        if self.consecutive > 0 {
            *self = WatchErrors::new(self.policy);
        }
    }

    /// The pause before restarting after `failure`, or `None` to give up.
    fn failed(&mut self, failure: &KubeError) -> Option<Duration> {
        self.consecutive += 1;
        let verdict = classify_kube(failure);
        // A watch only reads: a lost connection is as retryable as a refused one.
        if !verdict.allows(true) || self.consecutive >= MAX_WATCH_ERRORS {
            return None;
        }
        let planned = self.backoff.next()?;
        Some(self.policy.honour(planned, verdict.retry_after()))
    }
}

/// The first address of a LoadBalancer Service's status (`ip`, else `hostname`).
pub fn load_balancer_address(service: &Value) -> Option<String> {
    service
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)?
        .iter()
        .find_map(|i| {
            i.get("ip")
                .or_else(|| i.get("hostname"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
}

/// Waits until Service `namespace/name` has a LoadBalancer address; returns it.
pub async fn wait_load_balancer_address(
    client: &Client,
    namespace: &str,
    name: &str,
    deadline: Instant,
    progress: Option<&ProgressFn>,
) -> KubeResult<String> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let what = format!("Service {namespace}/{name} to get a load balancer address");
    let cond = |obj: Option<&Service>| {
        obj.and_then(|o| serde_json::to_value(o).ok())
            .is_some_and(|v| load_balancer_address(&v).is_some())
    };
    let svc = wait_for(api, name, &what, cond, deadline, progress).await?;
    svc.and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| load_balancer_address(&v))
        .ok_or_else(|| KubeError::Invalid {
            message: format!("{what}: object disappeared"),
        })
}

/// Whether some DataPlaneControl of `objects` is for `revision` (`spec.revision`) and
/// reports `status.state: Ready` (the managed data plane's readiness, as the documented
/// `kubectl get dataplanecontrols -o custom-columns=REV:.spec.revision,STATUS:.status.state`
/// check reads it).
pub fn dataplane_ready(objects: &[Value], revision: &str) -> bool {
    objects.iter().any(|o| {
        o.pointer("/spec/revision").and_then(Value::as_str) == Some(revision)
            && o.pointer("/status/state").and_then(Value::as_str) == Some("Ready")
    })
}

/// Waits until the DataPlaneControl of `revision` is `Ready`. The CRD must be served (plans
/// order this wait after what installs it).
pub async fn wait_dataplane_ready(
    client: &Client,
    revision: &str,
    deadline: Instant,
    progress: Option<&ProgressFn>,
) -> KubeResult<()> {
    let gvk = GroupVersionKind::gvk("mesh.cloud.google.com", "v1alpha1", "DataPlaneControl");
    let (ar, scope) = resolve_resource(client, &gvk).await?;
    let api = dynamic_api(client, &ar, &scope, None);
    let what = format!("the DataPlaneControl of revision {revision} to be Ready");
    let revision = revision.to_string();
    wait_for_list(
        api,
        watcher::Config::default(),
        &what,
        move |objs: &[DynamicObject]| {
            let values: Vec<Value> = objs
                .iter()
                .filter_map(|o| serde_json::to_value(o).ok())
                .collect();
            dataplane_ready(&values, &revision)
        },
        deadline,
        progress,
    )
    .await
}

/// Waits until ControlPlaneRevision `namespace/revision` is `ProvisioningFinished`.
pub async fn wait_control_plane_revision(
    client: &Client,
    namespace: &str,
    revision: &str,
    deadline: Instant,
    progress: Option<&ProgressFn>,
) -> KubeResult<()> {
    let gvk = GroupVersionKind::gvk("mesh.cloud.google.com", "v1beta1", "ControlPlaneRevision");
    let (ar, scope) = resolve_resource(client, &gvk).await?;
    let api = dynamic_api(client, &ar, &scope, Some(namespace));
    let cond = |obj: Option<&DynamicObject>| {
        obj.and_then(|o| serde_json::to_value(o).ok())
            .is_some_and(|v| has_true_condition(&v, "ProvisioningFinished"))
    };
    wait_for(
        api,
        revision,
        &format!("ControlPlaneRevision {revision} to be ProvisioningFinished"),
        cond,
        deadline,
        progress,
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn watch_error_count_resets_on_progress_and_stops_at_once_on_forbidden() {
        let policy = RetryPolicy::kubernetes();
        let mut w = WatchErrors::new(&policy);
        let lost = KubeError::Transport {
            what: "watch x".into(),
            message: "connection closed".into(),
            kind: crate::retry::Transport::Lost,
        };
        // Far more failures than MAX_WATCH_ERRORS, each followed by an event.
        for _ in 0..(MAX_WATCH_ERRORS * 4) {
            assert!(w.failed(&lost).is_some());
            w.progress();
        }
        for _ in 1..MAX_WATCH_ERRORS {
            assert!(w.failed(&lost).is_some());
        }
        assert!(w.failed(&lost).is_none());
        let forbidden = KubeError::Api {
            what: "watch x".into(),
            status: Box::new(::kube::core::Status::failure("no", "Forbidden").with_code(403)),
        };
        assert!(WatchErrors::new(&policy).failed(&forbidden).is_none());
    }

    #[test]
    fn conditions() {
        let o = json!({"status": {"conditions": [
            {"type": "Reconciled", "status": "True"},
            {"type": "ProvisioningFinished", "status": "False"}]}});
        assert!(has_true_condition(&o, "Reconciled"));
        assert!(!has_true_condition(&o, "ProvisioningFinished"));
        assert!(!has_true_condition(&json!({}), "Reconciled"));
    }

    #[test]
    fn load_balancer_address_takes_ip_then_hostname() {
        let ip = json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.7"}]}}});
        assert_eq!(load_balancer_address(&ip).as_deref(), Some("10.0.0.7"));
        let host = json!({"status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}});
        assert_eq!(load_balancer_address(&host).as_deref(), Some("lb.example"));
        assert_eq!(
            load_balancer_address(&json!({"status": {"loadBalancer": {}}})),
            None
        );
    }

    #[test]
    fn dataplane_ready_needs_the_revision_and_state_ready() {
        let dpc = |rev: &str, state: Option<&str>| {
            let mut v = json!({"spec": {"revision": rev}});
            if let Some(s) = state {
                v["status"] = json!({"state": s});
            }
            v
        };
        assert!(dataplane_ready(
            &[dpc("asm-managed", Some("Ready"))],
            "asm-managed"
        ));
        assert!(!dataplane_ready(
            &[dpc("asm-managed-rapid", Some("Ready"))],
            "asm-managed"
        ));
        assert!(!dataplane_ready(&[dpc("asm-managed", None)], "asm-managed"));
        assert!(!dataplane_ready(
            &[dpc("asm-managed", Some("Provisioning"))],
            "asm-managed"
        ));
    }
}
