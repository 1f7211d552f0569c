//! Reading tokenized MDS input sample by sample with bounded memory.
//!
//! `MdsDataset` keeps every shard it opened mapped until it is dropped, so a
//! pass over a large dataset would grow the resident set with the input. Raw
//! shards are therefore read here with plain sequential reads through one
//! reusable buffer (memory: the larger of 8 MiB and the largest sample);
//! compressed shards without a raw copy are decompressed in memory one at a
//! time through a short-lived `MdsDataset` (memory: one raw shard; nothing is
//! written beside the input).

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use prolong_mds::{
    Column, Dtype, Encoding, FileHashes, MdsDataset, ShardEntry, Value, safe_relative, split_sample,
};
use prolong_packed::columns::{INPUT_IDS as TOKENS_COLUMN, MASK as MASK_COLUMN};

use super::error::PackError;
use crate::filter::input::{InputError, input_entries};

/// One shard of one input dataset: the unit tasks are dealt (shard `i` of
/// the concatenated inputs goes to task `i % world_size`).
#[derive(Debug, Clone)]
pub struct InputShard {
    /// The dataset folder holding index.json.
    pub dataset: PathBuf,
    /// The shard's position in that index.json.
    pub shard: usize,
    pub raw_path: PathBuf,
    pub entry: ShardEntry,
    pub columns: Vec<Column>,
    tokens: usize,
    mask: Option<usize>,
}

impl InputShard {
    pub fn samples(&self) -> u64 {
        self.entry.samples
    }

    pub fn has_mask(&self) -> bool {
        self.mask.is_some()
    }
}

/// The shards of every input, in order, checked to have an `input_ids`
/// column of uint32 (or dynamic-dtype) ndarrays, and an integer `mask`
/// ndarray either in all shards or in none. Returns them and whether they
/// carry masks.
pub fn plan_inputs(inputs: &[PathBuf]) -> Result<(Vec<InputShard>, bool), PackError> {
    if inputs.is_empty() {
        return Err(PackError::settings("no input datasets"));
    }
    let mut shards = Vec::new();
    for input in input_entries(inputs) {
        let input = input?;
        let bad = |reason: String| input.bad(reason);
        let tokens = (input.find(TOKENS_COLUMN))
            .ok_or_else(|| bad(format!("no {TOKENS_COLUMN:?} column")))?;
        match &input.columns[tokens].encoding {
            Encoding::NdArray {
                dtype: None | Some(Dtype::U32),
                ..
            } => {}
            other => {
                return Err(bad(format!(
                    "column {TOKENS_COLUMN:?} is {other}, expected ndarray:uint32"
                ))
                .into());
            }
        }
        let mask = input.find(MASK_COLUMN);
        if let Some(m) = mask {
            match &input.columns[m].encoding {
                Encoding::NdArray { dtype, .. }
                    if dtype.is_none_or(|d| d.name().contains("int")) => {}
                other => {
                    return Err(bad(format!(
                        "column {MASK_COLUMN:?} is {other}, expected an integer ndarray"
                    ))
                    .into());
                }
            }
        }
        let raw_path = safe_relative(&input.entry.raw_data.basename)
            .map(|rel| input.dataset.join(rel))
            .ok_or_else(|| {
                bad(format!(
                    "basename {:?} leaves the dataset folder",
                    input.entry.raw_data.basename
                ))
            })?;
        shards.push(InputShard {
            dataset: input.dataset,
            shard: input.shard,
            raw_path,
            entry: input.entry,
            columns: input.columns,
            tokens,
            mask,
        });
    }
    let with_mask = shards.first().is_some_and(InputShard::has_mask);
    if let Some(odd) = shards.iter().find(|s| s.has_mask() != with_mask) {
        return Err(InputError::BadInput {
            path: odd.raw_path.clone(),
            reason: format!(
                "has {}a {MASK_COLUMN:?} column but the first input shard {}",
                if odd.has_mask() { "" } else { "no " },
                if with_mask { "has one" } else { "does not" }
            ),
        }
        .into());
    }
    Ok((shards, with_mask))
}

