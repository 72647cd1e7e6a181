//! The real kubectl against the simulated workload controllers: Deployments roll out,
//! restart, undo and scale; `get` lists Nodes, ReplicaSets and Pods; deletes cascade; an
//! unready workload exceeds its progress deadline. Bodies are YAML manifests (`apply -f`).

// Test helpers may fail loudly: a broken fixture or sandbox is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use asm_sim::SimConfig;

use crate::support::{TestSandbox, assert_success, stderr, stdout};

fn deployment(name: &str, replicas: u32, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: default
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
{extra_spec}  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: nginx:1.27
"
    )
}

fn sandbox(sets: &[(&str, &str)]) -> TestSandbox {
    let mut config = SimConfig::new("fresh").set("timing.pod_ready_ms", "100");
    for (k, v) in sets {
        config = config.set(k, v);
    }
    TestSandbox::with(config)
}

/// Applies a manifest from a file; `None` when kubectl is not installed.
fn apply(sb: &TestSandbox, name: &str, manifest: &str) -> Option<()> {
    let path = sb.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, manifest).unwrap();
    let out = sb.kubectl(&["apply", "-f", path.to_str().unwrap()])?;
    assert_success(&out, "kubectl apply");
    Some(())
}

fn kubectl_ok(sb: &TestSandbox, args: &[&str]) -> String {
    let out = sb.kubectl(args).unwrap();
    assert_success(&out, &format!("kubectl {}", args.join(" ")));
    stdout(&out)
}

