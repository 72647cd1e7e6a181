//! The real `gcloud` (Cloud SDK 528) against the simulated Google APIs: every command an
//! installer or a user runs must succeed, and its output must be what a real project
//! would give. Where gcloud rejects the simulator, the simulator is wrong.

#![allow(clippy::unwrap_used)]

use asm_sim::SimConfig;
use base64::Engine as _;
use serde_json::Value;

use crate::support::{TestSandbox, assert_success, stderr, stdout};

/// A sandbox whose Google operations finish at once (gcloud still polls hub ops once).
fn fast(scenario: &str) -> SimConfig {
    SimConfig::new(scenario)
        .set("timing.gke_op_ms", "0")
        .set("timing.hub_op_ms", "0")
        .set("timing.crd_install_ms", "0")
}

/// Runs gcloud with `--format=json` and parses stdout; `None` when gcloud is absent.
fn gcloud_json(sb: &TestSandbox, args: &[&str]) -> Option<Value> {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--format=json");
    let out = sb.gcloud(&all)?;
    assert_success(&out, &args.join(" "));
    Some(
        serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}):\n{}", args.join(" "), stdout(&out))),
    )
}

/// Runs gcloud and asserts success; returns stdout + stderr.
fn gcloud_ok(sb: &TestSandbox, args: &[&str]) -> Option<String> {
    let out = sb.gcloud(args)?;
    assert_success(&out, &args.join(" "));
    Some(format!("{}{}", stdout(&out), stderr(&out)))
}

#[test]
fn clusters_describe_by_zone_and_location() {
    let sb = TestSandbox::with(fast("fresh"));
    let Some(c) = gcloud_json(
        &sb,
        &[
            "container",
            "clusters",
            "describe",
            "cluster-1",
            "--zone",
            "us-central1-c",
        ],
    ) else {
        return;
    };
    let cluster = &sb.sandbox().clusters[0];
    assert_eq!(c["name"], "cluster-1");
    assert_eq!(c["location"], "us-central1-c");
    assert_eq!(c["status"], "RUNNING");
    assert_eq!(c["endpoint"], cluster.endpoint.as_str());
    let ca = base64::engine::general_purpose::STANDARD.encode(sb.sandbox().ca_pem());
    assert_eq!(c["masterAuth"]["clusterCaCertificate"], ca.as_str());
    assert_eq!(c["currentMasterVersion"], "1.32.6-gke.1025000");
    assert_eq!(c["releaseChannel"]["channel"], "REGULAR");
    assert_eq!(
        c["workloadIdentityConfig"]["workloadPool"],
        "asm-fresh.svc.id.goog"
    );
    assert_eq!(
        c["selfLink"],
        "https://container.googleapis.com/v1/projects/asm-fresh/zones/us-central1-c/clusters/cluster-1"
    );
    assert!(c["labelFingerprint"].as_str().is_some_and(|f| f.len() == 8));

    let c2 = gcloud_json(
        &sb,
        &[
            "container",
            "clusters",
            "describe",
            "cluster-1",
            "--location",
            "us-central1-c",
        ],
    )
    .unwrap();
    assert_eq!(c2["id"], c["id"]);

    // A missing cluster fails the way gcloud reports a 404.
    let out = sb
        .gcloud(&[
            "container",
            "clusters",
            "describe",
            "nope",
            "--zone",
            "us-central1-c",
        ])
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("Not found"), "{}", stderr(&out));
}

#[test]
fn clusters_list_and_update_labels_and_workload_pool() {
    let sb = TestSandbox::with(fast("fresh").set("cluster.workload_identity", "false"));
    let Some(list) = gcloud_json(&sb, &["container", "clusters", "list"]) else {
        return;
    };
    let list = list.as_array().expect("a list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "cluster-1");
    assert!(list[0].get("workloadIdentityConfig").is_none());

    gcloud_ok(
        &sb,
        &[
            "container",
            "clusters",
            "update",
            "cluster-1",
            "--zone",
            "us-central1-c",
            "--update-labels",
            "mesh_id=proj-418276145901",
        ],
    )
    .unwrap();
    gcloud_ok(
        &sb,
        &[
            "container",
            "clusters",
            "update",
            "cluster-1",
            "--zone",
            "us-central1-c",
            "--workload-pool",
            "asm-fresh.svc.id.goog",
        ],
    )
    .unwrap();
    let c = gcloud_json(
        &sb,
        &[
            "container",
            "clusters",
            "describe",
            "cluster-1",
            "--zone",
            "us-central1-c",
        ],
    )
    .unwrap();
    assert_eq!(c["resourceLabels"]["mesh_id"], "proj-418276145901");
    assert_eq!(
        c["workloadIdentityConfig"]["workloadPool"],
        "asm-fresh.svc.id.goog"
    );
}

#[test]
fn services_list_and_enable() {
    let sb = TestSandbox::with(fast("fresh"));
    let Some(list) = gcloud_json(&sb, &["services", "list", "--enabled"]) else {
        return;
    };
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["config"]["name"].as_str())
        .collect();
    assert!(names.contains(&"container.googleapis.com"), "{names:?}");
    assert!(!names.contains(&"gkehub.googleapis.com"), "{names:?}");
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "ENABLED")
    );

    let out = gcloud_ok(&sb, &["services", "enable", "gkehub.googleapis.com"]).unwrap();
    assert!(!out.contains("ERROR"), "{out}");
    gcloud_ok(
        &sb,
        &[
            "services",
            "enable",
            "mesh.googleapis.com",
            "meshconfig.googleapis.com",
        ],
    )
    .unwrap();
    let list = gcloud_json(&sb, &["services", "list", "--enabled"]).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["config"]["name"].as_str())
        .collect();
    for s in [
        "gkehub.googleapis.com",
        "mesh.googleapis.com",
        "meshconfig.googleapis.com",
    ] {
        assert!(names.contains(&s), "{s} not in {names:?}");
    }
    let all = gcloud_json(&sb, &["services", "list", "--available"]).unwrap();
    assert!(all.as_array().unwrap().len() > names.len());
}

