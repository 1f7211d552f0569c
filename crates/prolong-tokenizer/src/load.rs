//! Loading a tokenizer.json: its ids checked (tables are sized by the largest
//! one), then the fast path built when the file is a byte-level BPE it models,
//! or else the `tokenizers` crate configured as the reference.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::bpe::Bpe;
use crate::decode::Pieces;
use crate::pretok::{Pattern, PreTokenizer};
use crate::tokenizer::{Fast, Kind};
use crate::{MAX_UNUSED_IDS, Result, TokenizeError, Tokenizer};

/// The `tokenizers` crate tokenizer for `json`, configured as the reference
/// the fast path is identical to (see the crate docs); encode with
/// `encode_fast(text, false)`.
pub fn reference_tokenizer(json: &[u8]) -> Result<tokenizers::Tokenizer> {
    let mut tok = tokenizers::Tokenizer::from_bytes(json)
        .map_err(|e| TokenizeError::Reference(e.to_string()))?;
    tok.set_encode_special_tokens(true);
    tok.with_truncation(None)
        .map_err(|e| TokenizeError::Reference(e.to_string()))?;
    tok.with_padding(None);
    Ok(tok)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| TokenizeError::Io {
        path: path.display().to_string(),
        source,
    })
}

impl Tokenizer {
    /// Loads a tokenizer.json; the fast path when it applies.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Tokenizer> {
        let path = path.as_ref();
        Self::from_bytes(&read(path)?).map_err(|e| {
            let message = match e {
                TokenizeError::Json(e) => format!("not valid JSON: {e}"),
                TokenizeError::Invalid(m) => m,
                other => other.to_string(),
            };
            TokenizeError::File {
                path: path.display().to_string(),
                message,
            }
        })
    }

    /// Loads the contents of a tokenizer.json; the fast path when it applies.
    pub fn from_bytes(json: &[u8]) -> Result<Tokenizer> {
        let v: Value = serde_json::from_slice(json)?;
        let (vocab_size, added) = sizes(&v)?;
        check_merges(&v)?;
        let kind = match fast_from_json(&v)? {
            Ok(fast) => Kind::Fast(Box::new(fast)),
            Err(why) => Kind::Reference {
                tok: Box::new(reference_tokenizer(json)?),
                why,
            },
        };
        Ok(Tokenizer {
            kind,
            vocab_size,
            added,
            instance: NEXT_FAST_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Loads a tokenizer.json that always encodes with the `tokenizers`
    /// crate (for comparisons).
    pub fn reference_from_bytes(json: &[u8]) -> Result<Tokenizer> {
        let v: Value = serde_json::from_slice(json)?;
        let (vocab_size, added) = sizes(&v)?;
        check_merges(&v)?;
        let tok = Box::new(reference_tokenizer(json)?);
        Ok(Tokenizer {
            kind: Kind::Reference {
                tok,
                why: "asked for".into(),
            },
            vocab_size,
            added,
            instance: NEXT_FAST_ID.fetch_add(1, Ordering::Relaxed),
        })
    }
}

/// Tells one tokenizer's caches (thread-local, or a caller's: see
/// [`Tokenizer::instance`]) from another's: every loaded tokenizer, and every fast
/// path, takes the next number.
static NEXT_FAST_ID: AtomicU64 = AtomicU64::new(1);

/// (largest id + 1, added tokens) of a tokenizer.json, its ids checked first:
/// the model's vocabulary and the added tokens use each id once (an added
/// token may repeat a vocabulary entry, same text and id), and leave at most
/// [`MAX_UNUSED_IDS`] ids unused. Readers size tables by the largest id, so
/// an id of 4,000,000,000 in a file of a few tokens must be refused, not
/// allocated.
fn sizes(v: &Value) -> Result<(usize, Vec<(String, u32)>)> {
    let id_of = |kind: &str, token: &str, id: &Value| {
        id.as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| {
                TokenizeError::Invalid(format!(
                    "{kind} {token:?} has id {id}, not an integer below 2^32"
                ))
            })
    };
    let mut ids: Vec<(u32, &str)> = Vec::new();
    if let Some(vocab) = v.pointer("/model/vocab").and_then(Value::as_object) {
        for (token, id) in vocab {
            ids.push((id_of("vocabulary token", token, id)?, token));
        }
    }
    let mut added = Vec::new();
    for t in v
        .get("added_tokens")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(c), Some(id)) = (t.get("content").and_then(Value::as_str), t.get("id")) {
            let id = id_of("added token", c, id)?;
            ids.push((id, c));
            added.push((c.to_owned(), id));
        }
    }
    ids.sort_unstable();
    // An added token that is also in the vocabulary with the same id.
    ids.dedup();
    for w in ids.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(TokenizeError::Invalid(format!(
                "tokens {:?} and {:?} share id {}",
                w[0].1, w[1].1, w[0].0
            )));
        }
    }
    // Ids are distinct now: the largest one tells how many are unused.
    let tokens = ids.len();
    let n = ids.last().map_or(0, |&(id, _)| id as usize + 1);
    if let Some(&(id, token)) = ids.last()
        && n - tokens > MAX_UNUSED_IDS
    {
        return Err(TokenizeError::Invalid(format!(
            "token {token:?} has id {id}, which leaves {} of the ids below it unused \
             (the vocabulary and added tokens have {tokens}; at most {MAX_UNUSED_IDS} may be unused)",
            n - tokens
        )));
    }
    Ok((n, added))
}

