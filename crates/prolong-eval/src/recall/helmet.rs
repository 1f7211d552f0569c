//! HELMET's own protocol (docs/eval-recall.md, "Sizing protocols"): instances sized
//! as HELMET's released files are, those files read as they are, and HELMET's prompt
//! text, truncation and BOS rule.
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

use prolong_tokenizer::{TokenizeError, Tokenizer, reference_tokenizer};
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

    /// HF's rule for tokenizer classes whose tokenizer_config.json decides the
    /// special tokens (Llama's, CodeLlama's and Gemma's rebuild the post-processor
    /// from `add_bos_token`, default true, and `add_eos_token`, default false); other
    /// classes keep tokenizer.json's post-processor. `config` is tokenizer_config.json.
    pub fn apply_tokenizer_config(&mut self, config: &Value) -> Result<(), TokenizeError> {
        const REBUILT: [&str; 6] = [
            "LlamaTokenizer",
            "LlamaTokenizerFast",
            "CodeLlamaTokenizer",
            "CodeLlamaTokenizerFast",
            "GemmaTokenizer",
            "GemmaTokenizerFast",
        ];
        let class = config.get("tokenizer_class").and_then(Value::as_str);
        if !class.is_some_and(|c| REBUILT.contains(&c)) {
            return Ok(());
        }
        let flag =
            |key: &str, default: bool| config.get(key).and_then(Value::as_bool).unwrap_or(default);
        let id_of = |key: &str| -> Result<Vec<u32>, TokenizeError> {
            let token = match config.get(key) {
                Some(Value::String(s)) => Some(s.as_str()),
                Some(v) => v.get("content").and_then(Value::as_str),
                None => None,
            };
            let id = token.and_then(|t| self.tok.added_token_id(t)).ok_or_else(|| {
                TokenizeError::Invalid(format!(
                    "tokenizer_config.json: {key} {token:?} is not an added token of tokenizer.json"
                ))
            })?;
            Ok(vec![id])
        };
        let prefix = if flag("add_bos_token", true) {
            id_of("bos_token")?
        } else {
            Vec::new()
        };
        let suffix = if flag("add_eos_token", false) {
            id_of("eos_token")?
        } else {
            Vec::new()
        };
        self.prefix = prefix;
        self.suffix = suffix;
        Ok(())
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

/// HELMET's `--seed` (its default), with which it shuffles a data file.
pub const HELMET_SEED: u32 = 42;

/// The items HELMET evaluates from a file of `n`: `datasets`' `shuffle(seed=42)` (the
/// permutation numpy's `default_rng(42).permutation(n)` gives) and the first `take`
/// of it, in that order.
pub fn helmet_selection(n: usize, take: usize) -> Vec<usize> {
    let mut rng = NumpyPcg64::new(HELMET_SEED);
    let mut order: Vec<usize> = (0..n).collect();
    // numpy's Generator.shuffle: Fisher–Yates from the end, each index drawn by
    // `random_interval` (masked rejection on 32-bit draws).
    for i in (1..n).rev() {
        let j = rng.interval(i as u64) as usize;
        order.swap(i, j);
    }
    order.truncate(take);
    order
}

/// numpy's PCG64 bit generator seeded from `SeedSequence(seed)`, as much of it as
/// `permutation` uses.
struct NumpyPcg64 {
    state: u128,
    inc: u128,
    /// The high half of a 64-bit draw, kept for the next 32-bit one.
    buffered: Option<u32>,
}

impl NumpyPcg64 {
    const MULT: u128 = (2549297995355413924u128 << 64) | 4865540595714422341;

    fn new(seed: u32) -> NumpyPcg64 {
        let w = seed_sequence_state(seed);
        let word = |i: usize| (w[2 * i] as u64 | ((w[2 * i + 1] as u64) << 32)) as u128;
        let init_state = (word(0) << 64) | word(1);
        let init_seq = (word(2) << 64) | word(3);
        let mut rng = NumpyPcg64 {
            state: 0,
            inc: (init_seq << 1) | 1,
            buffered: None,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(init_state);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(Self::MULT).wrapping_add(self.inc);
    }

    /// XSL-RR output of the next state.
    fn next_u64(&mut self) -> u64 {
        self.step();
        let x = ((self.state >> 64) as u64) ^ (self.state as u64);
        x.rotate_right((self.state >> 122) as u32)
    }

    fn next_u32(&mut self) -> u32 {
        if let Some(u) = self.buffered.take() {
            return u;
        }
        let n = self.next_u64();
        self.buffered = Some((n >> 32) as u32);
        n as u32
    }

    /// A uniform value in 0..=max (max < 2^32 here: a file's item count).
    fn interval(&mut self, max: u64) -> u64 {
        let mask = u64::MAX >> max.leading_zeros();
        loop {
            let v = if max <= u32::MAX as u64 {
                (self.next_u32() as u64) & mask
            } else {
                self.next_u64() & mask
            };
            if v <= max {
                return v;
            }
        }
    }
}

/// numpy's `SeedSequence(seed).generate_state(8, uint32)` for a seed below 2^32
/// (a pool of 4 words, hash-mixed).
fn seed_sequence_state(seed: u32) -> [u32; 8] {
    const INIT_A: u32 = 0x43b0_d7e5;
    const MULT_A: u32 = 0x931e_8875;
    const INIT_B: u32 = 0x8b51_f9dd;
    const MULT_B: u32 = 0x58f3_8ded;
    const MIX_MULT_L: u32 = 0xca01_f9dd;
    const MIX_MULT_R: u32 = 0x4973_f715;
    let mut hash_const = INIT_A;
    let mut hashmix = |v: u32| {
        let mut v = v ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_A);
        v = v.wrapping_mul(hash_const);
        v ^ (v >> 16)
    };
    let mix = |x: u32, y: u32| {
        let r = MIX_MULT_L
            .wrapping_mul(x)
            .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
        r ^ (r >> 16)
    };
    let mut pool = [0u32; 4];
    for (i, p) in pool.iter_mut().enumerate() {
        *p = hashmix(if i == 0 { seed } else { 0 });
    }
    for src in 0..4 {
        for dst in 0..4 {
            if src != dst {
                let h = hashmix(pool[src]);
                pool[dst] = mix(pool[dst], h);
            }
        }
    }
    let mut hash_const = INIT_B;
    let mut out = [0u32; 8];
    for (i, o) in out.iter_mut().enumerate() {
        let mut v = pool[i % 4] ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_B);
        v = v.wrapping_mul(hash_const);
        *o = v ^ (v >> 16);
    }
    out
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
    fn selection_is_numpys_permutation() {
        // numpy 2.1: np.random.default_rng(42).permutation(10), and its state.
        assert_eq!(helmet_selection(10, 10), [5, 6, 0, 7, 3, 2, 4, 9, 1, 8]);
        assert_eq!(
            NumpyPcg64::new(42).state,
            274674114334540486603088602300644985544
        );
        assert_eq!(helmet_selection(10, 3), [5, 6, 0]);
        assert!(helmet_selection(0, 5).is_empty());
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
