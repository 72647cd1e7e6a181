//! The JSON Schemas under `schemas/`: they are what the types generate now, and the real
//! outputs of the binary against the sandbox validate against them.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::install::{asm, fast, strs, target};
use crate::support::{TestSandbox, assert_success, stderr, stdout};

const REGENERATE: &str = "cargo run --example write-schemas";

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

#[test]
fn committed_schemas_are_what_the_types_generate() {
    let published = asm::schemas::all();
    let mut drifted = Vec::new();
    for p in &published {
        let path = schemas_dir().join(p.file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != asm::schemas::file_text(&p.schema) {
            drifted.push(p.file);
        }
    }
    assert!(
        drifted.is_empty(),
        "schemas/{drifted:?} differ from the types that write the documents; regenerate \
         with `{REGENERATE}`, review the diff (README, \"Machine-readable output\": only \
         additive changes within v1) and commit it"
    );
    let mut on_disk: Vec<String> = std::fs::read_dir(schemas_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let expected: Vec<String> = published.iter().map(|p| p.file.to_string()).collect();
    assert_eq!(
        on_disk, expected,
        "schemas/ holds exactly the published schemas (`{REGENERATE}` writes them)"
    );
    assert_eq!(published.len(), 4);
}

/// `schema` and, recursively, the subschemas it refers to (`$ref` into `$defs`) or combines
/// (`anyOf`, `oneOf`, `allOf`): every schema that may describe the same value.
fn candidates<'s>(root: &'s Value, schema: &'s Value, out: &mut Vec<&'s Value>) {
    out.push(schema);
    if let Some(name) = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        candidates(root, &root["$defs"][name], out);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for s in schema[key].as_array().into_iter().flatten() {
            candidates(root, s, out);
        }
    }
}

