//! Saved migrate plans (`asm migrate --plan-out FILE`, then `asm apply FILE`): the
//! `asm.plan/v1` object of `-o json` plus the command's flags (`inputs`), a fingerprint of
//! what was observed and every action's payload (read back by
//! [`crate::steps::mesh::saved::read`], compared by [`crate::plan::saved::drift_refusal`]).
//! Nothing secret is observed or saved.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{MigratePlan, Observed};
use crate::cli::migrate::MigrateArgs;
use crate::plan::render;
use crate::plan::saved::SAVED_VERSION;
use crate::spec::ClusterRef;
use crate::steps::kube_actions::cluster_label;

/// The flags a saved plan is re-planned with (targets and what moves; not the credentials).
pub fn inputs(args: &MigrateArgs) -> Value {
    let t = &args.target;
    json!({
        "project": t.project,
        "location": t.location,
        "cluster_name": t.cluster_name,
        "clusters": t.clusters,
        "fleet_id": t.fleet_id,
        "kubeconfig": t.kubeconfig.as_ref().map(|p| p.display().to_string()),
        "context": t.context,
        "namespaces": args.namespaces,
        "all_namespaces": args.all_namespaces,
        "to": args.to,
        "managed_dataplane": args.managed_dataplane,
        "no_restart": args.no_restart,
        "gateways": args.gateways,
        "no_gateways": args.no_gateways,
        "parallel": args.parallel,
        "restart_all_kinds": args.restart_all_kinds,
        "timeout": args.timeout,
    })
}

/// What the plan was made from, per cluster: each namespace's resourceVersion (its labels
/// and annotations), each workload's generation (its spec), and the migration record.
pub fn fingerprint(clusters: &[ClusterRef], obs: &Observed) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (i, c) in obs.clusters.iter().enumerate() {
        let label = cluster_label(clusters, i);
        let Some(Ok(state)) = c else {
            out.insert(format!("{label}/kubernetes"), "unreadable".to_string());
            continue;
        };
        for n in &state.snapshot.namespaces {
            let text = |p: &str| n.pointer(p).and_then(Value::as_str).unwrap_or_default();
            out.insert(
                format!("{label}/Namespace/{}", text("/metadata/name")),
                text("/metadata/resourceVersion").to_string(),
            );
        }
        for w in &state.workloads {
            out.insert(
                format!("{label}/{}/{}/{}", w.kind, w.namespace, w.name),
                w.generation.map(|g| g.to_string()).unwrap_or_default(),
            );
        }
        out.insert(
            format!("{label}/migration-record"),
            state
                .record
                .as_ref()
                .and_then(|r| serde_json::to_string(r).ok())
                .unwrap_or_else(|| "absent".to_string()),
        );
    }
    out
}

/// `(id, op, payload)` of every action, as saved and as compared.
pub fn actions_of(plan: &MigratePlan) -> Vec<(String, String, Value)> {
    plan.actions
        .iter()
        .map(|a| {
            (
                a.id.clone(),
                serde_json::to_value(a.op)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                serde_json::to_value(&a.payload).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// The saved plan: `-o json`'s object with `dry_run: true`, `saved`, `inputs`,
/// `fingerprint` and a `payload` on every action.
pub fn document(
    plan: &MigratePlan,
    inputs: Value,
    fingerprint: &BTreeMap<String, String>,
) -> Value {
    let mut v = serde_json::to_value(render::document::<_, ()>(plan, None)).unwrap_or_default();
    v["dry_run"] = json!(true);
    if let Some(actions) = v["actions"].as_array_mut() {
        for (out, (_, _, payload)) in actions.iter_mut().zip(actions_of(plan)) {
            out["payload"] = payload;
        }
    }
    v["saved"] = json!({
        "version": SAVED_VERSION,
        "asm_version": env!("CARGO_PKG_VERSION"),
        "command": "migrate",
    });
    v["inputs"] = inputs;
    v["fingerprint"] = json!(fingerprint);
    v
}
