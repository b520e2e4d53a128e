#![cfg(not(target_arch = "wasm32"))]
//! The source's layout holds what ARCHITECTURE.md says of it: no import circle among the files of
//! `src/` (no two files that use each other, directly or around a loop: each file's concern
//! stands on the ones below it), and no file over 500 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 500;

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's module path: `src/core/engine/mod.rs` → `["crate", "core", "engine"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut path: Vec<String> = std::iter::once("crate".to_string()).chain(rel.iter().map(|p| p.to_string_lossy().into_owned())).collect();
    if matches!(path.last().map(String::as_str), Some("mod" | "lib")) {
        path.pop();
    }
    path
}

/// The code of a file without comments (doc links are not imports) and without its test module.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(") && trimmed.contains("test") {
            break;
        }
        code.push_str(line.split("//").next().unwrap_or_default());
        code.push('\n');
    }
    code
}

/// The paths the code names: `crate::a::b`, `super::x`, `self::y`, or `child::z` for a child
/// module `child` of `module`, each as the segments that follow.
fn named_paths(code: &str, module: &[String], children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !ident(bytes[i]) || (i > 0 && (ident(bytes[i - 1]) || bytes[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let mut segments = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < bytes.len() && ident(bytes[j]) {
                j += 1;
            }
            segments.push(code[start..j].to_string());
            if code[j..].starts_with("::") && j + 2 < bytes.len() && ident(bytes[j + 2]) {
                j += 2;
            } else {
                break;
            }
        }
        let first = segments[0].as_str();
        let relative = matches!(first, "crate" | "super" | "self") || children.contains(first);
        // `super::{A, B}` and `super::*` name the module itself.
        let group = code[j..].starts_with("::{") || code[j..].starts_with("::*");
        if (segments.len() > 1 || group) && relative {
            let mut base: Vec<String> = match first {
                "crate" => vec!["crate".into()],
                _ => module.to_vec(),
            };
            let mut rest = &segments[..];
            if first == "crate" || first == "self" {
                rest = &rest[1..];
            }
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            out.push(base);
        }
        i = j.max(i + 1);
    }
    out
}

#[test]
fn no_import_circle_and_no_file_over_500_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> = files.iter().map(|f| (module_of(&src, f), f.clone())).collect();
    let mut too_long = Vec::new();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        if text.lines().count() > MAX_LINES {
            too_long.push(format!("{} ({} lines)", file.display(), text.lines().count()));
        }
        let children: BTreeSet<String> =
            modules.keys().filter(|m| m.len() == module.len() + 1 && m.starts_with(module)).map(|m| m.last().unwrap().clone()).collect();
        let to = edges.entry(module.clone()).or_default();
        for path in named_paths(&code_of(&text), module, &children) {
            // The longest prefix that is a file's module.
            let target = (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains_key(p));
            if let Some(target) = target.filter(|t| t != module) {
                to.insert(target);
            }
        }
    }
    assert!(too_long.is_empty(), "files over {MAX_LINES} lines: {too_long:?}");
    // A file in a circle reaches itself.
    let mut circles = Vec::new();
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&Vec<String>> = edges[start].iter().collect();
        while let Some(m) = stack.pop() {
            if m == start {
                circles.push(modules[start].display().to_string());
                break;
            }
            if seen.insert(m.clone()) {
                stack.extend(edges.get(m).into_iter().flatten());
            }
        }
    }
    assert!(circles.is_empty(), "files in an import circle: {circles:?}");
}
