//! The confirmation gate on a real terminal (ARCHITECTURE.md, "The runner"): without `--yes` asm asks, only a
//! "y" applies, and anything else cancels with exit 5 and no mutating request.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::install::{fast, target};
use crate::support::{TestSandbox, tool_available};

/// Runs `asm install` under `script`, which gives it a pseudo-terminal, and types `answer`.
fn install_on_a_terminal(sb: &TestSandbox, answer: &str) -> (Option<i32>, String) {
    install_on_a_terminal_after(sb, answer, Duration::ZERO, &[])
}

/// The same, typing `answer` only after `delay`, with `extra` arguments.
pub fn install_on_a_terminal_after(
    sb: &TestSandbox,
    answer: &str,
    delay: Duration,
    extra: &[&str],
) -> (Option<i32>, String) {
    let cmd = format!(
        "{} install --managed {} --enable-all {}",
        env!("CARGO_BIN_EXE_asm"),
        target(sb, "cluster-1").join(" "),
        extra.join(" ")
    );
    let mut child = sb
        .command("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("ASM_RETRY_POLICY", "fast")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs");
    // Keep stdin open until asm is done: `script` ends the session when its input closes.
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::sleep(delay);
    stdin.write_all(answer.as_bytes()).expect("type the answer");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "asm did not finish on the terminal"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    let mut terminal = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut terminal)
        .expect("read");
    (status.code(), terminal)
}

#[test]
fn on_a_terminal_asm_asks_and_no_cancels_with_nothing_changed() {
    if !tool_available("script") {
        return;
    }
    let sb = TestSandbox::with(fast("fresh"));
    let (code, terminal) = install_on_a_terminal(&sb, "n\n");
    assert!(
        terminal.contains("Apply 6 changes? [y/N]"),
        "no question asked:\n{terminal}"
    );
    assert_eq!(code, Some(5), "{terminal}");
    assert!(terminal.contains("cancelled"), "{terminal}");
    assert!(
        sb.mutating_requests().is_empty(),
        "{:?}",
        sb.mutating_requests()
    );
}

#[test]
fn on_a_terminal_yes_applies() {
    if !tool_available("script") {
        return;
    }
    let sb = TestSandbox::with(fast("fresh"));
    let (code, terminal) = install_on_a_terminal(&sb, "y\n");
    assert_eq!(code, Some(0), "{terminal}");
    assert!(terminal.contains("Apply 6 changes? [y/N]"), "{terminal}");
    assert!(!sb.mutating_requests().is_empty());
    assert!(
        !terminal.contains(sb.sandbox().token()),
        "the token reached the terminal"
    );
}

/// `--timeout` bounds the run, not the user: an answer typed after the whole budget has
/// passed still gets the full budget for the changes and their waits.
#[test]
fn time_at_the_prompt_does_not_count_against_the_timeout() {
    tool_available("script");
    let sb = TestSandbox::with(fast("fresh"));
    let started = Instant::now();
    let (code, terminal) =
        install_on_a_terminal_after(&sb, "y\n", Duration::from_secs(9), &["--timeout", "8s"]);
    assert!(started.elapsed() >= Duration::from_secs(9));
    assert_eq!(code, Some(0), "{terminal}");
    assert!(!sb.mutating_requests().is_empty());
}
