//! `asm create-remote-secret`: istioctl's command (≥ 1.28; see the README). Without
//! `--apply-to` it prepares the reader ServiceAccount and token (as istioctl: no question
//! asked) and prints the Secret — the one place a token reaches stdout. With `--apply-to`
//! it plans and applies the Secret to other clusters under the plan contract, or saves the
//! plan (`--plan-out FILE`, [`crate::steps::mesh::saved`]) for `asm apply FILE`, which comes
//! back here through [`apply_saved`].

use std::path::PathBuf;
use std::time::Duration;

use kube::config::Kubeconfig;
use secrecy::ExposeSecret;
use tokio::time::Instant;

use crate::cli::apply::ApplyArgs;
use crate::cli::install::OutputArg;
use crate::cli::remote_secret::CreateRemoteSecretArgs;
use crate::commands::google::request_trace;
use crate::commands::install::prepare_output;
use crate::commands::secret_plan::{SecretRun, run_secret_plan};
use crate::environment::Environment;
use crate::error::{Error, Result, exit};
use crate::kube::client::read_kubeconfig;
use crate::kube::client_from_kubeconfig;
use crate::output::Printer;
use crate::plan::CheckStatus;
use crate::plan::execute::{Outcome, execute};
use crate::plan::saved::{SavedCommand, bool_input, opt_str, refuse_unless_it_matches, str_list};
use crate::spec::{PlanFlags, parse_duration};
use crate::steps::mesh::execute::SecretExecutor;
use crate::steps::mesh::observe::{
    kube_system_uid, kubeconfig_server, observe_member, observe_members,
};
use crate::steps::mesh::saved::{
    CreateRemoteSecretInputs, SecretInputs, actions_of, document, fingerprint,
};
use crate::steps::remote_secret::{
    AuthType, ClusterId, Member, SecretType, codes, is_dns1123_subdomain, loopback_warning,
    plan_secrets, plan_source_only, remote_secret_for,
};

/// The command's input, validated (everything checkable without a request).
#[derive(Debug, Clone)]
pub struct RemoteSecretSpec {
    pub name: Option<ClusterId>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub istio_namespace: String,
    pub service_account: String,
    pub create_service_account: bool,
    pub server: Option<String>,
    pub tls_server_name: Option<String>,
    pub secret_name: Option<String>,
    pub secret_type: SecretType,
    pub auth: AuthType,
    pub apply_to: Vec<String>,
    /// `--dry-run`, `--yes`, `--detailed-exitcode`, `--plan-out`, `-D` (with `--apply-to`).
    pub plan: PlanFlags,
    pub json: bool,
    pub timeout: Duration,
    /// `--lock-timeout` (with `--apply-to`).
    pub lock_timeout: Duration,
}

fn check_name(input: &str, value: &str, label: bool) -> Result<(), Error> {
    let ok = is_dns1123_subdomain(value) && (!label || (value.len() <= 63 && !value.contains('.')));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(
            "ASM-E101",
            format!(
                "{input} {value:?} is not a valid Kubernetes name: lowercase letters, digits and '-'{}, starting and ending with a letter or digit",
                if label {
                    ", at most 63 characters"
                } else {
                    " or '.'"
                }
            ),
        ))
    }
}

