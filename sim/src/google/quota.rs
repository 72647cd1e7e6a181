//! Per-minute request quotas per project, as Google enforces rate quotas: requests are counted
//! in fixed one-minute intervals per consumer project, separately for reads and writes of
//! each API; a request over the limit is answered 429 RESOURCE_EXHAUSTED with a
//! `google.rpc.ErrorInfo` (reason `RATE_LIMIT_EXCEEDED`) and `Retry-After` (the seconds until
//! the interval ends), and the quota refills at the start of the next interval
//! (https://cloud.google.com/compute/docs/api-rate-limits describes the interval semantics
//! Google's APIs share).
//!
//! Defaults:
//! - Kubernetes Engine API: 600 requests per minute per project
//!   (https://cloud.google.com/kubernetes-engine/quotas, "Limit for API requests"), modelled
//!   as 600 reads and 600 writes per minute.
//! - GKE Hub API: its per-minute request quotas are listed only in each project's Cloud
//!   console (https://cloud.google.com/kubernetes-engine/fleet-management/docs/quotas names
//!   allocation quotas only); the simulator uses 600 reads and 300 writes per minute.
//! - Service Usage and Resource Manager: not limited.
//!
//! Knobs: `--set quota.API.read_per_min=N` / `quota.API.write_per_min=N` (API = `container`,
//! `gkehub`, `serviceusage`, `crm`; 0 = unlimited).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use super::errors::ApiError;

/// Length of a quota interval.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Per-minute limits of one API (0 = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub read_per_min: u32,
    pub write_per_min: u32,
}

/// The per-minute limits of every simulated API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quotas {
    pub container: Limits,
    pub gkehub: Limits,
    pub serviceusage: Limits,
    pub crm: Limits,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            container: Limits {
                read_per_min: 600,
                write_per_min: 600,
            },
            gkehub: Limits {
                read_per_min: 600,
                write_per_min: 300,
            },
            serviceusage: Limits::default(),
            crm: Limits::default(),
        }
    }
}

impl Quotas {
    /// Applies `quota.API.read_per_min=N` / `quota.API.write_per_min=N` (`name` without the
    /// `quota.` prefix).
    pub fn apply_set(&mut self, name: &str, value: &str) -> Result<()> {
        let Some((api, which)) = name.split_once('.') else {
            bail!("--set quota.{name}: expected quota.API.read_per_min or quota.API.write_per_min");
        };
        let limits = match api {
            "container" => &mut self.container,
            "gkehub" => &mut self.gkehub,
            "serviceusage" => &mut self.serviceusage,
            "crm" => &mut self.crm,
            _ => bail!(
                "--set quota.{name}: unknown API {api:?} (container, gkehub, serviceusage, crm)"
            ),
        };
        let n: u32 = value
            .parse()
            .map_err(|_| anyhow::anyhow!("--set quota.{name}={value}: expected a count"))?;
        match which {
            "read_per_min" => limits.read_per_min = n,
            "write_per_min" => limits.write_per_min = n,
            _ => bail!("--set quota.{name}: expected read_per_min or write_per_min"),
        }
        Ok(())
    }

    fn limits(&self, service: &str) -> Limits {
        match service {
            "container.googleapis.com" => self.container,
            "gkehub.googleapis.com" => self.gkehub,
            "serviceusage.googleapis.com" => self.serviceusage,
            "cloudresourcemanager.googleapis.com" => self.crm,
            _ => Limits::default(),
        }
    }
}

/// Counts requests per (project, service, read/write) in the current interval.
#[derive(Debug)]
pub struct Meter {
    quotas: Quotas,
    started: Instant,
    interval: u64,
    counts: HashMap<(String, &'static str, bool), u32>,
}

impl Meter {
    pub fn new(quotas: Quotas) -> Self {
        Meter {
            quotas,
            started: Instant::now(),
            interval: 0,
            counts: HashMap::new(),
        }
    }

