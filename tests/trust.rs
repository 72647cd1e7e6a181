//! Places where asm could say more than it does or hurt the user: the process environment,
//! plain-http endpoint overrides, and log lines that bypass asm's output rules.

#![allow(clippy::unwrap_used)]

use std::os::unix::ffi::OsStrExt;

use crate::install::{fast, install, target};
use crate::support::{TestSandbox, stderr, stdout};

#[test]
fn a_non_utf8_environment_variable_does_not_panic() {
    let sb = TestSandbox::with(fast("installed"));
    let mut args = vec!["validate".to_string()];
    args.extend(target(&sb, "cluster-1"));
    let o = sb
        .asm()
        .env("ASM_RETRY_POLICY", "fast")
        .env(
            std::ffi::OsStr::from_bytes(b"ASM_TEST_LATIN1"),
            std::ffi::OsStr::from_bytes(b"caf\xe9"),
        )
        .env(
            std::ffi::OsStr::from_bytes(b"\xffODD_NAME"),
            std::ffi::OsStr::from_bytes(b"x"),
        )
        .stdin(std::process::Stdio::null())
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn plain_http_override_for_a_remote_host_exits_2_naming_the_variable() {
    let sb = TestSandbox::with(fast("fresh"));
    let mut args = vec!["validate".to_string()];
    args.extend(target(&sb, "cluster-1"));
    let o = sb
        .asm()
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER",
            "http://container.example.com/",
        )
        .stdin(std::process::Stdio::null())
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER") && err.contains("loopback"),
        "{err}"
    );
    assert!(sb.requests().is_empty(), "no request may be sent");
}

