//! The REST verbs on resources: GET, LIST, WATCH, POST, PUT, PATCH (merge, JSON, strategic,
//! apply) and DELETE, with admission (namespace lifecycle), validation, defaulting,
//! managedFields, dry runs and the writes' side effects on controllers.

use std::cell::RefCell;
use std::time::Duration;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, json};

use super::KubeApiServer;
use super::auth::{self, Attributes, User};
use super::fieldset::Walker;
use super::gc;
use super::kinds;
use super::managed;
use super::patch::{self, JsonPatchError};
use super::protobuf;
use super::quantity;
use super::registry::ResourceType;
use super::selectors::{FieldSelector, LabelSelector};
use super::services;
use super::status::{self, ApiError, ApiResult, Cause, Target};
use super::store::{EventType, ObjKey, State, TokenInfo, WatchFilter};
use super::table;
use super::util::{self, b64url, b64url_decode, now_rfc3339, now_secs, rfc3339};
use super::validate;
use super::watch::{self, Start};
use crate::http::{Request, Response};

/// One resource request, parsed.
struct Call<'a> {
    req: &'a Request,
    user: User,
    rt: ResourceType,
    /// Empty for cluster-scoped resources and all-namespace lists.
    namespace: String,
    name: String,
    sub: String,
    dry_run: bool,
    manager: String,
    warnings: Vec<String>,
}

impl Call<'_> {
    fn target(&self) -> Target<'_> {
        Target {
            group: &self.rt.group,
            resource: &self.rt.plural,
            name: &self.name,
        }
    }

    fn query(&self, name: &str) -> Option<String> {
        self.req.query_param(name)
    }

    fn respond(&self, code: u16, body: &Value) -> Response {
        let mut r = Response::json(code, body);
        for w in &self.warnings {
            r = r.with_header(
                "Warning",
                &format!("299 - {}", serde_json::to_string(w).unwrap_or_default()),
            );
        }
        r
    }

    fn walker(&self) -> Walker<'_> {
        Walker::root(&self.rt.kind, self.rt.schema.as_ref())
    }
}

/// Serves a request under `/api/v1/…` or `/apis/G/V/…`.
pub fn resource(
    server: &KubeApiServer,
    req: &Request,
    user: User,
    path: &str,
) -> ApiResult<Response> {
    let (group, version, rest) = if let Some(r) = path.strip_prefix("/api/v1/") {
        (String::new(), "v1".to_string(), r.to_string())
    } else {
        let r = path.strip_prefix("/apis/").unwrap_or_default();
        let mut it = r.splitn(3, '/');
        let (g, v, rest) = (
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
        );
        (g.to_string(), v.to_string(), rest.to_string())
    };
    let segs: Vec<String> = rest.split('/').map(crate::http::percent_decode).collect();
    let (rt, namespace, name, sub) = {
        let st = server.lock();
        if !st.serves(&group, &version) {
            return Err(ApiError::page_not_found());
        }
        let namespaced_res = segs.len() >= 3
            && segs[0] == "namespaces"
            && st
                .find_type(&group, &version, &segs[2])
                .is_some_and(|t| t.namespaced);
        let (plural, ns, name, sub) = if namespaced_res {
            (
                segs[2].clone(),
                segs[1].clone(),
                segs.get(3).cloned(),
                segs.get(4).cloned(),
            )
        } else {
            (
                segs[0].clone(),
                String::new(),
                segs.get(1).cloned(),
                segs.get(2).cloned(),
            )
        };
        if segs.len() > if namespaced_res { 5 } else { 3 } {
            return Err(ApiError::page_not_found());
        }
        let rt = st
            .find_type(&group, &version, &plural)
            .cloned()
            .ok_or_else(ApiError::page_not_found)?;
        if let Some(s) = &sub
            && rt.subresource(s).is_none()
        {
            return Err(ApiError::page_not_found());
        }
        (rt, ns, name.unwrap_or_default(), sub.unwrap_or_default())
    };
    let method = req.method.as_str();
    let watching = req
        .query_param("watch")
        .is_some_and(|w| w == "true" || w == "1");
    let verb = match (method, name.is_empty()) {
        ("GET" | "HEAD", false) => "get",
        ("GET" | "HEAD", true) if watching => "watch",
        ("GET" | "HEAD", true) => "list",
        ("POST", _) => "create",
        ("PUT", false) => "update",
        ("PATCH", false) => "patch",
        ("DELETE", false) => "delete",
        ("DELETE", true) => "deletecollection",
        _ => {
            return Err(ApiError::new(
                405,
                Some("MethodNotAllowed"),
                "the server does not allow this method on the requested resource",
            ));
        }
    };
    let auth_name = if verb == "create" && sub.is_empty() {
        String::new()
    } else {
        name.clone()
    };
    let attrs = Attributes {
        verb: verb.into(),
        group: rt.group.clone(),
        resource: rt.plural.clone(),
        subresource: sub.clone(),
        namespace: namespace.clone(),
        name: auth_name.clone(),
        path: None,
    };
    let (allowed, _) = auth::authorize(&server.lock(), &user, &attrs);
    if !allowed {
        let t = Target {
            group: &rt.group,
            resource: &rt.plural,
            name: &auth_name,
        };
        return Err(ApiError::forbidden(&user.name, verb, &t, Some(&namespace)));
    }
    let manager = req.query_param("fieldManager").unwrap_or_else(|| {
        req.header("user-agent")
            .and_then(|ua| ua.split('/').next())
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_string()
    });
    let dry_run = req.query_param("dryRun").is_some_and(|d| d == "All");
    let mut call = Call {
        req,
        user,
        rt,
        namespace,
        name,
        sub,
        dry_run,
        manager,
        warnings: Vec::new(),
    };
    if call.sub == "scale" {
        return scale(server, &call);
    }
    match verb {
        "get" => get(server, &call),
        "list" => list(server, &call),
        "watch" => start_watch(server, &call),
        "create" => create(server, &mut call),
        "update" => update(server, &mut call),
        "patch" => patch_object(server, &mut call),
        "delete" => delete(server, &call),
        _ => delete_collection(server, &call),
    }
}

