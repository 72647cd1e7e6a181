//! The Kubernetes permission precheck: before anything changes, one SelfSubjectAccessReview
//! per verb and resource a plan will use on a cluster, so that a caller with too little
//! access (say only the `view` ClusterRole) learns it as a failed check (`ASM-C110`, exit 3)
//! instead of as an error halfway through. The reads that observation makes are checked by
//! making them (a 403 there is recorded as a missing permission, see
//! `steps::observe::observe_kube`).

use std::collections::BTreeSet;
use std::fmt;

use futures::future::join_all;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use crate::kube::{KubeContext, KubeError, KubeResult};
use crate::plan::{Op, Plan};
use crate::steps::cluster::missing_kube_permission;

/// One permission: a verb on a resource (of an API group), cluster-wide or in a namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub verb: &'static str,
    pub group: String,
    pub resource: String,
    pub namespace: Option<String>,
}

impl fmt::Display for Permission {
    /// `patch controlplanerevisions.mesh.cloud.google.com in istio-system`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        if let Some(ns) = &self.namespace {
            write!(f, " in {ns}")?;
        }
        Ok(())
    }
}

/// The API group and resource (plural) of a Kubernetes `api`/`kind`; `None` for Google APIs.
fn resource_of(api: &str, kind: &str) -> Option<(String, String)> {
    if api.contains(".googleapis.com") {
        return None;
    }
    let group = api.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let lower = kind.to_ascii_lowercase();
    let plural = match lower.as_str() {
        k if k.ends_with('s') => format!("{k}es"),
        k if k.ends_with('y') => format!("{}ies", &k[..k.len() - 1]),
        k => format!("{k}s"),
    };
    Some((group.to_string(), plural))
}

/// The verbs an action needs: server-side apply is a PATCH, and creates through it.
fn verbs(op: Op) -> &'static [&'static str] {
    match op {
        Op::Create => &["create", "patch"],
        Op::Update | Op::Restart => &["patch"],
        Op::Delete => &["delete"],
        Op::Wait => &["get", "list", "watch"],
    }
}

/// Every permission `plan`'s actions on `cluster` need, sorted and without repeats.
pub fn needed<P>(plan: &Plan<P>, cluster: &str) -> Vec<Permission> {
    let mut out = BTreeSet::new();
    for a in plan
        .actions
        .iter()
        .filter(|a| a.cluster.as_deref() == Some(cluster))
    {
        let Some((group, resource)) = resource_of(&a.target.api, &a.target.kind) else {
            continue;
        };
        for verb in verbs(a.op) {
            out.insert(Permission {
                verb,
                group: group.clone(),
                resource: resource.clone(),
                namespace: a.target.namespace.clone(),
            });
        }
    }
    // A run that changes the cluster first takes its lock (src/kube/lease.rs).
    if !out.is_empty() {
        for verb in ["get", "create", "update", "delete"] {
            out.insert(Permission {
                verb,
                group: "coordination.k8s.io".into(),
                resource: "leases".into(),
                namespace: Some(crate::kube::lease::NAMESPACE.into()),
            });
        }
    }
    out.into_iter().collect()
}

/// The permissions of `needed` the caller of `ctx` lacks (asked concurrently).
pub async fn missing(ctx: &KubeContext, needed: &[Permission]) -> KubeResult<Vec<Permission>> {
    let api: Api<SelfSubjectAccessReview> = Api::all(ctx.client.clone());
    let answers = join_all(needed.iter().map(|p| {
        let api = api.clone();
        async move {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        verb: Some(p.verb.to_string()),
                        group: Some(p.group.clone()),
                        resource: Some(p.resource.clone()),
                        namespace: p.namespace.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            // A review stores nothing: asking again after a lost answer is harmless.
            super::observe::kube_retry(|| async {
                api.create(&PostParams::default(), &review)
                    .await
                    .map(|r| r.status.is_some_and(|s| s.allowed))
                    .map_err(|e| KubeError::from_kube(format!("SelfSubjectAccessReview {p}"), e))
            })
            .await
        }
    }))
    .await;
    let mut out = Vec::new();
    for (p, allowed) in needed.iter().zip(answers) {
        if !allowed? {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Adds a failed `ASM-C110` check to `plan` for every permission its actions need on a
/// cluster that the caller lacks there (one review per permission, clusters concurrently).
/// `clusters`: each cluster's label, as actions name it, with its context (`None`: not
/// reachable, nothing to ask).
pub async fn check_plan<P>(plan: &mut Plan<P>, clusters: &[(String, Option<&KubeContext>)]) {
    let asks = clusters.iter().filter_map(|(cluster, ctx)| {
        let needed = needed(plan, cluster);
        let ctx = (*ctx)?;
        (!needed.is_empty()).then_some(async move { (cluster, missing(ctx, &needed).await) })
    });
    for (cluster, answer) in join_all(asks).await {
        let found = match answer {
            Ok(missing) => missing
                .iter()
                .map(|p| missing_kube_permission(cluster, &p.to_string()))
                .collect(),
            Err(e) => vec![missing_kube_permission(
                cluster,
                &format!("(the access review failed: {e})"),
            )],
        };
        for check in found {
            // A read observation already found denied is reported once.
            if !plan
                .checks
                .iter()
                .any(|c| c.message == check.message && c.cluster == check.cluster)
            {
                plan.checks.push(check);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plurals_and_groups_of_the_kinds_asm_writes() {
        assert_eq!(
            resource_of("v1", "Namespace"),
            Some((String::new(), "namespaces".into()))
        );
        assert_eq!(
            resource_of("mesh.cloud.google.com/v1beta1", "ControlPlaneRevision"),
            Some((
                "mesh.cloud.google.com".into(),
                "controlplanerevisions".into()
            ))
        );
        assert_eq!(
            resource_of("networking.k8s.io/v1", "NetworkPolicy")
                .unwrap()
                .1,
            "networkpolicies"
        );
        assert_eq!(resource_of("gkehub.googleapis.com/v1", "Membership"), None);
    }

    #[test]
    fn permission_reads_like_kubectl_auth_can_i() {
        let p = Permission {
            verb: "patch",
            group: "mesh.cloud.google.com".into(),
            resource: "controlplanerevisions".into(),
            namespace: Some("istio-system".into()),
        };
        assert_eq!(
            p.to_string(),
            "patch controlplanerevisions.mesh.cloud.google.com in istio-system"
        );
    }
}
