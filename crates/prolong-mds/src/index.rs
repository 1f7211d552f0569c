//! index.json: the list of shards with their columns, compression and hashes.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::encoding::Encoding;
use crate::error::{MdsError, Result};
use crate::hash::HashAlgo;
use crate::pyjson;

pub const INDEX_FILE: &str = "index.json";

/// The largest raw shard the format can describe: offsets are u32 and the
/// last one is the shard's length.
pub const MAX_SHARD_BYTES: u64 = u32::MAX as u64;

/// The parsed index.json of a dataset folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub shards: Vec<ShardEntry>,
    pub version: u64,
}

/// One shard's entry. streaming's reader rejects any key beyond these eleven,
/// so ours does too. Fields are declared in sorted order: that is how they are
/// written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardEntry {
    pub column_encodings: Vec<String>,
    pub column_names: Vec<String>,
    pub column_sizes: Vec<Option<u64>>,
    pub compression: Option<String>,
    pub format: String,
    pub hashes: Vec<String>,
    pub raw_data: FileInfo,
    pub samples: u64,
    pub size_limit: Option<u64>,
    pub version: u64,
    pub zip_data: Option<FileInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInfo {
    pub basename: String,
    pub bytes: u64,
    pub hashes: BTreeMap<String, String>,
}

/// A column: its name and how its values are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub encoding: Encoding,
}

/// Shard compression. Only zstd is supported; it is what ProLong and our
/// writer use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd { level: i32 },
}

impl Compression {
    pub fn parse(name: Option<&str>) -> Result<Compression> {
        let Some(name) = name else {
            return Ok(Compression::None);
        };
        let level = match name.split_once(':') {
            None if name == "zstd" => 3,
            Some(("zstd", level)) => level
                .parse::<i32>()
                .ok()
                .filter(|l| (1..=22).contains(l))
                .ok_or_else(|| MdsError::UnknownCompression(name.into()))?,
            _ => return Err(MdsError::UnknownCompression(name.into())),
        };
        Ok(Compression::Zstd { level })
    }

    /// The suffix of the compressed file: `shard.00000.mds.zstd`.
    pub fn extension(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Zstd { .. } => Some("zstd"),
        }
    }
}

impl Index {
    /// Reads and checks `dir/index.json`.
    pub fn load(dir: &Path) -> Result<Index> {
        let path = dir.join(INDEX_FILE);
        let text = std::fs::read(&path).map_err(|e| MdsError::io(&path, e))?;
        Index::parse(&text, &path)
    }

    pub fn parse(text: &[u8], path: &Path) -> Result<Index> {
        let bad = |reason: String| MdsError::BadIndex {
            path: path.to_path_buf(),
            reason,
        };
        let index: Index = serde_json::from_slice(text).map_err(|e| bad(e.to_string()))?;
        if index.version != 2 {
            return Err(bad(format!(
                "version {} (only 2 is supported)",
                index.version
            )));
        }
        for (i, shard) in index.shards.iter().enumerate() {
            shard
                .check()
                .map_err(|reason| bad(format!("shard {i}: {reason}")))?;
        }
        Ok(index)
    }