fn wants_table(call: &Call) -> bool {
    table::wants_table(call.req.header("accept"))
}

fn get(server: &KubeApiServer, call: &Call) -> ApiResult<Response> {
    let st = server.lock();
    let obj = st
        .get(&call.rt, &call.namespace, &call.name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&call.target()))?;
    if wants_table(call) {
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(json!(""));
        return Ok(Response::json(
            200,
            &table::table(&call.rt, &[obj], json!({"resourceVersion": rv})),
        ));
    }
    Ok(Response::json(200, &obj))
}

/// The continue token: unpadded base64url of `{"v","rv","start"}` like the apiserver's.
fn continue_token(rv: u64, start: &str) -> String {
    b64url(
        json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start})
            .to_string()
            .as_bytes(),
    )
}

fn parse_continue(token: &str) -> ApiResult<(u64, String)> {
    let bad = |why: String| ApiError::bad_request(format!("invalid continue token: {why}"));
    let bytes = b64url_decode(token)
        .ok_or_else(|| bad("continue key is not valid: illegal base64 data".into()))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("continue key is not valid: {e}")))?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(bad("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into()));
    }
    let rv = v["rv"]
        .as_u64()
        .ok_or_else(|| bad("continue key is not valid: missing rv".into()))?;
    let start = v["start"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/')
        .trim_end_matches('\0')
        .to_string();
    Ok((rv, start))
}

fn selectors(call: &Call) -> ApiResult<(LabelSelector, FieldSelector)> {
    let labels = LabelSelector::parse(&call.query("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(&call.query("fieldSelector").unwrap_or_default())?;
    fields.check_supported(&call.rt.kind)?;
    Ok((labels, fields))
}

fn list(server: &KubeApiServer, call: &Call) -> ApiResult<Response> {
    let (labels, fields) = selectors(call)?;
    let limit = call
        .query("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let cont = call
        .query("continue")
        .filter(|c| !c.is_empty())
        .map(|c| parse_continue(&c))
        .transpose()?;
    let st = server.lock();
    let ns = (!call.namespace.is_empty()).then_some(call.namespace.as_str());
    let rel_key = |k: &ObjKey| {
        if call.rt.namespaced && ns.is_none() {
            format!("{}/{}", k.namespace, k.name)
        } else {
            k.name.clone()
        }
    };
    let all: Vec<(String, &Value)> = st
        .list(&call.rt, ns)
        .into_iter()
        .map(|(k, v)| (rel_key(k), v))
        .filter(|(k, _)| {
            cont.as_ref()
                .is_none_or(|(_, start)| k.as_str() > start.as_str())
        })
        .collect();
    let list_rv = cont.as_ref().map(|(rv, _)| *rv).unwrap_or(st.rv);
    let selected: Vec<(String, &Value)> = all
        .iter()
        .filter(|(_, o)| labels.matches(o.pointer("/metadata/labels")) && fields.matches(o))
        .cloned()
        .collect();
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(list_rv.to_string()));
    let page: Vec<(String, &Value)> = match limit {
        Some(l)
            if selected.len() > l
                || (!labels.is_empty() || !fields.is_empty())
                    && selected.len() == l
                    && all.len() > l =>
        {
            let page: Vec<(String, &Value)> = selected.into_iter().take(l).collect();
            let last = page.last().map(|(k, _)| k.clone()).unwrap_or_default();
            let start = if cont.is_none() {
                format!("/{last}\0")
            } else {
                format!("{last}\0")
            };
            meta.insert("continue".into(), json!(continue_token(list_rv, &start)));
            if labels.is_empty() && fields.is_empty() {
                let remaining = all
                    .iter()
                    .filter(|(k, _)| k.as_str() > last.as_str())
                    .count();
                meta.insert("remainingItemCount".into(), json!(remaining));
            }
            page
        }
        _ => selected,
    };
    let objects: Vec<Value> = page.iter().map(|(_, o)| (*o).clone()).collect();
    if wants_table(call) {
        return Ok(Response::json(
            200,
            &table::table(&call.rt, &objects, Value::Object(meta)),
        ));
    }
    let items: Vec<Value> = objects
        .iter()
        .map(|o| kinds::list_item(&call.rt, o))
        .collect();
    let body = if call.rt.is_custom() {
        meta.entry("continue").or_insert(json!(""));
        let mut m = Map::new();
        m.insert(
            "continue".into(),
            meta.remove("continue").unwrap_or(json!("")),
        );
        m.extend(meta);
        json!({"apiVersion": call.rt.api_version(), "items": items, "kind": call.rt.list_kind(), "metadata": m})
    } else {
        json!({"kind": call.rt.list_kind(), "apiVersion": call.rt.api_version(), "metadata": meta, "items": items})
    };
    Ok(Response::json(200, &body))
}

fn start_watch(server: &KubeApiServer, call: &Call) -> ApiResult<Response> {
    let (labels, fields) = selectors(call)?;
    let bookmarks = call
        .query("allowWatchBookmarks")
        .is_some_and(|b| b == "true" || b == "1");
    let start = match call.query("resourceVersion").as_deref() {
        None | Some("") => Start::Now {
            bookmark: bookmarks,
        },
        Some("0") => Start::Any,
        Some(rv) => Start::After(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let timeout = call
        .query("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let filter = WatchFilter {
        group: call.rt.group.clone(),
        plural: call.rt.plural.clone(),
        namespace: (call.rt.namespaced && !call.namespace.is_empty())
            .then(|| call.namespace.clone()),
        labels,
        fields,
    };
    let mut st = server.lock();
    Ok(watch::start(
        &mut st,
        &call.rt,
        filter,
        start,
        Duration::from_secs(timeout),
    ))
}

// ---------------------------------------------------------------------------------------
// Bodies

/// Builds a JSON value from YAML, keeping the last of duplicate keys and noting them.
struct Lenient<'a>(&'a RefCell<Vec<String>>);

impl<'de> DeserializeSeed<'de> for Lenient<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Lenient<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(json!(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(json!(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(json!(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Lenient(self.0))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key_seed(Lenient(self.0))? {
            let key = match k {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let v = map.next_value_seed(Lenient(self.0))?;
            if out.insert(key.clone(), v).is_some() {
                self.0.borrow_mut().push(key);
            }
        }
        Ok(Value::Object(out))
    }
}

/// The line (1-based) of the second occurrence of `key:` (for the duplicate-key message).
fn duplicate_line(text: &str, key: &str) -> usize {
    let pat = format!("{key}:");
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            l.trim_start().starts_with(&pat) || l.trim_start().starts_with(&format!("\"{key}\":"))
        })
        .nth(1)
        .map(|(i, _)| i + 1)
        .unwrap_or(0)
}

/// Decodes a request body (JSON or YAML); returns the value and any duplicate keys with
/// their lines.
fn decode(req: &Request) -> ApiResult<(Value, Vec<(String, usize)>)> {
    let ct = req.header("content-type").unwrap_or("application/json");
    if protobuf::is_protobuf(ct) {
        let value = protobuf::decode_body(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding protobuf: {e}")))?;
        return Ok((value, Vec::new()));
    }
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
    if text.trim().is_empty() {
        return Ok((Value::Null, Vec::new()));
    }
    let dups = RefCell::new(Vec::new());
    let value = Lenient(&dups)
        .deserialize(serde_yaml::Deserializer::from_str(text))
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    let dups = dups
        .into_inner()
        .into_iter()
        .map(|k| (k.clone(), duplicate_line(text, &k)))
        .collect();
    Ok((value, dups))
}

fn field_validation(call: &Call) -> String {
    call.query("fieldValidation")
        .unwrap_or_else(|| "Warn".into())
}

/// Drops unknown fields per `fieldValidation` (Strict → 400, Warn → warnings, Ignore).
fn check_unknown(call: &mut Call, obj: &mut Value) -> ApiResult<()> {
    let unknown = validate::prune_unknown(&call.rt, obj);
    if unknown.is_empty() {
        return Ok(());
    }
    match field_validation(call).as_str() {
        "Strict" => {
            let list: Vec<String> = unknown
                .iter()
                .map(|u| format!("unknown field \"{u}\""))
                .collect();
            Err(ApiError::bad_request(format!(
                "{k} in version \"{v}\" cannot be handled as a {k}: strict decoding error: {}",
                list.join(", "),
                k = call.rt.kind,
                v = call.rt.version
            )))
        }
        "Ignore" => Ok(()),
        _ => {
            call.warnings
                .extend(unknown.iter().map(|u| format!("unknown field \"{u}\"")));
            Ok(())
        }
    }
}

/// Puts resource quantities in their stored form, refusing a body whose quantity does not
/// parse as the apiserver's decoder does (400, "… cannot be handled as a …").
fn decode_quantities(call: &Call, obj: &mut Value) -> ApiResult<()> {
    let rt = &call.rt;
    if rt.is_custom() {
        return Ok(());
    }
    quantity::canonicalize_object(&rt.api_version(), &rt.kind, obj).map_err(|e| {
        ApiError::bad_request(format!(
            "{k} in version \"{v}\" cannot be handled as a {k}: {e}",
            k = rt.kind,
            v = rt.version
        ))
    })
}

fn kind_qualified(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        rt.kind.clone()
    } else {
        format!("{}.{}", rt.kind, rt.group)
    }
}

fn invalid(rt: &ResourceType, name: &str, causes: Vec<Cause>) -> ApiError {
    ApiError::invalid(&kind_qualified(rt), &rt.group, &rt.kind, name, causes)
}

/// Schema, name and immutability checks of an object about to be written.
fn validate_object(rt: &ResourceType, old: Option<&Value>, obj: &Value) -> ApiResult<()> {
    let name = util::get_str(obj, &["metadata", "name"]).unwrap_or_default();
    let mut causes = Vec::new();
    if old.is_none() {
        causes.extend(validate::name_cause(rt, name));
    }
    causes.extend(validate::validate_custom(rt, obj));
    if rt.group == "apps" && rt.kind == "Deployment" {
        causes.extend(validate::deployment_spec_causes(obj));
    }
    if let Some(old) = old {
        causes.extend(validate::immutable_field_causes(rt, old, obj));
    }
    if rt.kind == "CustomResourceDefinition" {
        let group = util::get_str(obj, &["spec", "group"]).unwrap_or_default();
        let plural = util::get_str(obj, &["spec", "names", "plural"]).unwrap_or_default();
        if name != format!("{plural}.{group}") {
            causes.push(Cause::new(
                "FieldValueInvalid",
                "metadata.name",
                format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(rt, name, causes))
    }
}

/// NamespaceLifecycle admission: the namespace must exist and not be terminating.
fn admit_namespace(st: &State, call: &Call, name: &str) -> ApiResult<()> {
    if !call.rt.namespaced {
        return Ok(());
    }
    let ns_type = st
        .type_for_kind("v1", "Namespace")
        .ok_or_else(|| ApiError::internal("no namespaces"))?;
    let ns = st.get(&ns_type, "", &call.namespace).ok_or_else(|| {
        ApiError::not_found(&Target {
            group: "",
            resource: "namespaces",
            name: &call.namespace,
        })
    })?;
    if ns.pointer("/metadata/deletionTimestamp").is_some() {
        let t = Target {
            group: &call.rt.group,
            resource: &call.rt.plural,
            name,
        };
        return Err(ApiError::new(
            403,
            Some("Forbidden"),
            format!("{} \"{name}\" is forbidden: unable to create new content in namespace {} because it is being terminated", t.qualified(), call.namespace),
        )
        .with_details(json!({"name": name, "kind": call.rt.plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {} is being terminated", call.namespace), "field": "metadata.namespace"}]})));
    }
    Ok(())
}

/// How ownership of a write is recorded.
enum Ownership {
    /// An Update by the call's manager (diffed against the old object).
    Update,
    /// Already computed (server-side apply).
    Done,
}

// ---------------------------------------------------------------------------------------
// Create

fn create(server: &KubeApiServer, call: &mut Call) -> ApiResult<Response> {
    let (mut body, _) = decode(call.req)?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    match (call.rt.kind.as_str(), call.sub.as_str()) {
        ("ServiceAccount", "token") => return token_request(server, call, body),
        ("SelfSubjectAccessReview", _) => return access_review(server, call, body),
        ("SelfSubjectRulesReview", _) => return rules_review(server, call, body),
        ("SelfSubjectReview", _) => return self_review(call),
        ("Pod", "eviction") => {
            let out = server.evict(&mut server.lock(), &call.namespace, &call.name)?;
            return Ok(call.respond(201, &out));
        }
        _ => {}
    }
    if call.rt.namespaced {
        match util::get_str(&body, &["metadata", "namespace"]) {
            Some(ns) if !ns.is_empty() && ns != call.namespace => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => util::set_path(&mut body, &["metadata", "namespace"], json!(call.namespace)),
        }
    }
    check_unknown(call, &mut body)?;
    decode_quantities(call, &mut body)?;
    let mut st = server.lock();
    let mut name = util::get_str(&body, &["metadata", "name"])
        .unwrap_or_default()
        .to_string();
    if name.is_empty()
        && let Some(prefix) = util::get_str(&body, &["metadata", "generateName"]).map(String::from)
    {
        name = format!("{prefix}{}", st.rng.name_suffix());
        util::set_path(&mut body, &["metadata", "name"], json!(name));
    }
    call.name = name.clone();
    admit_namespace(&st, call, &name)?;
    if st.get(&call.rt, &call.namespace, &name).is_some() {
        return Err(ApiError::already_exists(&call.target()));
    }
    let obj = kinds::with_type_meta(&call.rt, body);
    let created = finish_create(server, &mut st, call, obj, Ownership::Update)?;
    Ok(call.respond(201, &created))
}

fn empty_object(rt: &ResourceType, namespace: &str, name: &str) -> Value {
    let mut meta = Map::new();
    meta.insert("name".into(), json!(name));
    if rt.namespaced {
        meta.insert("namespace".into(), json!(namespace));
    }
    json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": meta})
}

/// Defaulting, validation, ownership, server fields, persistence and side effects of a
/// create. Returns the object as the response shows it.
fn finish_create(
    server: &KubeApiServer,
    st: &mut State,
    call: &Call,
    mut obj: Value,
    ownership: Ownership,
) -> ApiResult<Value> {
    let rt = &call.rt;
    let name = util::get_str(&obj, &["metadata", "name"])
        .unwrap_or_default()
        .to_string();
    kinds::default_object(rt, &mut obj, &mut st.rng);
    validate_object(rt, None, &obj)?;
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
            "selfLink",
        ] {
            m.remove(k);
        }
    }
    if rt.has_status
        && rt.is_custom()
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    let now = now_rfc3339();
    if let Ownership::Update = ownership {
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        let empty = empty_object(rt, &call.namespace, &name);
        let entries = managed::track_update(
            &call.walker(),
            Vec::new(),
            &empty,
            &obj,
            &call.manager,
            &rt.api_version(),
            "",
            &now,
        );
        managed::write(&mut obj, entries);
    }
    services::allocate(st, rt, &mut obj, None).map_err(|c| invalid(rt, &name, c))?;
    // Mutating admission runs after ownership is recorded: webhook changes are unowned.
    server.admit_pod(st, rt, &mut obj)?;
    kinds::prepare_create(rt, &mut obj);
    let uid = st.uid();
    util::set_path(&mut obj, &["metadata", "uid"], json!(uid));
    util::set_path(&mut obj, &["metadata", "creationTimestamp"], json!(now));
    kinds::canonical(rt, &mut obj);
    if call.dry_run {
        return Ok(obj);
    }
    let stored = st.put(rt, obj, EventType::Added);
    server.after_create(st, rt, &stored);
    Ok(stored)
}

// ---------------------------------------------------------------------------------------
// Update

fn current(st: &State, call: &Call) -> ApiResult<Value> {
    st.get(&call.rt, &call.namespace, &call.name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&call.target()))
}

fn update(server: &KubeApiServer, call: &mut Call) -> ApiResult<Response> {
    let (mut body, _) = decode(call.req)?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object",
        ));
    }
    check_unknown(call, &mut body)?;
    decode_quantities(call, &mut body)?;
    let mut st = server.lock();
    let old = current(&st, call)?;
    if let Some(rv) =
        util::get_str(&body, &["metadata", "resourceVersion"]).filter(|r| !r.is_empty())
        && Some(rv) != util::get_str(&old, &["metadata", "resourceVersion"])
    {
        return Err(ApiError::conflict_modified(&call.target()));
    }
    if util::get_str(&body, &["metadata", "name"]).is_some_and(|n| n != call.name) {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    let mut new = kinds::with_type_meta(&call.rt, body);
    if call.sub == "finalize" {
        let finalizers = new
            .pointer("/spec/finalizers")
            .cloned()
            .unwrap_or(json!([]));
        new = old.clone();
        util::set_path(&mut new, &["spec", "finalizers"], finalizers);
    }
    let (code, out) = finish_update(server, &mut st, call, &old, new, Ownership::Update)?;
    Ok(call.respond(code, &out))
}

/// Carries server-owned fields over, applies subresource rules, defaults, validates, records
/// ownership and writes (unless nothing changed or it is a dry run).
fn finish_update(
    server: &KubeApiServer,
    st: &mut State,
    call: &Call,
    old: &Value,
    mut new: Value,
    ownership: Ownership,
) -> ApiResult<(u16, Value)> {
    let rt = &call.rt;
    let keep_managed = match &ownership {
        Ownership::Update => new
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty()),
        Ownership::Done => false,
    };
    if keep_managed {
        util::set_path(
            &mut new,
            &["metadata", "managedFields"],
            old.pointer("/metadata/managedFields")
                .cloned()
                .unwrap_or(json!([])),
        );
    }
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "generation",
        "resourceVersion",
        "namespace",
        "name",
        "generateName",
    ] {
        match old.pointer(&format!("/metadata/{k}")) {
            Some(v) if k != "generateName" || new.pointer("/metadata/generateName").is_none() => {
                util::set_path(&mut new, &["metadata", k], v.clone())
            }
            None if k != "generateName" => {
                util::remove_path(&mut new, &["metadata", k]);
            }
            _ => {}
        }
    }
    if call.sub == "status" {
        let status = new.get("status").cloned();
        let managed_fields = new.pointer("/metadata/managedFields").cloned();
        new = old.clone();
        match status {
            Some(s) => util::set_path(&mut new, &["status"], s),
            None => {
                util::remove_path(&mut new, &["status"]);
            }
        }
        if let Some(mf) = managed_fields {
            util::set_path(&mut new, &["metadata", "managedFields"], mf);
        }
    } else if rt.has_status {
        match old.get("status") {
            Some(s) => util::set_path(&mut new, &["status"], s.clone()),
            None => {
                util::remove_path(&mut new, &["status"]);
            }
        }
    }
    if call.sub.is_empty() {
        let mut scratch = util::Rng::from_entropy();
        kinds::default_object(rt, &mut new, &mut scratch);
    }
    validate_object(rt, Some(old), &new)?;
    if rt.has_generation && call.sub.is_empty() {
        let body = |v: &Value| {
            let mut v = v.clone();
            if let Some(m) = v.as_object_mut() {
                m.remove("metadata");
                m.remove("status");
            }
            v
        };
        if body(old) != body(&new) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            util::set_path(&mut new, &["metadata", "generation"], json!(g));
        }
    }
    if let Ownership::Update = ownership {
        let entries = managed::read(&new);
        let entries = managed::track_update(
            &call.walker(),
            entries,
            old,
            &new,
            &call.manager,
            &rt.api_version(),
            &call.sub,
            &now_rfc3339(),
        );
        managed::write(&mut new, entries);
    }
    if call.sub.is_empty() {
        services::allocate(st, rt, &mut new, Some(old)).map_err(|c| invalid(rt, &call.name, c))?;
    }
    kinds::canonical(rt, &mut new);
    if managed::strip(&new) == managed::strip(old) && managed::read(&new) == managed::read(old) {
        return Ok((200, old.clone()));
    }
    if call.dry_run {
        return Ok((200, new));
    }
    let finalized = new.pointer("/metadata/deletionTimestamp").is_some()
        && new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty())
        && rt.kind != "Namespace";
    if finalized {
        let key = ObjKey::new(rt, &call.namespace, &call.name);
        st.objects.insert(key.clone(), new);
        let gone = st.remove(&key).unwrap_or(Value::Null);
        server.after_delete(st, rt, &gone);
        return Ok((200, gone));
    }
    let stored = st.put(rt, new, EventType::Modified);
    server.after_update(st, rt, &stored);
    Ok((200, stored))
}

// ---------------------------------------------------------------------------------------
// Patch

fn patch_object(server: &KubeApiServer, call: &mut Call) -> ApiResult<Response> {
    let ct = call
        .req
        .header("content-type")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    match ct.as_str() {
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
            return apply_patch(server, call);
        }
        "application/merge-patch+json" | "application/json-patch+json" => {}
        "application/strategic-merge-patch+json" if !call.rt.is_custom() => {}
        _ => {
            let accepted = if call.rt.is_custom() {
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            } else {
                "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
            };
            return Err(ApiError::new(
                415,
                Some("UnsupportedMediaType"),
                format!(
                    "the body of the request was in an unknown format - accepted media types include: {accepted}"
                ),
            ));
        }
    }
    let patch: Value = serde_json::from_slice(&call.req.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let st = server.lock();
    let old = current(&st, call)?;
    let base = managed::strip(&old);
    let mut new = match ct.as_str() {
        "application/merge-patch+json" => patch::merge_patch(&base, &patch),
        "application/json-patch+json" => patch::json_patch(&base, &patch).map_err(|e| match e {
            JsonPatchError::TestFailed => ApiError::new(
                422,
                Some("Invalid"),
                "the server rejected our request due to an error in our request",
            )
            .with_details(json!({})),
            JsonPatchError::Invalid(why) => {
                ApiError::new(422, Some("Invalid"), why).with_details(json!({}))
            }
        })?,
        _ => patch::strategic_merge(&call.walker(), &base, &patch),
    };
    if let Some(rv) = util::get_str(&new, &["metadata", "resourceVersion"]).map(String::from)
        && Some(rv.as_str()) != util::get_str(&old, &["metadata", "resourceVersion"])
    {
        return Err(ApiError::conflict_modified(&call.target()));
    }
    drop(st);
    check_unknown(call, &mut new)?;
    decode_quantities(call, &mut new)?;
    let mut st = server.lock();
    let (code, out) = finish_update(server, &mut st, call, &old, new, Ownership::Update)?;
    Ok(call.respond(code, &out))
}

fn apply_patch(server: &KubeApiServer, call: &mut Call) -> ApiResult<Response> {
    if call.query("fieldManager").is_none_or(|m| m.is_empty()) {
        return Err(ApiError::new(422, Some("Invalid"), "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
            .with_details(json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]})));
    }
    let (config, dups) = decode(call.req)?;
    if let Some((key, line)) = dups.first() {
        let msg = format!("line {line}: key \"{key}\" already set in map");
        if field_validation(call) == "Strict" {
            return Err(ApiError::bad_request(format!(
                "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  {msg}"
            )));
        }
        if field_validation(call) != "Ignore" {
            call.warnings.push(msg);
        }
    }
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "the apply configuration must be an object",
        ));
    }
    let gvk = format!("{}, Kind={}", call.rt.api_version(), call.rt.kind);
    let gvk = if call.rt.group.is_empty() {
        format!("/{gvk}")
    } else {
        gvk
    };
    let mut pruned = config.clone();
    let unknown = validate::prune_unknown(&call.rt, &mut pruned);
    if let Some(u) = unknown.first() {
        return Err(ApiError::internal(format!(
            "failed to create typed patch object ({}/{}; {gvk}): .{u}: field not declared in schema",
            call.namespace, call.name
        )));
    }
    if config
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k != call.rt.kind)
        || config
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|a| a != call.rt.api_version())
    {
        return Err(ApiError::bad_request(format!(
            "the apiVersion and kind of the body do not match the URL ({} {})",
            call.rt.api_version(),
            call.rt.kind
        )));
    }
    if util::get_str(&config, &["metadata", "name"]).is_some_and(|n| n != call.name) {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    if call.rt.namespaced
        && util::get_str(&config, &["metadata", "namespace"])
            .is_some_and(|n| !n.is_empty() && n != call.namespace)
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let mut config = kinds::with_type_meta(&call.rt, config);
    util::set_path(&mut config, &["metadata", "name"], json!(call.name));
    if call.rt.namespaced {
        util::set_path(
            &mut config,
            &["metadata", "namespace"],
            json!(call.namespace),
        );
    }
    let force = call.query("force").is_some_and(|f| f == "true");
    let mut st = server.lock();
    let live = st.get(&call.rt, &call.namespace, &call.name).cloned();
    if live.is_none() {
        admit_namespace(&st, call, &call.name)?;
    }
    let base = live
        .clone()
        .unwrap_or_else(|| empty_object(&call.rt, &call.namespace, &call.name));
    let now = now_rfc3339();
    let applied = managed::apply(
        &call.walker(),
        &base,
        &config,
        &call.manager,
        &call.rt.api_version(),
        &call.sub,
        force,
        &now,
    )
    .map_err(|c| {
        ApiError::new(409, Some("Conflict"), c.message())
            .with_details(json!({"causes": c.causes()}))
    })?;
    match live {
        None => {
            let created = finish_create(server, &mut st, call, applied.object, Ownership::Done)?;
            Ok(call.respond(201, &created))
        }
        Some(live) if !applied.changed => Ok(call.respond(200, &live)),
        Some(live) => {
            let (code, out) = finish_update(
                server,
                &mut st,
                call,
                &live,
                applied.object,
                Ownership::Done,
            )?;
            Ok(call.respond(code, &out))
        }
    }
}

