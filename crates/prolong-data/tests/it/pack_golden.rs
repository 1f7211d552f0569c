//! The pack stage against ProLong's own packer (fixtures/pack-golden: what
//! datatools `pack` wrote from tokenized/ and tokenized-mask/).

use std::path::{Path, PathBuf};

use prolong_data::pack::{PackOptions, run_task};
use prolong_data::task::TaskSpec;
use prolong_mds::{Index, MdsDataset};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pack-golden")
}

/// The settings each golden folder's COMMAND file gives.
fn settings(name: &str) -> (&'static str, PackOptions) {
    match name {
        "packed-1024" => ("tokenized", PackOptions::new(1024)),
        "packed-512-min64" => ("tokenized", PackOptions::new(512).min_length(64)),
        "packed-1024-intact" => ("tokenized", PackOptions::new(1024).intact(true)),
        "packed-split-256-1024" => (
            "tokenized",
            PackOptions::new(1024).split_by_lengths(vec![256, 1024]),
        ),
        "packed-1024-mask" => ("tokenized-mask", PackOptions::new(1024)),
        other => panic!("no settings for {other}"),
    }
}

struct Seq {
    domain: String,
    input_ids: Vec<u32>,
    indices: Vec<u32>,
    indices_shape: Vec<usize>,
    length: i128,
    mask: Option<(String, Vec<u32>)>,
}

fn read_all(dir: &Path) -> Vec<Seq> {
    let ds = MdsDataset::open(dir).unwrap();
    (0..ds.len())
        .map(|i| {
            let s = ds.get(i).unwrap();
            let indices = s.array("indices").unwrap();
            Seq {
                domain: s.str("domain").unwrap().to_string(),
                input_ids: s.u32s("input_ids").unwrap().into_owned(),
                indices: indices.as_u32().unwrap().into_owned(),
                indices_shape: indices.shape.clone(),
                length: s.integer("length").unwrap(),
                mask: s.has("mask").then(|| {
                    let m = s.array("mask").unwrap();
                    let values = match m.dtype {
                        prolong_mds::Dtype::U8 => {
                            m.as_u8().unwrap().iter().map(|&v| v as u32).collect()
                        }
                        _ => m.as_u32().unwrap().into_owned(),
                    };
                    (m.dtype.name().to_string(), values)
                }),
            }
        })
        .collect()
}

fn pack_like(name: &str) -> (tempfile::TempDir, Vec<Seq>, Vec<Seq>) {
    let (input, options) = settings(name);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join(name);
    let report = run_task(
        &[golden().join(input)],
        TaskSpec::new(0, 1).unwrap().at(&out),
        &options,
        &mut |_| {},
    )
    .unwrap();
    assert!(report.merged && !report.skipped);
    let ours = read_all(&out);
    let theirs = read_all(&golden().join(name));
    assert_eq!(ours.len(), theirs.len(), "{name}: number of sequences");
    assert_eq!(report.record.stats.sequences as usize, ours.len());
    (tmp, ours, theirs)
}

fn check_tokens_and_indices(name: &str, ours: &[Seq], theirs: &[Seq], n: usize) {
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(a.input_ids.len(), n, "{name} #{i}: length");
        assert_eq!(a.input_ids, b.input_ids, "{name} #{i}: input_ids");
        assert_eq!(a.indices, b.indices, "{name} #{i}: indices");
        assert_eq!(
            a.indices_shape, b.indices_shape,
            "{name} #{i}: indices shape"
        );
        assert_eq!(a.indices_shape[1], 2);
        assert_eq!(a.domain, b.domain, "{name} #{i}: domain");
        assert_eq!(a.length, n as i128, "{name} #{i}: length column");
        assert_eq!(b.length, n as i128);
    }
}

/// The shard files and per-task index.json are byte-identical to the
/// reference's; the merged root index lists the same shards.
fn check_bytes(name: &str, out: &Path) {
    let golden_dir = golden().join(name);
    let root = Index::load(&golden_dir).unwrap();
    let ours = Index::load(out).unwrap();
    assert_eq!(ours, root, "{name}: merged index.json");
    for shard in &root.shards {
        let base = &shard.raw_data.basename;
        let a = std::fs::read(out.join(base)).unwrap();
        let b = std::fs::read(golden_dir.join(base)).unwrap();
        assert!(a == b, "{name}: {base} differs from the reference's bytes");
        let proc_dir = Path::new(base).parent().unwrap();
        let a = std::fs::read(out.join(proc_dir).join("index.json")).unwrap();
        let b = std::fs::read(golden_dir.join(proc_dir).join("index.json")).unwrap();
        assert_eq!(
            String::from_utf8(a).unwrap(),
            String::from_utf8(b).unwrap(),
            "{name}: {}/index.json",
            proc_dir.display()
        );
    }
}

/// Packs as the reference's `name` did: the same tokens, pieces and bytes.
/// The output (in the returned folder) and its sequences.
fn packs_like_the_reference(name: &str, len: usize) -> (tempfile::TempDir, Vec<Seq>) {
    let (tmp, ours, theirs) = pack_like(name);
    check_tokens_and_indices(name, &ours, &theirs, len);
    check_bytes(name, &tmp.path().join(name));
    (tmp, ours)
}

