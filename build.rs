//! Sets `ASM_VERSION` for `asm --version`: the package version, plus the git commit it was
//! built from when `git` and a repository are at hand (`0.1.0 (4f2c9e1)`). Without them
//! (a crate tarball, no git installed) the version alone, silently. No network.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    // Only asm's own repository: a copy unpacked inside another repository (vendored
    // sources) must not report that repository's commit.
    let own_repo = git(&["rev-parse", "--show-toplevel"])
        .and_then(|top| std::fs::canonicalize(top).ok())
        .zip(std::env::var_os("CARGO_MANIFEST_DIR").and_then(|d| std::fs::canonicalize(d).ok()))
        .is_some_and(|(top, manifest)| top == manifest);
    let commit = if own_repo {
        git(&["rev-parse", "--short", "HEAD"])
    } else {
        None
    };
    let full = match &commit {
        Some(c) => format!("{version} ({c})"),
        None => version,
    };
    println!("cargo:rustc-env=ASM_VERSION={full}");
    // Rerun when HEAD moves: HEAD itself (a checkout) and the branch it points to (a
    // commit). In a worktree `.git` is a file, so ask git where they are. Only existing
    // paths are listed: cargo reruns a build script on every build for a missing one.
    println!("cargo:rerun-if-changed=build.rs");
    if commit.is_some() {
        let mut watched: Vec<PathBuf> = Vec::new();
        if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
            watched.push(PathBuf::from(head));
        }
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
            && let Some(reference) = git(&["rev-parse", "--git-path", &branch])
        {
            watched.push(PathBuf::from(reference));
        }
        if let Some(packed) = git(&["rev-parse", "--git-path", "packed-refs"]) {
            watched.push(PathBuf::from(packed));
        }
        for path in watched.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// `git ARGS` in the package directory: its trimmed stdout, or `None` on any failure.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
