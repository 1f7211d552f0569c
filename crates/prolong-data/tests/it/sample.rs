//! The sample stage: token shares within a document of their targets,
//! shortfalls reported, byte-identical outputs for a seed.

use crate::common;

use crate::common::files;

use std::path::Path;

use prolong_data::sample::{SHORTMIX, SampleOptions, SampleReport, Source, sample, sample_task};
use prolong_data::task::TaskSpec;
use prolong_mds::{Array, MdsDataset, MdsWriter, Value, WriterOptions};

/// A tokenized source of `n` documents with pseudo-random lengths in 1..=max.
fn write_source(dir: &Path, n: usize, max: usize, salt: usize) -> Vec<usize> {
    let mut w = MdsWriter::create(
        dir,
        &prolong_packed::columns::TOKENIZED,
        WriterOptions::default().size_limit(1 << 16),
    )
    .unwrap();
    let mut lengths = Vec::new();
    for i in 0..n {
        let len = 1 + (i * 7919 + salt * 104_729) % max;
        let ids: Vec<u32> = (0..len).map(|k| (i * 31 + k + salt) as u32).collect();
        let domain = format!("s{salt}-{i}");
        w.write(&[
            ("domain", Value::Str(domain.as_str().into())),
            ("input_ids", Value::Array(Array::from_u32(&ids))),
            ("length", Value::Int(len as i64)),
        ])
        .unwrap();
        lengths.push(len);
    }
    w.finish().unwrap();
    lengths
}

/// The seven ShortMix sources under `root`, 400 documents of up to 300 tokens each.
fn shortmix(root: &Path) -> Vec<Source> {
    SHORTMIX
        .iter()
        .enumerate()
        .map(|(salt, (name, share))| {
            let path = root.join(name);
            write_source(&path, 400, 300, salt);
            Source {
                name: name.to_string(),
                path,
                share: *share,
            }
        })
        .collect()
}

fn options(total: u64, seed: u64) -> SampleOptions {
    SampleOptions {
        total_tokens: total,
        seed,
        size_limit: None,
    }
}

