//! `--plan-out FILE` / `asm apply FILE` for `create-mesh` and `create-remote-secret
//! --apply-to`: the saved plan holds no token, `asm apply` reads the tokens again, creates
//! exactly the saved secrets, and refuses (exit 2, nothing changed) when the state drifted.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use serde_json::Value;

use crate::install::{all_clusters, asm, fast, strs};
use crate::support::{TestSandbox, assert_success, stderr, stdout};

fn mesh(sb: &TestSandbox, clusters: &[String], extra: &[&str]) -> Output {
    let mut args = strs(&["create-mesh"]);
    args.extend(clusters.iter().cloned());
    args.extend(strs(extra));
    asm(sb, &args)
}

fn apply(sb: &TestSandbox, file: &Path, extra: &[&str]) -> Output {
    let mut args = strs(&["apply", file.to_str().unwrap()]);
    args.extend(strs(extra));
    asm(sb, &args)
}

fn contexts(sb: &TestSandbox) -> Vec<String> {
    let project = sb.sandbox().scenario.project_id.clone();
    sb.sandbox()
        .clusters
        .iter()
        .map(|c| c.context_name(&project))
        .collect()
}

fn kubectl(sb: &TestSandbox, args: &[&str]) -> Output {
    let o = sb.kubectl(args).expect("kubectl is installed");
    assert_success(&o, &format!("kubectl {args:?}"));
    o
}

/// The Secrets of istio-system in the cluster of `context`, as kubectl lists them.
fn secrets(sb: &TestSandbox, context: &str) -> Vec<Value> {
    let o = kubectl(
        sb,
        &[
            "--context",
            context,
            "get",
            "secrets",
            "-n",
            "istio-system",
            "-o",
            "json",
        ],
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["items"].as_array().unwrap().clone()
}

fn name(s: &Value) -> String {
    s["metadata"]["name"].as_str().unwrap().to_string()
}

/// Names of the remote secrets (`istio/multiCluster`) in the cluster of `context`.
fn remote_secrets(sb: &TestSandbox, context: &str) -> Vec<String> {
    let mut v: Vec<String> = secrets(sb, context)
        .iter()
        .filter(|s| s["metadata"]["labels"]["istio/multiCluster"] == "true")
        .map(name)
        .collect();
    v.sort();
    v
}

/// The reader tokens present on the cluster of `context`, decoded from its token Secrets.
fn reader_tokens(sb: &TestSandbox, context: &str) -> Vec<String> {
    secrets(sb, context)
        .iter()
        .filter(|s| s["type"] == "kubernetes.io/service-account-token")
        .filter_map(|s| s["data"]["token"].as_str())
        .map(|t| {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(t).unwrap()).unwrap()
        })
        .collect()
}

fn ids(v: &Value) -> Vec<String> {
    v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

fn changes(plan: &Value) -> u64 {
    let s = &plan["summary"];
    s["create"].as_u64().unwrap() + s["update"].as_u64().unwrap() + s["delete"].as_u64().unwrap()
}

/// Asserts `text` holds neither the Google token nor any of `tokens` (nor a JWT payload of
/// one) nor a kubeconfig `token:` line.
fn assert_no_token(text: &str, sb: &TestSandbox, tokens: &[String]) {
    assert!(!text.contains(sb.sandbox().token()), "the Google token");
    assert!(!tokens.is_empty());
    for t in tokens {
        assert!(t.len() > 20);
        assert!(!text.contains(t.as_str()), "a reader token");
        if let Some(payload) = t.split('.').nth(1) {
            assert!(!text.contains(payload), "a reader token's payload");
        }
    }
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("token:")),
        "a kubeconfig token line"
    );
}

#[test]
fn create_mesh_plan_out_holds_no_token_and_apply_creates_exactly_the_saved_secrets() {
    let sb = TestSandbox::with(fast("fleet-3"));
    let all = all_clusters(&sb);
    let file = sb.dir.path().join("plan.json");
    let o = mesh(&sb, &all, &["--plan-out", file.to_str().unwrap()]);
    assert_success(&o, "create-mesh --plan-out");
    assert!(stderr(&o).contains("asm apply"), "{}", stderr(&o));
    assert!(
        sb.mutating_requests().is_empty(),
        "{:#?}",
        sb.mutating_requests()
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["saved"]["command"], "create-mesh");
    let secret_ids: Vec<String> = ids(&saved)
        .into_iter()
        .filter(|id| id.contains("/remote-secret-"))
        .collect();
    assert_eq!(secret_ids.len(), 6, "{saved:#}");
    // A remote secret's payload names what to read and where to write.
    let rs = saved["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["payload"]["step"] == "remote_secret")
        .unwrap();
    assert_eq!(
        rs["payload"]["read"]["service_account"],
        "istio-reader-service-account"
    );
    assert!(
        rs["payload"]["write"]["secret"]
            .as_str()
            .unwrap()
            .starts_with("istio-remote-secret-cn-")
    );

    let o = apply(&sb, &file, &["--yes", "-o", "json"]);
    assert_success(&o, "asm apply");
    assert!(
        stderr(&o).contains("The state matches the plan"),
        "{}",
        stderr(&o)
    );
    let result: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(result["result"]["status"], "applied");
    assert_eq!(ids(&result), ids(&saved));

    // Every cluster holds the secrets of the two others, and nothing else.
    let ctx = contexts(&sb);
    let project = sb.sandbox().scenario.project_id.clone();
    let cluster_ids: Vec<String> = sb
        .sandbox()
        .clusters
        .iter()
        .map(|c| format!("istio-remote-secret-cn-{project}-{}-{}", c.location, c.name))
        .collect();
    let mut tokens = Vec::new();
    for (i, c) in ctx.iter().enumerate() {
        let mut expected: Vec<String> = cluster_ids
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| n.clone())
            .collect();
        expected.sort();
        assert_eq!(remote_secrets(&sb, c), expected, "{c}");
        tokens.extend(reader_tokens(&sb, c));
    }
    assert_eq!(tokens.len(), 3, "one reader token per cluster");
    assert_no_token(&text, &sb, &tokens);

    let o = mesh(&sb, &all, &["--dry-run", "-o", "json"]);
    assert_success(&o, "re-plan");
    let p: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(changes(&p), 0, "{p:#}");
}

