//! The crate's modules depend on each other one way only: no import cycle.
//!
//! A module here is a top-level module of `src/` (`config`, `model`, `train`, …), except
//! that `ops::cuda` counts apart from the rest of `ops`: the CPU ops dispatch to it, so
//! it must not use them back. A module depends on another when its code (comments and
//! `#[cfg(test)] mod tests` left out) names a `crate::OTHER` path. Cycles used to run
//! checkpoint → model → config → checkpoint, ops ⇄ ops::cuda, the crate's error ⇄
//! dist, and stage ⇄ train; each made a change in one module ripple around the loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`, build output and fuzzing corpora left out.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap_or_default();
        if path.is_dir() && !["target", "corpus", "artifacts"].iter().any(|n| name == *n) {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file of `src/` belongs to (`None` for the crate root and the binary).
fn module_of(rel: &Path) -> Option<String> {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    match parts.as_slice() {
        [root] if root == "lib" || root == "main" => None,
        [first, ..] if first == "commands" => None, // the binary's commands
        [ops, cuda, ..] if ops == "ops" && cuda == "cuda" => Some("ops::cuda".into()),
        [first, ..] => Some(first.clone()),
        [] => None,
    }
}

/// The code of a file without comments and without its `#[cfg(test)] mod tests`.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules a piece of code names as `crate::NAME` (and `crate::ops::cuda`).
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        assert!(
            !after.starts_with('{'),
            "a grouped `crate::{{…}}` import: name each module on its own line"
        );
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let cuda = name == "ops" && after[name.len()..].starts_with("::cuda");
        match name.as_str() {
            "Error" | "Result" => out.insert("error".to_string()),
            _ if cuda => out.insert("ops::cuda".to_string()),
            _ => out.insert(name),
        };
        rest = after;
    }
    out
}

#[test]
fn no_import_cycles_among_the_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut deps: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let Some(module) = module_of(rel) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let entry = deps.entry(module.clone()).or_default();
        for other in named_modules(&code(&text)) {
            // The crate's re-exports at the root (`crate::PackedSequence`) are not modules.
            let is_module = src.join(&other).is_dir()
                || src.join(format!("{other}.rs")).is_file()
                || other == "ops::cuda";
            if other != module && is_module {
                let who = rel.display().to_string();
                entry.entry(other).or_default().insert(who);
            }
        }
    }
    assert!(deps.len() > 8, "too few modules found: {:?}", deps.keys());

    // A cycle is a path from a module back to itself: search from each one.
    let mut cycles = Vec::new();
    for start in deps.keys() {
        let mut stack = vec![vec![start.clone()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = path.last().unwrap();
            for next in deps.get(last).map(|m| m.keys()).into_iter().flatten() {
                if next == start {
                    let hops: Vec<String> = path
                        .iter()
                        .zip(path.iter().skip(1).chain([start]))
                        .map(|(a, b)| format!("{a} → {b} ({:?})", deps[a][b]))
                        .collect();
                    cycles.push(hops.join(", "));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push(longer);
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

/// The scan sees `crate::` paths in code, not in comments or test modules.
#[test]
fn the_module_scan_sees_crate_paths_and_not_comments() {
    let found = named_modules(&code(
        "use crate::model::Llama;\n// crate::train is only a comment\nlet x = crate::ops::cuda::f();\n\
         fn f() -> crate::Result<()> {}\n#[cfg(test)]\nmod tests {\n use crate::plan;\n}",
    ));
    let want: BTreeSet<String> = ["model", "ops::cuda", "error"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(found, want);
    assert_eq!(
        module_of(Path::new("ops/cuda/nccl.rs")).as_deref(),
        Some("ops::cuda")
    );
    assert_eq!(module_of(Path::new("ops/rope.rs")).as_deref(), Some("ops"));
    assert_eq!(module_of(Path::new("lib.rs")), None);
}
/// No Rust file of the repository is over 500 lines: a file longer than that holds more
/// than one thing, and is split by what it does.
#[test]
fn no_rust_file_is_over_500_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["crates", "fuzz"] {
        let dir = root.join(dir);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
    }
    assert!(
        files.len() > 100,
        "too few files found under {}",
        root.display()
    );
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 500).then(|| format!("{} ({n} lines)", f.strip_prefix(&root).unwrap().display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 500 lines: {long:?}");
}
