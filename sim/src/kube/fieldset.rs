//! Field sets in the managedFields `fieldsV1` shape, and the type knowledge needed to build
//! them: which lists are associative (merged by key), which objects are atomic, and which
//! objects are maps.
//!
//! A path element is kept in its `fieldsV1` spelling (`f:name`, `k:{"name":"x"}`), so a set is
//! a tree keyed exactly like the JSON the server stores and answers.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A set of field paths: `own` means the node itself is a member (`"."` or a leaf `{}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    pub own: bool,
    pub children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    pub fn leaf() -> FieldSet {
        FieldSet {
            own: true,
            children: BTreeMap::new(),
        }
    }

    /// Parses a `fieldsV1` object.
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        if let Value::Object(m) = v {
            if m.is_empty() {
                set.own = true;
            }
            for (k, child) in m {
                if k == "." {
                    set.own = true;
                } else {
                    set.children
                        .insert(k.clone(), FieldSet::from_fields_v1(child));
                }
            }
        }
        set
    }

    /// Renders the set as `fieldsV1` (the root is never `own`).
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.own && !self.children.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.to_fields_v1());
        }
        Value::Object(m)
    }

    pub fn is_empty(&self) -> bool {
        !self.own && self.children.values().all(FieldSet::is_empty)
    }

    pub fn union(&mut self, other: &FieldSet) {
        self.own |= other.own;
        for (k, c) in &other.children {
            self.children.entry(k.clone()).or_default().union(c);
        }
    }

    /// Removes exactly the members of `other`.
    pub fn subtract(&mut self, other: &FieldSet) {
        if other.own {
            self.own = false;
        }
        for (k, c) in &other.children {
            if let Some(mine) = self.children.get_mut(k) {
                mine.subtract(c);
                if mine.is_empty() {
                    self.children.remove(k);
                }
            }
        }
    }

    /// Removes the members of `other` and everything below them.
    pub fn subtract_subtrees(&mut self, other: &FieldSet) {
        for (k, c) in &other.children {
            if c.own {
                self.children.remove(k);
            } else if let Some(mine) = self.children.get_mut(k) {
                mine.subtract_subtrees(c);
                if mine.is_empty() {
                    self.children.remove(k);
                }
            }
        }
    }

    pub fn intersect(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            own: self.own && other.own,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersect(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Whether anything at or below `path` is a member.
    pub fn has_under(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => !self.is_empty(),
            Some((k, rest)) => self.children.get(k).is_some_and(|c| c.has_under(rest)),
        }
    }

    /// Every member path.
    pub fn members(&self) -> Vec<(Vec<String>, bool)> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, bool)>) {
        if self.own && !prefix.is_empty() {
            out.push((prefix.clone(), self.children.is_empty()));
        }
        for (k, c) in &self.children {
            prefix.push(k.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// Inserts a path as a member.
    pub fn insert(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.own = true,
            Some((k, rest)) => self.children.entry(k.clone()).or_default().insert(rest),
        }
    }
}

/// `.data.mode`, `.spec.containers[name="x"].image`: a path as conflict messages print it.
pub fn display_path(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if let Some(f) = p.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = p.strip_prefix("k:") {
            let parsed: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let inner: Vec<String> = parsed.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("[{}]", inner.join(",")));
        } else if let Some(v) = p.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// Type knowledge at one position of an object: built-in (by field names) or custom (by the
/// CRD's structural schema).
#[derive(Debug, Clone)]
pub struct Walker<'a> {
    kind: &'a str,
    /// Field names from the root (list items add nothing).
    path: Vec<String>,
    /// Schema node for custom resources; `None` for built-ins or where the schema says nothing.
    node: Option<&'a Value>,
    custom: bool,
}

/// Built-in associative lists: the field name and its key fields.
fn builtin_list_keys(name: &str, item: Option<&Value>) -> Option<Vec<String>> {
    let keys: &[&str] = match name {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "webhooks"
        | "imagePullSecrets" => &["name"],
        "volumeMounts" => &["mountPath"],
        "conditions" => &["type"],
        "ownerReferences" => &["uid"],
        "ports" => {
            if item.is_some_and(|i| i.get("containerPort").is_some()) {
                &["containerPort", "protocol"]
            } else {
                &["port", "protocol"]
            }
        }
        _ => return None,
    };
    Some(keys.iter().map(|s| s.to_string()).collect())
}

