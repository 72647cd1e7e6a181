//! install_asm/asmcli compatibility: the seed command line verbatim, hidden aliases with one
//! warning per deprecated spelling, `--only_validate`, `--only_enable`, `--ca gcp_cas`, and
//! the managed-only rejections (exit 2, zero requests).

#![allow(clippy::unwrap_used)]

use asm_sim::member::MemberCluster;
use serde_json::Value;

use crate::install::{asm, changes, fast, plan_json, strs, target};
use crate::support::{TestSandbox, assert_success, stderr, stdout};

const POOL: &str = "projects/asm-fresh/locations/us-central1/caPools/mesh-pool";

fn project_location(sb: &TestSandbox) -> (String, String) {
    let s = sb.sandbox();
    (
        s.scenario.project_id.clone(),
        s.scenario.location().to_string(),
    )
}

fn cpr(sb: &TestSandbox) -> Option<Value> {
    sb.sandbox().clusters[0].api.get_object(
        "mesh.cloud.google.com/v1beta1",
        "ControlPlaneRevision",
        Some("istio-system"),
        "asm-managed",
    )
}

fn asm_opts(sb: &TestSandbox) -> Option<String> {
    sb.sandbox().clusters[0]
        .api
        .get_object("v1", "ConfigMap", Some("istio-system"), "asm-options")
        .map(|cm| {
            cm["data"]["ASM_OPTS"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
}

#[test]
fn seed_command_line_verbatim_installs() {
    let sb = TestSandbox::with(fast("fresh"));
    let (p, l) = project_location(&sb);
    let dir = sb.dir.path().join("asm-out");
    let dir_s = dir.display().to_string();
    // install --mode install --managed -p P -l L -n N --verbose --output_dir DIR --enable-all
    //   --enable-registration --option cni-managed
    let args = strs(&[
        "install",
        "--mode",
        "install",
        "--managed",
        "-p",
        &p,
        "-l",
        &l,
        "-n",
        "cluster-1",
        "--verbose",
        "--output_dir",
        &dir_s,
        "--enable-all",
        "--enable-registration",
        "--option",
        "cni-managed",
    ]);
    let o = asm(&sb, &args);
    assert_success(&o, "seed command line");
    let err = stderr(&o);
    for w in [
        "--output_dir is a deprecated install_asm/asmcli spelling; use -D/--output-dir",
        "--mode install is deprecated",
        "--option cni-managed: fleet automatic management",
    ] {
        assert_eq!(err.matches(w).count(), 1, "one warning {w:?}:\n{err}");
    }
    // --verbose shows request traces.
    assert!(err.contains("GET "), "{err}");
    assert!(stdout(&o).contains("Managed Cloud Service Mesh control plane is ready"));
    assert!(cpr(&sb).is_some());
    for f in ["plan.txt", "plan.json", "asm.log"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    // Converged: the same line again changes nothing.
    let before = sb.mutating_requests().len();
    let o = asm(&sb, &args);
    assert_success(&o, "seed command line, again");
    assert_eq!(sb.mutating_requests().len(), before);
}

#[test]
fn asmcli_spellings_plan_like_the_current_ones_with_one_warning_each() {
    let sb = TestSandbox::with(fast("fresh"));
    let (p, l) = project_location(&sb);
    let canonical = plan_json(&sb, &target(&sb, "cluster-1"), &[]);
    let old = strs(&[
        "install",
        "--managed",
        "--project_id",
        &p,
        "--cluster_location",
        &l,
        "--cluster_name",
        "cluster-1",
        "--fleet_id",
        &p,
        "--enable_gcp_apis",
        "--enable_gcp_iam_roles",
        "--enable_gcp_components",
        "--enable_cluster_labels",
        "--enable_registration",
        "--enable_namespace_creation",
        "--enable_meshconfig_init",
        "--dry_run",
        "-o",
        "json",
    ]);
    let o = asm(&sb, &old);
    assert_success(&o, "asmcli spellings");
    let plan: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(plan["actions"], canonical["actions"]);
    assert_eq!(plan["summary"], canonical["summary"]);
    let err = stderr(&o);
    for flag in [
        "--project_id",
        "--cluster_location",
        "--cluster_name",
        "--fleet_id",
        "--enable_gcp_apis",
        "--enable_gcp_iam_roles",
        "--enable_gcp_components",
        "--enable_cluster_labels",
        "--enable_registration",
        "--enable_namespace_creation",
        "--dry_run",
    ] {
        assert_eq!(
            err.matches(&format!("warning: {flag} is a deprecated"))
                .count(),
            1,
            "{flag}: {err}"
        );
    }
    assert!(err.contains("--enable_meshconfig_init is implied by --managed"));
    // Short forms and the remaining aliases: -e, --enable_all, -v, -D.
    for extra in [
        &["-e"][..],
        &["--enable_all"][..],
        &["--enable-all", "-v"][..],
    ] {
        let mut a = strs(&["install", "--managed"]);
        a.extend(target(&sb, "cluster-1"));
        a.extend(strs(extra));
        a.extend(strs(&["--dry-run", "-o", "json"]));
        let o = asm(&sb, &a);
        assert_success(&o, &format!("{extra:?}"));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["actions"], canonical["actions"], "{extra:?}");
    }
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn kc_and_ctx_reach_the_cluster_through_a_kubeconfig() {
    let sb = TestSandbox::with(fast("installed"));
    let (p, l) = project_location(&sb);
    let kubeconfig = sb
        .env()
        .into_iter()
        .find(|(k, _)| k == "KUBECONFIG")
        .unwrap()
        .1;
    let ctx = sb.sandbox().clusters[0].context_name(&p);
    let mut a = strs(&["install", "--managed"]);
    a.extend(target(&sb, "cluster-1"));
    a.extend(strs(&[
        "--kc",
        &kubeconfig,
        "--ctx",
        &ctx,
        "--enable-all",
        "--dry-run",
        "-o",
        "json",
    ]));
    let o = asm(&sb, &a);
    assert_success(&o, "--kc/--ctx");
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(changes(&v), 0, "{v:#}");
    let err = stderr(&o);
    assert_eq!(err.matches("--kc is a deprecated").count(), 1, "{err}");
    assert_eq!(err.matches("--ctx is a deprecated").count(), 1, "{err}");
    let _ = l;
}

#[test]
fn only_validate_runs_validate() {
    let sb = TestSandbox::with(fast("fresh"));
    let mut a = strs(&["install", "--managed"]);
    a.extend(target(&sb, "cluster-1"));
    a.extend(strs(&["--enable-all", "--only_validate", "-o", "json"]));
    let o = asm(&sb, &a);
    assert_success(&o, "--only_validate");
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["valid"], true, "{v:#}");
    assert!(stderr(&o).contains("--only_validate is deprecated"));
    // Without the enable flags it reports the blocking checks, exit 3, like `asm validate`.
    let mut a = strs(&["install", "--managed"]);
    a.extend(target(&sb, "cluster-1"));
    a.push("--only_validate".into());
    let o = asm(&sb, &a);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stdout(&o).contains("✖ ASM-C201"), "{}", stdout(&o));
    assert!(sb.mutating_requests().is_empty());
}

#[test]
fn only_enable_does_the_prerequisites_and_no_control_plane() {
    let sb = TestSandbox::with(fast("fresh"));
    let t = target(&sb, "cluster-1");
    let plan = plan_json(&sb, &t, &["--only_enable"]);
    let ids: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "fleet/apis",
            "fleet/servicemesh-feature",
            "cluster-1/mesh-id-label",
            "cluster-1/membership"
        ],
        "{plan:#}"
    );
    let mut a = strs(&["install", "--managed"]);
    a.extend(t.clone());
    a.extend(strs(&["--enable-all", "--only-enable", "--yes"]));
    let o = asm(&sb, &a);
    assert_success(&o, "--only-enable");
    assert!(stdout(&o).contains("--only-enable"), "{}", stdout(&o));
    assert!(cpr(&sb).is_none());
    assert!(
        sb.sandbox().clusters[0]
            .api
            .get_object("v1", "Namespace", None, "istio-system")
            .is_none()
    );
    // Nothing left for --only-enable; the full install finishes the job.
    assert_eq!(changes(&plan_json(&sb, &t, &["--only-enable"])), 0);
    let full = plan_json(&sb, &t, &[]);
    let ids: Vec<&str> = full["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "cluster-1/istio-system",
            "cluster-1/management",
            "cluster-1/wait-managed"
        ]
    );
    // Without any --enable-* flag: exit 2, nothing sent.
    let sb = TestSandbox::with(fast("fresh"));
    let mut a = strs(&["install", "--managed"]);
    a.extend(target(&sb, "cluster-1"));
    a.extend(strs(&["--only_enable", "--yes"]));
    let o = asm(&sb, &a);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--enable-*"), "{}", stderr(&o));
    assert!(sb.requests().is_empty());
}