impl RemoteSecretSpec {
    pub fn from_args(a: &CreateRemoteSecretArgs) -> Result<Self, Error> {
        let name = match a.name.as_deref() {
            None | Some("") => None,
            Some(n) => Some(ClusterId::parse("--name", n)?),
        };
        let secret_type = SecretType::parse(&a.secret_type)?;
        let auth = AuthType::parse(&a.auth_type, &a.auth_plugin_name, &a.auth_plugin_config)?;
        let namespace = a.namespace.clone().filter(|n| !n.is_empty());
        if let Some(ns) = &namespace {
            check_name("-n/--namespace", ns, true)?;
        }
        check_name("-i/--istio-namespace", &a.istio_namespace, true)?;
        let service_account = a
            .service_account
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| secret_type.default_service_account().to_string());
        check_name("--service-account", &service_account, false)?;
        let secret_name = a.secret_name.clone().filter(|s| !s.is_empty());
        if let Some(s) = &secret_name {
            check_name("--secret-name", s, false)?;
        }
        let mut apply_to: Vec<String> = Vec::new();
        for c in &a.apply_to {
            if c.is_empty() {
                return Err(Error::usage("ASM-E101", "--apply-to must name a context"));
            }
            if apply_to.contains(c) {
                return Err(Error::usage(
                    "ASM-E101",
                    format!("--apply-to {c:?} is given twice"),
                ));
            }
            apply_to.push(c.clone());
        }
        if apply_to.is_empty()
            && (a.dry_run
                || a.yes
                || a.output == OutputArg::Json
                || a.detailed_exitcode
                || a.output_dir.is_some()
                || a.plan_out.is_some())
        {
            return Err(Error::usage(
                "ASM-E101",
                "--dry-run, --yes, -o json, --detailed-exitcode, --plan-out and -D/--output-dir apply to --apply-to only (without it the secret is printed)",
            ));
        }
        Ok(RemoteSecretSpec {
            name,
            kubeconfig: a.kubeconfig.clone(),
            context: a.context.clone().filter(|c| !c.is_empty()),
            namespace,
            istio_namespace: a.istio_namespace.clone(),
            service_account,
            create_service_account: a.create_service_account,
            server: a.server.clone().filter(|s| !s.is_empty()),
            tls_server_name: a.tls_server_name.clone().filter(|s| !s.is_empty()),
            secret_name,
            secret_type,
            auth,
            apply_to,
            plan: PlanFlags::new(
                a.dry_run,
                a.yes,
                a.detailed_exitcode,
                a.plan_out.as_deref(),
                a.output_dir.as_deref(),
            )?,
            json: a.output == OutputArg::Json,
            timeout: parse_duration("--timeout", &a.timeout)?,
            lock_timeout: crate::spec::parse_lock_timeout(&a.lock.lock_timeout)?,
        })
    }
}

/// §1.3: `-n` > the namespace of the kubeconfig's current context > `--istio-namespace`.
pub fn resolve_namespace(spec: &RemoteSecretSpec, kc: &Kubeconfig) -> String {
    if let Some(ns) = &spec.namespace {
        return ns.clone();
    }
    kc.current_context
        .as_ref()
        .and_then(|cur| kc.contexts.iter().find(|c| &c.name == cur))
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.namespace.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| spec.istio_namespace.clone())
}

/// The error of a blocking check, with istioctl's meaning and asm's code.
fn check_error(plan: &crate::steps::remote_secret::SecretPlan) -> Error {
    let Some(c) = plan.checks.iter().find(|c| c.status == CheckStatus::Fail) else {
        return Error::apply("ASM-E999", "the plan is blocked");
    };
    let code = match c.code {
        codes::READER => "ASM-E475",
        codes::TOKEN => "ASM-E473",
        codes::REACHABLE => "ASM-E450",
        _ => "ASM-E470",
    };
    let mut e = Error::apply(code, c.message.clone());
    e.hint = c.hint.clone();
    e
}

/// The flags a saved plan records (`inputs`), with the context and namespace as resolved
/// when planning: what to read and where to write, never a token; the kubeconfig by its
/// path.
fn inputs(args: &CreateRemoteSecretArgs, context: &str, namespace: &str) -> SecretInputs {
    SecretInputs::CreateRemoteSecret(Box::new(CreateRemoteSecretInputs {
        kubeconfig: args.kubeconfig.as_ref().map(|p| p.display().to_string()),
        context: context.to_string(),
        name: args.name.clone(),
        namespace: namespace.to_string(),
        istio_namespace: args.istio_namespace.clone(),
        service_account: args.service_account.clone(),
        create_service_account: args.create_service_account,
        server: args.server.clone(),
        tls_server_name: args.tls_server_name.clone(),
        secret_name: args.secret_name.clone(),
        secret_type: args.secret_type.clone(),
        auth_type: args.auth_type.clone(),
        auth_plugin_name: args.auth_plugin_name.clone(),
        auth_plugin_config: args.auth_plugin_config.clone(),
        apply_to: args.apply_to.clone(),
        timeout: args.timeout.clone(),
    }))
}

