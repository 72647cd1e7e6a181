//! Services: what the apiserver's Service REST storage does after decoding (ClusterIP and
//! NodePort allocation, carrying allocated values over on update, dropping fields a type
//! change makes meaningless), the `kubernetes` Service the apiserver maintains, and what
//! GKE's service controller does for type LoadBalancer (an external address, written to
//! `status.loadBalancer`).
//!
//! Upstream: kubernetes/kubernetes pkg/registry/core/service/storage/alloc.go and
//! pkg/registry/core/service/strategy.go (`patchAllocatedValues`, `dropTypeDependentFields`).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::KubeApiServer;
use super::registry::ResourceType;
use super::status::Cause;
use super::store::State;
use super::util::{self, Rng};

/// The Service CIDR (a /24, as the golden recordings' server used): `10.0.0.x`.
const CLUSTER_IP_PREFIX: &str = "10.0.0.";
/// How the CIDR is named in messages.
const SERVICE_CIDR: &str = "10.0.0.0/24";
/// The `kubernetes` Service takes the first address of the range.
const KUBERNETES_SERVICE_IP: &str = "10.0.0.1";
/// The default `--service-node-port-range`.
const NODE_PORT_MIN: u64 = 30000;
const NODE_PORT_MAX: u64 = 32767;
/// External addresses come from TEST-NET-2 (RFC 5737), which no real network routes.
const LB_IP_PREFIX: &str = "198.51.100.";
/// The field manager of load-balancer status writes.
const SERVICE_CONTROLLER: &str = "cloud-controller-manager";

fn spec_str<'a>(svc: &'a Value, field: &str) -> Option<&'a str> {
    svc.get("spec")
        .and_then(|s| s.get(field))
        .and_then(Value::as_str)
}

fn service_type(svc: &Value) -> &str {
    spec_str(svc, "type").unwrap_or("ClusterIP")
}

/// Whether the type gets nodePorts (LoadBalancer unless `allocateLoadBalancerNodePorts: false`).
fn needs_node_ports(svc: &Value) -> bool {
    match service_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => svc.pointer("/spec/allocateLoadBalancerNodePorts") != Some(&json!(false)),
        _ => false,
    }
}

fn ports(svc: &Value) -> impl Iterator<Item = &Value> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The ClusterIPs and nodePorts other Services hold.
#[derive(Debug, Default)]
struct InUse {
    cluster_ips: BTreeSet<String>,
    node_ports: BTreeSet<u64>,
}

fn in_use(st: &State, namespace: &str, name: &str) -> InUse {
    let mut used = InUse::default();
    for (k, svc) in &st.objects {
        if !k.group.is_empty()
            || k.plural != "services"
            || (k.namespace == namespace && k.name == name)
        {
            continue;
        }
        for ip in svc
            .pointer("/spec/clusterIPs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            used.cluster_ips.insert(ip.to_string());
        }
        used.node_ports
            .extend(ports(svc).filter_map(|p| p.get("nodePort").and_then(Value::as_u64)));
    }
    used
}

/// A random free member of `candidates`, as the bitmap allocators pick.
fn pick_free<T: Clone>(candidates: Vec<T>, rng: &mut Rng) -> Option<T> {
    if candidates.is_empty() {
        return None;
    }
    let i = (rng.next_u64() % candidates.len() as u64) as usize;
    candidates.get(i).cloned()
}

fn free_cluster_ip(used: &InUse, rng: &mut Rng) -> Option<String> {
    // .0 is the network address, .255 broadcast, .1 the kubernetes Service's.
    let free: Vec<String> = (2..=254)
        .map(|n| format!("{CLUSTER_IP_PREFIX}{n}"))
        .filter(|ip| !used.cluster_ips.contains(ip))
        .collect();
    pick_free(free, rng)
}

