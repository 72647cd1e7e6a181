//! `asm sandbox serve|exec`: the exports contract, exit codes, bad input, the request log
//! and fault injection, seen from outside.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use asm_sim::SimConfig;

use crate::support::{TestSandbox, assert_success, stderr, stdout};

fn asm() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_asm"));
    cmd.env("NO_COLOR", "1")
        .env("GCE_METADATA_HOST", crate::support::CLOSED_LOOPBACK);
    cmd
}

/// Sends one raw HTTP/1.1 request and returns (status, body).
fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n").expect("write");
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serve_prints_only_quoted_exports_then_stops_on_sigterm() {
    let mut child = asm()
        .args(["sandbox", "serve", "--scenario", "fleet-2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("asm sandbox serve starts");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).expect("read") > 0,
            "serve closed stdout early: {lines:?}"
        );
        let done = line.starts_with("export ASM_SANDBOX_CLUSTERS=");
        lines.push(line.trim_end().to_string());
        if done {
            break;
        }
    }
    for line in &lines {
        let (name, value) = line
            .strip_prefix("export ")
            .and_then(|l| l.split_once('='))
            .expect("export NAME=VALUE");
        assert!(
            name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
            "{line}"
        );
        assert!(
            value.starts_with('\'') && value.ends_with('\''),
            "value not single-quoted: {line}"
        );
    }
    let names: Vec<&str> = lines
        .iter()
        .map(|l| {
            l.trim_start_matches("export ")
                .split('=')
                .next()
                .unwrap_or_default()
        })
        .collect();
    for expected in [
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_GKEHUB",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER",
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
        "CLOUDSDK_CORE_PROJECT",
        "KUBECONFIG",
        "KUBECACHEDIR",
        "ASM_SANDBOX_PROJECT",
        "ASM_SANDBOX_LOCATION",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(
        lines.last().map(String::as_str),
        Some("export ASM_SANDBOX_CLUSTERS='cluster-1 cluster-2'")
    );
    let overrides = lines
        .iter()
        .find(|l| l.contains("OVERRIDES_CONTAINER"))
        .expect("container override");
    assert!(
        overrides.contains("http://127.0.0.1:") && overrides.ends_with("/container/'"),
        "{overrides}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "serve did not exit within 2 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    reader.read_to_string(&mut rest).expect("read rest");
    assert!(
        rest.is_empty(),
        "serve wrote more than the exports: {rest:?}"
    );
}

#[test]
fn exec_runs_the_command_inside_and_returns_its_exit_code() {
    let out = asm()
        .args(["sandbox", "exec", "--scenario", "fleet-3", "--", "sh", "-c"])
        .arg("echo \"$ASM_SANDBOX_PROJECT/$ASM_SANDBOX_LOCATION: $ASM_SANDBOX_CLUSTERS\"; test -s \"$CLOUDSDK_AUTH_ACCESS_TOKEN_FILE\" && test -s \"$KUBECONFIG\" && exit 7")
        .output()
        .expect("asm runs");
    assert_eq!(out.status.code(), Some(7), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "asm-fleet/us-central1-c: cluster-1 cluster-2 cluster-3\n"
    );
}

#[test]
fn exec_puts_this_asm_first_on_path() {
    let out = asm()
        .args(["sandbox", "exec", "--", "asm", "--version"])
        .output()
        .expect("asm runs");
    assert_success(&out, "asm inside the sandbox");
    assert!(stdout(&out).starts_with("asm "), "{}", stdout(&out));
}

#[test]
fn bad_sandbox_input_is_a_usage_error_naming_the_input() {
    for (args, needle) in [
        (vec!["--scenario", "bogus"], "bogus"),
        (vec!["--set", "no-equals-sign"], "no-equals-sign"),
        (
            vec!["--set", "cluster.channel=weekly"],
            "cluster.channel=weekly",
        ),
        (vec!["--fault", "*:404"], "404"),
        (vec!["--fault", "*:503,rate=7"], "rate"),
        (vec!["--fault", "*:slow,ms=soon"], "ms"),
        (vec!["--fault", "*:expire,ms=5"], "ms=5"),
    ] {
        let out = asm()
            .args(["sandbox", "exec"])
            .args(&args)
            .args(["--", "true"])
            .output()
            .expect("asm runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(needle),
            "{args:?}: message does not name the input: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("error[ASM-E"), "{}", stderr(&out));
    }
    let out = asm()
        .args(["sandbox", "exec", "--scenario", "fresh"])
        .output()
        .expect("asm runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing command is a usage error"
    );
}

#[test]
fn request_log_has_one_line_per_request_with_status() {
    let sb = TestSandbox::start("fresh");
    let addr = sb.sandbox().google_addr;
    let token = sb.sandbox().token().to_string();
    let (status, _) = http(
        addr,
        "GET",
        "/crm/v1/projects/asm-fresh?alt=json",
        Some(&token),
    );
    assert_eq!(status, 200);
    let (status, _) = http(addr, "GET", "/crm/v1/projects/asm-fresh", None);
    assert_eq!(status, 401);
    let log = sb.requests();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str(), log[0].status),
        ("GET", "/crm/v1/projects/asm-fresh?alt=json", 200)
    );
    assert_eq!(log[0].server, "google");
    assert_eq!(log[1].status, 401);
    assert!(log[0].ts > 1.6e9 && log[1].ts >= log[0].ts);
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn injected_faults_answer_as_google_and_are_logged() {
    let sb = TestSandbox::with(
        SimConfig::new("fresh")
            .fault("GET /crm/*:503")
            .expect("fault")
            .fault("/serviceusage/*:drop")
            .expect("fault"),
    );
    let addr = sb.sandbox().google_addr;
    let token = sb.sandbox().token().to_string();
    let (status, body) = http(addr, "GET", "/crm/v1/projects/asm-fresh", Some(&token));
    assert_eq!(status, 503);
    let body: serde_json::Value = serde_json::from_str(&body).expect("a JSON error body");
    assert_eq!(body["error"]["status"], "UNAVAILABLE");
    assert_eq!(body["error"]["code"], 503);
    let (status, _) = http(
        addr,
        "GET",
        "/serviceusage/v1/projects/asm-fresh/services",
        Some(&token),
    );
    assert_eq!(status, 0, "a dropped connection sends no response");
    let statuses: Vec<u16> = sb.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 0]);
}

#[test]
fn installed_scenario_starts_with_a_ready_control_plane() {
    use asm_sim::member::MemberCluster;
    let sb = TestSandbox::start("installed");
    let cluster = &sb.sandbox().clusters[0].api;
    let cpr = cluster
        .get_object(
            "mesh.cloud.google.com/v1beta1",
            "ControlPlaneRevision",
            Some("istio-system"),
            "asm-managed",
        )
        .expect("the installed revision exists at start");
    let ready = cpr["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "ProvisioningFinished" && c["status"] == "True")
    });
    assert!(ready, "not provisioned at start: {cpr}");
    assert!(
        cluster
            .get_object(
                "admissionregistration.k8s.io/v1",
                "MutatingWebhookConfiguration",
                None,
                "istiod-asm-managed"
            )
            .is_some(),
        "the injection webhook exists at start"
    );
    assert!(
        sb.requests().is_empty(),
        "setting up a scenario is not a request"
    );
}

/// The issue's own acceptance line: gcloud, pointed at nothing but what `exec` exports.
#[test]
fn exec_runs_gcloud_against_the_sandbox_with_nothing_else_configured() {
    if !crate::support::tool_available("gcloud") {
        return;
    }
    let config = tempfile::tempdir().expect("gcloud config dir");
    let out = asm()
        .env("CLOUDSDK_CONFIG", config.path())
        .env_remove("CLOUDSDK_CORE_PROJECT")
        .args(["sandbox", "exec", "--scenario", "fresh", "--"])
        .args(["gcloud", "container", "clusters", "describe", "cluster-1", "--location", "us-central1-c"])
        .args(["--format=value(name,status,releaseChannel.channel,workloadIdentityConfig.workloadPool)"])
        .output()
        .expect("asm runs");
    assert_success(&out, "gcloud container clusters describe in the sandbox");
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["cluster-1", "RUNNING", "REGULAR", "asm-fresh.svc.id.goog"]
    );
}
