//! In-process tests of the workload controllers, scheduler, kubelets and garbage collector.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::KubeApiServer;
use super::pods::node_names;
use crate::config::Timing;
use crate::http::{Handler, Request, Response};
use crate::scenario::Scenario;

const TOKEN: &str = "test-admin";

fn server_with(unready: &[&str]) -> Arc<KubeApiServer> {
    let mut cluster = Scenario::named("fresh").unwrap().clusters[0].clone();
    cluster.unready_workloads = unready.iter().map(|s| s.to_string()).collect();
    let timing = Timing {
        pod_ready: Duration::from_millis(30),
        ..Timing::default()
    };
    KubeApiServer::new(&cluster, "CA".into(), TOKEN.into(), timing)
}

fn server() -> Arc<KubeApiServer> {
    server_with(&[])
}

async fn call(s: &Arc<KubeApiServer>, method: &str, path: &str, ct: &str, body: Value) -> Response {
    let b = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let req = Request::new(method, path, b)
        .with_header("Authorization", &format!("Bearer {TOKEN}"))
        .with_header("Content-Type", ct)
        .with_header("User-Agent", "unit/1");
    s.clone().handle(req).await
}

async fn get(s: &Arc<KubeApiServer>, path: &str) -> Value {
    let r = call(s, "GET", path, "application/json", Value::Null).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.body_json());
    r.body_json()
}

async fn items(s: &Arc<KubeApiServer>, path: &str) -> Vec<Value> {
    get(s, path).await["items"].as_array().cloned().unwrap()
}

/// Polls `check` until it holds (or fails the test after 5 s).
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}}}})
}

const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";
const RS: &str = "/apis/apps/v1/namespaces/default/replicasets";
const PODS: &str = "/api/v1/namespaces/default/pods";

async fn create(s: &Arc<KubeApiServer>, path: &str, body: Value) -> Value {
    let r = call(s, "POST", path, "application/json", body).await;
    assert_eq!(r.status, 201, "{}", r.body_json());
    r.body_json()
}

fn condition<'a>(obj: &'a Value, ty: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

async fn deployment_complete(s: &Arc<KubeApiServer>, name: &str) -> bool {
    let d = get(s, &format!("{DEPLOYS}/{name}")).await;
    let want = d["spec"]["replicas"].as_i64().unwrap();
    d["status"]["observedGeneration"] == d["metadata"]["generation"]
        && d["status"]["availableReplicas"].as_i64().unwrap_or(0) == want
        && d["status"]["updatedReplicas"].as_i64().unwrap_or(0) == want
        && d["status"]["replicas"].as_i64().unwrap_or(0) == want
        && condition(&d, "Progressing").is_some_and(|c| c["reason"] == "NewReplicaSetAvailable")
}

async fn patch_template_annotation(s: &Arc<KubeApiServer>, name: &str, value: Value) {
    let p = json!({"spec": {"template": {"metadata": {"annotations": {"restarted": value}}}}});
    let r = call(
        s,
        "PATCH",
        &format!("{DEPLOYS}/{name}"),
        "application/merge-patch+json",
        p,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body_json());
}

#[tokio::test]
async fn cluster_has_three_ready_nodes() {
    let s = server();
    let nodes = items(&s, "/api/v1/nodes").await;
    let names: Vec<&str> = nodes
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    let mut expected = node_names("cluster-1");
    expected.sort();
    assert_eq!(names, expected);
    for n in &nodes {
        assert_eq!(condition(n, "Ready").unwrap()["status"], "True");
    }
}

