//! The credential chain end to end (README "Credentials"): token file → `--key-file` → Application
//! Default Credentials → `gcloud auth print-access-token`, against the sandbox.
//!
//! No credential probe may leave the machine: every command here runs with
//! `GCE_METADATA_HOST` on a closed loopback port, a private `PATH`, `HOME` and gcloud
//! configuration directory, and none of the caller's credential variables.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::install::{fast, target};
use crate::support::{CLOSED_LOOPBACK, TestSandbox, stderr, stdout};

const CREDENTIAL_VARS: [&str; 4] = [
    "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
    "CLOUDSDK_AUTH_ACCESS_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_QUOTA_PROJECT",
];

/// `asm ARGS` with the sandbox environment minus every credential variable, `PATH` set to
/// `path` only (no real gcloud) and a private `HOME`.
fn bare(sb: &TestSandbox, path: &Path) -> Command {
    let env: Vec<(String, String)> = sb.env();
    assert!(
        env.iter()
            .any(|(k, v)| k == "GCE_METADATA_HOST" && v == CLOSED_LOOPBACK),
        "the metadata server must point at a closed loopback port"
    );
    let home = sb.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = sb.asm();
    for var in CREDENTIAL_VARS {
        cmd.env_remove(var);
    }
    cmd.env("PATH", path)
        .env("HOME", &home)
        .env("ASM_RETRY_POLICY", "fast")
        .stdin(Stdio::null());
    cmd
}