/// Paths of the object keys in `doc` that no schema in `schemas` names: a document may only
/// hold what its schema documents, except under open values (a Kubernetes object, a map).
fn undocumented(root: &Value, schemas: &[&Value], doc: &Value, path: &str, out: &mut Vec<String>) {
    let mut all = Vec::new();
    for s in schemas {
        candidates(root, s, &mut all);
    }
    match doc {
        Value::Object(map) => {
            let named: Vec<&serde_json::Map<String, Value>> = all
                .iter()
                .filter_map(|s| s["properties"].as_object())
                .collect();
            let maps: Vec<&Value> = all
                .iter()
                .map(|s| &s["additionalProperties"])
                .filter(|a| a.is_object())
                .collect();
            for (key, value) in map {
                let here = format!("{path}/{key}");
                let described: Vec<&Value> = named.iter().filter_map(|p| p.get(key)).collect();
                if !described.is_empty() {
                    undocumented(root, &described, value, &here, out);
                } else if !maps.is_empty() {
                    undocumented(root, &maps, value, &here, out);
                } else if !named.is_empty() {
                    out.push(here);
                }
            }
        }
        Value::Array(items) => {
            let item_schemas: Vec<&Value> = all
                .iter()
                .map(|s| &s["items"])
                .filter(|i| i.is_object())
                .collect();
            for (i, item) in items.iter().enumerate() {
                undocumented(root, &item_schemas, item, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Validators of the committed schemas (and the schemas), by file name.
struct Validators(BTreeMap<&'static str, (Value, jsonschema::Validator)>);

impl Validators {
    fn load() -> Self {
        let mut map = BTreeMap::new();
        for p in asm::schemas::all() {
            let text = std::fs::read_to_string(schemas_dir().join(p.file)).unwrap();
            let schema: Value = serde_json::from_str(&text).unwrap();
            let validator = jsonschema::validator_for(&schema)
                .unwrap_or_else(|e| panic!("schemas/{} is not a valid schema: {e}", p.file));
            map.insert(p.file, (schema, validator));
        }
        Validators(map)
    }

    /// Asserts `doc` is valid under `file` and holds no field the schema does not name,
    /// naming every error and where it is.
    #[track_caller]
    fn check(&self, file: &str, what: &str, doc: &Value) {
        let (schema, validator) = &self.0[file];
        let mut errors: Vec<String> = validator
            .iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        let mut extra = Vec::new();
        undocumented(schema, &[schema], doc, "", &mut extra);
        errors.extend(extra.iter().map(|p| format!("{p} is not in the schema")));
        assert!(
            errors.is_empty(),
            "{what} does not validate against schemas/{file}:\n{}\n{doc:#}",
            errors.join("\n")
        );
    }
}

fn json_stdout(o: &Output, what: &str) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not one JSON object: {e}\n{}\n{}",
            stdout(o),
            stderr(o)
        )
    })
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `asm ARGS` with `TARGET` (cluster-1) spliced in after the command words.
fn run(sb: &TestSandbox, words: &[&str], extra: &[&str]) -> Output {
    let mut args = strs(words);
    args.extend(target(sb, "cluster-1"));
    args.extend(strs(extra));
    asm(sb, &args)
}

#[test]
fn real_outputs_of_the_sandbox_validate_against_the_committed_schemas() {
    let v = Validators::load();
    let mut validated: BTreeMap<&str, usize> = BTreeMap::new();
    let mut check = |file: &'static str, what: &str, doc: &Value| {
        v.check(file, what, doc);
        *validated.entry(file).or_default() += 1;
    };
    let plan = "asm.plan.v1.json";
    let run_report = "asm.run.v1.json";
    let saved = "asm.saved-plan.v1.json";
    let status = "asm.status.v1.json";

    // Install on a fresh project: the dry run, a saved plan, the run, the cluster's status.
    let sb = TestSandbox::with(fast("fresh"));
    let dir = sb.dir.path().to_path_buf();
    let install = ["install", "--managed"];
    let o = run(&sb, &install, &["--enable-all", "--dry-run", "-o", "json"]);
    assert_success(&o, "install --dry-run");
    check(
        plan,
        "install --dry-run -o json",
        &json_stdout(&o, "dry run"),
    );
    let file = dir.join("install-plan.json");
    let o = run(
        &sb,
        &install,
        &["--enable-all", "--plan-out", file.to_str().unwrap()],
    );
    assert_success(&o, "install --plan-out");
    check(saved, "install --plan-out", &json_file(&file));
    let out = dir.join("install-out");
    let o = run(
        &sb,
        &install,
        &[
            "--enable-all",
            "--yes",
            "-o",
            "json",
            "-D",
            out.to_str().unwrap(),
        ],
    );
    assert_success(&o, "install --yes");
    let doc = json_stdout(&o, "install --yes");
    assert_eq!(doc["result"]["status"], "applied", "{doc:#}");
    check(plan, "install --yes -o json", &doc);
    check(
        plan,
        "-D/plan.json of install",
        &json_file(&out.join("plan.json")),
    );
    check(
        run_report,
        "-D/run.json of install",
        &json_file(&out.join("run.json")),
    );
    let o = run(&sb, &["status"], &["-o", "json"]);
    assert_success(&o, "status");
    check(
        status,
        "status -o json (installed)",
        &json_stdout(&o, "status"),
    );
    let o = run(&sb, &["validate", "--managed"], &["-o", "json"]);
    assert_success(&o, "validate");
    check(plan, "validate -o json", &json_stdout(&o, "validate"));
    drop(sb);

    // A run that fails part-way: failures, a failed action's error, skipped dependents.
    let sb = TestSandbox::with(fast("fresh").fault("POST */memberships*:500").unwrap());
    let out = sb.dir.path().join("failed-out");
    let o = run(
        &sb,
        &install,
        &[
            "--enable-all",
            "--yes",
            "-o",
            "json",
            "-D",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    let doc = json_stdout(&o, "failed install");
    assert_eq!(doc["result"]["status"], "failed", "{doc:#}");
    let statuses: Vec<&str> = doc["result"]["run"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"failed") && statuses.contains(&"skipped"),
        "{statuses:?}"
    );
    check(plan, "a failed install -o json", &doc);
    check(
        run_report,
        "-D/run.json of a failed install",
        &json_file(&out.join("run.json")),
    );
    drop(sb);

    // The data plane and a gateway on a cluster with workloads: their saved plans, then the
    // runs (label and annotation priors).
    let sb = TestSandbox::with(fast("installed-workloads"));
    let o = run(&sb, &["status"], &["-o", "json"]);
    assert_success(&o, "status");
    check(
        status,
        "status -o json (workloads)",
        &json_stdout(&o, "status"),
    );
    let file = sb.dir.path().join("dataplane-plan.json");
    let o = run(
        &sb,
        &["enable-dataplane"],
        &["--all-namespaces", "--plan-out", file.to_str().unwrap()],
    );
    assert_success(&o, "enable-dataplane --plan-out");
    check(saved, "enable-dataplane --plan-out", &json_file(&file));
    let out = sb.dir.path().join("dataplane-out");
    let o = run(
        &sb,
        &["enable-dataplane"],
        &[
            "--all-namespaces",
            "--yes",
            "-o",
            "json",
            "-D",
            out.to_str().unwrap(),
        ],
    );
    assert_success(&o, "enable-dataplane");
    check(
        plan,
        "enable-dataplane -o json",
        &json_stdout(&o, "dataplane"),
    );
    let report = json_file(&out.join("run.json"));
    assert!(
        report["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["prior"]["change"] == "updated"),
        "{report:#}"
    );
    check(run_report, "-D/run.json of enable-dataplane", &report);
    let gateway = ["--namespace", "gw", "--enable-namespace-creation"];
    let file = sb.dir.path().join("gateway-plan.json");
    let o = run(
        &sb,
        &["install-gateway"],
        &[&gateway[..], &["--plan-out", file.to_str().unwrap()]].concat(),
    );
    assert_success(&o, "install-gateway --plan-out");
    check(saved, "install-gateway --plan-out", &json_file(&file));
    let o = run(
        &sb,
        &["install-gateway"],
        &[&gateway[..], &["--yes", "-o", "json"]].concat(),
    );
    assert_success(&o, "install-gateway");
    check(plan, "install-gateway -o json", &json_stdout(&o, "gateway"));
    drop(sb);

    // Remote secrets: a saved create-mesh plan, then the run.
    let sb = TestSandbox::with(fast("fleet-2"));
    let clusters: Vec<String> = ["cluster-1", "cluster-2"]
        .iter()
        .flat_map(|c| {
            let t = target(&sb, c);
            [
                "--cluster".to_string(),
                format!("{}/{}/{}", t[1], t[3], t[5]),
            ]
        })
        .collect();
    let file = sb.dir.path().join("mesh-plan.json");
    let mut args = strs(&["create-mesh"]);
    args.extend(clusters.iter().cloned());
    let o = asm(
        &sb,
        &[args.clone(), strs(&["--plan-out", file.to_str().unwrap()])].concat(),
    );
    assert_success(&o, "create-mesh --plan-out");
    check(saved, "create-mesh --plan-out", &json_file(&file));
    let o = asm(&sb, &[args, strs(&["--yes", "-o", "json"])].concat());
    assert_success(&o, "create-mesh --yes");
    check(plan, "create-mesh -o json", &json_stdout(&o, "create-mesh"));
    drop(sb);

    // Migrate and rollback on an in-cluster control plane: saved plans, then the runs.
    let sb = crate::migrate::installed(&[]);
    let file = sb.dir.path().join("migrate-plan.json");
    let migrate = ["--namespace", "frontend"];
    let o = run(
        &sb,
        &["migrate"],
        &[&migrate[..], &["--plan-out", file.to_str().unwrap()]].concat(),
    );
    assert_success(&o, "migrate --plan-out");
    check(saved, "migrate --plan-out", &json_file(&file));
    let o = run(
        &sb,
        &["migrate"],
        &[&migrate[..], &["--yes", "-o", "json"]].concat(),
    );
    assert_success(&o, "migrate");
    check(plan, "migrate -o json", &json_stdout(&o, "migrate"));
    let file = sb.dir.path().join("rollback-plan.json");
    let o = run(&sb, &["rollback"], &["--plan-out", file.to_str().unwrap()]);
    assert_success(&o, "rollback --plan-out");
    check(saved, "rollback --plan-out", &json_file(&file));
    let o = run(&sb, &["rollback"], &["--yes", "-o", "json"]);
    assert_success(&o, "rollback");
    check(plan, "rollback -o json", &json_stdout(&o, "rollback"));
    drop(sb);

    assert_eq!(
        validated,
        BTreeMap::from([(plan, 10), (run_report, 3), (saved, 6), (status, 2)]),
        "documents validated per schema"
    );
}
