//! The mixture loader: allocation, columns, masks, order, state restore, epochs.

use super::*;

fn counts(seqs: &[LoadedSequence], streams: usize) -> Vec<u64> {
    let mut c = vec![0u64; streams];
    for s in seqs {
        c[s.stream] += 1;
    }
    c
}

#[test]
fn allocation_is_floor_plus_seeded_remainder() {
    let p = [0.3, 0.3, 0.4];
    for seed in 0..20 {
        assert_eq!(allocate(&p, 10, seed), vec![3, 3, 4]);
    }
    // 7 × (0.3, 0.3, 0.4) = (2.1, 2.1, 2.8): floors 2, 2, 2 and one left over.
    let mut receivers = std::collections::BTreeSet::new();
    for seed in 0..64 {
        let a = allocate(&p, 7, seed);
        assert_eq!(a.iter().sum::<u64>(), 7);
        let extra: Vec<usize> = (0..3).filter(|&j| a[j] == 3).collect();
        assert_eq!(extra.len(), 1, "{a:?}");
        assert!(a.iter().all(|&x| x == 2 || x == 3));
        receivers.insert(extra[0]);
        assert_eq!(allocate(&p, 7, seed), a, "deterministic");
    }
    assert_eq!(
        receivers.len(),
        3,
        "the seeded RNG picks every stream sometimes"
    );
    // A stream of proportion 0 never receives a remainder sequence.
    for seed in 0..64 {
        let a = allocate(&[0.5, 0.0, 0.5], 5, seed);
        assert_eq!(a[1], 0);
        assert_eq!(a.iter().sum::<u64>(), 5);
    }
    // The released 64K mixture: sums exactly, floors respected.
    let p64 = [0.3, 0.3, 0.1, 0.1, 0.04, 0.04, 0.03, 0.03, 0.03, 0.03];
    let total = 5000 * 64;
    let a = allocate(&p64, total, 42);
    assert_eq!(a.iter().sum::<u64>(), total);
    for (j, &x) in a.iter().enumerate() {
        let floor = (total as f64 * p64[j]).floor() as u64;
        assert!(x == floor || x == floor + 1, "{j}: {x} vs {floor}");
    }
}

#[test]
fn loader_counts_match_the_allocation() {
    // Unnormalised proportions: 3/3/4 is 0.3/0.3/0.4.
    let (_tmp, mix) = three_stream_mixture([6, 5, 7], &[3.0, 3.0, 4.0]);
    let mut l = MixtureLoader::new(&mix, 10, SEQ, 1).unwrap();
    assert_eq!(l.allocation(), &[3, 3, 4]);
    let seqs = drain(&mut l);
    assert_eq!(seqs.len(), 10);
    assert_eq!(counts(&seqs, 3), vec![3, 3, 4]);
    assert_eq!(l.position(), 10);
    assert!(l.next_sequence().unwrap().is_none());

    for seed in [0, 5, 99] {
        let mut l = MixtureLoader::new(&mix, 7, SEQ, seed).unwrap();
        let expected = allocate(&[0.3, 0.3, 0.4], 7, seed);
        assert_eq!(l.allocation(), expected.as_slice());
        let seqs = drain(&mut l);
        assert_eq!(counts(&seqs, 3), expected);
        // Fewer draws than samples: no sample repeats within a stream.
        let mut seen = ids(&seqs);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 7);
    }
}