/// A Kubernetes 503 used to surface as kube-rs's own coloured `ERROR kube_client…` line.
#[test]
fn library_log_lines_stay_off_stderr_by_default() {
    let sb = TestSandbox::with(
        fast("fresh")
            .fault("GET /api*:503,rate=0.3")
            .unwrap()
            .seed(11),
    );
    let o = install(&sb, &target(&sb, "cluster-1"), &["--yes"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}\n{}", stdout(&o));
    let injected = sb
        .requests()
        .iter()
        .filter(|r| r.server != "google" && r.status == 503)
        .count();
    assert!(injected > 0, "the fault must have hit Kubernetes requests");
    assert!(!err.contains("kube_client"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no colour codes off a terminal: {err:?}"
    );
}

#[test]
fn asm_log_level_does_not_turn_on_library_logs() {
    let sb = TestSandbox::with(fast("installed"));
    let mut args = vec!["validate".to_string()];
    args.extend(target(&sb, "cluster-1"));
    let o = sb
        .asm()
        .env("ASM_LOG", "trace")
        .stdin(std::process::Stdio::null())
        .args(&args)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("asm::"), "asm's own debug lines appear: {err}");
    for library in ["hyper", "rustls", "kube_client", "reqwest", "h2"] {
        assert!(
            !err.lines().any(|l| l.contains(&format!(" {library}"))),
            "{library} logged: {err}"
        );
    }
}

/// The reads before planning are part of the run `--timeout` bounds (exit 4, nothing sent).
#[test]
fn timeout_bounds_the_reads_before_planning() {
    let sb = TestSandbox::with(fast("fresh").latency_ms(1500));
    let o = install(
        &sb,
        &target(&sb, "cluster-1"),
        &["--dry-run", "--timeout", "1s"],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("ASM-E460") && err.contains("--timeout"),
        "{err}"
    );
    assert!(sb.mutating_requests().is_empty());
}

/// A copy of the sandbox kubeconfig whose context `viewer` reaches the first cluster as a
/// ServiceAccount bound to ClusterRole `role` (with the real kubectl); and its token.
fn viewer_kubeconfig(sb: &TestSandbox, role: &str) -> (std::path::PathBuf, String) {
    let kubectl = |args: &[&str]| {
        let o = sb.kubectl(args).unwrap();
        crate::support::assert_success(&o, &args.join(" "));
        stdout(&o)
    };
    kubectl(&["create", "serviceaccount", "viewer", "-n", "default"]);
    kubectl(&[
        "create",
        "clusterrolebinding",
        "viewer",
        &format!("--clusterrole={role}"),
        "--serviceaccount=default:viewer",
    ]);
    let token = kubectl(&["create", "token", "viewer", "-n", "default"]);
    let kubeconfig = sb.dir.path().join("viewer.kubeconfig");
    std::fs::copy(sb.sandbox().kubeconfig_path(), &kubeconfig).unwrap();
    let kc = kubeconfig.to_str().unwrap();
    kubectl(&[
        "--kubeconfig",
        kc,
        "config",
        "set-credentials",
        "viewer",
        &format!("--token={}", token.trim()),
    ]);
    let cluster = kubectl(&[
        "--kubeconfig",
        kc,
        "config",
        "view",
        "-o",
        "jsonpath={.contexts[0].context.cluster}",
    ]);
    kubectl(&[
        "--kubeconfig",
        kc,
        "config",
        "set-context",
        "viewer",
        &format!("--cluster={}", cluster.trim()),
        "--user=viewer",
    ]);
    (kubeconfig, token.trim().to_string())
}

/// A caller who may only `view` the cluster learns which permissions are missing before
/// anything changes (ASM-C110, exit 3) — not "Kubernetes API not reachable".
#[test]
fn a_view_only_caller_gets_missing_permission_checks_and_nothing_changes() {
    let sb = TestSandbox::with(fast("fresh"));
    let (kubeconfig, token) = viewer_kubeconfig(&sb, "view");
    let kc = kubeconfig.to_str().unwrap();
    let before = sb.mutating_requests().len();
    let o = install(
        &sb,
        &target(&sb, "cluster-1"),
        &[
            "--management",
            "revision",
            "--kubeconfig",
            kc,
            "--context",
            "viewer",
            "--yes",
        ],
    );
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    for missing in [
        "missing Kubernetes permission: get customresourcedefinitions.apiextensions.k8s.io",
        "missing Kubernetes permission: create namespaces",
        "missing Kubernetes permission: patch controlplanerevisions.mesh.cloud.google.com in istio-system",
    ] {
        assert!(out.contains(missing), "{missing}:\n{out}\n{err}");
    }
    let reported = out
        .lines()
        .filter(|l| l.contains("get customresourcedefinitions.apiextensions.k8s.io"))
        .count();
    assert_eq!(reported, 1, "each missing permission once:\n{out}");
    assert!(!out.contains("not reachable") && !err.contains("not reachable"));
    assert_eq!(
        sb.mutating_requests().len(),
        before,
        "nothing may change: {:?}",
        &sb.mutating_requests()[before..]
    );
    assert!(!out.contains(&token) && !err.contains(&token));
}

/// `asm create-mesh --yes` on both clusters of `sb`, reaching cluster-1 as a caller bound to
/// ClusterRole `role`: its output, the caller's token, and asserts nothing was written and
/// the token never printed. Exit code and messages are the caller's to check.
fn create_mesh_as(sb: &TestSandbox, role: &str) -> (Option<i32>, String, String) {
    let (kubeconfig, token) = viewer_kubeconfig(sb, role);
    let other = sb.sandbox().clusters[1].context_name(&sb.sandbox().scenario.project_id);
    let before = sb.mutating_requests().len();
    let o = crate::install::asm(
        sb,
        &crate::install::strs(&[
            "create-mesh",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--context",
            "viewer",
            "--context",
            &other,
            "--yes",
        ]),
    );
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(
        sb.mutating_requests().len(),
        before,
        "nothing may change: {:?}",
        &sb.mutating_requests()[before..]
    );
    assert!(!out.contains(&token) && !err.contains(&token));
    (o.status.code(), out, err)
}

/// create-mesh checks the same way: a caller who may read everything but change nothing on
/// one member gets the missing permissions (ASM-C110, exit 3) and nothing is written anywhere.
#[test]
fn create_mesh_with_a_read_only_caller_gets_missing_permission_checks_and_nothing_changes() {
    let sb = TestSandbox::with(fast("fleet-2"));
    let o = sb
        .kubectl(&[
            "create",
            "clusterrole",
            "read-everything",
            "--verb=get,list,watch",
            "--resource=*.*",
        ])
        .unwrap();
    crate::support::assert_success(&o, "kubectl create clusterrole");
    let (code, out, err) = create_mesh_as(&sb, "read-everything");
    assert_eq!(code, Some(3), "{out}\n{err}");
    assert!(
        out.contains("ASM-C110") && out.contains("missing Kubernetes permission: create secrets"),
        "{out}\n{err}"
    );
}

#[test]
fn create_mesh_with_a_view_only_caller_names_each_refused_read_as_a_missing_permission() {
    let sb = TestSandbox::with(fast("fleet-2"));
    let (code, out, err) = create_mesh_as(&sb, "view");
    assert_eq!(code, Some(3), "{out}\n{err}");
    for refused in [
        "get clusterroles.rbac.authorization.k8s.io",
        "get clusterrolebindings.rbac.authorization.k8s.io",
        "list secrets in istio-system",
    ] {
        assert!(
            out.contains(&format!("missing Kubernetes permission: {refused}")),
            "{refused}:\n{out}\n{err}"
        );
    }
    assert!(!out.contains("cannot read cluster"), "{out}");
    assert!(
        !out.contains("403"),
        "no raw 403 instead of the check: {out}"
    );
}
