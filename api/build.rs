//! Embeds the console (`api/console/`, plain files: HTML, CSS, JavaScript,
//! SVG) in the binary: writes `console_assets.rs` into `OUT_DIR`, a table
//! of every file's name, media type and bytes (`include_bytes!`), so
//! `cargo build` alone produces a binary that serves the console, with no
//! Node.js and no list of files to keep in step by hand.

use std::fmt::Write as _;
use std::path::Path;

fn media_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        _ => return None,
    })
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = Path::new(&manifest).join("console");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<(String, String, &'static str)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            println!("cargo:rerun-if-changed={}", path.display());
            // Only plain files of known types, named safely for a URL.
            let safe = name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if let (true, true, Some(media)) = (path.is_file(), safe, media_type(&name)) {
                files.push((name, path.display().to_string(), media));
            }
        }
    }
    files.sort();
    let mut out = String::from("/// Every console file: (name, media type, bytes).\npub static ASSETS: &[(&str, &str, &[u8])] = &[\n");
    for (name, path, media) in &files {
        let _ = writeln!(out, "    ({name:?}, {media:?}, include_bytes!({path:?})),");
    }
    out.push_str("];\n");
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    if let Err(err) = std::fs::write(Path::new(&out_dir).join("console_assets.rs"), out) {
        panic!("cannot write console_assets.rs: {err}");
    }
}
