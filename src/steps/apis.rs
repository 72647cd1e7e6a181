//! Google APIs the mesh needs on the fleet project, enabled in one batch.

use crate::plan::{Check, CheckStatus, Op, Target};
use crate::spec::{CertificateAuthority, MeshSpec};

use super::{MESH_SERVICES, Planner, Step, codes, estimate};

/// The CA Service API, needed with `--ca gcp_cas` (the pool's IAM policy and the
/// workloads' certificate requests go through it).
pub const PRIVATECA_SERVICE: &str = "privateca.googleapis.com";

/// The services `spec` needs on the fleet project: [`MESH_SERVICES`], and the CA Service
/// API for `--ca gcp_cas`.
pub fn wanted(spec: &MeshSpec) -> Vec<&'static str> {
    let mut out = MESH_SERVICES.to_vec();
    if matches!(spec.ca, CertificateAuthority::PrivateCa { .. }) {
        out.push(PRIVATECA_SERVICE);
    }
    out
}

/// Services of `wanted` missing from `enabled`, in that order.
pub fn missing<'s>(
    wanted: &[&'s str],
    enabled: &std::collections::BTreeSet<String>,
) -> Vec<&'s str> {
    wanted
        .iter()
        .copied()
        .filter(|s| !enabled.contains(*s))
        .collect()
}

/// Checks the APIs and plans their enablement; returns the action id when one is needed.
pub fn plan(p: &mut Planner) -> Option<String> {
    let project = p.spec.fleet_project.clone();
    p.require(&project, "serviceusage.services.list");
    let enabled = match &p.obs.fleet.enabled_services {
        Ok(s) => s.clone(),
        Err(e) => {
            p.check(
                Check::new(
                    codes::APIS,
                    CheckStatus::Fail,
                    None,
                    format!("cannot list the enabled APIs of {project}: {e}"),
                )
                .hint("retry; check serviceusage.services.list on the fleet project"),
            );
            return None;
        }
    };
    let wanted = wanted(p.spec);
    let missing = missing(&wanted, &enabled);
    if missing.is_empty() {
        p.check(Check::new(
            codes::APIS,
            CheckStatus::Ok,
            None,
            format!("APIs enabled on {project}: {}", wanted.join(", ")),
        ));
        return None;
    }
    p.require(&project, "serviceusage.services.enable");
    let list = missing.join(", ");
    let message = format!("APIs not enabled on {project}: {list}");
    if !p.spec.enable.apis {
        p.check(
            Check::new(codes::APIS, CheckStatus::Fail, None, message)
                .hint("pass --enable-gcp-apis or --enable-all, or enable them first"),
        );
        return None;
    }
    let id = "fleet/apis".to_string();
    p.check(
        Check::new(codes::APIS, CheckStatus::Fix, None, message).hint(format!("{id} enables them")),
    );
    let services: Vec<String> = missing.iter().map(|s| s.to_string()).collect();
    let n = services.len();
    let what = if n == 1 {
        list.clone()
    } else {
        format!("{n} APIs ({list})")
    };
    Some(p.action(
        id,
        Op::Create,
        None,
        Target {
            api: "serviceusage.googleapis.com/v1".into(),
            kind: "Service".into(),
            namespace: None,
            name: format!("projects/{project}/services/{}", services.join(",")),
        },
        format!("{list} disabled"),
        Vec::new(),
        format!("Would enable {what} on project {project}"),
        format!("Enabled {what} on project {project}"),
        estimate::ENABLE_APIS,
        Step::EnableApis { project, services },
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::spec::{EnableFlags, Management};
    use crate::steps::tests::spec;

    #[test]
    fn gcp_cas_also_wants_the_ca_service_api() {
        let mut s = spec(
            &["asm-fresh/us-central1-c/cluster-1"],
            EnableFlags::all(),
            Management::Automatic,
        );
        assert_eq!(wanted(&s), MESH_SERVICES.to_vec());
        s.ca = CertificateAuthority::PrivateCa {
            pool: "projects/asm-fresh/locations/us-central1/caPools/p".into(),
        };
        let w = wanted(&s);
        assert_eq!(w.last(), Some(&PRIVATECA_SERVICE));
        let enabled = MESH_SERVICES.iter().map(|s| s.to_string()).collect();
        assert_eq!(missing(&w, &enabled), vec![PRIVATECA_SERVICE]);
    }
}
