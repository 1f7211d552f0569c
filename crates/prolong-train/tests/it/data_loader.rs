//! MixtureLoader over small MDS datasets in ProLong's layouts: allocation,
//! ordering, resumption, epochs, mixture parsing and errors.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use prolong_mds::{Array, MdsWriter, Scalar, Value, WriterOptions, merge_index};
use prolong_train::data::{
    DataError, LoadedSequence, LoaderState, Mixture, MixtureLoader, Stream, allocate,
};

const SEQ: usize = 8;

#[derive(Clone, Copy)]
enum Length {
    Int,
    U64,
    Absent,
}

#[derive(Clone, Copy)]
struct Layout {
    length: Length,
    indices: bool,
    /// Mask column encoding, if any ("ndarray:uint8", "ndarray:uint32").
    mask: Option<&'static str>,
}

const PLAIN: Layout = Layout {
    length: Length::Int,
    indices: true,
    mask: None,
};

/// Tokens of sample `i` of the dataset tagged `tag`: the first token identifies it.
fn tokens(tag: u32, i: usize, seq_len: usize) -> Vec<u32> {
    let mut ids = vec![tag * 1000 + i as u32];
    ids.extend((1..seq_len).map(|t| t as u32));
    ids
}

fn pieces(i: usize, seq_len: usize) -> Vec<[usize; 2]> {
    let cut = 1 + i % (seq_len - 1);
    vec![[0, cut], [cut, seq_len]]
}

fn mask_of(i: usize, seq_len: usize) -> Vec<u8> {
    (0..seq_len).map(|t| ((t + i) % 2) as u8).collect()
}

/// Writes `n` samples (ProLong's packed columns) into `dir`, with sample
/// numbers starting at `first`.
fn write_samples(dir: &Path, tag: u32, first: usize, n: usize, seq_len: usize, layout: Layout) {
    let mut columns = vec![("domain", "str"), ("input_ids", "ndarray:uint32")];
    if layout.indices {
        columns.push(("indices", "ndarray:uint32"));
    }
    match layout.length {
        Length::Int => columns.push(("length", "int")),
        Length::U64 => columns.push(("length", "uint64")),
        Length::Absent => {}
    }
    if let Some(enc) = layout.mask {
        columns.push(("mask", enc));
    }
    let mut w = MdsWriter::create(dir, &columns, WriterOptions::default()).unwrap();
    for i in first..first + n {
        let ids = tokens(tag, i, seq_len);
        let flat: Vec<u32> = pieces(i, seq_len)
            .iter()
            .flat_map(|p| [p[0] as u32, p[1] as u32])
            .collect();
        let mask8 = mask_of(i, seq_len);
        let mask32: Vec<u32> = mask8.iter().map(|&m| m as u32).collect();
        let mut sample = vec![
            ("domain", Value::Str(Cow::Borrowed("test"))),
            ("input_ids", Value::Array(Array::from_u32(&ids))),
        ];
        if layout.indices {
            sample.push((
                "indices",
                Value::Array(Array::from_u32(&flat).with_shape(vec![flat.len() / 2, 2])),
            ));
        }
        match layout.length {
            Length::Int => sample.push(("length", Value::Int(seq_len as i64))),
            Length::U64 => sample.push(("length", Value::Scalar(Scalar::U64(seq_len as u64)))),
            Length::Absent => {}
        }
        match layout.mask {
            Some("ndarray:uint8") => sample.push(("mask", Value::Array(Array::from_u8(&mask8)))),
            Some(_) => sample.push(("mask", Value::Array(Array::from_u32(&mask32)))),
            None => {}
        }
        w.write(&sample).unwrap();
    }
    w.finish().unwrap();
}

fn dataset(dir: &Path, tag: u32, n: usize, layout: Layout) -> PathBuf {
    write_samples(dir, tag, 0, n, SEQ, layout);
    dir.to_path_buf()
}

