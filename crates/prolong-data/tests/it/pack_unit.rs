//! Edge cases of the packing algorithm, in memory.

use prolong_data::pack::{OwnedSequence, PackError, PackOptions, PackStats, pack_u32};

const BOS: u32 = 128_000;
const EOS: u32 = 128_001;

/// Document `k` of length `len`: tokens k*1000 + 1, k*1000 + 2, ...
fn doc(k: u32, len: usize) -> (Vec<u32>, Option<Vec<u8>>) {
    ((0..len as u32).map(|i| k * 1000 + 1 + i).collect(), None)
}

fn pack(docs: &[(Vec<u32>, Option<Vec<u8>>)], o: &PackOptions) -> (Vec<OwnedSequence>, PackStats) {
    let (seqs, stats) = pack_u32(docs, o).unwrap();
    for s in &seqs {
        assert_eq!(s.input_ids.len(), o.seq_len);
        let spans = &s.indices;
        assert_eq!(spans[0].0, 0);
        assert_eq!(spans.last().unwrap().1 as usize, o.seq_len);
        assert!(spans.windows(2).all(|w| w[0].1 == w[1].0));
        assert!(spans.iter().all(|&(a, b)| a < b));
    }
    assert_eq!(
        stats.tokens_in + stats.special_tokens_added,
        stats.tokens_out + stats.tokens_dropped
    );
    assert_eq!(stats.sequences as usize, seqs.len());
    (seqs, stats)
}

fn with_bos_eos(d: &[u32]) -> Vec<u32> {
    let mut v = vec![BOS];
    v.extend_from_slice(d);
    v.push(EOS);
    v
}

#[test]
fn one_token_document() {
    let o = PackOptions::new(8);
    let docs = [doc(1, 1), doc(2, 1), doc(3, 1)];
    let (seqs, stats) = pack(&docs, &o);
    // 3 + 3 + 3 = 9 tokens: one sequence of 8, the last EOS is the partial buffer.
    assert_eq!(seqs.len(), 1);
    assert_eq!(
        seqs[0].input_ids,
        [BOS, 1001, EOS, BOS, 2001, EOS, BOS, 3001]
    );
    assert_eq!(seqs[0].indices, [(0, 3), (3, 6), (6, 8)]);
    assert_eq!(stats.dropped.last_buffer, 1);
    assert_eq!(stats.documents_out, 3);
}

#[test]
fn document_of_n_minus_2_fills_exactly_one_sequence() {
    let n = 16;
    let o = PackOptions::new(n);
    let docs = [doc(1, n - 2), doc(2, n - 2)];
    let (seqs, stats) = pack(&docs, &o);
    assert_eq!(seqs.len(), 2);
    for (s, d) in seqs.iter().zip(&docs) {
        assert_eq!(s.input_ids, with_bos_eos(&d.0));
        assert_eq!(s.indices, [(0, n as u32)]);
    }
    assert_eq!(stats.tokens_dropped, 0);
}

#[test]
fn overflow_of_one_token_is_carried_or_dropped_by_min_length() {
    let n = 16;
    let docs = [doc(1, n - 1), doc(2, 3)];
    // min_length 1: the EOS that overflowed opens the next sequence.
    let (seqs, _) = pack(
        &[docs[0].clone(), docs[1].clone(), doc(3, 20)],
        &PackOptions::new(n),
    );
    assert_eq!(seqs[1].input_ids[0], EOS);
    assert_eq!(seqs[1].indices[0], (0, 1));
    assert_eq!(seqs[1].indices[1], (1, 6));
    // min_length 2: that 1-token tail is dropped; nothing else is.
    let o = PackOptions::new(n).min_length(2);
    let (seqs, stats) = pack(&[docs[0].clone(), docs[1].clone(), doc(3, 20)], &o);
    assert_eq!(seqs[1].input_ids[0], BOS);
    assert_eq!(seqs[1].input_ids[1], 2001);
    assert_eq!(stats.dropped.min_length, 1);
    // A whole document shorter than min_length is not dropped.
    let o = PackOptions::new(n).min_length(10);
    let (seqs, stats) = pack(&[doc(1, 1), doc(2, 27)], &o);
    assert_eq!(seqs[0].input_ids[..3], [BOS, 1001, EOS]);
    assert_eq!(stats.dropped.min_length, 0);
    // min_length 0 behaves as 1 (an empty tail is never carried).
    let (a, _) = pack(
        &[doc(1, n - 2), doc(2, 40)],
        &PackOptions::new(n).min_length(0),
    );
    let (b, _) = pack(&[doc(1, n - 2), doc(2, 40)], &PackOptions::new(n));
    assert_eq!(a, b);
    assert_eq!(a[1].indices[0], (0, n as u32));
}