fn free_node_port(used: &BTreeSet<u64>, rng: &mut Rng) -> Option<u64> {
    let free: Vec<u64> = (NODE_PORT_MIN..=NODE_PORT_MAX)
        .filter(|p| !used.contains(p))
        .collect();
    pick_free(free, rng)
}

fn in_service_cidr(ip: &str) -> bool {
    ip.strip_prefix(CLUSTER_IP_PREFIX)
        .and_then(|n| n.parse::<u16>().ok())
        .is_some_and(|n| (1..=254).contains(&n))
}

/// Go's `%#v` of a `[]string`, as allocation errors quote it.
fn go_strings(v: &[&str]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// Carries allocated values over from `old` where the update left them out, matching
/// nodePorts by port name (upstream `patchAllocatedValues`).
fn patch_allocated_values(old: &Value, new: &mut Value) {
    let keep_ip = |v: &Value| service_type(v) != "ExternalName";
    if keep_ip(old) && keep_ip(new) {
        let spec = util::ensure_obj(new, &["spec"]);
        let missing = |m: &Map<String, Value>, k: &str| {
            m.get(k)
                .is_none_or(|v| v.is_null() || v == "" || v == &json!([]))
        };
        for k in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            if missing(spec, k)
                && let Some(v) = old.pointer(&format!("/spec/{k}"))
            {
                spec.insert(k.into(), v.clone());
            }
        }
    }
    if needs_node_ports(old) && needs_node_ports(new) {
        let old_ports: Vec<(String, u64)> = ports(old)
            .filter_map(|p| {
                Some((
                    p.get("name").and_then(Value::as_str).unwrap_or("").into(),
                    p.get("nodePort").and_then(Value::as_u64)?,
                ))
            })
            .collect();
        let taken: BTreeSet<u64> = ports(new)
            .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
            .collect();
        for p in new
            .pointer_mut("/spec/ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if p.get("nodePort").and_then(Value::as_u64).is_some() {
                continue;
            }
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            if let Some((_, np)) = old_ports.iter().find(|(n, _)| n == name)
                && !taken.contains(np)
                && let Some(m) = p.as_object_mut()
            {
                m.insert("nodePort".into(), json!(np));
            }
        }
    }
}

/// Clears what the new type does not use, where the update did not change it itself
/// (upstream `dropTypeDependentFields`).
fn drop_type_dependent_fields(old: &Value, new: &mut Value) {
    let same = |new: &Value, ptr: &str| old.pointer(ptr) == new.pointer(ptr);
    if service_type(new) == "ExternalName" {
        for k in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            if same(new, &format!("/spec/{k}")) {
                util::remove_path(new, &["spec", k]);
            }
        }
    }
    if !needs_node_ports(new) && needs_node_ports(old) {
        let old_ports: Vec<Option<u64>> = ports(old)
            .map(|p| p.get("nodePort").and_then(Value::as_u64))
            .collect();
        let new_ports: Vec<Option<u64>> = ports(new)
            .map(|p| p.get("nodePort").and_then(Value::as_u64))
            .collect();
        // Only when every nodePort is what it was: a user who changed one meant it.
        let unchanged = new_ports
            .iter()
            .all(|np| np.is_none() || old_ports.contains(np));
        if unchanged {
            for p in new
                .pointer_mut("/spec/ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(m) = p.as_object_mut() {
                    m.remove("nodePort");
                }
            }
        }
    }
    let ty = service_type(new).to_string();
    if ty != "LoadBalancer" && same(new, "/spec/allocateLoadBalancerNodePorts") {
        util::remove_path(new, &["spec", "allocateLoadBalancerNodePorts"]);
    }
    if ty != "LoadBalancer" && ty != "NodePort" && same(new, "/spec/externalTrafficPolicy") {
        util::remove_path(new, &["spec", "externalTrafficPolicy"]);
    }
    if ty != "LoadBalancer" && same(new, "/spec/healthCheckNodePort") {
        util::remove_path(new, &["spec", "healthCheckNodePort"]);
    }
}