/// A merged root: two `procNN-64/` sub-folders and a root index.json.
fn merged_dataset(root: &Path, tag: u32, n0: usize, n1: usize, layout: Layout) -> PathBuf {
    write_samples(&root.join("proc00-64"), tag, 0, n0, SEQ, layout);
    write_samples(&root.join("proc01-64"), tag, n0, n1, SEQ, layout);
    merge_index(root).unwrap();
    root.to_path_buf()
}

/// Three streams in ProLong's layouts: plain (length int); SFT-like with a uint8
/// mask and length uint64; a merged root without length nor indices.
fn three_streams(tmp: &Path, sizes: [usize; 3]) -> Vec<PathBuf> {
    vec![
        dataset(&tmp.join("code"), 1, sizes[0], PLAIN),
        dataset(
            &tmp.join("sft"),
            2,
            sizes[1],
            Layout {
                length: Length::U64,
                indices: true,
                mask: Some("ndarray:uint8"),
            },
        ),
        merged_dataset(
            &tmp.join("books"),
            3,
            sizes[2] / 2,
            sizes[2] - sizes[2] / 2,
            Layout {
                length: Length::Absent,
                indices: false,
                mask: None,
            },
        ),
    ]
}

fn mixture(paths: &[PathBuf], proportions: &[f64]) -> Mixture {
    Mixture {
        streams: paths
            .iter()
            .zip(proportions)
            .map(|(p, &proportion)| Stream {
                path: p.clone(),
                proportion,
            })
            .collect(),
    }
}

fn drain(loader: &mut MixtureLoader) -> Vec<LoadedSequence> {
    let mut out = Vec::new();
    while let Some(s) = loader.next_sequence().unwrap() {
        out.push(s);
    }
    out
}

/// (stream, sample number) of each sequence.
fn ids(seqs: &[LoadedSequence]) -> Vec<(usize, u32)> {
    seqs.iter()
        .map(|s| (s.stream, s.input_ids[0] % 1000))
        .collect()
}

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
    let tmp = tempfile::tempdir().unwrap();
    let paths = three_streams(tmp.path(), [6, 5, 7]);
    // Unnormalised proportions: 3/3/4 is 0.3/0.3/0.4.
    let mix = mixture(&paths, &[3.0, 3.0, 4.0]);
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
    let tmp = tempfile::tempdir().unwrap();
    let paths = three_streams(tmp.path(), [4, 4, 6]);
    let mix = mixture(&paths, &[1.0, 1.0, 1.0]);
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
    let tmp = tempfile::tempdir().unwrap();
    let paths = three_streams(tmp.path(), [20, 20, 20]);
    let mix = mixture(&paths, &[0.3, 0.3, 0.4]);
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

#[test]
fn path_at_proportion_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let a = dataset(&tmp.path().join("a"), 1, 2, PLAIN);
    // '@' inside a path: the split is at the last one.
    let b = dataset(&tmp.path().join("b@v2"), 2, 2, PLAIN);
    let args = vec![
        format!("{}@0.3", a.display()),
        format!("{}@0.7", b.display()),
    ];
    let m = Mixture::from_args(&args).unwrap();
    assert_eq!(
        m,
        Mixture {
            streams: vec![
                Stream {
                    path: a.clone(),
                    proportion: 0.3
                },
                Stream {
                    path: b.clone(),
                    proportion: 0.7
                },
            ]
        }
    );
    // No proportions at all: an even split.
    let c = dataset(&tmp.path().join("c"), 3, 2, PLAIN);
    let m = Mixture::from_args(&[a.display().to_string(), c.display().to_string()]).unwrap();
    assert_eq!(m.streams[1].path, c);
    assert!(m.streams.iter().all(|s| s.proportion == 1.0));
    // A path holding '@' needs an explicit proportion.
    let err = Mixture::from_args(&[b.display().to_string()]).unwrap_err();
    assert!(matches!(err, DataError::Argument { .. }), "{err}");
    // Mixed, malformed and empty.
    for bad in [
        vec![format!("{}@0.3", a.display()), a.display().to_string()],
        vec![format!("{}@zero", a.display())],
        vec!["@0.5".to_string()],
    ] {
        let err = Mixture::from_args(&bad).unwrap_err();
        assert!(matches!(err, DataError::Argument { .. }), "{err}");
    }
    assert!(matches!(
        Mixture::from_args(&[]).unwrap_err(),
        DataError::NoStreams { .. }
    ));
}

