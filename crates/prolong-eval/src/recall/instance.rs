//! One generated instance, as a line of the `--save-instances` JSONL file
//! (schemas/recall-instance.schema.json): everything needed to run the same
//! instance elsewhere (HELMET, transformers) and score it the same way.

use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::helmet::Protocol;
use super::task::Task;

/// A prompt, its answers and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub task: Task,
    /// L: prompt tokens + generated tokens ≤ L.
    pub length: usize,
    /// Index of the sample within (task, length).
    pub sample: usize,
    /// The run's seed; with task, length and sample it determines the instance.
    pub seed: u64,
    /// The whole prompt, fed as plain text after BOS (no chat template).
    pub input: String,
    /// Every answer; each occurs exactly once in `input`.
    pub answers: Vec<String>,
    /// The key asked for.
    pub query: String,
    /// Nominal depth (0 = start, 1 = end of the context) of each answer's needle or
    /// record, in the order of `answers`.
    pub depths: Vec<f64>,
    /// Generation budget.
    pub max_new_tokens: usize,
    /// Tokens of `input` with the evaluated model's tokenizer, BOS included.
    pub prompt_tokens: usize,
    /// Haystack units in the context: filler records, distractor lines or sentences.
    pub haystack_units: usize,
    /// How it was made; absent for `fill` (BOS first, filled in the model's tokenizer).
    /// `helmet`: the tokenizer's own special tokens go around `input`.
    #[serde(default, skip_serializing_if = "Protocol::is_fill")]
    pub protocol: Protocol,
    /// Tokens HELMET's truncation cut from the end of the context; absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub truncated_tokens: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A JSONL file of instances that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InstanceFileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a recall instance: {source}")]
    Parse {
        path: String,
        line: usize,
        source: serde_json::Error,
    },
}

/// The instances as JSONL, one a line.
pub fn to_jsonl(instances: &[Instance]) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    for inst in instances {
        serde_json::to_writer(&mut out, inst)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Reads a JSONL file of instances.
pub fn read_jsonl(path: &Path) -> Result<Vec<Instance>, InstanceFileError> {
    let io = |source| InstanceFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line).map_err(|source| InstanceFileError::Parse {
                path: path.display().to_string(),
                line: i + 1,
                source,
            })?,
        );
    }
    Ok(out)
}
