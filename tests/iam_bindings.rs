//! IAM bindings `asm install` plans besides the caller's permissions: the fleet host
//! project's service agents on a cluster project of another project (scenario
//! `cross-project`), and the CA pool roles for `--ca gcp_cas`. Read back with the real
//! gcloud.

#![allow(clippy::unwrap_used)]

use asm_sim::SimConfig;
use serde_json::Value;

use crate::install::{asm, changes, fast, plan_json, strs, with};
use crate::support::{TestSandbox, assert_success, stderr, stdout};

const HUB_ROLE: &str = "roles/gkehub.serviceAgent";
const MESH_ROLE: &str = "roles/anthosservicemesh.serviceAgent";

/// The sandbox's `ASM_SANDBOX_FLEET_PROJECT`.
fn fleet_project(sb: &TestSandbox) -> String {
    sb.sandbox()
        .exports()
        .into_iter()
        .find(|(k, _)| k == "ASM_SANDBOX_FLEET_PROJECT")
        .map(|(_, v)| v)
        .expect("cross-project exports ASM_SANDBOX_FLEET_PROJECT")
}

/// `-p CLUSTER_PROJECT -l L -n cluster-1 --fleet-id FLEET`.
fn cross_target(sb: &TestSandbox) -> Vec<String> {
    let s = sb.sandbox();
    strs(&[
        "-p",
        &s.scenario.project_id,
        "-l",
        s.scenario.location(),
        "-n",
        "cluster-1",
        "--fleet-id",
        &fleet_project(sb),
    ])
}

/// `serviceAccount:service-NUMBER@gcp-sa-KIND.iam.gserviceaccount.com` of the fleet project.
fn agent(sb: &TestSandbox, kind: &str) -> String {
    let number = &sb
        .sandbox()
        .scenario
        .fleet_project
        .as_ref()
        .unwrap()
        .project_number;
    format!("serviceAccount:service-{number}@gcp-sa-{kind}.iam.gserviceaccount.com")
}