#[test]
fn gcp_cas_puts_the_pool_into_asm_opts() {
    for management in ["automatic", "revision"] {
        // The pool exists: install grants the mesh's roles on it.
        let sb = TestSandbox::with(fast("fresh").set("ca_pool", POOL));
        let mut a = strs(&["install", "--managed"]);
        a.extend(target(&sb, "cluster-1"));
        a.extend(strs(&[
            "--enable-all",
            "--management",
            management,
            "--option",
            "cni-managed",
            "--ca",
            "gcp_cas",
            "--ca_pool",
            POOL,
            "--yes",
        ]));
        let o = asm(&sb, &a);
        assert_success(&o, management);
        let expected = if management == "revision" {
            format!("CNI=on;CA=PRIVATECA;CAAddr={POOL}")
        } else {
            format!("CA=PRIVATECA;CAAddr={POOL}")
        };
        assert_eq!(asm_opts(&sb).as_deref(), Some(expected.as_str()));
        assert!(cpr(&sb).is_some());
        assert_eq!(
            stderr(&o).matches("--ca_pool is a deprecated").count(),
            1,
            "{}",
            stderr(&o)
        );
        // Converged.
        let mut a = a.clone();
        a.pop();
        a.extend(strs(&["--dry-run", "-o", "json"]));
        let o = asm(&sb, &a);
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(changes(&v), 0, "{management}: {v:#}");
    }
}

