//! The packing algorithm, free of I/O: documents in, fixed-length sequences
//! out through a callback. Tokens travel as little-endian u32 bytes (as MDS
//! stores them), so packing is slice copies, never per-token work.
//!
//! The rules are those of ProLong's packer (datatools `pack`), checked
//! against its output in fixtures/pack-golden:
//! - BOS is added before a document unless it starts with BOS, EOS after it
//!   unless it ends with EOS; an empty document contributes nothing.
//! - A piece (the document, or a split chunk) is appended to its buffer;
//!   whenever the buffer reaches N tokens the first N are emitted with
//!   `indices` = [start, end) of every piece in it (the last end clipped to
//!   N). The overflow (always the tail of the piece just appended) is carried
//!   into the next sequence as a new piece, without a new BOS, if it is at
//!   least `min_length` long, else dropped; with `intact` it is always
//!   dropped. The last partial buffer is dropped.
//! - With split lengths, BOS/EOS are added first, then the document is cut
//!   front to back into chunks of the largest target <= what is left; each
//!   chunk goes to the buffer of its target; the remainder shorter than the
//!   smallest target is dropped. With `intact` only the first chunk is used.

use super::error::PackError;
use super::options::PackOptions;
use super::stats::PackStats;

/// One emitted sequence. `input_ids` is `4 * seq_len` bytes of little-endian
/// u32 tokens; `indices` is flat `[start0, end0, start1, end1, ...]`.
#[derive(Debug, Clone, Copy)]
pub struct Sequence<'a> {
    /// Index into [`PackOptions::subsets`].
    pub subset: usize,
    /// The subset name, which is also the `domain` column.
    pub domain: &'a str,
    pub input_ids: &'a [u8],
    pub indices: &'a [u32],
    /// 1 where the token is trained on; 0 at inserted BOS/EOS.
    pub mask: Option<&'a [u8]>,
}

impl Sequence<'_> {
    /// The tokens as u32 values (a copy; for tests and tools).
    pub fn tokens(&self) -> Vec<u32> {
        le_u32s(self.input_ids)
    }

    /// `indices` as (start, end) pairs.
    pub fn spans(&self) -> Vec<(u32, u32)> {
        self.indices.chunks_exact(2).map(|p| (p[0], p[1])).collect()
    }
}

/// Little-endian bytes to u32 values.
pub fn le_u32s(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// u32 values to little-endian bytes.
pub fn u32s_le(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A document with its BOS/EOS, addressed by token position without being
/// materialised: position 0 is BOS when `bos` is set, the body follows, then
/// EOS when `eos` is set.
struct DocView<'a> {
    bos: Option<u32>,
    body: &'a [u8],
    mask: Option<&'a [u8]>,
    eos: Option<u32>,
    len: usize,
}

impl DocView<'_> {
    fn body_tokens(&self) -> usize {
        self.body.len() / 4
    }

    /// Appends tokens `[a, b)` (and their mask) to the buffer.
    fn copy_range(&self, a: usize, b: usize, tokens: &mut Vec<u8>, mask: Option<&mut Vec<u8>>) {
        debug_assert!(a < b && b <= self.len);
        let off = usize::from(self.bos.is_some());
        let body_len = self.body_tokens();
        let mut mask = mask;
        if let Some(bos) = self.bos
            && a == 0
        {
            tokens.extend_from_slice(&bos.to_le_bytes());
            if let Some(m) = mask.as_deref_mut() {
                m.push(0);
            }
        }
        let body_a = a.max(off) - off;
        let body_b = (b - off).min(body_len);
        if body_b > body_a {
            tokens.extend_from_slice(&self.body[4 * body_a..4 * body_b]);
            if let Some(m) = mask.as_deref_mut() {
                match self.mask {
                    Some(src) => m.extend_from_slice(&src[body_a..body_b]),
                    None => m.resize(m.len() + (body_b - body_a), 1),
                }
            }
        }
        if let Some(eos) = self.eos
            && b == self.len
        {
            tokens.extend_from_slice(&eos.to_le_bytes());
            if let Some(m) = mask {
                m.push(0);
            }
        }
    }
}

/// One greedy buffer (one per split target, or a single one).
struct Buffer {
    domain: String,
    tokens: Vec<u8>,
    mask: Option<Vec<u8>>,
    indices: Vec<u32>,
    /// The document number of each piece in the buffer, for statistics.
    docs: Vec<u64>,
}