/// Names printed by `kubectl get KIND -o name`, polled until `done` holds (5 s at most).
fn names_until(sb: &TestSandbox, kind: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let start = Instant::now();
    loop {
        let names: Vec<String> = kubectl_ok(sb, &["get", kind, "-o", "name"])
            .lines()
            .map(String::from)
            .collect();
        if done(&names) {
            return names;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{kind}: still {names:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kubectl_rolls_out_restarts_undoes_and_scales_a_deployment() {
    let sb = sandbox(&[]);
    if apply(&sb, "web", &deployment("web", 2, "")).is_none() {
        return;
    }
    let out = kubectl_ok(
        &sb,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let pods = kubectl_ok(&sb, &["get", "pods", "--no-headers"]);
    let running: Vec<&str> = pods.lines().filter(|l| l.contains("Running")).collect();
    assert_eq!(running.len(), 2, "{pods}");
    assert!(running.iter().all(|l| l.contains("1/1")), "{pods}");
    let first_rs = names_until(&sb, "rs", |n| n.len() == 1).remove(0);

    let out = kubectl_ok(&sb, &["rollout", "restart", "deployment/web"]);
    assert!(out.contains("restarted"), "{out}");
    kubectl_ok(
        &sb,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    );
    let rss = names_until(&sb, "rs", |n| n.len() == 2);
    assert!(rss.contains(&first_rs), "{rss:?}");

    let out = kubectl_ok(&sb, &["rollout", "undo", "deployment/web"]);
    assert!(out.contains("rolled back"), "{out}");
    kubectl_ok(
        &sb,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    );
    assert_eq!(names_until(&sb, "rs", |n| n.len() == 2).len(), 2);
    let rev = kubectl_ok(
        &sb,
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        ],
    );
    assert_eq!(rev, "3");
    let first_rev = kubectl_ok(
        &sb,
        &[
            "get",
            &first_rs,
            "-o",
            "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        ],
    );
    assert_eq!(first_rev, "3", "the first ReplicaSet is reused");
    let template_annotations = kubectl_ok(
        &sb,
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.metadata.annotations}",
        ],
    );
    assert!(
        !template_annotations.contains("restartedAt"),
        "{template_annotations}"
    );
    let history = kubectl_ok(&sb, &["rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(revisions, vec!["2", "3"], "{history}");

    let out = kubectl_ok(&sb, &["scale", "deployment/web", "--replicas=3"]);
    assert!(out.contains("scaled"), "{out}");
    let out = kubectl_ok(
        &sb,
        &[
            "wait",
            "--for=condition=Available",
            "deployment/web",
            "--timeout=20s",
        ],
    );
    assert!(out.contains("condition met"), "{out}");
    kubectl_ok(
        &sb,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    );
    let ready = kubectl_ok(
        &sb,
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
    );
    assert_eq!(ready, "3");
}

#[test]
fn kubectl_get_lists_nodes_replicasets_and_pods() {
    let sb = sandbox(&[]);
    if apply(&sb, "web", &deployment("web", 1, "")).is_none() {
        return;
    }
    kubectl_ok(
        &sb,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    );
    let nodes = kubectl_ok(&sb, &["get", "nodes", "--no-headers"]);
    let lines: Vec<&str> = nodes.lines().collect();
    assert_eq!(lines.len(), 3, "{nodes}");
    for l in &lines {
        let cols: Vec<&str> = l.split_whitespace().collect();
        assert!(
            cols[0].starts_with("gke-cluster-1-default-pool-"),
            "{nodes}"
        );
        assert_eq!(cols[1], "Ready", "{nodes}");
    }
    let rs = kubectl_ok(&sb, &["get", "rs"]);
    let header: Vec<&str> = rs.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, vec!["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    let row: Vec<&str> = rs.lines().nth(1).unwrap().split_whitespace().collect();
    assert!(row[0].starts_with("web-"), "{rs}");
    assert_eq!(&row[1..4], &["1", "1", "1"], "{rs}");
    let pods = kubectl_ok(&sb, &["get", "pods", "-o", "wide"]);
    let row: Vec<&str> = pods.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[2], "Running", "{pods}");
    assert!(row[5].starts_with("10."), "pod IP: {pods}");
    assert!(
        row[6].starts_with("gke-cluster-1-default-pool-"),
        "node: {pods}"
    );
}

#[test]
fn kubectl_delete_cascades_to_replicasets_and_pods() {
    let sb = sandbox(&[]);
    if apply(&sb, "web", &deployment("web", 2, "")).is_none() {
        return;
    }
    apply(&sb, "api", &deployment("api", 1, "")).unwrap();
    kubectl_ok(
        &sb,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    );
    kubectl_ok(
        &sb,
        &["rollout", "status", "deployment/api", "--timeout=20s"],
    );
    // Background (kubectl's default).
    kubectl_ok(&sb, &["delete", "deployment", "web"]);
    names_until(&sb, "pods", |n| {
        n.iter().all(|p| p.starts_with("pod/api-")) && n.len() == 1
    });
    names_until(&sb, "rs", |n| n.len() == 1);
    // Foreground: kubectl waits until the owner is gone, which is after its dependents.
    kubectl_ok(
        &sb,
        &["delete", "deployment", "api", "--cascade=foreground"],
    );
    assert!(names_until(&sb, "rs", |_| true).is_empty());
    assert!(names_until(&sb, "pods", |_| true).is_empty());
}

#[test]
fn kubectl_rollout_status_reports_an_unready_workload_past_its_deadline() {
    let sb = sandbox(&[("workload.default/stuck.ready", "false")]);
    if apply(
        &sb,
        "stuck",
        &deployment("stuck", 1, "  progressDeadlineSeconds: 2\n"),
    )
    .is_none()
    {
        return;
    }
    let out = sb
        .kubectl(&["rollout", "status", "deployment/stuck", "--timeout=30s"])
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("exceeded its progress deadline"),
        "{}",
        stderr(&out)
    );
    let reason = kubectl_ok(
        &sb,
        &[
            "get",
            "deployment",
            "stuck",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}",
        ],
    );
    assert_eq!(reason, "ProgressDeadlineExceeded");
    let pods = kubectl_ok(&sb, &["get", "pods", "--no-headers"]);
    assert!(pods.contains("CrashLoopBackOff"), "{pods}");
    assert!(pods.contains("0/1"), "{pods}");
}

/// A gateway-like Deployment whose container resources are written in non-canonical form.
fn gateway_deployment(name: &str, rev: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}, istio.io/rev: {rev}}}
    spec:
      containers:
      - name: istio-proxy
        image: nginx:1.27
        resources:
          requests: {{cpu: 100m, memory: 128Mi}}
          limits: {{cpu: 2000m, memory: 1024Mi}}
"
    )
}

