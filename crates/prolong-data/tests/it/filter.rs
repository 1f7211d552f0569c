//! The filter stage: exact length bounds, copies that keep the input's
//! columns and encodings, rank tasks with markers and a merge, skip/redo on
//! re-runs, and kill -9 at every write step.

use crate::common;

use crate::common::{files, read_tokenized};

use std::path::{Path, PathBuf};

use prolong_data::StageError;
use prolong_data::filter::{FilterOptions, FilterStats, filter_task};
use prolong_data::task::{LengthHistogram, OutputError, TaskSpec};
use prolong_mds::{Array, MdsDataset, MdsWriter, Value, WriterOptions};

/// Token ids of document `i` of length `n`.
fn ids(i: usize, n: usize) -> Vec<u32> {
    (0..n).map(|k| (i * 7919 + k) as u32 % 128_256).collect()
}

/// `n` document lengths in 1..=`max`, the i-th `1 + i * stride % max`: a mix
/// of short and long ones in no order.
fn spread(n: usize, stride: usize, max: usize) -> Vec<usize> {
    (0..n).map(|i| 1 + (i * stride) % max).collect()
}

/// A tokenized dataset: one document per length, optional mask.
fn write_docs(dir: &Path, lengths: &[usize], mask: bool, options: WriterOptions) {
    let mut columns = vec![
        ("domain", "str"),
        ("input_ids", "ndarray:uint32"),
        ("length", "int"),
    ];
    if mask {
        columns.push(("mask", "ndarray:uint8"));
    }
    let mut w = MdsWriter::create(dir, &columns, options).unwrap();
    for (i, &n) in lengths.iter().enumerate() {
        let tokens = ids(i, n);
        let m: Vec<u8> = (0..n).map(|k| (k % 2) as u8).collect();
        let domain = format!("doc{i}");
        let mut sample = vec![
            ("domain", Value::Str(domain.as_str().into())),
            ("input_ids", Value::Array(Array::from_u32(&tokens))),
            ("length", Value::Int(n as i64)),
        ];
        if mask {
            sample.push(("mask", Value::Array(Array::from_u8(&m))));
        }
        w.write(&sample).unwrap();
    }
    w.finish().unwrap();
}

fn run(inputs: &[PathBuf], out: &Path, task: TaskSpec, options: &FilterOptions) -> FilterStats {
    filter_task(inputs, task.at(out), options, &mut |_, _| {})
        .unwrap()
        .stats
}

fn t(rank: usize, world: usize) -> TaskSpec {
    TaskSpec::new(rank, world).unwrap()
}