fn empty_path(sb: &TestSandbox) -> PathBuf {
    let dir = sb.dir.path().join("empty-bin");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn validate_args(sb: &TestSandbox, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["validate".to_string()];
    args.extend(target(sb, "cluster-1"));
    args.push("--enable-all".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(mut cmd: Command, args: &[String]) -> Output {
    cmd.args(args).output().expect("asm runs")
}

fn key_file(sb: &TestSandbox) -> PathBuf {
    sb.sandbox().key_file_path()
}

fn sa_email(sb: &TestSandbox) -> String {
    format!(
        "asm-installer@{}.iam.gserviceaccount.com",
        sb.sandbox().scenario.project_id
    )
}

/// The `Using credentials: …` line.
fn using_line(o: &Output) -> String {
    stderr(o)
        .lines()
        .find(|l| l.contains("Using credentials:"))
        .unwrap_or_else(|| panic!("no 'Using credentials' line:\n{}", stderr(o)))
        .to_string()
}

/// No token, JWT or key material in either stream.
#[track_caller]
fn assert_no_secrets(sb: &TestSandbox, o: &Output) {
    let key: Value = serde_json::from_str(&std::fs::read_to_string(key_file(sb)).unwrap()).unwrap();
    let pem = key["private_key"].as_str().unwrap();
    let body_line = pem.lines().nth(3).unwrap();
    for (name, text) in [("stdout", stdout(o)), ("stderr", stderr(o))] {
        assert!(!text.contains(sb.sandbox().token()), "token in {name}");
        assert!(!text.contains("ya29."), "token-like text in {name}");
        assert!(!text.contains("eyJ"), "JWT-like text in {name}:\n{text}");
        assert!(!text.contains("PRIVATE KEY"), "key in {name}");
        assert!(!text.contains(body_line), "key material in {name}");
    }
}

#[test]
fn sandbox_writes_a_private_service_account_key() {
    let sb = TestSandbox::start("fresh");
    let exports = sb.sandbox().exports();
    let names: Vec<&str> = exports.iter().map(|(k, _)| k.as_str()).collect();
    let key_pos = names
        .iter()
        .position(|n| *n == "ASM_SANDBOX_KEY_FILE")
        .unwrap();
    assert_eq!(names.last(), Some(&"ASM_SANDBOX_CLUSTERS"));
    assert_eq!(key_pos, names.len() - 2);
    let path = PathBuf::from(&exports[key_pos].1);
    assert_eq!(path, key_file(&sb));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(key["type"], "service_account");
    assert_eq!(key["client_email"], sa_email(&sb).as_str());
    assert_eq!(key["project_id"], sb.sandbox().scenario.project_id.as_str());
    assert!(
        key["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
    assert_eq!(key["client_id"].as_str().unwrap().len(), 21);
    let token_uri = key["token_uri"].as_str().unwrap();
    assert_eq!(
        token_uri,
        format!("http://{}/oauth2/token", sb.sandbox().google_addr)
    );
}

#[test]
fn key_file_end_to_end_validate_and_install() {
    let sb = TestSandbox::with(fast("fresh"));
    let key = key_file(&sb).display().to_string();
    let path = empty_path(&sb);

    let o = run(
        bare(&sb, &path),
        &validate_args(&sb, &["--key-file", &key, "-v"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        using_line(&o),
        format!("Using credentials: --key-file {key} ({})", sa_email(&sb))
    );
    assert!(stderr(&o).contains("GET "), "-v shows request traces");
    assert_no_secrets(&sb, &o);

    // asmcli spellings; the self-signed JWT is also a cluster credential (Kubernetes side).
    let mut args = vec!["install".to_string(), "--managed".into()];
    args.extend(target(&sb, "cluster-1"));
    let email = sa_email(&sb);
    args.extend(["--enable-all", "-k", &key, "-s", &email, "--yes", "-v"].map(String::from));
    let o = run(bare(&sb, &path), &args);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(using_line(&o).contains(&email));
    assert_no_secrets(&sb, &o);
    assert!(
        !sb.mutating_requests().is_empty(),
        "the install changed things"
    );

    let mut dry = vec!["install".to_string(), "--managed".into()];
    dry.extend(target(&sb, "cluster-1"));
    dry.extend(
        [
            "--key_file",
            &key,
            "--service_account",
            &email,
            "--dry-run",
            "-o",
            "json",
        ]
        .map(String::from),
    );
    let o = run(bare(&sb, &path), &dry);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan: Value = serde_json::from_str(&stdout(&o)).expect("one JSON object");
    assert!(!plan.to_string().contains("PRIVATE KEY"));
    assert_no_secrets(&sb, &o);
}

#[test]
fn precedence_token_file_then_key_file_then_adc_then_gcloud() {
    let sb = TestSandbox::with(fast("installed"));
    let key = key_file(&sb).display().to_string();
    let token = sb.sandbox().token_path().display().to_string();
    let missing = sb.dir.path().join("missing.json").display().to_string();
    let (bin, calls) = fake_gcloud(&sb, "exit 1");

    // --access-token-file beats CLOUDSDK_AUTH_ACCESS_TOKEN_FILE (which names no file) and
    // the key file, which is named as ignored.
    let mut cmd = bare(&sb, &bin);
    cmd.env("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", &missing)
        .env("GOOGLE_APPLICATION_CREDENTIALS", &missing);
    let o = run(
        cmd,
        &validate_args(
            &sb,
            &["--access-token-file", &token, "--key-file", &missing],
        ),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        using_line(&o),
        format!("Using credentials: --access-token-file {token} (principal unknown)")
    );
    assert!(
        stderr(&o).contains(&format!("ignoring --key-file {missing}")),
        "{}",
        stderr(&o)
    );

    // CLOUDSDK_AUTH_ACCESS_TOKEN_FILE beats --key-file.
    let mut cmd = bare(&sb, &bin);
    cmd.env("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", &token);
    let o = run(cmd, &validate_args(&sb, &["--key-file", &missing]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(using_line(&o).contains("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE="));

    // --key-file beats GOOGLE_APPLICATION_CREDENTIALS (which names no file).
    let mut cmd = bare(&sb, &bin);
    cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &missing);
    let o = run(cmd, &validate_args(&sb, &["--key-file", &key]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(using_line(&o).contains("--key-file"));

    // ADC beats gcloud: gcloud is on PATH but never called.
    let mut cmd = bare(&sb, &bin);
    cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &key);
    let o = run(cmd, &validate_args(&sb, &[]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        using_line(&o),
        format!(
            "Using credentials: application default credentials (service account key, GOOGLE_APPLICATION_CREDENTIALS={key}) ({})",
            sa_email(&sb)
        )
    );
    assert_no_secrets(&sb, &o);
    assert_eq!(calls_of(&calls), Vec::<String>::new(), "gcloud was run");
}

#[test]
fn adc_well_known_file_in_the_gcloud_config_dir() {
    let sb = TestSandbox::with(fast("installed"));
    // CLOUDSDK_CONFIG (set by the test support) is where gcloud keeps its ADC file.
    let gcloud_dir = sb.dir.path().join("gcloud");
    std::fs::create_dir_all(&gcloud_dir).unwrap();
    let adc = gcloud_dir.join("application_default_credentials.json");
    std::fs::copy(key_file(&sb), &adc).unwrap();
    let o = run(bare(&sb, &empty_path(&sb)), &validate_args(&sb, &["-v"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        using_line(&o),
        format!(
            "Using credentials: application default credentials (service account key, {}) ({})",
            adc.display(),
            sa_email(&sb)
        )
    );
    assert_no_secrets(&sb, &o);
}

#[test]
fn malformed_or_mismatched_key_files_exit_2_naming_the_file() {
    let sb = TestSandbox::start("installed");
    let path = empty_path(&sb);
    let bad = sb.dir.path().join("bad-key.json");
    std::fs::write(&bad, "{\"type\": \"service_account\", ").unwrap();
    let o = run(
        bare(&sb, &path),
        &validate_args(&sb, &["--key-file", &bad.display().to_string()]),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("ASM-E405") && err.contains("bad-key.json"),
        "{err}"
    );
    assert!(
        sb.requests().is_empty(),
        "no request with broken credentials"
    );

    // A key whose private key is not a key: named, without quoting the key.
    let mut key: Value =
        serde_json::from_str(&std::fs::read_to_string(key_file(&sb)).unwrap()).unwrap();
    key["private_key"] =
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
            .into();
    let broken = sb.dir.path().join("broken-key.json");
    std::fs::write(&broken, key.to_string()).unwrap();
    let o = run(
        bare(&sb, &path),
        &validate_args(&sb, &["--key-file", &broken.display().to_string()]),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("broken-key.json"), "{err}");
    assert!(!err.contains("c2VjcmV0"), "{err}");

    // --service-account must match the key's client_email.
    let key = key_file(&sb).display().to_string();
    let o = run(
        bare(&sb, &path),
        &validate_args(
            &sb,
            &[
                "--key-file",
                &key,
                "--service-account",
                "someone-else@p.iam.gserviceaccount.com",
            ],
        ),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("ASM-E406"), "{}", stderr(&o));
    assert!(stderr(&o).contains(&sa_email(&sb)));

    // --service-account alone is a usage error.
    let o = run(
        bare(&sb, &path),
        &validate_args(&sb, &["-s", "sa@p.iam.gserviceaccount.com"]),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(sb.requests().is_empty());
}

/// A fake `gcloud` in its own directory: logs each call's arguments, then runs `body`
/// (shell builtins only: `PATH` holds nothing else).
fn fake_gcloud(sb: &TestSandbox, body: &str) -> (PathBuf, PathBuf) {
    let bin = sb.dir.path().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = sb.dir.path().join("gcloud-calls.txt");
    let script = bin.join("gcloud");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\n{body}\n", calls.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (bin, calls)
}

fn calls_of(calls: &Path) -> Vec<String> {
    std::fs::read_to_string(calls)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn gcloud_fallback_prints_a_token_and_nothing_else_is_called() {
    let sb = TestSandbox::with(fast("installed"));
    let body = format!(
        "case \"$*\" in\n  'auth print-access-token') echo '{}' ;;\n  'config get-value account') echo 'tester@example.com' ;;\n  *) exit 3 ;;\nesac",
        sb.sandbox().token()
    );
    let (bin, calls) = fake_gcloud(&sb, &body);
    let o = run(bare(&sb, &bin), &validate_args(&sb, &["-v"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        using_line(&o),
        "Using credentials: gcloud auth print-access-token (tester@example.com)"
    );
    assert_no_secrets(&sb, &o);
    assert_eq!(
        calls_of(&calls),
        vec!["auth print-access-token", "config get-value account"]
    );

    // A failing gcloud: exit 2, every source tried, with gcloud's own message whole.
    std::fs::remove_file(&calls).unwrap();
    let (bin, _) = fake_gcloud(
        &sb,
        "echo 'ERROR: (gcloud.auth.print-access-token) You do not currently have an active account selected.' >&2\necho 'Please run:' >&2\necho >&2\necho '  $ gcloud auth login' >&2\nexit 1",
    );
    let o = run(bare(&sb, &bin), &validate_args(&sb, &[]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("error[ASM-E403]"), "{err}");
    let gcloud_line = tried_lines(&err).pop().unwrap();
    assert!(
        gcloud_line.contains("`gcloud auth print-access-token` failed (exit status: 1)"),
        "{err}"
    );
    for line in [
        "ERROR: (gcloud.auth.print-access-token) You do not currently have an active account selected.",
        "Please run:",
        "$ gcloud auth login",
    ] {
        assert!(
            err.contains(&format!("       {line}\n")),
            "{line:?} not in:\n{err}"
        );
    }
    assert_eq!(calls_of(&calls), vec!["auth print-access-token"]);
}

#[test]
fn no_credentials_at_all_fails_fast_without_leaving_the_machine() {
    let sb = TestSandbox::start("installed");
    let started = Instant::now();
    let o = run(bare(&sb, &empty_path(&sb)), &validate_args(&sb, &[]));
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("error[ASM-E403]: no Google credentials work; tried, in order:\n"),
        "{err}"
    );
    let adc = sb
        .dir
        .path()
        .join("gcloud/application_default_credentials.json");
    let expected = [
        ("--access-token-file", "flag not given".to_string()),
        ("$CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", "not set".into()),
        ("$CLOUDSDK_AUTH_ACCESS_TOKEN", "not set".into()),
        ("--key-file", "flag not given".into()),
        ("$GOOGLE_APPLICATION_CREDENTIALS", "not set".into()),
        (
            &*format!("gcloud's ADC file {}", adc.display()),
            "no such file (written by `gcloud auth application-default login`)".into(),
        ),
        (
            &*format!("metadata server {CLOSED_LOOPBACK}"),
            "did not answer (asm is not running on Google Cloud)".into(),
        ),
        ("gcloud", "not found on PATH".into()),
    ];
    let lines = tried_lines(&err);
    assert_eq!(lines.len(), expected.len(), "{err}");
    for (i, ((source, why), line)) in expected.iter().zip(&lines).enumerate() {
        let rest = line
            .strip_prefix(&format!("{}. {source}: ", i + 1))
            .unwrap_or_else(|| panic!("line {} is not {source}: {line}", i + 1));
        assert_eq!(rest.trim(), why, "{line}");
    }
    let hint = err.lines().find(|l| l.starts_with("  hint: ")).unwrap();
    for fix in [
        "gcloud auth login",
        "--key-file",
        "--access-token-file",
        "workload identity federation",
    ] {
        assert!(hint.contains(fix), "the hint names {fix}: {hint}");
    }
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(sb.requests().is_empty());
}

/// The numbered lines of an `ASM-E403` report, without their indentation.
fn tried_lines(err: &str) -> Vec<String> {
    err.lines()
        .map(str::trim_start)
        .filter(|l| {
            l.split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
        .map(str::to_string)
        .collect()
}

/// A new user's machine: gcloud installed but never logged in (an empty gcloud
/// configuration directory), no other credentials. The report names the real gcloud's
/// own message after every other source.
#[test]
fn real_gcloud_not_logged_in_is_reported_after_every_other_source() {
    if !crate::support::tool_available("gcloud") {
        return;
    }
    let sb = TestSandbox::start("installed");
    let gcloud = Command::new("sh")
        .args(["-c", "command -v gcloud"])
        .output()
        .unwrap();
    let gcloud_dir = PathBuf::from(stdout(&gcloud).trim())
        .parent()
        .unwrap()
        .to_path_buf();
    // gcloud itself needs python and coreutils from the usual places.
    let path = format!("{}:/usr/bin:/bin", gcloud_dir.display());
    let mut cmd = bare(&sb, Path::new(&path));
    cmd.env("CLOUDSDK_CONFIG", sb.dir.path().join("empty-gcloud"));
    std::fs::create_dir_all(sb.dir.path().join("empty-gcloud")).unwrap();
    let o = run(cmd, &validate_args(&sb, &[]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    let lines = tried_lines(&err);
    assert_eq!(lines.len(), 8, "{err}");
    assert!(
        lines[6].starts_with(&format!("7. metadata server {CLOSED_LOOPBACK}")),
        "{err}"
    );
    assert!(
        lines[7].starts_with(&format!("8. gcloud ({}", gcloud_dir.display())),
        "{err}"
    );
    assert!(
        err.contains("You do not currently have an active account selected."),
        "gcloud's own message: {err}"
    );
    assert!(err.contains("$ gcloud auth login"), "{err}");
    assert!(sb.requests().is_empty());
}