/// Allocates a Service's ClusterIP(s), IP families and nodePorts (for an update, after
/// carrying the old allocations over). The errors are `spec` causes for a 422.
pub fn allocate(
    st: &mut State,
    rt: &ResourceType,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), Vec<Cause>> {
    if !rt.group.is_empty() || rt.kind != "Service" {
        return Ok(());
    }
    if let Some(old) = old {
        patch_allocated_values(old, obj);
        drop_type_dependent_fields(old, obj);
    }
    let namespace = util::get_str(obj, &["metadata", "namespace"])
        .unwrap_or_default()
        .to_string();
    let name = util::get_str(obj, &["metadata", "name"])
        .unwrap_or_default()
        .to_string();
    let used = in_use(st, &namespace, &name);
    let mut causes = Vec::new();
    allocate_cluster_ip(obj, old, &used, &mut st.rng, &mut causes);
    allocate_node_ports(obj, old, &used, &mut st.rng, &mut causes);
    if causes.is_empty() {
        Ok(())
    } else {
        Err(causes)
    }
}

fn allocate_cluster_ip(
    obj: &mut Value,
    old: Option<&Value>,
    used: &InUse,
    rng: &mut Rng,
    causes: &mut Vec<Cause>,
) {
    if service_type(obj) == "ExternalName" {
        return;
    }
    let headless_without_selector = spec_str(obj, "clusterIP") == Some("None")
        && obj
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
    let old_ip = old.and_then(|o| spec_str(o, "clusterIP")).map(String::from);
    let spec = util::ensure_obj(obj, &["spec"]);
    let requested = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("clusterIPs")
                .and_then(|v| v.get(0))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .map(String::from);
    let ip = match requested {
        Some(ip) if old_ip.as_deref() == Some(ip.as_str()) => ip,
        Some(ip) if old_ip.as_deref().is_some_and(|o| !o.is_empty()) => {
            causes.push(Cause::new(
                "FieldValueInvalid",
                "spec.clusterIPs[0]",
                format!(
                    "Invalid value: {}: may not change once set",
                    go_strings(&[&ip])
                ),
            ));
            return;
        }
        Some(ip) if ip == "None" => ip,
        Some(ip) => {
            let problem = if !in_service_cidr(&ip) {
                Some(format!(
                    "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"
                ))
            } else if used.cluster_ips.contains(&ip) || ip == KUBERNETES_SERVICE_IP {
                Some("provided IP is already allocated".to_string())
            } else {
                None
            };
            if let Some(p) = problem {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    "spec.clusterIPs",
                    format!(
                        "Invalid value: {}: failed to allocate IP {ip}: {p}",
                        go_strings(&[&ip])
                    ),
                ));
                return;
            }
            ip
        }
        None => match free_cluster_ip(used, rng) {
            Some(ip) => ip,
            None => {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    "spec.clusterIPs",
                    format!("Invalid value: []string(nil): failed to allocate IP: range is full ({SERVICE_CIDR})"),
                ));
                return;
            }
        },
    };
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
    // A headless Service without selector may have addresses of every family the cluster
    // has (upstream `initIPFamilyFields`); this cluster is single-stack IPv4.
    let policy = if headless_without_selector {
        "RequireDualStack"
    } else {
        "SingleStack"
    };
    spec.entry("ipFamilyPolicy").or_insert(json!(policy));
}

