//! The `slow` and `expire` faults as a client meets them: a Google API server and a
//! Kubernetes API server sharing one token registry, served on loopback sockets and called
//! with plain HTTP/1.1.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::{RunningServer, ServeContext, serve};
use crate::config::{Fault, Timing};
use crate::faults::FaultInjector;
use crate::google::{GoogleApi, SANDBOX_USER};
use crate::kube::KubeApiServer;
use crate::scenario::Scenario;
use crate::tokens::{Principal, TokenRegistry};

struct Servers {
    google: RunningServer,
    kube: RunningServer,
    tokens: Arc<TokenRegistry>,
}

async fn start(faults: &[&str]) -> Servers {
    let tokens = TokenRegistry::new();
    let ctx = Arc::new(ServeContext {
        latency: Duration::ZERO,
        faults: FaultInjector::new(faults.iter().map(|f| Fault::parse(f).unwrap()).collect(), 1),
        request_log: None,
        tokens: tokens.clone(),
    });
    let scenario = Scenario::build("fresh", &[]).unwrap();
    let kube_api = KubeApiServer::with_google_tokens(
        &scenario.clusters[0],
        "CA".into(),
        tokens.clone(),
        Timing::default(),
    );
    let google_api = GoogleApi::with_tokens(scenario, tokens.clone(), Vec::new());
    let listen = || TcpListener::bind(("127.0.0.1", 0));
    Servers {
        google: serve(
            listen().await.unwrap(),
            None,
            "google".into(),
            ctx.clone(),
            google_api,
        )
        .unwrap(),
        kube: serve(listen().await.unwrap(), None, "kube".into(), ctx, kube_api).unwrap(),
        tokens,
    }
}

/// `GET path` on `server` with `token` as bearer: status and JSON body.
async fn get(server: &RunningServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "the test reads whole bodies only: {head}"
    );
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

const PROJECT: &str = "/crm/v1/projects/asm-fresh";
const NAMESPACES: &str = "/api/v1/namespaces";

#[tokio::test]
async fn slow_answers_normally_after_its_delay() {
    let s = start(&[&format!("GET {PROJECT}:slow,ms=400")]).await;
    s.tokens.add_token("ya29.t", Principal::user(SANDBOX_USER));
    let t0 = Instant::now();
    let (status, body) = get(&s.google, PROJECT, Some("ya29.t")).await;
    let took = t0.elapsed();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["projectId"], "asm-fresh");
    assert!(
        took >= Duration::from_millis(400),
        "answered after {took:?}"
    );
    // Routes the fault does not match are not delayed.
    let t0 = Instant::now();
    let (status, _) = get(&s.kube, NAMESPACES, Some("ya29.t")).await;
    assert_eq!(status, 200);
    assert!(t0.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn expire_refuses_the_token_everywhere_as_an_expired_one_and_a_new_token_works() {
    let s = start(&[&format!("GET {PROJECT}:expire"), "GET /version:expire"]).await;
    let user = || Principal::user(SANDBOX_USER);
    s.tokens.issue_token("ya29.first", user());
    assert_eq!(get(&s.kube, NAMESPACES, Some("ya29.first")).await.0, 200);

    // The Google answer to the request that met the fault is the one for an expired token.
    let (status, body) = get(&s.google, PROJECT, Some("ya29.first")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["code"], 401);
    s.tokens.set_issued_lifetime(Duration::ZERO);
    s.tokens.issue_token("ya29.lapsed", user());
    let (_, lapsed) = get(&s.google, PROJECT, Some("ya29.lapsed")).await;
    assert_eq!(body, lapsed);
    s.tokens.set_issued_lifetime(Duration::from_secs(60));

    // The cluster refuses the revoked token too, with the Status of a real API server
    // (tests/k8s-golden/06-12-invalid-token-401.json).
    let (status, body) = get(&s.kube, NAMESPACES, Some("ya29.first")).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );

    // A new token works where the fault does not strike.
    s.tokens.issue_token("ya29.second", user());
    assert_eq!(get(&s.kube, NAMESPACES, Some("ya29.second")).await.0, 200);

    // The fixed token (the sandbox's token file) is revoked the same way, for good.
    s.tokens.add_token("ya29.fixed", user());
    assert_eq!(get(&s.google, PROJECT, Some("ya29.fixed")).await.0, 401);
    assert_eq!(get(&s.kube, NAMESPACES, Some("ya29.fixed")).await.0, 401);

    // A request without a token has nothing to expire: served as usual.
    let (status, body) = get(&s.kube, "/version", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["major"], "1");
}
