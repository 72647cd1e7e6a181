//! Tests of the protobuf decoder against objects encoded by another implementation: the prost
//! types of kube-rs' `k8s-pb` (generated from the same Kubernetes `generated.proto` files), read
//! back into `k8s-openapi`'s typed structs, and the bodies kubectl 1.32 sent to a real
//! kube-apiserver (the hexdumps in `tests/k8s-golden/09-17-…` and `09-18-…`).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use serde_json::{Value, json};

use super::protobuf::{Kind, MAGIC, decode_body, decode_message};
use super::protobuf_schema::MESSAGES;

/// `k8s\0` + runtime.Unknown around `object`, as client-go's protobuf serializer writes it
/// (empty contentEncoding/contentType present, as in the golden hexdumps).
fn envelope(api_version: &str, kind: &str, object: &impl prost::Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn int_port(p: i32) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(0),
        int_val: Some(p),
        str_val: Some(String::new()),
    })
}

fn named_port(p: &str) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s(p),
    })
}

fn time(seconds: i64) -> Option<meta::Time> {
    Some(meta::Time {
        seconds: Some(seconds),
        nanos: Some(0),
    })
}

/// ObjectMeta as kubectl's encoder writes it: every non-pointer string present, even empty.
fn object_meta(name: &str, namespace: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(namespace),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        ..Default::default()
    })
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Reading the JSON into k8s-openapi's struct and writing it back loses nothing: every key is
/// one the typed struct knows, with a value of the right JSON type.
fn assert_typed_round_trip<T>(decoded: &Value)
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: T = serde_json::from_value(decoded.clone()).unwrap();
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(&back, decoded, "k8s-openapi round trip changed the object");
}

#[test]
fn deployment_with_full_pod_template_decodes_to_go_json() {
    let container = core::Container {
        name: s("web"),
        image: s("nginx:1.27"),
        ports: vec![core::ContainerPort {
            name: s("http"),
            container_port: Some(80),
            protocol: s("TCP"),
            host_port: None,
            host_ip: s(""),
        }],
        env: vec![core::EnvVar {
            name: s("MODE"),
            value: s("fast"),
            value_from: None,
        }],
        resources: Some(core::ResourceRequirements {
            limits: [
                ("cpu".to_string(), Quantity { string: s("500m") }),
                ("memory".to_string(), Quantity { string: s("128Mi") }),
            ]
            .into(),
            requests: [("cpu".to_string(), Quantity { string: s("250m") })].into(),
            claims: vec![],
        }),
        readiness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: s("/healthz"),
                    port: int_port(8080),
                    host: s(""),
                    scheme: s("HTTP"),
                    http_headers: vec![],
                }),
                ..Default::default()
            }),
            initial_delay_seconds: Some(5),
            ..Default::default()
        }),
        liveness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                tcp_socket: Some(core::TcpSocketAction {
                    port: named_port("http"),
                    host: s(""),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: vec![core::VolumeMount {
            name: s("data"),
            mount_path: s("/data"),
            ..Default::default()
        }],
        ..Default::default()
    };
    let deployment = k8s_pb::api::apps::v1::Deployment {
        metadata: Some(meta::ObjectMeta {
            labels: labels(&[("app", "web")]),
            creation_timestamp: time(1_700_000_000),
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kubectl-create"),
                operation: s("Update"),
                api_version: s("apps/v1"),
                time: time(1_700_000_001),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(br#"{"f:spec":{"f:replicas":{}}}"#.to_vec()),
                }),
                subresource: s(""),
            }],
            ..object_meta("web", "demo").unwrap()
        }),
        spec: Some(k8s_pb::api::apps::v1::DeploymentSpec {
            // A pointer in Go: an explicit zero must survive.
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: labels(&[("app", "web")]),
                match_expressions: vec![],
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels: labels(&[("app", "web")]),
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    containers: vec![container],
                    volumes: vec![core::Volume {
                        name: s("data"),
                        volume_source: Some(core::VolumeSource {
                            empty_dir: Some(core::EmptyDirVolumeSource {
                                medium: s(""),
                                size_limit: None,
                            }),
                            ..Default::default()
                        }),
                    }],
                    restart_policy: s("Always"),
                    ..Default::default()
                }),
            }),
            strategy: Some(k8s_pb::api::apps::v1::DeploymentStrategy::default()),
            ..Default::default()
        }),
        status: None,
    };
    let decoded = decode_body(&envelope("apps/v1", "Deployment", &deployment)).unwrap();
    let expected = json!({
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": "web",
            "namespace": "demo",
            "creationTimestamp": "2023-11-14T22:13:20Z",
            "labels": {"app": "web"},
            "managedFields": [{
                "manager": "kubectl-create",
                "operation": "Update",
                "apiVersion": "apps/v1",
                "time": "2023-11-14T22:13:21Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}}},
            }],
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "containers": [{
                        "name": "web",
                        "image": "nginx:1.27",
                        "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "MODE", "value": "fast"}],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "250m"},
                        },
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        "livenessProbe": {"tcpSocket": {"port": "http"}},
                        "readinessProbe": {
                            "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                            "initialDelaySeconds": 5,
                        },
                    }],
                    "restartPolicy": "Always",
                },
            },
            "strategy": {},
        },
    });
    assert_eq!(decoded, expected);
    assert_typed_round_trip::<k8s_openapi::api::apps::v1::Deployment>(&decoded);
}

