//! The documentation runs: the README's shell blocks marked `<!-- tested -->` (against the
//! sandbox they start themselves) or `<!-- tested: sandbox SCENARIO -->` (with `PROJECT`,
//! `LOCATION` and `CLUSTER` naming a cluster of a sandbox started here), and the CI recipes
//! of docs/ci.md, step by step, so that the docs cannot rot.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_yaml::Value;

use crate::install::fast;
use crate::support::{CLOSED_LOOPBACK, TestSandbox, tool_available};

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// The fenced blocks right after a `<!-- tested… -->` line: (marker text, fence info, body).
fn marked_blocks(markdown: &str) -> Vec<(String, String, String)> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(marker) = line
            .trim()
            .strip_prefix("<!-- tested")
            .and_then(|m| m.strip_suffix("-->"))
        else {
            continue;
        };
        let fence = lines
            .get(i + 1)
            .and_then(|l| l.strip_prefix("```"))
            .unwrap_or_else(|| panic!("line {}: a marker must precede a ``` fence", i + 1));
        let body: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| !l.starts_with("```"))
            .copied()
            .collect();
        out.push((
            marker.trim_start_matches(':').trim().to_string(),
            fence.trim().to_string(),
            body.join("\n") + "\n",
        ));
    }
    out
}

/// The directory of the asm under test, put first on `PATH` in place of an installed asm.
fn asm_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_asm"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn path_with_asm() -> String {
    format!(
        "{}:{}",
        asm_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// What a script run left: exit code and both streams.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `script` with `interpreter` in `cwd`, with exactly `env`, in its own process group
/// (killed whole after `timeout`, background jobs included). Streams go to files, so a
/// background process holding them cannot block the test.
fn run_script(
    interpreter: &[&str],
    script: &str,
    cwd: &Path,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script");
    std::fs::write(&file, script).unwrap();
    let out = dir.path().join("stdout");
    let err = dir.path().join("stderr");
    // `bash -c` takes the script itself, any other interpreter the file.
    let last = if interpreter.last() == Some(&"-c") {
        std::ffi::OsString::from(script)
    } else {
        file.clone().into_os_string()
    };
    let mut child = Command::new(interpreter[0])
        .args(&interpreter[1..])
        .arg(last)
        .current_dir(cwd)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > timeout {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever the outcome, nothing of the script survives it.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let ran = Ran {
        code: status.and_then(|s| s.code()),
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    };
    assert!(
        status.is_some(),
        "timed out after {timeout:?}:\n{script}\nstdout:\n{}\nstderr:\n{}",
        ran.stdout,
        ran.stderr
    );
    ran
}

#[track_caller]
fn assert_ran(ran: &Ran, what: &str) {
    assert_eq!(
        ran.code,
        Some(0),
        "{what} failed\nstdout:\n{}\nstderr:\n{}",
        ran.stdout,
        ran.stderr
    );
}

/// The environment of a script without a sandbox of ours: `PATH` with the asm under test,
/// a private `HOME` and gcloud configuration, no credentials, the metadata server closed.
fn bare_env(home: &Path) -> BTreeMap<String, String> {
    let gcloud = home.join("gcloud");
    std::fs::create_dir_all(&gcloud).unwrap();
    [
        ("PATH", path_with_asm()),
        ("HOME", home.display().to_string()),
        ("CLOUDSDK_CONFIG", gcloud.display().to_string()),
        ("CLOUDSDK_CORE_DISABLE_PROMPTS", "1".into()),
        ("GCE_METADATA_HOST", CLOSED_LOOPBACK.into()),
        ("GCE_METADATA_IP", CLOSED_LOOPBACK.into()),
        ("ASM_RETRY_POLICY", "fast".into()),
        ("NO_COLOR", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A sandbox's environment (exports, private gcloud directory, closed metadata server) with
/// the asm under test first on `PATH`.
fn sandbox_env(sb: &TestSandbox) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = sb.env().into_iter().collect();
    env.insert("PATH".into(), path_with_asm());
    env.insert("HOME".into(), sb.dir.path().display().to_string());
    env.insert("ASM_RETRY_POLICY".into(), "fast".into());
    env
}

/// `PROJECT/LOCATION/NAME` of the sandbox's first cluster.
fn first_cluster(sb: &TestSandbox) -> (String, String, String) {
    let s = sb.sandbox();
    (
        s.scenario.project_id.clone(),
        s.scenario.location().to_string(),
        s.clusters[0].name.clone(),
    )
}

/// Nothing is left to change on the sandbox's first cluster (the docs' install happened).
#[track_caller]
fn assert_installed(sb: &TestSandbox) {
    let (p, l, n) = first_cluster(sb);
    let out = sb
        .asm()
        .env("ASM_RETRY_POLICY", "fast")
        .args([
            "install",
            "--managed",
            "--enable-all",
            "--dry-run",
            "--detailed-exitcode",
        ])
        .args(["-p", &p, "-l", &l, "-n", &n])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "changes left after the docs' apply:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn readme_blocks_marked_tested_run() {
    assert!(tool_available("bash"));
    let blocks = marked_blocks(&repo_file("README.md"));
    let mut ran = 0;
    for (marker, fence, body) in &blocks {
        assert_eq!(fence, "sh", "only sh blocks are marked: {body}");
        let work = tempfile::tempdir().unwrap();
        let (env, sandbox) = match marker.split_whitespace().collect::<Vec<_>>()[..] {
            [] => {
                for tool in ["gcloud", "man"] {
                    if body.contains(&format!("{tool} ")) {
                        assert!(tool_available(tool), "the block runs {tool}");
                    }
                }
                (bare_env(work.path()), None)
            }
            ["sandbox", scenario] => {
                let sb = TestSandbox::with(fast(scenario));
                let mut env = sandbox_env(&sb);
                let (p, l, n) = first_cluster(&sb);
                env.insert("PROJECT".into(), p);
                env.insert("LOCATION".into(), l);
                env.insert("CLUSTER".into(), n);
                (env, Some(sb))
            }
            _ => panic!("unknown marker {marker:?}"),
        };
        // Should the block fail half-way, a sandbox it started in the background stops too.
        let script =
            format!("trap 'kill \"${{ASM_SANDBOX_PID:-}}\" 2>/dev/null || true' EXIT\n{body}");
        let r = run_script(
            &["bash", "--noprofile", "--norc", "-eo", "pipefail"],
            &script,
            work.path(),
            &env,
            Duration::from_secs(120),
        );
        assert_ran(&r, &format!("README block\n{body}"));
        if let Some(sb) = &sandbox {
            assert_installed(sb);
        }
        ran += 1;
    }
    // The sandbox block (serve, validate, kill, exec), the install block and the
    // completions/man block.
    assert_eq!(ran, 3, "{blocks:?}");
}

/// The README's `eval "$(asm sandbox serve --scenario fresh &)"` returns (serve closes its
/// stdout after the exports), the shell then reaches the sandbox, and `kill` stops it.
#[test]
fn readme_eval_of_a_background_serve_returns_and_the_sandbox_answers() {
    let readme = repo_file("README.md");
    let line = r#"eval "$(asm sandbox serve --scenario fresh &)""#;
    assert!(readme.contains(line), "the README no longer has {line}");
    let work = tempfile::tempdir().unwrap();
    let script = format!(
        "{line}\n\
         echo \"pid=$ASM_SANDBOX_PID\"\n\
         asm validate --managed -p \"$ASM_SANDBOX_PROJECT\" -l \"$ASM_SANDBOX_LOCATION\" \
         -n cluster-1 --enable-all -o json\n\
         kill \"$ASM_SANDBOX_PID\"\n"
    );
    let started = Instant::now();
    let r = run_script(
        &["bash", "-c"],
        &script,
        work.path(),
        &bare_env(work.path()),
        Duration::from_secs(60),
    );
    assert_ran(&r, "eval of a background serve");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let pid: u32 = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no ASM_SANDBOX_PID:\n{}", r.stdout));
    let report: serde_json::Value =
        serde_json::from_str(&r.stdout[r.stdout.find('{').unwrap()..]).unwrap();
    assert_eq!(report["valid"], true, "{report:#}");
    // `kill` stopped the sandbox (it is not a child of ours: poll /proc).
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while proc.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!proc.exists(), "sandbox {pid} still runs after kill");
}

/// One step of a CI recipe: where it is, its shell script, its own environment.
struct Step {
    name: String,
    script: String,
    env: BTreeMap<String, String>,
}

fn yaml_env(v: &Value) -> BTreeMap<String, String> {
    v.as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other).unwrap().trim().to_string(),
                    };
                    (k.as_str().unwrap().to_string(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `steps` in `work` with `base` env; steps named in `substituted` are skipped and
/// returned; `outputs` receives each step's `$GITHUB_OUTPUT` lines.
fn run_steps(
    steps: &[Step],
    substituted: &[&str],
    work: &Path,
    base: &BTreeMap<String, String>,
    interpreter: fn(&str) -> Vec<&'static str>,
) -> (usize, Vec<String>, BTreeMap<String, String>) {
    let mut ran = 0;
    let mut skipped = Vec::new();
    let mut outputs = BTreeMap::new();
    for step in steps {
        if substituted.contains(&step.name.as_str()) {
            skipped.push(step.name.clone());
            continue;
        }
        let output_file = work.join(format!(".github_output_{ran}"));
        std::fs::write(&output_file, "").unwrap();
        let mut env = base.clone();
        env.extend(step.env.clone());
        env.insert("GITHUB_OUTPUT".into(), output_file.display().to_string());
        let r = run_script(
            &interpreter(&step.script),
            &step.script,
            work,
            &env,
            Duration::from_secs(120),
        );
        assert_ran(&r, &format!("step {}:\n{}", step.name, step.script));
        for line in std::fs::read_to_string(&output_file).unwrap().lines() {
            if let Some((k, v)) = line.split_once('=') {
                outputs.insert(format!("{}.{k}", step.name), v.to_string());
            }
        }
        ran += 1;
    }
    (ran, skipped, outputs)
}

/// GitHub runs `run:` with `bash -e {0}`.
fn github_shell(_script: &str) -> Vec<&'static str> {
    vec!["bash", "--noprofile", "--norc", "-eo", "pipefail"]
}

/// Cloud Build runs a `script:` by its shebang, else with `sh`.
fn cloudbuild_shell(script: &str) -> Vec<&'static str> {
    if script.starts_with("#!/usr/bin/env bash") {
        vec!["bash"]
    } else {
        assert!(!script.starts_with("#!"), "unexpected shebang: {script}");
        vec!["sh", "-e"]
    }
}

fn ci_blocks() -> BTreeMap<String, Value> {
    let blocks = marked_blocks(&repo_file("docs/ci.md"));
    let mut out = BTreeMap::new();
    for (marker, fence, body) in blocks {
        assert_eq!(fence, "yaml");
        out.insert(marker, serde_yaml::from_str(&body).unwrap());
    }
    out
}

#[test]
fn github_actions_recipe_plans_then_applies_against_the_sandbox() {
    let blocks = ci_blocks();
    let workflow = &blocks["github-workflow"];
    let sb = TestSandbox::with(fast("fresh"));
    let (p, l, n) = first_cluster(&sb);
    let work = tempfile::tempdir().unwrap();
    let mut base = sandbox_env(&sb);
    let doc_env = yaml_env(&workflow["env"]);
    assert!(doc_env.contains_key("CLUSTER"), "{doc_env:?}");
    base.extend(doc_env);
    // The sandbox's cluster in place of the example one.
    base.insert("CLUSTER".into(), format!("{p}/{l}/{n}"));

    let steps_of = |job: &str| -> Vec<Step> {
        workflow["jobs"][job]["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|s| s.get("run").is_some())
            .map(|s| Step {
                name: s["id"].as_str().or(s["name"].as_str()).unwrap().to_string(),
                script: s["run"].as_str().unwrap().to_string(),
                env: yaml_env(&s["env"]),
            })
            .collect()
    };
    // Google authentication is a `uses:` step (no `run:`); the sandbox's token stands in.
    let (ran_plan, skipped_plan, outputs) = run_steps(
        &steps_of("plan"),
        &["Install asm"],
        work.path(),
        &base,
        github_shell,
    );
    assert_eq!(
        outputs.get("plan.changes").map(String::as_str),
        Some("true")
    );
    assert!(work.path().join("plan.json").is_file());
    assert!(
        std::fs::read_to_string(work.path().join("comment.md"))
            .unwrap()
            .contains("### asm plan")
    );
    assert_eq!(
        workflow["jobs"]["apply"]["if"].as_str(),
        Some("needs.plan.outputs.changes == 'true'")
    );
    // The artifact: apply runs in the same directory, where plan.json is.
    let (ran_apply, skipped_apply, _) = run_steps(
        &steps_of("apply"),
        &["Install asm"],
        work.path(),
        &base,
        github_shell,
    );
    assert_eq!((ran_plan, ran_apply), (1, 1), "the Plan and Apply steps");
    assert_eq!(skipped_plan, ["Install asm"]);
    assert_eq!(skipped_apply, ["Install asm"]);
    assert_installed(&sb);
}

#[test]
fn cloud_build_recipe_plans_then_applies_against_the_sandbox() {
    let blocks = ci_blocks();
    assert_eq!(blocks.len(), 3, "{:?}", blocks.keys());
    let sb = TestSandbox::with(fast("fresh"));
    let (p, l, n) = first_cluster(&sb);
    let work = tempfile::tempdir().unwrap();
    let mut base = sandbox_env(&sb);
    for (k, v) in [
        ("_CLUSTER", format!("{p}/{l}/{n}")),
        ("_PLAN_BUCKET", "unused-in-the-test".into()),
        ("_PR_NUMBER", "1".into()),
        ("_ASM_GIT", "unused-in-the-test".into()),
        ("PROJECT_ID", p.clone()),
    ] {
        base.insert(k.into(), v);
    }
    let mut ran = Vec::new();
    for (config, substituted) in [
        ("cloudbuild-plan", vec!["install-asm"]),
        // The plan comes from the same directory instead of the bucket.
        ("cloudbuild-apply", vec!["install-asm", "fetch-plan"]),
    ] {
        let build = &blocks[config];
        // Without it the scripts would not see the substitutions as variables.
        assert_eq!(
            build["options"]["automapSubstitutions"].as_bool(),
            Some(true)
        );
        let steps: Vec<Step> = build["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|s| Step {
                name: s["id"].as_str().unwrap().to_string(),
                script: s["script"].as_str().unwrap().to_string(),
                env: BTreeMap::new(),
            })
            .collect();
        let (count, skipped, _) =
            run_steps(&steps, &substituted, work.path(), &base, cloudbuild_shell);
        assert_eq!(skipped, substituted);
        ran.push(count);
        if config == "cloudbuild-plan" {
            assert!(work.path().join("plan.json").is_file());
            let text = std::fs::read_to_string(work.path().join("plan.txt")).unwrap();
            assert!(text.contains("exit code 10"), "{text}");
        }
    }
    assert_eq!(ran, [1, 1], "the plan and apply steps");
    assert_installed(&sb);
}