#[test]
fn shortmix_shares_are_met_within_one_document() {
    let tmp = tempfile::tempdir().unwrap();
    let sources = shortmix(&tmp.path().join("tok"));
    let out = tmp.path().join("out");
    let total = 100_000;
    let report = sample(&sources, &out, &options(total, 42), &mut |_, _| {})
        .unwrap()
        .report;
    assert_eq!(report.sources.len(), 7);
    let mut achieved_total = 0;
    for (r, s) in report.sources.iter().zip(&sources) {
        let target = (total as f64 * s.share / 100.0).round() as u64;
        assert_eq!(r.target_tokens, target, "{}", r.name);
        assert!((r.requested_share - s.share / 100.0).abs() < 1e-12);
        // Within half of one document (documents are at most 300 tokens).
        assert!(
            r.deviation_tokens.unsigned_abs() <= 150,
            "{}: {} vs {}",
            r.name,
            r.achieved_tokens,
            target
        );
        assert_eq!(r.shortfall_tokens, 0);
        // The output holds exactly what the report says, unchanged.
        let ds = MdsDataset::open(out.join(&r.name)).unwrap();
        assert_eq!(ds.len() as u64, r.documents);
        let mut tokens = 0;
        let mut last = None;
        for i in 0..ds.len() {
            let s = ds.get(i).unwrap();
            let ids = s.u32s("input_ids").unwrap();
            assert_eq!(s.integer("length").unwrap(), ids.len() as i128);
            tokens += ids.len() as u64;
            // Input order: the document numbers increase.
            let n: usize = s
                .str("domain")
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(last < Some(n));
            last = Some(n);
        }
        assert_eq!(tokens, r.achieved_tokens);
        achieved_total += tokens;
    }
    assert_eq!(report.achieved_tokens, achieved_total);
    let shares: f64 = report.sources.iter().map(|r| r.achieved_share).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    for r in &report.sources {
        assert!((r.achieved_share - r.requested_share).abs() < 0.01, "{r:?}");
    }
    // The report on disk says the same (floats up to serde_json's parsing).
    let on_disk: SampleReport =
        serde_json::from_slice(&std::fs::read(out.join("sample.json")).unwrap()).unwrap();
    assert_eq!(on_disk.achieved_tokens, report.achieved_tokens);
    for (d, r) in on_disk.sources.iter().zip(&report.sources) {
        assert_eq!(
            (&d.name, d.achieved_tokens, d.documents),
            (&r.name, r.achieved_tokens, r.documents)
        );
        assert!((d.achieved_share - r.achieved_share).abs() < 1e-15);
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_draw() {
    let tmp = tempfile::tempdir().unwrap();
    let sources = shortmix(&tmp.path().join("tok"));
    let run = |name: &str, seed: u64| {
        let out = tmp.path().join(name);
        sample(&sources, &out, &options(50_000, seed), &mut |_, _| {}).unwrap();
        files(&out)
    };
    let a = run("a", 7);
    let b = run("b", 7);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(b[name] == *bytes, "{name} differs between runs of one seed");
    }
    let c = run("c", 8);
    assert_ne!(
        a["fineweb/proc0-1/shard.00000.mds"],
        c["fineweb/proc0-1/shard.00000.mds"]
    );

    // A source's draw does not depend on the others or their order.
    let mut reversed = sources.clone();
    reversed.reverse();
    let out = tmp.path().join("reversed");
    sample(&reversed, &out, &options(50_000, 7), &mut |_, _| {}).unwrap();
    let d = files(&out);
    assert_eq!(
        a["arxiv/proc0-1/shard.00000.mds"],
        d["arxiv/proc0-1/shard.00000.mds"]
    );

    // A re-run of the same request does nothing; another request into the
    // same folder is refused, naming the task, and changes nothing.
    let out = tmp.path().join("a");
    let again = sample(&sources, &out, &options(50_000, 7), &mut |_, _| {}).unwrap();
    assert!(again.skipped);
    assert_eq!(files(&out), a);
    let err = sample(&sources, &out, &options(50_000, 8), &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("proc0-1"), "{err}");
    assert_eq!(files(&out), a);
}

/// (domain, input_ids) of every document of a (merged) dataset, sorted.
fn documents(dir: &Path) -> Vec<(String, Vec<u32>)> {
    let mut docs = common::read_tokenized(dir);
    docs.sort();
    docs
}

#[test]
fn tasks_write_disjoint_parts_of_one_plan_whatever_their_number() {
    let tmp = tempfile::tempdir().unwrap();
    let sources = shortmix(&tmp.path().join("tok"));
    let opts = options(60_000, 11);
    let one = tmp.path().join("one");
    sample(&sources, &one, &opts, &mut |_, _| {}).unwrap();

    let run_three = |out: &Path| {
        let mut outcomes = Vec::new();
        // Out of order, as a job array may finish them.
        for rank in [2, 0, 1] {
            let task = TaskSpec::new(rank, 3).unwrap();
            let outcome = sample_task(&sources, task.at(out), &opts, &mut |_, _| {}).unwrap();
            assert_eq!(outcome.merged, rank == 1, "rank {rank}");
            if !outcome.merged {
                assert!(!out.join("sample.json").exists());
                assert!(!out.join("arxiv/index.json").exists());
            }
            outcomes.push(outcome);
        }
        outcomes
    };
    let three = tmp.path().join("three");
    let outcomes = run_three(&three);

    // One plan: the same report, byte for byte, and the same documents.
    let report = std::fs::read(one.join("sample.json")).unwrap();
    assert_eq!(std::fs::read(three.join("sample.json")).unwrap(), report);
    let report: SampleReport = serde_json::from_slice(&report).unwrap();
    let mut shards_seen = 0;
    for (i, r) in report.sources.iter().enumerate() {
        let merged = documents(&three.join(&r.name));
        assert_eq!(merged, documents(&one.join(&r.name)), "{}", r.name);
        assert_eq!(merged.len() as u64, r.documents);
        let tokens: u64 = merged.iter().map(|d| d.1.len() as u64).sum();
        assert_eq!(tokens, r.achieved_tokens);
        // The parts are disjoint and each task wrote what its stats say.
        let parts: Vec<u64> = outcomes
            .iter()
            .map(|o| o.stats.sources[i].tokens_out)
            .collect();
        assert_eq!(parts.iter().sum::<u64>(), r.achieved_tokens, "{}", r.name);
        for o in &outcomes {
            let part =
                common::read_tokenized(&three.join(&r.name).join(o.stats.header.task.as_str()));
            let part_tokens: u64 = part.iter().map(|d| d.1.len() as u64).sum();
            assert_eq!(part_tokens, o.stats.sources[i].tokens_out);
        }
        shards_seen += prolong_mds::Index::load(&r.path).unwrap().shards.len();
    }
    // Shard g of the concatenated sources went to task g mod 3.
    let mut dealt: Vec<usize> = outcomes.iter().map(|o| o.stats.shards.len()).collect();
    dealt.sort();
    assert_eq!(dealt.iter().sum::<usize>(), shards_seen);
    assert!(dealt[2] - dealt[0] <= 1, "{dealt:?}");
    for o in &outcomes {
        assert_eq!(o.report.achieved_tokens, report.achieved_tokens);
        assert!(o.stats.counts.tokens_out <= o.stats.counts.tokens_in);
    }

    // Three tasks again: the same bytes; a re-run skips every task.
    let again = tmp.path().join("again");
    run_three(&again);
    assert_eq!(files(&again), files(&three));
    let before = files(&three);
    for rank in 0..3 {
        let task = TaskSpec::new(rank, 3).unwrap();
        let outcome = sample_task(&sources, task.at(&three), &opts, &mut |_, _| {}).unwrap();
        assert!(outcome.skipped && outcome.merged);
    }
    assert_eq!(files(&three), before);

    // Another world size into the same folder is refused.
    let task = TaskSpec::new(0, 2).unwrap();
    let err = sample_task(&sources, task.at(&three), &opts, &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("another --world-size"), "{err}");
}

#[test]
fn killed_sample_then_rerun_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let command = common::cli_into(
        "sample",
        &source_args(&tmp.path().join("tok"), 100, 400),
        &["--tokens", "30000", "--seed", "5", "--size-limit", "30000"],
    );
    common::assert_kill_and_rerun_is_identical(command, tmp.path(), 10);
}

