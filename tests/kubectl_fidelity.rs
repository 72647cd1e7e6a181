//! The real kubectl against every simulated cluster of a `fleet-3` sandbox: discovery,
//! client-side and server-side apply, waits, custom resources, label/annotate, secrets,
//! diff and delete. Where kubectl rejects the simulator, the simulator is wrong.

// Test helpers may fail loudly: a broken fixture or sandbox is a failed test.
#![allow(clippy::unwrap_used)]

use crate::support::{TestSandbox, assert_success, stderr, stdout};

const BUNDLE: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: fidelity
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: string, enum: [small, large]}
              count: {type: integer}
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: fidelity
stringData:
  password: hunter2
"#;

fn widget(size: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: fidelity\nspec:\n  size: {size}\n  count: 2\n"
    )
}

#[test]
fn kubectl_works_against_every_cluster() {
    let sb = TestSandbox::start("fleet-3");
    if sb.kubectl(&["version", "--client"]).is_none() {
        return;
    }
    let dir = sb.dir.path().to_path_buf();
    let bundle = dir.join("bundle.yaml");
    std::fs::write(&bundle, BUNDLE).unwrap();
    let bundle = bundle.display().to_string();
    // A private discovery/HTTP cache: kubectl caches per host:port, and loopback ports are
    // reused by other sandboxes.
    let cache = dir.join("kube-cache").display().to_string();
    for n in 1..=3 {
        let ctx = format!("gke_asm-fleet_us-central1-c_cluster-{n}");
        let k = |args: &[&str]| {
            let mut all = vec!["--context", ctx.as_str(), "--cache-dir", cache.as_str()];
            all.extend_from_slice(args);
            sb.kubectl(&all).unwrap()
        };
        let out = k(&["get", "ns"]);
        assert_success(&out, "kubectl get ns");
        assert!(stdout(&out).contains("kube-system"), "{}", stdout(&out));

        let out = k(&["apply", "-f", &bundle]);
        assert_success(&out, "kubectl apply -f bundle");
        let out = k(&[
            "wait",
            "--for",
            "condition=established",
            "--timeout=20s",
            "crd/widgets.example.com",
        ]);
        assert_success(&out, "kubectl wait established");
        let out = k(&["apply", "-f", &bundle]);
        assert_success(&out, "kubectl apply -f bundle (again)");
        assert!(
            !stderr(&out).contains("arning"),
            "kubectl warned: {}",
            stderr(&out)
        );
        assert!(stdout(&out).contains("unchanged"), "{}", stdout(&out));
        let out = k(&["apply", "--server-side", "-f", &bundle]);
        assert_success(&out, "kubectl apply --server-side -f bundle");

        let w = dir.join(format!("widget-{n}.yaml"));
        std::fs::write(&w, widget("small")).unwrap();
        let w = w.display().to_string();
        assert_success(&k(&["apply", "-f", &w]), "apply widget");
        let w2 = dir.join(format!("widget-{n}-large.yaml"));
        std::fs::write(&w2, widget("large")).unwrap();
        let out = k(&["apply", "-f", &w2.display().to_string()]);
        assert_success(&out, "re-apply widget");
        assert!(
            !stderr(&out).contains("arning"),
            "kubectl warned: {}",
            stderr(&out)
        );
        assert!(stdout(&out).contains("configured"), "{}", stdout(&out));
        let out = k(&["get", "widget", "w1", "-n", "fidelity", "-o", "json"]);
        assert_success(&out, "get widget -o json");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["spec"]["size"], "large");
        let out = k(&["get", "widgets", "-n", "fidelity"]);
        assert_success(&out, "get widgets (table)");
        assert!(stdout(&out).contains("w1"));

        assert_success(
            &k(&[
                "label",
                "--overwrite",
                "ns",
                "fidelity",
                "istio.io/rev=asm-managed",
            ]),
            "label",
        );
        assert_success(
            &k(&[
                "annotate",
                "--overwrite",
                "ns",
                "fidelity",
                "mesh.cloud.google.com/proxy={\"managed\":\"true\"}",
            ]),
            "annotate",
        );
        let out = k(&[
            "get",
            "ns",
            "fidelity",
            "-o",
            "jsonpath={.metadata.labels.istio\\.io/rev}",
        ]);
        assert_eq!(stdout(&out), "asm-managed");

        let out = k(&[
            "get",
            "secret",
            "creds",
            "-n",
            "fidelity",
            "-o",
            "jsonpath={.data.password}",
        ]);
        assert_success(&out, "get secret");
        assert_eq!(stdout(&out), "aHVudGVyMg==");

        let out = k(&["diff", "-f", &w2.display().to_string()]);
        assert!(
            out.status.code() == Some(0),
            "diff with no change exits 0: {}\n{}",
            stdout(&out),
            stderr(&out)
        );

        assert_success(
            &k(&["delete", "-f", &w2.display().to_string()]),
            "delete widget",
        );
        assert_success(
            &k(&["delete", "-f", &bundle, "--timeout=30s"]),
            "delete bundle",
        );
        let out = k(&["get", "ns", "fidelity"]);
        assert!(!out.status.success(), "namespace gone");
    }
    let requests = sb.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "PATCH" && r.path.contains("fieldManager=kubectl")),
        "server-side apply was sent"
    );
    assert!(
        requests.iter().any(|r| r.path.contains("watch=true")),
        "kubectl wait watched"
    );
}
