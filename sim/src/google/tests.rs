//! Unit tests of the Google side: the handler called directly, no sockets.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::http::Handler;

const TOKEN: &str = "T";

fn api_with(
    scenario: &str,
    sets: &[(&str, &str)],
    members: Vec<ClusterEndpoint>,
) -> Arc<GoogleApi> {
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    GoogleApi::new(
        Scenario::build(scenario, &sets).unwrap(),
        TOKEN.into(),
        members,
    )
}

fn api(scenario: &str, sets: &[(&str, &str)]) -> Arc<GoogleApi> {
    api_with(scenario, sets, Vec::new())
}

async fn call(api: &Arc<GoogleApi>, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    let req =
        Request::new(method, path, body).with_header("Authorization", &format!("Bearer {TOKEN}"));
    let r = api.clone().handle(req).await;
    (r.status, r.body_json())
}

async fn get(api: &Arc<GoogleApi>, path: &str) -> (u16, Value) {
    call(api, "GET", path, Value::Null).await
}

const HUB_ON: [(&str, &str); 4] = [
    ("service.gkehub", "enabled"),
    ("service.meshconfig", "enabled"),
    ("timing.hub_op_ms", "0"),
    ("timing.gke_op_ms", "0"),
];

#[tokio::test]
async fn unauthenticated_without_or_with_a_wrong_token() {
    let api = api("fresh", &[]);
    for req in [
        Request::new("GET", "/crm/v1/projects/asm-fresh", ""),
        Request::new("GET", "/crm/v1/projects/asm-fresh", "")
            .with_header("Authorization", "Bearer nope"),
    ] {
        let r = api.clone().handle(req).await;
        assert_eq!(r.status, 401);
        let b = r.body_json();
        assert_eq!(b["error"]["status"], "UNAUTHENTICATED");
        assert_eq!(b["error"]["code"], 401);
    }
}

