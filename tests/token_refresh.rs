//! Runs that outlive their access token: with `--set token.ttl_s=2` the sandbox's token
//! endpoint mints tokens that are refused (401) two seconds later; `--key-file` installs
//! lasting several times that still succeed, because the Google clients and the Kubernetes
//! clients of the GKE clusters renew the token before it expires. And tokens refused before
//! their time (revoked, or expired early under clock skew): a key file's token is replaced
//! once and the request sent again; a fixed token's 401 is reported.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use asm::environment::Environment;
use asm::gcp::auth::{self, CredentialOptions};
use asm::gcp::{GcpClients, RetryPolicy};
use asm::kube::KubeError;
use asm::kube::apply;
use asm_sim::request_log::RequestRecord;

use crate::install::{fast, target};
use crate::support::{TestSandbox, stderr, stdout};

const TTL_S: f64 = 2.0;

fn exchanges(requests: &[RequestRecord]) -> Vec<&RequestRecord> {
    requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/oauth2/token"))
        .collect()
}

#[test]
fn key_file_install_outlasting_the_token_lifetime_succeeds_with_renewed_tokens() {
    // Slow operations stretch the run to several token lifetimes.
    let sb = TestSandbox::with(
        fast("fresh")
            .set("token.ttl_s", "2")
            .set("timing.gke_op_ms", "1500")
            .set("timing.hub_op_ms", "1500")
            .set("timing.crd_install_ms", "2500")
            .set("timing.cpr_ready_ms", "2500"),
    );
    let key = sb.sandbox().key_file_path().display().to_string();
    let mut args = vec!["install".to_string(), "--managed".into()];
    args.extend(target(&sb, "cluster-1"));
    args.extend(
        ["--enable-all", "--key-file", &key, "--yes"]
            .iter()
            .map(|s| s.to_string()),
    );
    let started = Instant::now();
    let o = sb
        .asm()
        // The token file would win over --key-file.
        .env_remove("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE")
        .env_remove("CLOUDSDK_AUTH_ACCESS_TOKEN")
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env("ASM_RETRY_POLICY", "fast")
        .stdin(Stdio::null())
        .args(&args)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        took >= Duration::from_secs(5),
        "the run must outlast the token ({took:?})"
    );

    let requests = sb.requests();
    let minted = exchanges(&requests);
    assert!(
        minted.len() >= 3,
        "a {TTL_S}s token is renewed during a {took:?} run: {} exchanges",
        minted.len()
    );
    assert!(minted.iter().all(|r| r.status == 200));
    let refused: Vec<&RequestRecord> = requests.iter().filter(|r| r.status == 401).collect();
    assert!(refused.is_empty(), "expired tokens were sent: {refused:?}");
    // The clusters' API servers were reached well after the first token expired, and
    // accepted what they got.
    let first = minted[0].ts;
    let late: Vec<&RequestRecord> = requests
        .iter()
        .filter(|r| r.server != "google" && r.ts > first + TTL_S + 0.5)
        .collect();
    assert!(
        !late.is_empty(),
        "no Kubernetes request after the first token expired"
    );
    assert!(
        late.iter().any(|r| (200..300).contains(&r.status)),
        "{late:?}"
    );
}

const PROJECT: &str = "asm-fresh";
const LOCATION: &str = "us-central1-c";
const CLUSTER: &str = "cluster-1";

/// The sandbox's environment without its token file, so that `--key-file` is what counts.
fn key_file_env(sb: &TestSandbox) -> Vec<(String, String)> {
    sb.env()
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"
                    | "CLOUDSDK_AUTH_ACCESS_TOKEN"
                    | "GOOGLE_APPLICATION_CREDENTIALS"
            )
        })
        .collect()
}

/// Google clients authenticating with the sandbox's service-account key.
fn key_file_clients(sb: &TestSandbox) -> GcpClients {
    let env = Environment::with_vars(key_file_env(sb));
    let opts = CredentialOptions {
        key_file: Some(sb.sandbox().key_file_path()),
        ..Default::default()
    };
    let (creds, _) = sb.block_on(auth::resolve_chain(&env, &opts)).unwrap();
    assert!(creds.provider.is_some(), "a key file's token refreshes");
    GcpClients::from_credentials(&env, &creds, RetryPolicy::fast()).unwrap()
}

/// Google clients authenticating with the sandbox's token file (a fixed token).
fn token_file_clients(sb: &TestSandbox) -> GcpClients {
    let env = Environment::with_vars(sb.env());
    let creds = sb.block_on(auth::resolve_credentials(&env, None)).unwrap();
    assert!(creds.provider.is_none(), "a token file's token is fixed");
    GcpClients::from_credentials(&env, &creds, RetryPolicy::fast()).unwrap()
}

/// The requests logged after the first `skip`.
fn requests_since(sb: &TestSandbox, skip: usize) -> Vec<RequestRecord> {
    sb.requests().into_iter().skip(skip).collect()
}

fn statuses(requests: &[RequestRecord], server: &str) -> Vec<u16> {
    requests
        .iter()
        .filter(|r| r.server == server)
        .map(|r| r.status)
        .collect()
}

