//! The process environment, captured once and passed down, so that a whole command can run
//! in-process in a test with an environment of the test's choosing.

use std::collections::BTreeMap;
use std::io::IsTerminal;

/// `--color`: when output may carry ANSI colour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set; `CLICOLOR_FORCE` forces it off a terminal.
    #[default]
    Auto,
    Always,
    Never,
}

/// Environment variables and terminal facts a command may consult.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub vars: BTreeMap<String, String>,
    pub stdin_is_tty: bool,
    pub stdout_is_tty: bool,
    pub stderr_is_tty: bool,
    /// `--color` (known once the command line is parsed).
    pub color: ColorChoice,
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
            color: ColorChoice::Auto,
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

    /// Whether a stream (a terminal or not) may carry colour: `--color always|never` decide;
    /// with `auto`, a non-empty `NO_COLOR` turns it off (https://no-color.org), then
    /// `CLICOLOR_FORCE` (set, not `0`) turns it on off a terminal
    /// (https://bixense.com/clicolors/), else a terminal has colour.
    pub fn color_for(&self, is_tty: bool) -> bool {
        match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                if self.var("NO_COLOR").is_some() {
                    false
                } else if self.var("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
                    true
                } else {
                    is_tty
                }
            }
        }
    }

    /// Whether colour may be used on stderr.
    pub fn stderr_color(&self) -> bool {
        self.color_for(self.stderr_is_tty)
    }

    /// Whether colour may be used on stdout.
    pub fn stdout_color(&self) -> bool {
        self.color_for(self.stdout_is_tty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)], color: ColorChoice) -> Environment {
        Environment {
            color,
            ..Environment::with_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        }
    }

    #[test]
    fn color_follows_the_flag_then_no_color_then_clicolor_force_then_the_terminal() {
        use ColorChoice::*;
        type Case = (
            &'static [(&'static str, &'static str)],
            ColorChoice,
            bool,
            bool,
        );
        let cases: [Case; 9] = [
            (&[], Auto, true, true),
            (&[], Auto, false, false),
            (&[("NO_COLOR", "1")], Auto, true, false),
            (&[("NO_COLOR", "")], Auto, true, true),
            (&[("CLICOLOR_FORCE", "1")], Auto, false, true),
            (&[("CLICOLOR_FORCE", "0")], Auto, false, false),
            (
                &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")],
                Auto,
                false,
                false,
            ),
            (&[("NO_COLOR", "1")], Always, false, true),
            (&[("CLICOLOR_FORCE", "1")], Never, true, false),
        ];
        for (vars, choice, tty, expected) in cases {
            assert_eq!(
                env(vars, choice).color_for(tty),
                expected,
                "{vars:?} {choice:?} tty={tty}"
            );
        }
    }
}
