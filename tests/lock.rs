//! One asm run per cluster at a time: the Lease `kube-system/asm-lock` (src/kube/lease.rs).
//! Another run's lock stops install naming its holder (exit 6) or is waited for with
//! `--lock-timeout`; a dead holder on this host is taken over at once; dry runs and plans
//! with nothing to do take no lock; a finished run gives its lock back.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::install::{fast, install, target};
use crate::support::{TestSandbox, assert_success, stderr};

/// Creates `kube-system/asm-lock` on cluster-1 held by `holder`, renewed `ago_s` seconds ago
/// for 15 s (with the real kubectl).
fn plant_lease(sb: &TestSandbox, holder: &str, ago_s: i64) {
    plant_lease_for(sb, holder, ago_s, 15);
}

/// The same, lasting `duration_s` seconds.
fn plant_lease_for(sb: &TestSandbox, holder: &str, ago_s: i64, duration_s: u32) {
    let renewed = Timestamp::now() - SignedDuration::from_secs(ago_s);
    let manifest = format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: asm-lock, namespace: kube-system}}\n\
         spec: {{holderIdentity: {holder}, leaseDurationSeconds: {duration_s}, acquireTime: \"{renewed}\", renewTime: \"{renewed}\"}}\n"
    );
    let path = sb.sandbox().state_dir().join("lease.yaml");
    std::fs::write(&path, manifest).unwrap();
    let o = sb
        .kubectl(&["create", "-f", path.to_str().unwrap()])
        .expect("kubectl is installed");
    assert_success(&o, "kubectl create lease");
}

