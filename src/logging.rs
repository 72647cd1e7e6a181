//! Diagnostic logs on stderr (`ASM_LOG`), kept apart from the user-facing output of
//! [`crate::output::Printer`]. Only asm's own targets log unless the user names others:
//! libraries (kube-rs, hyper, rustls, …) know nothing of asm's redaction rules, so their lines
//! reach the user only when asked for by target name.

use crate::environment::Environment;

/// The crates whose logs `ASM_LOG=LEVEL` turns on.
pub const OWN_TARGETS: &[&str] = &["asm", "asm_sim"];

/// Filter directives (tracing-subscriber's `EnvFilter` syntax) for an `ASM_LOG` value.
///
/// Unset or empty: errors of asm's own targets. A bare level (`debug`) applies to asm's own
/// targets only; a directive that names a target (`kube_client=debug`) is kept as written.
pub fn directives(value: Option<&str>) -> String {
    let value = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or("error");
    value
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            if is_level(d) {
                OWN_TARGETS
                    .iter()
                    .map(|t| format!("{t}={d}"))
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                d.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn is_level(d: &str) -> bool {
    matches!(
        d.to_ascii_lowercase().as_str(),
        "trace" | "debug" | "info" | "warn" | "error" | "off"
    )
}

/// Installs the process-wide subscriber: stderr, colour only where the Printer would use it.
pub fn init(env: &Environment) {
    let filter =
        tracing_subscriber::EnvFilter::builder().parse_lossy(directives(env.var("ASM_LOG")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(env.stderr_color())
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_means_errors_of_asm_only() {
        assert_eq!(directives(None), "asm=error,asm_sim=error");
        assert_eq!(directives(Some("  ")), "asm=error,asm_sim=error");
    }

    #[test]
    fn a_bare_level_applies_to_asm_targets_only() {
        assert_eq!(directives(Some("trace")), "asm=trace,asm_sim=trace");
    }

    #[test]
    fn named_targets_are_kept() {
        assert_eq!(
            directives(Some("debug,kube_client=trace")),
            "asm=debug,asm_sim=debug,kube_client=trace"
        );
    }
}
