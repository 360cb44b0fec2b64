//! Embeds the shipped templates (`templates/**/*.{txt,html,toml}`) into the binary: writes
//! `$OUT_DIR/builtin_templates.rs`, a sorted `&[(relative_path, include_str!(…))]` list that
//! `src/render/templates.rs` includes. Fails the build if a template cannot be listed.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        println!("cargo::warning=no templates folder at {}: the built-in template set is empty", dir.display());
        return;
    };
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        let name = entry.file_name().into_string().unwrap_or_else(|n| panic!("template name {n:?} is not UTF-8"));
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let rel = format!("{prefix}{name}");
        if path.is_dir() {
            collect(&path, &format!("{rel}/"), out);
        } else if [".txt", ".html", ".toml"].iter().any(|ext| name.ends_with(ext)) {
            out.push((rel, path));
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("templates");
    println!("cargo::rerun-if-changed=templates");
    let mut files = Vec::new();
    collect(&root, "", &mut files);
    files.sort();
    let mut code = String::from("&[\n");
    for (rel, path) in files {
        let abs = path.to_str().unwrap_or_else(|| panic!("template path {} is not UTF-8", path.display()));
        code.push_str(&format!("    ({rel:?}, include_str!({abs:?})),\n"));
    }
    code.push_str("]\n");
    // Written beside and renamed over, never rewritten in place: a build folder copied with
    // hard links (a second checkout's warm target/) must not see this checkout's templates.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let (out, tmp) = (out_dir.join("builtin_templates.rs"), out_dir.join("builtin_templates.rs.tmp"));
    std::fs::write(&tmp, code).unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, &out).unwrap_or_else(|e| panic!("cannot rename {} to {}: {e}", tmp.display(), out.display()));
}
