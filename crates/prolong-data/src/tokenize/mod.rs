//! Tokenize plain text with a Hugging Face `tokenizer.json`.
//!
//! [`Tokenizer`] loads a tokenizer.json. When the tokenizer is a byte-level
//! BPE (GPT-2, Llama-3, Qwen2-style pre-tokenizer, no normalizer) it encodes
//! with a fast path of its own: a hand-written pre-tokenizer
//! ([`pretok::PreTokenizer`]), then BPE per pre-token with a per-encoder
//! cache. Every other tokenizer is served by the `tokenizers` crate.
//!
//! # The reference, and what "plain text" means
//!
//! The fast path's ids are identical to those of the `tokenizers` crate
//! configured by [`reference_tokenizer`] and called as
//! `encode_fast(text, false)`:
//!
//! - `add_special_tokens = false`: no BOS/EOS or template tokens are added.
//! - `set_encode_special_tokens(true)`: special added tokens written in the
//!   text (`<|end_of_text|>`, `<|begin_of_text|>`, ...) are NOT recognised;
//!   they are encoded as the plain text they are (`<`, `|`, `end`, ...). The
//!   corpus is text, and a document quoting a control token must not inject
//!   one. (By default the tokenizers crate does match them, even with
//!   `add_special_tokens = false`.) This is tiktoken's `encode_ordinary`.
//! - No truncation and no padding, whatever tokenizer.json says.
//!
//! A tokenizer with non-special added tokens (which the reference still
//! splits out of the text) takes the fallback, as does anything else the
//! fast path does not model; [`Tokenizer::fallback_reason`] says why.

mod bpe;
pub mod pretok;
pub mod stage;

use std::borrow::Cow;
use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde_json::Value;

use bpe::{Bpe, PieceCache};
pub use pretok::{CharClass, Pattern, PreTokenizer, char_class};

/// A special token of a tokenizer: its id and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialToken {
    pub id: u32,
    pub text: &'static str,
}

/// Llama-3's `<|begin_of_text|>`, which starts every document.
pub const LLAMA3_BOS: SpecialToken = SpecialToken {
    id: 128_000,
    text: "<|begin_of_text|>",
};
/// Llama-3's `<|end_of_text|>`, which ends a document.
pub const LLAMA3_EOS: SpecialToken = SpecialToken {
    id: 128_001,
    text: "<|end_of_text|>",
};
/// Llama-3's `<|eot_id|>`, which ends a chat turn.
pub const LLAMA3_EOT: SpecialToken = SpecialToken {
    id: 128_009,
    text: "<|eot_id|>",
};

/// Errors from loading a tokenizer or from the reference encoder.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("tokenizer.json is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("tokenizer.json: {0}")]
    Invalid(String),
    #[error("tokenizers crate: {0}")]
    Reference(String),
    /// Any of the above from a file: its path instead of "tokenizer.json".
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

type Result<T> = std::result::Result<T, TokenizeError>;

/// How many ids below the largest a tokenizer.json may leave to no token.
/// tokenizer.json allows such holes (ids reserved between the vocabulary and
/// the added tokens); bounding them bounds the tables sized by the largest id.
pub const MAX_UNUSED_IDS: usize = 1 << 16;

/// Smallest piece [`Tokenizer::encode_long`] cuts a document into.
const MIN_LONG_CHUNK: usize = 1 << 16;

/// A loaded tokenizer. `Sync`: share one between threads, and give each
/// thread its own [`Encoder`] (or use the batch / long-document calls).
pub struct Tokenizer {
    kind: Kind,
    vocab_size: usize,
    pub(crate) added: Vec<(String, u32)>,
}

enum Kind {
    Fast(Box<Fast>),
    Reference {
        tok: Box<tokenizers::Tokenizer>,
        why: String,
    },
}

struct Fast {
    /// Tells this tokenizer's thread-local caches from another's.
    id: u64,
    pre: PreTokenizer,
    /// ByteLevel's `add_prefix_space`: a space goes before a text that does
    /// not start with one.
    prefix_space: bool,
    bpe: Bpe,
    /// The bytes of every vocabulary token, for [`Tokenizer::decode`].
    pieces: Pieces,
}

/// Token id -> the bytes it stands for, in one buffer.
struct Pieces {
    bytes: Vec<u8>,
    /// `bytes[ends[id - 1]..ends[id]]` (from 0 for id 0) are token `id`'s bytes.
    ends: Vec<usize>,
}

