//! The layering of `src/`, as a test: each module may use only modules of lower layers, so the
//! import graph has no circle and no upward edge. A new module must be placed here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Lowest first. Test-only helpers (`craft`, `fuzzing`) may use anything and are not listed.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["limits"],
    &["time", "fs"],
    &["format"],
    &["crypto"],
    &["keys", "oms"],
    &["trust"],
    &["state"],
    &["archive", "scan"],
    &["verify"],
    &["seal", "open", "detached"],
    &["countersign", "report", "models", "oci"],
];
const TEST_ONLY: &[&str] = &["craft", "fuzzing"];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if p.file_name().unwrap() != "bin" {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module `file` belongs to (`src/seal/stored.rs` -> `seal`), if any.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let m = first.trim_end_matches(".rs").to_owned();
    (m != "lib").then_some(m)
}

/// Every `crate::NAME` a file names outside its `#[cfg(test)]` module, and the names inside
/// `use crate::{...}`.
fn uses(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find("};").unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.insert(name);
            }
        } else {
            out.insert(
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn every_module_uses_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(m) = module_of(&src, f) else {
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for u in uses(&text) {
            if u != m && (layer(&u).is_some() || TEST_ONLY.contains(&u.as_str())) {
                edges.entry(m.clone()).or_default().insert(u);
            }
        }
    }
    let mut wrong = Vec::new();
    for (from, tos) in &edges {
        if TEST_ONLY.contains(&from.as_str()) {
            continue;
        }
        let Some(lf) = layer(from) else {
            wrong.push(format!("{from} is in no layer: place it in LAYERS"));
            continue;
        };
        for to in tos {
            match layer(to) {
                Some(lt) if lt < lf => {}
                _ => wrong.push(format!(
                    "{from} (layer {lf}) uses {to} (layer {:?})",
                    layer(to)
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "upward or sideways edges:\n{}",
        wrong.join("\n")
    );
    assert!(edges.len() > 10, "the scan saw the modules: {edges:?}");
}

#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    rust_files(&src.join("bin"), &mut files);
    let big: Vec<String> = files
        .iter()
        .map(|f| (f, std::fs::read_to_string(f).unwrap().lines().count()))
        .filter(|(_, n)| *n > 1000)
        .map(|(f, n)| format!("{}: {n} lines", f.display()))
        .collect();
    assert!(big.is_empty(), "{}", big.join("\n"));
}
