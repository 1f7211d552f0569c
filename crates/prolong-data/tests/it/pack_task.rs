//! Pack tasks on files: re-runs, kill-safety, ranks, compressed input, and
//! errors on bad input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prolong_data::pack::{PackError, PackOptions, run_all, run_task};
use prolong_data::task::{OutputError, TaskSpec};
use prolong_mds::{Array, INDEX_FILE, MdsDataset, MdsWriter, Value, WriterOptions};

fn tokenized() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pack-golden/tokenized")
}

/// Every file under `dir`, by relative path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn run(
    inputs: &[PathBuf],
    out: &Path,
    o: &PackOptions,
    rank: usize,
    world: usize,
) -> Result<prolong_data::pack::TaskReport, PackError> {
    // Bad ranks must come back as errors, so no TaskSpec::new here.
    let task = TaskSpec {
        rank,
        world_size: world,
    };
    run_task(inputs, task.at(out), o, &mut |_| {})
}

#[test]
fn task_names_follow_prolong() {
    let name = |rank, world_size| TaskSpec { rank, world_size }.name();
    assert_eq!(name(0, 1), "proc0-1");
    assert_eq!(name(7, 64), "proc07-64");
    assert_eq!(name(12, 100), "proc012-100");
}

#[test]
fn rerun_skips_and_killed_task_is_redone_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = PackOptions::new(512).split_by_lengths(vec![256, 1024]);
    let first = run(&[tokenized()], &out, &o, 0, 1).unwrap();
    assert!(!first.skipped && first.merged);
    let files = snapshot(&out);
    assert!(files.contains_key(Path::new("proc0-1.done")));
    assert!(files.contains_key(Path::new("proc0-1.stats.json")));
    assert!(files.contains_key(Path::new("256-512/proc0-1/shard.00000.mds")));
    assert!(files.contains_key(Path::new("256-512/index.json")));

    // Completed: skipped, nothing touched.
    let again = run(&[tokenized()], &out, &o, 0, 1).unwrap();
    assert!(again.skipped && again.merged);
    assert_eq!(again.record.stats, first.record.stats);
    assert_eq!(snapshot(&out), files);

    // Other settings on a completed task: refused, naming the setting.
    let other = o.clone().min_length(7);
    let err = run(&[tokenized()], &out, &other, 0, 1).unwrap_err();
    assert!(
        matches!(err, PackError::Output(OutputError::SettingsChanged { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("min_length was"), "{err}");

    // A task killed mid-way: no marker, a truncated shard, a temporary file,
    // a stale extra shard. Re-running redoes it and gives the same bytes.
    let task = TaskSpec::new(0, 1).unwrap().at(&out);
    std::fs::remove_file(task.marker_path()).unwrap();
    std::fs::remove_file(task.stats_path()).unwrap();
    let shard = out.join("1024-512/proc0-1/shard.00000.mds");
    let len = std::fs::metadata(&shard).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&shard)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    std::fs::write(out.join("1024-512/proc0-1/.shard.00001.mds.tmp.1.0"), b"x").unwrap();
    std::fs::write(out.join("1024-512/proc0-1/shard.00009.mds"), b"stale").unwrap();
    let redo = run(&[tokenized()], &out, &o, 0, 1).unwrap();
    assert!(!redo.skipped && redo.merged);
    assert_eq!(snapshot(&out), files);
}

#[test]
fn ranks_split_input_shards_and_the_last_one_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = PackOptions::new(1024);
    // 6 input shards: task r reads shards r and r + 3.
    let r2 = run(&[tokenized()], &out, &o, 2, 3).unwrap();
    assert!(!r2.merged);
    assert!(!out.join(INDEX_FILE).exists());
    let r0 = run(&[tokenized()], &out, &o, 0, 3).unwrap();
    assert!(!r0.merged && !out.join(INDEX_FILE).exists());
    let r1 = run(&[tokenized()], &out, &o, 1, 3).unwrap();
    assert!(r1.merged);
    let input = MdsDataset::open(tokenized()).unwrap();
    let shard_samples: Vec<u64> = input.index().shards.iter().map(|s| s.samples).collect();
    for (r, rep) in [(0, &r0), (1, &r1), (2, &r2)] {
        assert_eq!(rep.record.input_shards, 2);
        assert_eq!(
            rep.record.stats.documents_in,
            shard_samples[r] + shard_samples[r + 3]
        );
    }
    let merged = MdsDataset::open(&out).unwrap();
    let total: u64 = [&r0, &r1, &r2]
        .iter()
        .map(|r| r.record.stats.sequences)
        .sum();
    assert_eq!(merged.len() as u64, total);
    let names: Vec<&str> = merged
        .index()
        .shards
        .iter()
        .map(|s| s.raw_data.basename.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "proc0-3/shard.00000.mds",
            "proc1-3/shard.00000.mds",
            "proc2-3/shard.00000.mds"
        ]
    );
    for i in 0..merged.len() {
        assert_eq!(
            merged.get(i).unwrap().u32s("input_ids").unwrap().len(),
            1024
        );
    }

    // All ranks in one process, two threads at a time: the same bytes.
    let out2 = tmp.path().join("out2");
    let reports = run_all(&[tokenized()], &out2, &o, 3, 2, &|_, _| {}).unwrap();
    assert_eq!(reports.len(), 3);
    assert_eq!(snapshot(&out), snapshot(&out2));
}

