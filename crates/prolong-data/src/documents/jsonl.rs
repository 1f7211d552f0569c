//! JSON Lines: one JSON object a line. [`JsonLines`] parses the lines (other
//! readers of JSONL, such as chat conversations, take their objects from it);
//! [`JsonlRecords`] takes the document text from a named field.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Document, Fields, Record, RepoFile, SkipReason, Skipped};

const UTF8_BOM: &[u8] = "\u{feff}".as_bytes();

/// One parsed line: its 1-based line number and its object.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonLine {
    pub line: u64,
    pub object: serde_json::Map<String, Value>,
}

/// The objects of a JSONL stream, in order. Blank lines are not records; a
/// line that is not UTF-8 or not a JSON object is a skip at its line; a read
/// error (a compressed stream that breaks off) is a skip that ends the file.
pub struct JsonLines<R> {
    path: PathBuf,
    reader: BufReader<R>,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<R: Read> JsonLines<R> {
    pub fn new(path: &Path, reader: R) -> Self {
        JsonLines {
            path: path.into(),
            reader: BufReader::with_capacity(1 << 20, reader),
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    fn skipped(&self, reason: SkipReason, detail: String) -> Skipped {
        Skipped::new(reason, &self.path, self.line, detail)
    }

    fn parse(&self) -> Result<JsonLine, Skipped> {
        let text = std::str::from_utf8(&self.buf)
            .map_err(|e| self.skipped(SkipReason::InvalidUtf8, e.to_string()))?;
        let object = serde_json::from_str(text)
            .map_err(|e| self.skipped(SkipReason::MalformedJson, e.to_string()))?;
        Ok(JsonLine {
            line: self.line,
            object,
        })
    }
}

impl<R: Read> Iterator for JsonLines<R> {
    type Item = Result<JsonLine, Skipped>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            self.line += 1;
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(self.skipped(SkipReason::CorruptStream, e.to_string())));
                }
            }
            while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                self.buf.pop();
            }
            // A UTF-8 byte order mark (editors on Windows write one) starts
            // the file, not the first object.
            if self.line == 1 && self.buf.starts_with(UTF8_BOM) {
                self.buf.drain(..UTF8_BOM.len());
            }
            // Blank lines separate nothing in JSONL; they are not records.
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(self.parse());
        }
    }
}

/// Documents from JSON lines: the text in `fields.text`, the id in
/// `fields.id` (else `FILE:LINE`); rows [`Fields::select`] rejects are
/// `not_selected` skips; [`Fields::group`] fills [`Document::file_of`].
pub struct JsonlRecords<R> {
    lines: JsonLines<R>,
    stem: String,
    fields: Fields,
}

impl<R: Read> JsonlRecords<R> {
    pub fn new(path: &Path, reader: R, fields: Fields) -> Self {
        JsonlRecords {
            lines: JsonLines::new(path, reader),
            stem: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            fields,
        }
    }

    fn document(&self, JsonLine { line, object }: JsonLine) -> Record {
        let skipped = |reason, detail| {
            Err(Skipped {
                reason,
                file: self.lines.path.clone(),
                line,
                detail,
            })
        };
        if let Some(select) = &self.fields.select {
            let value = lookup(&object, &select.field);
            if !select.keeps(value.and_then(Value::as_str)) {
                let found = value.map_or("missing".into(), |v| v.to_string());
                return skipped(
                    SkipReason::NotSelected,
                    format!("{} is {found}", select.field),
                );
            }
        }
        let text = match object.get(&self.fields.text) {
            None => {
                return skipped(
                    SkipReason::MissingTextField,
                    format!("no field {:?}", self.fields.text),
                );
            }
            Some(Value::String(s)) => s,
            Some(other) => {
                let kind = match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a bool",
                    Value::Number(_) => "a number",
                    Value::Array(_) => "an array",
                    _ => "an object",
                };
                return skipped(
                    SkipReason::TextNotAString,
                    format!("field {:?} is {kind}", self.fields.text),
                );
            }
        };
        if text.trim().is_empty() {
            return skipped(SkipReason::EmptyDocument, "no text".into());
        }
        let id = match self.fields.id.as_ref().and_then(|f| object.get(f)) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => format!("{}:{}", self.stem, line),
        };
        let file_of = match &self.fields.group {
            None => None,
            Some(group) => {
                let get = |field: &str| lookup(&object, field).and_then(Value::as_str);
                match (get(&group.repo), get(&group.path)) {
                    (Some(repo), Some(path)) => Some(RepoFile {
                        repo: repo.into(),
                        path: path.into(),
                        line,
                    }),
                    _ => {
                        return skipped(
                            SkipReason::MissingGroupField,
                            format!("no string {:?} and {:?}", group.repo, group.path),
                        );
                    }
                }
            }
        };
        Ok(Document {
            id,
            text: text.clone(),
            file_of,
        })
    }
}

/// The value at a dotted `path` (`meta.redpajama_set_name`): a key holding
/// the whole path wins, else the part before the first dot names an object
/// to look into.
fn lookup<'a>(object: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = object.get(path) {
        return Some(value);
    }
    let (head, rest) = path.split_once('.')?;
    match object.get(head)? {
        Value::Object(inner) => lookup(inner, rest),
        _ => None,
    }
}

impl<R: Read> Iterator for JsonlRecords<R> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let line = self.lines.next()?;
        Some(line.and_then(|l| self.document(l)))
    }
}