#[test]
fn revoked_key_file_token_is_replaced_once_for_google_and_kubernetes_calls() {
    // Every project read revokes the token it carries: a request meeting a second 401.
    let sb = TestSandbox::with(fast("fresh").fault("GET /crm/*:expire").unwrap());
    let g = key_file_clients(&sb);
    sb.block_on(async {
        let cluster = g
            .container
            .get_cluster(PROJECT, LOCATION, CLUSTER)
            .await
            .unwrap();
        let kube = asm::kube::client_for_gke(&cluster, &g.bearer(), None)
            .unwrap()
            .client;
        assert!(
            apply::get_opt(&kube, "v1", "Namespace", None, "default")
                .await
                .unwrap()
                .is_some()
        );

        // Google: one 401, one new token, the same request again.
        let seen = sb.requests().len();
        assert_eq!(sb.sandbox().tokens().revoke_issued(), 1);
        g.container
            .get_cluster(PROJECT, LOCATION, CLUSTER)
            .await
            .unwrap();
        let after = requests_since(&sb, seen);
        assert_eq!(statuses(&after, "google"), [401, 200, 200], "{after:?}");
        assert_eq!(exchanges(&after).len(), 1);

        // Kubernetes: the same through the bearer layer of the cluster client.
        let seen = sb.requests().len();
        assert_eq!(sb.sandbox().tokens().revoke_issued(), 1);
        assert!(
            apply::get_opt(&kube, "v1", "Namespace", None, "default")
                .await
                .unwrap()
                .is_some()
        );
        let after = requests_since(&sb, seen);
        assert_eq!(statuses(&after, CLUSTER), [401, 200], "{after:?}");
        assert_eq!(exchanges(&after).len(), 1);

        // A new token refused as well is the answer: 401, after exactly two tries.
        let seen = sb.requests().len();
        let err = g.crm.project_number(PROJECT).await.unwrap_err();
        assert_eq!(err.api().map(|e| e.http_status), Some(401), "{err}");
        let after = requests_since(&sb, seen);
        let reads: Vec<u16> = after
            .iter()
            .filter(|r| r.path.starts_with("/crm/"))
            .map(|r| r.status)
            .collect();
        assert_eq!(reads, [401, 401], "{after:?}");
    });
}

#[test]
fn revoked_fixed_token_fails_with_401_after_one_try() {
    let sb = TestSandbox::with(fast("fresh"));
    let g = token_file_clients(&sb);
    sb.block_on(async {
        let cluster = g
            .container
            .get_cluster(PROJECT, LOCATION, CLUSTER)
            .await
            .unwrap();
        let kube = asm::kube::client_for_gke(&cluster, &g.bearer(), None)
            .unwrap()
            .client;
        let seen = sb.requests().len();
        assert!(sb.sandbox().tokens().revoke(sb.sandbox().token()));
        let err = g
            .container
            .get_cluster(PROJECT, LOCATION, CLUSTER)
            .await
            .unwrap_err();
        assert_eq!(err.api().map(|e| e.http_status), Some(401), "{err}");
        match apply::get_opt(&kube, "v1", "Namespace", None, "default").await {
            Err(KubeError::Api { status, .. }) => assert_eq!(status.code, 401),
            other => panic!("expected a 401 Status: {other:?}"),
        }
        let after = requests_since(&sb, seen);
        assert_eq!(statuses(&after, "google"), [401], "{after:?}");
        assert_eq!(statuses(&after, CLUSTER), [401], "{after:?}");
    });
}

/// Starts `asm install --managed` on cluster-1 of a sandbox slow enough for a run of
/// several seconds; `key_file`: authenticate with the key file instead of the token file.
fn spawn_install(sb: &TestSandbox, key_file: bool) -> Child {
    let mut args = vec!["install".to_string(), "--managed".into()];
    args.extend(target(sb, "cluster-1"));
    args.extend(["--enable-all", "--yes"].iter().map(|s| s.to_string()));
    let mut cmd = sb.asm();
    if key_file {
        args.extend([
            "--key-file".to_string(),
            sb.sandbox().key_file_path().display().to_string(),
        ]);
        cmd.env_clear().envs(key_file_env(sb));
    }
    cmd.env("ASM_RETRY_POLICY", "fast")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .args(&args)
        .spawn()
        .unwrap()
}

fn slow_sandbox() -> TestSandbox {
    TestSandbox::with(
        fast("fresh")
            .set("timing.gke_op_ms", "1500")
            .set("timing.hub_op_ms", "1500")
            .set("timing.crd_install_ms", "2500")
            .set("timing.cpr_ready_ms", "2500"),
    )
}

/// Waits until `child` has sent a request to the cluster (it is mid-run, past its Google
/// reads), then calls `revoke`; the run's output.
fn revoke_once_mid_run(sb: &TestSandbox, mut child: Child, revoke: impl FnOnce()) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "asm never reached the cluster");
        if sb.requests().iter().any(|r| r.server == CLUSTER) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "asm ended before reaching the cluster"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    revoke();
    let out = child.wait_with_output().unwrap();
    assert!(
        sb.requests().iter().any(|r| r.status == 401),
        "the revoked token was never sent again: the revocation came too late to test anything"
    );
    out
}

#[test]
fn key_file_install_survives_its_token_revoked_mid_run() {
    let sb = slow_sandbox();
    let child = spawn_install(&sb, true);
    let o = revoke_once_mid_run(&sb, child, || {
        assert!(sb.sandbox().tokens().revoke_issued() >= 1);
    });
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    // The first token, and one new token however many requests met the revoked one.
    assert_eq!(exchanges(&sb.requests()).len(), 2);
}

#[test]
fn token_file_install_with_its_token_revoked_mid_run_fails_naming_401() {
    let sb = slow_sandbox();
    let child = spawn_install(&sb, false);
    let o = revoke_once_mid_run(&sb, child, || {
        assert!(sb.sandbox().tokens().revoke(sb.sandbox().token()));
    });
    let said = format!("{}\n{}", stdout(&o), stderr(&o));
    assert_ne!(o.status.code(), Some(0), "{said}");
    // Revoked while asm reads the state, the 401 is a failed check (stdout); while it
    // applies, an error (stderr).
    assert!(said.contains("401"), "the output names the 401: {said}");
}
