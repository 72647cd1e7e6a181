//! The non-apply PATCH formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
//! strategic merge patch (merge patch plus keyed list merging and `$patch` directives).

use serde_json::{Map, Value};

use super::fieldset::Walker;

/// RFC 7386: objects merge, `null` deletes, everything else replaces.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut out = match target {
                Value::Object(t) => t.clone(),
                _ => Map::new(),
            };
            for (k, v) in p {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Why a JSON patch failed.
#[derive(Debug)]
pub enum JsonPatchError {
    /// A `test` operation did not hold.
    TestFailed,
    /// Any other problem (bad path, bad operation).
    Invalid(String),
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn tokens(pointer: &str) -> Result<Vec<String>, JsonPatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| JsonPatchError::Invalid(format!("invalid path {pointer:?}")))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(doc: &'a mut Value, toks: &[String]) -> Result<&'a mut Value, JsonPatchError> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| JsonPatchError::Invalid(format!("missing path component {t:?}")))?;
    }
    Ok(cur)
}

fn add(doc: &mut Value, toks: &[String], value: Value) -> Result<(), JsonPatchError> {
    let Some((last, parents)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parents)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let idx = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .map_err(|_| JsonPatchError::Invalid("bad index".into()))?
            };
            if idx > a.len() {
                return Err(JsonPatchError::Invalid("index out of range".into()));
            }
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(JsonPatchError::Invalid("parent is not a container".into())),
    }
}

fn remove(doc: &mut Value, toks: &[String]) -> Result<Value, JsonPatchError> {
    let (last, parents) = toks
        .split_last()
        .ok_or_else(|| JsonPatchError::Invalid("cannot remove the root".into()))?;
    match parent_mut(doc, parents)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| JsonPatchError::Invalid(format!("missing key {last:?}"))),
        Value::Array(a) => {
            let idx = last
                .parse::<usize>()
                .map_err(|_| JsonPatchError::Invalid("bad index".into()))?;
            if idx >= a.len() {
                return Err(JsonPatchError::Invalid("index out of range".into()));
            }
            Ok(a.remove(idx))
        }
        _ => Err(JsonPatchError::Invalid("parent is not a container".into())),
    }
}

fn get<'a>(doc: &'a Value, toks: &[String]) -> Option<&'a Value> {
    toks.iter().try_fold(doc, |cur, t| match cur {
        Value::Object(m) => m.get(t),
        Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// RFC 6902.
pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, JsonPatchError> {
    let ops = ops
        .as_array()
        .ok_or_else(|| JsonPatchError::Invalid("a JSON patch is an array".into()))?;
    let mut doc = target.clone();
    for op in ops {
        let path = tokens(op["path"].as_str().unwrap_or_default())?;
        match op["op"].as_str().unwrap_or_default() {
            "add" => add(
                &mut doc,
                &path,
                op.get("value").cloned().unwrap_or(Value::Null),
            )?,
            "remove" => {
                remove(&mut doc, &path)?;
            }
            "replace" => {
                remove(&mut doc, &path)?;
                add(
                    &mut doc,
                    &path,
                    op.get("value").cloned().unwrap_or(Value::Null),
                )?;
            }
            "move" => {
                let from = tokens(op["from"].as_str().unwrap_or_default())?;
                let v = remove(&mut doc, &from)?;
                add(&mut doc, &path, v)?;
            }
            "copy" => {
                let from = tokens(op["from"].as_str().unwrap_or_default())?;
                let v = get(&doc, &from)
                    .cloned()
                    .ok_or_else(|| JsonPatchError::Invalid("missing from".into()))?;
                add(&mut doc, &path, v)?;
            }
            "test" => {
                if get(&doc, &path) != op.get("value") {
                    return Err(JsonPatchError::TestFailed);
                }
            }
            other => {
                return Err(JsonPatchError::Invalid(format!(
                    "unexpected operation {other:?}"
                )));
            }
        }
    }
    Ok(doc)
}

/// Strategic merge patch for built-in types: like a merge patch, but associative lists
/// (containers, env, ports, volumes, conditions…) merge by key, `$patch: delete|replace`
/// directives apply, and the `$setElementOrder`/`$retainKeys` hints kubectl adds are honoured
/// or ignored.
pub fn strategic_merge(w: &Walker, target: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = p.clone();
        p.remove("$patch");
        return Value::Object(p);
    }
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            out.remove(k);
            continue;
        }
        let cw = w.child(k);
        let cur = out.get(k).cloned().unwrap_or(Value::Null);
        let merged = match (v, &cur) {
            (Value::Object(_), _) if !cw.atomic_object() => strategic_merge(&cw, &cur, v),
            (Value::Array(items), Value::Array(existing)) => {
                match cw.list_keys(items.first().or(existing.first())) {
                    Some(keys) => merge_keyed_list(&cw, existing, items, &keys),
                    None => v.clone(),
                }
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    Value::Object(out)
}

fn merge_keyed_list(w: &Walker, existing: &[Value], items: &[Value], keys: &[String]) -> Value {
    let iw = w.item();
    let same = |a: &Value, b: &Value| keys.iter().all(|k| a.get(k) == b.get(k));
    let mut out: Vec<Value> = existing.to_vec();
    for item in items {
        let directive = item.get("$patch").and_then(Value::as_str);
        let pos = out.iter().position(|e| same(e, item));
        match (directive, pos) {
            (Some("delete"), Some(i)) => {
                out.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => out[i] = strategic_merge(&iw, &out[i], item),
            (_, None) => out.push(strategic_merge(&iw, &Value::Null, item)),
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_and_json_patch() {
        let t = json!({"metadata": {"labels": {"app": "a"}}, "data": {"x": "1"}});
        assert_eq!(
            merge_patch(
                &t,
                &json!({"metadata": {"labels": {"app": null, "b": "2"}}})
            )["metadata"],
            json!({"labels": {"b": "2"}})
        );
        let p = json!([{"op": "add", "path": "/data/y", "value": "2"}, {"op": "test", "path": "/data/x", "value": "1"}]);
        assert_eq!(json_patch(&t, &p).unwrap()["data"]["y"], "2");
        assert!(matches!(
            json_patch(
                &t,
                &json!([{"op": "test", "path": "/data/x", "value": "no"}])
            ),
            Err(JsonPatchError::TestFailed)
        ));
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let w = Walker::root("Deployment", None);
        let t = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}}}});
        let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}], "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}]}}}});
        let out = strategic_merge(&w, &t, &p);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][1]["image"],
            "2"
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}
