//! The garbage collector (github.com/kubernetes/kubernetes/pkg/controller/garbagecollector):
//! dependents whose owners are all gone are deleted (background propagation); an owner
//! deleted with `propagationPolicy=Foreground` carries the `foregroundDeletion` finalizer
//! until its dependents are gone (dependents that own others are deleted in the foreground
//! too); one deleted with `Orphan` carries `orphan` until its dependents no longer point at it.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::KubeApiServer;
use super::kinds;
use super::store::{EventType, ObjKey, State};
use super::util::{self, now_rfc3339};
use super::workloads::{being_deleted, meta_str};

pub(super) const FOREGROUND: &str = "foregroundDeletion";
pub(super) const ORPHAN: &str = "orphan";

/// The finalizer a DELETE with this propagation policy puts on the object, if any.
pub fn deletion_finalizer(policy: Option<&str>) -> Option<&'static str> {
    match policy {
        Some("Foreground") => Some(FOREGROUND),
        Some("Orphan") => Some(ORPHAN),
        _ => None,
    }
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str().map(String::from))
        .collect()
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

impl KubeApiServer {
    /// Marks an object being deleted with `finalizer` (the DELETE of a Foreground or Orphan
    /// propagation). Returns the stored object.
    pub(super) fn begin_finalized_delete(
        &self,
        st: &mut State,
        key: &ObjKey,
        finalizer: &str,
    ) -> Option<Value> {
        let rt = st
            .types
            .iter()
            .find(|t| t.group == key.group && t.plural == key.plural)
            .cloned()?;
        let mut obj = st.objects.get(key)?.clone();
        if obj.pointer("/metadata/deletionTimestamp").is_none() {
            util::set_path(
                &mut obj,
                &["metadata", "deletionTimestamp"],
                json!(now_rfc3339()),
            );
            util::set_path(
                &mut obj,
                &["metadata", "deletionGracePeriodSeconds"],
                json!(0),
            );
        }
        let mut f = finalizers(&obj);
        if !f.iter().any(|x| x == finalizer) {
            f.push(finalizer.to_string());
        }
        util::set_path(&mut obj, &["metadata", "finalizers"], json!(f));
        kinds::canonical(&rt, &mut obj);
        let stored = st.put(&rt, obj, EventType::Modified);
        self.schedule_reconcile();
        Some(stored)
    }

    /// One pass of the garbage collector.
    pub(super) fn collect_garbage(&self, st: &mut State) {
        let live: HashSet<String> = st
            .objects
            .values()
            .map(|v| meta_str(v, "uid").to_string())
            .collect();
        // Owners waiting for their dependents, by uid.
        let mut waiting: BTreeMap<String, (ObjKey, &'static str)> = BTreeMap::new();
        for (k, v) in &st.objects {
            if !being_deleted(v) {
                continue;
            }
            let f = finalizers(v);
            if f.iter().any(|x| x == FOREGROUND) {
                waiting.insert(meta_str(v, "uid").to_string(), (k.clone(), FOREGROUND));
            } else if f.iter().any(|x| x == ORPHAN) {
                waiting.insert(meta_str(v, "uid").to_string(), (k.clone(), ORPHAN));
            }
        }
        let owners_of_something: HashSet<String> =
            st.objects.values().flat_map(owner_uids).collect();
        let mut doomed: Vec<ObjKey> = Vec::new();
        let mut foreground: Vec<ObjKey> = Vec::new();
        let mut orphaned: Vec<(ObjKey, Vec<String>)> = Vec::new();
        for (k, v) in &st.objects {
            let owners = owner_uids(v);
            if owners.is_empty() {
                continue;
            }
            if owners.iter().all(|u| !live.contains(u)) {
                doomed.push(k.clone());
                continue;
            }
            let orphaning: Vec<String> = owners
                .iter()
                .filter(|u| matches!(waiting.get(*u), Some((_, ORPHAN))))
                .cloned()
                .collect();
            if !orphaning.is_empty() {
                orphaned.push((k.clone(), orphaning));
                continue;
            }
            let others_alive = owners
                .iter()
                .any(|u| live.contains(u) && !waiting.contains_key(u));
            let foreground_owner = owners
                .iter()
                .any(|u| matches!(waiting.get(u), Some((_, FOREGROUND))));
            if foreground_owner && !others_alive && !being_deleted(v) {
                if owners_of_something.contains(meta_str(v, "uid")) {
                    foreground.push(k.clone());
                } else {
                    doomed.push(k.clone());
                }
            }
        }
        for k in doomed {
            self.remove_key(st, &k);
        }
        for k in foreground {
            self.begin_finalized_delete(st, &k, FOREGROUND);
        }
        for (k, gone) in orphaned {
            let Some(rt) = st
                .types
                .iter()
                .find(|t| t.group == k.group && t.plural == k.plural)
                .cloned()
            else {
                continue;
            };
            self.controller_update(
                st,
                &rt,
                &k.namespace,
                &k.name,
                "kube-controller-manager",
                "",
                |o| {
                    if let Some(refs) = o
                        .pointer_mut("/metadata/ownerReferences")
                        .and_then(Value::as_array_mut)
                    {
                        refs.retain(|r| {
                            r["uid"]
                                .as_str()
                                .is_none_or(|u| !gone.iter().any(|g| g == u))
                        });
                    }
                    if o.pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|r| r.is_empty())
                    {
                        util::remove_path(o, &["metadata", "ownerReferences"]);
                    }
                },
            );
        }
        // Owners whose dependents are gone lose their finalizer (and, with none left, go).
        let still_owned: HashSet<String> = st.objects.values().flat_map(owner_uids).collect();
        for (uid, (key, finalizer)) in waiting {
            if still_owned.contains(&uid) {
                continue;
            }
            let Some(obj) = st.objects.get(&key).cloned() else {
                continue;
            };
            let rest: Vec<String> = finalizers(&obj)
                .into_iter()
                .filter(|f| f != finalizer)
                .collect();
            if rest.is_empty() {
                self.remove_key(st, &key);
                continue;
            }
            let Some(rt) = st
                .types
                .iter()
                .find(|t| t.group == key.group && t.plural == key.plural)
                .cloned()
            else {
                continue;
            };
            self.controller_update(
                st,
                &rt,
                &key.namespace,
                &key.name,
                "kube-controller-manager",
                "",
                |o| {
                    util::set_path(o, &["metadata", "finalizers"], json!(rest));
                },
            );
        }
    }

    fn remove_key(&self, st: &mut State, key: &ObjKey) {
        let rt = st
            .types
            .iter()
            .find(|t| t.group == key.group && t.plural == key.plural)
            .cloned();
        if let Some(gone) = st.remove(key)
            && let Some(rt) = rt
        {
            self.after_delete(st, &rt, &gone);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_policies_map_to_finalizers() {
        assert_eq!(deletion_finalizer(Some("Foreground")), Some(FOREGROUND));
        assert_eq!(deletion_finalizer(Some("Orphan")), Some(ORPHAN));
        assert_eq!(deletion_finalizer(Some("Background")), None);
        assert_eq!(deletion_finalizer(None), None);
    }
}