#[tokio::test]
async fn deployment_gets_a_replicaset_and_ready_pods() {
    let s = server();
    create(&s, DEPLOYS, deployment("web", 2)).await;
    until("web complete", || deployment_complete(&s, "web")).await;
    let rss = items(&s, RS).await;
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"],
        "2"
    );
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"],
        "3"
    );
    let owner = &rs["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Deployment");
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["blockOwnerDeletion"], true);
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash
    );
    let pods = items(&s, PODS).await;
    assert_eq!(pods.len(), 2);
    let nodes = node_names("cluster-1");
    for p in &pods {
        let name = p["metadata"]["name"].as_str().unwrap();
        let suffix = name.strip_prefix(&format!("web-{hash}-")).unwrap();
        assert_eq!(suffix.len(), 5);
        assert!(
            suffix
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
        );
        assert!(nodes.contains(&p["spec"]["nodeName"].as_str().unwrap().to_string()));
        assert_eq!(p["status"]["phase"], "Running");
        for c in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert_eq!(condition(p, c).unwrap()["status"], "True", "{c}");
        }
        let cs = &p["status"]["containerStatuses"][0];
        assert_eq!(cs["ready"], true);
        assert_eq!(cs["started"], true);
        assert!(cs["state"]["running"]["startedAt"].is_string());
        assert!(p["status"]["podIP"].is_string());
        assert!(p["status"]["hostIP"].is_string());
        assert!(p["status"]["startTime"].is_string());
        assert_eq!(p["status"]["qosClass"], "BestEffort");
        assert_eq!(p["spec"]["serviceAccountName"], "default");
    }
    let d = get(&s, &format!("{DEPLOYS}/web")).await;
    assert_eq!(d["status"]["observedGeneration"], 1);
    assert_eq!(d["status"]["readyReplicas"], 2);
    assert!(d["status"].get("unavailableReplicas").is_none());
    assert_eq!(
        condition(&d, "Available").unwrap()["reason"],
        "MinimumReplicasAvailable"
    );
    assert_eq!(
        condition(&d, "Progressing").unwrap()["message"],
        format!("ReplicaSet \"web-{hash}\" has successfully progressed.")
    );
}

