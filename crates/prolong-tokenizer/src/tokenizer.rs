//! The loaded tokenizer and its encoders: documents one at a time, in
//! batches, and long documents cut where the ids do not change.

use std::borrow::Cow;
use std::cell::RefCell;

use rayon::prelude::*;

use crate::bpe::{Bpe, PieceCache};
use crate::decode::Pieces;
use crate::pretok::PreTokenizer;
use crate::{Result, TokenizeError};

/// Smallest piece [`Tokenizer::encode_long`] cuts a document into.
const MIN_LONG_CHUNK: usize = 1 << 16;

/// A loaded tokenizer. `Sync`: share one between threads, and give each
/// thread its own [`Encoder`] (or use the batch / long-document calls).
pub struct Tokenizer {
    pub(crate) kind: Kind,
    pub(crate) vocab_size: usize,
    pub(crate) added: Vec<(String, u32)>,
    /// Unique among the tokenizers this process loaded ([`Tokenizer::instance`]).
    pub(crate) instance: u64,
}

/// How a tokenizer encodes (built by [`crate::load`]).
pub(crate) enum Kind {
    Fast(Box<Fast>),
    Reference {
        tok: Box<tokenizers::Tokenizer>,
        why: String,
    },
}

pub(crate) struct Fast {
    /// Tells this tokenizer's thread-local caches from another's.
    pub(crate) id: u64,
    pub(crate) pre: PreTokenizer,
    /// ByteLevel's `add_prefix_space`: a space goes before a text that does
    /// not start with one.
    pub(crate) prefix_space: bool,
    pub(crate) bpe: Bpe,
    /// The bytes of every vocabulary token, for [`Tokenizer::decode`].
    pub(crate) pieces: Pieces,
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

impl Tokenizer {
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

    /// A number no other tokenizer loaded by this process has: the key for a cache
    /// of encodings that may see more than one tokenizer (an address may be reused
    /// once a tokenizer is dropped; this number is not).
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// The added tokens (text, id) of the tokenizer.json, in file order.
    pub fn added_tokens(&self) -> &[(String, u32)] {
        &self.added
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
