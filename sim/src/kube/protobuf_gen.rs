//! The generator of `protobuf_schema.rs`: an ignored test, run by hand when the Kubernetes
//! version the simulator models changes:
//!
//! ```text
//! cargo test -p asm-sim generate_protobuf_schema -- --ignored
//! ```
//!
//! It reads two crates from the local cargo registry (`$CARGO_HOME/registry/src/*/`):
//!
//! - `k8s-rs-pb-0.5.0/src/v1_32/**/generated.proto`: the `generated.proto` files that
//!   go-to-protobuf writes for Kubernetes 1.32 (message and field names, tags, wire types). In
//!   them a field's name is the Go JSON name except where the JSON name is not a valid proto
//!   identifier (`$ref`, `x-kubernetes-…` in apiextensions' JSONSchemaProps).
//! - `k8s-openapi-0.29.0/src/v1_33/**.rs`: per type, the JSON keys its serde code matches and
//!   which fields are required (not `Option`). A proto field takes the JSON key whose letters
//!   and digits equal its own (case-insensitive), which recovers `$ref` and
//!   `x-kubernetes-preserve-unknown-fields`; required fields keep empty values (Go writes them
//!   without `omitempty`).
//!
//! k8s-openapi is a dependency of the workspace (via asm); k8s-rs-pb is not (only its
//! `.proto` files are read): put it in the registry once with `cargo fetch` from a scratch
//! crate depending on `k8s-rs-pb = "=0.5.0"`. The generator itself needs no network. It fails
//! when a field of a type k8s-openapi knows finds no JSON key there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const PROTO_CRATE: &str = "k8s-rs-pb-0.5.0";
const PROTO_VERSION_DIR: &str = "src/v1_32";
const OPENAPI_CRATE: &str = "k8s-openapi-0.29.0";
const OPENAPI_VERSION_DIR: &str = "src/v1_33";

/// One parsed proto field.
#[derive(Debug)]
struct ProtoField {
    name: String,
    tag: u32,
    repeated: bool,
    /// `None` for a plain field, `Some(value type)` for `map<string, V>`.
    map_value: Option<String>,
    ty: String,
}

#[derive(Debug)]
struct ProtoMessage {
    full_name: String,
    package: String,
    fields: Vec<ProtoField>,
    /// Marked `+protobuf.nullable=true`: a Go slice type wrapped in a message (`items`).
    slice_alias: bool,
}

fn registry_crate(name: &str) -> PathBuf {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let src = home.join("registry").join("src");
    for index in std::fs::read_dir(&src).unwrap() {
        let dir = index.unwrap().path().join(name);
        if dir.is_dir() {
            return dir;
        }
    }
    panic!("{name} is not in {}", src.display());
}

fn files_under(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_under(&p, suffix, out);
        } else if p.to_string_lossy().ends_with(suffix) {
            out.push(p);
        }
    }
}

fn parse_proto(text: &str) -> Vec<ProtoMessage> {
    let mut package = String::new();
    let mut out = Vec::new();
    let mut current: Option<ProtoMessage> = None;
    let mut comment = String::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(p) = t.strip_prefix("package ") {
            package = p.trim_end_matches(';').to_string();
        } else if t.starts_with("//") {
            comment.push_str(t);
            comment.push('\n');
            continue;
        } else if let Some(rest) = line.strip_prefix("message ") {
            let name = rest.trim_end_matches('{').trim();
            current = Some(ProtoMessage {
                full_name: format!("{package}.{name}"),
                package: package.clone(),
                fields: Vec::new(),
                slice_alias: comment.contains("+protobuf.nullable=true"),
            });
        } else if line == "}" {
            out.extend(current.take());
        } else if let Some(m) = current.as_mut()
            && let Some(decl) = t.strip_suffix(';')
        {
            m.fields.push(parse_field(decl));
        }
        comment.clear();
    }
    out
}

