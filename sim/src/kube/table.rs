//! `meta.k8s.io/v1 Table` output, what `kubectl get` asks for: the built-in columns of each
//! kind or a CRD's additionalPrinterColumns, with `PartialObjectMetadata` rows.

use serde_json::{Value, json};

use super::registry::ResourceType;
use super::util::{human_age, now_secs, parse_rfc3339};

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("as=Table"))
}

fn col(name: &str, ty: &str, format: &str, desc: &str) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": desc, "priority": 0})
}

/// A column `kubectl get -o wide` adds.
fn wide(mut c: Value) -> Value {
    c["priority"] = json!(1);
    c
}

fn age(obj: &Value) -> String {
    let created = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
        .unwrap_or_else(now_secs);
    human_age(now_secs() - created)
}

fn count(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_object)
        .map(|m| m.len() as i64)
        .unwrap_or(0)
}

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `.a[0].b`,
/// `.a[?(@.type=="X")].b`.
pub fn json_path(obj: &Value, path: &str) -> Option<Value> {
    let mut cur = obj.clone();
    let mut rest = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('.');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = r[end + 1..].trim_start_matches('.');
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (field, want) = filter.split_once("==")?;
                let want = want.trim().trim_matches('"').trim_matches('\'');
                cur = cur
                    .as_array()?
                    .iter()
                    .find(|i| i.get(field.trim()).and_then(Value::as_str) == Some(want))?
                    .clone();
            } else {
                cur = cur.get(inner.parse::<usize>().ok()?)?.clone();
            }
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let field = &rest[..end];
        cur = cur.get(field)?.clone();
        rest = rest[end..].trim_start_matches('.');
    }
    Some(cur)
}