/// The two tokens of merge `rank` (0-based) of a BPE model: `"a b"` or `["a", "b"]`.
fn merge_parts(rank: usize, m: &Value) -> Result<(&str, &str)> {
    let parts = match m {
        Value::String(s) => {
            let mut it = s.split(' ');
            match (it.next(), it.next(), it.next()) {
                (Some(a), Some(b), None) => Some((a, b)),
                _ => None,
            }
        }
        Value::Array(p) => match p.as_slice() {
            [Value::String(a), Value::String(b)] => Some((a.as_str(), b.as_str())),
            _ => None,
        },
        _ => None,
    };
    parts.ok_or_else(|| TokenizeError::Invalid(format!("merge {} is {m}", rank + 1)))
}

/// Checks a BPE model's merges before the tokenizers crate builds it: its
/// builder copies each merge's two tokens (the second without
/// `continuing_subword_prefix`) into a buffer as long as the longest
/// vocabulary token, so a merge whose result is not in the vocabulary, or
/// whose second token is shorter than the prefix, panics there instead of
/// being refused. Here every merge's tokens and its result must be in the
/// vocabulary. (Other models, and a BPE file without vocab or merges, are
/// left to the tokenizers crate.)
fn check_merges(v: &Value) -> Result<()> {
    let model = &v["model"];
    let is_bpe = match model.get("type") {
        None => true,
        Some(t) => t == "BPE",
    };
    let (Some(vocab), Some(merges)) = (model["vocab"].as_object(), model["merges"].as_array())
    else {
        return Ok(());
    };
    if !is_bpe {
        return Ok(());
    }
    let prefix = model["continuing_subword_prefix"].as_str().unwrap_or("");
    // The tokenizers crate skips `#version` lines of the legacy form.
    let merges = merges
        .iter()
        .filter(|m| !m.as_str().is_some_and(|s| s.starts_with("#version")));
    let mut joined = String::new();
    for (rank, m) in merges.enumerate() {
        let (a, b) = merge_parts(rank, m)?;
        let missing = |token: &str| {
            TokenizeError::Invalid(format!(
                "merge {} ({a:?} {b:?}): {token:?} is not in the vocabulary",
                rank + 1
            ))
        };
        for token in [a, b] {
            if !vocab.contains_key(token) {
                return Err(missing(token));
            }
        }
        let rest = b.get(prefix.len()..).ok_or_else(|| {
            TokenizeError::Invalid(format!(
                "merge {} ({a:?} {b:?}): {b:?} is shorter than the continuing_subword_prefix {prefix:?}",
                rank + 1
            ))
        })?;
        joined.clear();
        joined.push_str(a);
        joined.push_str(rest);
        if !vocab.contains_key(&joined) {
            return Err(missing(&joined));
        }
    }
    Ok(())
}