    /// Charges one request of `project` to `service`'s read or write quota; the 429 to
    /// answer when the quota of the current interval is used up.
    pub fn charge(
        &mut self,
        now: Instant,
        project: &str,
        project_number: &str,
        service: &'static str,
        write: bool,
    ) -> Result<(), ApiError> {
        let limits = self.quotas.limits(service);
        let limit = if write {
            limits.write_per_min
        } else {
            limits.read_per_min
        };
        if limit == 0 {
            return Ok(());
        }
        let elapsed = now.saturating_duration_since(self.started);
        let interval = elapsed.as_secs() / INTERVAL.as_secs();
        if interval != self.interval {
            self.interval = interval;
            self.counts.clear();
        }
        let count = self
            .counts
            .entry((project.to_string(), service, write))
            .or_insert(0);
        if *count < limit {
            *count += 1;
            return Ok(());
        }
        let interval_end = INTERVAL * (interval as u32 + 1);
        let wait = interval_end.saturating_sub(elapsed);
        Err(exhausted(service, project_number, write, limit, wait))
    }
}

/// 429 RESOURCE_EXHAUSTED as Google's front end sends it for a rate quota.
fn exhausted(
    service: &str,
    project_number: &str,
    write: bool,
    limit: u32,
    wait: Duration,
) -> ApiError {
    let (metric, limit_name) = if write {
        ("Write requests", "Write requests per minute")
    } else {
        ("Read requests", "Read requests per minute")
    };
    let api = service.trim_end_matches(".googleapis.com");
    let mut e = ApiError::new(
        429,
        "RESOURCE_EXHAUSTED",
        format!(
            "Quota exceeded for quota metric '{metric}' and limit '{limit_name}' of service '{service}' for consumer 'project_number:{project_number}'."
        ),
    )
    .detail(json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "RATE_LIMIT_EXCEEDED",
        "domain": "googleapis.com",
        "metadata": {
            "service": service,
            "consumer": format!("projects/{project_number}"),
            "quota_metric": format!("{service}/{}", if write { "write_requests" } else { "read_requests" }),
            "quota_limit": format!("{}PerMinutePerProject", if write { "Write" } else { "Read" }),
            "quota_limit_value": limit.to_string(),
            "quota_location": "global",
            "api": api,
        },
    }));
    // Whole seconds, rounded up, so a client that waits them lands in the next interval.
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    e.headers
        .push(("Retry-After".into(), secs.max(1).to_string()));
    e
}

/// Whether a request only reads (GETs, and the POST methods that read: getIamPolicy,
/// testIamPermissions).
pub fn is_read(method: &str, path: &str) -> bool {
    method == "GET" || path.ends_with(":getIamPolicy") || path.ends_with(":testIamPermissions")
}

/// The consumer project of a request path (`…/projects/P/…` or `…/projects/P:method`).
pub fn project_of(path: &str) -> Option<&str> {
    let rest = path.split("projects/").nth(1)?;
    let end = rest.find(['/', ':']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|p| !p.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_refuses_the_request_over_the_limit_until_the_next_interval() {
        let mut q = Quotas::default();
        q.apply_set("gkehub.write_per_min", "2").unwrap();
        let mut m = Meter::new(q);
        let t0 = m.started;
        let svc = "gkehub.googleapis.com";
        assert!(m.charge(t0, "p", "1", svc, true).is_ok());
        assert!(m.charge(t0, "p", "1", svc, true).is_ok());
        let e = m
            .charge(t0 + Duration::from_secs(15), "p", "1", svc, true)
            .unwrap_err();
        assert_eq!((e.code, e.status), (429, "RESOURCE_EXHAUSTED"));
        assert_eq!(
            e.headers,
            vec![("Retry-After".to_string(), "45".to_string())]
        );
        assert_eq!(e.details[0]["reason"], "RATE_LIMIT_EXCEEDED");
        // Reads, other projects and the next interval are counted apart.
        assert!(m.charge(t0, "p", "1", svc, false).is_ok());
        assert!(m.charge(t0, "q", "2", svc, true).is_ok());
        assert!(m.charge(t0 + INTERVAL, "p", "1", svc, true).is_ok());
    }

    #[test]
    fn zero_means_unlimited_and_bad_knobs_are_refused() {
        let mut q = Quotas::default();
        q.apply_set("container.read_per_min", "0").unwrap();
        let mut m = Meter::new(q.clone());
        let t0 = m.started;
        for _ in 0..2000 {
            assert!(
                m.charge(t0, "p", "1", "container.googleapis.com", false)
                    .is_ok()
            );
        }
        assert!(q.apply_set("nope.read_per_min", "1").is_err());
        assert!(q.apply_set("gkehub.reads", "1").is_err());
        assert!(q.apply_set("gkehub.read_per_min", "x").is_err());
    }

    #[test]
    fn paths_name_their_project_and_reads() {
        assert_eq!(
            project_of("v1/projects/p-1/locations/-/clusters"),
            Some("p-1")
        );
        assert_eq!(project_of("v1/projects/p-1:getIamPolicy"), Some("p-1"));
        assert_eq!(project_of("v1/operations/x"), None);
        assert!(is_read("POST", "v1/projects/p:testIamPermissions"));
        assert!(!is_read("POST", "v1/projects/p/locations/global/features"));
    }
}