/// The error of a one-task run with the default options, which must fail.
fn refusal(inputs: &[PathBuf], out: &Path) -> String {
    filter_task(
        inputs,
        t(0, 1).at(out),
        &FilterOptions::default(),
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn bounds_are_inclusive_and_drops_are_counted_by_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tok");
    // min = 100, max = 200: 99 and 201 go, 100 and 200 stay.
    let lengths = [99, 100, 150, 200, 201, 1, 5000];
    write_docs(&input, &lengths, false, WriterOptions::default());
    let out = tmp.path().join("out");
    let options = FilterOptions {
        min_tokens: 100,
        max_tokens: Some(200),
        size_limit: None,
    };
    let stats = run(std::slice::from_ref(&input), &out, t(0, 1), &options);
    assert_eq!(
        (stats.counts.documents_in, stats.counts.documents_out),
        (7, 3)
    );
    assert_eq!(stats.counts.tokens_in, lengths.iter().sum::<usize>() as u64);
    assert_eq!(stats.counts.tokens_out, 450);
    assert_eq!(stats.dropped["too_short"].documents, 2);
    assert_eq!(stats.dropped["too_short"].tokens, 100);
    assert_eq!(stats.dropped["too_long"].documents, 2);
    assert_eq!(stats.dropped["too_long"].tokens, 5201);
    // The histograms count the kept documents and the documents read.
    let documents = |h: &LengthHistogram| h.buckets.iter().map(|b| b.documents).sum::<u64>();
    assert_eq!(documents(&stats.length_histogram), 3);
    assert_eq!(documents(&stats.length_histogram_in), 7);
    // The kept documents, unchanged and in input order.
    let want: Vec<(String, Vec<u32>)> = [(1, 100), (2, 150), (3, 200)]
        .iter()
        .map(|&(i, n)| (format!("doc{i}"), ids(i, n)))
        .collect();
    assert_eq!(read_tokenized(&out), want);
    assert_eq!(read_tokenized(&out.join("proc0-1")), want);
    assert!(out.join("proc0-1.done").is_file());
    let on_disk: FilterStats =
        serde_json::from_slice(&std::fs::read(out.join("proc0-1.stats.json")).unwrap()).unwrap();
    assert_eq!(on_disk, stats);

    // The long-document rule of the recipe: 65,536 kept, 65,535 dropped.
    let long_in = tmp.path().join("long");
    write_docs(&long_in, &[65_535, 65_536], false, WriterOptions::default());
    let long_out = tmp.path().join("long-out");
    let options = FilterOptions {
        min_tokens: prolong_data::filter::LONG_MIN_TOKENS,
        ..Default::default()
    };
    let stats = run(&[long_in], &long_out, t(0, 1), &options);
    assert_eq!(
        (
            stats.counts.documents_out,
            stats.dropped["too_short"].documents
        ),
        (1, 1)
    );
    assert_eq!(read_tokenized(&long_out)[0].1.len(), 65_536);
}

#[test]
fn output_keeps_the_inputs_columns_encodings_compression_and_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tok");
    let options = WriterOptions::default()
        .compression("zstd:3")
        .hashes(["sha1", "xxh64"])
        .size_limit(3000);
    let lengths: Vec<usize> = (0..60).map(|i| 10 + i * 7).collect();
    write_docs(&input, &lengths, true, options);
    // Only the zstd files: the stage decompresses without writing beside the input.
    for f in std::fs::read_dir(&input).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "mds") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let before = files(&input);
    let out = tmp.path().join("out");
    let opts = FilterOptions {
        min_tokens: 200,
        ..Default::default()
    };
    let stats = run(std::slice::from_ref(&input), &out, t(0, 1), &opts);
    assert_eq!(files(&input), before, "the input folder was written to");
    let kept: Vec<usize> = lengths.iter().copied().filter(|&n| n >= 200).collect();
    assert_eq!(stats.counts.documents_out as usize, kept.len());
    let src = MdsDataset::open(&input).unwrap();
    let dst = MdsDataset::open(&out).unwrap();
    let (a, b) = (&src.index().shards[0], &dst.index().shards[0]);
    assert_eq!(a.column_names, b.column_names);
    assert_eq!(a.column_encodings, b.column_encodings);
    assert_eq!(a.compression, b.compression);
    assert_eq!(a.hashes, b.hashes);
    assert_eq!(a.size_limit, b.size_limit);
    assert!(dst.num_shards() > 1);
    let first_kept = lengths.iter().position(|&n| n >= 200).unwrap();
    for (k, i) in (first_kept..lengths.len()).enumerate() {
        let (s, d) = (src.get(i).unwrap(), dst.get(k).unwrap());
        assert_eq!(s.values().unwrap(), d.values().unwrap());
    }
    prolong_mds::verify_with(&out, &prolong_packed::check_sample).unwrap();
}

