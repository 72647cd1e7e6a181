//! The process environment, captured once and passed down, so that a whole command can run
//! in-process in a test with an environment of the test's choosing.

use std::collections::BTreeMap;
use std::io::IsTerminal;

/// Environment variables and terminal facts a command may consult.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub vars: BTreeMap<String, String>,
    pub stdin_is_tty: bool,
    pub stdout_is_tty: bool,
    pub stderr_is_tty: bool,
}

impl Environment {
    /// The real process environment. Variables whose name or value is not UTF-8 are left
    /// out: none of asm's variables can hold such a value, and `std::env::vars` would panic.
    pub fn from_process() -> Self {
        Environment {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            stdin_is_tty: std::io::stdin().is_terminal(),
            stdout_is_tty: std::io::stdout().is_terminal(),
            stderr_is_tty: std::io::stderr().is_terminal(),
        }
    }

    /// An environment with only these variables and no terminal (tests).
    pub fn with_vars<I: IntoIterator<Item = (String, String)>>(vars: I) -> Self {
        Environment {
            vars: vars.into_iter().collect(),
            ..Default::default()
        }
    }

    /// A variable, if set and non-empty.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether colour may be used on stderr (a terminal, and `NO_COLOR` unset).
    pub fn stderr_color(&self) -> bool {
        self.stderr_is_tty && self.var("NO_COLOR").is_none()
    }
}
