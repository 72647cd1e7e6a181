//! What is generated from the clap tree: shell completions, man pages and `--help`. Each
//! test walks the tree itself, so a new command or flag is checked without editing the test.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output, Stdio};

use asm::cli::Cli;
use clap::CommandFactory;

use crate::support::{assert_success, stdout, tool_available};

/// One command of the tree: its path (`["install"]`, `["sandbox", "serve"]`) and its
/// visible options as typed (`--project`, or `-x` for a short-only flag), globals included.
#[derive(Debug)]
struct Walked {
    path: Vec<String>,
    flags: Vec<String>,
}

/// Every visible command, the top one first (path `[]`).
fn walk() -> Vec<Walked> {
    let mut root = Cli::command().disable_help_subcommand(true);
    // build() propagates the global flags (-v, -q, -h, -V) into every subcommand.
    root.build();
    let mut out = Vec::new();
    walk_into(&root, Vec::new(), &mut out);
    out
}

fn walk_into(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Walked>) {
    let flags = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
        .map(|a| match (a.get_long(), a.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => unreachable!("a non-positional argument has a flag"),
        })
        .collect();
    out.push(Walked {
        path: path.clone(),
        flags,
    });
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut p = path.clone();
        p.push(sub.get_name().to_string());
        walk_into(sub, p, out);
    }
}

fn asm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_asm"))
        .args(args)
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The tree has the commands the README documents (guards the walk itself).
#[test]
fn the_walk_finds_every_command_and_its_flags() {
    let walked = walk();
    let names: Vec<String> = walked.iter().map(|w| w.path.join(" ")).collect();
    for expected in [
        "",
        "install",
        "validate",
        "apply",
        "create-remote-secret",
        "create-mesh",
        "migrate",
        "rollback",
        "sandbox",
        "sandbox serve",
        "sandbox exec",
        "completions",
        "man",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected:?} not in {names:?}"
        );
    }
    let install = walked.iter().find(|w| w.path == ["install"]).unwrap();
    for flag in [
        "--project",
        "--key-file",
        "--enable-all",
        "--plan-out",
        "--verbose",
        "--help",
    ] {
        assert!(
            install.flags.iter().any(|f| f == flag),
            "{flag} not in {:?}",
            install.flags
        );
    }
    // Hidden compatibility spellings are not offered.
    assert!(
        !install.flags.iter().any(|f| f == "--mode"),
        "{:?}",
        install.flags
    );
}

#[test]
fn bash_completion_offers_every_command_and_flag() {
    let out = asm(&["completions", "bash"]);
    assert_success(&out, "asm completions bash");
    let script = stdout(&out);
    let walked = walk();
    let mut checked = 0;
    for w in &walked {
        let section = section_of(&script, &completion_state(&w.path))
            .unwrap_or_else(|| panic!("no completion state for {:?}", w.path));
        let offered = |word: &str| {
            section
                .trim_start_matches("opts=\"")
                .trim_end_matches('"')
                .split_whitespace()
                .any(|t| t == word)
        };
        for flag in &w.flags {
            assert!(
                offered(flag),
                "{flag} of `asm {}` not completed:\n{section}",
                w.path.join(" ")
            );
        }
        // A command is offered in its parent's state.
        if let Some((last, parent)) = w.path.split_last() {
            let parent_section = section_of(&script, &completion_state(parent)).unwrap();
            assert!(
                parent_section
                    .split_whitespace()
                    .any(|t| t.trim_matches('"') == last),
                "{last} not offered after `asm {}`: {parent_section}",
                parent.join(" ")
            );
        }
        checked += 1;
    }
    assert!(checked > 0);
    assert_eq!(checked, walked.len());
}

/// clap_complete's name of the completion state after `asm PATH…`: `asm`,
/// `asm__subcmd__install`, `asm__subcmd__create__subcmd__mesh` (a dash becomes `__subcmd__`).
fn completion_state(path: &[String]) -> String {
    std::iter::once("asm".to_string())
        .chain(path.iter().map(|p| p.replace('-', "__subcmd__")))
        .collect::<Vec<_>>()
        .join("__subcmd__")
}

/// The `opts="…"` line of the completion state `state` (e.g. `asm__subcmd__install`).
fn section_of<'a>(script: &'a str, state: &str) -> Option<&'a str> {
    let start = script
        .lines()
        .position(|l| l.trim() == format!("{state})"))
        .map(|i| script.lines().take(i).map(|l| l.len() + 1).sum::<usize>())?;
    let rest = &script[start..];
    let opts = rest.find("opts=\"")?;
    let line_end = rest[opts..].find('\n').map_or(rest.len(), |e| opts + e);
    Some(&rest[opts..line_end])
}

