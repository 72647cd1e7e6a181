//! Cloud Resource Manager v1: project number, IAM policy, permission tests.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::endpoints::{Endpoints, Service};
use super::http::{GcpResult, GoogleHttp};

/// A project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Project {
    pub project_id: String,
    /// Digits (an int64 sent as a JSON string).
    pub project_number: String,
    /// `ACTIVE`, `DELETE_REQUESTED`, …
    pub lifecycle_state: String,
    pub name: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An IAM policy; unknown fields (auditConfigs, …) survive a read-modify-write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IamPolicy {
    pub version: i64,
    pub etag: String,
    pub bindings: Vec<Binding>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One role binding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Binding {
    pub role: String,
    pub members: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl IamPolicy {
    /// Whether `member` holds `role` unconditionally.
    pub fn has_binding(&self, role: &str, member: &str) -> bool {
        self.bindings.iter().any(|b| {
            b.role == role && b.condition.is_none() && b.members.iter().any(|m| m == member)
        })
    }

    /// Adds `member` to the unconditional binding of `role` (creating it); returns whether
    /// the policy changed.
    pub fn add_binding(&mut self, role: &str, member: &str) -> bool {
        if self.has_binding(role, member) {
            return false;
        }
        match self
            .bindings
            .iter_mut()
            .find(|b| b.role == role && b.condition.is_none())
        {
            Some(b) => b.members.push(member.to_string()),
            None => self.bindings.push(Binding {
                role: role.to_string(),
                members: vec![member.to_string()],
                ..Binding::default()
            }),
        }
        true
    }
}

/// cloudresourcemanager v1 client.
#[derive(Debug, Clone)]
pub struct CrmApi {
    http: GoogleHttp,
    endpoints: Endpoints,
}

impl CrmApi {
    /// A client over `http` against `endpoints`.
    pub fn new(http: GoogleHttp, endpoints: Endpoints) -> Self {
        CrmApi { http, endpoints }
    }

    fn url(&self, path: &str) -> String {
        self.endpoints.url(Service::CloudResourceManager, path)
    }

    /// `GET v1/projects/P`.
    pub async fn get_project(&self, project: &str) -> GcpResult<Project> {
        self.http
            .get(&self.url(&format!("v1/projects/{project}")))
            .await
    }

    /// The project number (digits) of `project`.
    pub async fn project_number(&self, project: &str) -> GcpResult<String> {
        Ok(self.get_project(project).await?.project_number)
    }

    /// `POST v1/projects/P:getIamPolicy` (requested policy version 3).
    pub async fn get_iam_policy(&self, project: &str) -> GcpResult<IamPolicy> {
        let url = self.url(&format!("v1/projects/{project}:getIamPolicy"));
        self.http
            .post(
                &url,
                &json!({"options": {"requestedPolicyVersion": 3}}),
                true,
            )
            .await
    }

    /// `POST v1/projects/P:setIamPolicy` with the policy (its etag guards against concurrent
    /// changes: a stale one fails with 409 ABORTED). Returns the new policy. Safe to repeat
    /// after a lost answer: a repeat of a write that was made fails on the etag.
    pub async fn set_iam_policy(&self, project: &str, policy: &IamPolicy) -> GcpResult<IamPolicy> {
        let url = self.url(&format!("v1/projects/{project}:setIamPolicy"));
        let mut policy = policy.clone();
        policy.version = 3;
        self.http.post(&url, &json!({"policy": policy}), true).await
    }

    /// Adds `member` to `role` with get → modify → set, redoing the whole cycle on 409
    /// ABORTED (a stale etag) or a lost answer, up to `attempts` times. Returns whether a change was made.
    pub async fn add_iam_binding(
        &self,
        project: &str,
        role: &str,
        member: &str,
        attempts: u32,
    ) -> GcpResult<bool> {
        add_binding_with(
            || self.get_iam_policy(project),
            |p| async move { self.set_iam_policy(project, &p).await },
            role,
            member,
            attempts,
            self.http.retry_policy(),
        )
        .await
    }

    /// `POST v1/projects/P:testIamPermissions`: the subset of `permissions` the caller has.
    pub async fn test_iam_permissions(
        &self,
        project: &str,
        permissions: &[String],
    ) -> GcpResult<Vec<String>> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            permissions: Vec<String>,
        }
        let url = self.url(&format!("v1/projects/{project}:testIamPermissions"));
        let a: Answer = self
            .http
            .post(&url, &json!({"permissions": permissions}), true)
            .await?;
        Ok(a.permissions)
    }
}

/// The read-modify-write of an IAM policy through `get` and `set`: adds `member` to `role`
/// with the etag of the policy read, and on 409 ABORTED (a concurrent change made the etag
/// stale) reads again and redoes it, up to `attempts` cycles with `retry`'s backoff in
/// between. Returns whether a change was made (false: the binding was already there).
pub async fn add_binding_with<G, GF, S, SF>(
    get: G,
    set: S,
    role: &str,
    member: &str,
    attempts: u32,
    retry: &crate::retry::RetryPolicy,
) -> GcpResult<bool>
where
    G: Fn() -> GF,
    GF: std::future::Future<Output = GcpResult<IamPolicy>>,
    S: Fn(IamPolicy) -> SF,
    SF: std::future::Future<Output = GcpResult<IamPolicy>>,
{
    let retry = crate::retry::RetryPolicy {
        max_attempts: attempts.max(1),
        ..retry.clone()
    };
    let (get, set) = (&get, &set);
    // A stale etag (409 ABORTED) means someone else wrote first: read again, add again.
    crate::retry::read_modify_write(&retry, move || async move {
        let mut policy = get().await?;
        if !policy.add_binding(role, member) {
            return Ok(false);
        }
        set(policy).await.map(|_| true)
    })
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn add_binding_merges_and_keeps_unknown() {
        let mut p: IamPolicy = serde_json::from_value(serde_json::json!({
            "version": 1, "etag": "BwY=", "auditConfigs": [{"service": "allServices"}],
            "bindings": [{"role": "roles/owner", "members": ["user:a"]},
                         {"role": "roles/x", "members": ["user:b"], "condition": {"expression": "true"}}]
        })).unwrap();
        assert!(!p.add_binding("roles/owner", "user:a"));
        assert!(p.add_binding("roles/owner", "user:c"));
        assert!(p.add_binding("roles/x", "user:b"));
        assert_eq!(p.bindings.len(), 3);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["auditConfigs"][0]["service"], "allServices");
        assert_eq!(
            v["bindings"][0]["members"],
            serde_json::json!(["user:a", "user:c"])
        );
        assert!(v["bindings"][0].get("condition").is_none());
    }
}
