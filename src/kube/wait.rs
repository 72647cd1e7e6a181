//! Watch-based waits with deadlines (`kube::runtime::wait::await_condition`: one list+watch,
//! no gap between a GET and a watch), reporting what they wait for while they wait.

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::wait::{Condition, await_condition, conditions};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use super::{KubeError, KubeResult, error_chain};
use crate::gcp::lro::ProgressFn;

/// How often a wait repeats its progress line.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Consecutive watch failures tolerated before a wait gives up early.
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
    let started = Instant::now();
    if let Some(p) = progress {
        p(&format!("waiting for {what}"));
    }
    let mut ticker = tokio::time::interval_at(started + PROGRESS_EVERY, PROGRESS_EVERY);
    let mut errors = 0;
    loop {
        let fut = await_condition(api.clone(), name, cond.clone());
        tokio::pin!(fut);
        let outcome = loop {
            tokio::select! {
                res = &mut fut => break res,
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(KubeError::Timeout { what: what.to_string(), after: started.elapsed() });
                }
                _ = ticker.tick() => {
                    if let Some(p) = progress {
                        p(&format!("still waiting for {what} ({}s)", started.elapsed().as_secs()));
                    }
                }
            }
        };
        match outcome {
            Ok(obj) => return Ok(obj),
            Err(e) => {
                errors += 1;
                let message = error_chain(&e);
                tracing::debug!(target: "asm::kube::wait", "watch for {what} failed: {message}");
                if errors >= MAX_WATCH_ERRORS {
                    return Err(KubeError::Client {
                        what: format!("watch {what}"),
                        message,
                    });
                }
                let pause = Duration::from_millis(200 * u64::from(errors));
                if Instant::now() + pause >= deadline {
                    return Err(KubeError::Timeout {
                        what: what.to_string(),
                        after: started.elapsed(),
                    });
                }
                tokio::time::sleep(pause).await;
            }
        }
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions() {
        let o = json!({"status": {"conditions": [
            {"type": "Reconciled", "status": "True"},
            {"type": "ProvisioningFinished", "status": "False"}]}});
        assert!(has_true_condition(&o, "Reconciled"));
        assert!(!has_true_condition(&o, "ProvisioningFinished"));
        assert!(!has_true_condition(&json!({}), "Reconciled"));
    }
}
