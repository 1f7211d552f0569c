//! Mixture arguments and manifests, errors before training, and one part per rank.

use super::*;

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
    // Stream 2 is small: the parts cross into its later epochs.
    let (_tmp, mix) = three_stream_mixture([10, 9, 3], &[0.3, 0.3, 0.4]);
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
