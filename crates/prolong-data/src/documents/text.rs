//! A plain-text file is one document; its id is the file name.

use std::path::Path;

use super::{Document, Record, SkipReason, Skipped};

pub fn read_text(path: &Path) -> std::io::Result<Record> {
    let bytes = std::fs::read(path)?;
    let id = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let skip = |reason, detail: String| {
        Err(Skipped {
            reason,
            file: path.into(),
            line: 0,
            detail,
        })
    };
    Ok(match String::from_utf8(bytes) {
        Err(e) => skip(SkipReason::InvalidUtf8, e.utf8_error().to_string()),
        Ok(text) if text.trim().is_empty() => skip(SkipReason::EmptyDocument, "no text".into()),
        Ok(text) => Ok(Document {
            id,
            text,
            file_of: None,
        }),
    })
}