#[test]
fn manifest_with_relative_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let a = dataset(&tmp.path().join("data/a"), 1, 3, PLAIN);
    let b = dataset(&tmp.path().join("elsewhere/b"), 2, 3, PLAIN);
    let dir = tmp.path().join("mixes");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("stage1.toml");
    std::fs::write(
        &manifest,
        format!(
            "# written by prolong-data mix\nseq_len = 8\n\n\
             [[stream]]\npath = \"../data/a\"\nproportion = 0.3\ntokens = 123\n\n\
             [[stream]]\npath = {:?}\nproportion = 1\n",
            b.display().to_string()
        ),
    )
    .unwrap();
    let m = Mixture::from_manifest(&manifest).unwrap();
    assert_eq!(m.streams.len(), 2);
    assert_eq!(m.streams[0].path, dir.join("../data/a"));
    assert_eq!(m.streams[0].proportion, 0.3);
    assert_eq!(m.streams[1].path, b);
    assert_eq!(m.streams[1].proportion, 1.0);
    assert_eq!(
        std::fs::canonicalize(&m.streams[0].path).unwrap(),
        std::fs::canonicalize(&a).unwrap()
    );
    let mut l = MixtureLoader::new(&m, 4, SEQ, 0).unwrap();
    assert_eq!(drain(&mut l).len(), 4);

    let write = |text: &str| {
        std::fs::write(&manifest, text).unwrap();
        Mixture::from_manifest(&manifest).unwrap_err()
    };
    for text in [
        "[[stream]]\npath = \"../data/a\"\n", // no proportion
        "[[stream]]\npath = \"../data/a\"\nproportion = \"x\"\n", // not a number
        "[[stream]\n",                        // not TOML
    ] {
        let err = write(text);
        assert!(matches!(err, DataError::Manifest { .. }), "{err}");
        assert!(err.to_string().contains("stage1.toml"), "{err}");
    }
    assert!(matches!(write("# nothing\n"), DataError::NoStreams { .. }));
    let err = write("[[stream]]\npath = \"../data/missing\"\nproportion = 1\n");
    assert!(
        matches!(&err, DataError::NotMds { path, .. } if path.ends_with("data/missing")),
        "{err}"
    );
    let err = Mixture::from_manifest(&dir.join("nope.toml")).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }) && err.to_string().contains("nope.toml"));
}