#[test]
fn service_with_cluster_ips_and_named_target_port_decodes_to_go_json() {
    let service = core::Service {
        metadata: object_meta("web", "demo"),
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                name: s("http"),
                protocol: s("TCP"),
                port: Some(80),
                target_port: named_port("web-http"),
                node_port: None,
                app_protocol: None,
            }],
            selector: labels(&[("app", "web")]),
            cluster_ip: s("10.0.0.12"),
            cluster_ips: vec!["10.0.0.12".into(), "fd00::12".into()],
            r#type: s("ClusterIP"),
            ip_families: vec!["IPv4".into(), "IPv6".into()],
            ..Default::default()
        }),
        status: Some(core::ServiceStatus::default()),
    };
    let decoded = decode_body(&envelope("v1", "Service", &service)).unwrap();
    let expected = json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "web-http"}],
            "selector": {"app": "web"},
            "clusterIP": "10.0.0.12",
            "type": "ClusterIP",
            "clusterIPs": ["10.0.0.12", "fd00::12"],
            "ipFamilies": ["IPv4", "IPv6"],
        },
        "status": {},
    });
    assert_eq!(decoded, expected);
    assert_typed_round_trip::<k8s_openapi::api::core::v1::Service>(&decoded);
}

#[test]
fn secret_bytes_become_base64_and_pointer_false_is_kept() {
    let secret = core::Secret {
        metadata: object_meta("creds", "demo"),
        immutable: Some(false),
        data: [("key".to_string(), vec![0u8, 0xff, b'h', b'i'])].into(),
        string_data: BTreeMap::new(),
        r#type: s("Opaque"),
    };
    let decoded = decode_body(&envelope("v1", "Secret", &secret)).unwrap();
    assert_eq!(
        decoded,
        json!({
            "kind": "Secret", "apiVersion": "v1",
            "metadata": {"name": "creds", "namespace": "demo"},
            "immutable": false,
            "data": {"key": "AP9oaQ=="},
            "type": "Opaque",
        })
    );
    assert_typed_round_trip::<k8s_openapi::api::core::v1::Secret>(&decoded);
}

#[test]
fn token_request_keeps_required_empty_token_and_int64_numbers() {
    let request = k8s_pb::api::authentication::v1::TokenRequest {
        metadata: object_meta("", ""),
        spec: Some(k8s_pb::api::authentication::v1::TokenRequestSpec {
            audiences: vec!["istio-ca".into()],
            expiration_seconds: Some(7200),
            bound_object_ref: Some(k8s_pb::api::authentication::v1::BoundObjectReference {
                kind: s("Pod"),
                api_version: s("v1"),
                name: s("web-0"),
                u_id: s("0b8a"),
            }),
        }),
        status: Some(k8s_pb::api::authentication::v1::TokenRequestStatus {
            token: s(""),
            expiration_timestamp: Some(meta::Time::default()),
        }),
    };
    let decoded = decode_body(&envelope(
        "authentication.k8s.io/v1",
        "TokenRequest",
        &request,
    ))
    .unwrap();
    assert_eq!(
        decoded,
        json!({
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {},
            "spec": {
                "audiences": ["istio-ca"],
                "expirationSeconds": 7200,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-0", "uid": "0b8a"},
            },
            "status": {"token": "", "expirationTimestamp": null},
        })
    );
}