fn allocate_node_ports(
    obj: &mut Value,
    old: Option<&Value>,
    used: &InUse,
    rng: &mut Rng,
    causes: &mut Vec<Cause>,
) {
    if !needs_node_ports(obj) {
        return;
    }
    let old_ports: BTreeSet<u64> = old
        .into_iter()
        .flat_map(ports)
        .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
        .collect();
    let mut taken = used.node_ports.clone();
    let Some(list) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
        return;
    };
    // Requested ports first, so an allocated one never takes a port asked for later.
    for (i, p) in list.iter().enumerate() {
        let Some(np) = p.get("nodePort").and_then(Value::as_u64) else {
            continue;
        };
        let problem = if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&np) {
            Some(format!(
                "provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}"
            ))
        } else if taken.contains(&np) && !old_ports.contains(&np) {
            Some("provided port is already allocated".to_string())
        } else {
            None
        };
        if let Some(p) = problem {
            causes.push(Cause::new(
                "FieldValueInvalid",
                format!("spec.ports[{i}].nodePort"),
                format!("Invalid value: {np}: {p}"),
            ));
        }
        taken.insert(np);
    }
    for p in list.iter_mut() {
        let Some(m) = p.as_object_mut() else { continue };
        if m.get("nodePort").and_then(Value::as_u64).is_some() {
            continue;
        }
        match free_node_port(&taken, rng) {
            Some(np) => {
                taken.insert(np);
                m.insert("nodePort".into(), json!(np));
            }
            None => causes.push(Cause::new(
                "FieldValueInvalid",
                "spec.ports",
                format!("Invalid value: 0: failed to allocate a nodePort: range is full ({NODE_PORT_MIN}-{NODE_PORT_MAX})"),
            )),
        }
    }
}

/// The `kubernetes` Service in `default` that the apiserver maintains.
pub fn kubernetes_service() -> Value {
    json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": "kubernetes", "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 443}],
            "clusterIP": KUBERNETES_SERVICE_IP, "clusterIPs": [KUBERNETES_SERVICE_IP],
            "type": "ClusterIP", "sessionAffinity": "None",
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
        },
        "status": {"loadBalancer": {}},
    })
}

/// What the service controller has to do about a Service.
#[derive(Debug, PartialEq, Eq)]
enum LbAction {
    Provision,
    Release,
    Nothing,
}

fn lb_action(svc: &Value) -> LbAction {
    let has_ingress = svc
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let deleting = svc.pointer("/metadata/deletionTimestamp").is_some();
    match (
        service_type(svc) == "LoadBalancer" && !deleting,
        has_ingress,
    ) {
        (true, false) => LbAction::Provision,
        (false, true) => LbAction::Release,
        _ => LbAction::Nothing,
    }
}