#[test]
fn tasks_take_every_nth_shard_and_merge_when_all_are_done() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let limit = WriterOptions::default().size_limit(2000);
    write_docs(&a, &spread(40, 37, 300), false, limit.clone());
    write_docs(&b, &spread(25, 53, 300), false, limit);
    let inputs = vec![a.clone(), b.clone()];
    let options = FilterOptions {
        min_tokens: 50,
        max_tokens: Some(250),
        size_limit: Some(1500),
    };
    let single = tmp.path().join("single");
    let whole = run(&inputs, &single, t(0, 1), &options);

    let out = tmp.path().join("out");
    let mut total = FilterStats::default();
    for rank in [2, 0, 1] {
        let outcome = filter_task(&inputs, t(rank, 3).at(&out), &options, &mut |_, _| {}).unwrap();
        assert!(!outcome.skipped);
        assert_eq!(outcome.merged, rank == 1, "merged only once all are done");
        assert_eq!(out.join("index.json").is_file(), rank == 1);
        total.merge(&outcome.stats);
    }
    assert_eq!(total.counts.documents_in, whole.counts.documents_in);
    assert_eq!(total.counts.documents_out, whole.counts.documents_out);
    assert_eq!(total.counts.tokens_out, whole.counts.tokens_out);
    assert_eq!(total.dropped, whole.dropped);
    let (mut x, mut y) = (read_tokenized(&single), read_tokenized(&out));
    x.sort();
    y.sort();
    assert_eq!(x, y);

    // A re-run skips done tasks and leaves every byte alone.
    let before = files(&out);
    let again = filter_task(&inputs, t(0, 3).at(&out), &options, &mut |_, _| {}).unwrap();
    assert!(again.skipped && again.merged);
    assert_eq!(files(&out), before);
    // A task without its marker is redone, to the same bytes.
    std::fs::remove_file(out.join("proc1-3.done")).unwrap();
    std::fs::remove_file(out.join("proc1-3").join("index.json")).unwrap();
    let redo = filter_task(&inputs, t(1, 3).at(&out), &options, &mut |_, _| {}).unwrap();
    assert!(!redo.skipped && redo.merged);
    assert_eq!(files(&out), before);

    // Other bounds on a done task, or another world size: clear errors.
    let other = FilterOptions {
        min_tokens: 51,
        ..options.clone()
    };
    let err = filter_task(&inputs, t(0, 3).at(&out), &other, &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(err, StageError::Output(OutputError::SettingsChanged { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("min_tokens was 50, now 51"),
        "{err}"
    );
    let err = filter_task(&inputs, t(0, 2).at(&out), &options, &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(
            err,
            StageError::Output(prolong_data::task::OutputError::OtherWorldSize { .. })
        ),
        "{err}"
    );
}

#[test]
fn a_shard_whose_recorded_hash_no_longer_matches_is_refused_not_rehashed() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tok");
    let options = WriterOptions::default().hashes(["sha1"]).size_limit(3000);
    write_docs(&input, &[100, 120, 140, 160, 180], false, options);
    // One token id changed in place: the shard still decodes, only its sha1
    // tells. filter used to copy it and record a fresh sha1 that verify passed.
    let shard = input.join("shard.00001.mds");
    let mut bytes = std::fs::read(&shard).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 1;
    std::fs::write(&shard, bytes).unwrap();
    let out = tmp.path().join("out");
    let err = refusal(std::slice::from_ref(&input), &out);
    assert!(
        err.contains("shard.00001.mds: sha1 hash mismatch: index.json says"),
        "{err}"
    );
    assert!(!out.join("index.json").exists());
}

#[test]
fn inputs_with_other_columns_or_no_length_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_docs(&a, &[5, 6], false, WriterOptions::default());
    write_docs(&b, &[5, 6], true, WriterOptions::default());
    let out = tmp.path().join("out");
    let err = refusal(&[a.clone(), b], &out);
    assert!(
        err.contains("differ from those of the first input shard"),
        "{err}"
    );
    let c = tmp.path().join("c");
    let mut w = MdsWriter::create(&c, &[("text", "str")], WriterOptions::default()).unwrap();
    w.write(&[("text", Value::Str("x".into()))]).unwrap();
    w.finish().unwrap();
    let err = refusal(&[c], &out);
    assert!(err.contains("neither"), "{err}");
    let bad = FilterOptions {
        min_tokens: 10,
        max_tokens: Some(9),
        size_limit: None,
    };
    assert!(filter_task(&[a], t(0, 1).at(&out), &bad, &mut |_, _| {}).is_err());
}

