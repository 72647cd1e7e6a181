//! Polling that scales with fleet size: waits for many memberships read the fleet's
//! `servicemesh` Feature — which carries every membership's state (`membershipStates`) — once
//! per poll for all of them, not once per membership. Reads of a project are spaced by a
//! per-project budget ([`FleetPoller::min_interval`]); a waiter that comes sooner gets the
//! last read. Waiters sleep a jittered, growing delay between polls so that a fleet of
//! waiters does not poll in lockstep.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::gkehub::{Feature, GkeHubApi};
use super::http::GcpResult;
use crate::retry::RetryPolicy;

/// The last read of one project's feature.
#[derive(Debug, Clone)]
struct Snapshot {
    read_at: Instant,
    feature: Option<Feature>,
}

/// The last read of one (project, feature), behind the lock its waiters share.
type Slot = Arc<Mutex<Option<Snapshot>>>;

/// Shared (cheap to clone) reader of fleet features under a per-project read budget.
#[derive(Debug, Clone)]
pub struct FleetPoller {
    hub: GkeHubApi,
    /// One lock per project: concurrent waiters of a project share one read.
    projects: Arc<std::sync::Mutex<HashMap<(String, String), Slot>>>,
    min_interval: Duration,
}

impl FleetPoller {
    /// At most one read per `min_interval` per project and feature.
    pub fn new(hub: GkeHubApi, min_interval: Duration) -> Self {
        FleetPoller {
            hub,
            projects: Arc::default(),
            min_interval,
        }
    }

    /// The per-project budget: the least time between two reads of a project's feature.
    pub fn min_interval(&self) -> Duration {
        self.min_interval
    }

    /// Feature `feature` of `project`, read now unless another waiter read it less than
    /// [`FleetPoller::min_interval`] ago (then that read).
    pub async fn feature(&self, project: &str, feature: &str) -> GcpResult<Option<Feature>> {
        let slot = {
            let mut map = match self.projects.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            map.entry((project.to_string(), feature.to_string()))
                .or_default()
                .clone()
        };
        let mut last = slot.lock().await;
        if let Some(s) = last.as_ref()
            && s.read_at.elapsed() < self.min_interval
        {
            return Ok(s.feature.clone());
        }
        let read = self.hub.get_feature(project, feature).await?;
        *last = Some(Snapshot {
            read_at: Instant::now(),
            feature: read.clone(),
        });
        Ok(read)
    }

    /// The jittered delays a waiter sleeps between polls: from the budget's interval,
    /// doubling to 5 s.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let policy = RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: self.min_interval.max(Duration::from_millis(100)) / 2,
            max_backoff: Duration::from_secs(5).max(self.min_interval),
            jitter: true,
            ..RetryPolicy::standard()
        };
        backon::BackoffBuilder::build(policy.backoff())
    }
}