fn lease_requests(sb: &TestSandbox) -> Vec<String> {
    sb.requests()
        .into_iter()
        .filter(|r| r.path.contains("/leases"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

fn run_install(sb: &TestSandbox, extra: &[&str]) -> Output {
    let t = target(sb, "cluster-1");
    install(sb, &t, extra)
}

#[test]
fn a_lock_held_elsewhere_stops_install_with_exit_6_naming_the_holder_and_changing_nothing() {
    let sb = TestSandbox::with(fast("fresh"));
    plant_lease(&sb, "build-agent-7/4242", 0);
    let before = sb.mutating_requests().len();
    let o = run_install(&sb, &["--yes"]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("error[ASM-E480]"), "{err}");
    assert!(err.contains("build-agent-7/4242"), "{err}");
    assert!(err.contains("--lock-timeout"), "{err}");
    assert_eq!(
        sb.mutating_requests().len(),
        before,
        "{:#?}",
        sb.mutating_requests()
    );
}

#[test]
fn lock_timeout_waits_for_an_expiring_lease_then_installs() {
    let sb = TestSandbox::with(fast("fresh"));
    // Held for 10 s from now: install reaches the lock well before (its reads take ~1 s).
    plant_lease_for(&sb, "build-agent-7/4242", 0, 10);
    let o = run_install(&sb, &["--yes", "--lock-timeout", "60s"]);
    assert_success(&o, "install waiting for the lock");
    assert!(
        stderr(&o).contains("Waiting for the lock of cluster"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_dead_holder_on_this_host_is_taken_over_without_waiting() {
    let sb = TestSandbox::with(fast("fresh"));
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    plant_lease(&sb, &format!("{}/{dead}", this_host()), 0);
    let o = run_install(&sb, &["--yes"]);
    assert_success(&o, "install over a dead holder's lock");
    assert!(
        !stderr(&o).contains("Waiting for the lock"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn dry_run_and_a_plan_with_nothing_to_do_take_no_lock() {
    let sb = TestSandbox::with(fast("installed"));
    let o = run_install(&sb, &["--dry-run"]);
    assert_success(&o, "dry run");
    let o = run_install(&sb, &["--yes"]);
    assert_success(&o, "nothing to do");
    assert_eq!(lease_requests(&sb), Vec::<String>::new());
}

#[test]
fn a_finished_install_took_the_lock_and_gave_it_back() {
    let sb = TestSandbox::with(fast("fresh"));
    let o = run_install(&sb, &["--yes"]);
    assert_success(&o, "install");
    let leases = lease_requests(&sb);
    assert!(
        leases.iter().any(|r| r.starts_with("POST ")),
        "the lease was created: {leases:#?}"
    );
    assert!(
        leases.iter().any(|r| r.starts_with("DELETE ")),
        "the lease was deleted: {leases:#?}"
    );
    let o = sb
        .kubectl(&["get", "lease", "asm-lock", "-n", "kube-system"])
        .unwrap();
    assert!(!o.status.success(), "the lease is gone");
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));
}

#[test]
fn a_bad_lock_timeout_is_exit_2_before_any_request() {
    let sb = TestSandbox::with(fast("fresh"));
    let o = run_install(&sb, &["--yes", "--lock-timeout", "soon"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--lock-timeout"), "{}", stderr(&o));
    assert!(sb.requests().is_empty(), "{:#?}", sb.requests());
}

#[test]
fn a_second_install_on_the_same_cluster_stops_naming_the_first_runs_process() {
    // The first run waits ~3 s for its control plane while holding the lock.
    let sb = TestSandbox::with(fast("fresh").set("timing.cpr_ready_ms", "3000"));
    let t = target(&sb, "cluster-1");
    let mut args = vec!["install".to_string(), "--managed".into()];
    args.extend(t.iter().cloned());
    args.extend(["--enable-all".into(), "--yes".into()]);
    let mut first = sb
        .asm()
        .env("ASM_RETRY_POLICY", "fast")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !lease_requests(&sb).iter().any(|r| r.starts_with("POST ")) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the first run never took the lock"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = run_install(&sb, &["--yes"]);
    let first_ok = first.wait().unwrap().success();
    assert_eq!(second.status.code(), Some(6), "{}", stderr(&second));
    let holder = format!("{}/{}", this_host(), first.id());
    assert!(stderr(&second).contains(&holder), "{}", stderr(&second));
    assert!(first_ok, "the first run completes");
}

#[test]
fn create_mesh_stops_at_a_lock_held_elsewhere_and_waits_with_lock_timeout() {
    let sb = TestSandbox::with(fast("fleet-2"));
    plant_lease(&sb, "build-agent-7/4242", 10);
    let mut args = vec!["create-mesh".to_string()];
    args.extend(crate::install::all_clusters(&sb));
    args.push("--yes".into());
    let o = crate::install::asm(&sb, &args);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(stderr(&o).contains("build-agent-7/4242"), "{}", stderr(&o));
    assert!(
        !sb.mutating_requests()
            .iter()
            .any(|r| r.path.contains("/secrets")),
        "no secret was written while locked"
    );
    args.extend(["--lock-timeout".into(), "60s".into()]);
    let o = crate::install::asm(&sb, &args);
    assert_success(&o, "create-mesh waiting for the lock");
}

/// Runs `asm COMMAND -p -l -n cluster-1 EXTRA --yes` and expects exit 6 naming the planted
/// holder, with no request that writes anything but leases.
fn stops_at_the_lock(sb: &TestSandbox, command: &str, extra: &[&str]) {
    let before = sb.mutating_requests().len();
    let mut all = extra.to_vec();
    all.push("--yes");
    let o = crate::migrate::run(sb, command, &all);
    assert_eq!(o.status.code(), Some(6), "{command}: {}", stderr(&o));
    assert!(
        stderr(&o).contains("build-agent-7/4242"),
        "{command}: {}",
        stderr(&o)
    );
    let writes: Vec<String> = sb.mutating_requests()[before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "{command} wrote: {writes:#?}");
}

#[test]
fn enable_dataplane_and_install_gateway_stop_at_a_lock_held_elsewhere() {
    let sb = crate::enable_dataplane::with_workloads(fast("installed"));
    plant_lease(&sb, "build-agent-7/4242", 0);
    stops_at_the_lock(&sb, "enable-dataplane", &["--namespace", "shop"]);
    stops_at_the_lock(
        &sb,
        "install-gateway",
        &["--namespace", "gw", "--enable-namespace-creation"],
    );
}

#[test]
fn migrate_stops_at_a_lock_held_elsewhere() {
    let sb = crate::migrate::installed(&[]);
    plant_lease(&sb, "build-agent-7/4242", 0);
    stops_at_the_lock(&sb, "migrate", &["--all-namespaces"]);
}
