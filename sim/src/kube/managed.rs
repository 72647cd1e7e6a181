//! managedFields: who owns which field. Updates (POST/PUT/PATCH) give the writer the fields it
//! changed and take them from everyone else; server-side apply gives the applier exactly the
//! fields of its configuration, detects conflicts with other owners, and removes fields the
//! applier stopped specifying that nobody else owns.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::fieldset::{self, FieldSet, Walker, display_path};
use super::util::parse_rfc3339;

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
    pub subresource: String,
}

impl Entry {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        m.insert("time".into(), json!(self.time));
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }

    fn same_owner(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

/// The entries of an object's `metadata.managedFields`.
pub fn read(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or_default().into(),
            operation: e["operation"].as_str().unwrap_or_default().into(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
            time: e["time"].as_str().unwrap_or_default().into(),
            fields: FieldSet::from_fields_v1(&e["fieldsV1"]),
            subresource: e["subresource"].as_str().unwrap_or_default().into(),
        })
        .collect()
}

/// Writes entries back, dropping empty ones and sorting like the apiserver (operation, time,
/// manager, apiVersion, subresource).
pub fn write(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        (
            a.operation.as_str(),
            parse_rfc3339(&a.time).unwrap_or(0),
            a.manager.as_str(),
            a.api_version.as_str(),
            a.subresource.as_str(),
        )
            .cmp(&(
                b.operation.as_str(),
                parse_rfc3339(&b.time).unwrap_or(0),
                b.manager.as_str(),
                b.api_version.as_str(),
                b.subresource.as_str(),
            ))
    });
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

/// A copy without managedFields (what ownership is computed over).
pub fn strip(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    o
}

/// Records an update by `manager`: returns the new entries.
#[allow(clippy::too_many_arguments)]
pub fn track_update(
    w: &Walker,
    mut entries: Vec<Entry>,
    old: &Value,
    new: &Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
    now: &str,
) -> Vec<Entry> {
    let d = fieldset::diff(w, &strip(old), &strip(new));
    if d.changed.is_empty() && d.removed.is_empty() {
        return entries;
    }
    for e in &mut entries {
        if !e.same_owner(manager, "Update", subresource) {
            e.fields.subtract(&d.changed);
            e.fields.subtract_subtrees(&d.removed);
        }
    }
    match entries
        .iter_mut()
        .find(|e| e.same_owner(manager, "Update", subresource))
    {
        Some(e) => {
            e.fields.union(&d.changed);
            e.fields.subtract_subtrees(&d.removed);
            if !d.changed.is_empty() {
                e.time = now.to_string();
                e.api_version = api_version.to_string();
            }
        }
        None if !d.changed.is_empty() => entries.push(Entry {
            manager: manager.into(),
            operation: "Update".into(),
            api_version: api_version.into(),
            time: now.into(),
            fields: d.changed,
            subresource: subresource.into(),
        }),
        None => {}
    }
    entries
}

/// Conflicting fields of an apply, by the manager that owns them.
#[derive(Debug, Clone)]
pub struct Conflicts(pub Vec<(String, String)>);

impl Conflicts {
    /// `Apply failed with N conflict(s): …` as the apiserver words it.
    pub fn message(&self) -> String {
        let n = self.0.len();
        if n == 1 {
            let (m, p) = &self.0[0];
            return format!("Apply failed with 1 conflict: conflict with \"{m}\": {p}");
        }
        let mut by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (m, p) in &self.0 {
            by.entry(m).or_default().push(p);
        }
        let mut lines = Vec::new();
        for (m, mut ps) in by {
            ps.sort();
            lines.push(format!("conflicts with \"{m}\":"));
            lines.extend(ps.iter().map(|p| format!("- {p}")));
        }
        format!("Apply failed with {n} conflicts: {}", lines.join("\n"))
    }

    pub fn causes(&self) -> Value {
        let mut sorted = self.0.clone();
        sorted.sort_by(|a, b| a.1.cmp(&b.1));
        Value::Array(
            sorted
                .iter()
                .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": p}))
                .collect(),
        )
    }
}