#[test]
fn long_document_continues_without_new_bos() {
    let n = 10;
    let d = doc(1, 3 * n + 5); // 37 tokens with BOS/EOS
    let (seqs, stats) = pack(std::slice::from_ref(&d), &PackOptions::new(n));
    let full = with_bos_eos(&d.0);
    assert_eq!(seqs.len(), 3);
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(s.input_ids, full[i * n..(i + 1) * n]);
        assert_eq!(s.indices, [(0, n as u32)]);
    }
    assert_eq!(stats.dropped.last_buffer, 7);
    assert_eq!(stats.documents_out, 1);
}

#[test]
fn existing_bos_eos_are_not_doubled() {
    let n = 8;
    let docs = [(vec![BOS, 5, 6, EOS], None), (vec![BOS, 7, 8, 9], None)];
    let (seqs, stats) = pack(&docs, &PackOptions::new(n));
    assert_eq!(seqs[0].input_ids, [BOS, 5, 6, EOS, BOS, 7, 8, 9]);
    assert_eq!(seqs[0].indices, [(0, 4), (4, 8)]);
    assert_eq!(stats.special_tokens_added, 1);
    assert_eq!(stats.dropped.last_buffer, 1); // the EOS added to the second
    // Other special ids: configurable, or none at all.
    let o = PackOptions::new(4).special_tokens(Some(1), None);
    let (seqs, _) = pack(&[(vec![5, 6, 7], None)], &o);
    assert_eq!(seqs[0].input_ids, [1, 5, 6, 7]);
    let o = PackOptions::new(3).special_tokens(None, None);
    let (seqs, _) = pack(&[(vec![5, 6, 7], None)], &o);
    assert_eq!(seqs[0].input_ids, [5, 6, 7]);
}

#[test]
fn empty_document_contributes_nothing() {
    let o = PackOptions::new(4);
    let (seqs, stats) = pack(&[(vec![], None), doc(1, 2)], &o);
    assert_eq!(seqs.len(), 1);
    assert_eq!(seqs[0].indices, [(0, 4)]);
    assert_eq!(stats.documents_in, 2);
    assert_eq!(stats.documents_out, 1);
    assert_eq!(stats.length_histogram.buckets[0].min, 0);
}

#[test]
fn intact_starts_every_sequence_at_a_document() {
    let n = 10;
    let o = PackOptions::new(n).intact(true);
    let docs = [doc(1, 6), doc(2, 25), doc(3, 2), doc(4, 8)];
    let (seqs, stats) = pack(&docs, &o);
    // [8 of doc1][2 of doc2 | 25 dropped] [doc3: 4][doc4: 10 -> 6 in, 4 dropped]
    assert_eq!(seqs.len(), 2);
    assert_eq!(seqs[0].indices, [(0, 8), (8, 10)]);
    assert_eq!(seqs[1].input_ids[..4], [BOS, 3001, 3002, EOS]);
    assert_eq!(seqs[1].indices, [(0, 4), (4, 10)]);
    assert_eq!(stats.dropped.intact, 25 + 4);
}

#[test]
fn split_by_lengths_cuts_after_adding_bos_eos() {
    let o = PackOptions::new(8).split_by_lengths(vec![2, 8]);
    // 13 tokens + BOS/EOS = 15 = 8 + 2 + 2 + 2, remainder 1 dropped.
    let d = doc(1, 13);
    let (seqs, stats) = pack(std::slice::from_ref(&d), &o);
    let full = with_bos_eos(&d.0);
    let by = |dom: &str| seqs.iter().filter(|s| s.domain == dom).collect::<Vec<_>>();
    let long = by("8-8");
    assert_eq!(long.len(), 1);
    assert_eq!(long[0].input_ids, full[..8]);
    assert_eq!(long[0].indices, [(0, 8)]);
    // The 2-token chunks wait in their own buffer (6 of 8 tokens): dropped.
    assert!(by("2-8").is_empty());
    assert_eq!(stats.dropped.split_remainder, 1);
    assert_eq!(stats.dropped.last_buffer, 6);
    // A second document completes the 2-token buffer: chunks keep their order.
    let d2 = doc(2, 1); // 3 tokens: one 2-chunk, remainder 1
    let (seqs, _) = pack(&[d.clone(), d2.clone()], &o);
    let short: Vec<_> = seqs.iter().filter(|s| s.domain == "2-8").collect();
    assert_eq!(short.len(), 1);
    let mut expect = full[8..14].to_vec();
    expect.extend_from_slice(&[BOS, 2001]);
    assert_eq!(short[0].input_ids, expect);
    assert_eq!(short[0].indices, [(0, 2), (2, 4), (4, 6), (6, 8)]);
    // Sequences of the longest target come first in subsets().
    assert_eq!(o.subsets(), ["8-8", "2-8"]);
    assert_eq!(
        PackOptions::new(8)
            .domain("book")
            .split_by_lengths(vec![2, 8])
            .subsets(),
        ["book/8-8", "book/2-8"]
    );
}

