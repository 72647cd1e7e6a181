//! `-v` request traces (ARCHITECTURE.md, "Talking to Kubernetes"): Google and Kubernetes requests show method, URL, status
//! and duration on stderr — never tokens or headers.

#![allow(clippy::unwrap_used)]

use std::process::Output;

use crate::install::{asm, fast, install, strs, target};
use crate::support::{TestSandbox, assert_success, stderr, stdout};

/// The path and query of a trace URL (`http://h:p/path?q` or `/path?q`).
fn path_of(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => url,
    }
}

/// The Kubernetes trace lines of stderr, `METHOD URL STATUS Nms` with a Kubernetes API path
/// (`/api/…`, `/apis/…`), as `METHOD PATH STATUS Nms`.
fn kube_traces(o: &Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let method = parts.next()?;
            let url = parts.next()?;
            let rest: Vec<&str> = parts.collect();
            let path = path_of(url);
            let ok = ["GET", "POST", "PATCH", "PUT", "DELETE"].contains(&method)
                && (path.starts_with("/api/") || path.starts_with("/apis/"));
            ok.then(|| format!("{method} {path} {}", rest.join(" ")))
        })
        .collect()
}

/// Whether `line` is `METHOD PATH STATUS Nms`.
fn has_status_and_duration(line: &str) -> bool {
    let parts: Vec<&str> = line.split_whitespace().collect();
    parts.len() >= 4
        && parts[2].len() == 3
        && parts[2].parse::<u16>().is_ok()
        && parts[3].ends_with("ms")
}

fn assert_no_secrets(sb: &TestSandbox, o: &Output, what: &str) {
    let token = sb.sandbox().token().to_string();
    let err = stderr(o);
    assert!(!err.contains(&token), "{what}: token on stderr");
    assert!(!err.contains("Bearer"), "{what}: Bearer on stderr");
    assert!(
        !err.to_lowercase().contains("authorization:"),
        "{what}: header on stderr"
    );
}

#[test]
fn install_dry_run_verbose_traces_kube_requests_without_secrets() {
    let sb = TestSandbox::start("fresh");
    let o = install(&sb, &target(&sb, "cluster-1"), &["--dry-run", "-v"]);
    assert_success(&o, "install --dry-run -v");
    let traces = kube_traces(&o);
    assert!(
        traces
            .iter()
            .any(|l| l.starts_with("GET /api/v1/namespaces") && has_status_and_duration(l)),
        "no kube GET trace with a status:\n{}",
        stderr(&o)
    );
    assert!(
        traces.iter().all(|l| has_status_and_duration(l)),
        "{traces:?}"
    );
    let google = stderr(&o)
        .lines()
        .filter(|l| l.trim_start().starts_with("GET http"))
        .count();
    // Observation reads the feature, memberships, the cluster, the services and the project.
    assert!(google >= 5, "Google traces still shown:\n{}", stderr(&o));
    assert_no_secrets(&sb, &o, "install -v");
    assert!(!stdout(&o).contains(sb.sandbox().token()));

    // Without -v, no traces at all.
    let o = install(&sb, &target(&sb, "cluster-1"), &["--dry-run"]);
    assert_success(&o, "install --dry-run");
    assert!(kube_traces(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn validate_verbose_traces_kube_requests() {
    let sb = TestSandbox::start("fresh");
    let mut args = strs(&["validate"]);
    args.extend(target(&sb, "cluster-1"));
    args.extend(strs(&["--enable-all", "-v"]));
    let o = asm(&sb, &args);
    let traces = kube_traces(&o);
    assert!(
        traces.iter().any(|l| l.starts_with("GET /api")),
        "no kube trace:\n{}",
        stderr(&o)
    );
    assert_no_secrets(&sb, &o, "validate -v");
}

#[test]
fn create_remote_secret_verbose_traces_kube_requests() {
    let sb = TestSandbox::with(fast("fleet-2"));
    let o = asm(&sb, &strs(&["create-remote-secret", "-v"]));
    assert_success(&o, "create-remote-secret -v");
    let traces = kube_traces(&o);
    assert!(
        traces.iter().any(|l| l.starts_with("GET /api")),
        "no kube trace:\n{}",
        stderr(&o)
    );
    assert_no_secrets(&sb, &o, "create-remote-secret -v");
}

#[test]
fn create_mesh_with_contexts_only_traces_kube_requests() {
    let sb = TestSandbox::with(fast("fleet-2"));
    let contexts: Vec<String> = sb
        .sandbox()
        .clusters
        .iter()
        .flat_map(|c| {
            [
                "--context".to_string(),
                c.context_name(&sb.sandbox().scenario.project_id),
            ]
        })
        .collect();
    let mut args = vec!["create-mesh".to_string(), "--dry-run".into(), "-v".into()];
    args.extend(contexts);
    let o = asm(&sb, &args);
    assert_success(&o, "create-mesh --context … --dry-run -v");
    let traces = kube_traces(&o);
    assert!(
        traces
            .iter()
            .any(|l| l.starts_with("GET /api") && has_status_and_duration(l)),
        "no kube trace:\n{}",
        stderr(&o)
    );
    assert_no_secrets(&sb, &o, "create-mesh -v");
}
