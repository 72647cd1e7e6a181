//! The managed control plane: namespace `istio-system`, then fleet automatic management
//! (gkehub v2 membership feature) or a ControlPlaneRevision with `asm-options`, and the
//! waits until it is ready. Manifests are parsed once and rendered by setting fields.

use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::plan::{Check, CheckStatus, Op, Target};
use crate::spec::{Channel, Management};

use super::{ClusterPlan, KubeObs, Planner, Step, codes, estimate};

const NAMESPACE_YAML: &str = include_str!("../../manifests/istio-system-namespace.yaml");
const ASM_OPTIONS_YAML: &str = include_str!("../../manifests/asm-options.yaml");
const CR_REGULAR_YAML: &str = include_str!("../../manifests/cr_regular.yaml");
const CR_RAPID_YAML: &str = include_str!("../../manifests/cr_rapid.yaml");
const CR_STABLE_YAML: &str = include_str!("../../manifests/cr_stable.yaml");

pub const NAMESPACE: &str = "istio-system";
pub const ASM_OPTIONS: &str = "asm-options";
pub const CPR_API: &str = "mesh.cloud.google.com/v1beta1";
pub const CPR_CRD: &str = "controlplanerevisions.mesh.cloud.google.com";
pub const TAGS_ANNOTATION: &str = "mesh.cloud.google.com/tags";
pub const MANAGEMENT_AUTOMATIC: &str = "MANAGEMENT_AUTOMATIC";

/// The embedded manifests, parsed.
#[derive(Debug, Clone)]
pub struct Manifests {
    pub namespace: Value,
    pub asm_options: Value,
    pub cr_regular: Value,
    pub cr_rapid: Value,
    pub cr_stable: Value,
}

fn parse(name: &str, text: &str) -> Result<Value, String> {
    serde_yaml::from_str(text).map_err(|e| format!("manifest {name}: {e}"))
}

impl Manifests {
    pub fn load() -> Result<Manifests, String> {
        Ok(Manifests {
            namespace: parse("istio-system-namespace.yaml", NAMESPACE_YAML)?,
            asm_options: parse("asm-options.yaml", ASM_OPTIONS_YAML)?,
            cr_regular: parse("cr_regular.yaml", CR_REGULAR_YAML)?,
            cr_rapid: parse("cr_rapid.yaml", CR_RAPID_YAML)?,
            cr_stable: parse("cr_stable.yaml", CR_STABLE_YAML)?,
        })
    }
}

/// The manifests, parsed on first use.
pub static MANIFESTS: LazyLock<Result<Manifests, String>> = LazyLock::new(Manifests::load);

/// Namespace `istio-system`.
pub fn namespace_object(m: &Manifests) -> Value {
    m.namespace.clone()
}

/// ConfigMap `istio-system/asm-options` with `ASM_OPTS = opts`.
pub fn asm_options_object(m: &Manifests, opts: &str) -> Value {
    let mut v = m.asm_options.clone();
    v["data"]["ASM_OPTS"] = json!(opts);
    v
}

/// The ControlPlaneRevision of `channel`, tagged with `tag`'s revision when given.
pub fn control_plane_revision(m: &Manifests, channel: Channel, tag: Option<Channel>) -> Value {
    let mut v = match channel {
        Channel::Regular => m.cr_regular.clone(),
        Channel::Rapid => m.cr_rapid.clone(),
        Channel::Stable => m.cr_stable.clone(),
    };
    if let Some(t) = tag {
        v["metadata"]["annotations"][TAGS_ANNOTATION] = json!(t.revision());
    }
    v
}

/// Merges `wanted` `KEY=VALUE` entries into an `ASM_OPTS` value without duplicates; a
/// wanted entry replaces one with the same key. `None` when nothing changes.
pub fn merge_asm_opts(existing: Option<&str>, wanted: &[&str]) -> Option<String> {
    let mut entries: Vec<String> = existing
        .unwrap_or_default()
        .split(';')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    let mut deduped: Vec<String> = Vec::new();
    for e in entries.drain(..) {
        if !deduped.contains(&e) {
            deduped.push(e);
        }
    }
    let before = deduped.clone();
    for w in wanted {
        if deduped.iter().any(|e| e == w) {
            continue;
        }
        let key = w.split('=').next().unwrap_or(w);
        deduped.retain(|e| e.split('=').next() != Some(key));
        deduped.push((*w).to_string());
    }
    let changed = deduped != before || existing.is_none_or(|e| e != deduped.join(";"));
    (changed && !wanted.is_empty()).then(|| deduped.join(";"))
}