#[test]
fn killed_run_then_rerun_is_byte_identical_to_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tok");
    let limit = WriterOptions::default().size_limit(1 << 16);
    write_docs(&input, &spread(300, 7919, 400), false, limit);
    let args = common::cli_into(
        "filter",
        &[&input],
        &[
            "--min-tokens",
            "100",
            "--max-tokens",
            "350",
            "--size-limit",
            "40000",
        ],
    );
    common::assert_kill_and_rerun_is_identical(args, tmp.path(), 10);
}

#[test]
fn cli_prints_json_stats() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tok");
    write_docs(&input, &[3, 4, 5], false, WriterOptions::default());
    let out = tmp.path().join("out");
    let output = common::succeeded(
        common::cli()
            .arg("filter")
            .arg(&input)
            .args(["--min-tokens", "4", "--json", "--out"])
            .arg(&out)
            .output()
            .unwrap(),
    );
    let stats: FilterStats = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (stats.counts.documents_in, stats.counts.documents_out),
        (3, 2)
    );
    let err = common::failed(
        common::cli()
            .arg("filter")
            .arg(tmp.path().join("nope"))
            .arg("--out")
            .arg(tmp.path().join("out2"))
            .output()
            .unwrap(),
    );
    assert!(err.starts_with("error: ") && err.contains("nope"), "{err}");
}

#[test]
fn rerun_removes_the_temps_of_killed_writers() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tok");
    write_docs(&input, &[3, 4, 5, 6], false, WriterOptions::default());
    let args = common::cli_into("filter", &[&input], &["--min-tokens", "4"]);
    common::assert_rerun_removes_dead_temps(args, &tmp.path().join("out"), &["."]);
}

/// `filter X --out X` on a flat dataset once overwrote X/index.json (D10).
#[test]
fn an_output_that_overlaps_an_input_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tok");
    write_docs(&input, &[3, 4, 5], false, WriterOptions::default());
    let before = files(&input);
    for (out, relation) in [
        (input.clone(), "is the input"),
        (input.join("sub"), "is inside the input"),
        (tmp.path().to_path_buf(), "holds the input"),
    ] {
        let err = filter_task(
            std::slice::from_ref(&input),
            t(0, 1).at(&out),
            &FilterOptions::default(),
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(
            matches!(err, StageError::Output(OutputError::Overlaps { .. })),
            "{err}"
        );
        assert!(err.to_string().contains(relation), "{err}");
    }
    assert!(files(&input) == before, "the input changed");
}

/// A registered stage runs from its options type's command line alone (the
/// generic subcommand of a stage without a command of its own): the same
/// documents as the library call, the merge once every task is done, a skip
/// on a re-run.
#[test]
fn a_registered_stage_runs_from_its_generic_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let limit = WriterOptions::default().size_limit(1500);
    write_docs(&a, &spread(30, 37, 120), false, limit);
    let options = FilterOptions {
        min_tokens: 50,
        max_tokens: None,
        size_limit: None,
    };
    let single = tmp.path().join("single");
    let whole = run(std::slice::from_ref(&a), &single, t(0, 1), &options);

    let info = prolong_data::stage::find("filter").unwrap();
    let out = tmp.path().join("out");
    let args = [
        "filter".as_ref(),
        a.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    let matches = (info.command)()
        .try_get_matches_from(
            args.iter()
                .chain([&"--min-tokens".as_ref(), &"50".as_ref()]),
        )
        .unwrap();
    let first = (info.run)(&matches, t(1, 2)).unwrap().unwrap();
    assert!(first.ends_with("documents kept"), "{first}");
    assert!(
        !out.join("index.json").exists(),
        "merged before every task is done"
    );
    (info.run)(&matches, t(0, 2)).unwrap().unwrap();
    assert!(out.join("index.json").is_file());
    let (mut x, mut y) = (read_tokenized(&single), read_tokenized(&out));
    x.sort();
    y.sort();
    assert_eq!(x, y);
    assert_eq!(y.len() as u64, whole.counts.documents_out);
    assert_eq!(
        (info.run)(&matches, t(0, 2)).unwrap(),
        None,
        "a done task is skipped"
    );
}