#[tokio::test]
async fn template_change_rolls_out_and_reverting_it_reuses_the_first_replicaset() {
    let s = server();
    create(&s, DEPLOYS, deployment("web", 2)).await;
    until("rollout 1", || deployment_complete(&s, "web")).await;
    let first = items(&s, RS).await[0]["metadata"]["name"].clone();
    patch_template_annotation(&s, "web", json!("1")).await;
    until("rollout 2", || deployment_complete(&s, "web")).await;
    let rss = items(&s, RS).await;
    assert_eq!(rss.len(), 2);
    let old = rss.iter().find(|r| r["metadata"]["name"] == first).unwrap();
    assert_eq!(old["spec"]["replicas"], 0);
    let new = rss.iter().find(|r| r["metadata"]["name"] != first).unwrap();
    assert_eq!(
        new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let new_hash = new["metadata"]["labels"]["pod-template-hash"].clone();
    let pods = items(&s, PODS).await;
    assert_eq!(pods.len(), 2);
    assert!(
        pods.iter()
            .all(|p| p["metadata"]["labels"]["pod-template-hash"] == new_hash)
    );
    // Back to the first template (what `kubectl rollout undo` does).
    patch_template_annotation(&s, "web", Value::Null).await;
    until("rollout 3", || deployment_complete(&s, "web")).await;
    let rss = items(&s, RS).await;
    assert_eq!(rss.len(), 2, "no third ReplicaSet");
    let reused = rss.iter().find(|r| r["metadata"]["name"] == first).unwrap();
    let a = &reused["metadata"]["annotations"];
    assert_eq!(a["deployment.kubernetes.io/revision"], "3");
    assert_eq!(a["deployment.kubernetes.io/revision-history"], "1");
    assert_eq!(reused["spec"]["replicas"], 2);
    let d = get(&s, &format!("{DEPLOYS}/web")).await;
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
}

#[tokio::test]
async fn rolling_update_never_exceeds_max_surge_or_max_unavailable() {
    let s = server();
    let mut d = deployment("web", 4);
    d["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}});
    create(&s, DEPLOYS, d).await;
    until("rollout 1", || deployment_complete(&s, "web")).await;
    patch_template_annotation(&s, "web", json!("x")).await;
    let (mut max_pods, mut min_ready) = (0usize, usize::MAX);
    let start = Instant::now();
    while !deployment_complete(&s, "web").await {
        let pods = items(&s, PODS).await;
        max_pods = max_pods.max(pods.len());
        let ready = pods
            .iter()
            .filter(|p| condition(p, "Ready").is_some_and(|c| c["status"] == "True"))
            .count();
        min_ready = min_ready.min(ready);
        assert!(start.elapsed() < Duration::from_secs(5), "rollout stuck");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(max_pods <= 5, "surge: saw {max_pods} pods");
    assert!(min_ready >= 3, "unavailable: saw only {min_ready} ready");
}

#[tokio::test]
async fn recreate_removes_old_pods_before_creating_new_ones() {
    let s = server();
    let mut d = deployment("web", 2);
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    create(&s, DEPLOYS, d).await;
    until("rollout 1", || deployment_complete(&s, "web")).await;
    let first_hash = items(&s, RS).await[0]["metadata"]["labels"]["pod-template-hash"].clone();
    patch_template_annotation(&s, "web", json!("x")).await;
    let start = Instant::now();
    while !deployment_complete(&s, "web").await {
        let pods = items(&s, PODS).await;
        let old = pods
            .iter()
            .filter(|p| p["metadata"]["labels"]["pod-template-hash"] == first_hash)
            .count();
        assert!(
            old == 0 || old == pods.len(),
            "old and new pods at once: {pods:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(5), "rollout stuck");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn revision_history_limit_deletes_the_oldest_replicasets() {
    let s = server();
    let mut d = deployment("web", 1);
    d["spec"]["revisionHistoryLimit"] = json!(1);
    create(&s, DEPLOYS, d).await;
    until("rollout 1", || deployment_complete(&s, "web")).await;
    for i in 0..3 {
        patch_template_annotation(&s, "web", json!(i.to_string())).await;
        until("rollout", || deployment_complete(&s, "web")).await;
    }
    until("cleanup", || async { items(&s, RS).await.len() == 2 }).await;
    let revisions: Vec<String> = items(&s, RS)
        .await
        .iter()
        .map(|r| {
            r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(revisions.contains(&"4".to_string()), "{revisions:?}");
    assert!(revisions.contains(&"3".to_string()), "{revisions:?}");
}

#[tokio::test]
async fn unready_workload_crash_loops_and_exceeds_its_progress_deadline() {
    let s = server_with(&["default/web"]);
    let mut d = deployment("web", 1);
    d["spec"]["progressDeadlineSeconds"] = json!(1);
    create(&s, DEPLOYS, d).await;
    let start = Instant::now();
    loop {
        let d = get(&s, &format!("{DEPLOYS}/web")).await;
        if condition(&d, "Progressing").is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded") {
            let c = condition(&d, "Progressing").unwrap();
            assert_eq!(c["status"], "False");
            assert!(
                c["message"]
                    .as_str()
                    .unwrap()
                    .ends_with("has timed out progressing.")
            );
            assert_eq!(condition(&d, "Available").unwrap()["status"], "False");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no deadline: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pods = items(&s, PODS).await;
    let cs = &pods[0]["status"]["containerStatuses"][0];
    assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(cs["ready"], false);
    assert!(cs["restartCount"].as_i64().unwrap() >= 2, "{cs}");
}

#[tokio::test]
async fn scale_subresource_reads_and_changes_replicas() {
    let s = server();
    create(&s, DEPLOYS, deployment("web", 1)).await;
    until("rollout", || deployment_complete(&s, "web")).await;
    let scale = get(&s, &format!("{DEPLOYS}/web/scale")).await;
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "app=web");
    let r = call(
        &s,
        "PATCH",
        &format!("{DEPLOYS}/web/scale"),
        "application/merge-patch+json",
        json!({"spec": {"replicas": 3}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body_json());
    assert_eq!(r.body_json()["spec"]["replicas"], 3);
    until("3 replicas", || deployment_complete(&s, "web")).await;
    assert_eq!(items(&s, PODS).await.len(), 3);
    let d = get(&s, &format!("{DEPLOYS}/web")).await;
    assert_eq!(d["metadata"]["generation"], 2);
}

async fn delete_with(s: &Arc<KubeApiServer>, path: &str, policy: &str) -> Response {
    call(
        s,
        "DELETE",
        path,
        "application/json",
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy}),
    )
    .await
}

#[tokio::test]
async fn background_deletion_removes_replicasets_and_pods() {
    let s = server();
    create(&s, DEPLOYS, deployment("web", 2)).await;
    until("rollout", || deployment_complete(&s, "web")).await;
    let r = delete_with(&s, &format!("{DEPLOYS}/web"), "Background").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body_json()["kind"], "Status");
    until("cascade", || async {
        items(&s, RS).await.is_empty() && items(&s, PODS).await.is_empty()
    })
    .await;
}

#[tokio::test]
async fn foreground_deletion_keeps_the_owner_until_dependents_are_gone() {
    let s = server();
    create(&s, DEPLOYS, deployment("web", 2)).await;
    until("rollout", || deployment_complete(&s, "web")).await;
    let r = delete_with(&s, &format!("{DEPLOYS}/web"), "Foreground").await;
    assert_eq!(r.status, 200);
    let body = r.body_json();
    assert_eq!(body["kind"], "Deployment");
    assert_eq!(
        body["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    assert!(body["metadata"]["deletionTimestamp"].is_string());
    until("cascade", || async {
        let r = call(
            &s,
            "GET",
            &format!("{DEPLOYS}/web"),
            "application/json",
            Value::Null,
        )
        .await;
        r.status == 404 && items(&s, RS).await.is_empty() && items(&s, PODS).await.is_empty()
    })
    .await;
}

#[tokio::test]
async fn orphan_deletion_leaves_replicasets_without_owner() {
    let s = server();
    create(&s, DEPLOYS, deployment("web", 1)).await;
    until("rollout", || deployment_complete(&s, "web")).await;
    let r = delete_with(&s, &format!("{DEPLOYS}/web"), "Orphan").await;
    assert_eq!(r.status, 200);
    until("owner gone", || async {
        call(
            &s,
            "GET",
            &format!("{DEPLOYS}/web"),
            "application/json",
            Value::Null,
        )
        .await
        .status
            == 404
    })
    .await;
    let rss = items(&s, RS).await;
    assert_eq!(rss.len(), 1);
    assert!(rss[0]["metadata"].get("ownerReferences").is_none());
    assert_eq!(items(&s, PODS).await.len(), 1);
}

#[tokio::test]
async fn statefulset_daemonset_and_job_get_their_pods() {
    let s = server();
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    create(&s, "/apis/apps/v1/namespaces/default/statefulsets", json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"}, "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "x"}}, "template": template}})).await;
    let mut ds_template = template.clone();
    ds_template["metadata"]["labels"]["app"] = json!("agent");
    create(&s, "/apis/apps/v1/namespaces/default/daemonsets", json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": ds_template}})).await;
    let mut job_template = template.clone();
    job_template["metadata"]["labels"] = json!({"app": "batch"});
    job_template["spec"]["restartPolicy"] = json!("Never");
    create(
        &s,
        "/apis/batch/v1/namespaces/default/jobs",
        json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "once"}, "spec": {"completions": 2, "template": job_template}}),
    )
    .await;
    until("statefulset ready", || async {
        get(&s, "/apis/apps/v1/namespaces/default/statefulsets/db").await["status"]["readyReplicas"]
            == 3
    })
    .await;
    until("daemonset ready", || async {
        get(&s, "/apis/apps/v1/namespaces/default/daemonsets/agent").await["status"]["numberReady"]
            == 3
    })
    .await;
    until("job complete", || async {
        let j = get(&s, "/apis/batch/v1/namespaces/default/jobs/once").await;
        condition(&j, "Complete").is_some_and(|c| c["status"] == "True")
    })
    .await;
    let pods = items(&s, PODS).await;
    let mut sts: Vec<&str> = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "x")
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    sts.sort();
    assert_eq!(sts, vec!["db-0", "db-1", "db-2"]);
    let mut ds_nodes: Vec<&str> = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "agent")
        .map(|p| p["spec"]["nodeName"].as_str().unwrap())
        .collect();
    ds_nodes.sort();
    let mut nodes = node_names("cluster-1");
    nodes.sort();
    assert_eq!(ds_nodes, nodes);
    let job_pods: Vec<&Value> = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "batch")
        .collect();
    assert_eq!(job_pods.len(), 2);
    assert!(job_pods.iter().all(|p| p["status"]["phase"] == "Succeeded"));
    let j = get(&s, "/apis/batch/v1/namespaces/default/jobs/once").await;
    assert_eq!(j["status"]["succeeded"], 2);
    assert!(j["status"]["completionTime"].is_string());
}

