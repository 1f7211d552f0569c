//! Interop with the mosaicml-streaming installed on this machine, both ways,
//! on seeded data made here (the golden tests cover data made elsewhere):
//!
//! * a zstd + hashed, multi-shard dataset written by prolong-mds is read by
//!   streaming's `StreamingDataset`, which must return exactly what was written;
//! * a dataset written by streaming's `MDSWriter` (zstd, hashes, several
//!   shards) is read by [`MdsDataset`] equal to the values Python wrote, and
//!   [`MdsWriter`], given the same samples, writes byte-identical files.
//!
//! Both directions share one Python process (importing streaming takes most
//! of its run time). When `python3` (or `$PYTHON`) cannot import streaming,
//! the run prints one line saying it skipped, and both tests pass.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::common::packed::random_doc_indices;
use crate::common::{files, from_expected, to_expected};
use prolong_mds::{Array, MdsDataset, MdsWriter, Value, WriterOptions};
use prolong_rng::SplitMix64;
use serde_json::{Value as Json, json};

/// The columns both sides write: ProLong's packed layout plus an SFT mask.
const COLUMNS: [(&str, &str); 5] = [
    ("domain", "str"),
    ("indices", "ndarray:uint32"),
    ("input_ids", "ndarray:uint32"),
    ("length", "int"),
    ("mask", "ndarray:uint8"),
];
const HASHES: [&str; 2] = ["sha1", "xxh3_64"];
/// Small enough that each side writes a dozen or so shards.
const SIZE_LIMIT: u64 = 1 << 15;
/// Exit status of the script when streaming cannot be imported.
const SKIP: i32 = 77;

/// Reads the Rust-written dataset through StreamingDataset and writes a new
/// one with MDSWriter; every sample of both goes to a JSON file in the golden
/// tests' notation (arrays as dtype, shape and flat values).
const SCRIPT: &str = r#"
import json, sys
try:
    import numpy as np
    from streaming import MDSWriter, StreamingDataset
except Exception as e:  # ImportError, or a broken torch underneath
    print(f"cannot import streaming: {type(e).__name__}: {e}")
    sys.exit(77)

ours, theirs, out = sys.argv[1], sys.argv[2], sys.argv[3]
columns = json.loads(sys.argv[4])
hashes = json.loads(sys.argv[5])
size_limit = int(sys.argv[6])

def plain(v):
    if isinstance(v, np.ndarray):
        return {"dtype": str(v.dtype), "shape": list(v.shape), "values": v.ravel().tolist()}
    if isinstance(v, np.integer):
        return int(v)
    return v

# 1. Our dataset, through StreamingDataset. No remote: the shards are already
#    in `local`, where streaming decompresses them next to the .zstd files.
dataset = StreamingDataset(local=ours, remote=None, shuffle=False, batch_size=1)
read = [{k: plain(v) for k, v in sample.items()} for sample in dataset]
# ...and the same through random access, which must agree with iteration.
by_index = [{k: plain(v) for k, v in dataset[i].items()} for i in range(len(dataset))]

# 2. A dataset of streaming's own, from seeded random data.
rng = np.random.default_rng(20240917)
domains = ["arxiv", "book", "fineweb-edu", "thestackv1_concat_by_repo-65536",
           "tulu", "wiki/ünïcødé", "中文", ""]
written = []
with MDSWriter(out=theirs, columns=columns, compression="zstd", hashes=hashes,
               size_limit=size_limit) as writer:
    for i in range(48):
        n = int(rng.integers(1, 2500 if i % 3 else 300))
        docs = int(rng.integers(1, 5))
        cuts = np.sort(rng.choice(np.arange(1, n), size=min(docs - 1, n - 1), replace=False))
        bounds = np.concatenate([[0], cuts, [n]]).astype(np.uint32)
        sample = {
            "domain": domains[int(rng.integers(0, len(domains)))],
            "indices": np.stack([bounds[:-1], bounds[1:]], axis=1),
            "input_ids": rng.integers(0, 2**32, size=n, dtype=np.uint32),
            "length": n,
            "mask": rng.integers(0, 2, size=n, dtype=np.uint8),
        }
        writer.write(sample)
        written.append({k: plain(v) for k, v in sample.items()})

with open(out, "w") as f:
    json.dump({"read": read, "by_index": by_index, "written": written}, f)
"#;

