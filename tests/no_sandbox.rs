//! A build without the cargo feature `sandbox` (`cargo test --no-default-features`): every
//! `asm sandbox` command says the simulator is not built in and exits 2.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

use crate::support::{stderr, stdout};

#[test]
fn sandbox_commands_explain_that_the_simulator_is_not_built_in() {
    let cases: [&[&str]; 4] = [
        &["sandbox"],
        &["sandbox", "serve", "--scenario", "fresh"],
        &["sandbox", "exec", "--", "true"],
        &["-v", "sandbox", "serve"],
    ];
    for args in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_asm"))
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with("error[ASM-E203]: this asm was built without the sandbox"),
            "{args:?}: {err}"
        );
        assert!(err.contains("hint: "), "{err}");
    }
}
