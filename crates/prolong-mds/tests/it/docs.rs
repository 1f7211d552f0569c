//! The documentation ships with the code: every `docs/<page>.md` that a source file,
//! recipe, schema, script or doc page cites exists in the repository, every section it
//! names (`docs/<page>.md, "Section"`) is a heading of that page, and every relative link
//! between the pages (`[text](page.md#anchor)`) resolves. Citations of pages that were
//! never written are how a user ends up with no format spec; this keeps them honest.
//!
//! It lives with the format crate because that crate's docs cite docs/mds-format.md and
//! it is the cheapest crate to build; it reads the whole repository's text files.

use std::path::{Path, PathBuf};

/// The repository root (two levels above this crate).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `file` as a path in the repository, for messages.
fn shown(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string()
}

/// Text files under `dir` whose names end with one of `exts`, skipping build output.
fn text_files(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_dir() {
            if !matches!(name.as_ref(), "target" | "cache" | "corpus" | ".git") {
                text_files(&path, exts, out);
            }
        } else if exts.iter().any(|e| name.ends_with(e)) {
            out.push(path);
        }
    }
}

/// Every `docs/<page>.md` in `text`, with the section named right after it when there
/// is one: `docs/<page>.md, "Section"` (or `\"Section\"` inside JSON strings).
fn citations(text: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("docs/") {
        let after = &rest[at + "docs/".len()..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .unwrap_or(after.len());
        // A sentence's full stop is not part of the name.
        let name = after[..name_len].trim_end_matches('.');
        rest = &after[name.len()..];
        if !name.ends_with(".md") || name.contains('/') {
            continue;
        }
        let tail = rest.trim_start_matches(',').trim_start();
        let section = tail
            .strip_prefix("\\\"")
            .and_then(|t| t.split_once("\\\""))
            .or_else(|| tail.strip_prefix('"').and_then(|t| t.split_once('"')))
            .map(|(s, _)| words(s));
        found.push((name.to_string(), section));
    }
    found
}

/// A section name as cited, its words joined by single spaces: a citation may wrap onto
/// the next comment line (`//! pass"`), whose comment marker is not part of the name.
fn words(section: &str) -> String {
    section
        .split_whitespace()
        .filter(|w| !w.chars().all(|c| matches!(c, '/' | '!' | '#')))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The headings of a Markdown page, without their `#`s.
fn headings(page: &str) -> Vec<String> {
    page.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .collect()
}

/// GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// What is wrong with a reference (`what`, as a message names it) from `file` to the
/// page `page`, when anything is: the page does not exist, or the reference names a
/// heading (`wanted`) that is no heading of the page as `key` writes headings.
fn broken_reference(
    file: &Path,
    what: &str,
    page: &Path,
    wanted: Option<&str>,
    key: fn(&str) -> String,
) -> Option<String> {
    let file = shown(&root(), file);
    let Ok(text) = std::fs::read_to_string(page) else {
        return Some(format!("{file}: {what}: no such file"));
    };
    let wanted = wanted?;
    (!headings(&text).iter().any(|h| key(h) == wanted))
        .then(|| format!("{file}: {what}: no such heading \"{wanted}\""))
}

#[test]
fn cited_docs_exist_with_their_sections() {
    let root = root();
    let mut files = Vec::new();
    for dir in ["crates", "pipelines", "schemas", "scripts", "fuzz", "docs"] {
        text_files(
            &root.join(dir),
            &[
                ".rs", ".toml", ".json", ".sh", ".py", ".md", ".cu", ".cuh", ".sbatch",
            ],
            &mut files,
        );
    }
    files.extend(["README.md", "Makefile", "fixtures/README.md"].map(|f| root.join(f)));
    let mut problems = Vec::new();
    let mut cited = 0;
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (name, section) in citations(&text) {
            cited += 1;
            problems.extend(broken_reference(
                file,
                &format!("cites docs/{name}"),
                &root.join("docs").join(&name),
                section.as_deref(),
                str::to_string,
            ));
        }
    }
    assert!(
        cited >= 10,
        "found only {cited} citations of docs/: is the scan broken?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn links_between_doc_pages_resolve() {
    let root = root();
    let mut pages = Vec::new();
    text_files(&root.join("docs"), &[".md"], &mut pages);
    pages.push(root.join("README.md"));
    assert!(pages.len() >= 8, "docs/ holds {} pages", pages.len() - 1);
    let mut problems = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for (i, _) in text.match_indices("](") {
            let target = &text[i + 2..];
            let Some(end) = target.find(')') else {
                continue;
            };
            let target = &target[..end];
            if target.contains("://") || target.starts_with('#') {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target, None),
            };
            problems.extend(broken_reference(
                page,
                &format!("link to {target}"),
                &page.parent().unwrap().join(path),
                fragment,
                anchor,
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn citation_scanner_reads_sections() {
    let text = r#"(docs/recipe.md, "Tokens and packing") and docs/mds-format.md. "x"
        "description": "... (docs/recipe.md, \"The released training mixtures\")."
        docs/ of a folder, docs/code (docs/eval-recall.md, "Checks a generator must
        //! pass")"#;
    assert_eq!(
        citations(text),
        vec![
            ("recipe.md".into(), Some("Tokens and packing".into())),
            ("mds-format.md".into(), None),
            (
                "recipe.md".into(),
                Some("The released training mixtures".into())
            ),
            (
                "eval-recall.md".into(),
                Some("Checks a generator must pass".into())
            ),
        ]
    );
    assert_eq!(
        anchor("Running the corpus on many machines"),
        "running-the-corpus-on-many-machines"
    );
}