/// A controller's create-or-merge (server-side apply with force, not request-logged).
pub fn controller_apply(server: &KubeApiServer, object: Value, manager: &str) -> ApiResult<Value> {
    let api_version = object["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let rt = server
        .lock()
        .type_for_kind(&api_version, &kind)
        .ok_or_else(|| {
            ApiError::bad_request(format!("no resource serves {api_version}, Kind={kind}"))
        })?;
    let name = util::get_str(&object, &["metadata", "name"])
        .unwrap_or_default()
        .to_string();
    let namespace = if rt.namespaced {
        util::get_str(&object, &["metadata", "namespace"])
            .unwrap_or("default")
            .to_string()
    } else {
        String::new()
    };
    let req = Request::new("PATCH", "/", "");
    let call = Call {
        req: &req,
        user: User::admin(),
        rt: rt.clone(),
        namespace,
        name,
        sub: String::new(),
        dry_run: false,
        manager: manager.into(),
        warnings: Vec::new(),
    };
    let mut st = server.lock();
    let live = st.get(&rt, &call.namespace, &call.name).cloned();
    if live.is_none() {
        admit_namespace(&st, &call, &call.name)?;
    }
    let base = live
        .clone()
        .unwrap_or_else(|| empty_object(&rt, &call.namespace, &call.name));
    let applied = managed::apply(
        &call.walker(),
        &base,
        &object,
        manager,
        &rt.api_version(),
        "",
        true,
        &now_rfc3339(),
    )
    .map_err(|c| ApiError::new(409, Some("Conflict"), c.message()))?;
    match live {
        None => finish_create(server, &mut st, &call, applied.object, Ownership::Done),
        Some(live) if !applied.changed => Ok(live),
        Some(live) => finish_update(
            server,
            &mut st,
            &call,
            &live,
            applied.object,
            Ownership::Done,
        )
        .map(|(_, v)| v),
    }
}

// ---------------------------------------------------------------------------------------
// Delete

fn delete(server: &KubeApiServer, call: &Call) -> ApiResult<Response> {
    let mut st = server.lock();
    let old = current(&st, call)?;
    let uid = util::get_str(&old, &["metadata", "uid"])
        .unwrap_or_default()
        .to_string();
    if call.rt.kind == "Namespace" {
        let mut ns = old.clone();
        if ns.pointer("/metadata/deletionTimestamp").is_none() {
            util::set_path(
                &mut ns,
                &["metadata", "deletionTimestamp"],
                json!(now_rfc3339()),
            );
            util::set_path(&mut ns, &["status", "phase"], json!("Terminating"));
            kinds::canonical(&call.rt, &mut ns);
            if call.dry_run {
                return Ok(Response::json(200, &ns));
            }
            ns = st.put(&call.rt, ns, EventType::Modified);
            let name = call.name.clone();
            server.later(server.timing.namespace_finalize, move |s| {
                s.finalize_namespace(&name)
            });
        }
        return Ok(Response::json(200, &ns));
    }
    if let Some(finalizer) = gc::deletion_finalizer(propagation_policy(call).as_deref()) {
        if call.dry_run {
            return Ok(Response::json(200, &old));
        }
        let key = ObjKey::new(&call.rt, &call.namespace, &call.name);
        let obj = server
            .begin_finalized_delete(&mut st, &key, finalizer)
            .unwrap_or(old);
        return Ok(Response::json(200, &obj));
    }
    let has_finalizers = old
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if has_finalizers {
        let mut obj = old.clone();
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
            kinds::canonical(&call.rt, &mut obj);
            if !call.dry_run {
                obj = st.put(&call.rt, obj, EventType::Modified);
            }
        }
        return Ok(Response::json(200, &obj));
    }
    if !call.dry_run {
        let key = ObjKey::new(&call.rt, &call.namespace, &call.name);
        if let Some(gone) = st.remove(&key) {
            server.after_delete(&mut st, &call.rt, &gone);
        }
    }
    Ok(Response::json(200, &status::success(&call.target(), &uid)))
}