/// ConfigMap `istio-system/asm-options` with the spec's `ASM_OPTS` entries merged in, when
/// something is missing; returns the action id.
fn plan_asm_options(
    p: &mut Planner,
    i: usize,
    kube: &KubeObs,
    ns: &[String],
    manifests: &Manifests,
) -> Option<String> {
    let c = p.cluster(i).clone();
    let label = p.label(i);
    let wanted_owned = p.spec.asm_opts();
    let wanted: Vec<&str> = wanted_owned.iter().map(String::as_str).collect();
    let merged = merge_asm_opts(kube.asm_options.as_deref(), &wanted)?;
    let aid = format!("{label}/{ASM_OPTIONS}");
    let exists = kube.asm_options.is_some();
    Some(p.action(
        aid,
        if exists { Op::Update } else { Op::Create },
        Some(i),
        ns_target("ConfigMap", "v1", ASM_OPTIONS),
        match &kube.asm_options {
            Some(o) => format!("ASM_OPTS is {o:?}"),
            None => "ConfigMap not found".to_string(),
        },
        ns.to_vec(),
        format!(
            "Would set ASM_OPTS={merged} in ConfigMap {NAMESPACE}/{ASM_OPTIONS} of cluster {}",
            c.name
        ),
        format!(
            "Set ASM_OPTS={merged} in ConfigMap {NAMESPACE}/{ASM_OPTIONS} of cluster {}",
            c.name
        ),
        estimate::KUBE_APPLY,
        Step::Apply {
            cluster: i,
            object: asm_options_object(manifests, &merged),
        },
    ))
}

fn ns_target(kind: &str, api: &str, name: &str) -> Target {
    Target {
        api: api.into(),
        kind: kind.into(),
        namespace: Some(NAMESPACE.into()),
        name: name.into(),
    }
}

/// Plans the in-cluster part and the control plane of cluster `i`.
pub fn plan(p: &mut Planner, i: usize, cp: &ClusterPlan) {
    let c = p.cluster(i).clone();
    let cs = c.to_string();
    let label = p.label(i);
    let Some(Ok(kube)) = p.obs.clusters[i].kube.clone() else {
        return;
    };
    let manifests = match &*MANIFESTS {
        Ok(m) => m.clone(),
        Err(e) => {
            p.check(Check::new(
                codes::CONTROL_PLANE,
                CheckStatus::Fail,
                Some(&cs),
                format!("internal error: {e}"),
            ));
            return;
        }
    };

    // In-cluster istiod: worth knowing, never blocking.
    if kube.istiod.is_empty() {
        p.check(Check::new(
            codes::IN_CLUSTER_ISTIOD,
            CheckStatus::Ok,
            Some(&cs),
            "no in-cluster istiod",
        ));
    } else {
        p.check(
            Check::new(
                codes::IN_CLUSTER_ISTIOD,
                CheckStatus::Warn,
                Some(&cs),
                format!("in-cluster istiod found: {}", kube.istiod.join(", ")),
            )
            .hint("after the install, migrate workloads with `asm migrate`"),
        );
    }

    // Namespace istio-system.
    let mut ns_deps: Vec<String> = Vec::new();
    if kube.namespace {
        p.check(Check::new(
            codes::NAMESPACE,
            CheckStatus::Ok,
            Some(&cs),
            format!("namespace {NAMESPACE} exists"),
        ));
    } else if p.spec.enable.namespace_creation {
        let id = format!("{label}/{NAMESPACE}");
        p.check(
            Check::new(
                codes::NAMESPACE,
                CheckStatus::Fix,
                Some(&cs),
                format!("namespace {NAMESPACE} is missing"),
            )
            .hint(format!("{id} creates it")),
        );
        ns_deps.push(p.action(
            id,
            Op::Create,
            Some(i),
            Target {
                api: "v1".into(),
                kind: "Namespace".into(),
                namespace: None,
                name: NAMESPACE.into(),
            },
            "namespace not found",
            Vec::new(),
            format!("Would create namespace {NAMESPACE} in cluster {}", c.name),
            format!("Created namespace {NAMESPACE} in cluster {}", c.name),
            estimate::KUBE_APPLY,
            Step::Apply {
                cluster: i,
                object: namespace_object(&manifests),
            },
        ));
    } else {
        p.check(
            Check::new(
                codes::NAMESPACE,
                CheckStatus::Fail,
                Some(&cs),
                format!("namespace {NAMESPACE} is missing"),
            )
            .hint("pass --enable-namespace-creation or --enable-all, or create it first"),
        );
        return;
    }

    match p.spec.management {
        Management::Automatic => {
            // CA options must be in place before the fleet provisions the control plane.
            let mut deps = ns_deps.clone();
            deps.extend(plan_asm_options(p, i, &kube, &ns_deps, &manifests));
            plan_automatic(p, i, cp, &kube, deps)
        }
        Management::Revision => plan_revision(p, i, cp, &kube, ns_deps, &manifests),
    }
}

