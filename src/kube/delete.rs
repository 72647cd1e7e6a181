//! Deleting an object asm planned to delete, only if it is still the object the plan saw:
//! the plan's `uid`/`resourceVersion` are checked against the live object and sent as
//! `DeleteOptions.preconditions`, so the server refuses (409 Conflict) if it changed in
//! between (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/delete-options/).
//! The deleted object is returned, server-set fields stripped, for the run report.

use kube::Client;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::core::GroupVersionKind;
use serde_json::Value;

use super::apply::{dynamic_api, resolve_resource, split_api_version, strip_server_fields};
use super::{KubeError, KubeResult};
use crate::plan::record::Prior;

/// What the plan saw of the object to delete (`None`: not checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// Why `live` is no longer the object `expected` describes, if it is not.
pub fn mismatch(live: &Value, expected: &Expected) -> Option<String> {
    let field = |p: &str| live.pointer(p).and_then(Value::as_str).unwrap_or_default();
    if let Some(uid) = &expected.uid
        && field("/metadata/uid") != uid
    {
        return Some(format!(
            "UID in precondition: {uid}, UID in object meta: {}",
            field("/metadata/uid")
        ));
    }
    if let Some(rv) = &expected.resource_version
        && field("/metadata/resourceVersion") != rv
    {
        return Some(format!(
            "ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
            field("/metadata/resourceVersion")
        ));
    }
    None
}

/// Deletes `api_version`/`kind` `namespace/name` if it is still `expected` (background
/// propagation, as kubectl). `Ok(None)` when it is already gone (a re-run after a kill);
/// `Ok(Some(Prior::Deleted))` with the object as it was.
pub async fn delete(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    expected: &Expected,
) -> KubeResult<Option<Prior>> {
    let (group, version) = split_api_version(api_version);
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, scope) = resolve_resource(client, &gvk).await?;
    let api = dynamic_api(client, &ar, &scope, namespace);
    let what = match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    let Some(live) = api
        .get_opt(name)
        .await
        .map_err(|e| KubeError::from_kube(format!("get {what}"), e))?
    else {
        return Ok(None);
    };
    let mut live = serde_json::to_value(&live).map_err(|e| KubeError::Invalid {
        message: format!("{what}: {e}"),
    })?;
    if let Some(why) = mismatch(&live, expected) {
        return Err(KubeError::Invalid {
            message: format!(
                "refusing to delete {what}: it changed since it was planned ({why}); make a new plan"
            ),
        });
    }
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: expected.uid.clone(),
            resource_version: expected.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => {}
        Err(e) => {
            let err = KubeError::from_kube(format!("delete {what}"), e);
            if !err.is_not_found() {
                return Err(err);
            }
        }
    }
    strip_server_fields(&mut live);
    Ok(Some(Prior::Deleted { object: live }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mismatch_names_the_changed_precondition() {
        let live = json!({"metadata": {"uid": "u1", "resourceVersion": "7"}});
        let same = Expected {
            uid: Some("u1".into()),
            resource_version: Some("7".into()),
        };
        assert_eq!(mismatch(&live, &same), None);
        assert_eq!(mismatch(&live, &Expected::default()), None);
        let other_uid = Expected {
            uid: Some("u0".into()),
            ..Expected::default()
        };
        assert_eq!(
            mismatch(&live, &other_uid).as_deref(),
            Some("UID in precondition: u0, UID in object meta: u1")
        );
        let stale = Expected {
            resource_version: Some("6".into()),
            ..Expected::default()
        };
        assert!(
            mismatch(&live, &stale)
                .unwrap_or_default()
                .contains("ResourceVersion")
        );
    }
}
