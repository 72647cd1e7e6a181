//! The confirmation gate of mutating commands (ARCHITECTURE.md, "The runner"): `--yes` applies; on a terminal
//! without `--yes` asm asks; elsewhere it refuses with exit 2 (never hangs in CI).

use std::io::BufRead;

use crate::environment::Environment;
use crate::error::{Error, exit};

/// Asks `Apply N changes? [y/N]` on the terminal; `true` to go on.
pub async fn ask(changes: usize) -> bool {
    let answer = tokio::task::spawn_blocking(move || {
        let mut stderr = std::io::stderr();
        let _ = std::io::Write::write_all(
            &mut stderr,
            format!(
                "Apply {changes} change{}? [y/N] ",
                if changes == 1 { "" } else { "s" }
            )
            .as_bytes(),
        );
        let _ = std::io::Write::flush(&mut stderr);
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        line
    })
    .await
    .unwrap_or_default();
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// `Ok(())` when `changes` may be applied: none to make, `--yes`, or a "yes" on the
/// terminal. Otherwise ASM-E103 (cancelled, exit 5) or ASM-E102 (no terminal, exit 2).
pub async fn gate(env: &Environment, yes: bool, changes: usize) -> Result<(), Error> {
    if changes == 0 || yes {
        return Ok(());
    }
    if env.stdin_is_tty && env.stderr_is_tty {
        if ask(changes).await {
            Ok(())
        } else {
            Err(Error::new(
                "ASM-E103",
                exit::CANCELLED,
                "cancelled; nothing was changed",
            ))
        }
    } else {
        Err(Error::usage(
            "ASM-E102",
            format!(
                "refusing to change {changes} resource{} without --yes (not a terminal)",
                if changes == 1 { "" } else { "s" }
            ),
        )
        .with_hint("review the plan (--dry-run), then re-run with --yes"))
    }
}