/// One document as the packer takes it: little-endian u32 token bytes and,
/// when the input has one, its mask as bytes (borrowed when it is uint8).
pub struct InputDoc<'a> {
    pub tokens: &'a [u8],
    pub mask: Option<Cow<'a, [u8]>>,
}

/// Calls `f(sample_index, doc)` for every sample of the shard, in order.
pub fn for_each_doc(
    shard: &InputShard,
    mut f: impl FnMut(usize, InputDoc<'_>) -> Result<(), PackError>,
) -> Result<(), PackError> {
    let raw_ok =
        std::fs::metadata(&shard.raw_path).is_ok_and(|m| m.len() == shard.entry.raw_data.bytes);
    if raw_ok || shard.entry.zip_data.is_none() {
        let mut reader = RawShardReader::open(&shard.raw_path, &shard.entry)?;
        let mut i = 0;
        while let Some(bytes) = reader.next_sample()? {
            let doc = decode_doc(shard, i, bytes)?;
            f(i, doc)?;
            i += 1;
        }
        return Ok(());
    }
    // Compressed, and no raw copy: decompress this one shard in memory
    // (nothing written beside the input), then drop it.
    let dataset = MdsDataset::open_uncached(&shard.dataset)?;
    let data = dataset.shard_bytes(shard.shard)?;
    let header = prolong_mds::ShardHeader::parse(data).map_err(|reason| InputError::BadInput {
        path: shard.raw_path.clone(),
        reason: format!("bad shard: {reason}"),
    })?;
    for i in 0..header.samples {
        let doc = decode_doc(shard, i, header.sample(data, i))?;
        f(i, doc)?;
    }
    Ok(())
}

fn decode_doc<'a>(
    shard: &InputShard,
    i: usize,
    bytes: &'a [u8],
) -> Result<InputDoc<'a>, PackError> {
    let bad = |reason: String| {
        PackError::from(InputError::BadSample {
            path: shard.raw_path.clone(),
            sample: i,
            reason,
        })
    };
    let fields = split_sample(&shard.columns, bytes).map_err(&bad)?;
    let array = |c: usize| match shard.columns[c].encoding.decode(fields[c]) {
        Ok(Value::Array(a)) => Ok(a),
        Ok(other) => Err(bad(format!(
            "column {:?} is not an ndarray: {other:?}",
            shard.columns[c].name
        ))),
        Err(reason) => Err(bad(format!("column {:?}: {reason}", shard.columns[c].name))),
    };
    let tokens = array(shard.tokens)?;
    if tokens.dtype != Dtype::U32 || tokens.shape.len() != 1 {
        return Err(bad(format!(
            "column {TOKENS_COLUMN:?} holds {} values of shape {:?}, expected 1-D uint32",
            tokens.dtype, tokens.shape
        )));
    }
    let Cow::Borrowed(token_bytes) = tokens.data else {
        return Err(bad("token bytes were not borrowed".into()));
    };
    let mask = match shard.mask {
        None => None,
        Some(m) => {
            let mask = array(m)?;
            if mask.len() != tokens.len() {
                return Err(bad(format!(
                    "column {MASK_COLUMN:?} has {} values for {} tokens",
                    mask.len(),
                    tokens.len()
                )));
            }
            Some(match (mask.dtype, mask.data) {
                (Dtype::U8, data) => data,
                (dtype, data) => {
                    if !dtype.name().contains("int") {
                        return Err(bad(format!("column {MASK_COLUMN:?} holds {dtype} values")));
                    }
                    // Other integer widths: 1 where the value is non-zero.
                    let size = dtype.size();
                    Cow::Owned(
                        data.chunks_exact(size)
                            .map(|v| u8::from(v.iter().any(|&b| b != 0)))
                            .collect(),
                    )
                }
            })
        }
    };
    Ok(InputDoc {
        tokens: token_bytes,
        mask,
    })
}