fn columns(rt: &ResourceType) -> Vec<Value> {
    let name = col("Name", "string", "name", NAME_DESC);
    if rt.is_custom() {
        let mut cols = vec![name];
        if rt.printer_columns.is_empty() {
            cols.push(col("Age", "date", "", AGE_DESC));
        }
        for c in &rt.printer_columns {
            let path = c["jsonPath"].as_str().unwrap_or_default();
            cols.push(json!({
                "name": c["name"], "type": c["type"], "format": c.get("format").cloned().unwrap_or(json!("")),
                "description": c.get("description").cloned().unwrap_or(json!(format!("Custom resource definition column (in JSONPath format): {path}"))),
                "priority": c.get("priority").cloned().unwrap_or(json!(0)),
            }));
        }
        return cols;
    }
    let age = col("Age", "string", "", AGE_DESC);
    match rt.kind.as_str() {
        "ConfigMap" => vec![
            name,
            col(
                "Data",
                "string",
                "",
                "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
            ),
            age,
        ],
        "Secret" => vec![
            name,
            col("Type", "string", "", "The type of the secret"),
            col("Data", "string", "", "The number of data items"),
            age,
        ],
        "Namespace" => vec![
            name,
            col("Status", "string", "", "The status of the namespace"),
            age,
        ],
        "ServiceAccount" => vec![
            name,
            col("Secrets", "string", "", "Secrets is a list of the secrets"),
            age,
        ],
        "CustomResourceDefinition" | "ClusterRole" | "Role" => {
            vec![name, col("Created At", "date", "", "")]
        }
        "ClusterRoleBinding" | "RoleBinding" => vec![
            name,
            col("Role", "string", "", ""),
            age,
            priority(col("Users", "string", "", ""), 1),
            priority(col("Groups", "string", "", ""), 1),
            priority(col("ServiceAccounts", "string", "", ""), 1),
        ],
        "Service" => vec![
            name,
            col("Type", "string", "", ""),
            col("Cluster-IP", "string", "", ""),
            col("External-IP", "string", "", ""),
            col("Port(s)", "string", "", ""),
            age,
            priority(col("Selector", "string", "", ""), 1),
        ],
        "Deployment" => vec![
            name,
            col("Ready", "string", "", ""),
            col("Up-to-date", "string", "", ""),
            col("Available", "string", "", ""),
            age,
        ],
        "Pod" => vec![
            name,
            col(
                "Ready",
                "string",
                "",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                "",
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                "",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            age,
            wide(col(
                "IP",
                "string",
                "",
                "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            )),
            wide(col(
                "Node",
                "string",
                "",
                "NodeName is a request to schedule this pod onto a specific node. If it is non-empty, the scheduler simply schedules this pod onto that node, assuming that it fits resource requirements.",
            )),
            wide(col(
                "Nominated Node",
                "string",
                "",
                "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
            )),
            wide(col(
                "Readiness Gates",
                "string",
                "",
                "If specified, all readiness gates will be evaluated for pod readiness.",
            )),
        ],
        "ReplicaSet" => vec![
            name,
            col("Desired", "integer", "", "Number of desired pods."),
            col("Current", "integer", "", "Number of actual replicas."),
            col(
                "Ready",
                "integer",
                "",
                "The number of ready replicas for this replica set.",
            ),
            age,
        ],
        "Node" => vec![
            name,
            col("Status", "string", "", "The status of the node"),
            col("Roles", "string", "", "The roles of the node"),
            age,
            col(
                "Version",
                "string",
                "",
                "Kubelet Version reported by the node.",
            ),
        ],
        "StatefulSet" => vec![
            name,
            col("Ready", "string", "", "Number of the pod with ready state"),
            age,
        ],
        "DaemonSet" => vec![
            name,
            col(
                "Desired",
                "integer",
                "",
                "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).",
            ),
            col(
                "Current",
                "integer",
                "",
                "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
            ),
            col(
                "Ready",
                "integer",
                "",
                "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
            ),
            col(
                "Up-to-date",
                "integer",
                "",
                "The total number of nodes that are running updated daemon pod",
            ),
            col(
                "Available",
                "integer",
                "",
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
            ),
            col(
                "Node Selector",
                "string",
                "",
                "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node.",
            ),
            age,
        ],
        "Job" => vec![
            name,
            col("Status", "string", "", "Status of the job."),
            col(
                "Completions",
                "string",
                "",
                "The completion status of the job.",
            ),
            col(
                "Duration",
                "string",
                "",
                "Time required to complete the job.",
            ),
            age,
        ],
        _ => vec![name, age],
    }
}

fn int(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// The STATUS column of a Pod, as kubectl's printer derives it.
fn pod_status(obj: &Value) -> String {
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let mut reason = obj
        .pointer("/status/reason")
        .or_else(|| obj.pointer("/status/phase"))
        .and_then(Value::as_str)
        .unwrap_or("Pending")
        .to_string();
    for c in obj
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(r) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
            reason = r.to_string();
        } else if let Some(r) = c
            .pointer("/state/terminated/reason")
            .and_then(Value::as_str)
        {
            reason = r.to_string();
        }
    }
    reason
}

fn cells(rt: &ResourceType, obj: &Value) -> Vec<Value> {
    let name = json!(
        obj.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    );
    if rt.is_custom() {
        let mut cells = vec![name];
        if rt.printer_columns.is_empty() {
            cells.push(json!(age(obj)));
        }
        for c in &rt.printer_columns {
            let path = c["jsonPath"].as_str().unwrap_or_default();
            let v = if path == ".metadata.creationTimestamp" {
                Some(json!(age(obj)))
            } else {
                json_path(obj, path)
            };
            cells.push(v.unwrap_or(Value::Null));
        }
        return cells;
    }
    match rt.kind.as_str() {
        "ConfigMap" => vec![
            name,
            json!(count(obj.get("data")) + count(obj.get("binaryData"))),
            json!(age(obj)),
        ],
        "Secret" => vec![
            name,
            obj.get("type").cloned().unwrap_or(json!("Opaque")),
            json!(count(obj.get("data"))),
            json!(age(obj)),
        ],
        "Namespace" => vec![
            name,
            obj.pointer("/status/phase")
                .cloned()
                .unwrap_or(json!("Active")),
            json!(age(obj)),
        ],
        "ServiceAccount" => vec![
            name,
            json!(
                obj.get("secrets")
                    .and_then(Value::as_array)
                    .map(Vec::len)
                    .unwrap_or(0)
            ),
            json!(age(obj)),
        ],
        "ClusterRoleBinding" | "RoleBinding" => {
            let subjects = |kind: &str| -> String {
                let names: Vec<String> = obj
                    .get("subjects")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|s| s["kind"] == kind)
                    .map(|s| match (kind, s["namespace"].as_str()) {
                        ("ServiceAccount", Some(ns)) => {
                            format!("{ns}/{}", s["name"].as_str().unwrap_or_default())
                        }
                        _ => s["name"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect();
                names.join(", ")
            };
            let role = format!(
                "{}/{}",
                obj.pointer("/roleRef/kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                obj.pointer("/roleRef/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            );
            vec![
                name,
                json!(role),
                json!(age(obj)),
                json!(subjects("User")),
                json!(subjects("Group")),
                json!(subjects("ServiceAccount")),
            ]
        }
        "Service" => vec![
            name,
            obj.pointer("/spec/type")
                .cloned()
                .unwrap_or(json!("ClusterIP")),
            json!(
                obj.pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .unwrap_or("<none>")
            ),
            json!(service_external_ip(obj)),
            json!(service_ports(obj)),
            json!(age(obj)),
            json!(service_selector(obj)),
        ],
        "CustomResourceDefinition" | "ClusterRole" | "Role" => vec![
            name,
            obj.pointer("/metadata/creationTimestamp")
                .cloned()
                .unwrap_or(Value::Null),
        ],
        "Deployment" => {
            let want = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let ready = obj
                .pointer("/status/readyReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let upd = obj
                .pointer("/status/updatedReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let avail = obj
                .pointer("/status/availableReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            vec![
                name,
                json!(format!("{ready}/{want}")),
                json!(upd),
                json!(avail),
                json!(age(obj)),
            ]
        }
        "Pod" => {
            let statuses: Vec<&Value> = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .collect();
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            let ready = statuses.iter().filter(|c| c["ready"] == true).count();
            let restarts: i64 = statuses.iter().map(|c| int(c, "/restartCount")).sum();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(obj)),
                json!(restarts.to_string()),
                json!(age(obj)),
                obj.pointer("/status/podIP")
                    .cloned()
                    .unwrap_or(json!("<none>")),
                obj.pointer("/spec/nodeName")
                    .cloned()
                    .unwrap_or(json!("<none>")),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        "ReplicaSet" => vec![
            name,
            json!(int(obj, "/spec/replicas")),
            json!(int(obj, "/status/replicas")),
            json!(int(obj, "/status/readyReplicas")),
            json!(age(obj)),
        ],
        "Node" => {
            let ready = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            vec![
                name,
                json!(if ready { "Ready" } else { "NotReady" }),
                json!("<none>"),
                json!(age(obj)),
                obj.pointer("/status/nodeInfo/kubeletVersion")
                    .cloned()
                    .unwrap_or(json!("")),
            ]
        }
        "StatefulSet" => vec![
            name,
            json!(format!(
                "{}/{}",
                int(obj, "/status/readyReplicas"),
                int(obj, "/spec/replicas")
            )),
            json!(age(obj)),
        ],
        "DaemonSet" => vec![
            name,
            json!(int(obj, "/status/desiredNumberScheduled")),
            json!(int(obj, "/status/currentNumberScheduled")),
            json!(int(obj, "/status/numberReady")),
            json!(int(obj, "/status/updatedNumberScheduled")),
            json!(int(obj, "/status/numberAvailable")),
            json!("<none>"),
            json!(age(obj)),
        ],
        "Job" => {
            let complete = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Complete" && c["status"] == "True");
            vec![
                name,
                json!(if complete { "Complete" } else { "Running" }),
                json!(format!(
                    "{}/{}",
                    int(obj, "/status/succeeded"),
                    int(obj, "/spec/completions").max(1)
                )),
                json!(""),
                json!(age(obj)),
            ]
        }
        _ => vec![name, json!(age(obj))],
    }
}

fn priority(mut c: Value, p: i64) -> Value {
    c["priority"] = json!(p);
    c
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

/// The External-IP cell as kubectl's printers compute it (upstream
/// pkg/printers/internalversion/printers.go `getServiceExternalIP`).
fn service_external_ip(svc: &Value) -> String {
    let external = strs(svc.pointer("/spec/externalIPs"));
    let ty = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    match ty {
        "ExternalName" => svc
            .pointer("/spec/externalName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        "LoadBalancer" => {
            let mut ips: Vec<String> = svc
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i.get("ip")
                        .or_else(|| i.get("hostname"))
                        .and_then(Value::as_str)
                })
                .map(String::from)
                .collect();
            ips.extend(external);
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        _ if external.is_empty() => "<none>".into(),
        _ => external.join(","),
    }
}

/// `80:31234/TCP,443/TCP` (the Port(s) cell).
fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let port = p["port"].as_i64().unwrap_or(0);
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64().filter(|n| *n != 0) {
                Some(np) => format!("{port}:{np}/{proto}"),
                None => format!("{port}/{proto}"),
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

fn service_selector(svc: &Value) -> String {
    let Some(sel) = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
    else {
        return "<none>".into();
    };
    let mut pairs: Vec<String> = sel
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs.join(",")
}

fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
}

/// A Table of `objects`; `list_meta` is the list's metadata (resourceVersion, continue).
pub fn table(rt: &ResourceType, objects: &[Value], list_meta: Value) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| json!({"cells": cells(rt, o), "object": partial(o)}))
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": columns(rt), "rows": rows})
}