#[test]
fn bash_loads_the_completion_script() {
    assert!(tool_available("bash"));
    let script = format!(
        "source <('{}' completions bash) && complete -p asm",
        env!("CARGO_BIN_EXE_asm")
    );
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &script])
        .output()
        .unwrap();
    assert_success(&out, "bash sourcing the completions");
    assert!(
        stdout(&out).contains(" -F _asm ") && stdout(&out).trim_end().ends_with(" asm"),
        "{}",
        stdout(&out)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn zsh_loads_the_completion_script() {
    if !tool_available("zsh") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = asm(&["completions", "zsh"]);
    assert_success(&out, "asm completions zsh");
    // zsh finds completion functions as files named `_COMMAND` on $fpath.
    std::fs::write(dir.path().join("_asm"), &out.stdout).unwrap();
    let script = format!(
        "fpath=('{}' $fpath); autoload -Uz compinit && compinit -u -d '{}/zcompdump' \
         && autoload -Uz _asm && print -r -- ${{_comps[asm]}}",
        dir.path().display(),
        dir.path().display()
    );
    let out = Command::new("zsh")
        .args(["-f", "-c", &script])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_success(&out, "zsh loading the completions");
    assert_eq!(stdout(&out).trim(), "_asm");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_supported_shell_gets_a_completion_script_and_others_are_refused() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = asm(&["completions", shell]);
        assert_success(&out, shell);
        assert!(stdout(&out).contains("install"), "{shell}: no install");
    }
    let out = asm(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `--project` as roff writes it in a man page.
fn roff(flag: &str) -> String {
    flag.replace('-', "\\-")
}

#[test]
fn man_writes_a_page_per_command_with_every_flag() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("new/man1");
    let out = asm(&["man", "--dir", target.to_str().unwrap()]);
    assert_success(&out, "asm man --dir");
    let walked = walk();
    let mut checked = 0;
    for w in &walked {
        let title = std::iter::once("asm")
            .chain(w.path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("-");
        let page = std::fs::read_to_string(target.join(format!("{title}.1")))
            .unwrap_or_else(|e| panic!("{title}.1: {e}"));
        assert!(page.contains(".TH"), "{title}.1 is not a man page");
        for flag in &w.flags {
            assert!(page.contains(&roff(flag)), "{flag} missing from {title}.1");
        }
        checked += 1;
    }
    assert!(checked > 0);
    assert_eq!(checked, walked.len());
    let files = std::fs::read_dir(&target).unwrap().count();
    assert_eq!(files, walked.len(), "one page per command, no others");

    // Without --dir: the top page on stdout.
    let out = asm(&["man"]);
    assert_success(&out, "asm man");
    let top = stdout(&out);
    assert!(top.contains("\n.TH asm 1 "), "{top}");
    assert_eq!(top, std::fs::read_to_string(target.join("asm.1")).unwrap());
}

#[test]
fn man_can_render_the_pages_it_writes() {
    if !tool_available("man") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    assert_success(
        &asm(&["man", "--dir", dir.path().to_str().unwrap()]),
        "asm man",
    );
    let out = Command::new("man")
        .arg("-l")
        .arg(dir.path().join("asm-install.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    assert_success(&out, "man -l asm-install.1");
    assert!(stdout(&out).contains("--plan-out"), "{}", stdout(&out));
}

/// The snapshots are of the default build (`asm sandbox`'s usage differs without the
/// simulator: its subcommand is optional there).
#[cfg(feature = "sandbox")]
#[test]
fn help_of_every_command_matches_its_snapshot() {
    let walked = walk();
    let mut checked = 0;
    for w in &walked {
        let mut args: Vec<&str> = w.path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = asm(&args);
        assert_success(&out, &format!("asm {}", args.join(" ")));
        let name = if w.path.is_empty() {
            "help-asm".to_string()
        } else {
            format!("help-asm-{}", w.path.join("-"))
        };
        insta::assert_snapshot!(name, stdout(&out));
        checked += 1;
    }
    assert!(checked > 0);
    assert_eq!(checked, walked.len());
}

#[test]
fn global_options_come_after_a_commands_own() {
    let out = asm(&["install", "--help"]);
    let help = stdout(&out);
    let at = |heading: &str| {
        help.find(&format!("\n{heading}:\n"))
            .unwrap_or_else(|| panic!("no {heading} heading:\n{help}"))
    };
    let order = [
        at("Targets"),
        at("Credentials"),
        at("What asm may change"),
        at("Control plane"),
        at("Plan and output"),
        at("Global options"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{help}");
    let global = &help[at("Global options")..];
    for flag in ["--verbose", "--quiet", "--help", "--version"] {
        assert!(
            global.contains(flag),
            "{flag} not under Global options:\n{help}"
        );
    }
    let own = &help[..at("Global options")];
    assert!(!own.contains("--verbose"), "{help}");
}

#[test]
fn version_names_the_commit_when_built_from_git() {
    let out = asm(&["--version"]);
    assert_success(&out, "asm --version");
    let line = stdout(&out);
    let version = env!("CARGO_PKG_VERSION");
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| stdout(&o).trim().to_string());
    match head {
        // The binary may predate the last commit (tests run on a build of the worktree),
        // but it names a commit of this repository.
        Some(_) => {
            let commit = line
                .trim()
                .strip_prefix(&format!("asm {version} ("))
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| panic!("no commit in {line:?}"));
            let known = Command::new("git")
                .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .unwrap();
            assert!(known.success(), "{commit} is not a commit here");
        }
        None => assert_eq!(line.trim(), format!("asm {version}")),
    }
    // -V and the version of a subcommand say the same.
    assert_eq!(stdout(&asm(&["-V"])), line);
    let sub = stdout(&asm(&["install", "--version"]));
    assert_eq!(
        sub.strip_prefix("asm-install "),
        line.strip_prefix("asm "),
        "{sub}"
    );
}