/// Three sources `tok/s0`..`s2` of `docs` documents of 1..=`max` tokens
/// (written unless they exist), as the command line names them: `PATH@WEIGHT`.
fn source_args(tok: &Path, docs: usize, max: usize) -> Vec<String> {
    (0..3)
        .map(|salt| {
            let dir = tok.join(format!("s{salt}"));
            if !dir.exists() {
                write_source(&dir, docs, max, salt);
            }
            format!("{}@{}", dir.display(), salt + 1)
        })
        .collect()
}

/// Three small sources and `prolong-data sample` over them into OUT, with
/// `extra` arguments.
fn sample_command(tok: &Path, extra: &[&str]) -> impl Fn(&Path) -> std::process::Command + use<> {
    let mut flags = vec!["--tokens", "1000"];
    flags.extend(extra);
    common::cli_into("sample", &source_args(tok, 20, 100), &flags)
}

/// The flake of issue 11: `s2/.index.json.tmp.PID.N` of a killed writer of a
/// per-source index survived the re-run.
#[test]
fn rerun_removes_the_temps_of_killed_writers() {
    let tmp = tempfile::tempdir().unwrap();
    let command = sample_command(&tmp.path().join("tok"), &["--seed", "5"]);
    common::assert_rerun_removes_dead_temps(command, &tmp.path().join("out"), &["s2", "s0"]);
}

/// A re-run with another seed, or into one of its sources, is refused with
/// one line naming why.
#[test]
fn rerun_with_other_settings_or_into_an_input_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = tmp.path().join("tok");
    let out = tmp.path().join("out");
    common::succeeded(
        sample_command(&tok, &["--seed", "5"])(&out)
            .output()
            .unwrap(),
    );
    let before = files(&out);
    for (extra, out, want) in [
        (["--seed", "6"], out.clone(), "seed was 5, now 6"),
        (["--seed", "5"], tok.join("s1"), "is the input"),
        (["--seed", "5"], tok.join("s1/x"), "is inside the input"),
    ] {
        let output = sample_command(&tok, &extra)(&out).output().unwrap();
        assert!(!output.status.success());
        let err = String::from_utf8_lossy(&output.stderr);
        common::assert_error_line(&err, &[want]);
    }
    assert!(files(&out) == before, "the refused run changed the output");
}