#[test]
fn greedy_1024_matches_reference() {
    let (_tmp, ours) = packs_like_the_reference("packed-1024", 1024);
    assert!(ours.iter().all(|s| s.domain == "."));
}

#[test]
fn min_length_64_matches_reference() {
    packs_like_the_reference("packed-512-min64", 512);
}

#[test]
fn intact_matches_reference() {
    let (_tmp, ours) = packs_like_the_reference("packed-1024-intact", 1024);
    // Every sequence starts with a document's BOS.
    assert!(ours.iter().all(|s| s.input_ids[0] == 128_000));
}

#[test]
fn split_by_lengths_matches_reference() {
    let name = "packed-split-256-1024";
    let (tmp, _) = packs_like_the_reference(name, 1024);
    let out = tmp.path().join(name);
    for sub in ["256-1024", "1024-1024"] {
        let a = Index::load(&out.join(sub)).unwrap();
        let b = Index::load(&golden().join(name).join(sub)).unwrap();
        assert_eq!(a, b, "{sub}/index.json");
        assert!(read_all(&out.join(sub)).iter().all(|s| s.domain == sub));
    }
}

#[test]
fn mask_follows_our_rule() {
    let name = "packed-1024-mask";
    let (tmp, ours, theirs) = pack_like(name);
    check_tokens_and_indices(name, &ours, &theirs, 1024);
    let (bos, eos) = (128_000u32, 128_001u32);
    let (mut ones, mut zeros, mut specials) = (0, 0, 0);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let (dtype, mask) = a.mask.as_ref().expect("our output has a mask");
        assert_eq!(dtype, "uint8");
        let (ref_dtype, ref_mask) = b.mask.as_ref().unwrap();
        assert_eq!(
            ref_dtype, "uint32",
            "the reference's defect is what we expect to see"
        );
        assert_eq!(mask.len(), 1024);
        for (j, (&m, &r)) in mask.iter().zip(ref_mask).enumerate() {
            if r == bos || r == eos {
                // Where the reference inserted BOS/EOS into the mask, the
                // token is that BOS/EOS, and ours is 0.
                assert_eq!(a.input_ids[j], r, "#{i}[{j}]");
                assert_eq!(m, 0, "#{i}[{j}]: inserted BOS/EOS must have mask 0");
                specials += 1;
            } else {
                assert!(r <= 1);
                assert_eq!(m, r, "#{i}[{j}]: the input's mask");
                if r == 1 { ones += 1 } else { zeros += 1 }
            }
        }
    }
    assert!(ones > 0 && zeros > 0 && specials > 0);
    let idx = Index::load(&tmp.path().join(name)).unwrap();
    let shard = &idx.shards[0];
    assert_eq!(
        shard.column_names,
        ["domain", "indices", "input_ids", "length", "mask"]
    );
    assert_eq!(
        shard.column_encodings,
        [
            "str",
            "ndarray:uint32",
            "ndarray:uint32",
            "int",
            "ndarray:uint8"
        ]
    );
}

/// The reference's rules, as found from its outputs: tails carried over
/// after a cut are dropped below min_length (nothing else is), no BOS is put
/// before a continuation, and the split remainder is dropped.
#[test]
fn stats_account_for_every_token() {
    let docs: Vec<u64> = serde_json::from_slice::<serde_json::Value>(
        &std::fs::read(golden().join("tokenized/documents.json")).unwrap(),
    )
    .unwrap()["lengths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    for name in [
        "packed-1024",
        "packed-512-min64",
        "packed-1024-intact",
        "packed-split-256-1024",
    ] {
        let (input, options) = settings(name);
        let tmp = tempfile::tempdir().unwrap();
        let report = run_task(
            &[golden().join(input)],
            TaskSpec::new(0, 1).unwrap().at(tmp.path()),
            &options,
            &mut |_| {},
        )
        .unwrap();
        let s = &report.record.stats;
        assert_eq!(s.documents_in, docs.len() as u64);
        assert_eq!(s.tokens_in, docs.iter().sum::<u64>());
        assert_eq!(s.special_tokens_added, 2 * docs.len() as u64);
        assert_eq!(
            s.tokens_in + s.special_tokens_added,
            s.tokens_out + s.tokens_dropped,
            "{name}"
        );
        assert_eq!(s.tokens_out, s.sequences * options.seq_len as u64);
        assert_eq!(
            s.length_histogram
                .buckets
                .iter()
                .map(|b| b.documents)
                .sum::<u64>(),
            docs.len() as u64
        );
        match name {
            "packed-512-min64" => {
                // Tails of 40, 22, 2, 46 and 10 tokens (docs 22, 42, 43, 45, 63).
                assert_eq!(s.dropped.min_length, 40 + 22 + 2 + 46 + 10);
            }
            "packed-1024" => {
                assert_eq!(s.dropped.min_length, 0);
                // 86 * 1024 of 88356 + 130 tokens: the last 422 are the final
                // partial buffer, which holds all of the last document (302
                // with BOS/EOS) and the tail of the one before.
                assert_eq!(s.dropped.last_buffer, 422);
                assert_eq!(s.documents_out, s.documents_in - 1);
            }
            _ => {}
        }
    }
}