/// `name=spec.replicas` of every ReplicaSet, sorted.
fn replicaset_replicas(sb: &TestSandbox) -> Vec<String> {
    let out = kubectl_ok(
        sb,
        &[
            "get",
            "rs",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.spec.replicas}{\"\\n\"}{end}",
        ],
    );
    let mut lines: Vec<String> = out.lines().map(String::from).collect();
    lines.sort();
    lines
}

#[test]
fn kubectl_shows_container_resources_in_canonical_form() {
    let sb = sandbox(&[]);
    if apply(&sb, "gw", &gateway_deployment("gw", "asm-191-1")).is_none() {
        return;
    }
    let deploy: serde_json::Value =
        serde_json::from_str(&kubectl_ok(&sb, &["get", "deploy", "gw", "-o", "json"])).unwrap();
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["resources"],
        serde_json::json!({
            "limits": {"cpu": "2", "memory": "1Gi"},
            "requests": {"cpu": "100m", "memory": "128Mi"}
        })
    );
}

#[test]
fn kubectl_rollout_undo_after_a_template_label_change_scales_the_original_replicaset_back_up() {
    let sb = sandbox(&[]);
    if apply(&sb, "gw", &gateway_deployment("gw", "asm-191-1")).is_none() {
        return;
    }
    kubectl_ok(
        &sb,
        &["rollout", "status", "deployment/gw", "--timeout=20s"],
    );
    let original = names_until(&sb, "rs", |n| n.len() == 1)
        .remove(0)
        .trim_start_matches("replicaset.apps/")
        .to_string();

    // What a migration does to the gateway: move its pods to another revision.
    kubectl_ok(
        &sb,
        &[
            "patch",
            "deployment",
            "gw",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/template/metadata/labels/istio.io~1rev","value":"asm-managed"}]"#,
        ],
    );
    kubectl_ok(
        &sb,
        &["rollout", "status", "deployment/gw", "--timeout=20s"],
    );
    let migrated = replicaset_replicas(&sb);
    assert_eq!(migrated.len(), 2, "{migrated:?}");
    assert!(migrated.contains(&format!("{original}=0")), "{migrated:?}");

    let out = kubectl_ok(&sb, &["rollout", "undo", "deployment/gw"]);
    assert!(out.contains("rolled back"), "{out}");
    kubectl_ok(
        &sb,
        &["rollout", "status", "deployment/gw", "--timeout=20s"],
    );
    let after = replicaset_replicas(&sb);
    assert_eq!(after.len(), 2, "no third ReplicaSet: {after:?}");
    assert!(after.contains(&format!("{original}=2")), "{after:?}");
    // kubectl describe finds the new ReplicaSet itself, by template equality.
    let describe = kubectl_ok(&sb, &["describe", "deployment", "gw"]);
    let new_rs = describe
        .lines()
        .find_map(|l| l.strip_prefix("NewReplicaSet:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no NewReplicaSet in:\n{describe}"));
    assert!(new_rs.starts_with(&format!("{original} ")), "{new_rs}");
}

#[test]
fn kubectl_create_with_a_malformed_quantity_is_refused_as_the_decoder_refuses_it() {
    let sb = sandbox(&[]);
    let manifest = gateway_deployment("gw", "asm-191-1").replace("cpu: 2000m", "cpu: two");
    let path = sb.dir.path().join("bad.yaml");
    std::fs::write(&path, manifest).unwrap();
    let Some(out) = sb.kubectl(&["create", "-f", path.to_str().unwrap()]) else {
        return;
    };
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "Deployment in version \"v1\" cannot be handled as a Deployment: quantities must match the regular expression"
        ),
        "{err}"
    );
    let deployments = kubectl_ok(&sb, &["get", "deployments", "-o", "name"]);
    assert!(deployments.trim().is_empty(), "{deployments}");
}
