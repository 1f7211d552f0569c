//! HELMET's own protocol (issue 16): instances sized as HELMET's released files are,
//! those files read as they are, and HELMET's prompt text, truncation and BOS rule.
//!
//! * Sizing. JSON KV has a fixed number of records per length ([`JSON_KV_RECORDS`],
//!   HELMET's `test_k{N}_dep6.jsonl`); the RULER tasks are filled until their prompt
//!   has `L − 128` tokens in a *sizing* tokenizer (HELMET's files were made with
//!   Llama-2's, RULER's `tokens_to_generate` 128). The evaluated model's tokenizer
//!   is only used to cut the end of the context when the prompt is longer than
//!   `L − max_new_tokens` ([`ModelText::truncate`]).
//! * Prompts ([`HelmetItem::render`]): HELMET's `prompt_template` (no chat
//!   template) filled with the item's fields, byte for byte; for niah_multivalue
//!   either HELMET HEAD's plural template or the singular one the published numbers
//!   were made with ([`MvTemplate`]).
//! * Special tokens: what the tokenizer's post-processor adds (HF's
//!   `tokenizer(prompt)`), not always BOS ([`ModelText`]).

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use prolong_data::tokenize::{TokenizeError, Tokenizer, reference_tokenizer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::instance::Instance;
use super::task::Task;

/// HELMET's JSON KV records per length: `data/json_kv/test_k{N}_dep6.jsonl`
/// (N records, counted so that the prompt fits L in Llama-2 tokens).
pub const JSON_KV_RECORDS: [(usize, usize); 6] = [
    (4096, 50),
    (8192, 105),
    (16384, 220),
    (32768, 440),
    (65536, 900),
    (131072, 1800),
];

/// RULER's `tokens_to_generate` when HELMET's files were made: a RULER prompt has at
/// most `L − 128` tokens in the sizing tokenizer.
pub const RULER_SIZING_BUDGET: usize = 128;

/// JSON KV's records at `length`; `None` for a length HELMET has no file for.
pub fn json_kv_records(length: usize) -> Option<usize> {
    JSON_KV_RECORDS
        .iter()
        .find(|&&(l, _)| l == length)
        .map(|&(_, k)| k)
}

/// How instances are made and sized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Filled to 0.9 L … L − budget in the evaluated model's tokenizer, BOS first.
    #[default]
    Fill,
    /// As HELMET's files: see the module docs.
    Helmet,
}

impl Protocol {
    pub fn is_fill(&self) -> bool {
        *self == Protocol::Fill
    }
}

/// niah_multivalue's prompt wording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MvTemplate {
    /// HELMET HEAD (since its commit of 2025-02-06): RULER's plural template,
    /// "Some special magic numbers are hidden …".
    #[default]
    Head,
    /// The singular template with the plural noun, as HELMET's code had it when the
    /// published ProLong and HELMET numbers were made: "A special magic numbers is
    /// hidden …" (a model that lists one of the four values scores 0.25).
    Paper,
}

/// A name that is no protocol or template.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not one of: {1}")]
pub struct UnknownName(pub String, pub &'static str);

impl FromStr for Protocol {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Protocol, UnknownName> {
        match s {
            "fill" => Ok(Protocol::Fill),
            "helmet" => Ok(Protocol::Helmet),
            _ => Err(UnknownName(s.to_owned(), "fill, helmet")),
        }
    }
}

impl FromStr for MvTemplate {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<MvTemplate, UnknownName> {
        match s {
            "head" => Ok(MvTemplate::Head),
            "paper" => Ok(MvTemplate::Paper),
            _ => Err(UnknownName(s.to_owned(), "head, paper")),
        }
    }
}

impl MvTemplate {
    pub fn name(self) -> &'static str {
        match self {
            MvTemplate::Head => "head",
            MvTemplate::Paper => "paper",
        }
    }
}

/// One test item as HELMET's data.py reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmetItem {
    pub task: Task,
    /// The context (JSON object or haystack with needles).
    pub context: String,
    /// JSON KV: `question` (the key asked for); RULER: `query`.
    pub query: String,
    /// RULER: `type_needle_v` ("number", "uuid", "numbers"); empty for JSON KV.
    pub type_needle_v: String,
    /// JSON KV: `demos`, (key, value) pairs; HELMET shows the first two.
    pub demos: Vec<(String, String)>,
    /// `answer` (JSON KV) or `outputs` (RULER).
    pub answers: Vec<String>,
}

/// JSON KV's demonstrations in the prompt (HELMET's `shots: 2`).
pub const SHOTS: usize = 2;

impl HelmetItem {
    /// Whether the prompt is RULER's plural template: niah_multivalue under HEAD
    /// (its data.py picks it for `niah_mv`).
    fn plural(&self, mv: MvTemplate) -> bool {
        self.task == Task::NiahMultivalue && mv == MvTemplate::Head
    }

