//! Read throughput of prolong-mds on ProLong-shaped data, on one thread,
//! against a memcpy of the same bytes and against mosaicml-streaming.
//!
//! ```text
//! cargo run --release -p prolong-mds --example read_bench -- [--dir PATH] [--gb 1.0]
//!     [--passes 3] [--no-streaming]
//! ```
//!
//! The first run writes, under `--dir` (default `./bench-data/mds-read/`),
//! `--gb` GB of input_ids as packed 64K-token sequences with ProLong's
//! columns (domain, indices, input_ids, length): once uncompressed (`plain/`)
//! and once with zstd (`zstd/`). A `COMPLETE` marker naming the parameters is
//! written last; later runs with the same parameters reuse the data.
//!
//! Each path reads every sample's input_ids through [`MdsDataset`] (a fresh
//! `open` per pass) and sums them, touching every value; GB/s counts
//! input_ids bytes (10^9 bytes per GB). The zstd path is measured twice:
//! *cold* (decompressed copies removed first, so every shard is read,
//! decompressed and cached on first use) and *warm* (the cached copies
//! mapped). Uncompressed and warm are the best of `--passes`; memcpy copies
//! the same byte count, one sample at a time, from a pre-faulted heap buffer
//! into a reused sample-sized one.
//!
//! When `python3` (or `$PYTHON`) imports streaming,
//! scripts/bench_mds_streaming.py reads the same folders through
//! StreamingDataset in the same run, two ways: iterating it (`iter`, what a
//! training loop does) and `dataset[i]` for every i (`[i]`, which skips the
//! iterator's polling threads); its checksums must match ours. Each
//! prolong-mds row is compared with both.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use prolong_mds::{Array, MdsDataset, MdsWriter, Value, WriterOptions, write_atomic};
use prolong_rng::SplitMix64;

#[path = "../tests/it/common/packed.rs"]
mod packed;

use packed::random_doc_indices;

const SEQ_LEN: usize = 65_536;
const VOCAB: f64 = 128_256.0; // Llama-3's
const SEED: u64 = 0x9e0_1049;
/// Bump when the generated data changes, so old folders are rewritten.
const DATA_VERSION: u32 = 1;
/// ProLong's domains (and a few SFT ones), for realistic str lengths.
const DOMAINS: [&str; 10] = [
    "thestackv1_concat_by_repo-65536",
    "thestackv1_concat_by_repo-524288",
    "book-65536",
    "book-524288",
    "fineweb-edu",
    "fineweb-2023-50",
    "stackexchange",
    "dolmawiki",
    "tuluv2",
    "arxiv",
];

struct Args {
    dir: PathBuf,
    gb: f64,
    passes: usize,
    streaming: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        dir: PathBuf::from("bench-data/mds-read"),
        gb: 1.0,
        passes: 3,
        streaming: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--dir" => args.dir = PathBuf::from(value("--dir")),
            "--gb" => {
                args.gb = value("--gb")
                    .parse()
                    .unwrap_or_else(|_| usage("--gb takes a number"))
            }
            "--passes" => {
                args.passes = value("--passes")
                    .parse()
                    .unwrap_or_else(|_| usage("--passes takes a count"))
            }
            "--no-streaming" => args.streaming = false,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if args.gb.is_nan() || args.gb <= 0.0 || args.passes == 0 {
        usage("--gb and --passes must be positive");
    }
    args
}

fn usage(error: &str) -> ! {
    if !error.is_empty() {
        eprintln!("error: {error}");
    }
    eprintln!(
        "usage: read_bench [--dir PATH] [--gb 1.0] [--passes 3] [--no-streaming]\n\
         (default dir ./bench-data/mds-read/)"
    );
    std::process::exit(if error.is_empty() { 0 } else { 2 })
}

/// A token id, skewed towards small ids as real text is (P(id < k) =
/// (k / vocab)^(1/3)), so zstd finds what it finds on real shards.
fn token(rng: &mut SplitMix64) -> u32 {
    let f = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    (f * f * f * VOCAB) as u32
}

