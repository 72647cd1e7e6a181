//! The chaos runner: N seeded runs of `asm install --managed` then `asm create-mesh`, each on
//! a fresh `fleet-N` sandbox whose every server injects faults at a chosen rate: 5xx, 429
//! with `Retry-After`, dropped connections, latency spikes (`slow`: answered after 2 s) and
//! token expiry (`expire`: the request's token is revoked and answered 401; such runs
//! authenticate with the sandbox's service-account key, `--key-file`, whose tokens can be
//! replaced). The `conflict` kind is no fault of the servers: before the install, another
//! field manager (`kubectl apply --server-side --field-manager=chaos-other`) takes a field
//! of the reader ClusterRole `create-mesh` applies on each cluster, with another value. Each
//! command is re-run as a user would — up to `--attempts` invocations — until it exits 0. A
//! run *converges* when both commands did and the end state, inspected with the faults
//! turned off, is right:
//!
//! - one fleet membership per cluster, none for anything else, none twice;
//! - every cluster carries the `mesh_id` label, the fleet `servicemesh` feature exists;
//! - every cluster holds exactly one remote secret per other cluster;
//! - a dry run of both commands plans no change (`--detailed-exitcode` exits 0);
//! - with `conflict`: asm's value won the contested field (asm applies with force) and owns
//!   it, the rest of asm's ClusterRole is in place, and the other manager's own field stayed;
//! - no output of any invocation (stdout or stderr) holds a token or key.
//!
//! Not a CI test — a measurement. `cargo bench --bench chaos -- --runs 1000 --rate 0.1`
//! (release build), or in the dev profile `cargo test --bench chaos -- --runs 5` (`--jobs N`
//! runs at once, `--asm PATH` another asm binary, `--kinds 503,drop,slow,expire,conflict`
//! (default `503,429,500,drop`; the fault kinds share the rate equally), `--clusters N`);
//! `.ci/run` runs a handful.
//! Prints one line per failed run and a table; exits 1 if any run failed.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use asm::steps::remote_secret::{ISTIO_NAMESPACE, reader_manifests, reader_role_name};
use asm_sim::{Sandbox, SimConfig};
use serde_json::{Value, json};

/// Fault kinds the simulator injects (`--fault` kinds).
const FAULT_KINDS: [&str; 7] = ["503", "429", "500", "drop", "lost", "slow", "expire"];
/// The kind that is a conflicting field manager, not a fault.
const CONFLICT: &str = "conflict";
/// The field manager that contests asm's field.
const OTHER_MANAGER: &str = "chaos-other";
/// A label only the other manager sets: it must survive asm's forced apply.
const OTHER_LABEL: &str = "chaos.asm.example/planted";

/// What the runner was asked to do.
#[derive(Debug, Clone)]
struct Options {
    runs: u64,
    first_seed: u64,
    rate: f64,
    kinds: Vec<String>,
    clusters: usize,
    attempts: usize,
    jobs: usize,
    /// The asm binary to run (default: the one cargo built with this bench).
    asm: std::path::PathBuf,
}

