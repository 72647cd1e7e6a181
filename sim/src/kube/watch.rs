//! WATCH: newline-delimited JSON events over a streamed body. A watch replays history after
//! the requested resourceVersion (or synthesises ADDED events for the current state), then
//! follows live changes until `timeoutSeconds`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::registry::ResourceType;
use super::store::{Event, State, WatchFilter, Watcher};
use super::util::b64;
use crate::http::{Body, Response};

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// No resourceVersion: the current state as ADDED events (plus the initial-events-end
    /// bookmark when bookmarks are allowed).
    Now { bookmark: bool },
    /// `resourceVersion=0`: the current state as ADDED events.
    Any,
    /// After this resourceVersion.
    After(u64),
}

/// Starts a watch: registers it under the state lock (so no change is missed) and returns
/// the streaming response.
pub fn start(
    state: &mut State,
    rt: &ResourceType,
    filter: WatchFilter,
    start: Start,
    timeout: Duration,
) -> Response {
    let mut initial: Vec<Bytes> = Vec::new();
    let mut too_old = false;
    match start {
        Start::Now { .. } | Start::Any => {
            for (k, obj) in &state.objects {
                if filter.matches(k, obj) {
                    initial.push(line("ADDED", obj));
                }
            }
            if let Start::Now { bookmark: true } = start {
                let blueprint =
                    json!({"apiVersion": rt.api_version(), "items": [], "kind": rt.list_kind()});
                let mut blueprint = serde_json::to_string(&blueprint).unwrap_or_default();
                blueprint.push('\n');
                let bm = json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {
                    "resourceVersion": state.rv.to_string(),
                    "annotations": {"k8s.io/initial-events-end": "true", "kubernetes.io/initial-events-list-blueprint": b64(blueprint.as_bytes())},
                }});
                initial.push(line("BOOKMARK", &bm));
            }
        }
        Start::After(rv) => {
            let oldest = state.oldest_watchable(rt);
            if rv < oldest {
                too_old = true;
                let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("too old resource version: {rv} ({})", oldest + 1), "reason": "Expired", "code": 410});
                initial.push(line("ERROR", &status));
            } else {
                for e in state.history.iter().filter(|e| e.rv > rv) {
                    if filter.matches(&e.key, &e.object) {
                        initial.push(line(e.kind.as_str(), &e.object));
                    }
                }
            }
        }
    }
    let (body_tx, body_rx) = mpsc::channel::<Bytes>(64);
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Arc<Event>>();
    if !too_old {
        state.watchers.push(Watcher { filter, tx: ev_tx });
    }
    tokio::spawn(async move {
        for chunk in initial {
            if body_tx.send(chunk).await.is_err() {
                return;
            }
        }
        if too_old {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = body_tx.closed() => break,
                ev = ev_rx.recv() => match ev {
                    Some(ev) => {
                        if body_tx.send(line(ev.kind.as_str(), &ev.object)).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
    });
    Response {
        status: 200,
        // hyper adds `Transfer-Encoding: chunked` itself on HTTP/1.1 (and it is illegal on h2).
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: Body::Stream(body_rx),
    }
}