fn marker(samples: usize) -> String {
    format!(
        "prolong-mds read_bench data v{DATA_VERSION}: samples={samples} seq_len={SEQ_LEN} seed={SEED:#x}\n"
    )
}

/// Writes plain/ and zstd/ under `dir` unless the marker says they are there.
fn ensure_data(dir: &Path, samples: usize) -> std::io::Result<()> {
    let marker_path = dir.join("COMPLETE");
    let want = marker(samples);
    if std::fs::read_to_string(&marker_path).is_ok_and(|m| m == want) {
        println!("reusing {} ({})", dir.display(), want.trim());
        return Ok(());
    }
    let _ = std::fs::remove_file(&marker_path);
    for sub in ["plain", "zstd"] {
        match std::fs::remove_dir_all(dir.join(sub)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    println!("writing {} ({})", dir.display(), want.trim());
    let start = Instant::now();
    let columns = [
        ("domain", "str"),
        ("indices", "ndarray:uint32"),
        ("input_ids", "ndarray:uint32"),
        ("length", "int"),
    ];
    // The two copies are written from the same seeded samples on two threads
    // (zstd compression is most of the time).
    let copies = [
        ("plain", WriterOptions::default()),
        ("zstd", WriterOptions::default().compression("zstd")),
    ];
    std::thread::scope(|scope| {
        let writers: Vec<_> = copies
            .into_iter()
            .map(|(sub, options)| {
                let out = dir.join(sub);
                scope.spawn(move || write_copy(&out, &columns, options, samples))
            })
            .collect();
        writers
            .into_iter()
            .try_for_each(|w| w.join().expect("writer thread panicked"))
    })
    .map_err(mds)?;
    write_atomic(&marker_path, want.as_bytes()).map_err(mds)?;
    println!("  wrote in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

fn mds(e: prolong_mds::MdsError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Writes `samples` packed sequences, the same for every call, to `dir`.
fn write_copy(
    dir: &Path,
    columns: &[(&str, &str)],
    options: WriterOptions,
    samples: usize,
) -> prolong_mds::Result<()> {
    let mut writer = MdsWriter::create(dir, columns, options)?;
    let mut rng = SplitMix64::new(SEED);
    let mut ids = vec![0u32; SEQ_LEN];
    for _ in 0..samples {
        for id in ids.iter_mut() {
            *id = token(&mut rng);
        }
        // 1 to 16 documents packed into the sequence, as ProLong's packer
        // leaves them: indices are (start, end) pairs covering it.
        let docs = 1 + rng.below(16) as usize;
        let indices = random_doc_indices(&mut rng, docs, SEQ_LEN as u32);
        let domain = DOMAINS[rng.below(DOMAINS.len() as u64) as usize];
        writer.write(&[
            ("domain", Value::Str(domain.into())),
            (
                "indices",
                Value::Array(Array::from_u32(&indices).with_shape(vec![indices.len() / 2, 2])),
            ),
            ("input_ids", Value::Array(Array::from_u32(&ids))),
            ("length", Value::Int(SEQ_LEN as i64)),
        ])?;
    }
    writer.finish()?;
    Ok(())
}

/// Removes the decompressed copies that readers cache beside .zstd shards.
fn remove_decompressed(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("shard.")
            && name.ends_with(".mds")
            && path.with_file_name(format!("{name}.zstd")).exists()
        {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn du(dir: &Path, suffix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// One pass of the measured read: open, then every sample's input_ids summed.
struct Pass {
    seconds: f64,
    bytes: u64,
    checksum: u32,
    /// Samples whose input_ids were borrowed from the shard (4-byte aligned).
    borrowed: usize,
    samples: usize,
}

impl Pass {
    fn gbps(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e9
    }
}

fn read_pass(dir: &Path) -> prolong_mds::Result<Pass> {
    let start = Instant::now();
    let dataset = MdsDataset::open(dir)?;
    let (mut checksum, mut bytes, mut borrowed) = (0u32, 0u64, 0usize);
    for i in 0..dataset.len() {
        let sample = dataset.get(i)?;
        let ids = sample.u32s("input_ids")?;
        borrowed += matches!(ids, std::borrow::Cow::Borrowed(_)) as usize;
        checksum = checksum.wrapping_add(sum(&ids));
        bytes += 4 * ids.len() as u64;
    }
    Ok(Pass {
        seconds: start.elapsed().as_secs_f64(),
        bytes,
        checksum,
        borrowed,
        samples: dataset.len(),
    })
}

/// Wrapping sum of every value (vectorized by the compiler).
#[inline(never)]
fn sum(ids: &[u32]) -> u32 {
    ids.iter().fold(0u32, |a, &b| a.wrapping_add(b))
}

fn best(passes: impl IntoIterator<Item = Pass>) -> Pass {
    passes
        .into_iter()
        .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .expect("at least one pass")
}

/// memcpy of `bytes` bytes, one 64K-token sample at a time, from a pre-faulted
/// heap buffer of that size into one reused sample-sized buffer.
fn memcpy_pass(src: &[u8], chunk: usize) -> Pass {
    let mut dst = vec![1u8; chunk];
    let start = Instant::now();
    for part in src.chunks(chunk) {
        dst[..part.len()].copy_from_slice(black_box(part));
        black_box(&mut dst);
    }
    Pass {
        seconds: start.elapsed().as_secs_f64(),
        bytes: src.len() as u64,
        checksum: 0,
        borrowed: 0,
        samples: src.len().div_ceil(chunk),
    }
}

struct StreamingResult {
    path: String,
    /// "iter" (iterating the dataset) or "getitem" (dataset[i] for every i).
    mode: String,
    pass: usize,
    gbps: f64,
    checksum: u32,
    bytes: u64,
}

/// Runs scripts/bench_mds_streaming.py; `Err` says why there are no numbers.
fn run_streaming(dir: &Path, passes: usize) -> Result<Vec<StreamingResult>, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench_mds_streaming.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(&python)
        .arg(&script)
        .arg("--plain")
        .arg(dir.join("plain"))
        .arg("--zstd")
        .arg(dir.join("zstd"))
        .arg("--passes")
        .arg(passes.max(2).to_string())
        .env_remove("WORLD_SIZE")
        .env_remove("RANK")
        .env_remove("LOCAL_RANK")
        .env_remove("LOCAL_WORLD_SIZE")
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .env("OMP_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if let Some(skip) = lines.iter().find_map(|l| l.get("skip")) {
        return Err(skip.as_str().unwrap_or("skipped").to_string());
    }
    if !output.status.success() {
        return Err(format!(
            "{python} {} failed ({}):\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(lines
        .iter()
        .map(|l| StreamingResult {
            path: l["path"].as_str().unwrap_or("").to_string(),
            mode: l["mode"].as_str().unwrap_or("").to_string(),
            pass: l["pass"].as_u64().unwrap_or(0) as usize,
            gbps: l["gbps"].as_f64().unwrap_or(0.0),
            checksum: l["checksum"].as_u64().unwrap_or(0) as u32,
            bytes: l["bytes"].as_u64().unwrap_or(0),
        })
        .collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    let samples = ((args.gb * 1e9) / (4 * SEQ_LEN) as f64).ceil() as usize;
    ensure_data(&args.dir, samples)?;
    let (plain, zstd) = (args.dir.join("plain"), args.dir.join("zstd"));
    println!(
        "plain/ {:.2} GB in shards, zstd/ {:.2} GB compressed; {samples} samples of {SEQ_LEN} tokens",
        du(&plain, ".mds") as f64 / 1e9,
        du(&zstd, ".zstd") as f64 / 1e9,
    );

    // Uncompressed: the shards are in the page cache after the first pass
    // (or after writing them); best of the passes.
    let uncompressed = best((0..args.passes).map(|_| read_pass(&plain).unwrap()));
    // zstd, cold: every shard read, decompressed and cached on first use.
    remove_decompressed(&zstd)?;
    let cold = read_pass(&zstd)?;
    // zstd, warm: the cached decompressed shards, mapped.
    let warm = best((0..args.passes).map(|_| read_pass(&zstd).unwrap()));

    let bytes = uncompressed.bytes as usize;
    let src: Vec<u8> = (0..bytes).map(|i| (i * 7) as u8).collect();
    let memcpy = best((0..args.passes).map(|_| memcpy_pass(&src, 4 * SEQ_LEN)));
    drop(src);

    for (name, pass) in [("zstd cold", &cold), ("zstd warm", &warm)] {
        assert_eq!(
            (pass.checksum, pass.bytes),
            (uncompressed.checksum, uncompressed.bytes),
            "{name} read other values than plain"
        );
    }
    println!(
        "input_ids checksum {:#010x}; {} of {} samples' input_ids 4-byte aligned (borrowed), the rest copied",
        uncompressed.checksum, uncompressed.borrowed, uncompressed.samples
    );

    let streaming = if args.streaming {
        remove_decompressed(&zstd)?;
        println!("running scripts/bench_mds_streaming.py ...");
        match run_streaming(&args.dir, args.passes) {
            Ok(results) => {
                for r in &results {
                    assert_eq!(
                        (r.checksum, r.bytes),
                        (uncompressed.checksum, uncompressed.bytes),
                        "streaming's {} {} pass {} read other values",
                        r.path,
                        r.mode,
                        r.pass
                    );
                }
                Some(results)
            }
            Err(why) => {
                println!("streaming: skipped ({why})");
                None
            }
        }
    } else {
        None
    };
    // Streaming's numbers for a path and access mode: plain = best pass,
    // zstd cold = pass 0, zstd warm = best later pass.
    let theirs = |path: &str, mode: &str, cold: Option<bool>| -> Option<f64> {
        streaming
            .as_ref()?
            .iter()
            .filter(|r| r.path == path && r.mode == mode)
            .filter(|r| cold.is_none_or(|cold| (r.pass == 0) == cold))
            .map(|r| r.gbps)
            .reduce(f64::max)
    };
    let kinds = [("plain", None), ("zstd", Some(true)), ("zstd", Some(false))];
    let iter: Vec<Option<f64>> = kinds.iter().map(|(p, c)| theirs(p, "iter", *c)).collect();
    let getitem: Vec<Option<f64>> = kinds
        .iter()
        .map(|(p, c)| theirs(p, "getitem", *c))
        .collect();

    let m = memcpy.gbps();
    println!();
    println!(
        "{:.2} GB of input_ids, one thread, GB/s = 10^9 bytes/s; streaming `iter` = iterating \
         the StreamingDataset, `[i]` = dataset[i] for every i",
        bytes as f64 / 1e9
    );
    println!();
    println!("| path | GB/s | ratio vs streaming | ratio vs memcpy |");
    println!("|---|---|---|---|");
    let row = |name: &str, gbps: f64, vs: Option<(Option<f64>, Option<f64>)>| {
        let vs = match vs {
            Some((Some(it), Some(gi))) => format!("{:.1}× iter, {:.1}× [i]", gbps / it, gbps / gi),
            _ => "–".to_string(),
        };
        println!("| {name} | {gbps:.2} | {vs} | {:.2}× |", gbps / m);
    };
    row("memcpy (baseline)", m, None);
    let names = [
        "uncompressed",
        "zstd cold (decompress + cache)",
        "zstd warm (cached)",
    ];
    for (k, pass) in [&uncompressed, &cold, &warm].into_iter().enumerate() {
        row(
            &format!("prolong-mds, {}", names[k]),
            pass.gbps(),
            Some((iter[k], getitem[k])),
        );
    }
    for (mode, results) in [("iter", &iter), ("[i]", &getitem)] {
        for (k, gbps) in results.iter().enumerate() {
            if let Some(gbps) = gbps {
                row(&format!("streaming {mode}, {}", names[k]), *gbps, None);
            }
        }
    }
    Ok(())
}
