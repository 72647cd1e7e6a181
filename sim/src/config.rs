//! The sandbox configuration: which scenario, how it is tuned, which faults are injected.
//! The same type backs `asm sandbox serve` flags and tests.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Everything needed to start a sandbox.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Scenario name: `fresh`, `installed`, `missing-permission`, `fleet-N`.
    pub scenario: String,
    /// `key=value` knobs applied to the scenario (see [`crate::Scenario::apply_set`]).
    pub sets: Vec<(String, String)>,
    /// Injected faults, tried in order.
    pub faults: Vec<Fault>,
    /// Seed of the fault injector's random choices, so a failing run can be replayed.
    pub seed: u64,
    /// Latency added to every request received on a socket.
    pub latency: Duration,
    /// Where to append one JSON line per request.
    pub request_log: Option<PathBuf>,
    /// Port of the Google API server; `None` = OS-assigned.
    pub port: Option<u16>,
    /// Directory for the token file and kubeconfig; `None` = a fresh temporary directory.
    pub state_dir: Option<PathBuf>,
}

impl SimConfig {
    /// A configuration for `scenario` with no knobs and no faults.
    pub fn new(scenario: impl Into<String>) -> Self {
        SimConfig {
            scenario: scenario.into(),
            sets: Vec::new(),
            faults: Vec::new(),
            seed: 0,
            latency: Duration::ZERO,
            request_log: None,
            port: None,
            state_dir: None,
        }
    }

    /// Adds a `key=value` knob.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.sets.push((key.to_string(), value.to_string()));
        self
    }

    /// Adds a fault given in the `--fault` syntax.
    pub fn fault(mut self, spec: &str) -> Result<Self> {
        self.faults.push(Fault::parse(spec)?);
        Ok(self)
    }

    /// Sets the request log file.
    pub fn request_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.request_log = Some(path.into());
        self
    }

    /// Sets the per-request latency.
    pub fn latency_ms(mut self, ms: u64) -> Self {
        self.latency = Duration::from_millis(ms);
        self
    }

    /// Sets the fault seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Parses one `--set key=value` argument.
pub fn parse_set(arg: &str) -> Result<(String, String)> {
    let (k, v) = arg
        .split_once('=')
        .with_context(|| format!("--set {arg:?}: expected key=value"))?;
    if k.is_empty() {
        bail!("--set {arg:?}: the key is empty");
    }
    Ok((k.to_string(), v.to_string()))
}

/// What an injected fault does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 503 UNAVAILABLE.
    Unavailable,
    /// 429 RESOURCE_EXHAUSTED with `Retry-After`.
    TooManyRequests,
    /// 500 INTERNAL.
    Internal,
    /// The connection is closed without a response, before the request is processed.
    Drop,
    /// The request is processed, then the connection is closed without the response (the
    /// answer is lost: a client cannot tell whether its write was made).
    Lost,
    /// A latency spike: the request is answered normally after `delay`.
    Slow { delay: Duration },
    /// Token expiry: the request's bearer token is revoked before the request is served, so
    /// it is answered as an expired token is (401) and only a new token works again. A
    /// request without a token the sandbox issued is served normally.
    Expire,
}

/// The delay of a `slow` fault without `ms=N`.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(2);

impl FaultKind {
    /// HTTP status a request with this fault is answered with; `None` for a dropped
    /// connection and for a slow answer (whatever the request gets).
    pub fn status(self) -> Option<u16> {
        match self {
            FaultKind::Unavailable => Some(503),
            FaultKind::TooManyRequests => Some(429),
            FaultKind::Internal => Some(500),
            FaultKind::Expire => Some(401),
            FaultKind::Drop | FaultKind::Lost | FaultKind::Slow { .. } => None,
        }
    }
}

/// One injected fault: requests whose `[METHOD ]PATH` matches `route` fail with `kind`
/// with probability `rate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Optional HTTP method the fault is limited to.
    pub method: Option<String>,
    /// Glob over the raw path (without query); `*` matches any run of characters.
    pub route: String,
    pub kind: FaultKind,
    /// Probability in `[0, 1]`.
    pub rate: f64,
}

