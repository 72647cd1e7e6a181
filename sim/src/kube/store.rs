//! The object store of one cluster: objects by (group, resource, namespace, name), one
//! resourceVersion counter, a bounded event history for watches, and the registered watchers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use super::registry::{self, ResourceType};
use super::selectors::{FieldSelector, LabelSelector};
use super::util::{self, Rng};

/// How many events the history keeps for watches that resume from a resourceVersion.
const HISTORY: usize = 10_000;

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    pub fn new(rt: &ResourceType, namespace: &str, name: &str) -> ObjKey {
        ObjKey {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: if rt.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as history keeps it and watchers receive it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub key: ObjKey,
    pub object: Value,
}

/// What a watcher is interested in.
#[derive(Debug, Clone)]
pub struct WatchFilter {
    pub group: String,
    pub plural: String,
    /// `None` = every namespace.
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl WatchFilter {
    pub fn matches(&self, key: &ObjKey, obj: &Value) -> bool {
        key.group == self.group
            && key.plural == self.plural
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| ns == &key.namespace)
            && self.labels.matches(obj.pointer("/metadata/labels"))
            && self.fields.matches(obj)
    }
}

#[derive(Debug)]
pub struct Watcher {
    pub filter: WatchFilter,
    pub tx: UnboundedSender<Arc<Event>>,
}

/// A minted ServiceAccount token.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub namespace: String,
    pub sa_name: String,
    pub sa_uid: String,
    pub audiences: Vec<String>,
    /// Unix seconds; `None` for legacy Secret tokens.
    pub expires: Option<i64>,
    /// The legacy token's Secret, which must still exist.
    pub secret: Option<String>,
    pub jti: String,
}

/// The whole mutable state of one cluster.
#[derive(Debug)]
pub struct State {
    pub rv: u64,
    pub objects: BTreeMap<ObjKey, Value>,
    pub history: VecDeque<Arc<Event>>,
    pub watchers: Vec<Watcher>,
    pub types: Vec<ResourceType>,
    pub rng: Rng,
    pub tokens: HashMap<String, TokenInfo>,
}

impl State {
    pub fn new() -> State {
        State {
            rv: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            watchers: Vec::new(),
            types: registry::builtins(),
            rng: Rng::from_entropy(),
            tokens: HashMap::new(),
        }
    }

    /// The served type for a group/version/resource.
    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// The served type for an apiVersion/kind.
    pub fn type_for_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
    }

    /// Whether any type of this group/version is served.
    pub fn serves(&self, group: &str, version: &str) -> bool {
        self.types
            .iter()
            .any(|t| t.group == group && t.version == version)
    }

    pub fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&ObjKey::new(rt, namespace, name))
    }

    /// Objects of a type, in key order (namespace, then name).
    pub fn list(&self, rt: &ResourceType, namespace: Option<&str>) -> Vec<(&ObjKey, &Value)> {
        self.objects
            .iter()
            .filter(|(k, _)| k.group == rt.group && k.plural == rt.plural)
            .filter(|(k, _)| namespace.is_none_or(|ns| !rt.namespaced || k.namespace == ns))
            .collect()
    }

    pub fn uid(&mut self) -> String {
        self.rng.uuid()
    }

    /// Stores an object (create or update): assigns the next resourceVersion, records the
    /// event and notifies watchers. Returns the stored object.
    pub fn put(&mut self, rt: &ResourceType, mut obj: Value, kind: EventType) -> Value {
        self.rv += 1;
        util::set_path(
            &mut obj,
            &["metadata", "resourceVersion"],
            json!(self.rv.to_string()),
        );
        let ns = util::get_str(&obj, &["metadata", "namespace"])
            .unwrap_or_default()
            .to_string();
        let name = util::get_str(&obj, &["metadata", "name"])
            .unwrap_or_default()
            .to_string();
        let key = ObjKey::new(rt, &ns, &name);
        self.objects.insert(key.clone(), obj.clone());
        self.record(Event {
            rv: self.rv,
            kind,
            key,
            object: obj.clone(),
        });
        if rt.kind == "CustomResourceDefinition" {
            self.refresh_crd_types();
        }
        obj
    }

    /// Deletes an object; the DELETED event carries its last state with a new resourceVersion.
    pub fn remove(&mut self, key: &ObjKey) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        util::set_path(
            &mut obj,
            &["metadata", "resourceVersion"],
            json!(self.rv.to_string()),
        );
        self.record(Event {
            rv: self.rv,
            kind: EventType::Deleted,
            key: key.clone(),
            object: obj.clone(),
        });
        if key.plural == "customresourcedefinitions" && key.group == "apiextensions.k8s.io" {
            self.refresh_crd_types();
            // The CRD's objects go with it.
            let (group, plural) = (
                util::get_str(&obj, &["spec", "group"])
                    .unwrap_or_default()
                    .to_string(),
                util::get_str(&obj, &["spec", "names", "plural"])
                    .unwrap_or_default()
                    .to_string(),
            );
            let doomed: Vec<ObjKey> = self
                .objects
                .keys()
                .filter(|k| k.group == group && k.plural == plural)
                .cloned()
                .collect();
            for k in doomed {
                self.remove(&k);
            }
        }
        Some(obj)
    }

    fn record(&mut self, event: Event) {
        let event = Arc::new(event);
        self.history.push_back(event.clone());
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
        self.watchers.retain(|w| {
            if w.tx.is_closed() {
                return false;
            }
            if w.filter.matches(&event.key, &event.object) {
                return w.tx.send(event.clone()).is_ok();
            }
            true
        });
    }

    /// The oldest resourceVersion a watch can resume from for a type.
    pub fn oldest_watchable(&self, rt: &ResourceType) -> u64 {
        let history_start = self
            .history
            .front()
            .map(|e| e.rv.saturating_sub(1))
            .unwrap_or(self.rv);
        history_start.max(rt.since_rv)
    }

    /// Rebuilds the custom resource types from the Established CRDs.
    fn refresh_crd_types(&mut self) {
        let crds: Vec<Value> = self
            .objects
            .iter()
            .filter(|(k, _)| {
                k.plural == "customresourcedefinitions" && k.group == "apiextensions.k8s.io"
            })
            .map(|(_, v)| v.clone())
            .filter(|crd| {
                crd.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Established" && c["status"] == "True")
                    })
            })
            .collect();
        let mut types: Vec<ResourceType> = self
            .types
            .iter()
            .filter(|t| !t.is_custom())
            .cloned()
            .collect();
        for crd in &crds {
            for mut t in registry::from_crd(crd, self.rv) {
                // A type keeps the rv it was first served at (its watch cache's start).
                if let Some(old) = self.types.iter().find(|o| {
                    o.is_custom()
                        && o.group == t.group
                        && o.version == t.version
                        && o.plural == t.plural
                }) {
                    t.since_rv = old.since_rv;
                }
                types.push(t);
            }
        }
        self.types = types;
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}
