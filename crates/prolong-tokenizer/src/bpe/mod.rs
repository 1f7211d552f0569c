//! Byte-level BPE over pre-tokens, with the tokenizers crate's semantics:
//! a word starts as one symbol per byte; while some adjacent pair of symbols
//! is a merge, the pair with the lowest merge rank is merged, the leftmost one
//! among equals. (The tokenizers crate's heap with lazy deletion computes the
//! same: a stale heap entry passes its check only when the pair at its
//! position is still the very same pair.) With `ignore_merges`, a word that is
//! itself in the vocabulary is that one token.
//!
//! Three ways to find that pair, the same ids from each: a scan of the
//! symbols for short words, a heap for longer ones, and, for words of a
//! whole document (a 50 MB run of letters is one pre-token), rank by rank
//! (see [`Bpe::merge_by_rank`]): the heap's random accesses over tens of
//! millions of entries took 36 s of CPU and 1.3 GB for such a document (the
//! tokenize stage, release build), rank by rank takes 3.5 s and 0.7 GB.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

/// Words longer than this (in bytes) are merged with a heap rather than by
/// scanning the symbols for the lowest rank at each step.
const HEAP_ABOVE: usize = 128;
/// Words at least this long (in bytes) are merged rank by rank; below it
/// the heap fits in cache and is as fast.
const BY_RANK_FROM: usize = 1 << 16;
/// Entries the per-encoder cache of merged pieces keeps before it is cleared.
const CACHE_ENTRIES: usize = 1 << 16;
/// Pieces longer than this are not cached.
const CACHE_MAX_LEN: usize = 64;

const NONE: u32 = u32::MAX;

/// The model: byte symbols, merges and the words that map to one token.
#[derive(Debug)]
pub struct Bpe {
    byte_ids: [u32; 256],
    /// (left << 32 | right) -> (rank << 32 | merged id).
    merges: FxHashMap<u64, u64>,
    /// Words whose encoding is the one token found here.
    whole: FxHashMap<Box<[u8]>, u32>,
    /// The number of ranks (merges listed).
    ranks: usize,
}