/// Built-in structs that are atomic (replaced whole): label selectors, RBAC role refs.
const BUILTIN_ATOMIC: &[&str] = &[
    "namespaceSelector",
    "objectSelector",
    "roleRef",
    "labelSelector",
];

/// Built-in structs that exist in an empty object (non-pointer Go fields), so creating them
/// is not "adding" them.
const ALWAYS_PRESENT: &[&str] = &[
    "metadata",
    "spec",
    "status",
    "spec.template",
    "spec.template.metadata",
    "spec.template.spec",
    "spec.template.spec.containers",
    "spec.containers",
    "spec.strategy",
    "spec.names",
    "status.acceptedNames",
];

impl<'a> Walker<'a> {
    pub fn root(kind: &'a str, schema: Option<&'a Value>) -> Walker<'a> {
        Walker {
            kind,
            path: Vec::new(),
            node: schema,
            custom: schema.is_some(),
        }
    }

    fn dotted(&self) -> String {
        self.path.join(".")
    }

    fn last(&self) -> &str {
        self.path.last().map(String::as_str).unwrap_or("")
    }

    /// Whether this position is governed by a CRD schema (metadata never is).
    fn is_custom(&self) -> bool {
        self.custom && self.path.first().map(String::as_str) != Some("metadata")
    }

    pub fn child(&self, field: &str) -> Walker<'a> {
        let mut path = self.path.clone();
        path.push(field.to_string());
        let node = self.node.and_then(|n| {
            n.get("properties")
                .and_then(|p| p.get(field))
                .or_else(|| n.get("additionalProperties").filter(|a| a.is_object()))
        });
        Walker {
            kind: self.kind,
            path,
            node,
            custom: self.custom,
        }
    }

    pub fn item(&self) -> Walker<'a> {
        Walker {
            kind: self.kind,
            path: self.path.clone(),
            node: self.node.and_then(|n| n.get("items")),
            custom: self.custom,
        }
    }

    /// Key fields when this position is an associative list.
    pub fn list_keys(&self, item: Option<&Value>) -> Option<Vec<String>> {
        if self.is_custom() {
            let n = self.node?;
            if n.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
                return n
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    });
            }
            return None;
        }
        if self.dotted() == "metadata.finalizers" {
            return None;
        }
        builtin_list_keys(self.last(), item)
    }

    /// Whether this object is replaced whole.
    pub fn atomic_object(&self) -> bool {
        if self.is_custom() {
            return self
                .node
                .and_then(|n| n.get("x-kubernetes-map-type"))
                .and_then(Value::as_str)
                == Some("atomic");
        }
        // ServiceSpec.selector is a `+mapType=atomic` map[string]string.
        if matches!(self.kind, "Deployment" | "ReplicaSet" | "Service")
            && self.dotted() == "spec.selector"
        {
            return true;
        }
        BUILTIN_ATOMIC.contains(&self.last())
    }

    /// Whether creating this object counts as adding it (a `"."` member in Update sets).
    pub fn counts_as_added(&self) -> bool {
        if self.path.is_empty() {
            return false;
        }
        if self.is_custom() {
            return true;
        }
        !ALWAYS_PRESENT.contains(&self.dotted().as_str())
    }

    /// Whether `field` at this position is server-owned metadata that no manager tracks.
    pub fn untracked(&self, field: &str) -> bool {
        match self.path.len() {
            0 => matches!(field, "apiVersion" | "kind"),
            1 if self.path[0] == "metadata" => matches!(
                field,
                "name"
                    | "namespace"
                    | "uid"
                    | "resourceVersion"
                    | "generation"
                    | "creationTimestamp"
                    | "deletionTimestamp"
                    | "deletionGracePeriodSeconds"
                    | "managedFields"
                    | "selfLink"
            ),
            _ => false,
        }
    }
}

/// The `k:{…}` element naming a list item by its key fields.
pub fn key_element(keys: &[String], item: &Value) -> String {
    let mut m = BTreeMap::new();
    for k in keys {
        if let Some(v) = item.get(k) {
            m.insert(k.clone(), v.clone());
        }
    }
    let obj: Map<String, Value> = m.into_iter().collect();
    format!("k:{}", Value::Object(obj))
}