#[test]
fn columns_are_read_in_every_layout() {
    let (_tmp, mix) = three_stream_mixture([4, 4, 6], &[1.0, 1.0, 1.0]);
    let mut l = MixtureLoader::new(&mix, 30, SEQ, 3).unwrap();
    let seqs = drain(&mut l);
    let mut merged_samples = std::collections::BTreeSet::new();
    for s in &seqs {
        let i = (s.input_ids[0] % 1000) as usize;
        assert_eq!(s.input_ids, tokens(s.stream as u32 + 1, i, SEQ));
        match s.stream {
            0 => {
                assert_eq!(s.indices, pieces(i, SEQ));
                assert_eq!(s.mask, None);
            }
            1 => {
                assert_eq!(s.indices, pieces(i, SEQ));
                assert_eq!(s.mask, Some(mask_of(i, SEQ)));
            }
            _ => {
                assert_eq!(s.indices, vec![[0, SEQ]], "no indices: one document");
                assert_eq!(s.mask, None);
                merged_samples.insert(i);
            }
        }
    }
    // Both sub-folders of the merged root are read.
    assert_eq!(merged_samples, (0..6).collect());

    // `[data] apply_mask = false` (pre-training): the same sequences, no mask read.
    let mut off = MixtureLoader::new(&mix, 30, SEQ, 3)
        .unwrap()
        .apply_mask(false);
    let plain = drain(&mut off);
    assert_eq!(plain.len(), seqs.len());
    for (p, s) in plain.iter().zip(&seqs) {
        assert_eq!((&p.input_ids, &p.indices), (&s.input_ids, &s.indices));
        assert_eq!(p.mask, None);
    }
    assert!(seqs.iter().any(|s| s.mask.is_some()));
}

#[test]
fn uint32_mask_is_accepted_and_bad_values_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let p = dataset(
        &tmp.path().join("m32"),
        1,
        3,
        Layout {
            length: Length::Int,
            indices: true,
            mask: Some("ndarray:uint32"),
        },
    );
    let mut l = MixtureLoader::new(&mixture(&[p], &[1.0]), 3, SEQ, 0).unwrap();
    for s in drain(&mut l) {
        let i = (s.input_ids[0] % 1000) as usize;
        assert_eq!(s.mask, Some(mask_of(i, SEQ)));
    }

    // A mask value of 2 in sample 0: caught up front, naming path and sample.
    let dir = tmp.path().join("badmask");
    let mut w = MdsWriter::create(
        &dir,
        &[("input_ids", "ndarray:uint32"), ("mask", "ndarray:uint8")],
        WriterOptions::default(),
    )
    .unwrap();
    let ids = tokens(1, 0, SEQ);
    let mut mask = vec![1u8; SEQ];
    mask[5] = 2;
    w.write(&[
        ("input_ids", Value::Array(Array::from_u32(&ids))),
        ("mask", Value::Array(Array::from_u8(&mask))),
    ])
    .unwrap();
    w.finish().unwrap();
    let err = MixtureLoader::new(&mixture(std::slice::from_ref(&dir), &[1.0]), 1, SEQ, 0)
        .err()
        .unwrap();
    assert!(
        matches!(err, DataError::BadSample { sample: 0, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("badmask") && msg.contains("mask[5] = 2"),
        "{msg}"
    );
}

#[test]
fn same_seed_same_order_different_seed_different_order() {
    let (_tmp, mix) = three_stream_mixture([20, 20, 20], &[0.3, 0.3, 0.4]);
    let run = |seed| {
        ids(&drain(
            &mut MixtureLoader::new(&mix, 40, SEQ, seed).unwrap(),
        ))
    };
    let a = run(11);
    assert_eq!(a, run(11));
    assert_eq!(a, run(11));
    assert_ne!(a, run(12));
    // The streams are interleaved, not one block after another.
    let switches = a.windows(2).filter(|w| w[0].0 != w[1].0).count();
    assert!(switches > 5, "{a:?}");
}

#[test]
fn state_restore_continues_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    // Stream 2 is small: the restore lands in its second epoch.
    let paths = three_streams(tmp.path(), [10, 9, 3]);
    let mix = mixture(&paths, &[0.3, 0.3, 0.4]);
    let full = ids(&drain(&mut MixtureLoader::new(&mix, 25, SEQ, 7).unwrap()));
    for stop in [0, 1, 9, 17, 24, 25] {
        let mut a = MixtureLoader::new(&mix, 25, SEQ, 7).unwrap();
        let mut head = Vec::new();
        for _ in 0..stop {
            head.push(a.next_sequence().unwrap().unwrap());
        }
        let state = a.state();
        assert_eq!(state.position, stop);
        let json = serde_json::to_string(&state).unwrap();
        assert!(json.len() < 200, "small state: {json}");
        let state: LoaderState = serde_json::from_str(&json).unwrap();

        let mut b = MixtureLoader::new(&mix, 25, SEQ, 7).unwrap();
        // Consume a few first: restore must not depend on the loader's history.
        for _ in 0..3 {
            b.next_sequence().unwrap();
        }
        b.restore(&state).unwrap();
        assert_eq!(b.position(), stop);
        let tail = drain(&mut b);
        assert_eq!(ids(&tail), ids(&drain(&mut a)), "stop {stop}");
        let mut whole = ids(&head);
        whole.extend(ids(&tail));
        assert_eq!(whole, full, "stop {stop}");
    }

    // A state from another seed, total or mixture is refused.
    let state = MixtureLoader::new(&mix, 25, SEQ, 7).unwrap().state();
    for (mix2, total, seed) in [
        (mix.clone(), 25, 8),
        (mix.clone(), 26, 7),
        (mixture(&paths, &[0.1, 0.1, 0.8]), 25, 7),
    ] {
        let mut other = MixtureLoader::new(&mix2, total, SEQ, seed).unwrap();
        let err = other.restore(&state).unwrap_err();
        assert!(matches!(err, DataError::State(_)), "{err}");
        assert_eq!(other.position(), 0);
    }
}