/// The CR the control plane of this cluster is expected under, and whether it is ready:
/// the channel's revision if present, else any provisioned one.
fn provisioned_revision(kube: &KubeObs, channel: Channel) -> Option<String> {
    kube.cprs
        .iter()
        .find(|r| r.name == channel.revision() && r.provisioning_finished)
        .or_else(|| kube.cprs.iter().find(|r| r.provisioning_finished))
        .map(|r| r.name.clone())
}

fn plan_automatic(p: &mut Planner, i: usize, cp: &ClusterPlan, kube: &KubeObs, ns: Vec<String>) {
    let c = p.cluster(i).clone();
    let cs = c.to_string();
    let label = p.label(i);
    let fleet = p.spec.fleet_project.clone();
    let Some((location, id)) = cp.membership.clone() else {
        // Registration is missing and not permitted: already a failing check.
        return;
    };
    let mf = match &p.obs.clusters[i].membership_feature {
        Some(Ok(m)) => m.clone(),
        Some(Err(e)) => {
            p.check(
                Check::new(
                    codes::CONTROL_PLANE,
                    CheckStatus::Fail,
                    Some(&cs),
                    format!("cannot read the servicemesh membership feature: {e}"),
                )
                .hint("retry; check gkehub.features.get on the fleet project"),
            );
            return;
        }
        None => None,
    };
    let management = mf.as_ref().and_then(|m| m.management.clone());
    // Fleet state from the v2 membership feature, or the v1 feature's membershipStates.
    let fleet_ready = mf
        .as_ref()
        .and_then(|m| m.control_plane.as_ref())
        .is_some_and(|s| s.ready())
        || p.obs
            .fleet
            .feature
            .as_ref()
            .ok()
            .and_then(|f| f.as_ref())
            .is_some_and(|f| {
                f.membership_states.iter().any(|(k, s)| {
                    k.ends_with(&format!("/locations/{location}/memberships/{id}")) && s.ready()
                })
            });
    let revision = provisioned_revision(kube, cp.channel);
    let automatic = management.as_deref() == Some(MANAGEMENT_AUTOMATIC);
    let mut wait_deps = ns;
    if !automatic {
        p.require(&fleet, "gkehub.features.update");
        let aid = format!("{label}/management");
        let mut deps = cp.fleet_deps.clone();
        deps.extend(wait_deps.iter().cloned());
        let aid = p.action(
            aid,
            Op::Update,
            Some(i),
            Target {
                api: "gkehub.googleapis.com/v2".into(),
                kind: "MembershipFeature".into(),
                namespace: None,
                name: format!(
                    "projects/{fleet}/locations/{location}/memberships/{id}/features/servicemesh"
                ),
            },
            match &management {
                Some(m) => format!("management is {m}"),
                None => "management is not set".to_string(),
            },
            deps,
            format!(
                "Would turn on automatic control plane management for membership {location}/{id}"
            ),
            format!("Turned on automatic control plane management for membership {location}/{id}"),
            estimate::MANAGEMENT,
            Step::SetAutomaticManagement {
                cluster: i,
                location: location.clone(),
                id: id.clone(),
            },
        );
        wait_deps = vec![aid];
    } else {
        wait_deps.extend(cp.fleet_deps.iter().cloned());
    }
    wait_deps.extend(cp.gke_chain.iter().cloned());
    if automatic && fleet_ready && revision.is_some() {
        p.check(Check::new(
            codes::CONTROL_PLANE,
            CheckStatus::Ok,
            Some(&cs),
            format!(
                "managed control plane ready (automatic, revision {})",
                revision.unwrap_or_default()
            ),
        ));
        return;
    }
    let wid = format!("{label}/wait-managed");
    p.check(
        Check::new(
            codes::CONTROL_PLANE,
            CheckStatus::Fix,
            Some(&cs),
            if automatic {
                "managed control plane is not ready yet".to_string()
            } else {
                "automatic control plane management is off".to_string()
            },
        )
        .hint(if automatic {
            format!("{wid} waits for it")
        } else {
            format!("{label}/management turns it on, {wid} waits for it")
        }),
    );
    p.action(
        wid,
        Op::Wait,
        Some(i),
        ns_target("ControlPlaneRevision", CPR_API, cp.channel.revision()),
        "the fleet has not reported REVISION_READY with ProvisioningFinished",
        wait_deps,
        format!(
            "Would wait for the managed control plane of cluster {} (REVISION_READY, ProvisioningFinished)",
            c.name
        ),
        format!("The managed control plane of cluster {} is ready", c.name),
        estimate::WAIT_MANAGED,
        Step::WaitManaged {
            cluster: i,
            location,
            id,
        },
    );
}