/// The set of fields an applied configuration specifies (server-side apply ownership).
pub fn set_from_config(w: &Walker, v: &Value) -> FieldSet {
    let mut set = FieldSet::default();
    match v {
        Value::Object(m) if !m.is_empty() && !w.atomic_object() => {
            for (k, child) in m {
                if w.untracked(k) {
                    continue;
                }
                let cw = w.child(k);
                let cs = child_config_set(&cw, child);
                if !cs.is_empty() {
                    set.children.insert(format!("f:{k}"), cs);
                }
            }
        }
        _ => set.own = true,
    }
    set
}

fn child_config_set(w: &Walker, v: &Value) -> FieldSet {
    match v {
        Value::Object(m) if !m.is_empty() && !w.atomic_object() => set_from_config(w, v),
        Value::Array(items) => match w.list_keys(items.first()) {
            Some(keys) if !items.is_empty() => {
                let iw = w.item();
                let mut set = FieldSet::default();
                for item in items {
                    let mut is = set_from_config(&iw, item);
                    is.own = true;
                    set.children.insert(key_element(&keys, item), is);
                }
                set
            }
            _ => FieldSet::leaf(),
        },
        _ => FieldSet::leaf(),
    }
}

/// Everything a newly added value consists of (Update ownership of added subtrees).
fn added_set(w: &Walker, v: &Value) -> FieldSet {
    match v {
        Value::Object(m) if !w.atomic_object() && !m.is_empty() => {
            let mut set = FieldSet {
                own: w.counts_as_added(),
                children: BTreeMap::new(),
            };
            for (k, child) in m {
                if w.untracked(k) {
                    continue;
                }
                let cs = added_set(&w.child(k), child);
                if !cs.is_empty() {
                    set.children.insert(format!("f:{k}"), cs);
                }
            }
            if set.children.is_empty() && !w.counts_as_added() {
                return FieldSet::default();
            }
            if set.children.is_empty() {
                set.own = true;
            }
            set
        }
        Value::Object(_) if !w.counts_as_added() => FieldSet::default(),
        Value::Array(items) => match w.list_keys(items.first()) {
            Some(keys) if !items.is_empty() => {
                let iw = w.item();
                let mut set = FieldSet {
                    own: w.counts_as_added(),
                    children: BTreeMap::new(),
                };
                for item in items {
                    let mut is = added_set(&iw, item);
                    is.own = true;
                    set.children.insert(key_element(&keys, item), is);
                }
                set
            }
            _ => FieldSet::leaf(),
        },
        Value::Null => FieldSet::default(),
        _ => FieldSet::leaf(),
    }
}

/// What an update changed: `changed` holds added or modified members, `removed` the roots of
/// removed subtrees.
#[derive(Debug, Default)]
pub struct Diff {
    pub changed: FieldSet,
    pub removed: FieldSet,
}

/// Compares two versions of an object.
pub fn diff(w: &Walker, old: &Value, new: &Value) -> Diff {
    let mut d = Diff::default();
    diff_into(w, Some(old), Some(new), &mut d.changed, &mut d.removed);
    d
}