/// `(role, member)` of every unconditional binding of a policy as gcloud prints it.
fn bindings(policy: &Value) -> Vec<(String, String)> {
    policy["bindings"]
        .as_array()
        .map(|bs| {
            bs.iter()
                .filter(|b| b.get("condition").is_none())
                .flat_map(|b| {
                    let role = b["role"].as_str().unwrap().to_string();
                    b["members"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(move |m| (role.clone(), m.as_str().unwrap().to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `gcloud projects get-iam-policy PROJECT --format=json`.
fn project_policy(sb: &TestSandbox, project: &str) -> Value {
    let o = sb
        .gcloud(&["projects", "get-iam-policy", project, "--format=json"])
        .unwrap();
    assert_success(&o, "gcloud projects get-iam-policy");
    serde_json::from_str(&stdout(&o)).unwrap()
}

/// The binding actions of a JSON plan: `(id, reason)`.
fn binding_actions(plan: &Value) -> Vec<(String, String)> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["id"].as_str().unwrap().starts_with("iam/"))
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn cross_project_dry_run_plans_one_action_per_agent_binding_naming_role_and_member() {
    let sb = TestSandbox::with(fast("cross-project"));
    let t = cross_target(&sb);
    let plan = plan_json(&sb, &t, &[]);
    let actions = binding_actions(&plan);
    assert_eq!(actions.len(), 2, "{actions:?}");
    for ((id, reason), (role, kind)) in actions
        .iter()
        .zip([(HUB_ROLE, "gkehub"), (MESH_ROLE, "servicemesh")])
    {
        assert_eq!(
            id,
            &format!("iam/asm-clusters/{}", role.strip_prefix("roles/").unwrap())
        );
        assert!(reason.contains(role), "{reason}");
        assert!(reason.contains(&agent(&sb, kind)), "{reason}");
    }
    assert!(
        sb.mutating_requests().is_empty(),
        "a dry run changes nothing"
    );
}

#[test]
fn cross_project_install_binds_both_agents_and_a_rerun_plans_nothing() {
    let sb = TestSandbox::with(fast("cross-project"));
    let t = cross_target(&sb);
    let mut args = strs(&["install", "--managed"]);
    args.extend(t.iter().cloned());
    args.extend(strs(&["--enable-all", "--yes"]));
    let o = asm(&sb, &args);
    assert_success(&o, "install on cross-project");

    let policy = project_policy(&sb, "asm-clusters");
    let got = bindings(&policy);
    for (role, kind) in [(HUB_ROLE, "gkehub"), (MESH_ROLE, "servicemesh")] {
        assert!(
            got.contains(&(role.to_string(), agent(&sb, kind))),
            "{role} for {kind} missing from {policy}"
        );
    }
    // What was there before is kept.
    assert!(got.contains(&(
        "roles/owner".to_string(),
        "user:sandbox-admin@example.com".to_string()
    )));
    // The membership lives in the fleet host project.
    let o = sb
        .gcloud(&[
            "container",
            "fleet",
            "memberships",
            "list",
            "--project",
            &fleet_project(&sb),
            "--format=value(name)",
        ])
        .unwrap();
    assert_success(&o, "memberships list");
    assert!(stdout(&o).contains("cluster-1"), "{}", stdout(&o));

    let plan = plan_json(&sb, &t, &[]);
    assert_eq!(changes(&plan), 0, "{plan}");
    assert!(binding_actions(&plan).is_empty());
}

#[test]
fn validate_without_iam_roles_fails_naming_each_missing_binding() {
    let sb = TestSandbox::with(fast("cross-project"));
    let mut args = strs(&["validate"]);
    args.extend(cross_target(&sb));
    // Everything else allowed, IAM bindings not (no --managed, no --enable-all).
    args.extend(strs(&[
        "--enable-gcp-apis",
        "--enable-gcp-components",
        "--enable-cluster-labels",
        "--enable-registration",
        "--enable-namespace-creation",
        "-o",
        "json",
    ]));
    let o = asm(&sb, &args);
    assert_eq!(o.status.code(), Some(3), "{}\n{}", stdout(&o), stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let failed: Vec<String> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["code"] == "ASM-C206" && c["status"] == "fail")
        .map(|c| c["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    for (msg, (role, kind)) in failed
        .iter()
        .zip([(HUB_ROLE, "gkehub"), (MESH_ROLE, "servicemesh")])
    {
        assert!(msg.contains(role), "{msg}");
        assert!(msg.contains(&agent(&sb, kind)), "{msg}");
        assert!(msg.contains("project asm-clusters"), "{msg}");
    }
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn bindings_survive_concurrent_policy_writes_by_rereading() {
    // Two setIamPolicy calls meet another writer's change first (409 ABORTED); the two
    // binding actions also race each other on the same policy.
    let sb = TestSandbox::with(fast("cross-project").set("iam.concurrent_writes", "2"));
    let t = cross_target(&sb);
    let mut args = strs(&["install", "--managed"]);
    args.extend(t);
    args.extend(strs(&["--enable-all", "--yes"]));
    let o = asm(&sb, &args);
    assert_success(&o, "install with concurrent policy writes");
    let sets: Vec<u16> = sb
        .requests()
        .iter()
        .filter(|r| {
            r.path
                .starts_with("/crm/v1/projects/asm-clusters:setIamPolicy")
        })
        .map(|r| r.status)
        .collect();
    assert!(
        sets.iter().filter(|s| **s == 409).count() >= 2,
        "the stale etags were answered 409: {sets:?}"
    );
    assert_eq!(
        sets.iter().filter(|s| **s == 200).count(),
        2,
        "one successful write per binding: {sets:?}"
    );
    let got = bindings(&project_policy(&sb, "asm-clusters"));
    for (role, kind) in [(HUB_ROLE, "gkehub"), (MESH_ROLE, "servicemesh")] {
        assert!(got.contains(&(role.to_string(), agent(&sb, kind))));
    }
    // Nothing the other writer added was lost.
    let others = got
        .iter()
        .filter(|(r, m)| r == "roles/viewer" && m.starts_with("user:concurrent-writer-"))
        .count();
    assert_eq!(others, 2, "{got:?}");
}

#[test]
fn gcp_cas_install_grants_the_pool_roles_and_rerun_plans_nothing() {
    let pool = "projects/asm-fresh/locations/us-central1/caPools/mesh";
    let sb = TestSandbox::with(fast("fresh").set("ca_pool", pool));
    let t = crate::install::target(&sb, "cluster-1");
    let plan = plan_json(&sb, &t, &["--ca", "gcp_cas", "--ca-pool", pool]);
    let ids: Vec<String> = binding_actions(&plan).into_iter().map(|(i, _)| i).collect();
    assert_eq!(
        ids,
        [
            "iam/caPools/mesh/privateca.workloadCertificateRequester",
            "iam/caPools/mesh/privateca.auditor"
        ]
    );
    let o = asm(
        &sb,
        &with(
            &{
                let mut a = strs(&["install", "--managed"]);
                a.extend(t.iter().cloned());
                a
            },
            &[
                "--enable-all",
                "--ca",
                "gcp_cas",
                "--ca-pool",
                pool,
                "--yes",
            ],
        ),
    );
    assert_success(&o, "install with gcp_cas");
    let o = sb
        .gcloud(&[
            "privateca",
            "pools",
            "get-iam-policy",
            "mesh",
            "--project",
            "asm-fresh",
            "--location",
            "us-central1",
            "--format=json",
        ])
        .unwrap();
    assert_success(&o, "gcloud privateca pools get-iam-policy");
    let got = bindings(&serde_json::from_str(&stdout(&o)).unwrap());
    let member = "group:asm-fresh.svc.id.goog:/allAuthenticatedUsers/".to_string();
    for role in [
        "roles/privateca.workloadCertificateRequester",
        "roles/privateca.auditor",
    ] {
        assert!(got.contains(&(role.to_string(), member.clone())), "{got:?}");
    }
    let plan = plan_json(&sb, &t, &["--ca", "gcp_cas", "--ca-pool", pool]);
    assert_eq!(changes(&plan), 0, "{plan}");
}

#[test]
fn gcloud_add_iam_policy_binding_round_trips_with_a_new_etag() {
    let sb = TestSandbox::with(SimConfig::new("cross-project"));
    let before = project_policy(&sb, "asm-clusters");
    let member = "user:someone@example.com";
    let o = sb
        .gcloud(&[
            "projects",
            "add-iam-policy-binding",
            "asm-clusters",
            "--member",
            member,
            "--role",
            "roles/viewer",
            "--condition=None",
            "--format=json",
        ])
        .unwrap();
    assert_success(&o, "gcloud projects add-iam-policy-binding");
    let after = project_policy(&sb, "asm-clusters");
    assert_ne!(before["etag"], after["etag"]);
    assert!(bindings(&after).contains(&("roles/viewer".to_string(), member.to_string())));
    // The fleet host's policy is another one: unchanged.
    let fleet = project_policy(&sb, &fleet_project(&sb));
    assert!(!bindings(&fleet).iter().any(|(_, m)| m == member));
}

#[test]
fn cross_project_exports_the_fleet_project_just_before_the_clusters() {
    let sb = TestSandbox::start("cross-project");
    let exports = sb.sandbox().exports();
    let names: Vec<&str> = exports.iter().map(|(k, _)| k.as_str()).collect();
    let n = names.len();
    assert_eq!(
        &names[n - 2..],
        ["ASM_SANDBOX_FLEET_PROJECT", "ASM_SANDBOX_CLUSTERS"],
        "{names:?}"
    );
    assert_eq!(exports[n - 2].1, "asm-fleet-host");
    assert_eq!(
        exports
            .iter()
            .find(|(k, _)| k == "ASM_SANDBOX_PROJECT")
            .map(|(_, v)| v.as_str()),
        Some("asm-clusters")
    );
    // Single-project scenarios have no separate fleet host.
    let fresh = TestSandbox::start("fresh");
    assert!(
        !fresh
            .sandbox()
            .exports()
            .iter()
            .any(|(k, _)| k == "ASM_SANDBOX_FLEET_PROJECT")
    );
}