    /// Checks that every shard has the columns (names and encodings) of the
    /// first: readers take one set of columns for the whole dataset.
    pub fn check_same_columns(&self, path: &Path) -> Result<()> {
        let Some(first) = self.shards.first() else {
            return Ok(());
        };
        let describe = |s: &ShardEntry| {
            s.column_names
                .iter()
                .zip(&s.column_encodings)
                .map(|(n, e)| format!("{n}:{e}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (i, shard) in self.shards.iter().enumerate().skip(1) {
            if shard.column_names != first.column_names
                || shard.column_encodings != first.column_encodings
            {
                return Err(MdsError::BadIndex {
                    path: path.to_path_buf(),
                    reason: format!(
                        "shard {i} ({}) has columns {}, shard 0 ({}) has {}",
                        shard.raw_data.basename,
                        describe(shard),
                        first.raw_data.basename,
                        describe(first)
                    ),
                });
            }
        }
        Ok(())
    }

    pub fn total_samples(&self) -> u64 {
        self.shards.iter().map(|s| s.samples).sum()
    }

    /// The bytes of index.json as a writer writes it: `json.dumps(obj, sort_keys=True)`.
    pub fn to_json(&self) -> String {
        pyjson::dumps_sorted(&serde_json::to_value(self).expect("index is plain data"))
    }

    /// The bytes of a merged root index.json as streaming's `merge_index`
    /// writes it: `{"version": 2, "shards": [...]}`, entries as loaded.
    pub fn to_merged_json(&self) -> String {
        let shards = serde_json::to_value(&self.shards).expect("index is plain data");
        let mut root = serde_json::Map::new();
        root.insert("version".into(), self.version.into());
        root.insert("shards".into(), shards);
        pyjson::dumps(&serde_json::Value::Object(root))
    }
}

impl ShardEntry {
    /// Checks everything a reader relies on; the error says what is wrong.
    fn check(&self) -> Result<(), String> {
        if self.format != "mds" {
            return Err(format!(
                "format {:?} (only \"mds\" is supported)",
                self.format
            ));
        }
        if self.version != 2 {
            return Err(format!("version {} (only 2 is supported)", self.version));
        }
        self.columns()?;
        Compression::parse(self.compression.as_deref()).map_err(|e| e.to_string())?;
        for h in &self.hashes {
            HashAlgo::from_name(h).ok_or_else(|| format!("unknown hash {h:?}"))?;
        }
        match (&self.compression, &self.zip_data) {
            (Some(_), None) => return Err("compressed but zip_data is null".into()),
            (None, Some(_)) => return Err("zip_data given but compression is null".into()),
            _ => {}
        }
        // Sizes are checked here, before any reader allocates by them: a raw
        // shard's offsets are 32-bit and its last offset is its length, and
        // each sample takes one 4-byte offset after the 4-byte count.
        if self.raw_data.bytes > MAX_SHARD_BYTES {
            return Err(format!(
                "raw_data.bytes {} is more than the {MAX_SHARD_BYTES} bytes a shard's 32-bit offsets address",
                self.raw_data.bytes
            ));
        }
        if self.samples > self.raw_data.bytes.saturating_sub(8) / 4 {
            return Err(format!(
                "samples {} cannot fit in raw_data.bytes {}",
                self.samples, self.raw_data.bytes
            ));
        }
        for info in std::iter::once(&self.raw_data).chain(&self.zip_data) {
            safe_relative(&info.basename)
                .ok_or_else(|| format!("basename {:?} leaves the dataset folder", info.basename))?;
        }
        Ok(())
    }

    /// The columns, with their encodings parsed and sizes checked.
    pub fn columns(&self) -> Result<Vec<Column>, String> {
        let n = self.column_names.len();
        if self.column_encodings.len() != n || self.column_sizes.len() != n {
            return Err("column_names, column_encodings and column_sizes differ in length".into());
        }
        let mut columns = Vec::with_capacity(n);
        for ((name, enc), size) in self
            .column_names
            .iter()
            .zip(&self.column_encodings)
            .zip(&self.column_sizes)
        {
            let encoding = Encoding::parse(enc)
                .ok_or_else(|| format!("column {name:?}: unknown encoding {enc:?}"))?;
            if encoding.fixed_size().map(|s| s as u64) != *size {
                return Err(format!(
                    "column {name:?}: size {size:?} does not fit encoding {enc}"
                ));
            }
            columns.push(Column {
                name: name.clone(),
                encoding,
            });
        }
        Ok(columns)
    }

    pub fn compression(&self) -> Compression {
        // Checked when the index was parsed.
        Compression::parse(self.compression.as_deref()).unwrap_or(Compression::None)
    }

    /// The shard header's config JSON, byte for byte as the writer put it:
    /// the entry less what only the index knows (the files and the count).
    pub fn config_json(&self) -> String {
        // Strings, numbers and lists of them: serialising cannot fail.
        let mut config = serde_json::to_value(self).expect("a shard entry serialises");
        if let Some(obj) = config.as_object_mut() {
            for key in ["raw_data", "samples", "zip_data"] {
                obj.remove(key);
            }
        }
        pyjson::dumps_sorted(&config)
    }
}

/// `basename` as a path under the dataset folder, or `None` when it would
/// escape it (empty, absolute, or with `..`).
pub fn safe_relative(basename: &str) -> Option<PathBuf> {
    let path = PathBuf::from(basename);
    let ok = !basename.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then_some(path)
}
