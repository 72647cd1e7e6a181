//! Output on a terminal and off it: the live progress line (a pseudo-terminal from `script`)
//! and none off a terminal; `--color`, `NO_COLOR` and `CLICOLOR_FORCE`.

use std::time::Duration;

use crate::confirm::install_on_a_terminal_after;
use crate::install::{fast, install, target};
use crate::support::{TestSandbox, assert_success, stderr, stdout, tool_available};

const ERASE_LINE: &str = "\r\x1b[2K";

#[test]
fn on_a_terminal_a_live_line_shows_the_running_wait_with_its_elapsed_time() {
    assert!(tool_available("script"));
    // The control plane takes ~2.5 s: long enough for the live line to be drawn.
    let sb = TestSandbox::with(fast("fresh").set("timing.cpr_ready_ms", "2500"));
    let (code, terminal) = install_on_a_terminal_after(&sb, "", Duration::ZERO, &["--yes"]);
    assert_eq!(code, Some(0), "{terminal}");
    let live: Vec<&str> = terminal
        .split(ERASE_LINE)
        .skip(1)
        .filter(|s| s.starts_with('['))
        .collect();
    assert!(!live.is_empty(), "no live line drawn:\n{terminal:?}");
    assert!(
        live.iter()
            .any(|l| l.starts_with("[1s] ") || l.starts_with("[2s] ")),
        "the elapsed time counts up: {live:?}"
    );
    // The last thing on the terminal is not a live line: it was erased at the end.
    let tail = terminal.rsplit(ERASE_LINE).next().unwrap_or_default();
    assert!(!tail.starts_with('['), "the live line stays: {tail:?}");
}

#[test]
fn off_a_terminal_output_has_no_control_characters_even_while_waiting() {
    let sb = TestSandbox::with(fast("fresh").set("timing.cpr_ready_ms", "1500"));
    let o = install(&sb, &target(&sb, "cluster-1"), &["--yes"]);
    assert_success(&o, "install");
    for (name, text) in [("stdout", stdout(&o)), ("stderr", stderr(&o))] {
        assert!(
            !text.contains('\x1b') && !text.contains('\r'),
            "{name} holds control characters: {text:?}"
        );
    }
}

#[test]
fn color_always_paints_off_a_terminal_and_color_never_does_not_on_one() {
    assert!(tool_available("script"));
    let sb = TestSandbox::with(fast("installed"));
    let o = install(
        &sb,
        &target(&sb, "cluster-1"),
        &["--dry-run", "--color", "always"],
    );
    assert_success(&o, "install --color always");
    assert!(stdout(&o).contains("\x1b[32m✔"), "{:?}", stdout(&o));

    let (code, terminal) =
        install_on_a_terminal_after(&sb, "", Duration::ZERO, &["--dry-run", "--color", "never"]);
    assert_eq!(code, Some(0), "{terminal}");
    assert!(terminal.contains('✔'), "{terminal:?}");
    assert!(!terminal.contains("\x1b[3"), "coloured: {terminal:?}");
}

#[test]
fn clicolor_force_paints_off_a_terminal_unless_no_color_is_set() {
    let sb = TestSandbox::with(fast("installed"));
    let run = |no_color: bool| {
        let mut cmd = sb.asm();
        cmd.env("CLICOLOR_FORCE", "1")
            .env("ASM_RETRY_POLICY", "fast");
        if !no_color {
            cmd.env_remove("NO_COLOR");
        }
        cmd.args(["install", "--managed"])
            .args(target(&sb, "cluster-1"))
            .args(["--enable-all", "--dry-run"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let forced = run(false);
    assert_success(&forced, "CLICOLOR_FORCE=1");
    assert!(
        stdout(&forced).contains("\x1b[32m✔"),
        "{:?}",
        stdout(&forced)
    );
    let plain = run(true);
    assert_success(&plain, "CLICOLOR_FORCE=1 NO_COLOR=1");
    assert!(!stdout(&plain).contains('\x1b'), "{:?}", stdout(&plain));
}

#[test]
fn a_bad_color_value_is_exit_2_naming_the_flag() {
    let sb = TestSandbox::start("installed");
    let o = install(
        &sb,
        &target(&sb, "cluster-1"),
        &["--dry-run", "--color", "sometimes"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--color"), "{}", stderr(&o));
    assert!(sb.requests().is_empty());
}