    /// HELMET's `prompt_template.format(**item)` with `context` in place of the
    /// item's (the truncated one).
    pub fn render(&self, context: &str, mv: MvTemplate) -> String {
        match self.task {
            Task::JsonKv => {
                // data.py: demos joined by a blank line, a blank line after them
                // whenever shots > 0 (even with no demos in the file).
                let demos: Vec<String> = self
                    .demos
                    .iter()
                    .take(SHOTS)
                    .map(|(k, v)| format!("Key: {k}\nCorresponding value: {v}"))
                    .collect();
                format!(
                    "{context}\n\nExtract the value corresponding to the specified key in the JSON object below.\n\n{}\n\nKey: {}\n{}",
                    demos.join("\n\n"),
                    self.query,
                    self.answer_prefix(mv)
                )
            }
            _ => super::ruler::helmet_prompt(
                &self.type_needle_v,
                self.plural(mv),
                &self.query,
                context,
            ),
        }
    }

    /// HELMET's system template: the prompt's last line, which HELMET also puts
    /// before the generation when it scores it.
    pub fn answer_prefix(&self, mv: MvTemplate) -> String {
        match self.task {
            Task::JsonKv => "Corresponding value:".to_owned(),
            _ => super::ruler::answer_prefix(&self.type_needle_v, self.plural(mv), &self.query),
        }
    }
}

// ---------------------------------------------------------------------------
// The evaluated model's tokenizer, as HF's `tokenizer(text)` uses it.

/// The model's tokenizer with the special tokens its post-processor adds around a
/// text, and character offsets for truncation.
pub struct ModelText<'t> {
    tok: &'t Tokenizer,
    /// The `tokenizers` crate's tokenizer (offsets, special tokens).
    reference: tokenizers::Tokenizer,
    /// Ids before and after the text's (e.g. BOS; none for Qwen's tokenizer).
    pub prefix: Vec<u32>,
    pub suffix: Vec<u32>,
}

/// A prompt that cannot be cut to the length.
#[derive(Debug, thiserror::Error)]
pub enum TruncateError {
    #[error(
        "the prompt has {prompt_tokens} tokens; cutting the {truncate} over length {length} − {budget} would cut more than the context's {context_tokens}"
    )]
    ContextTooShort {
        prompt_tokens: usize,
        truncate: usize,
        context_tokens: usize,
        length: usize,
        budget: usize,
    },
    #[error("length {length} is not longer than the generation budget {budget}")]
    NoRoom { length: usize, budget: usize },
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
}

/// A prompt as HELMET feeds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub prompt: String,
    /// Tokens of the prompt with the tokenizer's special tokens.
    pub tokens: usize,
    /// Tokens cut from the end of the context (0: not truncated).
    pub truncated: usize,
}

impl<'t> ModelText<'t> {
    /// `tok` and the tokenizer.json it was loaded from.
    pub fn new(tok: &'t Tokenizer, json: &[u8]) -> Result<ModelText<'t>, TokenizeError> {
        let reference = reference_tokenizer(json)?;
        let encode = |special: bool| -> Result<Vec<u32>, TokenizeError> {
            reference
                .encode("a", special)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| TokenizeError::Reference(e.to_string()))
        };
        let (with, plain) = (encode(true)?, encode(false)?);
        // The text's ids sit somewhere inside the ids with special tokens.
        let at = (0..=with.len().saturating_sub(plain.len()))
            .find(|&i| with[i..].starts_with(&plain))
            .ok_or_else(|| {
                TokenizeError::Invalid(
                    "the post-processor changes the text's own tokens (cannot tell its special tokens)".into(),
                )
            })?;
        Ok(ModelText {
            tok,
            prefix: with[..at].to_vec(),
            suffix: with[at + plain.len()..].to_vec(),
            reference,
        })
    }

    /// The ids HF's `tokenizer(prompt)` gives: special tokens and the text's.
    pub fn ids(&self, prompt: &str) -> Result<Vec<u32>, TokenizeError> {
        let mut ids = self.prefix.clone();
        self.tok.encode_into(prompt, &mut ids)?;
        ids.extend_from_slice(&self.suffix);
        Ok(ids)
    }

    /// Tokens of `prompt` with special tokens.
    pub fn count(&self, prompt: &str) -> Result<usize, TokenizeError> {
        Ok(self.prefix.len() + self.tok.encode(prompt)?.len() + self.suffix.len())
    }

