//! Observation (I/O) of `asm install-gateway`: the namespace and the live copy of every
//! object the gateway's manifests name.

use futures::future::join_all;
use serde_json::Value;

use super::GatewayObs;
use crate::kube::KubeContext;
use crate::kube::apply::{get_live, get_opt, object_ref};
use crate::steps::observe::kube_retry;

/// Reads the namespace `namespace` and the live object of each of `desired` (same order).
pub async fn observe_gateway(
    ctx: &KubeContext,
    namespace: &str,
    desired: &[Value],
) -> Result<GatewayObs, String> {
    let client = &ctx.client;
    for d in desired {
        object_ref(d).map_err(|e| e.to_string())?;
    }
    // Concurrent reads: with N clusters observed at once, each cluster costs one round
    // trip instead of one per object.
    let (ns, objects) = tokio::join!(
        kube_retry(|| get_opt(client, "v1", "Namespace", None, namespace)),
        join_all(
            desired
                .iter()
                .map(|d| kube_retry(move || get_live(client, d)))
        ),
    );
    let ns = ns.map_err(|e| e.to_string())?;
    let live = objects
        .into_iter()
        .map(|o| {
            o.map(|o| o.and_then(|o| serde_json::to_value(o).ok()))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let service = desired
        .iter()
        .zip(&live)
        .find(|(d, _)| d["kind"] == "Service")
        .and_then(|(_, l)| l.clone());
    Ok(GatewayObs {
        namespace: ns.and_then(|o| serde_json::to_value(o).ok()),
        live,
        address: service
            .as_ref()
            .and_then(crate::kube::wait::load_balancer_address),
    })
}
