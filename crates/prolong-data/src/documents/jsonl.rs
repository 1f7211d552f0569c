//! JSON Lines: one record a line, the text in a named field.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Document, Fields, Record, SkipReason, Skipped};

pub struct JsonlRecords<R> {
    path: PathBuf,
    stem: String,
    reader: BufReader<R>,
    fields: Fields,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<R: Read> JsonlRecords<R> {
    pub fn new(path: &Path, reader: R, fields: Fields) -> Self {
        JsonlRecords {
            path: path.into(),
            stem: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            reader: BufReader::with_capacity(1 << 20, reader),
            fields,
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    fn skipped(&self, reason: SkipReason, detail: String) -> Record {
        Err(Skipped {
            reason,
            file: self.path.clone(),
            line: self.line,
            detail,
        })
    }

    fn parse(&self) -> Record {
        let line = match std::str::from_utf8(&self.buf) {
            Ok(s) => s,
            Err(e) => return self.skipped(SkipReason::InvalidUtf8, e.to_string()),
        };
        let record: serde_json::Map<String, Value> = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(e) => return self.skipped(SkipReason::MalformedJson, e.to_string()),
        };
        let text = match record.get(&self.fields.text) {
            None => {
                return self.skipped(
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
                return self.skipped(
                    SkipReason::TextNotAString,
                    format!("field {:?} is {kind}", self.fields.text),
                );
            }
        };
        if text.trim().is_empty() {
            return self.skipped(SkipReason::EmptyDocument, "no text".into());
        }
        let id = match self.fields.id.as_ref().and_then(|f| record.get(f)) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => format!("{}:{}", self.stem, self.line),
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
                    return Some(self.skipped(SkipReason::CorruptStream, e.to_string()));
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
