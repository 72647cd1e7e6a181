//! Defaulting of Pods and pod templates as the apiserver applies it (the `SetDefaults_*`
//! functions of k8s.io/kubernetes/pkg/apis/core/v1/defaults.go), the ServiceAccount
//! admission plugin's additions to a new Pod, and the Go struct key order of both.

use serde_json::{Map, Value, json};

use super::util::{self, Rng, order_keys};

const POD_SPEC_ORDER: &[&str] = &[
    "volumes",
    "initContainers",
    "containers",
    "ephemeralContainers",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "dnsPolicy",
    "nodeSelector",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "nodeName",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "securityContext",
    "imagePullSecrets",
    "hostname",
    "subdomain",
    "affinity",
    "schedulerName",
    "tolerations",
    "hostAliases",
    "priorityClassName",
    "priority",
    "dnsConfig",
    "readinessGates",
    "runtimeClassName",
    "enableServiceLinks",
    "preemptionPolicy",
    "overhead",
    "topologySpreadConstraints",
    "setHostnameAsFQDN",
    "os",
    "hostUsers",
    "schedulingGates",
    "resourceClaims",
    "resources",
];

const CONTAINER_ORDER: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "ports",
    "envFrom",
    "env",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
];

/// `Always` for an untagged or `:latest` image, else `IfNotPresent`.
fn pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    let tag = last.split_once('@').map(|_| "digest").or_else(|| {
        last.split_once(':')
            .map(|(_, t)| if t == "latest" { "" } else { t })
    });
    match tag {
        Some("") | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else {
        return;
    };
    m.entry("resources").or_insert(json!({}));
    m.entry("terminationMessagePath")
        .or_insert(json!("/dev/termination-log"));
    m.entry("terminationMessagePolicy").or_insert(json!("File"));
    let image = m
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    m.entry("imagePullPolicy")
        .or_insert(json!(pull_policy(&image)));
    for p in m
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(pm) = p.as_object_mut() {
            pm.entry("protocol").or_insert(json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(pm) = m.get_mut(probe).and_then(Value::as_object_mut) {
            pm.entry("timeoutSeconds").or_insert(json!(1));
            pm.entry("periodSeconds").or_insert(json!(10));
            pm.entry("successThreshold").or_insert(json!(1));
            pm.entry("failureThreshold").or_insert(json!(3));
        }
    }
    order_keys(c, CONTAINER_ORDER);
}

/// Defaults of a PodSpec (pod templates get the same, `restart_policy` aside: a Job's
/// template must name its own).
pub fn default_pod_spec(spec: &mut Value, restart_policy: bool) {
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    for list in ["initContainers", "containers"] {
        for c in m
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            default_container(c);
        }
    }
    if restart_policy {
        m.entry("restartPolicy").or_insert(json!("Always"));
    }
    m.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    m.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    m.entry("securityContext").or_insert(json!({}));
    m.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    order_keys(spec, POD_SPEC_ORDER);
}

/// Defaults of `spec.template` of a workload (its metadata shows `creationTimestamp: null`).
pub fn default_template(obj: &mut Value, restart_policy: bool) {
    let Some(t) = obj
        .get_mut("spec")
        .and_then(|s| s.get_mut("template"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let meta = t.entry("metadata").or_insert(json!({}));
    if let Some(mm) = meta.as_object_mut() {
        mm.entry("creationTimestamp").or_insert(Value::Null);
        order_keys(
            meta,
            &[
                "name",
                "namespace",
                "creationTimestamp",
                "labels",
                "annotations",
            ],
        );
    }
    let spec = t.entry("spec").or_insert(json!({}));
    default_pod_spec(spec, restart_policy);
}

/// A new Pod's defaults plus what admission adds: the ServiceAccount and its projected
/// token volume (`kube-api-access-<suffix>`), the default tolerations, priority.
pub fn default_new_pod(obj: &mut Value, rng: &mut Rng) {
    let spec = util::ensure_obj(obj, &["spec"]);
    let sa = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), json!(sa));
    spec.insert("serviceAccount".into(), json!(sa));
    let automount = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let has_access_volume = spec
        .get("volumes")
        .and_then(Value::as_array)
        .is_some_and(|v| {
            v.iter().any(|v| {
                v["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("kube-api-access-"))
            })
        });
    if automount && !has_access_volume {
        let vol_name = format!("kube-api-access-{}", rng.name_suffix());
        let volume = json!({"name": vol_name, "projected": {"sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}],
            "defaultMode": 420}});
        match spec.get_mut("volumes").and_then(Value::as_array_mut) {
            Some(v) => v.push(volume),
            None => {
                spec.insert("volumes".into(), json!([volume]));
            }
        }
        for list in ["initContainers", "containers"] {
            for c in spec
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let mount = json!({"name": vol_name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"});
                let Some(cm) = c.as_object_mut() else {
                    continue;
                };
                match cm.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                    Some(v) => v.push(mount),
                    None => {
                        cm.insert("volumeMounts".into(), json!([mount]));
                    }
                }
            }
        }
    }
    let tolerations = spec.entry("tolerations").or_insert(json!([]));
    if let Some(t) = tolerations.as_array_mut() {
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            if !t.iter().any(|x| x["key"] == key) {
                t.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
    }
    spec.entry("priority").or_insert(json!(0));
    spec.entry("enableServiceLinks").or_insert(json!(true));
    spec.entry("preemptionPolicy")
        .or_insert(json!("PreemptLowerPriority"));
    if let Some(s) = obj.get_mut("spec") {
        default_pod_spec(s, true);
        for list in ["initContainers", "containers"] {
            for c in s
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                order_keys(c, CONTAINER_ORDER);
            }
        }
    }
    if obj.pointer("/status/phase").is_none() {
        let qos = qos_class(obj.get("spec").unwrap_or(&Value::Null));
        let mut status = Map::new();
        status.insert("phase".into(), json!("Pending"));
        status.insert("qosClass".into(), json!(qos));
        util::set_path(obj, &["status"], Value::Object(status));
    }
}

/// The QoS class of a pod spec: BestEffort without requests or limits, Guaranteed when
/// every container's requests equal its limits for cpu and memory, else Burstable.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let empty = |v: &Value| v.as_object().is_none_or(|m| m.is_empty());
    if containers
        .iter()
        .all(|c| empty(&c["resources"]["requests"]) && empty(&c["resources"]["limits"]))
    {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let lim = &c["resources"]["limits"][r];
            !lim.is_null() && {
                let req = &c["resources"]["requests"][r];
                req.is_null() || req == lim
            }
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_image_tag() {
        assert_eq!(pull_policy("auto"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(pull_policy("localhost:5000/app"), "Always");
        assert_eq!(pull_policy("gcr.io/x/app@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn qos_class_from_resources() {
        assert_eq!(
            qos_class(&json!({"containers": [{"name": "a"}]})),
            "BestEffort"
        );
        assert_eq!(
            qos_class(&json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]})),
            "Burstable"
        );
        assert_eq!(
            qos_class(
                &json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]})
            ),
            "Guaranteed"
        );
    }
}