/// Merges an applied configuration into the live object (maps merge, keyed lists merge by
/// key, atomic values are replaced).
pub fn merge_config(w: &Walker, live: &Value, config: &Value) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) if !w.atomic_object() => {
            let mut out = l.clone();
            for (k, cv) in c {
                let merged = match out.get(k) {
                    Some(lv) => merge_config(&w.child(k), lv, cv),
                    None => cv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => match w.list_keys(c.first().or(l.first())) {
            Some(keys) => {
                let iw = w.item();
                let mut out = l.clone();
                for ci in c {
                    let k = fieldset::key_element(&keys, ci);
                    match out
                        .iter()
                        .position(|li| fieldset::key_element(&keys, li) == k)
                    {
                        Some(i) => out[i] = merge_config(&iw, &out[i], ci),
                        None => out.push(ci.clone()),
                    }
                }
                Value::Array(out)
            }
            None => config.clone(),
        },
        _ => config.clone(),
    }
}

/// The outcome of a server-side apply.
#[derive(Debug)]
pub struct Applied {
    /// The object after the apply, managedFields included.
    pub object: Value,
    /// Whether anything (object or ownership) changed.
    pub changed: bool,
}

/// Server-side apply of `config` by `manager` onto `live` (an empty object for a create).
#[allow(clippy::too_many_arguments)]
pub fn apply(
    w: &Walker,
    live: &Value,
    config: &Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
    force: bool,
    now: &str,
) -> Result<Applied, Conflicts> {
    let mut entries = read(live);
    let live_plain = strip(live);
    let applied = fieldset::set_from_config(w, config);

    // Conflicts: fields the config sets to a different value that someone else owns.
    let mut conflicts = Vec::new();
    let mut conflict_sets: Vec<(usize, FieldSet)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.same_owner(manager, "Apply", subresource) {
            continue;
        }
        let mut lost = FieldSet::default();
        for (path, is_leaf) in applied.intersect(&e.fields).members() {
            if !is_leaf {
                continue;
            }
            if fieldset::value_at(config, &path) != fieldset::value_at(&live_plain, &path) {
                let who = if e.api_version == api_version {
                    e.manager.clone()
                } else {
                    format!("{} using {}", e.manager, e.api_version)
                };
                conflicts.push((who, display_path(&path)));
                lost.insert(&path);
            }
        }
        if !lost.is_empty() {
            conflict_sets.push((i, lost));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(Conflicts(conflicts));
    }
    for (i, lost) in conflict_sets {
        entries[i].fields.subtract(&lost);
    }

    let mut merged = merge_config(w, &live_plain, config);

    // Fields this manager applied before, no longer applies, and nobody else owns go away.
    let previous = entries
        .iter()
        .find(|e| e.same_owner(manager, "Apply", subresource))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut others = FieldSet::default();
    for e in entries
        .iter()
        .filter(|e| !e.same_owner(manager, "Apply", subresource))
    {
        others.union(&e.fields);
    }
    let mut gone = previous.clone();
    gone.subtract(&applied);
    for (path, _) in gone.members() {
        if !others.has_under(&path) && !applied.has_under(&path) {
            fieldset::remove_at(&mut merged, &path);
        }
    }

    let object_changed = merged != live_plain;
    let set_changed = previous != applied
        || !entries
            .iter()
            .any(|e| e.same_owner(manager, "Apply", subresource));
    let others_changed = read(live)
        .iter()
        .zip(entries.iter())
        .any(|(a, b)| a.fields != b.fields);
    let changed = object_changed || set_changed || others_changed;
    match entries
        .iter_mut()
        .find(|e| e.same_owner(manager, "Apply", subresource))
    {
        Some(e) => {
            e.fields = applied;
            e.api_version = api_version.into();
            if object_changed || set_changed {
                e.time = now.into();
            }
        }
        None => entries.push(Entry {
            manager: manager.into(),
            operation: "Apply".into(),
            api_version: api_version.into(),
            time: now.into(),
            fields: applied,
            subresource: subresource.into(),
        }),
    }
    write(&mut merged, entries);
    Ok(Applied {
        object: merged,
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2025-01-01T00:00:00Z";

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "data": data})
    }

    #[test]
    fn apply_conflicts_force_and_removal() {
        let w = Walker::root("ConfigMap", None);
        let empty = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}});
        let a = apply(
            &w,
            &empty,
            &cm(json!({"mode": "managed", "channel": "regular"})),
            "asm",
            "v1",
            "",
            false,
            NOW,
        )
        .unwrap();
        let again = apply(
            &w,
            &a.object,
            &cm(json!({"mode": "managed", "channel": "regular"})),
            "asm",
            "v1",
            "",
            false,
            NOW,
        )
        .unwrap();
        assert!(!again.changed);
        let err = apply(
            &w,
            &a.object,
            &cm(json!({"mode": "x"})),
            "other",
            "v1",
            "",
            false,
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "Apply failed with 1 conflict: conflict with \"asm\": .data.mode"
        );
        let err = apply(
            &w,
            &a.object,
            &cm(json!({"mode": "x", "channel": "y"})),
            "other",
            "v1",
            "",
            false,
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "Apply failed with 2 conflicts: conflicts with \"asm\":\n- .data.channel\n- .data.mode"
        );
        let forced = apply(
            &w,
            &a.object,
            &cm(json!({"mode": "x", "channel": "y"})),
            "other",
            "v1",
            "",
            true,
            NOW,
        )
        .unwrap();
        let entries = read(&forced.object);
        assert_eq!(entries.len(), 1, "asm lost everything: {entries:?}");
        // Removal by the sole owner.
        let b = apply(
            &w,
            &empty,
            &cm(json!({"keep": "1", "drop": "2"})),
            "asm",
            "v1",
            "",
            false,
            NOW,
        )
        .unwrap();
        let c = apply(
            &w,
            &b.object,
            &cm(json!({"keep": "1"})),
            "asm",
            "v1",
            "",
            false,
            NOW,
        )
        .unwrap();
        assert_eq!(c.object["data"], json!({"keep": "1"}));
    }

    #[test]
    fn update_takes_ownership() {
        let w = Walker::root("ConfigMap", None);
        let old = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
        let new = json!({"metadata": {"name": "c", "labels": {"x": "y"}}, "data": {"a": "2"}});
        let entries = vec![Entry {
            manager: "asm".into(),
            operation: "Apply".into(),
            api_version: "v1".into(),
            time: NOW.into(),
            fields: FieldSet::from_fields_v1(&json!({"f:data": {"f:a": {}}})),
            subresource: String::new(),
        }];
        let out = track_update(&w, entries, &old, &new, "curl", "v1", "", NOW);
        assert_eq!(out.len(), 2);
        assert!(out[0].fields.is_empty());
        assert_eq!(
            out[1].fields.to_fields_v1(),
            json!({"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}})
        );
    }
}
