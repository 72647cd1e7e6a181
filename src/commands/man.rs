//! `asm man [--dir DIR]`: man pages rendered by clap_mangen from the clap tree, one per
//! command and subcommand (`asm.1`, `asm-install.1`, `asm-sandbox-serve.1`, …).

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::Cli;
use crate::cli::generate::ManArgs;
use crate::error::{Error, Result, exit};
use crate::output::Printer;

/// Man section of every page (user commands).
const SECTION: &str = "1";

/// Writes every page into `--dir` (one progress line per file), or prints the top page.
pub fn run(args: &ManArgs, printer: &Printer) -> Result<i32> {
    let pages = render_pages()?;
    match &args.dir {
        None => {
            let top = pages
                .into_iter()
                .next()
                .map(|(_, text)| text)
                .unwrap_or_default();
            printer.result(&top);
        }
        Some(dir) => {
            for path in write_pages(dir, &pages)? {
                printer.progress(&format!("wrote {}", path.display()));
            }
        }
    }
    Ok(exit::SUCCESS)
}

/// Every page as (file name, roff text), the top page first, then the subcommands depth
/// first; hidden commands and clap's `help` subcommand have none.
pub fn render_pages() -> Result<Vec<(String, String)>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // build() gives subcommands their display names (`asm-install`), the page titles.
    cmd.build();
    let mut pages = Vec::new();
    render_into(&cmd, &mut pages)?;
    Ok(pages)
}

fn render_into(cmd: &clap::Command, pages: &mut Vec<(String, String)>) -> Result<()> {
    let title = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string();
    let mut roff = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(title.clone())
        .section(SECTION)
        .render(&mut roff)
        .map_err(|e| Error::apply("ASM-E999", format!("rendering the man page {title}: {e}")))?;
    pages.push((
        format!("{title}.{SECTION}"),
        String::from_utf8_lossy(&roff).into_owned(),
    ));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render_into(sub, pages)?;
    }
    Ok(())
}

/// Creates `dir` if missing and writes the pages into it; returns the paths written.
fn write_pages(dir: &Path, pages: &[(String, String)]) -> Result<Vec<PathBuf>> {
    let failed = |what: &Path, e: std::io::Error| {
        Error::apply("ASM-E902", format!("cannot write {}: {e}", what.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
    let mut written = Vec::with_capacity(pages.len());
    for (name, text) in pages {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| failed(&path, e))?;
        written.push(path);
    }
    Ok(written)
}