    /// HELMET's `tokenize()` for an HF model without chat template: when the prompt's
    /// tokens exceed `length − budget` by t, the context is cut before the start of its
    /// t-th token from the end (counting the special tokens `tokenizer(context)` adds:
    /// one of those has offset 0, and the context becomes empty), and the prompt is
    /// made again once (not checked again, as in HELMET).
    pub fn truncate(
        &self,
        item: &HelmetItem,
        mv: MvTemplate,
        length: usize,
        budget: usize,
    ) -> Result<Prepared, TruncateError> {
        let limit = length
            .checked_sub(budget)
            .filter(|&l| l > 0)
            .ok_or(TruncateError::NoRoom { length, budget })?;
        let prompt = item.render(&item.context, mv);
        let tokens = self.count(&prompt)?;
        if tokens <= limit {
            return Ok(Prepared {
                prompt,
                tokens,
                truncated: 0,
            });
        }
        let truncate = tokens - limit;
        let enc = self
            .reference
            .encode(item.context.as_str(), false)
            .map_err(|e| TokenizeError::Reference(e.to_string()))?;
        let offsets = enc.get_offsets();
        let (p, m) = (self.prefix.len(), offsets.len());
        let all = p + m + self.suffix.len();
        let Some(at) = all.checked_sub(truncate) else {
            return Err(TruncateError::ContextTooShort {
                prompt_tokens: tokens,
                truncate,
                context_tokens: all,
                length,
                budget,
            });
        };
        let cut = if (p..p + m).contains(&at) {
            offsets[at - p].0
        } else {
            0
        };
        // A byte-level token inside a character is given the character's offsets.
        let mut cut = cut.min(item.context.len());
        while !item.context.is_char_boundary(cut) {
            cut -= 1;
        }
        let prompt = item.render(&item.context[..cut], mv);
        let tokens = self.count(&prompt)?;
        Ok(Prepared {
            prompt,
            tokens,
            truncated: truncate,
        })
    }
}

/// An instance of `item`: its prompt as HELMET feeds it to a model of `length`.
#[allow(clippy::too_many_arguments)]
pub fn instance(
    item: &HelmetItem,
    mv: MvTemplate,
    length: usize,
    sample: usize,
    seed: u64,
    depths: Vec<f64>,
    haystack_units: usize,
    model: &ModelText,
) -> Result<Instance, TruncateError> {
    let budget = item.task.max_new_tokens();
    let prepared = model.truncate(item, mv, length, budget)?;
    Ok(Instance {
        task: item.task,
        length,
        sample,
        seed,
        input: prepared.prompt,
        answers: item.answers.clone(),
        query: item.query.clone(),
        depths,
        max_new_tokens: budget,
        prompt_tokens: prepared.tokens,
        haystack_units,
        protocol: Protocol::Helmet,
        truncated_tokens: prepared.truncated,
    })
}

// ---------------------------------------------------------------------------
// HELMET's released files.

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

/// The first `limit` items of a HELMET data file (HELMET shuffles the file with its
/// seed and takes `max_test_samples` = 100: with files of at most that many items
/// both see the same items).
pub fn read_data_file(
    path: &Path,
    task: Task,
    limit: usize,
) -> Result<Vec<HelmetItem>, HelmetDataError> {
    let name = path.display().to_string();
    let io = |source| HelmetDataError::Io {
        path: name.clone(),
        source,
    };
    let mut reader = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut items = Vec::new();
    let mut line = Vec::new();
    let mut number = 0;
    while items.len() < limit {
        line.clear();
        number += 1;
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
        let v: Value = serde_json::from_slice(&line).map_err(|e| bad(format!("not JSON: {e}")))?;
        items.push(item_of(task, &v).map_err(bad)?);
    }
    if items.is_empty() {
        return Err(HelmetDataError::Empty { path: name });
    }
    Ok(items)
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

/// Haystack units of a HELMET context, for the report: JSON KV records (lines holding
/// `": "`), RULER lines (multi-key) or words (multi-value, RULER's haystack unit).
pub fn units_of(item: &HelmetItem) -> usize {
    match item.task {
        Task::JsonKv => item.context.matches("\": \"").count(),
        Task::NiahMultivalue => item.context.split_whitespace().count(),
        _ => item.context.lines().count(),
    }
}

/// `records` as Python's `json.dumps(dict(records), indent=4)` writes them (ASCII
/// only: other characters as `\uXXXX`).
pub fn json_object_indent4(records: &[(&str, &str)]) -> String {
    if records.is_empty() {
        return "{}".to_owned();
    }
    let lines: Vec<String> = records
        .iter()
        .map(|(k, v)| json_record_line(k, v))
        .collect();
    format!("{{\n{}\n}}", lines.join(",\n"))
}

/// One record's line of [`json_object_indent4`] (without the comma).
pub fn json_record_line(key: &str, value: &str) -> String {
    let string = |s: &str| prolong_mds::pyjson::dumps(&Value::from(s));
    format!("    {}: {}", string(key), string(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_dumps_indent4() {
        assert_eq!(
            json_object_indent4(&[("a", "b\"é"), ("c", "\u{1F600}")]),
            "{\n    \"a\": \"b\\\"\\u00e9\",\n    \"c\": \"\\ud83d\\ude00\"\n}"
        );
        assert_eq!(json_object_indent4(&[]), "{}");
    }

    #[test]
    fn records_table_and_names() {
        assert_eq!(json_kv_records(131072), Some(1800));
        assert_eq!(json_kv_records(4096), Some(50));
        assert_eq!(json_kv_records(2048), None);
        assert_eq!("paper".parse::<MvTemplate>().unwrap(), MvTemplate::Paper);
        assert!("fil".parse::<Protocol>().is_err());
    }
}
