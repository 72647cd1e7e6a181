//! What runs besides the API: kube-controller-manager (namespace content, token Secrets,
//! namespace finalization), the apiextensions server (CRD names and Established), and the
//! managed control plane (ControlPlaneRevision provisioning and its injection webhook).

use std::time::Duration;

use serde_json::{Value, json};

use super::KubeApiServer;
use super::auth;
use super::fieldset::Walker;
use super::handlers;
use super::kinds;
use super::managed;
use super::registry::ResourceType;
use super::store::{EventType, ObjKey, State, TokenInfo};
use super::util::{self, b64, now_rfc3339};

const KCM: &str = "kube-controller-manager";
const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Kinds whose writes the workload controllers react to.
fn drives_workloads(rt: &ResourceType) -> bool {
    matches!(
        (rt.group.as_str(), rt.kind.as_str()),
        (
            "apps",
            "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet"
        ) | ("batch", "Job")
            | ("policy", "PodDisruptionBudget")
            | ("", "Pod")
    )
}

fn condition(ty: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": ty, "status": status, "lastTransitionTime": now_rfc3339(), "reason": reason, "message": message})
}

impl KubeApiServer {
    /// A controller's write to an existing object: `change` edits it; ownership is recorded
    /// as an Update by `manager` (on `subresource`). Returns the stored object.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn controller_update(
        &self,
        st: &mut State,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        manager: &str,
        subresource: &str,
        change: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        let old = st.get(rt, namespace, name)?.clone();
        let mut new = old.clone();
        change(&mut new);
        let w = Walker::root(&rt.kind, rt.schema.as_ref());
        let entries = managed::track_update(
            &w,
            managed::read(&old),
            &old,
            &new,
            manager,
            &rt.api_version(),
            subresource,
            &now_rfc3339(),
        );
        managed::write(&mut new, entries);
        kinds::canonical(rt, &mut new);
        if new == old {
            return Some(old);
        }
        Some(st.put(rt, new, EventType::Modified))
    }

    /// A controller's create (ownership as an Update by `manager`).
    pub(super) fn controller_create(
        &self,
        st: &mut State,
        rt: &ResourceType,
        mut obj: Value,
        manager: &str,
    ) -> Value {
        let w = Walker::root(&rt.kind, rt.schema.as_ref());
        let now = now_rfc3339();
        let entries = managed::track_update(
            &w,
            Vec::new(),
            &json!({"metadata": {}}),
            &obj,
            manager,
            &rt.api_version(),
            "",
            &now,
        );
        managed::write(&mut obj, entries);
        self.admit_controller_pod(st, rt, &mut obj);
        kinds::prepare_create(rt, &mut obj);
        let uid = st.uid();
        util::set_path(&mut obj, &["metadata", "uid"], json!(uid));
        util::set_path(&mut obj, &["metadata", "creationTimestamp"], json!(now));
        kinds::canonical(rt, &mut obj);
        st.put(rt, obj, EventType::Added)
    }

    /// The `default` ServiceAccount and `kube-root-ca.crt` of a new namespace.
    pub(super) fn namespace_content(&self, st: &mut State, ns: &str) {
        if let Some(sa) = st.type_for_kind("v1", "ServiceAccount")
            && st.get(&sa, ns, "default").is_none()
        {
            let obj = json!({"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "default", "namespace": ns}});
            self.controller_create(st, &sa, obj, KCM);
        }
        if let Some(cm) = st.type_for_kind("v1", "ConfigMap")
            && st.get(&cm, ns, "kube-root-ca.crt").is_none()
        {
            let obj = json!({"kind": "ConfigMap", "apiVersion": "v1",
                    "metadata": {"name": "kube-root-ca.crt", "namespace": ns, "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION}},
                    "data": {"ca.crt": self.ca_pem}});
            self.controller_create(st, &cm, obj, KCM);
        }
    }

    /// Side effects of a create.
    pub(super) fn after_create(&self, st: &mut State, rt: &ResourceType, obj: &Value) {
        let ns = util::get_str(obj, &["metadata", "namespace"])
            .unwrap_or_default()
            .to_string();
        let name = util::get_str(obj, &["metadata", "name"])
            .unwrap_or_default()
            .to_string();
        match (rt.group.as_str(), rt.kind.as_str()) {
            ("", "Namespace") => self.namespace_content(st, &name),
            ("", "Secret") if obj["type"] == "kubernetes.io/service-account-token" => {
                self.later(self.timing.token_fill, move |s| {
                    s.fill_token_secret(&ns, &name)
                });
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                self.later(Duration::from_millis(5), move |s| {
                    s.establish_crd(&name, false)
                });
            }
            ("mesh.cloud.google.com", "ControlPlaneRevision") => {
                self.later(self.timing.cpr_ready, move |s| s.provision_cpr(&ns, &name));
            }
            ("mesh.cloud.google.com", "DataPlaneControl") => self.start_proxy_upgrader(),
            ("", "Pod") => {
                self.pod_created(st, rt, obj);
                self.schedule_reconcile();
            }
            _ if drives_workloads(rt) => self.schedule_reconcile(),
            _ => {}
        }
        self.service_written(rt, obj);
        self.cluster_role_changed(st, rt);
    }

    /// Side effects of an update: the workload controllers look again; Services and
    /// aggregated ClusterRoles follow their inputs.
    pub(super) fn after_update(&self, st: &mut State, rt: &ResourceType, obj: &Value) {
        if drives_workloads(rt) {
            self.schedule_reconcile();
        }
        self.service_written(rt, obj);
        self.cluster_role_changed(st, rt);
    }

    /// Side effects of a delete: a ServiceAccount's token Secrets go with it; aggregated
    /// ClusterRoles lose a deleted role's rules; owners' dependents are left to the garbage
    /// collector.
    pub(super) fn after_delete(&self, st: &mut State, rt: &ResourceType, obj: &Value) {
        self.cluster_role_changed(st, rt);
        if obj.pointer("/metadata/uid").is_some() {
            self.schedule_reconcile();
        }
        if rt.group.is_empty() && rt.kind == "ServiceAccount" {
            let ns = util::get_str(obj, &["metadata", "namespace"])
                .unwrap_or_default()
                .to_string();
            let name = util::get_str(obj, &["metadata", "name"])
                .unwrap_or_default()
                .to_string();
            let doomed: Vec<ObjKey> = st
                .objects
                .iter()
                .filter(|(k, v)| {
                    k.group.is_empty()
                        && k.plural == "secrets"
                        && k.namespace == ns
                        && v["type"] == "kubernetes.io/service-account-token"
                        && v.pointer("/metadata/annotations/kubernetes.io~1service-account.name")
                            .and_then(Value::as_str)
                            == Some(name.as_str())
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in doomed {
                st.remove(&k);
            }
        }
    }

    /// The token controller: fills a `kubernetes.io/service-account-token` Secret, or deletes
    /// it when its ServiceAccount does not exist.
    fn fill_token_secret(&self, ns: &str, name: &str) {
        let mut st = self.lock();
        let (Some(secrets), Some(sas)) = (
            st.type_for_kind("v1", "Secret"),
            st.type_for_kind("v1", "ServiceAccount"),
        ) else {
            return;
        };
        let Some(secret) = st.get(&secrets, ns, name).cloned() else {
            return;
        };
        if secret.pointer("/data/token").is_some() {
            return;
        }
        let sa_name = secret
            .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(sa) = st.get(&sas, ns, &sa_name).cloned() else {
            st.remove(&ObjKey::new(&secrets, ns, name));
            return;
        };
        let sa_uid = util::get_str(&sa, &["metadata", "uid"])
            .unwrap_or_default()
            .to_string();
        let jti = st.uid();
        let token = auth::mint_token(
            &mut st,
            TokenInfo {
                namespace: ns.into(),
                sa_name,
                sa_uid: sa_uid.clone(),
                audiences: vec![auth::API_AUDIENCE.into()],
                expires: None,
                secret: Some(name.into()),
                jti,
            },
        );
        let (ca, ns_b64, tok) = (
            b64(self.ca_pem.as_bytes()),
            b64(ns.as_bytes()),
            b64(token.as_bytes()),
        );
        self.controller_update(&mut st, &secrets, ns, name, KCM, "", |s| {
            let data = util::ensure_obj(s, &["data"]);
            data.insert("ca.crt".into(), json!(ca));
            data.insert("namespace".into(), json!(ns_b64));
            data.insert("token".into(), json!(tok));
            util::ensure_obj(s, &["metadata", "annotations"])
                .insert("kubernetes.io/service-account.uid".into(), json!(sa_uid));
        });
    }

    /// The apiextensions server: names accepted, then Established (which serves the types).
    pub(super) fn establish_crd(&self, name: &str, established: bool) {
        let mut st = self.lock();
        let Some(rt) = st.type_for_kind("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        else {
            return;
        };
        let Some(crd) = st.get(&rt, "", name).cloned() else {
            return;
        };
        // A CRD already Established (settled at once) never goes back to Installing.
        let already = crd
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
        if already && !established {
            return;
        }
        let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
        self.controller_update(&mut st, &rt, "", name, "kube-apiserver", "status", |c| {
            let mut accepted = names.clone();
            if let Some(m) = accepted.as_object_mut()
                && !m.contains_key("singular")
            {
                let kind = m
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                m.insert("singular".into(), json!(kind));
            }
            util::set_path(c, &["status", "acceptedNames"], accepted);
            let conditions = if established {
                vec![
                    condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                    condition(
                        "Established",
                        "True",
                        "InitialNamesAccepted",
                        "the initial names have been accepted",
                    ),
                ]
            } else {
                vec![
                    condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                    condition(
                        "Established",
                        "False",
                        "Installing",
                        "the initial names have been accepted",
                    ),
                ]
            };
            util::set_path(c, &["status", "conditions"], json!(conditions));
        });
        if !established {
            let name = name.to_string();
            self.later(Duration::from_millis(5), move |s| {
                s.establish_crd(&name, true)
            });
        }
    }

    /// The managed control plane: a ControlPlaneRevision becomes ProvisioningFinished and
    /// its injection webhook `istiod-<name>` appears.
    pub(super) fn provision_cpr(&self, ns: &str, name: &str) {
        {
            let mut st = self.lock();
            let Some(rt) =
                st.type_for_kind("mesh.cloud.google.com/v1beta1", "ControlPlaneRevision")
            else {
                return;
            };
            let Some(cpr) = st.get(&rt, ns, name) else {
                return;
            };
            // Already provisioned (the `installed` scenario writes it so): a controller does
            // not rewrite an unchanged status, so the resourceVersion stays.
            let provisioned = cpr
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "ProvisioningFinished" && c["status"] == "True")
                });
            if !provisioned {
                self.controller_update(
                    &mut st,
                    &rt,
                    ns,
                    name,
                    "mdp-controller",
                    if rt.has_status { "status" } else { "" },
                    |c| {
                        util::set_path(
                            c,
                            &["status", "conditions"],
                            json!([
                                condition("Reconciled", "True", "Ready", "Ready"),
                                condition("Stalled", "False", "Ready", "Ready"),
                                condition(
                                    "ProvisioningFinished",
                                    "True",
                                    "Provisioned",
                                    "Provisioning finished"
                                ),
                            ]),
                        );
                    },
                );
            }
        }
        let webhook = json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": format!("istiod-{name}"), "labels": {"istio.io/rev": name, "app": "sidecar-injector"}},
            "webhooks": [
                {
                    "name": "rev.namespace.sidecar-injector.istio.io",
                    "clientConfig": {"url": format!("https://meshconfig.googleapis.com/inject/{ns}/{name}")},
                    "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                    "namespaceSelector": {"matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": [name]}, {"key": "istio-injection", "operator": "DoesNotExist"}]},
                    "objectSelector": {"matchExpressions": [{"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}]},
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1beta1", "v1"],
                    "failurePolicy": "Fail",
                    "reinvocationPolicy": "Never",
                },
                {
                    "name": "rev.object.sidecar-injector.istio.io",
                    "clientConfig": {"url": format!("https://meshconfig.googleapis.com/inject/{ns}/{name}")},
                    "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                    "namespaceSelector": {"matchExpressions": [{"key": "istio.io/rev", "operator": "DoesNotExist"}, {"key": "istio-injection", "operator": "DoesNotExist"}]},
                    "objectSelector": {"matchExpressions": [{"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}, {"key": "istio.io/rev", "operator": "In", "values": [name]}]},
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1beta1", "v1"],
                    "failurePolicy": "Fail",
                    "reinvocationPolicy": "Never",
                },
            ],
        });
        let _ = handlers::controller_apply(self, webhook, "mdp-controller");
    }

    /// The namespace controller: deletes a terminating namespace's content; objects with
    /// finalizers block it (and say so in its conditions) until they are gone.
    pub(super) fn finalize_namespace(&self, name: &str) {
        let mut st = self.lock();
        let Some(ns_type) = st.type_for_kind("v1", "Namespace") else {
            return;
        };
        if st
            .get(&ns_type, "", name)
            .is_none_or(|n| n.pointer("/metadata/deletionTimestamp").is_none())
        {
            return;
        }
        let types: Vec<ResourceType> = st.types.iter().filter(|t| t.namespaced).cloned().collect();
        let keys: Vec<ObjKey> = st
            .objects
            .keys()
            .filter(|k| {
                k.namespace == name
                    && types
                        .iter()
                        .any(|t| t.group == k.group && t.plural == k.plural)
            })
            .cloned()
            .collect();
        let mut blocked: Vec<(String, String)> = Vec::new();
        let now = now_rfc3339();
        for k in keys {
            let Some(obj) = st.objects.get(&k).cloned() else {
                continue;
            };
            let finalizers: Vec<String> = obj
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect();
            if finalizers.is_empty() {
                st.remove(&k);
                continue;
            }
            blocked.extend(finalizers.into_iter().map(|f| (k.plural.clone(), f)));
            if obj.pointer("/metadata/deletionTimestamp").is_none()
                && let Some(rt) = types
                    .iter()
                    .find(|t| t.group == k.group && t.plural == k.plural)
            {
                let mut o = obj.clone();
                util::set_path(&mut o, &["metadata", "deletionTimestamp"], json!(now));
                util::set_path(
                    &mut o,
                    &["metadata", "deletionGracePeriodSeconds"],
                    json!(0),
                );
                kinds::canonical(rt, &mut o);
                st.put(rt, o, EventType::Modified);
            }
        }
        if blocked.is_empty() {
            st.remove(&ObjKey::new(&ns_type, "", name));
            return;
        }
        let resources: Vec<String> = blocked
            .iter()
            .map(|(r, _)| r.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let finalizers: Vec<String> = blocked
            .iter()
            .map(|(_, f)| f.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let has_conditions = st
            .get(&ns_type, "", name)
            .and_then(|n| n.pointer("/status/conditions"))
            .is_some();
        if !has_conditions {
            let n = blocked.len();
            self.controller_update(&mut st, &ns_type, "", name, KCM, "status", |o| {
                util::set_path(o, &["status", "conditions"], json!([
                    condition("NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered", "All resources successfully discovered"),
                    condition("NamespaceDeletionGroupVersionParsingFailure", "False", "ParsedGroupVersions", "All legacy kube types successfully parsed"),
                    condition("NamespaceDeletionContentFailure", "False", "ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
                    condition("NamespaceContentRemaining", "True", "SomeResourcesRemain", &format!("Some resources are remaining: {}. has {n} resource instances", resources.join(", "))),
                    condition("NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain", &format!("Some content in the namespace has finalizers remaining: {} in {n} resource instances", finalizers.join(", "))),
                ]));
            });
        }
        drop(st);
        let name = name.to_string();
        self.later(Duration::from_millis(200), move |s| {
            s.finalize_namespace(&name)
        });
    }
}