#[test]
fn create_mesh_apply_refuses_a_secret_created_since_the_plan() {
    let sb = TestSandbox::with(fast("fleet-3"));
    let all = all_clusters(&sb);
    let file = sb.dir.path().join("plan.json");
    assert_success(
        &mesh(&sb, &all, &["--plan-out", file.to_str().unwrap()]),
        "--plan-out",
    );
    let ctx = contexts(&sb);
    // istio-system may not exist yet on a fresh fleet cluster.
    let _ = sb.kubectl(&["--context", &ctx[0], "create", "namespace", "istio-system"]);
    kubectl(
        &sb,
        &[
            "--context",
            &ctx[0],
            "create",
            "secret",
            "generic",
            "istio-remote-secret-elsewhere",
            "-n",
            "istio-system",
            "--from-literal=k=v",
        ],
    );
    let before = sb.mutating_requests().len();
    let o = apply(&sb, &file, &["--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("has changed"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("secret istio-system/istio-remote-secret-elsewhere"),
        "{}",
        stderr(&o)
    );
    assert_eq!(sb.mutating_requests().len(), before, "nothing changed");
}

#[test]
fn create_mesh_apply_refuses_when_a_reader_token_secret_changed() {
    let sb = TestSandbox::with(fast("fleet-3"));
    let all = all_clusters(&sb);
    // Clusters 1 and 2 first: their readers and tokens exist when cluster 3 joins.
    assert_success(&mesh(&sb, &all[..4], &["--yes"]), "create-mesh on 2");
    let file = sb.dir.path().join("plan.json");
    assert_success(
        &mesh(&sb, &all, &["--plan-out", file.to_str().unwrap()]),
        "--plan-out",
    );
    let ctx = contexts(&sb);
    let token_secret = secrets(&sb, &ctx[0])
        .into_iter()
        .find(|s| s["type"] == "kubernetes.io/service-account-token")
        .map(|s| name(&s))
        .unwrap();
    kubectl(
        &sb,
        &[
            "--context",
            &ctx[0],
            "annotate",
            "secret",
            &token_secret,
            "-n",
            "istio-system",
            "example.com/rotated=yes",
        ],
    );
    let before = sb.mutating_requests().len();
    let o = apply(&sb, &file, &["--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("secret istio-system/{token_secret}")),
        "{}",
        stderr(&o)
    );
    assert_eq!(sb.mutating_requests().len(), before, "nothing changed");
}

#[test]
fn create_remote_secret_apply_to_plan_out_then_apply_reads_the_token_again() {
    let sb = TestSandbox::with(fast("fleet-3"));
    let ctx = contexts(&sb);
    let file = sb.dir.path().join("secret-plan.json");
    let crs = |extra: &[&str]| {
        let mut a = strs(&[
            "create-remote-secret",
            "--context",
            &ctx[0],
            "--apply-to",
            &ctx[1],
        ]);
        a.extend(strs(extra));
        asm(&sb, &a)
    };
    // --plan-out without --apply-to: bad input.
    let o = asm(
        &sb,
        &strs(&[
            "create-remote-secret",
            "--context",
            &ctx[0],
            "--plan-out",
            "x.json",
        ]),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(sb.requests().is_empty());

    let o = crs(&["--plan-out", file.to_str().unwrap(), "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(sb.mutating_requests().is_empty());
    let text = std::fs::read_to_string(&file).unwrap();
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["saved"]["command"], "create-remote-secret");
    assert_eq!(saved["inputs"]["context"], ctx[0].as_str());

    let o = apply(&sb, &file, &["--yes"]);
    assert_success(&o, "asm apply");
    let project = sb.sandbox().scenario.project_id.clone();
    let c0 = &sb.sandbox().clusters[0];
    assert_eq!(
        remote_secrets(&sb, &ctx[1]),
        vec![format!(
            "istio-remote-secret-cn-{project}-{}-{}",
            c0.location, c0.name
        )]
    );
    let tokens = reader_tokens(&sb, &ctx[0]);
    assert_eq!(tokens.len(), 1);
    assert_no_token(&text, &sb, &tokens);
    assert_no_token(&format!("{}{}", stdout(&o), stderr(&o)), &sb, &tokens);

    let o = crs(&["--dry-run", "-o", "json"]);
    assert_success(&o, "re-plan");
    let p: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(changes(&p), 0, "{p:#}");

    // Applying the same plan again: the secret now exists, so the state drifted.
    let o = apply(&sb, &file, &["--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("has changed"), "{}", stderr(&o));
}
