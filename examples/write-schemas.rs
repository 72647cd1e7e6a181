//! Writes `schemas/*.json` from the types of asm's JSON documents (`asm::schemas`):
//! `cargo run --example write-schemas`. A test fails when the committed files drift.

#![allow(clippy::print_stderr)]

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    std::fs::create_dir_all(&dir)?;
    for p in asm::schemas::all() {
        std::fs::write(dir.join(p.file), asm::schemas::file_text(&p.schema))?;
        eprintln!("wrote schemas/{}", p.file);
    }
    Ok(())
}