fn parse_field(decl: &str) -> ProtoField {
    let (lhs, tag) = decl.split_once(" = ").expect("field tag");
    let tag = tag.parse().expect("numeric tag");
    if let Some(rest) = lhs.strip_prefix("map<") {
        let (types, name) = rest.split_once("> ").expect("map field");
        let (key, value) = types.split_once(", ").expect("map types");
        assert_eq!(key, "string", "only string map keys occur");
        return ProtoField {
            name: name.to_string(),
            tag,
            repeated: false,
            map_value: Some(value.to_string()),
            ty: String::new(),
        };
    }
    let parts: Vec<&str> = lhs.split_whitespace().collect();
    assert_eq!(parts.len(), 3, "label type name: {decl}");
    ProtoField {
        name: parts[2].to_string(),
        tag,
        repeated: parts[0] == "repeated",
        map_value: None,
        ty: parts[1].to_string(),
    }
}

/// A k8s-openapi type: JSON key per Rust field name, and the required Rust fields.
#[derive(Debug, Default)]
struct OpenApiType {
    keys: BTreeMap<String, String>,
    required: Vec<String>,
}

fn parse_openapi(text: &str) -> Option<(String, OpenApiType)> {
    let name = text
        .lines()
        .find_map(|l| l.strip_prefix("pub struct "))?
        .trim_end_matches('{')
        .trim()
        .to_string();
    let mut ty = OpenApiType::default();
    let mut in_struct = false;
    for line in text.lines() {
        let t = line.trim();
        if line.starts_with("pub struct ") {
            in_struct = true;
        } else if in_struct && line == "}" {
            in_struct = false;
        } else if in_struct
            && let Some(decl) = t.strip_prefix("pub ")
            && let Some((field, rust_ty)) = decl.split_once(": ")
            && !rust_ty.starts_with("Option<")
        {
            ty.required.push(field.to_string());
        }
        if let Some((key, rest)) = t
            .strip_prefix('"')
            .and_then(|r| r.split_once("\" => Field::Key_"))
        {
            let field = rest.trim_end_matches(',').to_string();
            ty.keys.insert(field, key.to_string());
        }
    }
    Some((name, ty))
}

/// A Go struct embedded with `json:",inline"` (Volume's VolumeSource, Probe's ProbeHandler):
/// a message field without a JSON key of its own whose fields all are JSON keys of the parent.
fn is_inline(
    f: &ProtoField,
    parent: &ProtoMessage,
    api: &OpenApiType,
    messages: &HashMap<&str, &ProtoMessage>,
) -> bool {
    if f.repeated
        || f.map_value.is_some()
        || !f
            .ty
            .starts_with(|c: char| c == '.' || c.is_ascii_uppercase())
    {
        return false;
    }
    let Some(inner) = messages.get(resolve_type(&parent.package, &f.ty).as_str()) else {
        return false;
    };
    // Embedded structs nest (NamedRuleWithOperations > RuleWithOperations > Rule).
    !inner.fields.is_empty()
        && inner.fields.iter().all(|g| {
            api.keys.values().any(|k| letters(k) == letters(&g.name))
                || is_inline(g, inner, api, messages)
        })
}

