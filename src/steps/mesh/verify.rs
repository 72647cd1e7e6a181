//! `--verify`: every remote secret's kubeconfig authenticates to its cluster and may read
//! what the mesh needs (SelfSubjectAccessReview, as the reader would).

use futures::future::join_all;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::execute::SecretExecutor;
use crate::kube::KubeError;
use crate::kube::remote_kubeconfig::{config_for_remote, parse_remote_kubeconfig};
use crate::steps::observe::kube_retry;
use crate::steps::remote_secret::VERIFY_RESOURCES;

/// One verification: may the secret of `source` held by `target` read `source`?
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Verification {
    pub source: String,
    pub target: String,
    pub secret: String,
    pub ok: bool,
    pub message: String,
}

/// `--verify`: for every pair, read the secret from the target, connect to the source with
/// its kubeconfig, and ask (SelfSubjectAccessReview) whether it may list pods, services,
/// endpoints and secrets cluster-wide.
pub async fn verify(exec: &SecretExecutor, pairs: &[(usize, usize)]) -> Vec<Verification> {
    join_all(pairs.iter().map(|&(s, t)| async move {
        let src = &exec.members[s];
        let dst = &exec.members[t];
        let name = src.secret_type.secret_name(&src.id);
        let key = src.secret_type.data_key(&src.id);
        let outcome = verify_one(exec, t, &dst.namespace, &name, &key).await;
        let (ok, message) = match outcome {
            Ok(()) => (
                true,
                format!(
                    "{name} in {} authenticates to {} and may list {}",
                    dst.label,
                    src.label,
                    VERIFY_RESOURCES.join(", ")
                ),
            ),
            Err(m) => (false, format!("{name} in {}: {m}", dst.label)),
        };
        Verification {
            source: src.display.clone(),
            target: dst.display.clone(),
            secret: name,
            ok,
            message,
        }
    }))
    .await
}

async fn verify_one(
    exec: &SecretExecutor,
    target: usize,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<(), String> {
    let client = exec.client(target).map_err(|e| e.message)?;
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = kube_retry(|| async {
        api.get_opt(name)
            .await
            .map_err(|e| KubeError::from_kube(format!("get Secret {namespace}/{name}"), e))
    })
    .await
    .map_err(|e| e.to_string())?
    .ok_or("the secret does not exist")?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .ok_or_else(|| format!("the secret has no data key {key:?}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "the kubeconfig is not UTF-8".to_string())?;
    // Only server, CA and token: the kubeconfig came from a cluster, not from the user.
    let creds = parse_remote_kubeconfig(&text)?;
    let config = config_for_remote(&creds)?;
    let reader =
        Client::try_from(config).map_err(|_| "no client from the kubeconfig".to_string())?;
    let ssar_api: Api<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview> =
        Api::all(reader);
    let mut denied = Vec::new();
    for resource in VERIFY_RESOURCES {
        let review: k8s_openapi::api::authorization::v1::SelfSubjectAccessReview =
            serde_json::from_value(json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": "list", "resource": resource, "group": ""}},
            }))
            .map_err(|e| e.to_string())?;
        let answer = ssar_api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) if s.code == 401 => {
                    "the token does not authenticate (401 Unauthorized)".to_string()
                }
                kube::Error::Api(s) => format!("{} {}", s.code, s.reason),
                _ => "cannot reach the API server of the kubeconfig".to_string(),
            })?;
        if !answer.status.is_some_and(|s| s.allowed) {
            denied.push(resource);
        }
    }
    if denied.is_empty() {
        Ok(())
    } else {
        Err(format!("may not list {} cluster-wide", denied.join(", ")))
    }
}