#[test]
fn a_small_source_is_taken_whole_and_its_shortfall_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big");
    let small = tmp.path().join("small");
    write_source(&big, 500, 100, 1);
    let small_lengths = write_source(&small, 10, 100, 2);
    let available: u64 = small_lengths.iter().map(|&l| l as u64).sum();
    let sources = vec![
        Source::parse(&format!("{}@3", big.display())).unwrap(),
        Source::parse(&format!("tiny={}@1", small.display())).unwrap(),
    ];
    let out = tmp.path().join("out");
    let total = 8 * available;
    let report = sample(&sources, &out, &options(total, 0), &mut |_, _| {})
        .unwrap()
        .report;
    let tiny = &report.sources[1];
    assert_eq!(tiny.name, "tiny");
    assert_eq!(tiny.target_tokens, 2 * available);
    assert_eq!(tiny.achieved_tokens, available);
    assert_eq!(tiny.documents, 10);
    assert_eq!(tiny.shortfall_tokens, available);
    assert_eq!(tiny.deviation_tokens, -(available as i64));
    assert!(MdsDataset::open(out.join("tiny")).unwrap().len() == 10);
    // A zero share takes nothing (an empty dataset is still written).
    let zero = vec![
        sources[0].clone(),
        Source {
            share: 0.0,
            ..sources[1].clone()
        },
    ];
    let out = tmp.path().join("zero");
    let report = sample(&zero, &out, &options(1000, 0), &mut |_, _| {})
        .unwrap()
        .report;
    assert_eq!(report.sources[1].achieved_tokens, 0);
    assert_eq!(MdsDataset::open(out.join("tiny")).unwrap().len(), 0);
}

#[test]
fn bad_requests_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    write_source(&a, 5, 10, 0);
    let out = tmp.path().join("out");
    let src = |name: &str, share: f64| Source {
        name: name.into(),
        path: a.clone(),
        share,
    };
    for (sources, what) in [
        (vec![src("a", 0.0)], "sum to 0"),
        (vec![src("a", -1.0)], "≥ 0"),
        (vec![src("a", 1.0), src("a", 1.0)], "two sources"),
        (vec![src("..", 1.0)], "not a folder name"),
        (vec![], "no sources"),
    ] {
        let err = sample(&sources, &out, &options(10, 0), &mut |_, _| {}).unwrap_err();
        assert!(err.to_string().contains(what), "{err}");
    }
    let missing = Source {
        path: tmp.path().join("nope"),
        ..src("x", 1.0)
    };
    assert!(sample(&[missing], &out, &options(10, 0), &mut |_, _| {}).is_err());
}

#[test]
fn cli_writes_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("web");
    write_source(&a, 200, 50, 3);
    let b = tmp.path().join("code");
    write_source(&b, 200, 50, 4);
    let out = tmp.path().join("out");
    let output = common::succeeded(
        std::process::Command::new(env!("CARGO_BIN_EXE_prolong-data"))
            .arg("sample")
            .arg(format!("{}@25", a.display()))
            .arg(format!("c={}@75", b.display()))
            .args(["--tokens", "2000", "--seed", "3", "--json", "--out"])
            .arg(&out)
            .output()
            .unwrap(),
    );
    let report: SampleReport = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = report.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web", "c"]);
    assert_eq!(
        report
            .sources
            .iter()
            .map(|s| s.target_tokens)
            .collect::<Vec<_>>(),
        [500, 1500]
    );
    assert!(out.join("web/index.json").is_file() && out.join("c/index.json").is_file());
    // Task 1 of 2 from the Slurm variables, then task 0: the second merges.
    let sharded = tmp.path().join("sharded");
    for rank in ["1", "0"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_prolong-data"))
            .arg("sample")
            .arg(format!("{}@25", a.display()))
            .arg(format!("c={}@75", b.display()))
            .args(["--tokens", "2000", "--seed", "3", "--out"])
            .arg(&sharded)
            .env("SLURM_ARRAY_TASK_ID", rank)
            .env("SLURM_ARRAY_TASK_COUNT", "2")
            .output()
            .unwrap();
        assert!(output.status.success());
        assert!(sharded.join(format!("proc{rank}-2.done")).is_file());
        assert_eq!(sharded.join("sample.json").is_file(), rank == "0");
    }
    assert_eq!(documents(&sharded.join("c")), documents(&out.join("c")));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_prolong-data"))
        .args(["sample", "x", "--tokens", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
}