impl Buffer {
    fn filled(&self) -> usize {
        self.tokens.len() / 4
    }

    fn clear(&mut self) {
        self.tokens.clear();
        if let Some(m) = &mut self.mask {
            m.clear();
        }
        self.indices.clear();
        self.docs.clear();
    }
}

/// Packs documents pushed one at a time. Memory: one N-token buffer per
/// subset, whatever the input size.
pub struct Packer {
    n: usize,
    min_length: usize,
    intact: bool,
    bos: Option<u32>,
    eos: Option<u32>,
    /// Split targets, longest first; empty without splitting.
    targets: Vec<usize>,
    buffers: Vec<Buffer>,
    with_mask: bool,
    stats: PackStats,
    /// Number of the document being pushed (0-based), and whether any of its
    /// tokens has been emitted yet.
    doc: u64,
    doc_out: bool,
    /// Earlier documents with pieces still waiting in a buffer and no token
    /// emitted yet (a handful at most: one tail per buffer).
    pending: Vec<u64>,
}

impl Packer {
    /// `with_mask`: every document comes with a mask, and sequences carry one.
    pub fn new(options: &PackOptions, with_mask: bool) -> Result<Packer, PackError> {
        options.check()?;
        let n = options.seq_len;
        let buffers = options
            .subsets()
            .into_iter()
            .map(|domain| Buffer {
                domain,
                tokens: Vec::with_capacity(4 * n),
                mask: with_mask.then(|| Vec::with_capacity(n)),
                indices: Vec::new(),
                docs: Vec::new(),
            })
            .collect();
        let mut stats = PackStats::default();
        for s in options.subsets() {
            stats.sequences_per_subset.insert(s, 0);
        }
        Ok(Packer {
            n,
            min_length: options.min_length.max(1),
            intact: options.intact,
            bos: options.bos,
            eos: options.eos,
            targets: options.targets_desc(),
            buffers,
            with_mask,
            stats,
            doc: 0,
            doc_out: false,
            pending: Vec::new(),
        })
    }

    pub fn with_mask(&self) -> bool {
        self.with_mask
    }

    pub fn stats(&self) -> &PackStats {
        &self.stats
    }