#[test]
fn split_with_intact_keeps_only_the_first_chunk() {
    let o = PackOptions::new(4).split_by_lengths(vec![4]).intact(true);
    let (seqs, stats) = pack(&[doc(1, 10)], &o);
    assert_eq!(seqs.len(), 1);
    assert_eq!(seqs[0].input_ids, [BOS, 1001, 1002, 1003]);
    assert_eq!(stats.dropped.intact, 8);
}

#[test]
fn mask_is_zero_at_inserted_specials_and_carried_elsewhere() {
    let n = 6;
    let docs = [
        (vec![1, 2, 3], Some(vec![0, 1, 1])),
        (vec![BOS, 5, 6, 7], Some(vec![1, 0, 1, 1])),
    ];
    let (seqs, _) = pack(&docs, &PackOptions::new(n));
    // [BOS 1 2 3 EOS] [BOS(own) 5 | 6 7 EOS]
    assert_eq!(seqs[0].input_ids, [BOS, 1, 2, 3, EOS, BOS]);
    assert_eq!(seqs[0].mask.as_deref(), Some(&[0, 0, 1, 1, 0, 1][..]));
    // A mask that does not match its tokens is an error, not a panic.
    let bad = [(vec![1, 2, 3], Some(vec![1, 1]))];
    assert!(matches!(
        pack_u32(&bad, &PackOptions::new(n)),
        Err(PackError::Settings(_))
    ));
    let missing = [(vec![1, 2], Some(vec![1, 1])), (vec![1, 2], None)];
    assert!(pack_u32(&missing, &PackOptions::new(n)).is_err());
}

#[test]
fn invalid_settings_are_errors() {
    for o in [
        PackOptions::new(0),
        PackOptions::new(8).split_by_lengths(vec![4, 4]),
        PackOptions::new(8).split_by_lengths(vec![0]),
        PackOptions::new(8).domain("../x"),
        PackOptions::new(8).domain(""),
    ] {
        assert!(
            matches!(pack_u32(&[], &o), Err(PackError::Settings(_))),
            "{o:?}"
        );
    }
}

#[test]
fn documents_out_counts_documents_finished_later() {
    // Doc 0 waits in the buffer while docs 1.. are pushed; it is "out" once
    // the buffer is emitted, and the last document, left in the partial
    // buffer, is not.
    let o = PackOptions::new(10);
    let (seqs, stats) = pack(&[doc(1, 2), doc(2, 2), doc(3, 5), doc(4, 1)], &o);
    assert_eq!(seqs.len(), 1);
    assert_eq!(stats.documents_in, 4);
    assert_eq!(stats.documents_out, 3);
    // Split: a document whose chunks wait in two buffers is counted once.
    let o = PackOptions::new(4).split_by_lengths(vec![2, 4]);
    let (_, stats) = pack(&[doc(1, 4), doc(2, 4), doc(3, 4)], &o);
    assert_eq!(stats.documents_out, 3);
    assert_eq!(stats.sequences_per_subset["4-4"], 3);
    assert_eq!(stats.sequences_per_subset["2-4"], 1);
}

#[test]
fn length_histogram_buckets_by_powers_of_two() {
    let (_, stats) = pack(
        &[doc(1, 1), doc(2, 2), doc(3, 3), doc(4, 4), doc(5, 1000)],
        &PackOptions::new(4),
    );
    let h: Vec<(u64, u64, u64)> = stats
        .length_histogram
        .buckets
        .iter()
        .map(|b| (b.min, b.max, b.documents))
        .collect();
    assert_eq!(h, [(1, 1, 1), (2, 3, 2), (4, 7, 1), (512, 1023, 1)]);
}

/// ProLong's packer transcribed literally (lists of pieces, concatenation,
/// re-slicing): the streaming packer must agree with it on random inputs.
mod reference {
    use super::{BOS, EOS};