/// What the Python side saw and wrote, and where.
struct PythonRun {
    /// The dataset we wrote, and the samples we wrote to it.
    ours: PathBuf,
    our_samples: Vec<Json>,
    /// The dataset streaming wrote (files as they were right after writing).
    theirs: PathBuf,
    their_files: std::collections::BTreeMap<String, Vec<u8>>,
    json: Json,
    _tmp: tempfile::TempDir,
}

/// Runs the script once for every test in this file; `None` when skipped.
fn python_run() -> Option<&'static PythonRun> {
    static RUN: OnceLock<Option<PythonRun>> = OnceLock::new();
    RUN.get_or_init(run_python).as_ref()
}

fn run_python() -> Option<PythonRun> {
    let tmp = tempfile::tempdir().unwrap();
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    let out = tmp.path().join("out.json");
    let script = tmp.path().join("interop.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let our_samples = write_ours(&ours);

    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let columns: serde_json::Map<String, Json> = COLUMNS
        .iter()
        .map(|(n, e)| (n.to_string(), json!(e)))
        .collect();
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .arg(&ours)
        .arg(&theirs)
        .arg(&out)
        .arg(Json::Object(columns).to_string())
        .arg(json!(HASHES).to_string())
        .arg(SIZE_LIMIT.to_string())
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // One process, one rank: no torch.distributed, nothing fetched.
    for var in [
        "WORLD_SIZE",
        "RANK",
        "LOCAL_RANK",
        "LOCAL_WORLD_SIZE",
        "NODE_RANK",
        "MASTER_ADDR",
        "MASTER_PORT",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .env("TOKENIZERS_PARALLELISM", "false")
        .env("OMP_NUM_THREADS", "1");
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            println!("skipped: cannot run {python}: {e}");
            return None;
        }
    };
    // No time limit: the script's runs are small, and a timing never decides a test.
    let output = child.wait_with_output().unwrap();
    let code = output.status.code();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if code == Some(SKIP) {
        println!("skipped: {python} {}", stdout.trim());
        return None;
    }
    assert!(
        output.status.success(),
        "{python} failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let their_files = files(&theirs);
    let json = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    Some(PythonRun {
        ours,
        our_samples,
        theirs,
        their_files,
        json,
        _tmp: tmp,
    })
}

/// Uniform in `lo..hi`.
fn range(rng: &mut SplitMix64, lo: u64, hi: u64) -> u64 {
    lo + rng.below(hi - lo)
}

/// Writes our dataset (zstd, sha1 + xxh3_64, many shards) and returns every
/// sample in the golden tests' JSON notation.
fn write_ours(dir: &Path) -> Vec<Json> {
    let options = WriterOptions::default()
        .compression("zstd")
        .hashes(HASHES)
        .size_limit(SIZE_LIMIT);
    let mut writer = MdsWriter::create(dir, &COLUMNS, options).unwrap();
    let domains = ["arxiv", "book", "wiki/ünïcødé", "中文", "", "a\"quote\\"];
    let mut rng = SplitMix64::new(0x5eed_0001);
    let mut samples = Vec::new();
    for i in 0..40u64 {
        // Mostly a few thousand tokens (u16 shape header), some short (u8),
        // and a first sample of one token.
        let n = match i {
            0 => 1,
            _ if i % 4 == 0 => range(&mut rng, 1, 256),
            _ => range(&mut rng, 256, 3000),
        } as usize;
        let mut input_ids: Vec<u32> = (0..n).map(|_| rng.next_u64() as u32).collect();
        // The extremes, where they fit.
        input_ids[0] = u32::MAX;
        input_ids[n - 1] = 0;
        let docs = range(&mut rng, 1, 5).min(n as u64) as usize;
        let indices = random_doc_indices(&mut rng, docs, n as u32);
        let mask: Vec<u8> = (0..n).map(|_| (rng.next_u64() & 1) as u8).collect();
        let domain = domains[range(&mut rng, 0, domains.len() as u64) as usize];
        let values = [
            ("domain", Value::Str(Cow::Borrowed(domain))),
            (
                "indices",
                Value::Array(Array::from_u32(&indices).with_shape(vec![indices.len() / 2, 2])),
            ),
            ("input_ids", Value::Array(Array::from_u32(&input_ids))),
            ("length", Value::Int(n as i64)),
            ("mask", Value::Array(Array::from_u8(&mask))),
        ];
        writer.write(&values).unwrap();
        samples.push(Json::Object(
            values
                .iter()
                .map(|(name, v)| (name.to_string(), to_expected(v)))
                .collect(),
        ));
    }
    let index = writer.finish().unwrap();
    assert!(index.shards.len() >= 5, "{} shards", index.shards.len());
    samples
}

/// Compares sample lists column by column, so a failure names the first
/// differing value instead of dumping thousands of numbers.
fn assert_samples_eq(what: &str, got: &[Json], want: &[Json]) {
    assert_eq!(got.len(), want.len(), "{what}: sample count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.as_object().unwrap(), w.as_object().unwrap());
        assert_eq!(
            g.keys().collect::<Vec<_>>(),
            w.keys().collect::<Vec<_>>(),
            "{what}: sample {i} columns"
        );
        for (column, want) in w {
            assert!(
                &g[column] == want,
                "{what}: sample {i} column {column}:\n got {}\nwant {}",
                g[column],
                want
            );
        }
    }
}

fn samples(json: &Json, key: &str) -> Vec<Json> {
    json[key].as_array().unwrap().clone()
}

#[test]
fn streaming_reads_what_we_write() {
    let Some(run) = python_run() else { return };
    // Iteration (shuffle=False) and random access both give exactly our
    // samples, in our order.
    assert_samples_eq(
        "StreamingDataset iteration",
        &samples(&run.json, "read"),
        &run.our_samples,
    );
    assert_samples_eq(
        "StreamingDataset[i]",
        &samples(&run.json, "by_index"),
        &run.our_samples,
    );
    // Streaming decompressed our shards next to the .zstd files; our reader
    // maps those raw shards (right sizes) and still reads the same samples,
    // and every file matches the hashes in index.json.
    prolong_mds::verify(&run.ours).unwrap();
    let dataset = MdsDataset::open(&run.ours).unwrap();
    let got: Vec<Json> = dataset
        .iter()
        .map(|s| {
            let s = s.unwrap();
            Json::Object(
                s.values()
                    .unwrap()
                    .iter()
                    .map(|(n, v)| (n.to_string(), to_expected(v)))
                    .collect(),
            )
        })
        .collect();
    assert_samples_eq("our reader after streaming", &got, &run.our_samples);
}

#[test]
fn we_read_and_rewrite_what_streaming_writes() {
    let Some(run) = python_run() else { return };
    let written = samples(&run.json, "written");
    assert_eq!(written.len(), 48);
    let shards = run
        .their_files
        .keys()
        .filter(|f| f.ends_with(".mds.zstd"))
        .count();
    assert!(shards >= 5, "streaming wrote {shards} shards");
    assert!(
        !run.their_files.keys().any(|f| f.ends_with(".mds")),
        "streaming left raw shards: {:?}",
        run.their_files.keys()
    );

    // Our writer, given the same samples and settings, writes the same bytes.
    let tmp = tempfile::tempdir().unwrap();
    let options = WriterOptions::default()
        .compression("zstd")
        .hashes(HASHES)
        .size_limit(SIZE_LIMIT);
    let mut writer = MdsWriter::create(tmp.path(), &COLUMNS, options).unwrap();
    for sample in &written {
        let values: Vec<(&str, Value)> = COLUMNS
            .iter()
            .map(|(name, enc)| (*name, from_expected(enc, &sample[*name])))
            .collect();
        writer.write(&values).unwrap();
    }
    writer.finish().unwrap();
    let ours = files(tmp.path());
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        run.their_files.keys().collect::<Vec<_>>()
    );
    for (file, bytes) in &run.their_files {
        assert!(ours[file] == *bytes, "{file} differs from streaming's");
    }

    // Our reader returns exactly what Python wrote (it decompresses and caches
    // the shards beside the .zstd files, so this comes after the byte check).
    let dataset = MdsDataset::open(&run.theirs).unwrap();
    assert_eq!(dataset.len(), written.len());
    let mut got = Vec::new();
    for (i, want) in written.iter().enumerate() {
        let sample = dataset.get(i).unwrap();
        // The typed accessors agree with the generic decode.
        assert_eq!(
            sample.integer("length").unwrap(),
            want["length"].as_i64().unwrap() as i128
        );
        assert_eq!(
            Some(sample.str("domain").unwrap()),
            want["domain"].as_str(),
            "sample {i}"
        );
        let ids = sample.u32s("input_ids").unwrap();
        assert_eq!(
            ids.len(),
            want["input_ids"]["values"].as_array().unwrap().len()
        );
        got.push(Json::Object(
            sample
                .values()
                .unwrap()
                .iter()
                .map(|(n, v)| (n.to_string(), to_expected(v)))
                .collect(),
        ));
    }
    assert_samples_eq("our reader on streaming's dataset", &got, &written);
    prolong_mds::verify(&run.theirs).unwrap();
}
