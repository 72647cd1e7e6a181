//! The migration record: what `asm migrate` changed, kept in the cluster (ConfigMap
//! `istio-system/asm-migration`, key `record`, JSON) so `asm rollback` can restore exactly
//! that, from any machine, after any interruption. Pure: building, reading, the ConfigMap.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::plan::record::PriorValues;

/// Where the record lives.
pub const NAMESPACE: &str = "istio-system";
pub const NAME: &str = "asm-migration";
/// The ConfigMap key holding the record's JSON.
pub const KEY: &str = "record";
/// The record's schema id.
pub const SCHEMA: &str = "asm.migration/v1";

/// Where a migration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RecordState {
    /// Written before the first change; a run that stops leaves it so.
    #[default]
    Migrating,
    /// Every planned namespace and gateway moved.
    Migrated,
    /// `asm rollback` restored everything; a later migrate starts a new record.
    RolledBack,
}

/// One namespace as it was before it moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NamespaceRecord {
    pub name: String,
    /// The revision its labels and pods resolved to (`None`: not in the mesh).
    pub revision: Option<String>,
    /// Previous value of every injection label migrate sets or removes (`null`: absent).
    pub labels: PriorValues,
    /// Previous value of every annotation migrate sets (`null`: absent).
    #[serde(default)]
    pub annotations: PriorValues,
    /// Each Deployment's rollout revision (`deployment.kubernetes.io/revision`).
    #[serde(default)]
    pub deployments: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub rolled_back: bool,
}

/// One gateway Deployment as it was before it moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GatewayRecord {
    pub namespace: String,
    pub name: String,
    /// Its rollout revision (the ReplicaSet `kubectl rollout undo --to-revision` returns to).
    pub revision: Option<String>,
    /// Its pod template's `istio.io/rev`.
    pub rev_label: Option<String>,
    #[serde(default)]
    pub rolled_back: bool,
}

/// The record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MigrationRecord {
    pub schema: String,
    pub state: RecordState,
    /// The in-cluster revisions left.
    pub from: Vec<String>,
    /// The managed revision.
    pub to: String,
    /// In the order they move.
    pub namespaces: Vec<NamespaceRecord>,
    #[serde(default)]
    pub gateways: Vec<GatewayRecord>,
}

impl MigrationRecord {
    /// Whether it still describes changes to undo (not rolled back).
    pub fn active(&self) -> bool {
        self.state != RecordState::RolledBack
    }

    /// The ConfigMap holding it.
    pub fn config_map(&self) -> Value {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": NAME,
                "namespace": NAMESPACE,
                "labels": {"app.kubernetes.io/managed-by": "asm"},
            },
            "data": {KEY: text},
        })
    }

    /// Reads the record from its ConfigMap (`Err`: present but unreadable).
    pub fn from_config_map(cm: &Value) -> Result<Self, String> {
        let text = cm
            .pointer(&format!("/data/{KEY}"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("ConfigMap {NAMESPACE}/{NAME} has no key {KEY:?}"))?;
        serde_json::from_str(text)
            .map_err(|e| format!("ConfigMap {NAMESPACE}/{NAME}: unreadable record: {e}"))
    }

    /// The namespace entry `name`.
    pub fn namespace(&self, name: &str) -> Option<&NamespaceRecord> {
        self.namespaces.iter().find(|n| n.name == name)
    }

    /// The gateway entry `namespace/name`.
    pub fn gateway(&self, namespace: &str, name: &str) -> Option<&GatewayRecord> {
        self.gateways
            .iter()
            .find(|g| g.namespace == namespace && g.name == name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_through_its_config_map() {
        let r = MigrationRecord {
            schema: SCHEMA.into(),
            state: RecordState::Migrating,
            from: vec!["asm-191-1".into()],
            to: "asm-managed".into(),
            namespaces: vec![NamespaceRecord {
                name: "legacy".into(),
                revision: Some("asm-191-1".into()),
                labels: [
                    ("istio-injection".to_string(), Some("enabled".to_string())),
                    ("istio.io/rev".to_string(), None),
                ]
                .into(),
                annotations: PriorValues::new(),
                deployments: [("monolith".to_string(), Some("1".to_string()))].into(),
                rolled_back: false,
            }],
            gateways: vec![GatewayRecord {
                namespace: "istio-system".into(),
                name: "istio-ingressgateway".into(),
                revision: Some("1".into()),
                rev_label: Some("asm-191-1".into()),
                rolled_back: false,
            }],
        };
        let cm = r.config_map();
        assert_eq!(cm["metadata"]["name"], "asm-migration");
        let text = cm["data"]["record"].as_str().unwrap();
        assert!(text.contains(r#""state": "migrating""#), "{text}");
        assert!(text.contains(r#""istio.io/rev": null"#), "{text}");
        assert_eq!(MigrationRecord::from_config_map(&cm).unwrap(), r);
        assert!(MigrationRecord::from_config_map(&json!({"data": {}})).is_err());
        let rolled = MigrationRecord {
            state: RecordState::RolledBack,
            ..r
        };
        assert!(!rolled.active());
        assert!(
            serde_json::to_string(&rolled)
                .unwrap()
                .contains("rolled-back")
        );
    }
}
