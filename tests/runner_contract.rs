//! The plan runner's contract on the remote-secret commands, which go through the same
//! runner as install: `--detailed-exitcode` on a dry run, and `-D/--output-dir` with the
//! plan and the run report (`run.json`), holding no token.

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use serde_json::Value;

use crate::install::{all_clusters, asm, fast};
use crate::support::{TestSandbox, assert_success, stdout};

fn mesh(sb: &TestSandbox, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["create-mesh".to_string()];
    args.extend(all_clusters(sb));
    args.extend(extra.iter().map(|s| s.to_string()));
    asm(sb, &args)
}

/// The reader tokens of every cluster (decoded `data.token` of token Secrets).
fn tokens(sb: &TestSandbox) -> Vec<String> {
    let s = sb.sandbox();
    let mut out = Vec::new();
    for c in &s.clusters {
        let ctx = format!("gke_{}_{}_{}", s.scenario.project_id, c.location, c.name);
        let Some(o) = sb.kubectl(&[
            "--context",
            &ctx,
            "get",
            "secrets",
            "-n",
            "istio-system",
            "-o",
            "json",
        ]) else {
            continue;
        };
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        for item in v["items"].as_array().unwrap() {
            if let Some(t) = item["data"]["token"].as_str() {
                let bytes = base64::engine::general_purpose::STANDARD.decode(t).unwrap();
                out.push(String::from_utf8(bytes).unwrap());
            }
        }
    }
    out
}

#[test]
fn create_mesh_detailed_exitcode_and_output_dir_follow_the_runner_contract() {
    let sb = TestSandbox::with(fast("fleet-2"));
    let o = mesh(&sb, &["--dry-run", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(10), "{}", stdout(&o));
    assert!(sb.mutating_requests().is_empty());

    let dir = sb.dir.path().join("out");
    let d = dir.display().to_string();
    let o = mesh(&sb, &["--yes", "-D", &d]);
    assert_success(&o, "create-mesh --yes -D");
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["schema"], "asm.run/v1");
    assert_eq!(run["command"], "create-mesh");
    assert_eq!(run["status"], "applied");
    let planned = plan["actions"].as_array().unwrap().len();
    let ran = run["actions"].as_array().unwrap();
    assert_eq!(ran.len(), planned);
    assert!(ran.iter().all(|a| a["status"] == "done"), "{run:#}");

    let tokens = tokens(&sb);
    if crate::support::tool_available("kubectl") {
        assert!(!tokens.is_empty(), "the reader tokens exist");
    }
    for name in ["plan.json", "plan.txt", "run.json", "asm.log"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        for t in &tokens {
            assert!(!text.contains(t.as_str()), "{name} holds a token");
        }
    }

    let o = mesh(&sb, &["--dry-run", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}
