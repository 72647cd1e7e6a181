//! Caller permissions: what the needed reads and changes require, against what
//! `testIamPermissions` grants.

use crate::plan::{Check, CheckStatus};

use super::{Planner, codes};

/// Every permission the mesh commands may need; `testIamPermissions` is asked for these
/// on each project involved.
pub const CANDIDATES: [&str; 13] = [
    "resourcemanager.projects.get",
    "resourcemanager.projects.getIamPolicy",
    "resourcemanager.projects.setIamPolicy",
    "serviceusage.services.list",
    "serviceusage.services.enable",
    "container.clusters.get",
    "container.clusters.update",
    "gkehub.memberships.list",
    "gkehub.memberships.get",
    "gkehub.memberships.create",
    "gkehub.features.get",
    "gkehub.features.create",
    "gkehub.features.update",
];

/// A role that grants `permission` (for hints).
pub fn role_for(permission: &str) -> &'static str {
    if permission.starts_with("resourcemanager.projects.") && permission.ends_with("IamPolicy") {
        return "roles/resourcemanager.projectIamAdmin";
    }
    match permission.split('.').next().unwrap_or_default() {
        "gkehub" => "roles/gkehub.admin",
        "container" => "roles/container.admin",
        "serviceusage" => "roles/serviceusage.serviceUsageAdmin",
        _ => "roles/viewer",
    }
}

/// One check over every project: the permissions still missing.
pub fn plan(p: &mut Planner) {
    let mut missing: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut roles: Vec<&'static str> = Vec::new();
    for (project, needed) in &p.required {
        match p.obs.permissions.get(project) {
            Some(Ok(granted)) => {
                for perm in needed {
                    if !granted.contains(*perm) {
                        missing.push(format!("{perm} on {project}"));
                        let r = role_for(perm);
                        if !roles.contains(&r) {
                            roles.push(r);
                        }
                    }
                }
            }
            Some(Err(e)) => unknown.push(format!("{project}: {e}")),
            None => unknown.push(format!("{project}: not tested")),
        }
    }
    let check = if !missing.is_empty() {
        Check::new(
            codes::PERMISSIONS,
            CheckStatus::Fail,
            None,
            format!("caller lacks {}", missing.join(", ")),
        )
        .hint(format!(
            "grant {} (or the permissions above)",
            roles.join(", ")
        ))
    } else if !unknown.is_empty() {
        Check::new(
            codes::PERMISSIONS,
            CheckStatus::Warn,
            None,
            format!("could not test permissions ({})", unknown.join("; ")),
        )
    } else {
        let n: usize = p.required.values().map(|s| s.len()).sum();
        Check::new(
            codes::PERMISSIONS,
            CheckStatus::Ok,
            None,
            format!("caller has the {n} permissions needed"),
        )
    };
    p.check(check);
}
