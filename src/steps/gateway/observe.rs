//! Observation (I/O) of `asm install-gateway`: the namespace and the live copy of every
//! object the gateway's manifests name.

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
    let ns = kube_retry(|| get_opt(client, "v1", "Namespace", None, namespace))
        .await
        .map_err(|e| e.to_string())?;
    let mut live = Vec::new();
    for d in desired {
        object_ref(d).map_err(|e| e.to_string())?;
        let o = kube_retry(|| get_live(client, d))
            .await
            .map_err(|e| e.to_string())?;
        live.push(o.and_then(|o| serde_json::to_value(o).ok()));
    }
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