    /// Adds one document: `tokens` are little-endian u32 bytes (as stored in
    /// an MDS `ndarray:uint32`), `mask` one byte per token when the packer
    /// carries masks. Calls `emit` for every sequence completed; an error
    /// from `emit` stops packing and is returned. On a mask/length mismatch
    /// nothing is packed and `BadSample`-ready text is returned as
    /// `PackError::Settings`; callers that know the file wrap it.
    pub fn push<F>(
        &mut self,
        tokens: &[u8],
        mask: Option<&[u8]>,
        emit: &mut F,
    ) -> Result<(), PackError>
    where
        F: FnMut(Sequence<'_>) -> Result<(), PackError>,
    {
        if tokens.len() & 3 != 0 {
            return Err(PackError::settings(format!(
                "{} token bytes are not whole u32 values",
                tokens.len()
            )));
        }
        let body_len = tokens.len() / 4;
        let mask = match (self.with_mask, mask) {
            (true, Some(m)) if m.len() == body_len => Some(m),
            (true, Some(m)) => {
                return Err(PackError::settings(format!(
                    "mask has {} values for {body_len} tokens",
                    m.len()
                )));
            }
            (true, None) => return Err(PackError::settings("document has no mask")),
            (false, _) => None,
        };
        self.doc_out = false;
        self.stats.add_document(body_len);
        if body_len > 0 {
            let first = u32::from_le_bytes(tokens[..4].try_into().unwrap_or_default());
            let last =
                u32::from_le_bytes(tokens[tokens.len() - 4..].try_into().unwrap_or_default());
            let bos = self.bos.filter(|&b| b != first);
            let eos = self.eos.filter(|&e| e != last);
            let len = body_len + usize::from(bos.is_some()) + usize::from(eos.is_some());
            self.stats.special_tokens_added += (len - body_len) as u64;
            let doc = DocView {
                bos,
                body: tokens,
                mask,
                eos,
                len,
            };
            if self.targets.is_empty() {
                self.push_piece(0, &doc, 0, len, emit)?;
            } else {
                self.push_split(&doc, emit)?;
            }
        }
        if self.doc_out {
            self.stats.documents_out += 1;
        } else if self
            .buffers
            .iter()
            .any(|b| b.docs.last() == Some(&self.doc))
        {
            self.pending.push(self.doc);
        }
        self.doc += 1;
        Ok(())
    }

    fn push_split<F>(&mut self, doc: &DocView<'_>, emit: &mut F) -> Result<(), PackError>
    where
        F: FnMut(Sequence<'_>) -> Result<(), PackError>,
    {
        let smallest = *self.targets.last().unwrap_or(&usize::MAX);
        let mut pos = 0;
        while doc.len - pos >= smallest {
            let left = doc.len - pos;
            let Some(b) = self.targets.iter().position(|&t| t <= left) else {
                break;
            };
            let target = self.targets[b];
            self.push_piece(b, doc, pos, pos + target, emit)?;
            pos += target;
            if self.intact {
                self.stats.dropped.intact += (doc.len - pos) as u64;
                return Ok(());
            }
        }
        self.stats.dropped.split_remainder += (doc.len - pos) as u64;
        Ok(())
    }

    /// Appends tokens `[start, end)` of `doc` to buffer `b` as one piece,
    /// emitting every sequence it completes.
    fn push_piece<F>(
        &mut self,
        b: usize,
        doc: &DocView<'_>,
        start: usize,
        end: usize,
        emit: &mut F,
    ) -> Result<(), PackError>
    where
        F: FnMut(Sequence<'_>) -> Result<(), PackError>,
    {
        let n = self.n;
        let mut pos = start;
        loop {
            let buffer = &mut self.buffers[b];
            let filled = buffer.filled();
            let take = (n - filled).min(end - pos);
            doc.copy_range(pos, pos + take, &mut buffer.tokens, buffer.mask.as_mut());
            buffer.indices.push(filled as u32);
            buffer.indices.push((filled + take) as u32);
            buffer.docs.push(self.doc);
            pos += take;
            if filled + take < n {
                return Ok(());
            }
            self.emit(b, emit)?;
            let rest = end - pos;
            if rest == 0 {
                return Ok(());
            }
            if self.intact {
                self.stats.dropped.intact += rest as u64;
                return Ok(());
            }
            if rest < self.min_length {
                self.stats.dropped.min_length += rest as u64;
                return Ok(());
            }
        }
    }

    fn emit<F>(&mut self, b: usize, emit: &mut F) -> Result<(), PackError>
    where
        F: FnMut(Sequence<'_>) -> Result<(), PackError>,
    {
        let buffer = &self.buffers[b];
        for d in &buffer.docs {
            if *d == self.doc {
                self.doc_out = true;
            } else if let Some(i) = self.pending.iter().position(|p| p == d) {
                self.pending.swap_remove(i);
                self.stats.documents_out += 1;
            }
        }
        self.stats
            .add_sequence(&buffer.domain, self.n, buffer.indices.len() / 2);
        let result = emit(Sequence {
            subset: b,
            domain: &buffer.domain,
            input_ids: &buffer.tokens,
            indices: &buffer.indices,
            mask: buffer.mask.as_deref(),
        });
        self.buffers[b].clear();
        result
    }

    /// Drops the partial buffers and returns the statistics.
    pub fn finish(mut self) -> PackStats {
        for buffer in &self.buffers {
            self.stats.dropped.last_buffer += buffer.filled() as u64;
        }
        self.stats.finish();
        self.stats
    }
}

/// A packed sequence with owned data (see [`pack_u32`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSequence {
    pub domain: String,
    pub input_ids: Vec<u32>,
    pub indices: Vec<(u32, u32)>,
    pub mask: Option<Vec<u8>>,
}

/// Packs in-memory documents (token ids, optional masks): the whole pack
/// stage without files, for tests and small tools.
pub fn pack_u32(
    docs: &[(Vec<u32>, Option<Vec<u8>>)],
    options: &PackOptions,
) -> Result<(Vec<OwnedSequence>, PackStats), PackError> {
    let with_mask = docs.first().is_some_and(|d| d.1.is_some());
    let mut packer = Packer::new(options, with_mask)?;
    let mut out = Vec::new();
    let mut emit = |s: Sequence<'_>| {
        out.push(OwnedSequence {
            domain: s.domain.to_string(),
            input_ids: s.tokens(),
            indices: s.spans(),
            mask: s.mask.map(<[u8]>::to_vec),
        });
        Ok(())
    };
    for (tokens, mask) in docs {
        packer.push(&u32s_le(tokens), mask.as_deref(), &mut emit)?;
    }
    Ok((out, packer.finish()))
}