/// DeleteOptions.propagationPolicy, from the body or the query.
fn propagation_policy(call: &Call) -> Option<String> {
    call.query("propagationPolicy").or_else(|| {
        decode(call.req)
            .ok()
            .and_then(|(b, _)| b["propagationPolicy"].as_str().map(String::from))
    })
}

/// The `scale` subresource.
fn scale(server: &KubeApiServer, call: &Call) -> ApiResult<Response> {
    let out = server.serve_scale(
        &call.rt,
        &call.req.method,
        &call.namespace,
        &call.name,
        call.req.header("content-type").unwrap_or_default(),
        &call.req.body,
        &call.manager,
        call.dry_run,
    )?;
    Ok(call.respond(200, &out))
}

fn delete_collection(server: &KubeApiServer, call: &Call) -> ApiResult<Response> {
    let (labels, fields) = selectors(call)?;
    let mut st = server.lock();
    let ns = (!call.namespace.is_empty()).then_some(call.namespace.as_str());
    let keys: Vec<ObjKey> = st
        .list(&call.rt, ns)
        .into_iter()
        .filter(|(_, o)| labels.matches(o.pointer("/metadata/labels")) && fields.matches(o))
        .map(|(k, _)| k.clone())
        .collect();
    let mut items = Vec::new();
    for k in keys {
        if call.dry_run {
            items.extend(st.objects.get(&k).map(|o| kinds::list_item(&call.rt, o)));
        } else if let Some(gone) = st.remove(&k) {
            server.after_delete(&mut st, &call.rt, &gone);
            items.push(kinds::list_item(&call.rt, &gone));
        }
    }
    let body = json!({"kind": call.rt.list_kind(), "apiVersion": call.rt.api_version(), "metadata": {"resourceVersion": st.rv.to_string()}, "items": items});
    Ok(Response::json(200, &body))
}