/// Rewrites the tokenized fixture with other writer settings or columns.
fn rewrite(
    dst: &Path,
    columns: &[(&str, &str)],
    options: WriterOptions,
    f: impl Fn(usize, &prolong_mds::Sample<'_>) -> Vec<(&'static str, Value<'static>)>,
) {
    let src = MdsDataset::open(tokenized()).unwrap();
    let mut w = MdsWriter::create(dst, columns, options).unwrap();
    for i in 0..src.len() {
        let s = src.get(i).unwrap();
        w.write(&f(i, &s)).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn compressed_input_packs_like_raw_input() {
    let tmp = tempfile::tempdir().unwrap();
    let zipped = tmp.path().join("zipped");
    rewrite(
        &zipped,
        &prolong_packed::columns::TOKENIZED,
        WriterOptions::default().compression("zstd"),
        |_, s| {
            vec![
                (
                    "domain",
                    Value::Str(s.str("domain").unwrap().to_string().into()),
                ),
                (
                    "input_ids",
                    Value::Array(s.array("input_ids").unwrap().into_owned()),
                ),
                ("length", Value::Int(s.integer("length").unwrap() as i64)),
            ]
        },
    );
    assert!(!zipped.join("shard.00000.mds").exists());
    let o = PackOptions::new(1024);
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    run(&[tokenized()], &a, &o, 0, 1).unwrap();
    run(std::slice::from_ref(&zipped), &b, &o, 0, 1).unwrap();
    // Decompressed in memory: no raw copy left beside the input.
    assert!(!zipped.join("shard.00000.mds").exists());
    let (sa, sb) = (snapshot(&a), snapshot(&b));
    for (k, v) in &sa {
        if k.ends_with("proc0-1.stats.json") || k.ends_with("proc0-1.done") {
            continue; // name their inputs
        }
        assert_eq!(Some(v), sb.get(k), "{}", k.display());
    }

    // Two inputs are one stream: the fixture twice gives twice the tokens.
    let c = tmp.path().join("c");
    let rep = run(&[tokenized(), zipped], &c, &o, 0, 1).unwrap();
    assert_eq!(rep.record.stats.documents_in, 130);
}

#[test]
fn output_compression_and_no_sequences() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = PackOptions::new(1024);
    o.compression = Some("zstd:3".into());
    run(&[tokenized()], &tmp.path().join("z"), &o, 0, 1).unwrap();
    let z = MdsDataset::open(tmp.path().join("z")).unwrap();
    assert_eq!(z.len(), 86);
    assert!(tmp.path().join("z/proc0-1/shard.00000.mds.zstd").exists());

    // Longer than all the input: no sequence, an empty but valid dataset.
    let rep = run(
        &[tokenized()],
        &tmp.path().join("e"),
        &PackOptions::new(1 << 20),
        0,
        1,
    )
    .unwrap();
    assert_eq!(rep.record.stats.sequences, 0);
    assert_eq!(rep.record.stats.dropped.last_buffer, 88356 + 130);
    let e = MdsDataset::open(tmp.path().join("e")).unwrap();
    assert_eq!(e.len(), 0);
}

#[test]
fn a_shard_whose_recorded_hash_no_longer_matches_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = PackOptions::new(1024);
    for (name, options, file) in [
        ("raw", WriterOptions::default(), "shard.00000.mds"),
        (
            "zipped",
            WriterOptions::default().compression("zstd"),
            "shard.00000.mds.zstd",
        ),
    ] {
        let input = tmp.path().join(name);
        rewrite(
            &input,
            &[("input_ids", "ndarray:uint32")],
            options.hashes(["sha1", "xxh64"]),
            |_, s| {
                vec![(
                    "input_ids",
                    Value::Array(s.array("input_ids").unwrap().into_owned()),
                )]
            },
        );
        // One bit of the last token of the shard, which still decodes.
        let path = input.join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 4;
        bytes[at] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let out = tmp.path().join(format!("out-{name}"));
        let e = err_text(run(std::slice::from_ref(&input), &out, &o, 0, 1));
        assert!(
            e.contains(&format!("{name}/{file}: sha1 hash mismatch")),
            "{e}"
        );
        assert!(!out.join("proc0-1.done").exists());
        assert!(!out.join(INDEX_FILE).exists());
    }
}

fn err_text(r: Result<prolong_data::pack::TaskReport, PackError>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_input_is_an_error_naming_the_file_and_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let o = PackOptions::new(256);
    let out = tmp.path().join("out");

    // Each input (folder name, columns, its samples from the tokenized
    // fixture's) gives an error holding every one of `wants`.
    type Samples = fn(usize, &prolong_mds::Sample<'_>) -> Vec<(&'static str, Value<'static>)>;
    type Columns = &'static [(&'static str, &'static str)];
    let cases: [(&str, Columns, Samples, &[&str]); 4] = [
        // No input_ids column.
        (
            "no_ids",
            &[("text", "str")],
            |_, _| vec![("text", Value::Str("hello".into()))],
            &["no_ids", "input_ids"],
        ),
        // input_ids of the wrong dtype.
        (
            "u16",
            &[("input_ids", "ndarray:uint16")],
            |_, _| {
                vec![(
                    "input_ids",
                    Value::Array(Array::from_u16(&[1, 2, 3]).into_owned()),
                )]
            },
            &["u16", "ndarray:uint16"],
        ),
        // Dynamic-dtype ndarray holding int64 in sample 5.
        (
            "dynamic",
            &[("input_ids", "ndarray")],
            |i, s| {
                let ids = s.array("input_ids").unwrap().into_owned();
                if i == 5 {
                    vec![(
                        "input_ids",
                        Value::Array(Array::from_i64(&[1, 2]).into_owned()),
                    )]
                } else {
                    vec![("input_ids", Value::Array(ids))]
                }
            },
            &["shard.00000.mds: sample 5", "int64"],
        ),
        // A mask that does not match the tokens, in sample 3.
        (
            "masked",
            &[("input_ids", "ndarray:uint32"), ("mask", "ndarray:uint8")],
            |i, s| {
                let ids = s.array("input_ids").unwrap().into_owned();
                let n = if i == 3 { ids.len() - 1 } else { ids.len() };
                let mask = vec![1u8; n.max(1)];
                vec![
                    ("input_ids", Value::Array(ids)),
                    ("mask", Value::Array(Array::from_u8(&mask).into_owned())),
                ]
            },
            &["masked/shard.00000.mds: sample 3", "mask"],
        ),
    ];
    for (name, columns, samples, wants) in cases {
        let input = tmp.path().join(name);
        rewrite(&input, columns, WriterOptions::default(), samples);
        let e = err_text(run(&[input], &out, &o, 0, 1));
        assert!(wants.iter().all(|w| e.contains(w)), "{e}");
    }
    let masked = tmp.path().join("masked");

    // Some inputs with a mask, some without.
    let e = err_text(run(&[masked, tokenized()], &out, &o, 0, 1));
    assert!(e.contains("mask"), "{e}");

    // A truncated shard, and one whose bytes are garbage.
    let cut = tmp.path().join("cut");
    copy_dir(&tokenized(), &cut);
    let shard = cut.join("shard.00001.mds");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 10]).unwrap();
    let e = err_text(run(std::slice::from_ref(&cut), &out, &o, 0, 1));
    assert!(e.contains("shard.00001.mds"), "{e}");
    let mut garbage = bytes.clone();
    for b in garbage.iter_mut().skip(200).step_by(7) {
        *b = 0xff;
    }
    std::fs::write(&shard, &garbage).unwrap();
    let e = err_text(run(&[cut], &out, &o, 0, 1));
    assert!(e.contains("shard.00001.mds"), "{e}");

    // Settings.
    let e = err_text(run(&[tokenized()], &out, &o, 3, 3));
    assert!(e.contains("rank 3"), "{e}");
    let e = err_text(run(&[tmp.path().join("missing")], &out, &o, 0, 1));
    assert!(e.contains("missing"), "{e}");
    // Nothing was left claiming to be finished.
    assert!(!out.join("proc0-1.done").exists());
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        let mut perm = std::fs::metadata(dst.join(p.file_name().unwrap()))
            .unwrap()
            .permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(dst.join(p.file_name().unwrap()), perm).unwrap();
    }
}