fn letters(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn resolve_type(package: &str, ty: &str) -> String {
    match ty.strip_prefix('.') {
        Some(full) => full.to_string(),
        None => format!("{package}.{ty}"),
    }
}

fn kind_expr(package: &str, ty: &str) -> String {
    match ty {
        "string" => "Kind::String".into(),
        "bool" => "Kind::Bool".into(),
        "int32" => "Kind::Int32".into(),
        "int64" => "Kind::Int64".into(),
        "double" => "Kind::Double".into(),
        "bytes" => "Kind::Bytes".into(),
        other => {
            assert!(
                other
                    .chars()
                    .next()
                    .is_some_and(|c| c == '.' || c.is_ascii_uppercase()),
                "unexpected proto type {other}"
            );
            format!("Kind::Message({:?})", resolve_type(package, other))
        }
    }
}

/// The Rust source of `protobuf_schema.rs`, with a list of fields whose JSON name could not be
/// confirmed by k8s-openapi (reported, not fatal: alpha types are absent from it).
fn generate() -> (String, Vec<String>) {
    let proto_root = registry_crate(PROTO_CRATE).join(PROTO_VERSION_DIR);
    let openapi_root = registry_crate(OPENAPI_CRATE).join(OPENAPI_VERSION_DIR);
    let mut proto_files = Vec::new();
    files_under(&proto_root, "generated.proto", &mut proto_files);
    let mut messages: Vec<ProtoMessage> = proto_files
        .iter()
        .filter(|p| !p.to_string_lossy().contains("testapigroup"))
        .flat_map(|p| parse_proto(&std::fs::read_to_string(p).unwrap()))
        .collect();
    messages.sort_by(|a, b| a.full_name.cmp(&b.full_name));
    messages.dedup_by(|a, b| a.full_name == b.full_name);

    let mut openapi: HashMap<String, OpenApiType> = HashMap::new();
    let mut rs_files = Vec::new();
    files_under(&openapi_root, ".rs", &mut rs_files);
    for p in rs_files {
        let rel = p.parent().unwrap().strip_prefix(&openapi_root).unwrap();
        let package = rel.to_string_lossy().replace('/', ".");
        if let Some((name, ty)) = parse_openapi(&std::fs::read_to_string(&p).unwrap()) {
            openapi.insert(format!("{package}.{name}"), ty);
        }
    }

    let by_name: HashMap<&str, &ProtoMessage> =
        messages.iter().map(|m| (m.full_name.as_str(), m)).collect();
    let mut unconfirmed = Vec::new();
    let mut src = String::new();
    src.push_str(
        "//! @generated by `protobuf_gen.rs` (`cargo test -p asm-sim generate_protobuf_schema -- \
         --ignored`)\n//! from the Kubernetes 1.32 `generated.proto` files in k8s-rs-pb 0.5.0 and \
         the JSON keys of\n//! k8s-openapi 0.29. Do not edit.\n\n\
         use super::protobuf::{Field, INLINE, Kind, Message, REPEATED, REQUIRED};\n\n\
         /// Every Kubernetes protobuf message, sorted by full name.\n\
         pub(super) static MESSAGES: &[Message] = &[\n",
    );
    for m in &messages {
        let api = openapi.get(&m.full_name);
        writeln!(
            src,
            "    Message {{\n        name: {:?},\n        slice_alias: {},\n        fields: &[",
            m.full_name, m.slice_alias
        )
        .unwrap();
        for f in &m.fields {
            let (json, required, inline) = match api {
                Some(api) => {
                    let exact = api.keys.iter().find(|(_, k)| **k == f.name);
                    let loose = api
                        .keys
                        .iter()
                        .find(|(_, k)| letters(k) == letters(&f.name));
                    match exact.or(loose) {
                        Some((field, key)) => (key.clone(), api.required.contains(field), false),
                        None if is_inline(f, m, api, &by_name) => (f.name.clone(), false, true),
                        None => {
                            unconfirmed.push(format!("{}.{}", m.full_name, f.name));
                            (f.name.clone(), false, false)
                        }
                    }
                }
                None => (f.name.clone(), false, false),
            };
            let kind = match &f.map_value {
                Some(v) => format!("Kind::Map(&{})", kind_expr(&m.package, v)),
                None => kind_expr(&m.package, &f.ty),
            };
            let flags: Vec<&str> = [
                (f.repeated, "REPEATED"),
                (required, "REQUIRED"),
                (inline, "INLINE"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| *name)
            .collect();
            let flags = if flags.is_empty() {
                "0".to_string()
            } else {
                flags.join(" | ")
            };
            writeln!(
                src,
                "            Field::new({}, {json:?}, {kind}, {flags}),",
                f.tag
            )
            .unwrap();
        }
        src.push_str("        ],\n    },\n");
    }
    src.push_str("];\n");
    (src, unconfirmed)
}

#[test]
#[ignore = "rewrites protobuf_schema.rs from the cargo registry; run by hand"]
fn generate_protobuf_schema() {
    let (src, unconfirmed) = generate();
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/kube/protobuf_schema.rs");
    std::fs::write(&out, src).unwrap();
    // Every field of a type k8s-openapi knows must have found its JSON key there.
    assert!(
        unconfirmed.is_empty(),
        "wrote {}, but these fields have no JSON key in k8s-openapi: {unconfirmed:?}",
        out.display()
    );
}