#[test]
fn unsupported_inputs_exit_2_naming_the_flag_with_zero_requests() {
    let sb = TestSandbox::with(fast("fresh"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--ca", "citadel"], "Citadel is not supported"),
        (vec!["-c", "citadel"], "Citadel is not supported"),
        (vec!["--ca_cert", "ca.pem"], "custom CA"),
        (
            vec!["--ca_key", "k.pem", "--root_cert", "r.pem"],
            "--ca_key, --root_cert",
        ),
        (vec!["--cert_chain", "c.pem"], "custom CA"),
        (vec!["-r", "asm-1112-17"], "revision name"),
        (vec!["--revision_name", "asm-1112-17"], "revision name"),
        (vec!["--custom_overlay", "o.yaml"], "custom overlay"),
        (vec!["--co", "o.yaml"], "custom overlay"),
        (vec!["--ca", "gcp_cas"], "needs --ca-pool"),
        (
            vec!["--ca", "gcp_cas", "--ca_pool", "pool-1"],
            "--ca-pool \"pool-1\" is malformed",
        ),
        (vec!["--ca_pool", POOL], "--ca gcp_cas only"),
        (vec!["--ca", "managed_cas"], "--ca"),
        (vec!["-o", "cni-managed"], "write `--option cni-managed`"),
        (
            vec!["--mode", "upgrade"],
            "--mode \"upgrade\" is not supported",
        ),
        (
            vec!["--mode", "migrate"],
            "incompatible with the managed control plane",
        ),
        (vec!["--detailed-exitcode"], "--detailed-exitcode"),
        (vec!["--only_enable", "--only_validate"], "exclude"),
        (
            vec!["--dry-run", "--plan-out", "/nonexistent-dir/plan.json"],
            "does not exist",
        ),
    ];
    for (extra, needle) in cases {
        let mut a = strs(&["install", "--managed"]);
        a.extend(target(&sb, "cluster-1"));
        a.push("--enable-all".into());
        a.extend(strs(&extra));
        a.push("--yes".into());
        let o = asm(&sb, &a);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(needle),
            "{extra:?} should say {needle:?}: {}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty(), "{extra:?}: {}", stdout(&o));
    }
    assert!(sb.requests().is_empty(), "{:#?}", sb.requests());
}
