//! install_asm/asmcli spellings: accepted as hidden aliases so that existing scripts keep
//! working; each deprecated spelling used prints one warning naming the current one.

use std::ffi::OsString;

/// Deprecated long spellings and what to write instead.
const DEPRECATED: &[(&str, &str)] = &[
    ("--project_id", "-p/--project"),
    ("--cluster_location", "-l/--location"),
    ("--cluster_name", "-n/--cluster-name"),
    ("--fleet_id", "--fleet-id"),
    ("--output_dir", "-D/--output-dir"),
    ("--kc", "--kubeconfig"),
    ("--ctx", "--context"),
    ("--key_file", "-k/--key-file"),
    ("--service_account", "-s/--service-account"),
    ("--enable_all", "-e/--enable-all"),
    ("--enable_gcp_apis", "--enable-gcp-apis"),
    ("--enable_gcp_iam_roles", "--enable-gcp-iam-roles"),
    ("--enable_gcp_components", "--enable-gcp-components"),
    ("--enable_cluster_labels", "--enable-cluster-labels"),
    ("--enable_registration", "--enable-registration"),
    ("--enable_namespace_creation", "--enable-namespace-creation"),
    ("--dry_run", "--dry-run"),
    ("--ca_pool", "--ca-pool"),
    ("--only_enable", "--only-enable"),
];

/// One warning per deprecated spelling found among the flags of `argv` (values and
/// anything after `--` are not flags).
pub fn deprecated_spellings(argv: &[OsString]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for arg in argv.iter().skip(1) {
        let Some(a) = arg.to_str() else { continue };
        if a == "--" {
            break;
        }
        let flag = a.split_once('=').map_or(a, |(f, _)| f);
        if let Some((old, new)) = DEPRECATED.iter().find(|(old, _)| *old == flag) {
            let w = format!("{old} is a deprecated install_asm/asmcli spelling; use {new}");
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn one_warning_per_spelling() {
        let w = deprecated_spellings(&argv(&[
            "asm",
            "install",
            "--project_id",
            "p",
            "--output_dir=/tmp/x",
            "--project_id",
            "q",
            "--enable-registration",
            "--",
            "--kc",
        ]));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("--project_id") && w[0].contains("-p/--project"));
        assert!(w[1].contains("--output_dir"));
    }
}