    /// One sequence: tokens and (start, end) spans.
    pub type Emitted = (Vec<u32>, Vec<(u32, u32)>);

    pub struct Buf {
        n: usize,
        min: usize,
        intact: bool,
        pieces: Vec<Vec<u32>>,
    }

    impl Buf {
        pub fn new(n: usize, min: usize, intact: bool) -> Buf {
            Buf {
                n,
                min,
                intact,
                pieces: vec![],
            }
        }
        pub fn process(&mut self, t: Vec<u32>, out: &mut Vec<Emitted>) {
            self.pieces.push(t);
            while self.pieces.iter().map(Vec::len).sum::<usize>() >= self.n {
                let all: Vec<u32> = self.pieces.concat();
                let mut ind = vec![];
                let mut start = 0;
                for p in &self.pieces {
                    ind.push((start as u32, (start + p.len()).min(self.n) as u32));
                    start += p.len();
                    if start >= self.n {
                        break;
                    }
                }
                out.push((all[..self.n].to_vec(), ind));
                self.pieces.clear();
                if !self.intact {
                    let rest = all[self.n..].to_vec();
                    if rest.len() >= self.min {
                        self.pieces.push(rest);
                    }
                }
            }
        }
    }

    pub fn add(t: &[u32]) -> Vec<u32> {
        let mut v = t.to_vec();
        if !t.is_empty() && t[0] != BOS {
            v.insert(0, BOS);
        }
        if !t.is_empty() && t[t.len() - 1] != EOS {
            v.push(EOS);
        }
        v
    }
}

/// A sequence with its domain.
type Labelled = (String, Vec<u32>, Vec<(u32, u32)>);

#[test]
fn agrees_with_a_literal_transcription_of_the_reference() {
    let mut rng = prolong_rng::SplitMix64::new(0x1234_5678_9abc_def1);
    let mut rand = |k: usize| rng.below(k as u64) as usize;
    for case in 0..400 {
        let n = 1 + rand(40);
        let min = rand(3) * rand(n + 5);
        let intact = rand(4) == 0;
        let split: Vec<usize> = match rand(3) {
            0 => vec![],
            1 => vec![1 + rand(2 * n)],
            _ => {
                let a = 1 + rand(n);
                let b = a + 1 + rand(2 * n);
                vec![a, b]
            }
        };
        let docs: Vec<(Vec<u32>, Option<Vec<u8>>)> = (0..rand(30))
            .map(|k| {
                let mut t: Vec<u32> = (0..rand(3 * n + 3))
                    .map(|i| (k * 1000 + i + 1) as u32)
                    .collect();
                if !t.is_empty() && rand(5) == 0 {
                    t[0] = BOS;
                }
                if !t.is_empty() && rand(5) == 0 {
                    let l = t.len() - 1;
                    t[l] = EOS;
                }
                (t, None)
            })
            .collect();
        let o = PackOptions::new(n)
            .min_length(min)
            .intact(intact)
            .split_by_lengths(split.clone());
        // The reference, as in datatools pack_fn (min_length 0 read as 1).
        let min_ref = min.max(1);
        let mut expect: Vec<Labelled> = vec![];
        let mut sorted = split.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        let mut bufs: Vec<reference::Buf> = (0..sorted.len().max(1))
            .map(|_| reference::Buf::new(n, min_ref, intact))
            .collect();
        for (t, _) in &docs {
            // The one deviation: the reference would append an empty piece
            // (an empty [s, s) row in indices) for an empty document; MDS
            // cannot even store one, and ours skips it.
            if t.is_empty() {
                continue;
            }
            let mut ids = reference::add(t);
            if sorted.is_empty() {
                let mut out = vec![];
                bufs[0].process(ids, &mut out);
                expect.extend(out.into_iter().map(|(a, b)| (".".to_string(), a, b)));
                continue;
            }
            while ids.len() >= *sorted.last().unwrap() {
                let bi = sorted.iter().position(|&x| ids.len() >= x).unwrap();
                let target = sorted[bi];
                let mut out = vec![];
                bufs[bi].process(ids[..target].to_vec(), &mut out);
                expect.extend(
                    out.into_iter()
                        .map(|(a, b)| (format!("{target}-{n}"), a, b)),
                );
                if intact {
                    break;
                }
                ids = ids[target..].to_vec();
            }
        }
        let (got, _) = pack(&docs, &o);
        let got: Vec<Labelled> = got
            .into_iter()
            .map(|s| (s.domain, s.input_ids, s.indices))
            .collect();
        assert_eq!(got, expect, "case {case}: {o:?}");
    }
}