// ---------------------------------------------------------------------------------------
// Virtual resources: TokenRequest, SelfSubjectAccessReview, SelfSubjectReview

fn review_managed(call: &Call, api_version: &str, sub: &str, sent: &Value) -> Value {
    let w = Walker::root("Review", None);
    let entries = managed::track_update(
        &w,
        Vec::new(),
        &json!({}),
        sent,
        &call.manager,
        api_version,
        sub,
        &now_rfc3339(),
    );
    let mut holder = json!({"metadata": {}});
    managed::write(&mut holder, entries);
    holder
        .pointer("/metadata/managedFields")
        .cloned()
        .unwrap_or(json!([]))
}

fn token_request(server: &KubeApiServer, call: &Call, body: Value) -> ApiResult<Response> {
    let mut st = server.lock();
    let sa = current(&st, call)?;
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    let audiences: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let audiences = if audiences.is_empty() {
        vec![auth::API_AUDIENCE.to_string()]
    } else {
        audiences
    };
    let seconds = spec["expirationSeconds"].as_i64().unwrap_or(3600);
    if seconds < 600 {
        return Err(invalid(
            &call.rt,
            "",
            vec![Cause::new(
                "FieldValueInvalid",
                "spec.expirationSeconds",
                "Invalid value: may not specify a duration less than 10 minutes",
            )],
        ));
    }
    let expires = now_secs() + seconds;
    let jti = st.uid();
    let info = TokenInfo {
        namespace: call.namespace.clone(),
        sa_name: call.name.clone(),
        sa_uid: util::get_str(&sa, &["metadata", "uid"])
            .unwrap_or_default()
            .to_string(),
        audiences: audiences.clone(),
        expires: Some(expires),
        secret: None,
        jti,
    };
    let token = if call.dry_run {
        String::new()
    } else {
        auth::mint_token(&mut st, info)
    };
    let managed_fields = review_managed(
        call,
        "authentication.k8s.io/v1",
        "token",
        &json!({"spec": spec}),
    );
    let out = json!({
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": call.name, "namespace": call.namespace, "creationTimestamp": now_rfc3339(), "managedFields": managed_fields},
        "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": spec.get("boundObjectRef").cloned().unwrap_or(Value::Null)},
        "status": {"token": token, "expirationTimestamp": rfc3339(expires)},
    });
    Ok(Response::json(201, &out))
}

