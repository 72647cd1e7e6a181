//! `asm status` as text (one block per cluster, aligned tables) or JSON (`asm.status/v1`).

use serde_json::Value;

use super::report::{ClusterReport, StatusReport, Verdict};

/// Columns padded to their widest cell, two spaces apart, indented by `indent`.
pub fn table(indent: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::from(indent);
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            out.push_str(c);
            if i + 1 < n {
                let pad = widths[i] - c.chars().count() + 2;
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn or_dash(v: Option<&str>) -> String {
    v.unwrap_or("-").to_string()
}

fn yes(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

fn section(out: &mut String, title: &str, body: Option<String>) {
    match body {
        Some(b) => {
            out.push_str(&format!("  {title}:\n"));
            out.push_str(&b);
        }
        None => out.push_str(&format!("  {title}: none\n")),
    }
}

fn cluster_text(c: &ClusterReport) -> String {
    let mut out = format!("Cluster {}\n", c.cluster);
    for e in &c.errors {
        out.push_str(&format!("  ! {e}\n"));
    }
    if let Some(g) = &c.gke {
        out.push_str(&format!(
            "  GKE: {}, channel {}, Kubernetes {}\n",
            or_dash(g.status.as_deref()),
            or_dash(g.channel.as_deref()),
            or_dash(g.kubernetes.as_deref())
        ));
    }
    let f = &c.fleet;
    match &f.membership {
        Some(m) => out.push_str(&format!(
            "  Fleet: {m} {}; servicemesh {}, control plane {}, data plane {}\n",
            or_dash(f.membership_state.as_deref()),
            or_dash(f.management.as_deref()),
            or_dash(f.control_plane.as_deref()),
            or_dash(f.data_plane.as_deref())
        )),
        None => out.push_str("  Fleet: not registered\n"),
    }
    let rows: Vec<Vec<String>> = c
        .managed_control_plane
        .iter()
        .map(|r| {
            let conds: Vec<String> = r
                .conditions
                .iter()
                .map(|x| format!("{}={}", x.kind, x.status))
                .collect();
            vec![
                r.name.clone(),
                or_dash(r.channel.as_deref()),
                yes(r.ready),
                conds.join(" "),
            ]
        })
        .collect();
    section(
        &mut out,
        "Managed control plane",
        (!rows.is_empty()).then(|| {
            table(
                "    ",
                &["REVISION", "CHANNEL", "READY", "CONDITIONS"],
                &rows,
            )
        }),
    );
    let rows: Vec<Vec<String>> = c
        .in_cluster_control_planes
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                d.revision.clone(),
                or_dash(d.version.as_deref()),
                d.ca.clone(),
                yes(d.available),
            ]
        })
        .collect();
    section(
        &mut out,
        "In-cluster control planes",
        (!rows.is_empty()).then(|| {
            table(
                "    ",
                &["DEPLOYMENT", "REVISION", "VERSION", "CA", "AVAILABLE"],
                &rows,
            )
        }),
    );
    let rows: Vec<Vec<String>> = c
        .injection_webhooks
        .iter()
        .map(|w| {
            vec![
                w.name.clone(),
                w.revision.clone(),
                or_dash(w.tag.as_deref()),
                yes(w.default),
                yes(w.managed),
            ]
        })
        .collect();
    section(
        &mut out,
        "Injection webhooks",
        (!rows.is_empty()).then(|| {
            table(
                "    ",
                &["NAME", "REVISION", "TAG", "DEFAULT", "MANAGED"],
                &rows,
            )
        }),
    );
    let dp = &c.data_plane;
    let mut body = String::new();
    if !dp.controls.is_empty() {
        let rows: Vec<Vec<String>> = dp
            .controls
            .iter()
            .map(|d| {
                vec![
                    d.name.clone(),
                    d.revision.clone(),
                    or_dash(d.state.as_deref()),
                    or_dash(d.proxy_version.as_deref()),
                ]
            })
            .collect();
        body.push_str(&table(
            "    ",
            &["DATAPLANECONTROL", "REVISION", "STATE", "PROXY"],
            &rows,
        ));
    }
    for (what, list) in [
        ("namespaces", &dp.annotated_namespaces),
        ("pods", &dp.annotated_pods),
    ] {
        if !list.is_empty() {
            let names: Vec<&str> = list.iter().map(|a| a.name.as_str()).collect();
            body.push_str(&format!("    annotated {what}: {}\n", names.join(", ")));
        }
    }
    section(&mut out, "Data plane", (!body.is_empty()).then_some(body));
    let rows: Vec<Vec<String>> = c
        .namespaces
        .iter()
        .map(|n| {
            vec![
                n.name.clone(),
                or_dash(n.istio_injection.as_deref()),
                or_dash(n.rev_label.as_deref()),
                or_dash(n.revision.as_deref()),
                n.pods.to_string(),
                n.injected.to_string(),
                n.restart_needed.to_string(),
            ]
        })
        .collect();
    section(
        &mut out,
        "Namespaces",
        (!rows.is_empty()).then(|| {
            table(
                "    ",
                &[
                    "NAMESPACE",
                    "ISTIO-INJECTION",
                    "ISTIO.IO/REV",
                    "REVISION",
                    "PODS",
                    "INJECTED",
                    "RESTART",
                ],
                &rows,
            )
        }),
    );
    let rows: Vec<Vec<String>> = c
        .pods_by_revision
        .iter()
        .map(|r| {
            vec![
                r.revision.clone(),
                or_dash(r.proxy_version.as_deref()),
                yes(r.managed),
                r.pods.to_string(),
            ]
        })
        .collect();
    section(
        &mut out,
        "Injected pods",
        (!rows.is_empty()).then(|| table("    ", &["REVISION", "PROXY", "MANAGED", "PODS"], &rows)),
    );
    let names: Vec<String> = c
        .uninjected_pods
        .iter()
        .map(|p| {
            format!(
                "{}/{}{}",
                p.namespace,
                p.name,
                if p.opted_out { " (opted out)" } else { "" }
            )
        })
        .collect();
    section(
        &mut out,
        "Uninjected pods",
        (!names.is_empty()).then(|| format!("    {}\n", names.join(", "))),
    );
    let rows: Vec<Vec<String>> = c
        .restart_needed
        .iter()
        .map(|p| {
            vec![
                format!("{}/{}", p.namespace, p.name),
                or_dash(p.revision.as_deref()),
                or_dash(p.expected.as_deref()),
            ]
        })
        .collect();
    section(
        &mut out,
        "Restart needed",
        (!rows.is_empty()).then(|| table("    ", &["POD", "REVISION", "EXPECTED"], &rows)),
    );
    let names: Vec<String> = c
        .remote_secrets
        .iter()
        .map(|s| format!("{} ({})", s.name, s.cluster))
        .collect();
    section(
        &mut out,
        "Remote secrets",
        (!names.is_empty()).then(|| format!("    {}\n", names.join(", "))),
    );
    let lines = |v: &[String]| -> Option<String> {
        (!v.is_empty()).then(|| v.iter().map(|l| format!("    {l}\n")).collect())
    };
    section(&mut out, "To migrate", lines(&c.to_migrate));
    if !c.cleanup.is_empty() {
        section(&mut out, "Clean-up", lines(&c.cleanup));
    }
    out
}

fn verdict_line(name: &str, v: &Verdict) -> String {
    if v.met {
        format!("{name}: yes\n")
    } else {
        format!(
            "{name}: no ({} item{})\n",
            v.missing.len(),
            if v.missing.len() == 1 { "" } else { "s" }
        )
    }
}

/// The text report.
pub fn text(report: &StatusReport) -> String {
    let mut out = String::new();
    for c in &report.clusters {
        out.push_str(&cluster_text(c));
        out.push('\n');
    }
    out.push_str(&verdict_line("Ready", &report.ready));
    out.push_str(&verdict_line("Migrated", &report.migrated));
    out
}

/// The JSON report (`asm.status/v1`).
pub fn json(report: &StatusReport) -> Value {
    serde_json::to_value(report).unwrap_or(Value::Null)
}
