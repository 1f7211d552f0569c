//! The entry points of the MDS fuzz targets (fuzz/): `shard_decoder` and
//! `dataset_open`, shared with the test that replays their corpora under
//! `cargo test`.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::encoding::Encoding;
use crate::error::MdsError;
use crate::index::Column;
use crate::reader::{MdsDataset, read_shard_raw};
use crate::shard::decode_shard;

/// The column sets the fuzzer picks from with the input's first byte:
/// ProLong's packed layout, the SFT layout with a mask, and one column of
/// every encoding.
const COLUMN_SETS: [&[(&str, &str)]; 3] = [
    &[
        ("domain", "str"),
        ("indices", "ndarray:uint32"),
        ("input_ids", "ndarray:uint32"),
        ("length", "int"),
    ],
    &[
        ("domain", "str"),
        ("indices", "ndarray:uint32"),
        ("input_ids", "ndarray:uint32"),
        ("length", "int"),
        ("mask", "ndarray:uint8"),
    ],
    &[
        ("b", "bytes"),
        ("dyn", "ndarray"),
        ("f32", "float32"),
        ("fixed", "ndarray:int32:4"),
        ("i", "int"),
        ("i32", "int32"),
        ("j", "json"),
        ("s", "str"),
        ("u16arr", "ndarray:uint16"),
        ("u64", "uint64"),
    ],
];

/// Decodes `input[1..]` as a raw shard with the column set `input[0]` picks.
/// Returns the number of samples decoded, or the error; must never panic.
pub fn decode_shard_input(input: &[u8]) -> Result<usize, String> {
    let Some((&pick, shard)) = input.split_first() else {
        return Err("empty input".into());
    };
    let columns: Vec<Column> = COLUMN_SETS[pick as usize % COLUMN_SETS.len()]
        .iter()
        .map(|(name, enc)| Column {
            name: name.to_string(),
            encoding: Encoding::parse(enc).expect("fixed encodings parse"),
        })
        .collect();
    decode_shard(shard, &columns, |_, _| Ok(()))
        .map(|h| h.samples)
        .map_err(|(sample, e)| format!("sample {sample:?}: {e}"))
}

/// The most files [`open_dataset_input`] writes for one input.
const MAX_PARTS: usize = 16;
/// The deepest file name (`proc00-02/shard.00000.mds` is 2 deep).
const MAX_NAME_DEPTH: usize = 3;

/// Splits a `dataset_open` input into its files: each part is
/// `name length: u8, name, content length: u16 LE, content` (a length past
/// the end takes what is left, so a cut input is still a dataset). Every size
/// is bounded by its field: at most `MAX_PARTS` files of 64 KiB.
pub fn split_dataset_input(input: &[u8]) -> Result<Vec<(PathBuf, &[u8])>, String> {
    let mut parts = Vec::new();
    let mut rest = input;
    while let Some((&name_len, tail)) = rest.split_first() {
        if parts.len() == MAX_PARTS {
            return Err(format!("more than {MAX_PARTS} files"));
        }
        let (name, tail) = tail.split_at(usize::from(name_len).min(tail.len()));
        let name = std::str::from_utf8(name).map_err(|e| format!("file name: {e}"))?;
        let path = PathBuf::from(name);
        let depth = path.components().count();
        if name.is_empty()
            || depth > MAX_NAME_DEPTH
            || !path.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(format!("file name {name:?} is not a relative path"));
        }
        let (len, tail) = match tail {
            [a, b, tail @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), tail),
            _ => (0, &[][..]),
        };
        let (content, tail) = tail.split_at(len.min(tail.len()));
        parts.push((path, content));
        rest = tail;
    }
    Ok(parts)
}

/// The inverse of [`split_dataset_input`], for building seeds and tests.
pub fn join_dataset_input(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, content) in parts {
        out.push(u8::try_from(name.len()).expect("a short name"));
        out.extend_from_slice(name.as_bytes());
        let len = u16::try_from(content.len()).expect("at most 64 KiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(content);
    }
    out
}

/// Writes the files of `input` (see [`split_dataset_input`]) into a fresh
/// folder under the system's temp folder and reads the dataset there every
/// way a command does: [`verify`](crate::verify) (`prolong-data verify`),
/// [`MdsDataset::open_uncached`] with every column of every sample decoded
/// (`inspect`, `stats`, `pack`), [`read_shard_raw`](crate::read_shard_raw) of
/// every shard (`filter`), and [`MdsDataset::open`] with `input_ids` read as
/// u32 (the trainer's loader, `prolong-eval ppl`). Returns the number of
/// samples read, or the first error; never panics. What one reader accepts
/// the others must too: a dataset `verify` passes must read in full, else
/// this panics (the fuzzer reports it as a bug).
pub fn open_dataset_input(input: &[u8]) -> Result<usize, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let parts = split_dataset_input(input)?;
    let dir = std::env::temp_dir().join(format!(
        "prolong-fuzz-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_parts(&dir, &parts).and_then(|()| read_every_way(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn write_parts(dir: &Path, parts: &[(PathBuf, &[u8])]) -> Result<(), String> {
    for (name, content) in parts {
        let path = dir.join(name);
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        std::fs::write(&path, content).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn read_every_way(dir: &Path) -> Result<usize, String> {
    let s = |e: MdsError| e.to_string();
    let verified = crate::verify(dir).map_err(s);
    let read = read_all(dir);
    if let Ok(report) = &verified {
        match &read {
            Ok(n) => assert_eq!(
                *n as u64, report.samples,
                "verify and the readers count different samples"
            ),
            Err(e) => panic!("verify passes a dataset its readers refuse: {e}"),
        }
    }
    let samples = verified.and(read)?;
    // The trainer's way (its errors are the dataset's: a uint16 input_ids
    // verifies but is not what the trainer reads).
    let cached = MdsDataset::open(dir).map_err(s)?;
    for sample in cached.iter() {
        let sample = sample.map_err(s)?;
        if sample.has("input_ids") {
            sample.u32s("input_ids").map_err(s)?;
        }
    }
    Ok(samples)
}

/// Every sample decoded the way `inspect` reads it, every shard's bytes the
/// way `filter` copies them; the number of samples.
fn read_all(dir: &Path) -> Result<usize, String> {
    let s = |e: MdsError| e.to_string();
    let dataset = MdsDataset::open_uncached(dir).map_err(s)?;
    for sample in dataset.iter() {
        sample.and_then(|sample| sample.values()).map_err(s)?;
    }
    let mut buf = Vec::new();
    for entry in &dataset.index().shards {
        read_shard_raw(dir, entry, &mut buf).map_err(s)?;
    }
    Ok(dataset.len())
}

/// Every file of the fuzz corpus of `target` (fuzz/corpus/`target` in this
/// repository), sorted by name, with its name and bytes: what the replay
/// tests of every crate run through the target's entry point.
pub fn corpus_files(target: &str) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<PathBuf>>>()?;
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Ok((name, std::fs::read(&p)?))
        })
        .collect()
}