fn access_review(server: &KubeApiServer, call: &Call, body: Value) -> ApiResult<Response> {
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    let attrs = if let Some(r) = spec.get("resourceAttributes") {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        Attributes {
            verb: s("verb"),
            group: s("group"),
            resource: s("resource"),
            subresource: s("subresource"),
            namespace: s("namespace"),
            name: s("name"),
            path: None,
        }
    } else {
        let n = &spec["nonResourceAttributes"];
        Attributes {
            verb: n["verb"].as_str().unwrap_or_default().into(),
            path: Some(n["path"].as_str().unwrap_or_default().into()),
            ..Default::default()
        }
    };
    let (allowed, reason) = auth::authorize(&server.lock(), &call.user, &attrs);
    let mut status = json!({"allowed": allowed});
    if let Some(r) = reason {
        status["reason"] = json!(r);
    }
    let managed_fields =
        review_managed(call, "authorization.k8s.io/v1", "", &json!({"spec": spec}));
    let out = json!({
        "kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null, "managedFields": managed_fields},
        "spec": spec, "status": status,
    });
    Ok(Response::json(201, &out))
}

/// SelfSubjectRulesReview: the rules the caller holds in `spec.namespace` (what
/// `kubectl auth can-i --list` prints).
fn rules_review(server: &KubeApiServer, call: &Call, body: Value) -> ApiResult<Response> {
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    let namespace = spec["namespace"].as_str().unwrap_or_default();
    let (resource_rules, non_resource_rules) =
        auth::rules_for(&server.lock(), &call.user, namespace);
    let managed_fields =
        review_managed(call, "authorization.k8s.io/v1", "", &json!({"spec": spec}));
    let out = json!({
        "kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null, "managedFields": managed_fields},
        "spec": spec,
        "status": {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false},
    });
    Ok(Response::json(201, &out))
}

fn self_review(call: &Call) -> ApiResult<Response> {
    let u = &call.user;
    let mut info = json!({"username": u.name});
    if !u.uid.is_empty() {
        info["uid"] = json!(u.uid);
    }
    info["groups"] = json!(u.groups);
    if let Some(extra) = &u.extra {
        info["extra"] = extra.clone();
    }
    let out = json!({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {"creationTimestamp": now_rfc3339()}, "status": {"userInfo": info}});
    Ok(Response::json(201, &out))
}