#[tokio::test]
async fn eviction_is_refused_when_the_disruption_budget_allows_none() {
    let s = server();
    create(&s, DEPLOYS, deployment("web", 2)).await;
    until("rollout", || deployment_complete(&s, "web")).await;
    create(&s, "/apis/policy/v1/namespaces/default/poddisruptionbudgets", json!({"apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget", "metadata": {"name": "web"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})).await;
    until("pdb status", || async {
        get(
            &s,
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web",
        )
        .await["status"]["currentHealthy"]
            == 2
    })
    .await;
    let pdb = get(
        &s,
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web",
    )
    .await;
    assert_eq!(pdb["status"]["desiredHealthy"], 2);
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
    let pod = items(&s, PODS).await[0]["metadata"]["name"].clone();
    let pod = pod.as_str().unwrap();
    let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": "default"}});
    let r = call(
        &s,
        "POST",
        &format!("{PODS}/{pod}/eviction"),
        "application/json",
        eviction.clone(),
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.body_json());
    assert_eq!(r.body_json()["reason"], "TooManyRequests");
    // With room for one disruption, the eviction deletes the pod.
    let r = call(
        &s,
        "PATCH",
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web",
        "application/merge-patch+json",
        json!({"spec": {"minAvailable": 1}}),
    )
    .await;
    assert_eq!(r.status, 200);
    until("budget allows one", || async {
        get(
            &s,
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web",
        )
        .await["status"]["disruptionsAllowed"]
            == 1
    })
    .await;
    let r = call(
        &s,
        "POST",
        &format!("{PODS}/{pod}/eviction"),
        "application/json",
        eviction,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body_json());
    let r = call(
        &s,
        "GET",
        &format!("{PODS}/{pod}"),
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn scenario_objects_are_settled_before_the_server_is_used() {
    let s = server_with(&["default/web"]);
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}});
    let mut d = deployment("web", 2);
    d["metadata"]["namespace"] = json!("default");
    s.settle_scenario_objects(&[ns, d]).unwrap();
    // Synchronously settled: no waiting, and the unready knob spared these pods.
    let pods = items(&s, PODS).await;
    assert_eq!(pods.len(), 2);
    assert!(
        pods.iter()
            .all(|p| condition(p, "Ready").is_some_and(|c| c["status"] == "True"))
    );
    assert!(deployment_complete(&s, "web").await);
    // Pods created afterwards crash.
    let r = call(
        &s,
        "PATCH",
        &format!("{DEPLOYS}/web/scale"),
        "application/merge-patch+json",
        json!({"spec": {"replicas": 3}}),
    )
    .await;
    assert_eq!(r.status, 200);
    until("third pod crashes", || async {
        items(&s, PODS).await.iter().any(|p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        })
    })
    .await;
}
