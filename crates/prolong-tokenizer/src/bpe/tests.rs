//! The three ways of merging agree, on toy models and random merge lists.

#![cfg(test)]

use super::*;

/// xorshift64, the tests' pseudo-random numbers (seeded, so every run draws the same).
struct XorShift(u64);

impl XorShift {
    /// The next number, below `n`.
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    /// A word of `len` letters drawn from the first `letters` of a, b, c, ...
    fn word(&mut self, len: usize, letters: usize) -> String {
        (0..len)
            .map(|_| (b'a' + self.below(letters) as u8) as char)
            .collect()
    }
}

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
    let mut rng = XorShift(0x9e3779b97f4a7c15);
    for len in 2..300 {
        let w = rng.word(len, 5);
        let (a, b) = enc(&bpe, &w);
        assert_eq!(a, b, "{w}");
        assert_eq!(bpe.merge_word_by_rank(w.as_bytes()), a, "{w}");
    }
}

#[test]
fn by_rank_agrees_with_the_heap() {
    let bpe = toy(false);
    for (w, want) in [
        ("", vec![]),
        ("a", vec![0]),
        ("abc", vec![7]),
        ("aaa", vec![10, 0]),
        ("aaaa", vec![10, 10]),
        ("abcc", vec![5, 8]),
        ("bccd", vec![1, 9]),
        ("eabcdcccd", vec![4, 7, 3, 8, 2, 3]),
    ] {
        assert_eq!(bpe.merge_word_by_rank(w.as_bytes()), want, "{w}");
    }
    // a + bc ranks before b + c, as tokenizer.json files list merges
    // (every split of a token, at the token's rank): merging bc makes a
    // pair of a lower rank, which the heap takes next.
    let mut byte_ids = [NONE; 256];
    for (i, b) in (b'a'..=b'd').enumerate() {
        byte_ids[b as usize] = i as u32;
    }
    let vocab = ["a", "b", "c", "d", "bc", "abc", "cd", "abcd"]
        .iter()
        .enumerate()
        .map(|(id, w)| (w.as_bytes().to_vec(), id as u32))
        .collect();
    // 0: c+d, 1: a+bc, 2: b+c, 3: abc+d.
    let odd = Bpe::new(
        byte_ids,
        vocab,
        &[(2, 3, 6), (0, 4, 5), (1, 2, 4), (5, 3, 7)],
        false,
    );
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    for len in 0..200 {
        let w = rng.word(len, 4);
        let (scan, heap) = enc(&odd, &w);
        assert_eq!(scan, heap);
        assert_eq!(odd.merge_word_by_rank(w.as_bytes()), heap, "{w:?}");
    }
    assert_eq!(odd.merge_word_by_rank(b"abcabcd"), [5, 0, 1, 6]);
}

/// Random merge lists over a..e, half of them shuffled so that merges
/// often make pairs of lower ranks: rank by rank gives the heap's ids.
#[test]
fn by_rank_agrees_with_the_heap_on_random_merge_lists() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for trial in 0..60 {
        let mut byte_ids = [NONE; 256];
        let mut tokens: Vec<Vec<u8>> = Vec::new();
        for b in b'a'..=b'e' {
            byte_ids[b as usize] = tokens.len() as u32;
            tokens.push(vec![b]);
        }
        let mut merges: Vec<(u32, u32, u32)> = Vec::new();
        for _ in 0..60 {
            let (a, b) = (rng.below(tokens.len()), rng.below(tokens.len()));
            let joined = [tokens[a].as_slice(), &tokens[b]].concat();
            if joined.len() > 7 || merges.iter().any(|m| (m.0, m.1) == (a as u32, b as u32)) {
                continue;
            }
            let id = match tokens.iter().position(|t| *t == joined) {
                Some(i) => i,
                None => {
                    tokens.push(joined);
                    tokens.len() - 1
                }
            };
            merges.push((a as u32, b as u32, id as u32));
        }
        if trial % 2 == 0 {
            for i in (1..merges.len()).rev() {
                merges.swap(i, rng.below(i + 1));
            }
        }
        let vocab = tokens
            .iter()
            .enumerate()
            .map(|(id, t)| (t.clone(), id as u32))
            .collect();
        let bpe = Bpe::new(byte_ids, vocab, &merges, false);
        for len in 0..150 {
            let w = rng.word(len, 5);
            let mut heap = Vec::new();
            bpe.merge_word_heap(w.as_bytes(), &mut heap);
            assert_eq!(
                bpe.merge_word_by_rank(w.as_bytes()),
                heap,
                "trial {trial}: {w:?}"
            );
        }
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
