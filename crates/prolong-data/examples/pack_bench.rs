//! Throughput and memory of the pack stage.
//!
//! ```text
//! cargo run --release -p prolong-data --example pack_bench -- [--dir DIR] [--gb 2] [--len 524288]
//!     [--split 65536,524288] [--keep] [--clean] [--out PACKED_DIR]
//! ```
//!
//! Generates `--gb` GiB of token bytes as a tokenized MDS dataset in DIR
//! (once: an existing dataset of that size is reused; default a folder under
//! the temp dir; `--clean` deletes it at the end), then measures three
//! phases, each with its own peak RSS (VmHWM, reset through
//! /proc/self/clear_refs before each phase). Rates are given per wall-clock
//! second and per CPU second (user + system time of this process: what one
//! core does, whatever else the machine runs).
//! - `memcpy`: copying the same number of bytes, 64 MiB at a time (baseline);
//! - `read+pack`: reading the input and packing it to `--len`, sequences
//!   discarded (what the packer itself costs);
//! - `pack task`: the full `run_task` (read, pack, write MDS shards, fsync),
//!   into `--out` (default DIR/packed-LEN; put it on tmpfs to leave the disk out).

use std::path::{Path, PathBuf};
use std::time::Instant;

use prolong_data::pack::{PackOptions, Packer, for_each_doc, plan_inputs, run_task};
use prolong_mds::{Array, Dtype, MdsDataset, MdsWriter, Value, WriterOptions};

struct Args {
    dir: Option<PathBuf>,
    gib: f64,
    len: usize,
    keep: bool,
    clean: bool,
    out: Option<PathBuf>,
    split: Vec<usize>,
}

fn parse_args() -> Args {
    let mut args = Args {
        dir: None,
        gib: 2.0,
        len: 524_288,
        keep: false,
        clean: false,
        out: None,
        split: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dir" => args.dir = it.next().map(PathBuf::from),
            "--gb" => args.gib = it.next().and_then(|v| v.parse().ok()).unwrap_or(2.0),
            "--len" => args.len = it.next().and_then(|v| v.parse().ok()).unwrap_or(524_288),
            "--keep" => args.keep = true,
            "--clean" => args.clean = true,
            "--out" => args.out = it.next().map(PathBuf::from),
            "--split" => {
                args.split = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|v| v.parse().ok())
                    .collect()
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    args
}

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux 4.0+); returns whether it worked.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let ticks = (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64;
    ticks / 100.0 // USER_HZ
}

/// One result line: wall and CPU rates, peak RSS.
fn report(what: &str, bytes: u64, wall: f64, cpu: f64, extra: &str) {
    let tokens = bytes as f64 / 4.0;
    println!(
        "{what:<9} {:>6.2} GB/s {:>6.0} M tok/s wall | {:>6.0} M tok/s per CPU-s ({:.1} s wall, {:.1} s CPU) | peak {:>4.0} MiB{extra}",
        bytes as f64 / wall / 1e9,
        tokens / wall / 1e6,
        tokens / cpu.max(1e-9) / 1e6,
        wall,
        cpu,
        peak_mib()
    );
}

/// [`report`] for a row that packs, timed from `started` (the wall clock and
/// [`cpu_seconds`] then) to now: the sequences it made, and its CPU time
/// against memcpy's for the same bytes.
fn report_packing(
    what: &str,
    bytes: u64,
    started: (Instant, f64),
    sequences: u64,
    memcpy_cpu: f64,
) {
    let (wall, cpu) = (started.0.elapsed().as_secs_f64(), cpu_seconds() - started.1);
    let extra = format!(
        " | {sequences} sequences, {:.2}x memcpy CPU",
        cpu / memcpy_cpu.max(1e-9)
    );
    report(what, bytes, wall, cpu, &extra);
}

fn peak_mib() -> f64 {
    status_kib("VmHWM:") as f64 / 1024.0
}