impl Fault {
    /// Parses `[METHOD ]ROUTE_GLOB:KIND[,rate=R][,ms=N]`, KIND one of `503`, `429`, `500`,
    /// `drop`, `lost`, `slow` (`ms=N`: its delay, 2000 by default) or `expire`.
    pub fn parse(spec: &str) -> Result<Fault> {
        let (route_part, action) = spec.rsplit_once(':').with_context(|| {
            format!(
                "--fault {spec:?}: expected ROUTE_GLOB:503|429|500|drop|lost|slow|expire[,rate=R][,ms=N]"
            )
        })?;
        let mut parts = action.split(',');
        let mut kind = match parts.next().unwrap_or_default().trim() {
            "503" => FaultKind::Unavailable,
            "429" => FaultKind::TooManyRequests,
            "500" => FaultKind::Internal,
            "drop" => FaultKind::Drop,
            "lost" => FaultKind::Lost,
            "slow" => FaultKind::Slow {
                delay: DEFAULT_SLOW_DELAY,
            },
            "expire" => FaultKind::Expire,
            other => {
                bail!(
                    "--fault {spec:?}: unknown fault {other:?} (expected 503, 429, 500, drop, lost, slow or expire)"
                )
            }
        };
        let mut rate = 1.0;
        for p in parts {
            match (p.trim().split_once('='), &mut kind) {
                (Some(("rate", r)), _) => {
                    rate = r
                        .parse::<f64>()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .with_context(|| {
                            format!("--fault {spec:?}: rate must be a number in [0, 1]")
                        })?;
                }
                (Some(("ms", ms)), FaultKind::Slow { delay }) => {
                    *delay = ms
                        .parse::<u64>()
                        .map(Duration::from_millis)
                        .with_context(|| {
                            format!("--fault {spec:?}: ms must be a whole number of milliseconds")
                        })?;
                }
                _ => bail!(
                    "--fault {spec:?}: unknown option {p:?} (expected rate=R, or ms=N after slow)"
                ),
            }
        }
        let route_part = route_part.trim();
        let (method, route) = match route_part.split_once(' ') {
            Some((m, r)) if m.chars().all(|c| c.is_ascii_uppercase()) => {
                (Some(m.to_string()), r.trim().to_string())
            }
            _ => (None, route_part.to_string()),
        };
        if route.is_empty() {
            bail!("--fault {spec:?}: the route glob is empty");
        }
        Ok(Fault {
            method,
            route,
            kind,
            rate,
        })
    }

    /// Whether this fault applies to a request (before the dice are rolled).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && glob_match(&self.route, path)
    }
}

/// `*` matches any run of characters (including `/`); everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Simulated durations of asynchronous work. Tunable with `--set timing.NAME=MS`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// A GKE operation (setResourceLabels, cluster update) runs this long.
    pub gke_op: Duration,
    /// A Service Usage operation runs this long (zero: the reply is already `done`).
    pub serviceusage_op: Duration,
    /// A GKE Hub operation runs this long.
    pub hub_op: Duration,
    /// From servicemesh feature + membership to the ControlPlaneRevision CRD in the cluster.
    pub crd_install: Duration,
    /// From a ControlPlaneRevision's creation to `ProvisioningFinished=True`.
    pub cpr_ready: Duration,
    /// From a token Secret's creation to its `token`/`ca.crt` being filled in.
    pub token_fill: Duration,
    /// From a Namespace's deletion to it being gone (when nothing blocks it).
    pub namespace_finalize: Duration,
    /// From a Pod's creation to Running and Ready (Pending until then).
    pub pod_ready: Duration,
    /// From a LoadBalancer Service's creation to its `status.loadBalancer.ingress[0].ip`.
    pub lb_ip: Duration,
    /// From a DataPlaneControl's creation to `status.state: Ready`.
    pub mdp_ready: Duration,
    /// How often the managed data plane's upgrader looks for outdated proxies (it evicts
    /// at most one Pod per ReplicaSet per look).
    pub mdp_evict: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            gke_op: Duration::from_millis(1000),
            serviceusage_op: Duration::ZERO,
            hub_op: Duration::from_millis(1000),
            crd_install: Duration::from_millis(2000),
            cpr_ready: Duration::from_millis(3000),
            token_fill: Duration::from_millis(200),
            namespace_finalize: Duration::from_millis(500),
            pod_ready: Duration::from_millis(300),
            lb_ip: Duration::from_millis(1000),
            mdp_ready: Duration::from_millis(2000),
            mdp_evict: Duration::from_millis(500),
        }
    }
}

