//! Execution (I/O) of a migrate or rollback plan: Kubernetes steps through the shared
//! executor ([`crate::steps::kube_actions::run_kube_step`]), pod-template changes through
//! [`crate::kube::template`].

use std::sync::Arc;

use tokio::time::Instant;

use super::{ClusterStep, MigrateStep};
use crate::error::Error;
use crate::kube::KubeContext;
use crate::kube::template::{set_template_labels, undo_to_revision};
use crate::output::Printer;
use crate::plan::Action;
use crate::plan::record::Effect;
use crate::steps::kube_actions::run_kube_step;
use crate::transport::ProgressFn;

/// Runs the actions of a migrate or rollback plan.
#[derive(Debug, Clone)]
pub struct MigrateExecutor {
    /// Kubernetes connections, in the spec's cluster order.
    pub kube: Vec<Option<KubeContext>>,
    /// When waits give up (from `--timeout`).
    pub deadline: Instant,
    pub printer: Printer,
}

impl MigrateExecutor {
    /// Runs one action; returns the prior state of what it changed.
    pub async fn run(&self, action: &Action<ClusterStep>) -> Result<Effect, Error> {
        let cluster = action.payload.cluster;
        let ctx = self
            .kube
            .get(cluster)
            .and_then(Option::as_ref)
            .ok_or_else(|| {
                Error::apply(
                    "ASM-E450",
                    format!("no Kubernetes connection to cluster #{cluster}"),
                )
            })?;
        match &action.payload.step {
            MigrateStep::Kube(step) => {
                let printer = self.printer.clone();
                let id = action.id.clone();
                let progress: Arc<ProgressFn> =
                    Arc::new(move |line: &str| printer.detail(&format!("  {id}: {line}")));
                run_kube_step(&ctx.client, step, self.deadline, Some(&*progress)).await
            }
            MigrateStep::SetTemplateLabels {
                namespace,
                name,
                labels,
            } => set_template_labels(&ctx.client, namespace, name, labels)
                .await
                .map(Effect::from)
                .map_err(Error::from),
            MigrateStep::Undo {
                namespace,
                name,
                revision,
            } => undo_to_revision(&ctx.client, namespace, name, revision)
                .await
                .map(Effect::from)
                .map_err(Error::from),
        }
    }
}