#[test]
fn small_stream_wraps_into_fresh_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let p = dataset(&tmp.path().join("tiny"), 1, 20, PLAIN);
    let mut l = MixtureLoader::new(&mixture(&[p], &[1.0]), 50, SEQ, 5).unwrap();
    let got: Vec<u32> = ids(&drain(&mut l)).into_iter().map(|x| x.1).collect();
    assert_eq!(got.len(), 50);
    let epochs: Vec<&[u32]> = got.chunks(20).collect();
    for e in &epochs[..2] {
        let mut s = e.to_vec();
        s.sort();
        assert_eq!(
            s,
            (0..20).collect::<Vec<_>>(),
            "every epoch is a permutation"
        );
    }
    assert_ne!(epochs[0], epochs[1], "each epoch has a fresh permutation");
    assert_ne!(
        epochs[0],
        (0..20).collect::<Vec<_>>().as_slice(),
        "shuffled"
    );
    let mut last = epochs[2].to_vec();
    last.sort();
    last.dedup();
    assert_eq!(last.len(), 10);

    // In a mixture: a 3-sample stream asked for 8 sequences.
    let paths = three_streams(tmp.path(), [10, 10, 3]);
    let mut l = MixtureLoader::new(&mixture(&paths, &[0.3, 0.3, 0.4]), 20, SEQ, 2).unwrap();
    assert_eq!(l.allocation(), &[6, 6, 8]);
    let small: Vec<u32> = ids(&drain(&mut l))
        .into_iter()
        .filter(|x| x.0 == 2)
        .map(|x| x.1)
        .collect();
    assert_eq!(small.len(), 8);
    for e in small.chunks(3).take(2) {
        let mut s = e.to_vec();
        s.sort();
        assert_eq!(s, vec![0, 1, 2]);
    }
}

#[test]
fn zero_sequences_and_zero_proportion_streams() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = three_streams(tmp.path(), [4, 4, 4]);
    let mut l = MixtureLoader::new(&mixture(&paths, &[1.0, 1.0, 1.0]), 0, SEQ, 0).unwrap();
    assert!(l.next_sequence().unwrap().is_none());
    let mut l = MixtureLoader::new(&mixture(&paths, &[1.0, 0.0, 1.0]), 9, SEQ, 0).unwrap();
    assert_eq!(l.allocation()[1], 0);
    assert!(drain(&mut l).iter().all(|s| s.stream != 1));
}
