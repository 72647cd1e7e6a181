//! Execution (I/O) of a data plane plan: fleet steps through install's executor, Kubernetes
//! steps through the shared executor ([`crate::steps::kube_actions::run_kube_step`]).

use std::sync::Arc;

use crate::error::Error;
use crate::plan::Action;
use crate::plan::record::Effect;
use crate::steps::apply::Executor;
use crate::steps::kube_actions::run_kube_step;
use crate::transport::ProgressFn;

use super::DataplaneStep;

/// Runs the actions of a data plane plan.
#[derive(Debug, Clone)]
pub struct DataplaneExecutor {
    /// Install's executor: its clients, spec, Kubernetes connections and deadline.
    pub mesh: Executor,
}

impl DataplaneExecutor {
    /// Runs one action; returns the prior state of what it changed.
    pub async fn run(&self, action: &Action<DataplaneStep>) -> Result<Effect, Error> {
        match &action.payload {
            DataplaneStep::Fleet(step) => {
                let fleet = Action {
                    id: action.id.clone(),
                    op: action.op,
                    cluster: action.cluster.clone(),
                    target: action.target.clone(),
                    reason: action.reason.clone(),
                    depends_on: action.depends_on.clone(),
                    would: action.would.clone(),
                    done: action.done.clone(),
                    estimate: action.estimate,
                    payload: step.clone(),
                };
                self.mesh.run(&fleet).await.map(Effect::from)
            }
            DataplaneStep::Kube { cluster, step } => {
                let ctx = self
                    .mesh
                    .handles
                    .kube
                    .get(*cluster)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| {
                        Error::apply(
                            "ASM-E450",
                            format!("no Kubernetes connection to cluster #{cluster}"),
                        )
                    })?;
                let printer = self.mesh.printer.clone();
                let id = action.id.clone();
                let progress: Arc<ProgressFn> =
                    Arc::new(move |line: &str| printer.detail(&format!("  {id}: {line}")));
                run_kube_step(&ctx.client, step, self.mesh.deadline, Some(&*progress)).await
            }
        }
    }
}