/// Writes documents of log-uniform lengths (64 .. 128K tokens) until
/// `bytes` of token bytes are written.
fn generate(dir: &Path, bytes: u64) -> u64 {
    let mut w = MdsWriter::create(
        dir,
        &prolong_packed::columns::TOKENIZED,
        WriterOptions::default(),
    )
    .expect("create input");
    let mut rng = prolong_rng::SplitMix64::new(0x9e37_79b9_7f4a_7c15);
    let mut next = move || rng.next_u64();
    let mut tokens: Vec<u8> = Vec::new();
    let mut written = 0u64;
    while written < bytes {
        let u = (next() % 1_000_000) as f64 / 1_000_000.0;
        let len = (64.0 * 2048f64.powf(u)) as usize;
        tokens.clear();
        for _ in 0..len {
            tokens.extend_from_slice(&((next() % 128_000) as u32).to_le_bytes());
        }
        w.write(&[
            ("domain", Value::Str("bench".into())),
            (
                "input_ids",
                Value::Array(Array {
                    dtype: Dtype::U32,
                    shape: vec![len],
                    data: (&tokens[..]).into(),
                }),
            ),
            ("length", Value::Int(len as i64)),
        ])
        .expect("write input");
        written += 4 * len as u64;
    }
    w.finish().expect("finish input");
    written / 4
}

fn input_tokens(dir: &Path) -> Option<u64> {
    let ds = MdsDataset::open(dir).ok()?;
    let mut tokens = 0u64;
    for i in 0..ds.len() {
        tokens += ds.get(i).ok()?.integer("length").ok()? as u64;
    }
    Some(tokens)
}

fn main() {
    let args = parse_args();
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("prolong-pack-bench"));
    let input = root.join("tokenized");
    let want = (args.gib * (1u64 << 30) as f64) as u64;
    let t = Instant::now();
    let tokens = match input_tokens(&input) {
        Some(t) if 4 * t >= want => {
            println!("input     {} ({t} tokens, reused)", input.display());
            t
        }
        _ => {
            let _ = std::fs::remove_dir_all(&input);
            let t = generate(&input, want);
            println!("input     {} ({t} tokens, generated)", input.display());
            t
        }
    };
    let bytes = 4 * tokens;
    println!(
        "          {:.1} s to open/generate",
        t.elapsed().as_secs_f64()
    );
    let resettable = reset_peak();
    if !resettable {
        println!("(cannot reset VmHWM: peaks below include earlier phases)");
    }

    // memcpy baseline: the same bytes, 64 MiB at a time.
    let chunk = 64usize << 20;
    let src = vec![1u8; chunk];
    let mut dst = vec![0u8; chunk];
    let (t, c) = (Instant::now(), cpu_seconds());
    let mut left = bytes;
    while left > 0 {
        let n = (left as usize).min(chunk);
        dst[..n].copy_from_slice(&src[..n]);
        std::hint::black_box(&mut dst);
        left -= n as u64;
    }
    let memcpy_s = t.elapsed().as_secs_f64();
    let memcpy_cpu = cpu_seconds() - c;
    drop((src, dst));
    report("memcpy", bytes, memcpy_s, memcpy_cpu, "");

    // Read + pack, sequences discarded.
    reset_peak();
    let options = PackOptions::new(args.len).split_by_lengths(args.split.clone());
    let (t, c) = (Instant::now(), cpu_seconds());
    let (shards, with_mask) = plan_inputs(std::slice::from_ref(&input)).expect("plan");
    let mut packer = Packer::new(&options, with_mask).expect("packer");
    let mut sink = |s: prolong_data::pack::Sequence<'_>| {
        std::hint::black_box(s.input_ids);
        Ok(())
    };
    for shard in &shards {
        for_each_doc(shard, |_, doc| {
            packer.push(doc.tokens, doc.mask.as_deref(), &mut sink)
        })
        .expect("pack");
    }
    let stats = packer.finish();
    report_packing("read+pack", bytes, (t, c), stats.sequences, memcpy_cpu);

    // The full task, writing shards.
    reset_peak();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join(format!("packed-{}", args.len)));
    let _ = std::fs::remove_dir_all(&out);
    let (t, c) = (Instant::now(), cpu_seconds());
    let task = run_task(
        std::slice::from_ref(&input),
        prolong_data::task::TaskSpec::new(0, 1)
            .expect("task")
            .at(&out),
        &options,
        &mut |_| {},
    )
    .expect("pack task");
    let sequences = task.record.stats.sequences;
    report_packing("pack task", bytes, (t, c), sequences, memcpy_cpu);
    if !args.keep {
        let _ = std::fs::remove_dir_all(&out);
    }
    if args.clean {
        let _ = std::fs::remove_dir_all(&input);
    }
}