fn diff_into(
    w: &Walker,
    old: Option<&Value>,
    new: Option<&Value>,
    changed: &mut FieldSet,
    removed: &mut FieldSet,
) {
    match (old, new) {
        (None, None) => {}
        (Some(_), None) | (Some(_), Some(Value::Null)) => removed.own = true,
        (None, Some(n)) => *changed = added_set(w, n),
        // A field that was present as null (a CRD's `status.conditions`) already existed: its
        // new content is added, the container itself is not.
        (Some(Value::Null), Some(n)) => {
            *changed = added_set(w, n);
            if !changed.children.is_empty() {
                changed.own = false;
            }
        }
        (Some(Value::Object(o)), Some(Value::Object(n))) if !w.atomic_object() => {
            let keys: Vec<&String> = o
                .keys()
                .chain(n.keys().filter(|k| !o.contains_key(*k)))
                .collect();
            for k in keys {
                if w.untracked(k) {
                    continue;
                }
                let (mut c, mut r) = (FieldSet::default(), FieldSet::default());
                diff_into(&w.child(k), o.get(k), n.get(k), &mut c, &mut r);
                if !c.is_empty() {
                    changed.children.insert(format!("f:{k}"), c);
                }
                if !r.is_empty() {
                    removed.children.insert(format!("f:{k}"), r);
                }
            }
        }
        (Some(Value::Array(o)), Some(Value::Array(n))) => {
            match w.list_keys(n.first().or(o.first())) {
                Some(keys) => {
                    let iw = w.item();
                    let old_items: Vec<(String, &Value)> =
                        o.iter().map(|i| (key_element(&keys, i), i)).collect();
                    let new_items: Vec<(String, &Value)> =
                        n.iter().map(|i| (key_element(&keys, i), i)).collect();
                    for (k, ni) in &new_items {
                        let oi = old_items.iter().find(|(ok, _)| ok == k).map(|(_, v)| *v);
                        let (mut c, mut r) = (FieldSet::default(), FieldSet::default());
                        match oi {
                            Some(oi) => diff_into(&iw, Some(oi), Some(ni), &mut c, &mut r),
                            None => {
                                c = added_set(&iw, ni);
                                c.own = true;
                            }
                        }
                        if !c.is_empty() {
                            changed.children.insert(k.clone(), c);
                        }
                        if !r.is_empty() {
                            removed.children.insert(k.clone(), r);
                        }
                    }
                    for (k, _) in &old_items {
                        if !new_items.iter().any(|(nk, _)| nk == k) {
                            removed.children.insert(k.clone(), FieldSet::leaf());
                        }
                    }
                }
                None => {
                    if o != n {
                        changed.own = true;
                    }
                }
            }
        }
        (Some(o), Some(n)) => {
            if o != n {
                changed.own = true;
            }
        }
    }
}

/// The value at a set path inside an object.
pub fn value_at<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = v;
    for p in path {
        cur = step(cur, p)?;
    }
    Some(cur)
}

fn step<'v>(v: &'v Value, p: &str) -> Option<&'v Value> {
    if let Some(f) = p.strip_prefix("f:") {
        return v.get(f);
    }
    if let Some(k) = p.strip_prefix("k:") {
        let keys: Map<String, Value> = serde_json::from_str(k).ok()?;
        return v
            .as_array()?
            .iter()
            .find(|i| keys.iter().all(|(kk, kv)| i.get(kk) == Some(kv)));
    }
    None
}

/// Removes the value at a set path; empty parent objects left behind are removed too.
pub fn remove_at(v: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        if let Some(f) = first.strip_prefix("f:") {
            if let Some(m) = v.as_object_mut() {
                m.remove(f);
            }
        } else if let Some(k) = first.strip_prefix("k:") {
            let keys: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            if let Some(a) = v.as_array_mut() {
                a.retain(|i| !keys.iter().all(|(kk, kv)| i.get(kk) == Some(kv)));
            }
        }
        return;
    }
    let child = if let Some(f) = first.strip_prefix("f:") {
        v.get_mut(f)
    } else if let Some(k) = first.strip_prefix("k:") {
        let keys: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
        v.as_array_mut().and_then(|a| {
            a.iter_mut()
                .find(|i| keys.iter().all(|(kk, kv)| i.get(kk) == Some(kv)))
        })
    } else {
        None
    };
    if let Some(child) = child {
        remove_at(child, rest);
        let now_empty = child.as_object().is_some_and(Map::is_empty)
            || child.as_array().is_some_and(Vec::is_empty);
        if now_empty && first.starts_with("f:") {
            remove_at(v, std::slice::from_ref(first));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trip() {
        let v = json!({"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {"f:x": {}}}});
        let s = FieldSet::from_fields_v1(&v);
        assert_eq!(s.to_fields_v1(), v);
    }

    #[test]
    fn create_diff_marks_new_maps() {
        let w = Walker::root("ConfigMap", None);
        let d = diff(
            &w,
            &json!({"metadata": {"name": "x"}}),
            &json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "data": {"k": "v"}}),
        );
        assert_eq!(
            d.changed.to_fields_v1(),
            json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
        );
    }

    #[test]
    fn apply_set_of_config() {
        let w = Walker::root("ConfigMap", None);
        let s = set_from_config(
            &w,
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"app": "a"}}, "data": {"m": "1"}}),
        );
        assert_eq!(
            s.to_fields_v1(),
            json!({"f:data": {"f:m": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
        );
        assert_eq!(
            display_path(&["f:data".into(), "f:mode".into()]),
            ".data.mode"
        );
    }
}
