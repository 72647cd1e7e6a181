//! What GKE runs below the controllers: three Nodes per cluster, the scheduler (each new
//! Pod is bound to the Node running the fewest Pods) and the kubelets (a bound Pod is
//! Pending with its containers being created, then Running and Ready after
//! `timing.pod_ready`; Pods of a workload set `ready=false` crash-loop instead; Pods of a
//! Job run to completion).

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::KubeApiServer;
use super::kinds;
use super::registry::ResourceType;
use super::store::State;
use super::util::{self, now_rfc3339};
use super::workloads::{KCM, PodPlacement, being_deleted, meta_str, owner_ref};

/// Nodes per cluster (GKE's default pool of three).
const NODES: usize = 3;
const KUBELET: &str = "kubelet";
const SCHEDULER: &str = "kube-scheduler";

/// The names of a cluster's Nodes: `gke-<cluster>-default-pool-<8 hex>-<4 chars>`, stable
/// per cluster name.
pub fn node_names(cluster: &str) -> Vec<String> {
    let d = Sha256::digest(format!("asm-sim/nodes/{cluster}").as_bytes());
    let group: String = d.iter().take(4).map(|b| format!("{b:02x}")).collect();
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..NODES)
        .map(|i| {
            let suffix: String = d[4 + i * 4..8 + i * 4]
                .iter()
                .map(|b| CHARS[usize::from(*b) % CHARS.len()] as char)
                .collect();
            format!("gke-{cluster}-default-pool-{group}-{suffix}")
        })
        .collect()
}