/// Sequential reader of a raw shard's samples through one reusable buffer.
struct RawShardReader {
    path: PathBuf,
    file: File,
    offsets: Vec<u32>,
    next: usize,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes of the file not yet read into `buf`.
    left: u64,
    /// The hashes index.json records, fed every byte read and checked after
    /// the last sample (taken then), so corrupt input never reaches the output
    /// of a finished run.
    hashes: Option<FileHashes>,
}

const READ_CHUNK: usize = 8 << 20;

impl RawShardReader {
    fn open(path: &Path, entry: &ShardEntry) -> Result<RawShardReader, PackError> {
        let io = |e| PackError::io(path, e);
        let bad = |reason: String| {
            PackError::from(InputError::BadInput {
                path: path.to_path_buf(),
                reason: format!("bad shard: {reason}"),
            })
        };
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len != entry.raw_data.bytes {
            return Err(bad(format!(
                "{len} bytes, index.json says {}",
                entry.raw_data.bytes
            )));
        }
        let mut hashes = FileHashes::new(&entry.raw_data)?;
        let mut word = [0u8; 4];
        file.read_exact(&mut word)
            .map_err(|_| bad("shorter than its 4-byte sample count".into()))?;
        hashes.update(&word);
        let n = u32::from_le_bytes(word) as usize;
        if n as u64 != entry.samples {
            return Err(bad(format!(
                "holds {n} samples, index.json says {}",
                entry.samples
            )));
        }
        let table_end = 4 + 4 * (n as u64 + 1);
        if len < table_end {
            return Err(bad(format!(
                "{len} bytes cannot hold the offsets of {n} samples"
            )));
        }
        let mut table = vec![0u8; 4 * (n + 1)];
        file.read_exact(&mut table).map_err(io)?;
        hashes.update(&table);
        let offsets: Vec<u32> = table
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        drop(table);
        if u64::from(offsets[0]) < table_end {
            return Err(bad(format!(
                "first sample offset {} is inside the header",
                offsets[0]
            )));
        }
        if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
            return Err(bad(format!("offset {} is before offset {i}", i + 1)));
        }
        if u64::from(offsets[n]) != len {
            return Err(bad(format!(
                "last offset {} does not match the shard's {len} bytes",
                offsets[n]
            )));
        }
        // The config between the table and the first sample is read (not
        // skipped) only to be hashed.
        let mut config = vec![0u8; (u64::from(offsets[0]) - table_end) as usize];
        file.read_exact(&mut config).map_err(io)?;
        hashes.update(&config);
        let left = len - u64::from(offsets[0]);
        Ok(RawShardReader {
            path: path.to_path_buf(),
            file,
            offsets,
            next: 0,
            buf: vec![0; READ_CHUNK.min(left as usize)],
            start: 0,
            end: 0,
            left,
            hashes: Some(hashes),
        })
    }

    fn next_sample(&mut self) -> Result<Option<&[u8]>, PackError> {
        if self.next + 1 >= self.offsets.len() {
            if let Some(hashes) = self.hashes.take() {
                hashes.finish(&self.path)?;
            }
            return Ok(None);
        }
        let size = (self.offsets[self.next + 1] - self.offsets[self.next]) as usize;
        self.next += 1;
        if self.end - self.start < size {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < size {
                self.buf.resize(size, 0);
            }
            let want = ((self.buf.len() - self.end) as u64).min(self.left) as usize;
            self.file
                .read_exact(&mut self.buf[self.end..self.end + want])
                .map_err(|e| PackError::io(&self.path, e))?;
            if let Some(hashes) = &mut self.hashes {
                hashes.update(&self.buf[self.end..self.end + want]);
            }
            self.end += want;
            self.left -= want as u64;
        }
        let sample = &self.buf[self.start..self.start + size];
        self.start += size;
        Ok(Some(sample))
    }
}
