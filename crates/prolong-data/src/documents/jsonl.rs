//! JSON Lines: one JSON object a line. [`JsonLines`] parses the lines (other
//! readers of JSONL, such as chat conversations, take their objects from it);
//! [`JsonlRecords`] takes the document text from a named field.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Document, Fields, Record, SkipReason, Skipped};

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
        Skipped {
            reason,
            file: self.path.clone(),
            line: self.line,
            detail,
        }
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
            // Blank lines separate nothing in JSONL; they are not records.
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(self.parse());
        }
    }
}

/// Documents from JSON lines: the text in `fields.text`, the id in
/// `fields.id` (else `FILE:LINE`).
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
        Ok(Document {
            id,
            text: text.clone(),
        })
    }
}

impl<R: Read> Iterator for JsonlRecords<R> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let line = self.lines.next()?;
        Some(line.and_then(|l| self.document(l)))
    }
}
