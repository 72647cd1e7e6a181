//! The JSON Schemas of asm's JSON documents, generated from the types that write them and
//! committed under `schemas/` (README, "Machine-readable output"). `cargo run --example
//! write-schemas` rewrites the files; a test fails when they drift from the types.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde::Serialize;

use crate::commands::install::InstallResult;
use crate::commands::install_gateway::GatewayResult;
use crate::commands::secret_plan::SecretsResult;
use crate::plan::document::{PlanDocument, ReplanResult};
use crate::plan::record::RunReport;
use crate::plan::saved::InstallPlan;
use crate::steps::dataplane::saved::SavedDataplanePlan;
use crate::steps::mesh::saved::SavedSecretPlan;
use crate::steps::migrate::saved::SavedMigratePlan;
use crate::steps::status::report::StatusReport;

/// What a command adds to `result` after a run, by command.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum CommandResult {
    /// `install`, and `asm apply` of an install plan.
    Install(InstallResult),
    /// `install-gateway`.
    Gateway(GatewayResult),
    /// `migrate`.
    Migrate(crate::commands::migrate::MigrateResult),
    /// `enable-dataplane`, `rollback`, `migrate --finish`.
    Replan(ReplanResult),
    /// `create-mesh`, `create-remote-secret --apply-to`, and `asm apply` of their plans.
    Secrets(SecretsResult),
}

/// A saved plan (`--plan-out`), by the command that saved it (`saved.command`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SavedPlanDocument {
    /// `install --plan-out`.
    Install(InstallPlan),
    /// `create-mesh --plan-out`, `create-remote-secret --apply-to … --plan-out`.
    Secrets(SavedSecretPlan),
    /// `enable-dataplane --plan-out`, `install-gateway --plan-out`.
    Dataplane(SavedDataplanePlan),
    /// `migrate --plan-out`, `rollback --plan-out`.
    Migrate(SavedMigratePlan),
}

/// One published schema: its file under `schemas/`, and the schema.
#[derive(Debug, Clone)]
pub struct Published {
    pub file: &'static str,
    pub schema: Schema,
}

/// `T`'s schema as serialized (fields skipped when empty are optional), titled `id`.
fn schema_of<T: JsonSchema>(id: &str, description: &str) -> Schema {
    let mut schema = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>();
    schema.insert("title".into(), id.into());
    schema.insert("description".into(), description.into());
    schema
}

/// Every published schema, in file-name order.
pub fn all() -> Vec<Published> {
    vec![
        Published {
            file: "asm.plan.v1.json",
            schema: schema_of::<PlanDocument<CommandResult>>(
                "asm.plan/v1",
                "A plan: `-o json` of the commands that change things (and `asm validate`), \
                 `plan.json` in `-D`; after a run, with `result`.",
            ),
        },
        Published {
            file: "asm.run.v1.json",
            schema: schema_of::<RunReport>(
                "asm.run/v1",
                "The run report (`run.json` in `-D`): every action's outcome and the prior \
                 state of what it changed.",
            ),
        },
        Published {
            file: "asm.saved-plan.v1.json",
            schema: schema_of::<SavedPlanDocument>(
                "asm.plan/v1 (saved)",
                "A saved plan (`--plan-out FILE`, applied by `asm apply FILE`): the plan with \
                 a payload on every action, the inputs and a fingerprint of what was observed.",
            ),
        },
        Published {
            file: "asm.status.v1.json",
            schema: schema_of::<StatusReport>(
                "asm.status/v1",
                "`asm status -o json`: where each cluster stands, and the verdicts of \
                 `--require ready|migrated`.",
            ),
        },
    ]
}

/// A schema as its committed file: pretty JSON with a final newline.
pub fn file_text(schema: &Schema) -> String {
    crate::plan::document::pretty(schema)
}