#[test]
fn services_enable_mesh_also_enables_gkehub() {
    let sb = TestSandbox::with(fast("fresh"));
    let Some(out) = gcloud_ok(&sb, &["services", "enable", "mesh.googleapis.com"]) else {
        return;
    };
    assert!(!out.contains("ERROR"), "{out}");
    let list = gcloud_json(&sb, &["services", "list", "--enabled"]).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["config"]["name"].as_str())
        .collect();
    for s in [
        "mesh.googleapis.com",
        "gkehub.googleapis.com",
        "meshconfig.googleapis.com",
    ] {
        assert!(names.contains(&s), "{s} not in {names:?}");
    }
}

#[test]
fn services_enable_polls_a_running_operation() {
    let sb = TestSandbox::with(fast("fresh").set("timing.serviceusage_op_ms", "300"));
    let Some(_) = gcloud_ok(
        &sb,
        &[
            "services",
            "enable",
            "gkehub.googleapis.com",
            "meshconfig.googleapis.com",
        ],
    ) else {
        return;
    };
    assert!(
        sb.requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.starts_with("/serviceusage/v1/operations/"))
    );
    let s = gcloud_json(
        &sb,
        &[
            "services",
            "list",
            "--enabled",
            "--filter",
            "config.name=gkehub.googleapis.com",
        ],
    )
    .unwrap();
    assert_eq!(s.as_array().unwrap().len(), 1);
}