/// A Ready Node as GKE registers it.
fn node_object(name: &str, index: usize, zone: &str, kubelet_version: &str) -> Value {
    let now = now_rfc3339();
    let cond = |ty: &str, status: &str, reason: &str, message: &str| json!({"type": ty, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": now, "reason": reason, "message": message});
    let region = zone.rsplit_once('-').map(|(r, _)| r).unwrap_or(zone);
    json!({
        "kind": "Node", "apiVersion": "v1",
        "metadata": {"name": name, "labels": {
            "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/instance-type": "e2-standard-4",
            "beta.kubernetes.io/os": "linux", "cloud.google.com/gke-nodepool": "default-pool",
            "cloud.google.com/gke-os-distribution": "cos", "failure-domain.beta.kubernetes.io/region": region,
            "failure-domain.beta.kubernetes.io/zone": zone, "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": "e2-standard-4",
            "topology.kubernetes.io/region": region, "topology.kubernetes.io/zone": zone},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {"podCIDR": format!("10.4.{index}.0/24"), "podCIDRs": [format!("10.4.{index}.0/24")]},
        "status": {
            "capacity": {"cpu": "4", "ephemeral-storage": "98831908Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "16393220Ki", "pods": "110"},
            "allocatable": {"cpu": "3920m", "ephemeral-storage": "47060071478", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "13208580Ki", "pods": "110"},
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": format!("10.128.0.{}", 10 + index)}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": format!("{:032x}", index + 1), "systemUUID": format!("{:032x}", index + 101), "bootID": format!("{:032x}", index + 201),
                "kernelVersion": "6.6.72+", "osImage": "Container-Optimized OS from Google", "containerRuntimeVersion": "containerd://1.7.24",
                "kubeletVersion": kubelet_version, "kubeProxyVersion": kubelet_version, "operatingSystem": "linux", "architecture": "amd64"},
        },
    })
}

impl KubeApiServer {
    /// Registers the cluster's Nodes (at bootstrap).
    pub(super) fn register_nodes(&self, st: &mut State, cluster: &str, zone: &str) {
        let Some(nodes) = st.type_for_kind("v1", "Node") else {
            return;
        };
        for (i, name) in node_names(cluster).iter().enumerate() {
            if st.get(&nodes, "", name).is_none() {
                let node = node_object(name, i, zone, &self.git_version);
                self.controller_create(st, &nodes, node, KUBELET);
            }
        }
    }

    /// Creates a Pod from a controller's template (through the same create path as every
    /// controller-made object), then schedules it.
    pub(super) fn create_pod(
        &self,
        st: &mut State,
        pods: &ResourceType,
        owner: &Value,
        template: &Value,
        placement: PodPlacement,
    ) -> Option<Value> {
        let ns = meta_str(owner, "namespace").to_string();
        let mut meta = template.get("metadata").cloned().unwrap_or(json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.remove("creationTimestamp");
            m.remove("name");
        }
        let name = match placement.name.clone() {
            Some(n) => n,
            None => {
                let prefix = format!("{}-", meta_str(owner, "name"));
                util::set_path(&mut meta, &["generateName"], json!(prefix));
                format!("{prefix}{}", st.rng.name_suffix())
            }
        };
        if st.get(pods, &ns, &name).is_some() {
            return None;
        }
        util::set_path(&mut meta, &["name"], json!(name));
        util::set_path(&mut meta, &["namespace"], json!(ns));
        for (k, v) in &placement.labels {
            util::ensure_obj(&mut meta, &["labels"]).insert(k.clone(), json!(v));
        }
        util::set_path(&mut meta, &["ownerReferences"], json!([owner_ref(owner)]));
        let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
        if let Some(s) = spec.as_object_mut() {
            s.extend(placement.spec.clone());
            if let Some(node) = &placement.node {
                s.insert("nodeName".into(), json!(node));
            }
        }
        let mut pod = json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec});
        kinds::default_object(pods, &mut pod, &mut st.rng);
        let created = self.controller_create(st, pods, pod, KCM);
        self.pod_created(st, pods, &created);
        Some(created)
    }

    /// The scheduler and kubelet's reaction to a new Pod (however it was created).
    pub(super) fn pod_created(&self, st: &mut State, pods: &ResourceType, pod: &Value) {
        let ns = meta_str(pod, "namespace").to_string();
        let name = meta_str(pod, "name").to_string();
        let uid = meta_str(pod, "uid").to_string();
        let node = match pod.pointer("/spec/nodeName").and_then(Value::as_str) {
            Some(n) => n.to_string(),
            None => {
                let node = self.least_loaded_node(st);
                self.controller_update(st, pods, &ns, &name, SCHEDULER, "", |p| {
                    util::set_path(p, &["spec", "nodeName"], json!(node));
                });
                node
            }
        };
        let host_ip = self.node_ip(st, &node);
        let pod_ip = format!(
            "10.4.{}.{}",
            node_names(&self.name)
                .iter()
                .position(|n| *n == node)
                .unwrap_or(0),
            2 + st.rng.next_u64() % 250
        );
        let containers = container_names(pod);
        let now = now_rfc3339();
        self.controller_update(st, pods, &ns, &name, KUBELET, "status", |p| {
            let qos = p
                .pointer("/status/qosClass")
                .cloned()
                .unwrap_or(json!("BestEffort"));
            let statuses: Vec<Value> = containers
                .iter()
                .map(|(c, image)| json!({"name": c, "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}, "ready": false, "restartCount": 0, "image": image, "imageID": "", "started": false}))
                .collect();
            p["status"] = json!({
                "phase": "Pending",
                "conditions": [
                    pod_condition("PodReadyToStartContainers", "False", &now, None),
                    pod_condition("Initialized", "True", &now, None),
                    pod_condition("Ready", "False", &now, Some(("ContainersNotReady", &unready_message(&containers)))),
                    pod_condition("ContainersReady", "False", &now, Some(("ContainersNotReady", &unready_message(&containers)))),
                    pod_condition("PodScheduled", "True", &now, None),
                ],
                "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
                "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
                "startTime": now,
                "containerStatuses": statuses,
                "qosClass": qos,
            });
        });
        let (top_ns, top_name) = self.top_owner(st, pod);
        let crash = self.unready_workload(&top_ns, &top_name);
        let runs_to_completion = matches!(
            pod.pointer("/spec/restartPolicy").and_then(Value::as_str),
            Some("Never" | "OnFailure")
        );
        let settling = self
            .workloads
            .settling
            .load(std::sync::atomic::Ordering::SeqCst);
        if settling {
            self.start_containers(st, &ns, &name, &uid, crash);
            if runs_to_completion {
                self.complete_pod(st, &ns, &name, &uid);
            }
            return;
        }
        let delay = self.timing.pod_ready;
        self.later(delay, move |s| {
            {
                let mut st = s.lock();
                s.start_containers(&mut st, &ns, &name, &uid, crash);
            }
            s.schedule_reconcile();
            if crash {
                s.later(delay * 2, move |s| s.crash_again(ns, name, uid, 1));
            } else if runs_to_completion {
                s.later(delay, move |s| {
                    {
                        let mut st = s.lock();
                        s.complete_pod(&mut st, &ns, &name, &uid);
                    }
                    s.schedule_reconcile();
                });
            }
        });
    }

    fn least_loaded_node(&self, st: &State) -> String {
        let names = node_names(&self.name);
        let counts: Vec<usize> = names
            .iter()
            .map(|n| {
                st.objects
                    .iter()
                    .filter(|(k, v)| {
                        k.group.is_empty()
                            && k.plural == "pods"
                            && v.pointer("/spec/nodeName").and_then(Value::as_str)
                                == Some(n.as_str())
                    })
                    .count()
            })
            .collect();
        let best = counts
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| **c)
            .map(|(i, _)| i)
            .unwrap_or(0);
        names.get(best).cloned().unwrap_or_default()
    }

    fn node_ip(&self, st: &State, node: &str) -> String {
        st.type_for_kind("v1", "Node")
            .and_then(|t| st.get(&t, "", node).cloned())
            .and_then(|n| {
                n.pointer("/status/addresses/0/address")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .unwrap_or_else(|| "10.128.0.10".into())
    }

    /// `(namespace, name)` of the workload a Pod belongs to: a ReplicaSet's Deployment, or
    /// the Pod's own controller.
    fn top_owner(&self, st: &State, pod: &Value) -> (String, String) {
        let ns = meta_str(pod, "namespace").to_string();
        let owner = pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .and_then(|o| o.iter().find(|r| r["controller"] == true))
            .cloned();
        let Some(owner) = owner else {
            return (ns, meta_str(pod, "name").to_string());
        };
        let owner_name = owner["name"].as_str().unwrap_or_default().to_string();
        if owner["kind"] == "ReplicaSet"
            && let Some(rst) = st.type_for_kind("apps/v1", "ReplicaSet")
            && let Some(rs) = st.get(&rst, &ns, &owner_name)
            && let Some(d) = rs
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .and_then(|o| o.iter().find(|r| r["controller"] == true))
        {
            return (ns, d["name"].as_str().unwrap_or_default().to_string());
        }
        (ns, owner_name)
    }

    /// The kubelet has pulled and started the containers: Running and Ready, or (for a
    /// crashing workload) Running with its containers in CrashLoopBackOff.
    fn start_containers(&self, st: &mut State, ns: &str, name: &str, uid: &str, crash: bool) {
        let Some(pods) = st.type_for_kind("v1", "Pod") else {
            return;
        };
        let Some(pod) = st.get(&pods, ns, name).cloned() else {
            return;
        };
        if meta_str(&pod, "uid") != uid || being_deleted(&pod) {
            return;
        }
        let containers = container_names(&pod);
        let now = now_rfc3339();
        let pod_uid = uid.to_string();
        let pod_name = name.to_string();
        self.controller_update(st, &pods, ns, name, KUBELET, "status", |p| {
            let statuses: Vec<Value> = containers
                .iter()
                .map(|(c, image)| {
                    if crash {
                        crashed_status(c, image, &pod_name, &pod_uid, 1, &now)
                    } else {
                        json!({"name": c, "state": {"running": {"startedAt": now}}, "lastState": {}, "ready": true, "restartCount": 0,
                            "image": image, "imageID": image_id(image), "containerID": container_id(&pod_uid, c, 0), "started": true})
                    }
                })
                .collect();
            let ready = if crash { "False" } else { "True" };
            let why = unready_message(&containers);
            let reason = crash.then_some(("ContainersNotReady", why.as_str()));
            if let Some(s) = p.get_mut("status").and_then(Value::as_object_mut) {
                s.insert("phase".into(), json!("Running"));
                s.insert(
                    "conditions".into(),
                    json!([
                        pod_condition("PodReadyToStartContainers", "True", &now, None),
                        pod_condition("Initialized", "True", &now, None),
                        pod_condition("Ready", ready, &now, reason),
                        pod_condition("ContainersReady", ready, &now, reason),
                        pod_condition("PodScheduled", "True", &now, None),
                    ]),
                );
                s.insert("containerStatuses".into(), json!(statuses));
            }
        });
    }

    /// The next restart of a crash-looping Pod (back-off doubling from `timing.pod_ready`).
    fn crash_again(&self, ns: String, name: String, uid: String, restarts: u32) {
        {
            let mut st = self.lock();
            let Some(pods) = st.type_for_kind("v1", "Pod") else {
                return;
            };
            let Some(pod) = st.get(&pods, &ns, &name).cloned() else {
                return;
            };
            if meta_str(&pod, "uid") != uid || being_deleted(&pod) {
                return;
            }
            let now = now_rfc3339();
            let containers = container_names(&pod);
            self.controller_update(&mut st, &pods, &ns, &name, KUBELET, "status", |p| {
                let statuses: Vec<Value> = containers
                    .iter()
                    .map(|(c, image)| crashed_status(c, image, &name, &uid, restarts + 1, &now))
                    .collect();
                util::set_path(p, &["status", "containerStatuses"], json!(statuses));
            });
        }
        let delay = (self.timing.pod_ready * 2u32.saturating_pow(restarts.min(8)))
            .min(Duration::from_secs(300));
        self.later(delay, move |s| s.crash_again(ns, name, uid, restarts + 1));
    }

    /// A Job's Pod exits 0: Succeeded.
    fn complete_pod(&self, st: &mut State, ns: &str, name: &str, uid: &str) {
        let Some(pods) = st.type_for_kind("v1", "Pod") else {
            return;
        };
        let Some(pod) = st.get(&pods, ns, name).cloned() else {
            return;
        };
        if meta_str(&pod, "uid") != uid || being_deleted(&pod) {
            return;
        }
        let containers = container_names(&pod);
        let now = now_rfc3339();
        let pod_uid = uid.to_string();
        self.controller_update(st, &pods, ns, name, KUBELET, "status", |p| {
            let statuses: Vec<Value> = containers
                .iter()
                .map(|(c, image)| json!({"name": c, "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now,
                    "containerID": container_id(&pod_uid, c, 0)}}, "lastState": {}, "ready": false, "restartCount": 0,
                    "image": image, "imageID": image_id(image), "containerID": container_id(&pod_uid, c, 0), "started": false}))
                .collect();
            let done = Some(("PodCompleted", ""));
            if let Some(s) = p.get_mut("status").and_then(Value::as_object_mut) {
                s.insert("phase".into(), json!("Succeeded"));
                s.insert(
                    "conditions".into(),
                    json!([
                        pod_condition("PodReadyToStartContainers", "False", &now, None),
                        pod_condition("Initialized", "True", &now, done),
                        pod_condition("Ready", "False", &now, done),
                        pod_condition("ContainersReady", "False", &now, done),
                        pod_condition("PodScheduled", "True", &now, None),
                    ]),
                );
                s.insert("containerStatuses".into(), json!(statuses));
            }
        });
    }
}

fn container_names(pod: &Value) -> Vec<(String, String)> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["image"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn unready_message(containers: &[(String, String)]) -> String {
    let names: Vec<&str> = containers.iter().map(|(n, _)| n.as_str()).collect();
    format!("containers with unready status: [{}]", names.join(" "))
}

fn pod_condition(ty: &str, status: &str, now: &str, why: Option<(&str, &str)>) -> Value {
    let mut c =
        json!({"type": ty, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some((reason, message)) = why {
        c["reason"] = json!(reason);
        if !message.is_empty() {
            c["message"] = json!(message);
        }
    }
    c
}

fn container_id(pod_uid: &str, container: &str, restart: u32) -> String {
    let d = Sha256::digest(format!("{pod_uid}/{container}/{restart}").as_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("containerd://{hex}")
}

fn image_id(image: &str) -> String {
    let d = Sha256::digest(image.as_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    let repo = image.split('@').next().unwrap_or(image);
    let repo = match repo.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => r,
        _ => repo,
    };
    format!("{repo}@sha256:{hex}")
}

fn crashed_status(
    container: &str,
    image: &str,
    pod: &str,
    pod_uid: &str,
    restarts: u32,
    now: &str,
) -> Value {
    let backoff = (10u64 << restarts.saturating_sub(1).min(5)).min(300);
    json!({"name": container,
        "state": {"waiting": {"reason": "CrashLoopBackOff",
            "message": format!("back-off {backoff}s restarting failed container={container} pod={pod}_({pod_uid})")}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now,
            "containerID": container_id(pod_uid, container, restarts)}},
        "ready": false, "restartCount": restarts, "image": image, "imageID": image_id(image),
        "containerID": container_id(pod_uid, container, restarts), "started": false})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_look_like_gke_and_are_stable() {
        let a = node_names("cluster-1");
        assert_eq!(a, node_names("cluster-1"));
        assert_eq!(a.len(), 3);
        for n in &a {
            let rest = n.strip_prefix("gke-cluster-1-default-pool-").unwrap();
            let (group, suffix) = rest.split_once('-').unwrap();
            assert_eq!(group.len(), 8);
            assert!(group.chars().all(|c| c.is_ascii_hexdigit()));
            assert_eq!(suffix.len(), 4);
        }
        assert_ne!(a, node_names("cluster-2"));
    }
}
