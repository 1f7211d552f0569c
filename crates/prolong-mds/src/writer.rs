//! Writes samples into MDS shards and index.json, byte-identical to
//! mosaicml-streaming's MDSWriter given the same samples and settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::atomic::{write_atomic, write_atomic_parts};
use crate::encoding::Encoding;
use crate::error::{MdsError, Result};
use crate::hash::{HashAlgo, Hasher};
use crate::index::{Column, Compression, FileInfo, INDEX_FILE, Index, ShardEntry};
use crate::value::Value;

/// streaming's default shard size: 64 MiB.
pub const DEFAULT_SIZE_LIMIT: u64 = 1 << 26;

/// Settings of a writer: `compression` ("zstd" or "zstd:LEVEL"), hash names
/// (sorted, unique) and the shard size limit in bytes.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub compression: Option<String>,
    pub hashes: Vec<String>,
    pub size_limit: Option<u64>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression: None,
            hashes: Vec::new(),
            size_limit: Some(DEFAULT_SIZE_LIMIT),
        }
    }
}

impl WriterOptions {
    pub fn compression(mut self, compression: impl Into<String>) -> Self {
        self.compression = Some(compression.into());
        self
    }

    pub fn hashes<S: Into<String>>(mut self, hashes: impl IntoIterator<Item = S>) -> Self {
        self.hashes = hashes.into_iter().map(Into::into).collect();
        self
    }

    pub fn size_limit(mut self, size_limit: u64) -> Self {
        self.size_limit = Some(size_limit);
        self
    }
}

/// Writes one dataset folder. Shards go to temporary names and are renamed
/// when complete; index.json is written last by [`MdsWriter::finish`], so a
/// folder without it is never mistaken for a finished dataset.
pub struct MdsWriter {
    dir: PathBuf,
    columns: Vec<Column>,
    compression: Compression,
    hash_algos: Vec<HashAlgo>,
    /// Everything of a shard entry but the per-shard fields.
    template: ShardEntry,
    config: Vec<u8>,
    /// Encoded samples of the open shard, back to back, and their sizes.
    samples: Vec<u8>,
    sizes: Vec<u32>,
    shards: Vec<ShardEntry>,
}