#[test]
fn self_subject_access_review_decodes_resource_attributes() {
    let review = k8s_pb::api::authorization::v1::SelfSubjectAccessReview {
        metadata: object_meta("", ""),
        spec: Some(
            k8s_pb::api::authorization::v1::SelfSubjectAccessReviewSpec {
                resource_attributes: Some(k8s_pb::api::authorization::v1::ResourceAttributes {
                    namespace: s("istio-system"),
                    verb: s("list"),
                    group: s(""),
                    version: s(""),
                    resource: s("secrets"),
                    subresource: s(""),
                    name: s(""),
                    ..Default::default()
                }),
                non_resource_attributes: None,
            },
        ),
        status: None,
    };
    let decoded = decode_body(&envelope(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &review,
    ))
    .unwrap();
    assert_eq!(
        decoded,
        json!({
            "kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": {"resourceAttributes": {"namespace": "istio-system", "verb": "list", "resource": "secrets"}},
        })
    );
    assert_typed_round_trip::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>(
        &decoded,
    );
}

#[test]
fn crd_schema_uses_json_schema_names_unions_and_embedded_json() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let string_prop = ext::JsonSchemaProps {
        r#type: s("string"),
        ..Default::default()
    };
    let schema = ext::JsonSchemaProps {
        r#type: s("object"),
        properties: [
            (
                "spec".to_string(),
                ext::JsonSchemaProps {
                    r#type: s("object"),
                    x_kubernetes_preserve_unknown_fields: Some(true),
                    ..Default::default()
                },
            ),
            (
                "tags".to_string(),
                ext::JsonSchemaProps {
                    r#type: s("array"),
                    items: Some(Box::new(ext::JsonSchemaPropsOrArray {
                        schema: Some(Box::new(string_prop.clone())),
                        j_son_schemas: vec![],
                    })),
                    default: Some(ext::Json {
                        raw: Some(br#"["a"]"#.to_vec()),
                    }),
                    ..Default::default()
                },
            ),
            (
                "labels".to_string(),
                ext::JsonSchemaProps {
                    r#type: s("object"),
                    additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
                        allows: Some(true),
                        schema: Some(Box::new(string_prop)),
                    })),
                    ..Default::default()
                },
            ),
        ]
        .into(),
        ..Default::default()
    };
    let crd = ext::CustomResourceDefinition {
        metadata: object_meta("widgets.example.com", ""),
        spec: Some(ext::CustomResourceDefinitionSpec {
            group: s("example.com"),
            names: Some(ext::CustomResourceDefinitionNames {
                plural: s("widgets"),
                kind: s("Widget"),
                ..Default::default()
            }),
            scope: s("Namespaced"),
            versions: vec![ext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(true),
                storage: Some(true),
                schema: Some(ext::CustomResourceValidation {
                    open_apiv3_schema: Some(schema),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let decoded = decode_body(&envelope(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &crd,
    ))
    .unwrap();
    let schema = &decoded["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    assert_eq!(
        schema["properties"]["spec"],
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
    );
    assert_eq!(
        schema["properties"]["tags"],
        json!({"type": "array", "items": {"type": "string"}, "default": ["a"]})
    );
    assert_eq!(
        schema["properties"]["labels"]["additionalProperties"],
        json!({"type": "string"})
    );
    assert_typed_round_trip::<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    >(&decoded);
}

#[test]
fn lease_micro_time_and_duration_use_go_formats() {
    let lease = k8s_pb::api::coordination::v1::Lease {
        metadata: object_meta("leader", "kube-system"),
        spec: Some(k8s_pb::api::coordination::v1::LeaseSpec {
            holder_identity: s("node-1"),
            lease_duration_seconds: Some(15),
            renew_time: Some(meta::MicroTime {
                seconds: Some(1_700_000_000),
                nanos: Some(123_456_789),
            }),
            ..Default::default()
        }),
    };
    let decoded = decode_body(&envelope("coordination.k8s.io/v1", "Lease", &lease)).unwrap();
    assert_eq!(
        decoded["spec"],
        json!({"holderIdentity": "node-1", "leaseDurationSeconds": 15, "renewTime": "2023-11-14T22:13:20.123456Z"})
    );
    assert_typed_round_trip::<k8s_openapi::api::coordination::v1::Lease>(&decoded);
    let duration = meta::Duration {
        duration: Some(5_400_000_000_000),
    };
    assert_eq!(
        decode_message(
            &duration.encode_to_vec(),
            "apimachinery.pkg.apis.meta.v1.Duration"
        )
        .unwrap(),
        json!("1h30m0s")
    );
}

#[test]
fn raw_extension_embeds_json_objects() {
    let event = meta::WatchEvent {
        r#type: s("ADDED"),
        object: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension {
            raw: Some(br#"{"kind":"ConfigMap","apiVersion":"v1"}"#.to_vec()),
        }),
    };
    let decoded = decode_message(
        &event.encode_to_vec(),
        "apimachinery.pkg.apis.meta.v1.WatchEvent",
    )
    .unwrap();
    assert_eq!(
        decoded,
        json!({"type": "ADDED", "object": {"kind": "ConfigMap", "apiVersion": "v1"}})
    );
}

/// The bytes of a golden sequence request's hexdump (`00000000  6b 38 …  |k8s.|` lines).
fn golden_body(file: &str, request: usize) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/k8s-golden")
        .join(file);
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let dump = fixture["requests"][request]["body"].as_str().unwrap();
    dump.lines()
        .flat_map(|line| {
            let hex = line.split('|').next().unwrap_or_default();
            hex.split_whitespace()
                .skip(1)
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn golden_kubectl_create_token_body_decodes() {
    let body = golden_body("09-17-seq-create-token.json", 0);
    assert_eq!(body.len(), 0x51);
    assert_eq!(
        decode_body(&body).unwrap(),
        json!({
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"generation": 0, "creationTimestamp": null},
            "spec": {"expirationSeconds": 3600},
            "status": {"token": "", "expirationTimestamp": null},
        })
    );
}

#[test]
fn golden_kubectl_auth_can_i_body_decodes() {
    let body = golden_body("09-18-seq-auth-can-i.json", 1);
    assert_eq!(body.len(), 0x83);
    assert_eq!(
        decode_body(&body).unwrap(),
        json!({
            "kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"generation": 0, "creationTimestamp": null},
            "spec": {"resourceAttributes": {"namespace": "istio-system", "verb": "list", "resource": "secrets"}},
            "status": {"allowed": false, "denied": false},
        })
    );
}

#[test]
fn schema_table_is_sorted_and_every_message_reference_resolves() {
    assert!(MESSAGES.len() > 1000, "{} messages", MESSAGES.len());
    assert!(MESSAGES.windows(2).all(|w| w[0].name < w[1].name));
    let known = |n: &str| MESSAGES.binary_search_by(|m| m.name.cmp(n)).is_ok();
    let mut unresolved = Vec::new();
    for m in MESSAGES {
        for f in m.fields {
            let target = match &f.kind {
                Kind::Message(n) => Some(*n),
                Kind::Map(Kind::Message(n)) => Some(*n),
                _ => None,
            };
            if let Some(n) = target.filter(|n| !known(n)) {
                unresolved.push(format!("{}.{} -> {n}", m.name, f.json));
            }
        }
    }
    assert!(unresolved.is_empty(), "{unresolved:?}");
}

#[test]
fn body_without_magic_or_of_unknown_kind_is_an_error() {
    assert!(decode_body(b"{}").is_err());
    let cm = core::ConfigMap::default();
    assert!(decode_body(&envelope("v1", "NoSuchKind", &cm)).is_err());
    let mut truncated = envelope(
        "v1",
        "ConfigMap",
        &core::ConfigMap {
            metadata: object_meta("x", "y"),
            ..Default::default()
        },
    );
    truncated.pop();
    assert!(decode_body(&truncated).is_err());
}