/// GPT-2's map from bytes to the chars that stand for them in byte-level
/// vocabularies: printable Latin-1 bytes are themselves, the others are
/// U+0100 onwards in byte order.
fn byte_chars() -> [char; 256] {
    let printable = |b: u32| {
        (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    let mut map = ['\0'; 256];
    let mut n = 0;
    for b in 0..256u32 {
        map[b as usize] = if printable(b) {
            char::from_u32(b).unwrap_or('\0')
        } else {
            n += 1;
            char::from_u32(0xff + n).unwrap_or('\0')
        };
    }
    map
}

/// The bytes a byte-level token string stands for; `None` if it holds a char
/// outside the byte alphabet (such a token can never match a byte-level word).
fn token_bytes(tok: &str, inverse: &[u16; 0x144]) -> Option<Vec<u8>> {
    tok.chars()
        .map(|c| {
            inverse
                .get(c as usize)
                .copied()
                .filter(|&b| b != u16::MAX)
                .map(|b| b as u8)
        })
        .collect()
}

/// The fast path for a tokenizer.json, or why it does not apply (the outer
/// error: the file is malformed).
fn fast_from_json(v: &Value) -> Result<std::result::Result<Fast, String>> {
    macro_rules! unsupported {
        ($($t:tt)*) => { return Ok(Err(format!($($t)*))) };
    }
    // Normalizer: none.
    match v.get("normalizer") {
        None | Some(Value::Null) => {}
        Some(n)
            if n["type"] == "Sequence"
                && n["normalizers"].as_array().is_some_and(Vec::is_empty) => {}
        Some(n) => unsupported!("normalizer {}", n["type"]),
    }
    // Added tokens: special ones are plain text in the reference; others
    // would still be split out.
    for t in v
        .get("added_tokens")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if t["special"] != Value::Bool(true) {
            unsupported!("non-special added token {}", t["content"]);
        }
    }
    // Pre-tokenizer.
    let pre = &v["pre_tokenizer"];
    let byte_level = |p: &Value, use_regex: bool| -> Option<bool> {
        if p["type"] != "ByteLevel"
            || p.get("use_regex").and_then(Value::as_bool).unwrap_or(true) != use_regex
        {
            return None;
        }
        Some(
            p.get("add_prefix_space")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        )
    };
    let (pattern, prefix_space) = if let Some(prefix) = byte_level(pre, true) {
        (Pattern::Gpt2, prefix)
    } else if pre["type"] == "Sequence" {
        let steps = pre["pretokenizers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let [split, bl] = steps else {
            unsupported!("pre-tokenizer Sequence of {} steps", steps.len());
        };
        if split["type"] != "Split"
            || split["behavior"] != "Isolated"
            || split
                .get("invert")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        {
            unsupported!("pre-tokenizer step {}", split);
        }
        let Some(pattern) = split["pattern"]["Regex"]
            .as_str()
            .and_then(Pattern::from_regex)
        else {
            unsupported!("split pattern {}", split["pattern"]);
        };
        if byte_level(bl, false) != Some(false) {
            unsupported!("pre-tokenizer step {}", bl);
        }
        (pattern, false)
    } else {
        unsupported!("pre-tokenizer {}", pre["type"]);
    };
    // Model: plain byte-level BPE.
    let model = &v["model"];
    if model["type"] != "BPE" {
        unsupported!("model {}", model["type"]);
    }
    let dropout = model.get("dropout").and_then(Value::as_f64).unwrap_or(0.0);
    if dropout != 0.0 {
        unsupported!("BPE dropout {dropout}");
    }
    for affix in ["continuing_subword_prefix", "end_of_word_suffix"] {
        if let Some(a) = model
            .get(affix)
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            unsupported!("BPE {affix} {a:?}");
        }
    }
    let ignore_merges = model
        .get("ignore_merges")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(vocab) = model["vocab"].as_object() else {
        return Err(TokenizeError::Invalid(
            "model.vocab is not an object".into(),
        ));
    };
    let id_of = |s: &str| -> Result<u32> {
        vocab
            .get(s)
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| {
                TokenizeError::Invalid(format!("merge token {s:?} not in the vocabulary"))
            })
    };
    let chars = byte_chars();
    let mut inverse = [u16::MAX; 0x144];
    let mut byte_ids = [0u32; 256];
    for (b, c) in chars.iter().enumerate() {
        inverse[*c as usize] = b as u16;
        match vocab.get(c.to_string().as_str()).and_then(Value::as_u64) {
            Some(id) => byte_ids[b] = id as u32,
            None => unsupported!("byte {b:#04x} ({c:?}) is not in the vocabulary"),
        }
    }
    let mut tokens = Vec::with_capacity(vocab.len());
    for (s, id) in vocab {
        let id = id
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| TokenizeError::Invalid(format!("vocab id of {s:?} is {id}")))?;
        if let Some(bytes) = token_bytes(s, &inverse) {
            tokens.push((bytes, id));
        }
    }
    let Some(merge_list) = model["merges"].as_array() else {
        return Err(TokenizeError::Invalid("model.merges is not a list".into()));
    };
    let mut merges = Vec::with_capacity(merge_list.len());
    let mut joined = String::new();
    for (rank, m) in merge_list.iter().enumerate() {
        let (a, b) = merge_parts(rank, m)?;
        joined.clear();
        joined.push_str(a);
        joined.push_str(b);
        merges.push((id_of(a)?, id_of(b)?, id_of(&joined)?));
    }
    let pieces = Pieces::new(&tokens);
    let bpe = Bpe::new(byte_ids, tokens, &merges, ignore_merges);
    Ok(Ok(Fast {
        id: NEXT_FAST_ID.fetch_add(1, Ordering::Relaxed),
        pre: PreTokenizer::new(pattern),
        prefix_space,
        bpe,
        pieces,
    }))
}
