//! Test support: a sandbox running in-process, and builders for the commands run against it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use asm_sim::request_log::{self, RequestRecord};
use asm_sim::{Sandbox, SimConfig};

/// A sandbox served by its own tokio runtime for the duration of a test.
pub struct TestSandbox {
    pub sandbox: Option<Sandbox>,
    runtime: tokio::runtime::Runtime,
    /// Holds the request log, the gcloud config dir and anything else a test writes.
    pub dir: tempfile::TempDir,
}

impl TestSandbox {
    /// Starts `scenario` with its defaults (and a request log).
    pub fn start(scenario: &str) -> TestSandbox {
        TestSandbox::with(SimConfig::new(scenario))
    }

    /// Starts a sandbox with `config`; the request log goes to `self.request_log_path()`.
    pub fn with(mut config: SimConfig) -> TestSandbox {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        if config.request_log.is_none() {
            config.request_log = Some(dir.path().join("requests.jsonl"));
        }
        let sandbox = runtime
            .block_on(Sandbox::start(config))
            .expect("sandbox starts");
        TestSandbox {
            sandbox: Some(sandbox),
            runtime,
            dir,
        }
    }

    pub fn sandbox(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("sandbox running")
    }

    /// Runs a future on the sandbox's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    pub fn request_log_path(&self) -> PathBuf {
        self.dir.path().join("requests.jsonl")
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        request_log::read(&self.request_log_path()).unwrap_or_default()
    }

    /// Requests that could have changed something.
    pub fn mutating_requests(&self) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(RequestRecord::is_mutating)
            .collect()
    }

    /// The mutating requests that are a command's own steps: all but the renewals of the
    /// cluster lock (`PUT …/leases/asm-lock`), whose number depends on how long a run takes,
    /// not on what it does. A lock is taken with POST and given back with DELETE.
    pub fn writes(&self) -> Vec<RequestRecord> {
        self.mutating_requests()
            .into_iter()
            .filter(|r| {
                let path = r.path.split('?').next().unwrap_or_default();
                !(r.method == "PUT" && path.ends_with("/leases/asm-lock"))
            })
            .collect()
    }

    /// The sandbox exports plus a private gcloud configuration directory, so that no test
    /// touches the user's gcloud config, and a closed metadata-server address, so that no
    /// credential probe leaves the machine.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.sandbox().exports();
        let gcloud_dir = self.dir.path().join("gcloud");
        std::fs::create_dir_all(&gcloud_dir).expect("gcloud config dir");
        env.push(("CLOUDSDK_CONFIG".into(), gcloud_dir.display().to_string()));
        env.push((
            "CLOUDSDK_CORE_PROJECT".into(),
            self.sandbox().scenario.project_id.clone(),
        ));
        env.push(("CLOUDSDK_CORE_DISABLE_PROMPTS".into(), "1".into()));
        env.push((
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK".into(),
            "true".into(),
        ));
        env.push((
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING".into(),
            "true".into(),
        ));
        env.push(("GCE_METADATA_HOST".into(), CLOSED_LOOPBACK.into()));
        env.push(("GCE_METADATA_IP".into(), CLOSED_LOOPBACK.into()));
        env.push(("NO_COLOR".into(), "1".into()));
        env
    }

    /// A command for `program` with the sandbox environment.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.env());
        cmd.env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy");
        cmd
    }

    /// A command running the asm binary under test with the sandbox environment.
    pub fn asm(&self) -> Command {
        self.command(env!("CARGO_BIN_EXE_asm"))
    }

    /// `gcloud ARGS` in the sandbox, or `None` when gcloud is not installed (outside CI).
    pub fn gcloud(&self, args: &[&str]) -> Option<Output> {
        if !tool_available("gcloud") {
            return None;
        }
        Some(
            self.command("gcloud")
                .args(args)
                .output()
                .expect("gcloud runs"),
        )
    }

    /// `kubectl ARGS` in the sandbox, or `None` when kubectl is not installed (outside CI).
    pub fn kubectl(&self, args: &[&str]) -> Option<Output> {
        if !tool_available("kubectl") {
            return None;
        }
        Some(
            self.command("kubectl")
                .args(args)
                .output()
                .expect("kubectl runs"),
        )
    }
}

impl Drop for TestSandbox {
    fn drop(&mut self) {
        if let Some(s) = self.sandbox.take() {
            s.shutdown();
        }
    }
}

/// A loopback address where nothing listens (port 9 is "discard", never served here).
pub const CLOSED_LOOPBACK: &str = "127.0.0.1:9";

/// Whether an external tool exists: the fidelity tests are the point of the simulator, so a
/// missing kubectl, gcloud or `script` fails the test instead of skipping it (install it, see
/// `.ci/run`). Always true when it returns.
pub fn tool_available(tool: &str) -> bool {
    let found = Command::new(tool).arg("--help").output().is_ok();
    assert!(
        found,
        "{tool} is required by this test but is not installed (see .ci/run for how CI installs it)"
    );
    found
}

/// stdout of a finished command as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr of a finished command as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and shows both streams otherwise.
#[track_caller]
pub fn assert_success(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

/// Path of a file in the golden exchanges (tests/k8s-golden, recorded from a real kube-apiserver v1.32.6).
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/k8s-golden")
}