#[inline(always)]
fn key(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

impl Bpe {
    /// `vocab`: every token's bytes and id (tokens that are no byte string are
    /// left out by the caller). `merges`: (left id, right id, merged id) in
    /// rank order; a pair listed twice keeps its last rank, as in the
    /// tokenizers crate.
    pub fn new(
        byte_ids: [u32; 256],
        vocab: Vec<(Vec<u8>, u32)>,
        merges: &[(u32, u32, u32)],
        ignore_merges: bool,
    ) -> Bpe {
        let mut m = FxHashMap::default();
        m.reserve(merges.len());
        for (rank, &(a, b, id)) in merges.iter().enumerate() {
            m.insert(key(a, b), ((rank as u64) << 32) | id as u64);
        }
        let mut bpe = Bpe {
            byte_ids,
            merges: m,
            whole: FxHashMap::default(),
            ranks: merges.len(),
        };
        let mut whole = FxHashMap::default();
        whole.reserve(vocab.len());
        let mut out = Vec::new();
        let mut scratch = Scratch::default();
        for (bytes, id) in vocab {
            // Without ignore_merges the lookup is a shortcut only for words
            // whose merges end in that very token.
            if !ignore_merges {
                out.clear();
                bpe.merge_word(&bytes, &mut out, &mut scratch);
                if out.as_slice() != [id] {
                    continue;
                }
            }
            whole.insert(bytes.into_boxed_slice(), id);
        }
        bpe.whole = whole;
        bpe
    }

    #[inline(always)]
    fn pair(&self, a: u32, b: u32) -> Option<u64> {
        self.merges.get(&key(a, b)).copied()
    }

    #[inline(always)]
    pub fn whole(&self, piece: &[u8]) -> Option<u32> {
        self.whole.get(piece).copied()
    }

    /// Appends the ids of `word` (merged from its bytes) to `out`.
    pub fn merge_word(&self, word: &[u8], out: &mut Vec<u32>, scratch: &mut Scratch) {
        match word.len() {
            0 => {}
            1 => out.push(self.byte_ids[word[0] as usize]),
            n if n <= HEAP_ABOVE => self.merge_scan(word, out, &mut scratch.parts),
            n if n < BY_RANK_FROM => self.merge_heap(word, out, scratch),
            _ => self.merge_by_rank(word, out),
        }
    }

    /// Quadratic in the worst case, but fast for the short words that make
    /// up nearly all text.
    fn merge_scan(&self, word: &[u8], out: &mut Vec<u32>, parts: &mut Vec<(u32, u64)>) {
        // (id, rank << 32 | merged id of the pair with the next symbol).
        parts.clear();
        let ids = word.iter().map(|&b| self.byte_ids[b as usize]);
        parts.extend(ids.map(|id| (id, u64::MAX)));
        for i in 0..parts.len() - 1 {
            if let Some(m) = self.pair(parts[i].0, parts[i + 1].0) {
                parts[i].1 = m;
            }
        }
        loop {
            // The lowest rank, leftmost among equals.
            let mut best = u64::MAX;
            let mut at = 0;
            for (i, p) in parts.iter().enumerate() {
                if p.1 < best {
                    best = p.1;
                    at = i;
                }
            }
            if best == u64::MAX {
                break;
            }
            parts[at].0 = best as u32;
            parts.remove(at + 1);
            parts[at].1 = match parts.get(at + 1) {
                Some(next) => self.pair(parts[at].0, next.0).unwrap_or(u64::MAX),
                None => u64::MAX,
            };
            if at > 0 {
                parts[at - 1].1 = self.pair(parts[at - 1].0, parts[at].0).unwrap_or(u64::MAX);
            }
        }
        out.extend(parts.iter().map(|p| p.0));
    }

    /// O(n log n): symbols in a linked list, candidate merges in a heap
    /// ordered by (rank, position); entries made stale by a merge are
    /// recognised and dropped when popped.
    fn merge_heap(&self, word: &[u8], out: &mut Vec<u32>, scratch: &mut Scratch) {
        let n = word.len();
        let sym = &mut scratch.syms;
        sym.clear();
        sym.extend(word.iter().enumerate().map(|(i, &b)| Sym {
            id: self.byte_ids[b as usize],
            prev: if i == 0 { NONE } else { i as u32 - 1 },
            next: if i + 1 == n { NONE } else { i as u32 + 1 },
        }));
        let heap = &mut scratch.heap;
        heap.clear();
        for i in 0..n - 1 {
            if let Some(m) = self.pair(sym[i].id, sym[i + 1].id) {
                heap.push(Reverse(((m >> 32) as u32, i as u32, m as u32)));
            }
        }
        while let Some(Reverse((_, pos, new_id))) = heap.pop() {
            let pos = pos as usize;
            let s = sym[pos];
            if s.id == NONE || s.next == NONE {
                continue;
            }
            let next = s.next as usize;
            let r = sym[next];
            // Stale unless the pair there still merges into `new_id`.
            match self.pair(s.id, r.id) {
                Some(m) if m as u32 == new_id => {}
                _ => continue,
            }
            sym[pos].id = new_id;
            sym[pos].next = r.next;
            sym[next].id = NONE;
            if r.next != NONE {
                sym[r.next as usize].prev = pos as u32;
            }
            if s.prev != NONE {
                let p = s.prev as usize;
                if let Some(m) = self.pair(sym[p].id, new_id) {
                    heap.push(Reverse(((m >> 32) as u32, p as u32, m as u32)));
                }
            }
            if r.next != NONE
                && let Some(m) = self.pair(new_id, sym[r.next as usize].id)
            {
                heap.push(Reverse(((m >> 32) as u32, pos as u32, m as u32)));
            }
        }
        let mut i = 0;
        while i != NONE as usize {
            out.push(sym[i].id);
            i = sym[i].next as usize;
        }
    }

    /// The heap's order with buckets: linear in the word but for sorting
    /// each rank's positions, in 8 bytes a byte and 4 more for each pair
    /// waiting. BPE training makes a merge that takes the token of merge r
    /// as one side come after r, so the ranks merged mostly rise: positions
    /// wait in one bucket per rank, and the buckets are taken in increasing
    /// rank, each from left to right. Where a merge makes a pair of a rank
    /// not above the one being merged (tokenizer.json files list every way
    /// to split a token, some through tokens made later: Llama-3's has
    /// 51,651 such merges), that pair waits in a small heap instead, and of
    /// it and the bucket the lower (rank, position) goes first; so the order
    /// is always the heap's. A stale position (its symbol merged away, or
    /// its pair changed) is dropped when reached.
    ///
    /// Symbols are spans of the word: slot `i` of a symbol's first byte holds
    /// (its id, where it ends); slot `end - 1` of one longer than a byte holds
    /// (INTERIOR, where it starts), so the symbol before a start `p` is found
    /// from slot `p - 1`; other slots hold (INTERIOR, anything).
    fn merge_by_rank(&self, word: &[u8], out: &mut Vec<u32>) {
        const INTERIOR: u32 = NONE;
        let n = word.len();
        let mut slots: Vec<(u32, u32)> = word
            .iter()
            .enumerate()
            .map(|(i, &b)| (self.byte_ids[b as usize], i as u32 + 1))
            .collect();
        let mut buckets: Vec<Vec<u32>> = Vec::new();
        buckets.resize_with(self.ranks, Vec::new);
        let mut lowest = usize::MAX;
        for i in 0..n.saturating_sub(1) {
            if let Some(m) = self.pair(slots[i].0, slots[i + 1].0) {
                let rank = (m >> 32) as usize;
                buckets[rank].push(i as u32);
                lowest = lowest.min(rank);
            }
        }
        // (rank, position) of pairs ranking at or below the bucket being merged.
        let mut early: BinaryHeap<Reverse<(u32, u32)>> = BinaryHeap::new();
        for rank in lowest..buckets.len() {
            let mut waiting = std::mem::take(&mut buckets[rank]);
            if !waiting.is_sorted() {
                waiting.sort_unstable();
            }
            let mut next = 0;
            loop {
                let bucket_next = waiting.get(next).map(|&p| (rank as u32, p));
                let (r, p) = match (early.peek(), bucket_next) {
                    (Some(&Reverse(e)), Some(b)) if e < b => {
                        early.pop();
                        e
                    }
                    (_, Some(b)) => {
                        next += 1;
                        b
                    }
                    (Some(&Reverse(e)), None) => {
                        early.pop();
                        e
                    }
                    (None, None) => break,
                };
                let (id, q) = slots[p as usize];
                if id == INTERIOR || q as usize == n {
                    continue;
                }
                let (right, end) = slots[q as usize];
                let new_id = match self.pair(id, right) {
                    Some(m) if (m >> 32) as u32 == r => m as u32,
                    _ => continue,
                };
                slots[p as usize] = (new_id, end);
                slots[q as usize].0 = INTERIOR;
                slots[end as usize - 1] = (INTERIOR, p);
                let mut wait = |m: u64, at: u32| {
                    let r = (m >> 32) as usize;
                    if r > rank {
                        buckets[r].push(at);
                    } else {
                        early.push(Reverse((r as u32, at)));
                    }
                };
                if p > 0 {
                    let (_, b) = slots[p as usize - 1];
                    let prev = if b == p { p - 1 } else { b };
                    if let Some(m) = self.pair(slots[prev as usize].0, new_id) {
                        wait(m, prev);
                    }
                }
                if (end as usize) < n
                    && let Some(m) = self.pair(new_id, slots[end as usize].0)
                {
                    wait(m, p);
                }
            }
        }
        let mut i = 0;
        while i < n {
            out.push(slots[i].0);
            i = slots[i].1 as usize;
        }
    }

    /// Merges with the heap whatever the length (for tests).
    #[cfg(test)]
    fn merge_word_heap(&self, word: &[u8], out: &mut Vec<u32>) {
        if word.len() < 2 {
            return self.merge_word(word, out, &mut Scratch::default());
        }
        self.merge_heap(word, out, &mut Scratch::default())
    }

    /// Merges rank by rank whatever the length (for tests).
    #[cfg(test)]
    fn merge_word_by_rank(&self, word: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        self.merge_by_rank(word, &mut out);
        out
    }
}

#[derive(Clone, Copy, Debug)]
struct Sym {
    id: u32,
    prev: u32,
    next: u32,
}

/// Reusable buffers for merging.
#[derive(Default, Debug)]
pub struct Scratch {
    parts: Vec<(u32, u64)>,
    syms: Vec<Sym>,
    heap: BinaryHeap<Reverse<(u32, u32, u32)>>,
}

/// A cache of merged pieces, one per encoder (and so per thread).
#[derive(Default, Debug)]
pub struct PieceCache {
    map: FxHashMap<Box<[u8]>, (u32, u32)>,
    ids: Vec<u32>,
    scratch: Scratch,
}

impl PieceCache {
    /// Appends the ids of one pre-token to `out`.
    #[inline]
    pub fn encode_piece(&mut self, bpe: &Bpe, piece: &[u8], out: &mut Vec<u32>) {
        if piece.len() == 1 {
            out.push(bpe.byte_ids[piece[0] as usize]);
            return;
        }
        if let Some(id) = bpe.whole(piece) {
            out.push(id);
            return;
        }
        if piece.len() > CACHE_MAX_LEN {
            bpe.merge_word(piece, out, &mut self.scratch);
            return;
        }
        if let Some(&(a, b)) = self.map.get(piece) {
            out.extend_from_slice(&self.ids[a as usize..b as usize]);
            return;
        }
        let start = out.len();
        bpe.merge_word(piece, out, &mut self.scratch);
        if self.map.len() >= CACHE_ENTRIES {
            self.map.clear();
            self.ids.clear();
        }
        let a = self.ids.len() as u32;
        self.ids.extend_from_slice(&out[start..]);
        self.map.insert(piece.into(), (a, self.ids.len() as u32));
    }
}

#[cfg(test)]
mod tests;
