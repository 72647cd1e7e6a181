//! Runs that outlive their access token: with `--set token.ttl_s=2` the sandbox's token
//! endpoint mints tokens that are refused (401) two seconds later; `--key-file` installs
//! lasting several times that still succeed, because the Google clients and the Kubernetes
//! clients of the GKE clusters renew the token before it expires.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

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