/// `asm apply FILE` of a saved `create-remote-secret --apply-to` plan: its flags
/// (validated as flags are) with `asm apply`'s `--yes`, `-o`, `--timeout` and `-D`.
pub async fn apply_saved(
    saved: &SavedCommand,
    apply: &ApplyArgs,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    let i = &saved.inputs;
    let args = CreateRemoteSecretArgs {
        kubeconfig: opt_str(i, "kubeconfig").map(PathBuf::from),
        context: opt_str(i, "context"),
        name: opt_str(i, "name"),
        namespace: opt_str(i, "namespace"),
        istio_namespace: opt_str(i, "istio_namespace").unwrap_or_default(),
        service_account: opt_str(i, "service_account"),
        create_service_account: bool_input(saved, "create_service_account")?,
        server: opt_str(i, "server"),
        tls_server_name: opt_str(i, "tls_server_name"),
        secret_name: opt_str(i, "secret_name"),
        secret_type: opt_str(i, "type").unwrap_or_default(),
        auth_type: opt_str(i, "auth_type").unwrap_or_default(),
        auth_plugin_name: opt_str(i, "auth_plugin_name").unwrap_or_default(),
        auth_plugin_config: str_list(i, "auth_plugin_config"),
        apply_to: str_list(i, "apply_to"),
        dry_run: false,
        output: apply.output,
        yes: apply.yes,
        timeout: apply
            .timeout
            .clone()
            .or_else(|| opt_str(i, "timeout"))
            .unwrap_or_else(|| "2m".into()),
        lock: apply.lock.clone(),
        detailed_exitcode: false,
        output_dir: apply.output_dir.clone(),
        plan_out: None,
    };
    if args.apply_to.is_empty() {
        return Err(Error::usage(
            "ASM-E106",
            format!(
                "plan file {:?}: inputs.apply_to is empty",
                saved.file.display()
            ),
        )
        .into());
    }
    run_with(args, Some(saved), env, printer).await
}

/// Runs `asm create-remote-secret`.
pub async fn run(
    args: CreateRemoteSecretArgs,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    run_with(args, None, env, printer).await
}

