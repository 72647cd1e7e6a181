//! Label and field selectors of LIST and WATCH requests.

use serde_json::Value;

use super::status::{ApiError, ApiResult};

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Exists,
    NotExists,
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
}

/// A parsed label selector (requirements are ANDed).
#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Vec<(String, Op)>);

/// Splits at commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

fn parse_set(rest: &str) -> ApiResult<Vec<String>> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| ApiError::bad_request(format!("found '{rest}', expected: '('")))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

impl LabelSelector {
    /// Parses the `labelSelector` syntax: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`.
    pub fn parse(s: &str) -> ApiResult<LabelSelector> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for part in split_top(s) {
            let part = part.trim();
            if part.is_empty() {
                return Err(ApiError::bad_request(
                    "found ',', expected: !, identifier, or 'end of string'",
                ));
            }
            if let Some(k) = part.strip_prefix('!') {
                reqs.push((k.trim().to_string(), Op::NotExists));
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                reqs.push((k.trim().to_string(), Op::NotIn(parse_set(rest)?)));
            } else if let Some((k, rest)) = part.split_once(" in ") {
                reqs.push((k.trim().to_string(), Op::In(parse_set(rest)?)));
            } else if let Some((k, v)) = part.split_once("!=") {
                reqs.push((k.trim().to_string(), Op::NotEq(check_value(v)?)));
            } else if let Some((k, v)) = part.split_once("==") {
                reqs.push((k.trim().to_string(), Op::Eq(check_value(v)?)));
            } else if let Some((k, v)) = part.split_once('=') {
                reqs.push((k.trim().to_string(), Op::Eq(check_value(v)?)));
            } else {
                reqs.push((part.to_string(), Op::Exists));
            }
        }
        Ok(LabelSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|(k, op)| match op {
            Op::Exists => get(k).is_some(),
            Op::NotExists => get(k).is_none(),
            Op::Eq(v) => get(k) == Some(v.as_str()),
            Op::NotEq(v) => get(k) != Some(v.as_str()),
            Op::In(vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Op::NotIn(vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
        })
    }
}

fn check_value(v: &str) -> ApiResult<String> {
    let v = v.trim();
    if v.contains('=') {
        return Err(ApiError::bad_request(
            "found '=', expected: ',' or 'end of string'",
        ));
    }
    Ok(v.to_string())
}

/// A parsed field selector: `path=value`, `path==value`, `path!=value`, ANDed.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> ApiResult<FieldSelector> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            reqs.push((k.trim().to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks the selected fields exist for the resource (metadata.* and a few well-known ones).
    pub fn check_supported(&self, kind: &str) -> ApiResult<()> {
        for (k, _, _) in &self.0 {
            let ok = matches!(k.as_str(), "metadata.name" | "metadata.namespace")
                || (kind == "Secret" && k == "type")
                || (kind == "Event" && k.starts_with("involvedObject."))
                || (kind == "Pod" && (k.starts_with("spec.") || k.starts_with("status.")));
            if !ok {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {k}"
                )));
            }
        }
        Ok(())
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(k, eq, v)| {
            let actual = k
                .split('.')
                .try_fold(obj, |o, p| o.get(p))
                .and_then(Value::as_str)
                .unwrap_or("");
            (actual == v) == *eq
        })
    }
}

/// Whether a `metav1.LabelSelector` (JSON) selects `labels`; an empty selector selects all.
pub fn selector_matches(selector: &Value, labels: Option<&Value>) -> bool {
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let match_labels_ok = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let expressions_ok = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e.get("operator").and_then(Value::as_str) {
                Some("In") => label(key).is_some_and(|v| values.contains(&v)),
                Some("NotIn") => label(key).is_none_or(|v| !values.contains(&v)),
                Some("Exists") => label(key).is_some(),
                Some("DoesNotExist") => label(key).is_none(),
                _ => false,
            }
        });
    match_labels_ok && expressions_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let l = json!({"app": "asm-list", "tier": "data"});
        assert!(
            LabelSelector::parse("app=asm-list")
                .unwrap()
                .matches(Some(&l))
        );
        assert!(
            LabelSelector::parse("tier in (data),app")
                .unwrap()
                .matches(Some(&l))
        );
        assert!(
            !LabelSelector::parse("tier notin (data)")
                .unwrap()
                .matches(Some(&l))
        );
        assert!(
            LabelSelector::parse("!nope,app!=x")
                .unwrap()
                .matches(Some(&l))
        );
        assert!(LabelSelector::parse("app==").is_ok());
        let e = LabelSelector::parse("app=x=y").unwrap_err();
        assert_eq!(e.message, "found '=', expected: ',' or 'end of string'");
    }

    #[test]
    fn field_selectors() {
        let o = json!({"metadata": {"name": "a", "namespace": "n"}});
        assert!(FieldSelector::parse("metadata.name=a").unwrap().matches(&o));
        assert!(
            !FieldSelector::parse("metadata.name!=a")
                .unwrap()
                .matches(&o)
        );
    }

    #[test]
    fn selector_matches_labels_and_expressions() {
        let labels = json!({"a": "1", "b": "2"});
        assert!(selector_matches(&json!({}), Some(&labels)));
        assert!(selector_matches(
            &json!({"matchLabels": {"a": "1"}}),
            Some(&labels)
        ));
        assert!(!selector_matches(
            &json!({"matchLabels": {"a": "2"}}),
            Some(&labels)
        ));
        assert!(selector_matches(
            &json!({"matchExpressions": [{"key": "b", "operator": "In", "values": ["2", "3"]}, {"key": "c", "operator": "DoesNotExist"}]}),
            Some(&labels)
        ));
        assert!(!selector_matches(
            &json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}),
            Some(&labels)
        ));
        assert!(!selector_matches(&json!({"matchLabels": {"a": "1"}}), None));
    }
}
