//! HELMET's released data files: where each is, and its items read (only
//! the rows HELMET evaluates kept), with errors naming the file and line.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{HelmetItem, helmet_selection, json_kv_records};
use crate::recall::task::Task;

/// HELMET's file for `task` at `length` under its `data` folder.
pub fn data_file(dir: &Path, task: Task, length: usize) -> Option<PathBuf> {
    Some(match task {
        Task::JsonKv => dir
            .join("json_kv")
            .join(format!("test_k{}_dep6.jsonl", json_kv_records(length)?)),
        _ => dir
            .join("ruler")
            .join(task.name())
            .join(format!("validation_{length}.jsonl")),
    })
}

/// A HELMET data file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HelmetDataError {
    #[error("HELMET has no json_kv file for length {0} (it has 4K, 8K, 16K, 32K, 64K, 128K)")]
    NoFile(usize),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {what}")]
    Bad {
        path: String,
        line: usize,
        what: String,
    },
    #[error("{path}: no items")]
    Empty { path: String },
}

/// The longest line read from a data file: a 128K-token context is ~0.5 MB, a 1M one
/// ~5 MB.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// The items of a HELMET data file HELMET evaluates with `max_test_samples = limit`
/// ([`helmet_selection`] of its rows, in that order), with the file's line of each.
/// Two passes: the rows are counted, then only the chosen ones are kept.
pub fn read_data_file(
    path: &Path,
    task: Task,
    limit: usize,
) -> Result<Vec<(usize, HelmetItem)>, HelmetDataError> {
    let mut rows = 0;
    for_each_row(path, |_, _| {
        rows += 1;
        Ok(())
    })?;
    if rows == 0 {
        return Err(HelmetDataError::Empty {
            path: path.display().to_string(),
        });
    }
    let chosen = helmet_selection(rows, limit);
    // Row → its place in the selection.
    let mut place = vec![None; rows];
    for (i, &row) in chosen.iter().enumerate() {
        place[row] = Some(i);
    }
    let mut items: Vec<Option<(usize, HelmetItem)>> = vec![None; chosen.len()];
    let mut row = 0;
    for_each_row(path, |line_number, line| {
        if let Some(i) = place.get(row).copied().flatten() {
            let v: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
            items[i] = Some((line_number, item_of(task, &v)?));
        }
        row += 1;
        Ok(())
    })?;
    // A file that changed between the passes has rows missing.
    items
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| HelmetDataError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other("the file changed while it was read"),
        })
}

/// Calls `f(line number, line)` for every non-blank line of `path`; an `Err(what)`
/// from `f` becomes the error naming the file and line.
fn for_each_row(
    path: &Path,
    mut f: impl FnMut(usize, &[u8]) -> Result<(), String>,
) -> Result<(), HelmetDataError> {
    let name = path.display().to_string();
    let io = |source| HelmetDataError::Io {
        path: name.clone(),
        source,
    };
    let mut reader = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        let bad = |what: String| HelmetDataError::Bad {
            path: name.clone(),
            line: number,
            what,
        };
        if line.len() > MAX_LINE_BYTES {
            return Err(bad(format!("a line longer than {MAX_LINE_BYTES} bytes")));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        f(number, &line).map_err(bad)?;
    }
    Ok(())
}

/// The fields HELMET's data.py reads from one line.
fn item_of(task: Task, v: &Value) -> Result<HelmetItem, String> {
    let text = |key: &str| -> Result<String, String> {
        match v.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("field {key:?} is not a string")),
            None => Err(format!("no field {key:?}")),
        }
    };
    let strings = |key: &str| -> Result<Vec<String>, String> {
        match v.get(key) {
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("field {key:?} holds a non-string")),
            Some(_) => Err(format!(
                "field {key:?} is not a string or a list of strings"
            )),
            None => Err(format!("no field {key:?}")),
        }
    };
    // data.py: `answer` when the item has one, else `outputs`.
    let answers = if v.get("answer").is_some() {
        strings("answer")?
    } else {
        strings("outputs")?
    };
    let context = text("context")?;
    Ok(match task {
        Task::JsonKv => {
            let demos = match v.get("demos") {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|d| match d.as_array().map(Vec::as_slice) {
                        Some([Value::String(k), Value::String(v)]) => Ok((k.clone(), v.clone())),
                        _ => Err("a demo is not a [key, value] pair of strings".to_owned()),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => return Err("field \"demos\" is not a list".into()),
                None => return Err("no field \"demos\"".into()),
            };
            HelmetItem {
                task,
                context,
                query: text("question")?,
                type_needle_v: String::new(),
                demos,
                answers,
            }
        }
        _ => HelmetItem {
            task,
            context,
            query: text("query")?,
            type_needle_v: text("type_needle_v")?,
            demos: Vec::new(),
            answers,
        },
    })
}
