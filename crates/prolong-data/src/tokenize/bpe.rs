//! Byte-level BPE over pre-tokens, with the tokenizers crate's semantics:
//! a word starts as one symbol per byte; while some adjacent pair of symbols
//! is a merge, the pair with the lowest merge rank is merged, the leftmost one
//! among equals. (The tokenizers crate's heap with lazy deletion computes the
//! same: a stale heap entry passes its check only when the pair at its
//! position is still the very same pair.) With `ignore_merges`, a word that is
//! itself in the vocabulary is that one token.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

/// Words longer than this (in bytes) are merged with a heap rather than by
/// scanning the symbols for the lowest rank at each step.
const HEAP_ABOVE: usize = 128;
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
            _ => self.merge_heap(word, out, scratch),
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

    /// Merges with the heap whatever the length (for tests).
    #[cfg(test)]
    fn merge_word_heap(&self, word: &[u8], out: &mut Vec<u32>) {
        if word.len() < 2 {
            return self.merge_word(word, out, &mut Scratch::default());
        }
        self.merge_heap(word, out, &mut Scratch::default())
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
mod tests {
    use super::*;

    /// Bytes a..=e are ids 0..=4; merges over them, including two pairs that
    /// make the same token.
    fn toy(ignore_merges: bool) -> Bpe {
        let mut byte_ids = [NONE; 256];
        for (i, b) in (b'a'..=b'e').enumerate() {
            byte_ids[b as usize] = i as u32;
        }
        // 5 = ab, 6 = bc, 7 = abc (from ab+c and a+bc), 8 = cc, 9 = ccd, 10 = aa
        let merges = [
            (0, 1, 5),
            (2, 2, 8),
            (1, 2, 6),
            (0, 6, 7),
            (5, 2, 7),
            (8, 3, 9),
            (0, 0, 10),
        ];
        let mut vocab: Vec<(Vec<u8>, u32)> = (b'a'..=b'e')
            .map(|b| (vec![b], (b - b'a') as u32))
            .collect();
        for (w, id) in [
            ("ab", 5),
            ("bc", 6),
            ("abc", 7),
            ("cc", 8),
            ("ccd", 9),
            ("aa", 10),
            ("de", 11),
        ] {
            vocab.push((w.as_bytes().to_vec(), id));
        }
        Bpe::new(byte_ids, vocab, &merges, ignore_merges)
    }

    fn enc(bpe: &Bpe, w: &str) -> (Vec<u32>, Vec<u32>) {
        let mut a = Vec::new();
        bpe.merge_word(w.as_bytes(), &mut a, &mut Scratch::default());
        let mut b = Vec::new();
        bpe.merge_word_heap(w.as_bytes(), &mut b);
        (a, b)
    }

    #[test]
    fn scan_and_heap_agree() {
        let bpe = toy(false);
        for (w, want) in [
            ("abc", vec![7]),
            ("aaa", vec![10, 0]),
            ("aaaa", vec![10, 10]),
            ("abcc", vec![5, 8]),
            ("bccd", vec![1, 9]),
            ("de", vec![3, 4]),
            ("eabcdcccd", vec![4, 7, 3, 8, 2, 3]),
        ] {
            let (a, b) = enc(&bpe, w);
            assert_eq!(a, want, "{w}");
            assert_eq!(b, want, "{w}");
        }
        // Pseudo-random words.
        let mut x = 0x9e3779b97f4a7c15u64;
        for len in 2..300 {
            let w: String = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (b'a' + (x % 5) as u8) as char
                })
                .collect();
            let (a, b) = enc(&bpe, &w);
            assert_eq!(a, b, "{w}");
        }
    }

    #[test]
    fn whole_words() {
        // "de" is in the vocabulary but no merge makes it.
        assert_eq!(toy(true).whole(b"de"), Some(11));
        assert_eq!(toy(false).whole(b"de"), None);
        assert_eq!(toy(false).whole(b"abc"), Some(7));
        let mut cache = PieceCache::default();
        let mut out = Vec::new();
        cache.encode_piece(&toy(false), b"de", &mut out);
        cache.encode_piece(&toy(true), b"de", &mut out);
        cache.encode_piece(&toy(false), b"aaa", &mut out);
        cache.encode_piece(&toy(false), b"aaa", &mut out);
        assert_eq!(out, [3, 4, 11, 10, 0, 10, 0]);
    }
}