fn lb_ips_in_use(st: &State) -> BTreeSet<String> {
    st.objects
        .iter()
        .filter(|(k, _)| k.group.is_empty() && k.plural == "services")
        .flat_map(|(_, v)| {
            v.pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| i.get("ip").and_then(Value::as_str))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

impl KubeApiServer {
    /// After a Service is written: GKE's service controller provisions a load balancer
    /// for type LoadBalancer (after `timing.lb_ip`) and releases it when the type changes.
    pub(super) fn service_written(&self, rt: &ResourceType, svc: &Value) {
        if !rt.group.is_empty() || rt.kind != "Service" || lb_action(svc) == LbAction::Nothing {
            return;
        }
        let ns = util::get_str(svc, &["metadata", "namespace"])
            .unwrap_or_default()
            .to_string();
        let name = util::get_str(svc, &["metadata", "name"])
            .unwrap_or_default()
            .to_string();
        self.later(self.timing.lb_ip, move |s| {
            s.reconcile_load_balancer(&ns, &name)
        });
    }

    /// The service controller's sync of one Service's `status.loadBalancer`.
    fn reconcile_load_balancer(&self, ns: &str, name: &str) {
        let mut st = self.lock();
        let Some(rt) = st.type_for_kind("v1", "Service") else {
            return;
        };
        let Some(svc) = st.get(&rt, ns, name).cloned() else {
            return;
        };
        let ingress = match lb_action(&svc) {
            LbAction::Nothing => return,
            LbAction::Release => json!({}),
            LbAction::Provision => {
                let used = lb_ips_in_use(&st);
                let free: Vec<String> = (1..=254)
                    .map(|n| format!("{LB_IP_PREFIX}{n}"))
                    .filter(|ip| !used.contains(ip))
                    .collect();
                let Some(ip) = pick_free(free, &mut st.rng) else {
                    return;
                };
                json!({"ingress": [{"ip": ip, "ipMode": "VIP"}]})
            }
        };
        self.controller_update(&mut st, &rt, ns, name, SERVICE_CONTROLLER, "status", |s| {
            util::set_path(s, &["status", "loadBalancer"], ingress);
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn svc(ty: &str, ports: Value) -> Value {
        json!({"metadata": {"name": "s", "namespace": "n"}, "spec": {"type": ty, "ports": ports}})
    }

    #[test]
    fn node_ports_are_needed_by_nodeport_and_loadbalancer_only() {
        assert!(needs_node_ports(&svc("NodePort", json!([]))));
        assert!(needs_node_ports(&svc("LoadBalancer", json!([]))));
        assert!(!needs_node_ports(&svc("ClusterIP", json!([]))));
        let mut lb = svc("LoadBalancer", json!([]));
        lb["spec"]["allocateLoadBalancerNodePorts"] = json!(false);
        assert!(!needs_node_ports(&lb));
    }

    #[test]
    fn update_without_allocations_keeps_the_old_ones_by_port_name() {
        let mut old = svc(
            "NodePort",
            json!([{"name": "a", "port": 80, "nodePort": 30001}, {"name": "b", "port": 81, "nodePort": 30002}]),
        );
        old["spec"]["clusterIP"] = json!("10.0.0.7");
        old["spec"]["clusterIPs"] = json!(["10.0.0.7"]);
        let mut new = svc(
            "NodePort",
            json!([{"name": "b", "port": 82}, {"name": "c", "port": 83}]),
        );
        patch_allocated_values(&old, &mut new);
        assert_eq!(new["spec"]["clusterIP"], "10.0.0.7");
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30002);
        assert!(new["spec"]["ports"][1].get("nodePort").is_none());
    }

    #[test]
    fn changing_type_to_clusterip_drops_node_ports_and_lb_fields() {
        let mut old = svc("LoadBalancer", json!([{"port": 80, "nodePort": 30001}]));
        old["spec"]["externalTrafficPolicy"] = json!("Cluster");
        old["spec"]["allocateLoadBalancerNodePorts"] = json!(true);
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        drop_type_dependent_fields(&old, &mut new);
        assert!(new["spec"]["ports"][0].get("nodePort").is_none());
        assert!(new["spec"].get("externalTrafficPolicy").is_none());
        assert!(new["spec"].get("allocateLoadBalancerNodePorts").is_none());
    }

    #[test]
    fn lb_action_provisions_loadbalancers_without_ingress_and_releases_other_types() {
        let mut lb = svc("LoadBalancer", json!([]));
        assert_eq!(lb_action(&lb), LbAction::Provision);
        lb["status"] = json!({"loadBalancer": {"ingress": [{"ip": "198.51.100.3"}]}});
        assert_eq!(lb_action(&lb), LbAction::Nothing);
        lb["spec"]["type"] = json!("ClusterIP");
        assert_eq!(lb_action(&lb), LbAction::Release);
        assert_eq!(lb_action(&svc("NodePort", json!([]))), LbAction::Nothing);
    }

    #[test]
    fn go_strings_quotes_like_go() {
        assert_eq!(go_strings(&["10.0.0.5"]), "[]string{\"10.0.0.5\"}");
    }

    #[test]
    fn cluster_ips_are_in_the_service_cidr_but_not_network_or_broadcast() {
        assert!(in_service_cidr("10.0.0.1"));
        assert!(in_service_cidr("10.0.0.254"));
        assert!(!in_service_cidr("10.0.0.0"));
        assert!(!in_service_cidr("10.0.0.255"));
        assert!(!in_service_cidr("10.0.1.5"));
    }
}