impl Pieces {
    /// `tokens`: (bytes, id) of the vocabulary, any order; ids without bytes decode to
    /// nothing.
    fn new(tokens: &[(Vec<u8>, u32)]) -> Pieces {
        let mut by_id: Vec<&(Vec<u8>, u32)> = tokens.iter().collect();
        by_id.sort_unstable_by_key(|t| t.1);
        let n = by_id.last().map_or(0, |t| t.1 as usize + 1);
        let mut bytes = Vec::with_capacity(tokens.iter().map(|t| t.0.len()).sum());
        let mut ends = Vec::with_capacity(n);
        let mut next = by_id.into_iter().peekable();
        for id in 0..n as u32 {
            if let Some((b, _)) = next.next_if(|t| t.1 == id) {
                bytes.extend_from_slice(b);
            }
            // A second string with the same id (a malformed vocabulary): the first wins.
            while next.next_if(|t| t.1 == id).is_some() {}
            ends.push(bytes.len());
        }
        Pieces { bytes, ends }
    }

    fn get(&self, id: u32) -> &[u8] {
        let id = id as usize;
        match self.ends.get(id) {
            Some(&end) => &self.bytes[if id == 0 { 0 } else { self.ends[id - 1] }..end],
            None => &[],
        }
    }
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Tokenizer");
        match &self.kind {
            Kind::Fast(fast) => d.field("fast", &fast.pre.pattern()),
            Kind::Reference { why, .. } => d.field("fallback", why),
        };
        d.field("vocab_size", &self.vocab_size).finish()
    }
}

/// The `tokenizers` crate tokenizer for `json`, configured as the reference
/// the fast path is identical to (see the module docs); encode with
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
        })
    }

    /// Whether the fast path encodes.
    pub fn is_fast(&self) -> bool {
        matches!(self.kind, Kind::Fast(_))
    }

    /// Why the `tokenizers` crate encodes instead of the fast path.
    pub fn fallback_reason(&self) -> Option<&str> {
        match &self.kind {
            Kind::Fast(_) => None,
            Kind::Reference { why, .. } => Some(why),
        }
    }

    /// The pre-tokenizer of the fast path.
    pub fn pre_tokenizer(&self) -> Option<PreTokenizer> {
        match &self.kind {
            Kind::Fast(f) => Some(f.pre),
            Kind::Reference { .. } => None,
        }
    }

    /// One more than the largest id (model vocabulary and added tokens).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The id of an added token such as `<|end_of_text|>`.
    pub fn added_token_id(&self, content: &str) -> Option<u32> {
        self.added
            .iter()
            .find(|(c, _)| c == content)
            .map(|&(_, id)| id)
    }

    /// A new encoder with a cache of its own (rather than the thread's).
    pub fn encoder(&self) -> Encoder<'_> {
        Encoder {
            tok: self,
            cache: PieceCache::default(),
        }
    }

    /// Encodes one document as plain text. The fast path keeps its cache of
    /// merged pieces in a thread-local (one per thread, for the last
    /// tokenizer used on that thread), so it stays warm from one document to
    /// the next.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        self.encode_into(text, &mut out)?;
        Ok(out)
    }

    /// Appends the ids of `text` to `out`; see [`Tokenizer::encode`].
    pub fn encode_into(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        match &self.kind {
            Kind::Fast(fast) => {
                out.reserve(text.len() / 4);
                fast.with_local_cache(|c| fast.encode_plain(c, &fast.with_prefix(text), out));
                Ok(())
            }
            Kind::Reference { tok, .. } => reference_encode(tok, text, out),
        }
    }

    /// Encodes documents in parallel on rayon's pool.
    pub fn encode_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        texts.par_iter().map(|t| self.encode(t.as_ref())).collect()
    }

    /// Encodes one (long) document: cut where the ids provably do not change
    /// (see [`PreTokenizer::split_point`]), the pieces encoded in parallel on
    /// rayon's pool, concatenated. Same ids as [`Tokenizer::encode`]; linear
    /// time. The fallback encodes the document whole.
    pub fn encode_long(&self, text: &str) -> Result<Vec<u32>> {
        let chunk = (text.len() / (4 * rayon::current_num_threads())).max(MIN_LONG_CHUNK);
        self.encode_long_with(text, chunk)
    }

    /// [`Tokenizer::encode_long`] with pieces of about `chunk_bytes` bytes.
    pub fn encode_long_with(&self, text: &str, chunk_bytes: usize) -> Result<Vec<u32>> {
        let Kind::Fast(fast) = &self.kind else {
            return self.encode(text);
        };
        let text = fast.with_prefix(text);
        let cuts = cut_points(&fast.pre, &text, chunk_bytes);
        let parts: Vec<Vec<u32>> = cuts
            .par_windows(2)
            .map(|w| {
                let mut out = Vec::with_capacity((w[1] - w[0]) / 3);
                fast.with_local_cache(|c| fast.encode_plain(c, &text[w[0]..w[1]], &mut out));
                out
            })
            .collect();
        let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for p in parts {
            out.extend_from_slice(&p);
        }
        Ok(out)
    }

    /// Where [`Tokenizer::encode_long_with`] cuts `text` (starting with 0,
    /// ending with the length); `None` on the fallback.
    pub fn long_cuts(&self, text: &str, chunk_bytes: usize) -> Option<Vec<usize>> {
        match &self.kind {
            Kind::Fast(f) => Some(cut_points(&f.pre, &f.with_prefix(text), chunk_bytes)),
            Kind::Reference { .. } => None,
        }
    }

    /// The text of `ids`, special (added) tokens left out, as the `tokenizers`
    /// crate's `decode(ids, skip_special_tokens = true)` gives it (and HF
    /// evaluation harnesses read generations): the fast path joins the tokens'
    /// bytes and replaces invalid UTF-8 with U+FFFD, as the byte-level decoder
    /// does. Ids outside the vocabulary are skipped, as there.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match &self.kind {
            Kind::Fast(fast) => {
                let mut bytes = Vec::new();
                for &id in ids {
                    if self.added.iter().all(|&(_, a)| a != id) {
                        bytes.extend_from_slice(fast.pieces.get(id));
                    }
                }
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            Kind::Reference { tok, .. } => tok
                .decode(ids, true)
                .map_err(|e| TokenizeError::Reference(e.to_string())),
        }
    }
}