#[test]
fn projects_describe_and_iam_policy() {
    let sb = TestSandbox::with(fast("fresh"));
    let Some(p) = gcloud_json(&sb, &["projects", "describe", "asm-fresh"]) else {
        return;
    };
    assert_eq!(p["projectNumber"], "418276145901");
    assert_eq!(p["projectId"], "asm-fresh");
    assert_eq!(p["lifecycleState"], "ACTIVE");

    let policy = gcloud_json(&sb, &["projects", "get-iam-policy", "asm-fresh"]).unwrap();
    assert!(policy["etag"].as_str().is_some());
    let owners = policy["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["role"] == "roles/owner")
        .unwrap();
    assert_eq!(owners["members"][0], "user:sandbox-admin@example.com");

    let member = "serviceAccount:service-418276145901@gcp-sa-servicemesh.iam.gserviceaccount.com";
    gcloud_ok(
        &sb,
        &[
            "projects",
            "add-iam-policy-binding",
            "asm-fresh",
            "--member",
            member,
            "--role",
            "roles/anthosservicemesh.serviceAgent",
            "--condition=None",
        ],
    )
    .unwrap();
    let after = gcloud_json(&sb, &["projects", "get-iam-policy", "asm-fresh"]).unwrap();
    assert_ne!(after["etag"], policy["etag"]);
    assert!(after.to_string().contains(member));
}

#[test]
fn disabled_api_fails_like_google() {
    let sb = TestSandbox::with(fast("fresh"));
    let Some(out) = sb.gcloud(&["container", "fleet", "memberships", "list"]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("gkehub.googleapis.com") || err.contains("GKE Hub API"),
        "{err}"
    );

    let sb = TestSandbox::with(fast("fresh").set("service.container", "disabled"));
    let out = sb.gcloud(&["container", "clusters", "list"]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Kubernetes Engine API"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn fleet_register_and_mesh_lifecycle() {
    let sb = TestSandbox::with(fast("fresh").set("service.gkehub", "enabled"));
    let Some(list) = gcloud_json(&sb, &["container", "fleet", "memberships", "list"]) else {
        return;
    };
    assert_eq!(list, Value::Array(vec![]));

    gcloud_ok(
        &sb,
        &[
            "container",
            "fleet",
            "memberships",
            "register",
            "cluster-1",
            "--gke-cluster",
            "us-central1-c/cluster-1",
            "--enable-workload-identity",
        ],
    )
    .unwrap();
    let list = gcloud_json(&sb, &["container", "fleet", "memberships", "list"]).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0]["name"],
        "projects/asm-fresh/locations/us-central1/memberships/cluster-1"
    );
    assert_eq!(list[0]["state"]["code"], "READY");
    assert_eq!(
        list[0]["authority"]["workloadIdentityPool"],
        "asm-fresh.svc.id.goog"
    );
    let m = gcloud_json(
        &sb,
        &["container", "fleet", "memberships", "describe", "cluster-1"],
    )
    .unwrap();
    assert_eq!(m["uniqueId"], list[0]["uniqueId"]);
    // The cluster now holds the Membership object installers read.
    if let Some(out) = sb.kubectl(&["get", "memberships.hub.gke.io", "membership", "-o", "yaml"]) {
        assert_success(&out, "kubectl get memberships.hub.gke.io membership");
        let obj: Value = serde_yaml::from_str(&stdout(&out)).unwrap();
        assert_eq!(
            obj["spec"]["owner"]["id"],
            "//gkehub.googleapis.com/projects/asm-fresh/locations/us-central1/memberships/cluster-1"
        );
        assert_eq!(
            obj["spec"]["workload_identity_pool"],
            "asm-fresh.svc.id.goog"
        );
    }

    // Registering again is "already registered", not an error.
    gcloud_ok(
        &sb,
        &[
            "container",
            "fleet",
            "memberships",
            "register",
            "cluster-1",
            "--gke-cluster",
            "us-central1-c/cluster-1",
            "--enable-workload-identity",
        ],
    )
    .unwrap();

    // meshconfig is disabled in `fresh`: `mesh enable` enables it itself.
    gcloud_ok(&sb, &["container", "fleet", "mesh", "enable"]).unwrap();
    let out = gcloud_ok(&sb, &["container", "fleet", "mesh", "enable"]).unwrap();
    assert!(out.contains("already enabled"), "{out}");
    let f = gcloud_json(&sb, &["container", "fleet", "mesh", "describe"]).unwrap();
    assert_eq!(
        f["name"],
        "projects/asm-fresh/locations/global/features/servicemesh"
    );
    assert_eq!(f["resourceState"]["state"], "ACTIVE");

    gcloud_ok(
        &sb,
        &[
            "container",
            "fleet",
            "mesh",
            "update",
            "--management",
            "automatic",
            "--memberships",
            "cluster-1",
            "--location",
            "us-central1",
        ],
    )
    .unwrap();
    let f = gcloud_json(&sb, &["container", "fleet", "mesh", "describe"]).unwrap();
    let key = "projects/418276145901/locations/us-central1/memberships/cluster-1";
    assert_eq!(
        f["membershipSpecs"][key]["mesh"]["management"], "MANAGEMENT_AUTOMATIC",
        "{f:#}"
    );
    let cpm = &f["membershipStates"][key]["servicemesh"]["controlPlaneManagement"]["state"];
    assert!(cpm == "PROVISIONING" || cpm == "ACTIVE", "{f:#}");
}

#[test]
fn missing_permission_is_refused() {
    let sb = TestSandbox::with(fast("missing-permission").set("service.gkehub", "enabled"));
    let Some(out) = sb.gcloud(&[
        "container",
        "fleet",
        "memberships",
        "register",
        "cluster-1",
        "--gke-cluster",
        "us-central1-c/cluster-1",
    ]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("gkehub.memberships.create"), "{err}");
    assert!(
        sb.requests()
            .iter()
            .all(|r| r.status != 200 || r.method != "POST")
    );
}

#[test]
fn installed_mesh_is_ready() {
    let sb = TestSandbox::with(fast("installed"));
    let Some(f) = gcloud_json(&sb, &["container", "fleet", "mesh", "describe"]) else {
        return;
    };
    let key = "projects/518276145902/locations/us-central1/memberships/cluster-1";
    let state = &f["membershipStates"][key];
    assert_eq!(
        state["servicemesh"]["controlPlaneManagement"]["state"], "ACTIVE",
        "{f:#}"
    );
    assert_eq!(
        state["servicemesh"]["controlPlaneManagement"]["details"][0]["code"],
        "REVISION_READY"
    );
    assert_eq!(state["state"]["code"], "OK");
    let c = gcloud_json(
        &sb,
        &[
            "container",
            "clusters",
            "describe",
            "cluster-1",
            "--zone",
            "us-central1-c",
        ],
    )
    .unwrap();
    assert_eq!(c["resourceLabels"]["mesh_id"], "proj-518276145902");
}