/// Runs `create-remote-secret`; with `saved` (always with `--apply-to`), only if the state
/// and the plan still match it.
async fn run_with(
    args: CreateRemoteSecretArgs,
    saved: Option<&SavedCommand>,
    env: &Environment,
    printer: &Printer,
) -> Result<i32> {
    let spec = RemoteSecretSpec::from_args(&args)?;
    let deadline = Instant::now() + spec.timeout;
    // Local reads only: the kubeconfig, the context, the server, the targets.
    let kc = read_kubeconfig(env, spec.kubeconfig.as_deref())
        .map_err(|e| Error::usage("ASM-E101", e.to_string()))?;
    let context = match &spec.context {
        Some(c) => c.clone(),
        None => kc
            .current_context
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                Error::usage(
                    "ASM-E101",
                    "the kubeconfig has no current context; pass --context",
                )
            })?,
    };
    if !kc.contexts.iter().any(|c| c.name == context) {
        return Err(Error::usage(
            "ASM-E101",
            format!("--context {context:?} is not a context of the kubeconfig"),
        )
        .into());
    }
    for t in &spec.apply_to {
        if !kc.contexts.iter().any(|c| &c.name == t) {
            return Err(Error::usage(
                "ASM-E101",
                format!("--apply-to {t:?} is not a context of the kubeconfig"),
            )
            .into());
        }
        if *t == context {
            return Err(Error::usage(
                "ASM-E101",
                format!("--apply-to {t:?} is the cluster the secret is for: apply it to the other clusters"),
            )
            .into());
        }
    }
    let server = match &spec.server {
        Some(s) => s.clone(),
        None => kubeconfig_server(&kc, Some(&context))?,
    };
    let name_from_context = ClusterId::for_context(&context).transpose()?;
    let namespace = resolve_namespace(&spec, &kc);
    if let Some(w) = loopback_warning(&server) {
        printer.warning(&w);
    }

    // The source cluster.
    let trace = request_trace(printer);
    let ctx = client_from_kubeconfig(
        env,
        spec.kubeconfig.as_deref(),
        Some(&context),
        trace.clone(),
    )
    .await
    .map_err(Error::from)?;
    let id = match spec.name.clone().or(name_from_context) {
        Some(id) => id,
        None => kube_system_uid(&ctx.client).await?,
    };
    let source = Member {
        label: context.clone(),
        display: context.clone(),
        id,
        server,
        tls_server_name: spec.tls_server_name.clone(),
        namespace: namespace.clone(),
        service_account: spec.service_account.clone(),
        create_service_account: spec.create_service_account,
        converge_rbac: false,
        secret_name: spec.secret_name.clone(),
        secret_type: spec.secret_type,
        auth: spec.auth.clone(),
    };

    if spec.apply_to.is_empty() {
        return print_secret(source, ctx, deadline, printer).await;
    }

    // --apply-to: the source plus each target, one Secret per target, under the plan contract.
    let (out, printer) = prepare_output(spec.plan.output_dir.as_deref(), printer)?;
    let printer = &printer;
    let mut members = vec![source.clone()];
    let mut clients = vec![Some(ctx)];
    for t in &spec.apply_to {
        let c = client_from_kubeconfig(env, spec.kubeconfig.as_deref(), Some(t), trace.clone())
            .await
            .map_err(Error::from)?;
        members.push(Member {
            label: t.clone(),
            display: t.clone(),
            ..source.clone()
        });
        clients.push(Some(c));
    }
    let obs = observe_members(&members, &clients).await;
    let pairs: Vec<(usize, usize)> = (1..members.len()).map(|t| (0, t)).collect();
    let mut plan = plan_secrets(&members, &obs, &pairs);
    let labelled: Vec<_> = members
        .iter()
        .zip(&clients)
        .map(|(m, c)| (m.display.clone(), c.as_ref()))
        .collect();
    crate::steps::kube_permissions::check_plan(&mut plan, &labelled).await;
    // A saved plan: what it was made from, and what it would do, must not have changed.
    let fp = fingerprint(&members, &obs, None);
    refuse_unless_it_matches(saved, &fp, || actions_of(&plan, &members, &obs), printer)?;
    let doc = spec.plan.plan_out.as_ref().map(|_| {
        document(
            &plan,
            &members,
            &obs,
            inputs(&args, &context, &namespace),
            &fp,
        )
    });
    let exec = SecretExecutor::new(members, clients, &obs, deadline);
    run_secret_plan(
        &plan,
        &exec,
        &pairs,
        SecretRun {
            command: "create-remote-secret",
            flags: &spec.plan,
            json: spec.json,
            verify: false,
            out: out.as_ref(),
            saved: doc.as_ref(),
            lock_timeout: spec.lock_timeout,
        },
        env,
        printer,
    )
    .await
}

/// istioctl's behaviour: find or create the reader and its token, wait for it, print.
async fn print_secret(
    source: Member,
    ctx: crate::kube::KubeContext,
    deadline: Instant,
    printer: &Printer,
) -> Result<i32> {
    let obs = observe_member(&ctx.client, &source)
        .await
        .map_err(|m| Error::apply("ASM-E450", m))?;
    let plan = plan_source_only(&source, &obs);
    if plan.blocked() {
        return Err(check_error(&plan).into());
    }
    let obs_all = vec![Some(Ok(obs))];
    let exec = SecretExecutor::new(vec![source.clone()], vec![Some(ctx)], &obs_all, deadline);
    let report = execute(
        &plan,
        4,
        |a| exec.run(a),
        |a, outcome| {
            if let Outcome::Done(d) = outcome {
                printer.detail(&format!("{} ({:.1}s)", a.done, d.as_secs_f64()));
            }
        },
    )
    .await;
    if let Some((_, e)) = report.failures().first() {
        return Err((*e).clone().into());
    }
    let creds = match exec.creds.lock() {
        Ok(g) => g.first().cloned().flatten(),
        Err(p) => p.into_inner().first().cloned().flatten(),
    };
    let creds = creds.ok_or_else(|| {
        Error::new(
            "ASM-E471",
            exit::TIMEOUT,
            "could not get access token to read resources from local kube-apiserver: no \"token\" data found",
        )
    })?;
    let secret = remote_secret_for(&source, &creds)?;
    // The one place a token is written anywhere: stdout, as the user asked.
    printer.result(secret.stdout_text().expose_secret());
    Ok(exit::SUCCESS)
}