fn cut_points(pre: &PreTokenizer, text: &str, chunk_bytes: usize) -> Vec<usize> {
    let mut cuts = vec![0];
    let chunk = chunk_bytes.max(1);
    let mut pos = 0usize;
    while let Some(p) = pos
        .checked_add(chunk)
        .filter(|&t| t < text.len())
        .and_then(|t| pre.split_point(text, t))
    {
        cuts.push(p);
        pos = p;
    }
    cuts.push(text.len());
    cuts
}

static NEXT_FAST_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// (id of the tokenizer, its cache) for [`Tokenizer::encode`] and friends.
    static LOCAL_CACHE: RefCell<(u64, PieceCache)> = RefCell::new((0, PieceCache::default()));
}

fn reference_encode(tok: &tokenizers::Tokenizer, text: &str, out: &mut Vec<u32>) -> Result<()> {
    let enc = tok
        .encode_fast(text, false)
        .map_err(|e| TokenizeError::Reference(e.to_string()))?;
    out.extend_from_slice(enc.get_ids());
    Ok(())
}

impl Fast {
    /// Runs `f` with this thread's cache for this tokenizer.
    fn with_local_cache<R>(&self, f: impl FnOnce(&mut PieceCache) -> R) -> R {
        LOCAL_CACHE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut c) => {
                if c.0 != self.id {
                    *c = (self.id, PieceCache::default());
                }
                f(&mut c.1)
            }
            Err(_) => f(&mut PieceCache::default()),
        })
    }

    fn with_prefix<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.prefix_space && !text.is_empty() && !text.starts_with(' ') {
            Cow::Owned(format!(" {text}"))
        } else {
            Cow::Borrowed(text)
        }
    }

    #[inline]
    fn encode_plain(&self, cache: &mut PieceCache, text: &str, out: &mut Vec<u32>) {
        let s = text.as_bytes();
        self.pre
            .for_each(text, |a, b| cache.encode_piece(&self.bpe, &s[a..b], out));
    }
}

/// Encodes on one thread; owns a cache of merged pieces.
pub struct Encoder<'a> {
    tok: &'a Tokenizer,
    cache: PieceCache,
}

impl Encoder<'_> {
    /// Appends the ids of `text` to `out`.
    pub fn encode_into(&mut self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        match &self.tok.kind {
            Kind::Fast(fast) => {
                out.reserve(text.len() / 4);
                fast.encode_plain(&mut self.cache, &fast.with_prefix(text), out);
                Ok(())
            }
            Kind::Reference { tok, .. } => reference_encode(tok, text, out),
        }
    }

    /// The ids of `text`.
    pub fn encode(&mut self, text: &str) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        self.encode_into(text, &mut out)?;
        Ok(out)
    }
}

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