impl Timing {
    /// Applies `timing.NAME=MS`; returns false when `name` is not a timing knob.
    pub fn apply_set(&mut self, name: &str, value: &str) -> Result<bool> {
        let slot = match name {
            "gke_op_ms" => &mut self.gke_op,
            "serviceusage_op_ms" => &mut self.serviceusage_op,
            "hub_op_ms" => &mut self.hub_op,
            "crd_install_ms" => &mut self.crd_install,
            "cpr_ready_ms" => &mut self.cpr_ready,
            "token_fill_ms" => &mut self.token_fill,
            "namespace_finalize_ms" => &mut self.namespace_finalize,
            "pod_ready_ms" => &mut self.pod_ready,
            "lb_ip_ms" => &mut self.lb_ip,
            "mdp_ready_ms" => &mut self.mdp_ready,
            "mdp_evict_ms" => &mut self.mdp_evict,
            _ => return Ok(false),
        };
        let ms: u64 = value
            .parse()
            .with_context(|| format!("--set timing.{name}={value}: expected milliseconds"))?;
        *slot = Duration::from_millis(ms);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fault_with_method_and_rate() {
        let f = Fault::parse("POST /container/*:setResourceLabels:503,rate=0.25").unwrap();
        assert_eq!(f.method.as_deref(), Some("POST"));
        assert_eq!(f.route, "/container/*:setResourceLabels");
        assert_eq!(f.kind, FaultKind::Unavailable);
        assert!((f.rate - 0.25).abs() < 1e-9);
        assert!(f.matches(
            "post",
            "/container/v1/projects/p/locations/l/clusters/c:setResourceLabels"
        ));
        assert!(!f.matches(
            "GET",
            "/container/v1/projects/p/locations/l/clusters/c:setResourceLabels"
        ));
    }

    #[test]
    fn parses_fault_defaults_and_rejects_bad_ones() {
        let f = Fault::parse("*:drop").unwrap();
        assert_eq!((f.kind, f.rate, f.method), (FaultKind::Drop, 1.0, None));
        let f = Fault::parse("POST /gkehub/*:lost,rate=0.5").unwrap();
        assert_eq!(
            (f.kind, f.rate, f.method.as_deref()),
            (FaultKind::Lost, 0.5, Some("POST"))
        );
        assert!(Fault::parse("*:404").is_err());
        assert!(Fault::parse("*:503,rate=2").is_err());
        assert!(Fault::parse("*:503,bogus=1").is_err());
        assert!(Fault::parse("no-colon").is_err());
    }

    #[test]
    fn parses_slow_with_default_or_given_delay_and_expire() {
        let f = Fault::parse("*:slow,rate=0.1").unwrap();
        assert_eq!(
            (f.kind, f.rate),
            (
                FaultKind::Slow {
                    delay: Duration::from_secs(2)
                },
                0.1
            )
        );
        let f = Fault::parse("GET /api/*:slow,ms=250,rate=0.5").unwrap();
        assert_eq!(
            f.kind,
            FaultKind::Slow {
                delay: Duration::from_millis(250)
            }
        );
        assert_eq!(f.rate, 0.5);
        let f = Fault::parse("*:expire,rate=0.02").unwrap();
        assert_eq!((f.kind, f.rate), (FaultKind::Expire, 0.02));
        assert_eq!(f.kind.status(), Some(401));
        // A delay belongs to slow only, and is whole milliseconds.
        assert!(Fault::parse("*:503,ms=10").is_err());
        assert!(Fault::parse("*:expire,ms=10").is_err());
        assert!(Fault::parse("*:slow,ms=1.5").is_err());
        assert!(Fault::parse("*:slow,ms=-1").is_err());
    }

    #[test]
    fn glob_matches_like_a_shell_star() {
        assert!(glob_match("*", "/anything/at/all"));
        assert!(glob_match(
            "/gkehub/*/memberships*",
            "/gkehub/v1/projects/p/locations/-/memberships"
        ));
        assert!(!glob_match("/gkehub/*", "/container/v1"));
        assert!(glob_match("/a*b*c", "/aXXbYYc"));
        assert!(!glob_match("/a*b*c", "/aXXbYY"));
    }

    #[test]
    fn timing_knobs() {
        let mut t = Timing::default();
        assert!(t.apply_set("gke_op_ms", "0").unwrap());
        assert_eq!(t.gke_op, Duration::ZERO);
        assert!(!t.apply_set("nope", "1").unwrap());
        assert!(t.apply_set("hub_op_ms", "x").is_err());
    }
}
