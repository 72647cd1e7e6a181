//! `-D/--output-dir DIR`: plan (text, JSON), every manifest applied, a log; 0700/0600; no
//! secret; re-usable.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::install::{fast, install, target};
use crate::support::{TestSandbox, assert_success, stderr};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if p.is_dir() {
            walk(&p, out);
        }
    }
}

#[test]
fn output_dir_holds_plan_manifests_and_log_privately_without_secrets() {
    let sb = TestSandbox::with(fast("fresh"));
    let dir = sb.dir.path().join("out");
    let d = dir.to_str().unwrap();
    let extra = [
        "--management",
        "revision",
        "--option",
        "cni-managed",
        "-D",
        d,
        "--yes",
        "-v",
    ];
    let o = install(&sb, &target(&sb, "cluster-1"), &extra);
    assert_success(&o, "install -D");
    assert_eq!(mode(&dir), 0o700);
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["schema"], "asm.plan/v1");
    assert_eq!(plan["dry_run"], false);
    let text = std::fs::read_to_string(dir.join("plan.txt")).unwrap();
    assert!(text.contains("Plan: "), "{text}");
    assert!(!text.contains('\x1b'));
    let log = std::fs::read_to_string(dir.join("asm.log")).unwrap();
    assert!(log.contains("Enabled 3 APIs"), "{log}");
    assert!(log.contains("GET "), "-v request traces are logged: {log}");
    let m = dir.join("manifests/asm-fresh_us-central1-c_cluster-1");
    for f in [
        "Namespace-istio-system.yaml",
        "ConfigMap-istio-system-asm-options.yaml",
        "ControlPlaneRevision-istio-system-asm-managed.yaml",
    ] {
        let y = std::fs::read_to_string(m.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(y.contains("kind:"), "{f}: {y}");
    }
    let token = sb.sandbox().token().to_string();
    let mut files = Vec::new();
    walk(&dir, &mut files);
    assert!(files.len() >= 7, "{files:?}");
    for f in &files {
        if f.is_dir() {
            assert_eq!(mode(f), 0o700, "{}", f.display());
        } else {
            assert_eq!(mode(f), 0o600, "{}", f.display());
            let body = std::fs::read_to_string(f).unwrap();
            assert!(!body.contains(&token), "token in {}", f.display());
            assert!(
                !body.contains("ya29."),
                "token-like text in {}",
                f.display()
            );
            assert!(!body.contains("Bearer"), "{}", f.display());
        }
    }
    // Re-using the directory is fine: the plan is replaced, the log grows.
    let o = install(&sb, &target(&sb, "cluster-1"), &extra);
    assert_success(&o, "install -D again");
    let log2 = std::fs::read_to_string(dir.join("asm.log")).unwrap();
    assert!(log2.len() > log.len() && log2.starts_with(&log));
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["summary"]["create"], 0, "{plan:#}");
}

#[test]
fn dry_run_writes_the_plan_and_the_manifests_it_would_apply() {
    let sb = TestSandbox::with(fast("fresh"));
    let dir = sb.dir.path().join("dry");
    let o = install(
        &sb,
        &target(&sb, "cluster-1"),
        &["--dry-run", "--output-dir", dir.to_str().unwrap()],
    );
    assert_success(&o, "dry run -D");
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["dry_run"], true);
    assert!(
        dir.join("manifests/asm-fresh_us-central1-c_cluster-1/Namespace-istio-system.yaml")
            .is_file()
    );
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn output_dir_that_is_a_file_is_rejected_before_any_request() {
    let sb = TestSandbox::with(fast("fresh"));
    let file = sb.dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = install(
        &sb,
        &target(&sb, "cluster-1"),
        &["--yes", "-D", file.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--output-dir"), "{}", stderr(&o));
    assert!(sb.requests().is_empty());
}