fn plan_revision(
    p: &mut Planner,
    i: usize,
    cp: &ClusterPlan,
    kube: &KubeObs,
    ns: Vec<String>,
    manifests: &super::control_plane::Manifests,
) {
    let c = p.cluster(i).clone();
    let cs = c.to_string();
    let label = p.label(i);
    if cp.membership.is_none() {
        return;
    }
    // The CRD comes from the fleet once the cluster is a member with the feature on.
    let mut cr_deps: Vec<String> = ns.clone();
    if kube.crd != Some(true) {
        let wid = format!("{label}/wait-crd");
        let mut deps = cp.fleet_deps.clone();
        deps.extend(cp.gke_chain.iter().cloned());
        cr_deps.push(p.action(
            wid,
            Op::Wait,
            Some(i),
            Target {
                api: "apiextensions.k8s.io/v1".into(),
                kind: "CustomResourceDefinition".into(),
                namespace: None,
                name: CPR_CRD.into(),
            },
            if kube.crd.is_none() {
                "the CRD is not installed yet"
            } else {
                "the CRD is not Established yet"
            },
            deps,
            format!(
                "Would wait for CRD {CPR_CRD} to be Established in cluster {}",
                c.name
            ),
            format!("CRD {CPR_CRD} is Established in cluster {}", c.name),
            estimate::WAIT_CRD,
            Step::WaitCrd { cluster: i },
        ));
    }

    // asm-options.
    cr_deps.extend(plan_asm_options(p, i, kube, &ns, manifests));

    // The ControlPlaneRevision of the cluster's channel (+ tag for --channel).
    let revision = cp.channel.revision();
    let tag = p.spec.channel.filter(|t| *t != cp.channel);
    let existing = kube.cprs.iter().find(|r| r.name == revision);
    let in_place = existing.is_some_and(|r| {
        r.channel.as_deref() == Some(cp.channel.as_str())
            && r.tags.as_deref() == tag.map(Channel::revision)
    });
    let mut wait_deps: Vec<String> = Vec::new();
    if !in_place {
        let aid = format!("{label}/control-plane-revision");
        wait_deps.push(p.action(
            aid,
            if existing.is_some() {
                Op::Update
            } else {
                Op::Create
            },
            Some(i),
            ns_target("ControlPlaneRevision", CPR_API, revision),
            match existing {
                Some(_) => "channel or tag differ".to_string(),
                None => "ControlPlaneRevision not found".to_string(),
            },
            cr_deps,
            format!(
                "Would apply ControlPlaneRevision {NAMESPACE}/{revision} (channel {}) to cluster {}",
                cp.channel, c.name
            ),
            format!(
                "Applied ControlPlaneRevision {NAMESPACE}/{revision} (channel {}) to cluster {}",
                cp.channel, c.name
            ),
            estimate::KUBE_APPLY,
            Step::Apply {
                cluster: i,
                object: control_plane_revision(manifests, cp.channel, tag),
            },
        ));
    } else {
        wait_deps.extend(cr_deps);
    }
    let finished = existing.is_some_and(|r| r.provisioning_finished);
    if in_place && finished {
        p.check(Check::new(
            codes::CONTROL_PLANE,
            CheckStatus::Ok,
            Some(&cs),
            format!("ControlPlaneRevision {revision} is ProvisioningFinished"),
        ));
        return;
    }
    let wid = format!("{label}/wait-revision");
    p.check(
        Check::new(
            codes::CONTROL_PLANE,
            CheckStatus::Fix,
            Some(&cs),
            if existing.is_some() {
                format!("ControlPlaneRevision {revision} is not provisioned yet")
            } else {
                format!("ControlPlaneRevision {revision} is missing")
            },
        )
        .hint(format!("{wid} waits for it to be ProvisioningFinished")),
    );
    p.action(
        wid,
        Op::Wait,
        Some(i),
        ns_target("ControlPlaneRevision", CPR_API, revision),
        "ProvisioningFinished is not True",
        wait_deps,
        format!(
            "Would wait for ControlPlaneRevision {revision} in cluster {} to be ProvisioningFinished",
            c.name
        ),
        format!(
            "ControlPlaneRevision {revision} in cluster {} is ProvisioningFinished",
            c.name
        ),
        estimate::WAIT_REVISION,
        Step::WaitRevision {
            cluster: i,
            revision: revision.to_string(),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_manifest_parses_and_renders() {
        let m = Manifests::load().unwrap();
        assert_eq!(m.namespace["kind"], "Namespace");
        assert_eq!(m.namespace["metadata"]["name"], NAMESPACE);
        let cm = asm_options_object(&m, "CNI=on");
        assert_eq!(cm["data"]["ASM_OPTS"], "CNI=on");
        assert_eq!(cm["metadata"]["namespace"], NAMESPACE);
        for (ch, name) in [
            (Channel::Regular, "asm-managed"),
            (Channel::Rapid, "asm-managed-rapid"),
            (Channel::Stable, "asm-managed-stable"),
        ] {
            let cr = control_plane_revision(&m, ch, None);
            assert_eq!(cr["apiVersion"], CPR_API);
            assert_eq!(cr["kind"], "ControlPlaneRevision");
            assert_eq!(cr["metadata"]["name"], name);
            assert_eq!(cr["metadata"]["namespace"], NAMESPACE);
            assert_eq!(cr["spec"]["channel"], ch.as_str());
            assert_eq!(cr["spec"]["type"], "managed_service");
            assert!(cr["metadata"]["annotations"].get(TAGS_ANNOTATION).is_none());
        }
        let tagged = control_plane_revision(&m, Channel::Regular, Some(Channel::Rapid));
        assert_eq!(
            tagged["metadata"]["annotations"][TAGS_ANNOTATION],
            "asm-managed-rapid"
        );
        assert_eq!(
            tagged["metadata"]["annotations"]["mesh.cloud.google.com/vpcsc"],
            "false"
        );
    }

    #[test]
    fn asm_opts_merge_without_duplicates() {
        assert_eq!(merge_asm_opts(None, &[]), None);
        assert_eq!(merge_asm_opts(None, &["CNI=on"]).as_deref(), Some("CNI=on"));
        assert_eq!(merge_asm_opts(Some("CNI=on"), &["CNI=on"]), None);
        assert_eq!(
            merge_asm_opts(Some("CA=PRIVATECA;CNI=off;;"), &["CNI=on"]).as_deref(),
            Some("CA=PRIVATECA;CNI=on")
        );
        assert_eq!(
            merge_asm_opts(Some("CNI=on;CNI=on;"), &["CNI=on"]).as_deref(),
            Some("CNI=on")
        );
        assert_eq!(merge_asm_opts(Some("X=1"), &[]), None);
    }
}