impl Options {
    fn parse() -> Result<Options, String> {
        let mut o = Options {
            runs: 20,
            first_seed: 1,
            rate: 0.1,
            kinds: vec!["503".into(), "429".into(), "500".into(), "drop".into()],
            clusters: 2,
            attempts: 5,
            jobs: 1,
            asm: env!("CARGO_BIN_EXE_asm").into(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            // `cargo bench` passes `--bench` to harness-less targets.
            if a == "--bench" {
                continue;
            }
            let mut value = || args.next().ok_or(format!("{a} needs a value"));
            let number = |v: String| v.parse::<u64>().map_err(|e| format!("{a} {v}: {e}"));
            match a.as_str() {
                "--runs" => o.runs = number(value()?)?,
                "--seed" => o.first_seed = number(value()?)?,
                "--clusters" => o.clusters = number(value()?)? as usize,
                "--attempts" => o.attempts = number(value()?)? as usize,
                "--jobs" => o.jobs = number(value()?)?.max(1) as usize,
                "--asm" => o.asm = value()?.into(),
                "--rate" => {
                    let v = value()?;
                    o.rate = v
                        .parse::<f64>()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or(format!("--rate {v}: a number in [0, 1]"))?;
                }
                "--kinds" => {
                    o.kinds = value()?.split(',').map(str::to_string).collect();
                    if let Some(k) = o
                        .kinds
                        .iter()
                        .find(|k| !FAULT_KINDS.contains(&k.as_str()) && *k != CONFLICT)
                    {
                        return Err(format!(
                            "--kinds: unknown kind {k:?} (expected {} or {CONFLICT})",
                            FAULT_KINDS.join(", ")
                        ));
                    }
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if o.clusters < 2 {
            return Err("--clusters: create-mesh needs at least 2".into());
        }
        Ok(o)
    }

    /// The kinds the simulator injects.
    fn fault_kinds(&self) -> Vec<&str> {
        self.kinds
            .iter()
            .map(String::as_str)
            .filter(|k| *k != CONFLICT)
            .collect()
    }

    /// Whether a kind is asked for.
    fn has(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }

    /// The sandbox of run `seed`: each fault kind gets an equal share of the total rate.
    fn sandbox_config(&self, seed: u64) -> SimConfig {
        let faults = self.fault_kinds();
        let share = self.rate / faults.len().max(1) as f64;
        let mut c = SimConfig::new(format!("fleet-{}", self.clusters))
            .set("timing.gke_op_ms", "100")
            .set("timing.hub_op_ms", "100")
            .set("timing.crd_install_ms", "200")
            .set("timing.cpr_ready_ms", "300");
        for kind in faults {
            c = c.fault(&format!("*:{kind},rate={share}")).unwrap();
        }
        c.seed = seed;
        c
    }
}

/// How one seeded run ended.
#[derive(Debug, Default)]
struct RunResult {
    seed: u64,
    /// Invocations each command needed (0 = never succeeded).
    install_attempts: usize,
    mesh_attempts: usize,
    /// End-state and output problems found; empty = converged.
    problems: Vec<String>,
    wall: Duration,
}

fn main() {
    let opts = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("chaos: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "chaos: {} runs of install + create-mesh on fleet-{}, faults {} at {:.0} % of requests, \
         up to {} attempts per command, {} at once",
        opts.runs,
        opts.clusters,
        opts.kinds.join(","),
        opts.rate * 100.0,
        opts.attempts,
        opts.jobs
    );
    let started = Instant::now();
    let next = Mutex::new(opts.first_seed);
    let results = Mutex::new(Vec::new());
    let last = opts.first_seed + opts.runs;
    std::thread::scope(|s| {
        for _ in 0..opts.jobs {
            s.spawn(|| {
                loop {
                    let seed = {
                        let mut n = next.lock().unwrap();
                        if *n >= last {
                            break;
                        }
                        *n += 1;
                        *n - 1
                    };
                    let r = run_seed(&opts, seed);
                    if !r.problems.is_empty() {
                        println!("seed {seed}: {}", r.problems.join("; "));
                    }
                    let mut all = results.lock().unwrap();
                    all.push(r);
                    // A running tally, so that a long measurement stopped early still tells.
                    if all.len() % 50 == 0 {
                        let ok = all.iter().filter(|r| r.problems.is_empty()).count();
                        println!(
                            "after {} runs ({:.0} s): {ok} converged",
                            all.len(),
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    let failed = print_table(&opts, &results, started.elapsed());
    std::process::exit(i32::from(failed > 0));
}

/// Runs one seed on a fresh sandbox.
fn run_seed(opts: &Options, seed: u64) -> RunResult {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sandbox = rt
        .block_on(Sandbox::start(opts.sandbox_config(seed)))
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let env = environment(&sandbox, home.path());
    // Expiring tokens are replaced only by a source that can mint new ones: the key file.
    let asm_env = if opts.has("expire") {
        without_token_file(&env)
    } else {
        env.clone()
    };
    let credentials: Vec<String> = if opts.has("expire") {
        vec![
            "--key-file".into(),
            sandbox.key_file_path().display().to_string(),
        ]
    } else {
        Vec::new()
    };
    let project = sandbox.scenario.project_id.clone();
    let location = sandbox.scenario.location().to_string();
    let clusters: Vec<String> = sandbox
        .clusters
        .iter()
        .map(|c| format!("{project}/{location}/{}", c.name))
        .collect();
    let secrets = secret_markers(&sandbox);
    let mut result = RunResult {
        seed,
        ..RunResult::default()
    };
    let mut outputs = Vec::new();

    let install = |extra: &[&str]| {
        let mut a = vec!["install".to_string(), "--managed".into()];
        for c in &clusters {
            a.extend(["--cluster".to_string(), c.clone()]);
        }
        a.push("--enable-all".into());
        a.extend(credentials.iter().cloned());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let mesh = |extra: &[&str]| {
        let mut a = vec!["create-mesh".to_string()];
        for c in &clusters {
            a.extend(["--cluster".to_string(), c.clone()]);
        }
        a.extend(credentials.iter().cloned());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    if opts.has(CONFLICT) {
        // Setting the stage is not under test: no faults meanwhile (the dice stay put).
        sandbox.set_faults_enabled(false);
        let planted = plant_conflicts(&sandbox, &env);
        sandbox.set_faults_enabled(true);
        if let Err(e) = planted {
            result.problems.push(e);
        }
    }
    if result.problems.is_empty() {
        result.install_attempts = until_success(&asm_env, &install(&["--yes"]), opts, &mut outputs);
        if result.install_attempts > 0 {
            result.mesh_attempts = until_success(&asm_env, &mesh(&["--yes"]), opts, &mut outputs);
        }
    }
    if result.problems.is_empty() && (result.install_attempts == 0 || result.mesh_attempts == 0) {
        let what = if result.install_attempts == 0 {
            "install"
        } else {
            "create-mesh"
        };
        let last = outputs.last().map(last_line).unwrap_or_default();
        result.problems.push(format!(
            "{what} did not succeed in {} attempts; the last said: {last}",
            opts.attempts
        ));
    }

    // The end state, with the faults off.
    sandbox.set_faults_enabled(false);
    if result.problems.is_empty() {
        for (what, args) in [
            ("install", install(&["--dry-run", "--detailed-exitcode"])),
            ("create-mesh", mesh(&["--dry-run", "--detailed-exitcode"])),
        ] {
            let o = asm(&opts.asm, &asm_env, &args);
            if o.status.code() != Some(0) {
                result.problems.push(format!(
                    "a dry run of {what} after success exits {:?}: {}",
                    o.status.code(),
                    last_line(&o)
                ));
            }
            outputs.push(o);
        }
        result
            .problems
            .extend(rt.block_on(google_state_problems(&sandbox)));
        result
            .problems
            .extend(remote_secret_problems(&sandbox, &env));
        if opts.has(CONFLICT) {
            result.problems.extend(conflict_problems(&sandbox, &env));
        }
    }
    for o in &outputs {
        for stream in [&o.stdout, &o.stderr] {
            let text = String::from_utf8_lossy(stream);
            for m in &secrets {
                if text.contains(m.as_str()) {
                    result
                        .problems
                        .push(format!("an output holds a secret ({}…)", &m[..6]));
                }
            }
        }
    }
    result.problems.dedup();
    sandbox.shutdown();
    result.wall = started.elapsed();
    result
}

/// Invokes asm until it exits 0, at most `opts.attempts` times; the attempt that succeeded
/// (1-based), or 0.
fn until_success(
    env: &[(String, String)],
    args: &[String],
    opts: &Options,
    outputs: &mut Vec<Output>,
) -> usize {
    for attempt in 1..=opts.attempts {
        let o = asm(&opts.asm, env, args);
        let ok = o.status.success();
        outputs.push(o);
        if ok {
            return attempt;
        }
    }
    0
}

fn asm(bin: &std::path::Path, env: &[(String, String)], args: &[String]) -> Output {
    Command::new(bin)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn kubectl(env: &[(String, String)], args: &[&str]) -> Output {
    Command::new("kubectl")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `env` without the sandbox's token file (and any other token source that would win over
/// `--key-file`).
fn without_token_file(env: &[(String, String)]) -> Vec<(String, String)> {
    env.iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"
                    | "CLOUDSDK_AUTH_ACCESS_TOKEN"
                    | "GOOGLE_APPLICATION_CREDENTIALS"
            )
        })
        .cloned()
        .collect()
}

/// The reader ClusterRole as asm applies it.
fn asm_reader_role() -> Value {
    reader_manifests(ISTIO_NAMESPACE)
        .unwrap()
        .into_iter()
        .find(|m| m["kind"] == "ClusterRole")
        .unwrap()
}

/// The other manager's apply: every label asm sets, with another value, and one of its own.
fn conflicting_reader_role() -> Value {
    let mut labels = serde_json::Map::new();
    for key in asm_reader_role()["metadata"]["labels"]
        .as_object()
        .unwrap()
        .keys()
    {
        labels.insert(key.clone(), json!(OTHER_MANAGER));
    }
    labels.insert(OTHER_LABEL.into(), json!("true"));
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": reader_role_name(ISTIO_NAMESPACE), "labels": labels},
    })
}

/// Applies [`conflicting_reader_role`] on every cluster as [`OTHER_MANAGER`], with the real
/// kubectl.
fn plant_conflicts(sandbox: &Sandbox, env: &[(String, String)]) -> Result<(), String> {
    let manifest = conflicting_reader_role().to_string();
    for c in &sandbox.clusters {
        let ctx = c.context_name(&sandbox.scenario.project_id);
        let mut child = Command::new("kubectl")
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["--context", &ctx, "apply", "--server-side"])
            .arg(format!("--field-manager={OTHER_MANAGER}"))
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(manifest.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        if !o.status.success() {
            return Err(format!(
                "planting the conflict on {}: {}",
                c.name,
                last_line(&o)
            ));
        }
    }
    Ok(())
}

/// Whether managedFields entry `entry` owns label `key`.
fn owns_label(entry: &Value, key: &str) -> bool {
    entry["fieldsV1"]["f:metadata"]["f:labels"]
        .get(format!("f:{key}"))
        .is_some()
}

/// On every cluster: asm's labels and rules of the reader ClusterRole in place and owned by
/// asm, the other manager's own label still there and still its own.
fn conflict_problems(sandbox: &Sandbox, env: &[(String, String)]) -> Vec<String> {
    let wanted = asm_reader_role();
    let name = reader_role_name(ISTIO_NAMESPACE);
    let mut problems = Vec::new();
    for c in &sandbox.clusters {
        let ctx = c.context_name(&sandbox.scenario.project_id);
        let o = kubectl(
            env,
            &[
                "--context",
                &ctx,
                "get",
                "clusterrole",
                &name,
                "--show-managed-fields",
                "-o",
                "json",
            ],
        );
        if !o.status.success() {
            problems.push(format!("kubectl on {}: {}", c.name, last_line(&o)));
            continue;
        }
        let live: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let managers = live["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let manager = |m: &str| managers.iter().find(|e| e["manager"] == m);
        for (key, value) in wanted["metadata"]["labels"].as_object().unwrap() {
            let got = &live["metadata"]["labels"][key];
            if got != value {
                problems.push(format!(
                    "{}: label {key} of {name} is {got}, asm applies {value}",
                    c.name
                ));
            }
            if !manager(asm::kube::FIELD_MANAGER).is_some_and(|e| owns_label(e, key)) {
                problems.push(format!(
                    "{}: asm does not own label {key} of {name}",
                    c.name
                ));
            }
            if manager(OTHER_MANAGER).is_some_and(|e| owns_label(e, key)) {
                problems.push(format!(
                    "{}: {OTHER_MANAGER} still owns label {key} of {name}",
                    c.name
                ));
            }
        }
        if live["rules"] != wanted["rules"] {
            problems.push(format!("{}: the rules of {name} are not asm's", c.name));
        }
        if live["metadata"]["labels"][OTHER_LABEL] != "true"
            || !manager(OTHER_MANAGER).is_some_and(|e| owns_label(e, OTHER_LABEL))
        {
            problems.push(format!(
                "{}: {OTHER_MANAGER}'s label {OTHER_LABEL} of {name} was lost",
                c.name
            ));
        }
    }
    problems
}

/// The sandbox's exports, a private HOME and a closed metadata-server address (no credential
/// probe leaves the machine). asm's fast retry policy keeps the runs short; it changes
/// backoff lengths, not what is retried.
fn environment(sandbox: &Sandbox, home: &std::path::Path) -> Vec<(String, String)> {
    let mut env = sandbox.exports();
    env.push(("HOME".into(), home.display().to_string()));
    env.push(("PATH".into(), std::env::var("PATH").unwrap_or_default()));
    env.push(("GCE_METADATA_HOST".into(), "127.0.0.1:9".into()));
    env.push(("GCE_METADATA_IP".into(), "127.0.0.1:9".into()));
    env.push(("ASM_RETRY_POLICY".into(), "fast".into()));
    env.push(("NO_COLOR".into(), "1".into()));
    env
}

/// Strings that must never appear in output: the sandbox's access token and its service
/// account key's private part.
fn secret_markers(sandbox: &Sandbox) -> Vec<String> {
    let mut m = vec![sandbox.token().to_string()];
    if let Some(key) = sandbox.key_file()["private_key"].as_str() {
        // A line of the key's base64 body (the PEM header alone is not secret).
        if let Some(line) = key.lines().nth(1) {
            m.push(line.to_string());
        }
    }
    m
}

/// One membership per cluster (each pointing at its own cluster), the `mesh_id` label on
/// every cluster, the fleet feature present — read from the Google APIs directly.
async fn google_state_problems(sandbox: &Sandbox) -> Vec<String> {
    let http = reqwest::Client::new();
    let get = |url: String| {
        let req = http.get(url).bearer_auth(sandbox.token());
        async move {
            let r = req.send().await.map_err(|e| e.to_string())?;
            let status = r.status();
            let body: Value = r.json().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(body)
            } else {
                Err(format!("{status}: {body}"))
            }
        }
    };
    let project = &sandbox.scenario.project_id;
    let hub = sandbox.google_url("gkehub");
    let mut problems = Vec::new();
    match get(format!(
        "{hub}v1/projects/{project}/locations/-/memberships"
    ))
    .await
    {
        Ok(list) => {
            let mut per_cluster: BTreeMap<String, usize> = BTreeMap::new();
            for m in list["resources"].as_array().into_iter().flatten() {
                let link = m["endpoint"]["gkeCluster"]["resourceLink"]
                    .as_str()
                    .unwrap_or_default();
                let cluster = link.rsplit('/').next().unwrap_or_default().to_string();
                *per_cluster.entry(cluster).or_default() += 1;
            }
            for c in &sandbox.clusters {
                match per_cluster.remove(&c.name).unwrap_or(0) {
                    1 => {}
                    n => problems.push(format!("{} has {n} memberships", c.name)),
                }
            }
            for (other, n) in per_cluster {
                problems.push(format!("{n} membership(s) for unknown cluster {other:?}"));
            }
        }
        Err(e) => problems.push(format!("listing memberships: {e}")),
    }
    if let Err(e) = get(format!(
        "{hub}v1/projects/{project}/locations/global/features/servicemesh"
    ))
    .await
    {
        problems.push(format!("the servicemesh feature: {e}"));
    }
    let gke = sandbox.google_url("container");
    for c in &sandbox.clusters {
        match get(format!(
            "{gke}v1/projects/{project}/locations/{}/clusters/{}",
            c.location, c.name
        ))
        .await
        {
            Ok(cluster) if cluster["resourceLabels"]["mesh_id"].is_string() => {}
            Ok(_) => problems.push(format!("{} has no mesh_id label", c.name)),
            Err(e) => problems.push(format!("reading cluster {}: {e}", c.name)),
        }
    }
    problems
}

/// Each cluster holds exactly one remote secret per other cluster (read with kubectl).
fn remote_secret_problems(sandbox: &Sandbox, env: &[(String, String)]) -> Vec<String> {
    let project = &sandbox.scenario.project_id;
    let mut problems = Vec::new();
    for c in &sandbox.clusters {
        let ctx = c.context_name(project);
        let o = kubectl(
            env,
            &[
                "--context",
                &ctx,
                "get",
                "secrets",
                "-n",
                "istio-system",
                "-l",
                "istio/multiCluster=true",
                "-o",
                "json",
            ],
        );
        if !o.status.success() {
            problems.push(format!("kubectl on {}: {}", c.name, last_line(&o)));
            continue;
        }
        let list: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let n = list["items"].as_array().map_or(0, Vec::len);
        if n != sandbox.clusters.len() - 1 {
            problems.push(format!(
                "{} holds {n} remote secrets, expected {}",
                c.name,
                sandbox.clusters.len() - 1
            ));
        }
    }
    problems
}

fn last_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_string()
}

/// Prints the summary table; returns how many runs failed.
fn print_table(opts: &Options, results: &[RunResult], wall: Duration) -> usize {
    let n = results.len();
    let converged = results.iter().filter(|r| r.problems.is_empty()).count();
    let first_try = results
        .iter()
        .filter(|r| r.problems.is_empty() && r.install_attempts == 1 && r.mesh_attempts == 1)
        .count();
    let histogram = |pick: fn(&RunResult) -> usize| {
        let mut h: BTreeMap<usize, usize> = BTreeMap::new();
        for r in results {
            *h.entry(pick(r)).or_default() += 1;
        }
        h.iter()
            .map(|(a, c)| {
                if *a == 0 {
                    format!("never:{c}")
                } else {
                    format!("{a}:{c}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut walls: Vec<Duration> = results.iter().map(|r| r.wall).collect();
    walls.sort();
    let median = walls.get(n / 2).copied().unwrap_or_default();
    let pct = |k: usize| {
        if n == 0 {
            0.0
        } else {
            100.0 * k as f64 / n as f64
        }
    };
    let seeds: Vec<u64> = results.iter().map(|r| r.seed).collect();
    println!();
    println!(
        "| runs | converged | first try | install attempts | create-mesh attempts | median run | total |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {converged} ({:.1} %) | {first_try} ({:.1} %) | {} | {} | {:.1} s | {:.0} s |",
        pct(converged),
        pct(first_try),
        histogram(|r| r.install_attempts),
        histogram(|r| r.mesh_attempts),
        median.as_secs_f64(),
        wall.as_secs_f64()
    );
    println!(
        "seeds {}..={}, rate {}, kinds {}",
        seeds.iter().min().unwrap_or(&0),
        seeds.iter().max().unwrap_or(&0),
        opts.rate,
        opts.kinds.join(",")
    );
    assert_eq!(n as u64, opts.runs, "every requested run ran");
    n - converged
}