#[tokio::test]
async fn service_disabled_has_googles_details() {
    let api = api("fresh", &[]);
    let (status, b) = get(
        &api,
        "/gkehub/v1/projects/asm-fresh/locations/-/memberships?alt=json",
    )
    .await;
    assert_eq!(status, 403);
    let e = &b["error"];
    assert_eq!(e["status"], "PERMISSION_DENIED");
    assert!(e["message"].as_str().unwrap().starts_with("GKE Hub API has not been used in project 418276145901 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/gkehub.googleapis.com/overview?project=418276145901 then retry."));
    let info = &e["details"][0];
    assert_eq!(info["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
    assert_eq!(info["reason"], "SERVICE_DISABLED");
    assert_eq!(info["domain"], "googleapis.com");
    assert_eq!(info["metadata"]["service"], "gkehub.googleapis.com");
    assert_eq!(info["metadata"]["consumer"], "projects/418276145901");
    assert_eq!(info["metadata"]["containerInfo"], "418276145901");
    assert!(
        info["metadata"]["activationUrl"]
            .as_str()
            .unwrap()
            .contains("gkehub.googleapis.com")
    );
    assert!(
        e["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["@type"] == "type.googleapis.com/google.rpc.Help")
    );
}

#[tokio::test]
async fn permission_denied_names_the_permission() {
    let api = api("missing-permission", &[("service.gkehub", "enabled")]);
    let body = json!({"endpoint": {"gkeCluster": {"resourceLink": "//container.googleapis.com/projects/asm-noperm/locations/us-central1-c/clusters/cluster-1"}}});
    let (status, b) = call(
        &api,
        "POST",
        "/gkehub/v1/projects/asm-noperm/locations/us-central1/memberships?membershipId=cluster-1",
        body,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(b["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(b["error"]["details"][0]["reason"], "IAM_PERMISSION_DENIED");
    assert_eq!(
        b["error"]["details"][0]["metadata"]["permission"],
        "gkehub.memberships.create"
    );
    // testIamPermissions leaves it out.
    let (_, t) = call(
        &api,
        "POST",
        "/crm/v1/projects/asm-noperm:testIamPermissions",
        json!({"permissions": ["gkehub.memberships.create", "gkehub.memberships.get"]}),
    )
    .await;
    assert_eq!(t, json!({"permissions": ["gkehub.memberships.get"]}));
}

#[tokio::test]
async fn not_found_and_already_exists() {
    let api = api("fresh", &HUB_ON);
    let (s, b) = get(
        &api,
        "/container/v1/projects/asm-fresh/locations/us-central1-c/clusters/nope",
    )
    .await;
    assert_eq!((s, b["error"]["status"].as_str()), (404, Some("NOT_FOUND")));
    let (s, _) = get(
        &api,
        "/container/v1/projects/418276145901/locations/-/clusters/cluster-1",
    )
    .await;
    assert_eq!(s, 200, "project number and the `-` location work");

    let body = json!({"endpoint": {"gkeCluster": {"resourceLink": "//127.0.0.1:1234/container/projects/asm-fresh/locations/us-central1-c/clusters/cluster-1"}}});
    let path =
        "/gkehub/v1/projects/asm-fresh/locations/us-central1/memberships?membershipId=cluster-1";
    let (s, op) = call(&api, "POST", path, body.clone()).await;
    assert_eq!(s, 200, "{op}");
    assert!(
        op["name"]
            .as_str()
            .unwrap()
            .starts_with("projects/asm-fresh/locations/us-central1/operations/operation-")
    );
    assert_eq!(op["done"], true);
    assert_eq!(
        op["response"]["name"],
        "projects/asm-fresh/locations/us-central1/memberships/cluster-1"
    );
    let (s, b) = call(&api, "POST", path, body).await;
    assert_eq!(
        (s, b["error"]["status"].as_str()),
        (409, Some("ALREADY_EXISTS"))
    );
    assert_eq!(
        b["error"]["message"],
        "Resource 'projects/asm-fresh/locations/us-central1/memberships/cluster-1' already exists"
    );

    let bad = json!({"endpoint": {"gkeCluster": {"resourceLink": "//container.googleapis.com/projects/asm-fresh/locations/us-central1-c/clusters/other"}}});
    let (s, _) = call(
        &api,
        "POST",
        "/gkehub/v1/projects/asm-fresh/locations/us-central1/memberships?membershipId=other",
        bad,
    )
    .await;
    assert_eq!(s, 404);
    let (s, b) = call(
        &api,
        "POST",
        "/gkehub/v1/projects/asm-fresh/locations/us-central1/memberships?membershipId=Bad_Id",
        json!({}),
    )
    .await;
    assert_eq!(
        (s, b["error"]["status"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );

    let (s, _) = call(
        &api,
        "POST",
        "/gkehub/v1/projects/asm-fresh/locations/global/features?featureId=servicemesh",
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = call(
        &api,
        "POST",
        "/gkehub/v1/projects/asm-fresh/locations/global/features?featureId=servicemesh",
        json!({}),
    )
    .await;
    assert_eq!(
        (s, b["error"]["status"].as_str()),
        (409, Some("ALREADY_EXISTS"))
    );
}

#[tokio::test]
async fn feature_create_waits_for_meshconfig() {
    let api = api("fresh", &[("service.gkehub", "enabled")]);
    let (s, b) = call(
        &api,
        "POST",
        "/gkehub/v1/projects/asm-fresh/locations/global/features?featureId=servicemesh",
        json!({}),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["status"], "FAILED_PRECONDITION");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("meshconfig.googleapis.com") && msg.contains("is not enabled"),
        "{msg}"
    );
    let (s, _) = get(&api, "/gkehub/v1/projects/asm-fresh/locations/global/features/servicemesh?returnPartialSuccess=True").await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn gke_operation_finishes_after_its_duration_exactly_once() {
    let api = api("fresh", &[("timing.gke_op_ms", "150")]);
    let cluster = "/container/v1/projects/asm-fresh/locations/us-central1-c/clusters/cluster-1";
    let (_, c) = get(&api, cluster).await;
    let fp = c["labelFingerprint"].as_str().unwrap().to_string();
    let (s, op) = call(
        &api,
        "POST",
        &format!("{cluster}:setResourceLabels"),
        json!({"resourceLabels": {"mesh_id": "proj-418276145901"}, "labelFingerprint": fp}),
    )
    .await;
    assert_eq!(s, 200, "{op}");
    assert_eq!(op["status"], "RUNNING");
    assert_eq!(op["operationType"], "SET_LABELS");
    let name = op["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("operation-") && !name.contains('/'));

    // A second mutation while the first runs is refused, as GKE does.
    let (s, b) = call(&api, "PUT", cluster, json!({"update": {"desiredWorkloadIdentityConfig": {"workloadPool": "asm-fresh.svc.id.goog"}}})).await;
    assert_eq!(
        (s, b["error"]["status"].as_str()),
        (400, Some("FAILED_PRECONDITION"))
    );
    let (_, c) = get(&api, cluster).await;
    assert_eq!(
        c["resourceLabels"],
        json!({}),
        "labels change only when the operation is done"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let op_path =
        format!("/container/v1/projects/asm-fresh/locations/us-central1-c/operations/{name}");
    for _ in 0..3 {
        let (_, op) = get(&api, &op_path).await;
        assert_eq!(op["status"], "DONE");
        assert!(op.get("endTime").is_some());
    }
    assert_eq!(
        api.lock().clusters[0].label_writes,
        1,
        "the effect ran exactly once"
    );
    let (_, c) = get(&api, cluster).await;
    assert_eq!(c["resourceLabels"]["mesh_id"], "proj-418276145901");
    assert_ne!(c["labelFingerprint"], fp.as_str());

    // The fingerprint read before the write is now stale.
    let (s, b) = call(
        &api,
        "POST",
        &format!("{cluster}:setResourceLabels"),
        json!({"resourceLabels": {}, "labelFingerprint": fp}),
    )
    .await;
    assert_eq!(
        (s, b["error"]["status"].as_str()),
        (400, Some("FAILED_PRECONDITION"))
    );
    let (s, _) = get(
        &api,
        "/container/v1/projects/asm-fresh/locations/us-central1-a/operations/nope",
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn workload_identity_update() {
    let api = api(
        "fresh",
        &[
            ("timing.gke_op_ms", "0"),
            ("cluster.workload_identity", "false"),
        ],
    );
    let cluster = "/container/v1/projects/asm-fresh/locations/us-central1-c/clusters/cluster-1";
    let (_, c) = get(&api, cluster).await;
    assert!(c.get("workloadIdentityConfig").is_none());
    let (s, op) = call(&api, "PUT", cluster, json!({"update": {"desiredWorkloadIdentityConfig": {"workloadPool": "asm-fresh.svc.id.goog"}}})).await;
    assert_eq!((s, op["status"].as_str()), (200, Some("DONE")));
    let (_, c) = get(&api, cluster).await;
    assert_eq!(
        c["workloadIdentityConfig"]["workloadPool"],
        "asm-fresh.svc.id.goog"
    );
    let (s, _) = call(
        &api,
        "PUT",
        cluster,
        json!({"update": {"desiredWorkloadIdentityConfig": {"workloadPool": "other.svc.id.goog"}}}),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(&api, "PUT", cluster, json!({"update": {}})).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn hub_operation_is_polled_and_applies_once() {
    let api = api(
        "fresh",
        &[("service.gkehub", "enabled"), ("timing.hub_op_ms", "100")],
    );
    let body = json!({"endpoint": {"gkeCluster": {"resourceLink": "//container.googleapis.com/projects/asm-fresh/locations/us-central1-c/clusters/cluster-1"}}});
    let (_, op) = call(&api, "POST", "/gkehub/v1beta/projects/asm-fresh/locations/us-central1/memberships?membershipId=cluster-1", body).await;
    assert_eq!(op["done"], false);
    assert_eq!(
        op["metadata"]["@type"],
        "type.googleapis.com/google.cloud.gkehub.v1beta.OperationMetadata"
    );
    let (_, m) = get(
        &api,
        "/gkehub/v1/projects/asm-fresh/locations/us-central1/memberships/cluster-1",
    )
    .await;
    assert_eq!(m["state"]["code"], "CREATING");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let name = op["name"].as_str().unwrap();
    let (s, op) = get(&api, &format!("/gkehub/v1beta/{name}")).await;
    assert_eq!(s, 200);
    assert_eq!(op["done"], true);
    assert_eq!(
        op["response"]["@type"],
        "type.googleapis.com/google.cloud.gkehub.v1beta.Membership"
    );
    assert_eq!(op["response"]["state"]["code"], "READY");
    let (_, list) = get(
        &api,
        "/gkehub/v1beta/projects/asm-fresh/locations/-/memberships",
    )
    .await;
    assert_eq!(list["resources"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn iam_policy_etag_is_checked() {
    let api = api("fresh", &[]);
    let (_, p) = call(
        &api,
        "POST",
        "/crm/v1/projects/asm-fresh:getIamPolicy",
        json!({"options": {"requestedPolicyVersion": 3}}),
    )
    .await;
    let etag = p["etag"].as_str().unwrap().to_string();
    let mut policy = p.clone();
    policy["bindings"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "roles/viewer", "members": ["user:x@example.com"]}));
    policy["version"] = json!(3);
    let (s, new) = call(
        &api,
        "POST",
        "/crm/v1/projects/asm-fresh:setIamPolicy",
        json!({"policy": policy}),
    )
    .await;
    assert_eq!(s, 200, "{new}");
    assert_ne!(new["etag"], etag.as_str());
    assert_eq!(new["version"], 3);
    let (s, b) = call(
        &api,
        "POST",
        "/crm/v1/projects/asm-fresh:setIamPolicy",
        json!({"policy": policy}),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(b["error"]["status"], "ABORTED");
    assert_eq!(
        b["error"]["message"],
        "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff."
    );
    let (_, p) = get(&api, "/crm/v1/projects/418276145901").await;
    assert_eq!(p["projectNumber"], "418276145901");
    assert_eq!(p["projectId"], "asm-fresh");
    let (s, _) = get(&api, "/crm/v1/projects/someone-else").await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn services_are_paged_and_filtered() {
    let api = api("fresh", &[]);
    let mut token = String::new();
    let mut all = Vec::new();
    loop {
        let (s, page) = get(
            &api,
            &format!("/serviceusage/v1/projects/asm-fresh/services?pageSize=4&pageToken={token}"),
        )
        .await;
        assert_eq!(s, 200);
        all.extend(page["services"].as_array().unwrap().iter().cloned());
        match page["nextPageToken"].as_str() {
            Some(t) => token = t.to_string(),
            None => break,
        }
    }
    assert_eq!(all.len(), state::SERVICE_CATALOGUE.len());
    assert!(all.iter().any(|s| s["state"] == "DISABLED"));
    assert_eq!(all[0]["parent"], "projects/418276145901");
    let (_, enabled) = get(
        &api,
        "/serviceusage/v1/projects/418276145901/services?filter=state%3AENABLED&pageSize=200",
    )
    .await;
    let enabled = enabled["services"].as_array().unwrap();
    assert_eq!(enabled.len(), 5);
    assert!(enabled.iter().all(|s| s["state"] == "ENABLED"));
    let (s, _) = get(
        &api,
        "/serviceusage/v1/projects/asm-fresh/services?pageToken=garbage",
    )
    .await;
    assert_eq!(s, 400);

    let empty = api_with("fresh", &[("services.enabled", "")], Vec::new());
    // With Service Usage itself disabled, listing is refused like any disabled API...
    let (s, _) = get(
        &empty,
        "/serviceusage/v1/projects/asm-fresh/services?filter=state:ENABLED",
    )
    .await;
    assert_eq!(s, 403);
    // ...and with only it enabled, nothing else is: the DISABLED filter shows the rest.
    let only = api_with("fresh", &[("services.enabled", "serviceusage")], Vec::new());
    let (_, b) = get(
        &only,
        "/serviceusage/v1/projects/asm-fresh/services?filter=state:ENABLED",
    )
    .await;
    assert_eq!(b["services"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn service_enable_operations() {
    let api = api("fresh", &[("timing.serviceusage_op_ms", "100")]);
    let (s, op) = call(
        &api,
        "POST",
        "/serviceusage/v1/projects/asm-fresh/services/gkehub.googleapis.com:enable",
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    let name = op["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("operations/"));
    assert!(op.get("done").is_none());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, op) = get(&api, &format!("/serviceusage/v1/{name}")).await;
    assert_eq!(op["done"], true);
    assert_eq!(op["response"]["service"]["state"], "ENABLED");

    let fast = api_with("fresh", &[], Vec::new());
    let (_, op) = call(
        &fast,
        "POST",
        "/serviceusage/v1/projects/asm-fresh/services:batchEnable",
        json!({"serviceIds": ["gkehub.googleapis.com", "meshconfig.googleapis.com"]}),
    )
    .await;
    assert_eq!(op["done"], true);
    assert_eq!(op["response"]["services"].as_array().unwrap().len(), 2);
    let (_, svc) = get(
        &fast,
        "/serviceusage/v1/projects/asm-fresh/services/meshconfig.googleapis.com",
    )
    .await;
    assert_eq!(svc["state"], "ENABLED");
    assert_eq!(svc["config"]["title"], "Mesh Configuration API");
    let ids: Vec<String> = (0..21).map(|i| format!("s{i}.googleapis.com")).collect();
    let (s, _) = call(
        &fast,
        "POST",
        "/serviceusage/v1/projects/asm-fresh/services:batchEnable",
        json!({"serviceIds": ids}),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(
        &fast,
        "POST",
        "/serviceusage/v1/projects/asm-fresh/services/nope.googleapis.com:enable",
        json!({}),
    )
    .await;
    assert_eq!(s, 403);
}

/// A member cluster that records what the controllers apply and reports every
/// ControlPlaneRevision provisioned.
#[derive(Debug, Default)]
struct FakeCluster {
    applied: Mutex<Vec<Value>>,
}

impl MemberCluster for FakeCluster {
    fn apply_object(&self, object: Value) -> anyhow::Result<Value> {
        let mut applied = self.applied.lock().unwrap();
        // A re-apply replaces the object where it was (the order of first applies stays).
        match applied.iter_mut().find(|o| {
            o["kind"] == object["kind"] && o["metadata"]["name"] == object["metadata"]["name"]
        }) {
            Some(existing) => *existing = object.clone(),
            None => applied.push(object.clone()),
        }
        Ok(object)
    }

    fn get_object(
        &self,
        _api_version: &str,
        kind: &str,
        _ns: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let applied = self.applied.lock().unwrap();
        let found = applied
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)?
            .clone();
        if kind == "ControlPlaneRevision" {
            let mut o = found;
            o["status"] =
                json!({"conditions": [{"type": "ProvisioningFinished", "status": "True"}]});
            return Some(o);
        }
        Some(found)
    }

    fn delete_object(&self, _api_version: &str, kind: &str, _ns: Option<&str>, name: &str) {
        self.applied
            .lock()
            .unwrap()
            .retain(|o| !(o["kind"] == kind && o["metadata"]["name"] == name));
    }

    fn settle(&self, _api_version: &str, _kind: &str, _ns: Option<&str>, _name: &str) {}
}

fn fake_endpoint() -> (Arc<FakeCluster>, ClusterEndpoint) {
    let fake = Arc::new(FakeCluster::default());
    let ep = ClusterEndpoint {
        name: "cluster-1".into(),
        endpoint: "127.0.0.1:1".into(),
        ca_pem: "PEM".into(),
        member: fake.clone() as Arc<dyn MemberCluster>,
    };
    (fake, ep)
}

#[tokio::test]
async fn fleet_management_installs_the_managed_control_plane() {
    let (fake, ep) = fake_endpoint();
    let api = api_with(
        "fresh",
        &[
            HUB_ON[0],
            HUB_ON[1],
            HUB_ON[2],
            ("timing.crd_install_ms", "50"),
            ("cluster.channel", "RAPID"),
        ],
        vec![ep],
    );
    let body = json!({"endpoint": {"gkeCluster": {"resourceLink": "//container.googleapis.com/projects/asm-fresh/locations/us-central1-c/clusters/cluster-1"}}});
    call(
        &api,
        "POST",
        "/gkehub/v1/projects/asm-fresh/locations/us-central1/memberships?membershipId=cluster-1",
        body,
    )
    .await;
    call(
        &api,
        "POST",
        "/gkehub/v1/projects/asm-fresh/locations/global/features?featureId=servicemesh",
        json!({}),
    )
    .await;
    let mf = "/gkehub/v2/projects/asm-fresh/locations/us-central1/memberships/cluster-1/features/servicemesh";
    let (s, _) = get(&api, mf).await;
    assert_eq!(s, 404);
    let (s, op) = call(
        &api,
        "PATCH",
        &format!("{mf}?allowMissing=True&updateMask=spec"),
        json!({"spec": {"servicemesh": {"management": "MANAGEMENT_AUTOMATIC"}}}),
    )
    .await;
    assert_eq!(s, 200, "{op}");
    assert_eq!(
        op["response"]["name"],
        "projects/asm-fresh/locations/us-central1/memberships/cluster-1/features/servicemesh"
    );
    let key = "projects/418276145901/locations/us-central1/memberships/cluster-1";
    let (_, f) = get(
        &api,
        "/gkehub/v1/projects/asm-fresh/locations/global/features/servicemesh",
    )
    .await;
    assert_eq!(
        f["membershipSpecs"][key]["mesh"]["management"],
        "MANAGEMENT_AUTOMATIC"
    );
    let mut state = Value::Null;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, f) = get(
            &api,
            "/gkehub/v1/projects/asm-fresh/locations/global/features/servicemesh",
        )
        .await;
        state = f["membershipStates"][key].clone();
        if state["servicemesh"]["controlPlaneManagement"]["state"] == "ACTIVE" {
            break;
        }
    }
    assert_eq!(
        state["servicemesh"]["controlPlaneManagement"]["details"][0],
        json!({"code": "REVISION_READY", "details": "Ready: asm-managed-rapid"})
    );
    assert_eq!(state["state"]["code"], "OK");
    // The control plane's objects, in order (the Membership object and the managed data
    // plane's are checked by their own tests).
    let applied: Vec<Value> = fake
        .applied
        .lock()
        .unwrap()
        .iter()
        .filter(|o| {
            !matches!(o["kind"].as_str(), Some("Membership" | "DataPlaneControl"))
                && !matches!(
                    o["metadata"]["name"].as_str(),
                    Some("memberships.hub.gke.io" | "dataplanecontrols.mesh.cloud.google.com")
                )
        })
        .cloned()
        .collect();
    let kinds: Vec<&str> = applied.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "CustomResourceDefinition",
            "Namespace",
            "ControlPlaneRevision"
        ]
    );
    assert_eq!(
        applied[0]["metadata"]["name"],
        "controlplanerevisions.mesh.cloud.google.com"
    );
    assert_eq!(
        applied[2]["metadata"],
        json!({"name": "asm-managed-rapid", "namespace": "istio-system"})
    );
    assert_eq!(
        applied[2]["spec"],
        json!({"type": "managed_service", "channel": "rapid"})
    );
    let (_, v2) = get(&api, mf).await;
    assert_eq!(
        v2["spec"]["servicemesh"]["management"],
        "MANAGEMENT_AUTOMATIC"
    );
    assert_eq!(
        v2["state"]["servicemesh"]["controlPlaneManagement"]["state"],
        "ACTIVE"
    );
}

#[tokio::test]
async fn v1_membership_specs_accept_project_ids() {
    let api = api("fresh", &HUB_ON);
    let body = json!({"endpoint": {"gkeCluster": {"resourceLink": "//container.googleapis.com/projects/asm-fresh/locations/us-central1-c/clusters/cluster-1"}}});
    call(
        &api,
        "POST",
        "/gkehub/v1/projects/asm-fresh/locations/us-central1/memberships?membershipId=cluster-1",
        body,
    )
    .await;
    call(
        &api,
        "POST",
        "/gkehub/v1/projects/asm-fresh/locations/global/features?featureId=servicemesh",
        json!({}),
    )
    .await;
    let patch = json!({"membershipSpecs": {"projects/asm-fresh/locations/us-central1/memberships/cluster-1": {"mesh": {"management": "MANAGEMENT_AUTOMATIC"}, "origin": {"type": "FLEET"}}}});
    let (s, op) = call(&api, "PATCH", "/gkehub/v1/projects/asm-fresh/locations/global/features/servicemesh?updateMask=membershipSpecs", patch).await;
    assert_eq!(s, 200, "{op}");
    let key = "projects/418276145901/locations/us-central1/memberships/cluster-1";
    assert_eq!(
        op["response"]["membershipSpecs"][key]["origin"]["type"],
        "FLEET"
    );
    let (_, v2) = get(&api, "/gkehub/v2/projects/asm-fresh/locations/us-central1/memberships/cluster-1/features/servicemesh").await;
    assert_eq!(
        v2["spec"]["servicemesh"]["management"],
        "MANAGEMENT_AUTOMATIC"
    );
    let (_, list) = get(
        &api,
        "/gkehub/v1/projects/asm-fresh/locations/global/features",
    )
    .await;
    assert_eq!(list["resources"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn installed_scenario_is_applied_at_start() {
    let (fake, ep) = fake_endpoint();
    let api = api_with("installed", &[], vec![ep]);
    let applied: Vec<(String, String)> = fake
        .applied
        .lock()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap().to_string(),
                o["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        (
            "CustomResourceDefinition",
            "controlplanerevisions.mesh.cloud.google.com",
        ),
        ("Namespace", "istio-system"),
        ("ControlPlaneRevision", "asm-managed"),
        ("CustomResourceDefinition", "memberships.hub.gke.io"),
        ("Membership", "membership"),
        (
            "CustomResourceDefinition",
            "dataplanecontrols.mesh.cloud.google.com",
        ),
        ("DataPlaneControl", "asm-managed"),
    ];
    assert_eq!(
        applied,
        expected.map(|(k, n)| (k.to_string(), n.to_string()))
    );
    let (_, f) = get(
        &api,
        "/gkehub/v1/projects/asm-installed/locations/global/features/servicemesh",
    )
    .await;
    let key = "projects/518276145902/locations/us-central1/memberships/cluster-1";
    assert_eq!(f["resourceState"]["state"], "ACTIVE");
    assert_eq!(
        f["membershipStates"][key]["servicemesh"]["controlPlaneManagement"]["details"][0]["code"],
        "REVISION_READY"
    );
    let (_, c) = get(
        &api,
        "/container/v1/projects/asm-installed/locations/us-central1-c/clusters/cluster-1",
    )
    .await;
    assert_eq!(c["resourceLabels"]["mesh_id"], "proj-518276145902");
    assert_eq!(c["masterAuth"]["clusterCaCertificate"], "UEVN");
    assert!(
        c["fleet"]["membership"]
            .as_str()
            .unwrap()
            .ends_with("/memberships/cluster-1")
    );
}

#[test]
fn fault_responses_are_google_statuses() {
    let api = api("fresh", &[]);
    let r = api.fault_response(FaultKind::TooManyRequests);
    assert_eq!(r.status, 429);
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k == "Retry-After" && v == "1")
    );
    assert_eq!(r.body_json()["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        api.fault_response(FaultKind::Unavailable).body_json()["error"]["status"],
        "UNAVAILABLE"
    );
    assert_eq!(
        api.fault_response(FaultKind::Internal).body_json()["error"]["code"],
        500
    );
}

#[tokio::test]
async fn self_signed_jwts_and_the_oauth_token_endpoint() {
    use crate::tokens::testing::{now, sign};
    let tokens = TokenRegistry::with_token(TOKEN, Principal::user(SANDBOX_USER));
    let email = "asm-installer@asm-fresh.iam.gserviceaccount.com";
    let key = tokens.generate_key("kid-1", email).unwrap();
    let api = GoogleApi::with_tokens(Scenario::build("fresh", &[]).unwrap(), tokens, Vec::new());
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "kid-1"});
    let t = now();
    let path = "/crm/v1/projects/asm-fresh";
    let bearer = |token: &str| {
        Request::new("GET", path, Vec::new())
            .with_header("Authorization", &format!("Bearer {token}"))
    };
    // What google-cloud-auth sends for a key file: a self-signed JWT with a scope.
    let jwt = sign(
        &key.private_key_pem,
        &header,
        &json!({"iss": email, "sub": email, "scope": "https://www.googleapis.com/auth/cloud-platform", "iat": t, "exp": t + 3600}),
    );
    assert_eq!(api.clone().handle(bearer(&jwt)).await.status, 200);
    let forged = sign(
        &key.private_key_pem,
        &header,
        &json!({"iss": "other@x.iam.gserviceaccount.com", "scope": "s", "iat": t, "exp": t + 60}),
    );
    assert_eq!(api.clone().handle(bearer(&forged)).await.status, 401);

    // The key file's token_uri: a jwt-bearer grant for an opaque token of the same account.
    let assertion = sign(
        &key.private_key_pem,
        &header,
        &json!({"iss": email, "aud": "http://127.0.0.1/oauth2/token", "scope": "https://www.googleapis.com/auth/cloud-platform", "iat": t, "exp": t + 3600}),
    );
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    );
    let r = api
        .clone()
        .handle(Request::new("POST", "/oauth2/token", form))
        .await;
    assert_eq!(r.status, 200);
    let body = r.body_json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(api.clone().handle(bearer(access)).await.status, 200);

    let r = api
        .clone()
        .handle(Request::new(
            "POST",
            "/oauth2/token",
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=x.y.z",
        ))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body_json()["error"], "invalid_grant");
}

fn applied_named(fake: &FakeCluster, kind: &str, name: &str) -> Option<Value> {
    fake.applied
        .lock()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .cloned()
}

#[tokio::test]
async fn membership_object_follows_the_fleet_membership() {
    let (fake, ep) = fake_endpoint();
    let api = api_with("fresh", &HUB_ON, vec![ep]);
    assert!(applied_named(&fake, "Membership", "membership").is_none());
    let body = json!({"endpoint": {"gkeCluster": {"resourceLink": "//container.googleapis.com/projects/asm-fresh/locations/us-central1-c/clusters/cluster-1"}},
        "authority": {"issuer": "https://container.googleapis.com/v1/projects/asm-fresh/locations/us-central1-c/clusters/cluster-1"}});
    let m = "/gkehub/v1/projects/asm-fresh/locations/us-central1/memberships";
    let (s, op) = call(&api, "POST", &format!("{m}?membershipId=cluster-1"), body).await;
    assert_eq!(s, 200, "{op}");
    let obj = applied_named(&fake, "Membership", "membership").unwrap();
    assert_eq!(obj["apiVersion"], "hub.gke.io/v1");
    assert_eq!(
        obj["spec"],
        json!({
            "owner": {"id": "//gkehub.googleapis.com/projects/asm-fresh/locations/us-central1/memberships/cluster-1"},
            "identity_provider": "https://container.googleapis.com/v1/projects/asm-fresh/locations/us-central1-c/clusters/cluster-1",
            "workload_identity_pool": "asm-fresh.svc.id.goog",
        })
    );
    assert!(applied_named(&fake, "CustomResourceDefinition", "memberships.hub.gke.io").is_some());
    let (s, _) = call(&api, "DELETE", &format!("{m}/cluster-1"), Value::Null).await;
    assert_eq!(s, 200);
    assert!(applied_named(&fake, "Membership", "membership").is_none());
}

#[tokio::test]
async fn dataplane_control_per_managed_revision_on_regular_not_on_stable() {
    let (fake, ep) = fake_endpoint();
    let _api = api_with(
        "installed",
        &[("revision.asm-managed.proxy_version", "1.23.9-asm.2")],
        vec![ep],
    );
    let dpc = applied_named(&fake, "DataPlaneControl", "asm-managed").unwrap();
    assert_eq!(
        dpc["spec"],
        json!({"revision": "asm-managed", "proxyVersion": "1.23.9-asm.2", "proxyTargetBasisPoints": 10000})
    );
    let (fake, ep) = fake_endpoint();
    let _api = api_with("installed", &[("cluster.channel", "STABLE")], vec![ep]);
    assert!(applied_named(&fake, "ControlPlaneRevision", "asm-managed-stable").is_some());
    assert!(applied_named(&fake, "DataPlaneControl", "asm-managed-stable").is_none());
    assert!(
        applied_named(
            &fake,
            "CustomResourceDefinition",
            "dataplanecontrols.mesh.cloud.google.com"
        )
        .is_none()
    );
}

#[tokio::test]
async fn dataplane_control_follows_a_proxy_version_change() {
    let (fake, ep) = fake_endpoint();
    let api = api_with("installed", &[], vec![ep]);
    api.proxy_versions().set("asm-managed", "1.23.7-asm.1");
    let mut version = Value::Null;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        version = applied_named(&fake, "DataPlaneControl", "asm-managed").unwrap()["spec"]
            ["proxyVersion"]
            .clone();
        if version == "1.23.7-asm.1" {
            break;
        }
    }
    assert_eq!(version, "1.23.7-asm.1");
}

#[tokio::test]
async fn enabling_mesh_enables_its_dependencies() {
    let api = api("fresh", &[]);
    let (s, op) = call(
        &api,
        "POST",
        "/serviceusage/v1/projects/asm-fresh/services/mesh.googleapis.com:enable",
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{op}");
    for id in ["mesh", "gkehub", "meshconfig", "trafficdirector"] {
        let (_, svc) = get(
            &api,
            &format!("/serviceusage/v1/projects/asm-fresh/services/{id}.googleapis.com"),
        )
        .await;
        assert_eq!(svc["state"], "ENABLED", "{id}");
    }
    let (_, svc) = get(
        &api,
        "/serviceusage/v1/projects/asm-fresh/services/anthos.googleapis.com",
    )
    .await;
    assert_eq!(svc["state"], "DISABLED");
}

#[tokio::test]
async fn cross_project_keeps_clusters_and_fleet_in_their_own_projects() {
    let api = api("cross-project", &[("timing.hub_op_ms", "0")]);
    // Each project answers with its own number, services and policy.
    let (s, p) = get(&api, "/crm/v1/projects/asm-clusters").await;
    assert_eq!(
        (s, p["projectNumber"].as_str()),
        (200, Some("618276145903"))
    );
    let (s, f) = get(&api, "/crm/v1/projects/asm-fleet-host").await;
    assert_eq!(
        (s, f["projectNumber"].as_str()),
        (200, Some("718276145907"))
    );
    let (_, enabled) = get(
        &api,
        "/serviceusage/v1/projects/asm-fleet-host/services?filter=state:ENABLED",
    )
    .await;
    assert!(enabled.to_string().contains("gkehub.googleapis.com"));
    let (_, enabled) = get(
        &api,
        "/serviceusage/v1/projects/asm-clusters/services?filter=state:ENABLED",
    )
    .await;
    assert!(!enabled.to_string().contains("gkehub.googleapis.com"));
    let (s, fp) = call(
        &api,
        "POST",
        "/crm/v1/projects/asm-fleet-host:getIamPolicy",
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    for (agent, role) in [
        ("gkehub", "roles/gkehub.serviceAgent"),
        ("servicemesh", "roles/anthosservicemesh.serviceAgent"),
    ] {
        let member =
            format!("serviceAccount:service-718276145907@gcp-sa-{agent}.iam.gserviceaccount.com");
        assert!(
            fp["bindings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["role"] == role && b["members"].to_string().contains(&member)),
            "{fp}"
        );
    }
    let (_, pp) = call(
        &api,
        "POST",
        "/crm/v1/projects/asm-clusters:getIamPolicy",
        json!({}),
    )
    .await;
    assert!(!pp.to_string().contains("gcp-sa-gkehub"), "{pp}");
    // A write to one project's policy leaves the other's etag and bindings alone; the
    // other project's etag is stale for it.
    let mut policy = pp.clone();
    policy["bindings"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "roles/viewer", "members": ["user:x@example.com"]}));
    let (s, _) = call(
        &api,
        "POST",
        "/crm/v1/projects/asm-clusters:setIamPolicy",
        json!({"policy": {"bindings": policy["bindings"], "etag": fp["etag"]}}),
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = call(
        &api,
        "POST",
        "/crm/v1/projects/asm-clusters:setIamPolicy",
        json!({"policy": policy}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, fp2) = call(
        &api,
        "POST",
        "/crm/v1/projects/asm-fleet-host:getIamPolicy",
        json!({}),
    )
    .await;
    assert_eq!(fp2, fp);
    // Clusters live in asm-clusters only; the fleet in asm-fleet-host only.
    let (s, _) = get(
        &api,
        "/container/v1/projects/asm-clusters/locations/us-central1-c/clusters/cluster-1",
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = get(
        &api,
        "/container/v1/projects/asm-fleet-host/locations/us-central1-c/clusters/cluster-1",
    )
    .await;
    assert_eq!(s, 404);
    let link = "//container.googleapis.com/projects/asm-clusters/locations/us-central1-c/clusters/cluster-1";
    let (s, _) = call(
        &api,
        "POST",
        "/gkehub/v1/projects/asm-fleet-host/locations/us-central1/memberships?membershipId=cluster-1",
        json!({"endpoint": {"gkeCluster": {"resourceLink": link}}}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, ms) = get(
        &api,
        "/gkehub/v1/projects/asm-fleet-host/locations/-/memberships",
    )
    .await;
    assert_eq!(ms["resources"].as_array().map(Vec::len), Some(1), "{ms}");
    assert_eq!(
        ms["resources"][0]["name"],
        "projects/asm-fleet-host/locations/us-central1/memberships/cluster-1"
    );
    let (s, none) = get(
        &api,
        "/gkehub/v1/projects/asm-clusters/locations/-/memberships",
    )
    .await;
    // gkehub is disabled in the clusters' project.
    assert_eq!(s, 403, "{none}");
    let (_, c) = get(
        &api,
        "/container/v1/projects/asm-clusters/locations/us-central1-c/clusters/cluster-1",
    )
    .await;
    assert_eq!(
        c["fleet"]["membership"],
        "//gkehub.googleapis.com/projects/718276145907/locations/us-central1/memberships/cluster-1"
    );
}

#[tokio::test]
async fn a_project_over_its_per_minute_read_quota_gets_429_with_retry_after() {
    let api = api(
        "fresh",
        &[
            ("quota.container.read_per_min", "2"),
            ("quota.container.write_per_min", "0"),
        ],
    );
    let path = "/container/v1/projects/asm-fresh/locations/-/clusters";
    assert_eq!(get(&api, path).await.0, 200);
    assert_eq!(get(&api, path).await.0, 200);
    let req = Request::new("GET", path, Vec::new())
        .with_header("Authorization", &format!("Bearer {TOKEN}"));
    let r = api.clone().handle(req).await;
    assert_eq!(r.status, 429);
    let after: u64 = r
        .headers
        .iter()
        .find(|(k, _)| k == "Retry-After")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    assert!((1..=60).contains(&after), "{after}");
    let body = r.body_json();
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["error"]["details"][0]["reason"], "RATE_LIMIT_EXCEEDED");
    // Another API of the same project has its own quota.
    assert_eq!(
        get(&api, "/serviceusage/v1/projects/asm-fresh/services")
            .await
            .0,
        200
    );
}
