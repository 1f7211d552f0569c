//! The text of a repository's document, and its JSONL record.
//!
//! # Text format
//!
//! The kept files of a repository, in byte order of their paths, each as a
//! header line `==> PATH <==` followed by the file's text; files are
//! separated by one blank line. A file whose text does not end with `\n`
//! gets one. For files `a.rs` (`fn a() {}\n`) and `src/b.py` (`x = 1`,
//! no final newline) the text is
//!
//! ```text
//! ==> a.rs <==
//! fn a() {}
//!
//! ==> src/b.py <==
//! x = 1
//! ```
//!
//! i.e. `"==> a.rs <==\nfn a() {}\n\n==> src/b.py <==\nx = 1\n"`: exactly
//! what `tail -n +1 a.rs src/b.py` prints, a format models have seen in the
//! wild and one that reads as "the path, then the file". PATH is the path
//! relative to the repository root with `/` separators, in UTF-8, with no
//! control characters. The text ends with the last file's final `\n` (no
//! blank line after it).
//!
//! The format is unambiguous: a file with a line of the header's form
//! (`==> ` ... ` <==`, see [`is_header_like`]) is skipped ("header_collision"),
//! so the header lines of a document are exactly its lines of that form, and
//! each file's text is what lies between its header and the blank line before
//! the next header (less the added final newline, if the file had none).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Starts a file's header line.
pub const HEADER_OPEN: &str = "==> ";
/// Ends a file's header line (before its `\n`).
pub const HEADER_CLOSE: &str = " <==";

/// A line that has the form of a file header.
pub fn is_header_like(line: &str) -> bool {
    let line = line.strip_suffix('\r').unwrap_or(line);
    line.len() >= HEADER_OPEN.len() + HEADER_CLOSE.len()
        && line.starts_with(HEADER_OPEN)
        && line.ends_with(HEADER_CLOSE)
}

/// Builds a document's text file by file, in the order given (the caller
/// sorts by path).
#[derive(Debug, Default)]
pub struct TextBuilder {
    text: String,
    files: u64,
    bytes: u64,
}

impl TextBuilder {
    pub fn new() -> TextBuilder {
        TextBuilder::default()
    }

    /// Appends one file: separator, header, text, final newline if missing.
    pub fn push(&mut self, path: &str, content: &str) {
        if self.files > 0 {
            self.text.push('\n');
        }
        self.text.push_str(HEADER_OPEN);
        self.text.push_str(path);
        self.text.push_str(HEADER_CLOSE);
        self.text.push('\n');
        self.text.push_str(content);
        if !content.ends_with('\n') {
            self.text.push('\n');
        }
        self.files += 1;
        self.bytes += content.len() as u64;
    }

    /// Files pushed so far.
    pub fn files(&self) -> u64 {
        self.files
    }

    /// Bytes of file content pushed so far (headers and separators not counted).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// The text of a document made of `files` (path, text), in the order given.
pub fn render<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut builder = TextBuilder::new();
    for (path, content) in files {
        builder.push(path, content);
    }
    builder.finish()
}

/// One line of the output JSONL (see schemas/document.schema.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The repository's name: its entry in the input folder.
    pub id: String,
    /// The corpus source (`--source`, "repos" by default).
    pub source: String,
    pub text: String,
    pub metadata: RepoMetadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoMetadata {
    /// The repository's name: its entry in the input folder.
    pub repo: String,
    /// "git" (with a working tree), "bare" (a bare git repository) or "folder".
    pub kind: String,
    /// The commit of HEAD whose tree was read (git repositories only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub commit: Option<String>,
    /// Files in the text.
    pub files: u64,
    /// Bytes of those files' content (headers and separators not counted).
    pub bytes: u64,
    /// Files left out, by reason (see `Skip`).
    pub skipped: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format() {
        assert_eq!(
            render([("a.rs", "fn a() {}\n"), ("src/b.py", "x = 1")]),
            "==> a.rs <==\nfn a() {}\n\n==> src/b.py <==\nx = 1\n"
        );
        assert!(is_header_like("==> x <=="));
        assert!(is_header_like("==> x <==\r"));
        assert!(!is_header_like("==> x"));
        assert!(!is_header_like("==> <=="));
    }
}