impl MdsWriter {
    /// `columns` maps names to encoding names (`"ndarray:uint32"`, `"str"`, ...),
    /// in any order; they are stored sorted by name.
    pub fn create(
        dir: impl AsRef<Path>,
        columns: &[(&str, &str)],
        options: WriterOptions,
    ) -> Result<MdsWriter> {
        let dir = dir.as_ref().to_path_buf();
        let invalid = |m: String| MdsError::InvalidSettings(m);
        let mut by_name = BTreeMap::new();
        for (name, enc) in columns {
            let encoding =
                Encoding::parse(enc).ok_or_else(|| MdsError::UnknownEncoding(enc.to_string()))?;
            if by_name.insert(name.to_string(), encoding).is_some() {
                return Err(invalid(format!("column {name:?} given twice")));
            }
        }
        if by_name.is_empty() {
            return Err(invalid("no columns".into()));
        }
        let columns: Vec<Column> = by_name
            .into_iter()
            .map(|(name, encoding)| Column { name, encoding })
            .collect();
        let compression = Compression::parse(options.compression.as_deref())?;
        let mut hash_algos = Vec::new();
        for h in &options.hashes {
            hash_algos
                .push(HashAlgo::from_name(h).ok_or_else(|| MdsError::UnknownHash(h.clone()))?);
        }
        let mut sorted = options.hashes.clone();
        sorted.sort();
        sorted.dedup();
        if sorted != options.hashes {
            return Err(invalid(format!(
                "hashes {:?} must be sorted and unique",
                options.hashes
            )));
        }
        if let Some(limit) = options.size_limit
            && limit >= 1 << 32
        {
            return Err(invalid(format!("size_limit {limit} must be below 2^32")));
        }
        let template = ShardEntry {
            column_encodings: columns.iter().map(|c| c.encoding.to_string()).collect(),
            column_names: columns.iter().map(|c| c.name.clone()).collect(),
            column_sizes: columns
                .iter()
                .map(|c| c.encoding.fixed_size().map(|s| s as u64))
                .collect(),
            compression: options.compression.clone(),
            format: "mds".into(),
            hashes: options.hashes.clone(),
            raw_data: FileInfo {
                basename: String::new(),
                bytes: 0,
                hashes: BTreeMap::new(),
            },
            samples: 0,
            size_limit: options.size_limit,
            version: 2,
            zip_data: None,
        };
        let config = template.config_json().into_bytes();
        std::fs::create_dir_all(&dir).map_err(|e| MdsError::io(&dir, e))?;
        // A stale index.json from an earlier run would make a half-rewritten
        // folder look finished.
        let index_path = dir.join(INDEX_FILE);
        match std::fs::remove_file(&index_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(MdsError::io(&index_path, e));
            }
            _ => {}
        }
        Ok(MdsWriter {
            dir,
            columns,
            compression,
            hash_algos,
            template,
            config,
            samples: Vec::new(),
            sizes: Vec::new(),
            shards: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The columns, sorted by name.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Appends one sample: a value for every column, in any order.
    pub fn write(&mut self, sample: &[(&str, Value<'_>)]) -> Result<()> {
        for (name, _) in sample {
            if !self.columns.iter().any(|c| c.name == *name) {
                return Err(MdsError::BadValue {
                    column: name.to_string(),
                    reason: "not a column of this dataset".into(),
                });
            }
        }
        // Encode straight into the open shard's buffer: a sample is copied
        // once, from the caller's slices to the shard.
        let start = self.samples.len();
        let mut samples = std::mem::take(&mut self.samples);
        let encoded = self.encode(sample, &mut samples);
        self.samples = samples;
        if let Err(e) = encoded {
            self.samples.truncate(start);
            return Err(e);
        }
        self.close_sample(start)
    }

    fn encode(&self, sample: &[(&str, Value<'_>)], out: &mut Vec<u8>) -> Result<()> {
        let variable: Vec<usize> = (0..self.columns.len())
            .filter(|&i| self.columns[i].encoding.fixed_size().is_none())
            .collect();
        let base = out.len();
        out.resize(base + 4 * variable.len(), 0);
        let mut next = base;
        for column in &self.columns {
            let value = sample
                .iter()
                .find(|(name, _)| *name == column.name)
                .map(|(_, v)| v)
                .ok_or_else(|| MdsError::BadValue {
                    column: column.name.clone(),
                    reason: "missing from the sample".into(),
                })?;
            let start = out.len();
            column
                .encoding
                .encode(value, out)
                .map_err(|reason| MdsError::BadValue {
                    column: column.name.clone(),
                    reason,
                })?;
            let len = out.len() - start;
            match column.encoding.fixed_size() {
                Some(size) if size != len => {
                    return Err(MdsError::BadValue {
                        column: column.name.clone(),
                        reason: format!("encoded to {len} bytes, the encoding fixes {size}"),
                    });
                }
                Some(_) => {}
                None => {
                    let len = u32::try_from(len).map_err(|_| MdsError::BadValue {
                        column: column.name.clone(),
                        reason: format!("{len} bytes do not fit a u32 size"),
                    })?;
                    out[next..next + 4].copy_from_slice(&len.to_le_bytes());
                    next += 4;
                }
            }
        }
        Ok(())
    }

    /// Ends the sample encoded at `samples[start..]`. When it takes the shard
    /// past the size limit (streaming's rule), the shard before it is flushed
    /// first and the sample opens the next one.
    fn close_sample(&mut self, start: usize) -> Result<()> {
        let len = self.samples.len() - start;
        let size = u32::try_from(len).map_err(|_| {
            self.samples.truncate(start);
            MdsError::InvalidSettings(format!("a sample of {len} bytes does not fit a shard"))
        })?;
        if let Some(limit) = self.template.size_limit {
            let shard_size =
                8 + self.config.len() + self.samples.len() + 4 * (self.sizes.len() + 1);
            if !self.sizes.is_empty() && limit < shard_size as u64 {
                // The buffer keeps its capacity for the next shard.
                let next = self.samples.split_off(start);
                self.flush_shard()?;
                self.samples.extend_from_slice(&next);
            }
        }
        self.sizes.push(size);
        Ok(())
    }

    fn flush_shard(&mut self) -> Result<()> {
        if self.sizes.is_empty() {
            return Ok(());
        }
        let n = self.sizes.len();
        let header_len = 4 + 4 * (n + 1) + self.config.len();
        let total = header_len + self.samples.len();
        if total > u32::MAX as usize {
            return Err(MdsError::InvalidSettings(format!(
                "a shard of {total} bytes overflows its u32 offsets"
            )));
        }
        let mut header = Vec::with_capacity(header_len);
        header.extend_from_slice(&(n as u32).to_le_bytes());
        let mut offset = header_len as u32;
        header.extend_from_slice(&offset.to_le_bytes());
        for size in &self.sizes {
            offset += size;
            header.extend_from_slice(&offset.to_le_bytes());
        }
        header.extend_from_slice(&self.config);
        let raw = [header.as_slice(), self.samples.as_slice()];

        let raw_basename = format!("shard.{:05}.mds", self.shards.len());
        let mut entry = self.template.clone();
        entry.samples = n as u64;
        entry.raw_data = self.file_info(&raw_basename, &raw);
        match self.compression {
            Compression::None => write_atomic_parts(&self.dir.join(&raw_basename), &raw)?,
            Compression::Zstd { level } => {
                // One frame that records its content size: older Python zstd
                // packages cannot decompress frames without it.
                let whole = raw.concat();
                let zipped =
                    zstd::bulk::compress(&whole, level).map_err(|e| MdsError::io(&self.dir, e))?;
                let zip_basename = format!("{raw_basename}.zstd");
                write_atomic_parts(&self.dir.join(&zip_basename), &[&zipped])?;
                entry.zip_data = Some(self.file_info(&zip_basename, &[&zipped]));
            }
        }
        self.shards.push(entry);
        self.samples.clear();
        self.sizes.clear();
        Ok(())
    }

    /// Size and hashes of a file written as `parts` back to back.
    fn file_info(&self, basename: &str, parts: &[&[u8]]) -> FileInfo {
        let hash = |algo: &HashAlgo| {
            let mut h = Hasher::new(*algo);
            parts.iter().for_each(|p| h.update(p));
            (algo.name().to_string(), h.finish_hex())
        };
        FileInfo {
            basename: basename.into(),
            bytes: parts.iter().map(|p| p.len() as u64).sum(),
            hashes: self.hash_algos.iter().map(hash).collect(),
        }
    }

    /// Flushes the last shard and writes index.json, last of all.
    pub fn finish(mut self) -> Result<Index> {
        self.flush_shard()?;
        let index = Index {
            shards: std::mem::take(&mut self.shards),
            version: 2,
        };
        write_atomic(&self.dir.join(INDEX_FILE), index.to_json().as_bytes())?;
        Ok(index)
    }
}