#[test]
fn clear_errors_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let a = dataset(&tmp.path().join("a"), 1, 3, PLAIN);
    let b = dataset(&tmp.path().join("b"), 2, 3, PLAIN);

    let err = MixtureLoader::new(&mixture(&[a.clone(), b.clone()], &[0.0, 0.0]), 4, SEQ, 0)
        .err()
        .unwrap();
    assert!(matches!(err, DataError::ProportionSum { .. }), "{err}");
    assert!(err.to_string().contains("sum to 0"), "{err}");

    for bad in [-0.1, f64::NAN, f64::INFINITY] {
        let err = MixtureLoader::new(&mixture(&[a.clone(), b.clone()], &[0.5, bad]), 4, SEQ, 0)
            .err()
            .unwrap();
        assert!(
            matches!(&err, DataError::Proportion { path, .. } if *path == b),
            "{err}"
        );
    }
    let err = Mixture::from_args(&[format!("{}@-1", a.display())]).unwrap_err();
    assert!(matches!(err, DataError::Proportion { .. }), "{err}");
    let err = Mixture::from_args(&[format!("{}@nan", a.display())]).unwrap_err();
    assert!(matches!(err, DataError::Proportion { .. }), "{err}");

    // Not an MDS dataset: a missing folder, a folder without index.json, a broken index.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("index.json"), "{not json").unwrap();
    for p in [tmp.path().join("missing"), empty, broken] {
        let err = MixtureLoader::new(&mixture(&[a.clone(), p.clone()], &[1.0, 1.0]), 4, SEQ, 0)
            .err()
            .unwrap();
        assert!(
            matches!(&err, DataError::NotMds { path, .. } if *path == p),
            "{err}"
        );
        assert!(err.to_string().contains(&p.display().to_string()));
    }

    // Wrong sequence length: named stream and length, before any sequence.
    let long = tmp.path().join("long");
    write_samples(&long, 3, 0, 2, 16, PLAIN);
    let err = MixtureLoader::new(&mixture(&[a.clone(), long.clone()], &[1.0, 1.0]), 4, SEQ, 0)
        .err()
        .unwrap();
    assert!(
        matches!(&err, DataError::SequenceLength { path, len: 16, expected: 8, .. } if *path == long),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("long") && msg.contains("16") && msg.contains('8'),
        "{msg}"
    );

    // A later sample of the wrong length fails when read, naming the sample,
    // without advancing.
    let mixed = tmp.path().join("mixed");
    write_samples(&mixed.join("proc00-64"), 4, 0, 1, SEQ, PLAIN);
    write_samples(&mixed.join("proc01-64"), 4, 1, 1, 16, PLAIN);
    merge_index(&mixed).unwrap();
    let mut l =
        MixtureLoader::new(&mixture(std::slice::from_ref(&mixed), &[1.0]), 2, SEQ, 0).unwrap();
    let (first, second) = loop {
        let before = l.position();
        match l.next_sequence() {
            Ok(Some(_)) => {}
            Err(e) => break (before, e),
            Ok(None) => panic!("the bad sample was never read"),
        }
    };
    assert!(
        matches!(
            second,
            DataError::SequenceLength {
                sample: 1,
                len: 16,
                ..
            }
        ),
        "{second}"
    );
    assert_eq!(l.position(), first, "an error does not advance");
    assert!(matches!(
        l.next_sequence(),
        Err(DataError::SequenceLength { sample: 1, .. })
    ));
}

#[test]
fn loader_is_send() {
    fn send<T: Send>() {}
    send::<MixtureLoader>();
}

/// Data parallelism: rank r of N reads only sequences i ≡ r (mod N) of each step and
/// passes the others unread; the ranks' parts interleaved are one loader's sequences,
/// every rank's loader ends in one loader's state, and each read exactly its own
/// share. A stage with less than a step left hands out nothing and stays put.
#[test]
fn each_rank_reads_only_its_part_of_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    // Stream 2 is small: the parts cross into its later epochs.
    let paths = three_streams(tmp.path(), [10, 9, 3]);
    let mix = mixture(&paths, &[0.3, 0.3, 0.4]);
    let (step, total) = (12u64, 30u64);
    let mut one = MixtureLoader::new(&mix, total, SEQ, 7).unwrap();
    let full = ids(&drain(&mut one));
    for ranks in [1usize, 2, 3, 4] {
        let mut parts = Vec::new();
        for rank in 0..ranks {
            let mut l = MixtureLoader::new(&mix, total, SEQ, 7).unwrap();
            let mut steps = Vec::new();
            while let Some(part) = l.next_part(step, rank, ranks).unwrap() {
                assert_eq!(part.len() as u64, step / ranks as u64);
                steps.push(ids(&part));
            }
            // 30 sequences: two whole steps, the last 6 are not a step.
            assert_eq!(steps.len(), 2);
            assert_eq!(l.position(), 2 * step);
            assert_eq!(l.reads(), 2 * step / ranks as u64, "{ranks} ranks");
            let mut rest = MixtureLoader::new(&mix, total, SEQ, 7).unwrap();
            rest.skip(2 * step);
            assert_eq!(l.state(), rest.state());
            assert_eq!(ids(&drain(&mut l)), full[24..].to_vec());
            parts.push(steps);
        }
        let mut merged = Vec::new();
        for s in 0..2 {
            for i in 0..step as usize / ranks {
                for part in &parts {
                    merged.push(part[s][i]);
                }
            }
        }
        assert_eq!(merged, full[..24].to_vec(), "{ranks} ranks");
    }
}
