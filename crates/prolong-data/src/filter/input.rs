//! Tokenized MDS input read one shard at a time, and samples copied to a
//! writer with the input's columns and encodings.
//!
//! Shared by `filter` and `sample`. Memory is one raw shard (read with plain
//! reads, or decompressed when only the `.zstd` file exists; nothing is written
//! beside the input). A sample is split into its columns' bytes; only its
//! length is interpreted (the `length` column when there is one, else the
//! shape of `input_ids`), and copying re-emits the borrowed column values, so
//! the output carries exactly the input's values.

use std::path::{Path, PathBuf};

use prolong_mds::{
    Column, Index, MdsError, MdsWriter, ShardEntry, ShardHeader, Value, WriterOptions,
    safe_relative, split_sample,
};

use prolong_packed::columns::{INPUT_IDS as TOKENS_COLUMN, LENGTH as LENGTH_COLUMN};

use crate::task::LengthHistogram;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Mds(#[from] MdsError),
    #[error("{path}: {reason}")]
    BadInput { path: PathBuf, reason: String },
    #[error("{path}: sample {sample}: {reason}")]
    BadSample {
        path: PathBuf,
        sample: usize,
        reason: String,
    },
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
}

/// Where a document's length comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LengthFrom {
    /// The `length` column (any integer encoding).
    Column(usize),
    /// The element count of `input_ids`.
    Tokens(usize),
}

/// One shard of one input dataset: the unit that tasks are dealt.
#[derive(Debug, Clone)]
pub struct InputShard {
    /// The dataset folder holding index.json.
    pub dataset: PathBuf,
    /// The shard's position in that index.json.
    pub shard: usize,
    pub entry: ShardEntry,
    pub columns: Vec<Column>,
    length: LengthFrom,
}

impl InputShard {
    pub fn samples(&self) -> u64 {
        self.entry.samples
    }

    /// `dataset/basename`, for reports.
    pub fn label(&self) -> String {
        format!(
            "{}/{}",
            self.dataset.display(),
            self.entry.raw_data.basename
        )
    }

    fn path(&self, basename: &str) -> Result<PathBuf, InputError> {
        let rel = safe_relative(basename).ok_or_else(|| InputError::BadInput {
            path: self.dataset.join(prolong_mds::INDEX_FILE),
            reason: format!("shard basename {basename:?} leaves the dataset folder"),
        })?;
        Ok(self.dataset.join(rel))
    }

    fn raw_path(&self) -> PathBuf {
        self.dataset.join(&self.entry.raw_data.basename)
    }
}

/// A shard entry of an input dataset with its columns: what the stages that
/// read tokenized MDS (filter, sample, pack) check as they plan their shards.
pub struct InputEntry {
    /// The dataset folder holding index.json.
    pub dataset: PathBuf,
    /// The shard's position in that index.json.
    pub shard: usize,
    pub entry: ShardEntry,
    pub columns: Vec<Column>,
}

impl InputEntry {
    /// An error naming the shard in its index.json.
    pub fn bad(&self, reason: String) -> InputError {
        InputError::BadInput {
            path: self.dataset.join(prolong_mds::INDEX_FILE),
            reason: format!(
                "shard {} ({}): {reason}",
                self.shard, self.entry.raw_data.basename
            ),
        }
    }

    /// The position of column `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// Every shard entry of `inputs` with its columns, in order (datasets as
/// given, shards in index order); each index.json is read when it is
/// reached, so the first fault in that order is the one reported.
pub fn input_entries(inputs: &[PathBuf]) -> impl Iterator<Item = Result<InputEntry, InputError>> {
    inputs.iter().flat_map(|dir| {
        let (entries, failed) = match Index::load(dir) {
            Ok(index) => (index.shards, None),
            Err(e) => (Vec::new(), Some(Err(InputError::from(e)))),
        };
        let entries = entries.into_iter().enumerate().map(move |(shard, entry)| {
            let mut input = InputEntry {
                dataset: dir.clone(),
                shard,
                entry,
                columns: Vec::new(),
            };
            input.columns = input.entry.columns().map_err(|r| input.bad(r))?;
            Ok(input)
        });
        failed.into_iter().chain(entries)
    })
}

/// The shards of every input dataset, in order (datasets as given, shards in
/// index order), checked to share one set of columns and encodings and to
/// have a `length` or an `input_ids` column.
pub fn plan_shards(inputs: &[PathBuf]) -> Result<Vec<InputShard>, InputError> {
    let mut shards: Vec<InputShard> = Vec::new();
    for input in input_entries(inputs) {
        let input = input?;
        let length = match (input.find(LENGTH_COLUMN), input.find(TOKENS_COLUMN)) {
            (Some(c), _) => LengthFrom::Column(c),
            (None, Some(c)) => LengthFrom::Tokens(c),
            (None, None) => {
                return Err(input.bad(format!(
                    "neither a {LENGTH_COLUMN:?} nor an {TOKENS_COLUMN:?} column"
                )));
            }
        };
        if let Some(first) = shards.first()
            && (first.entry.column_names != input.entry.column_names
                || first.entry.column_encodings != input.entry.column_encodings)
        {
            return Err(input.bad(format!(
                "columns {} differ from those of the first input shard ({}: {})",
                describe(&input.entry),
                first.label(),
                describe(&first.entry)
            )));
        }
        shards.push(InputShard {
            dataset: input.dataset,
            shard: input.shard,
            entry: input.entry,
            columns: input.columns,
            length,
        });
    }
    Ok(shards)
}

fn describe(entry: &ShardEntry) -> String {
    entry
        .column_names
        .iter()
        .zip(&entry.column_encodings)
        .map(|(n, e)| format!("{n}:{e}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a shard's raw bytes into `buf` (the raw file when it is complete,
/// else the decompressed `.zstd` file), its sizes and recorded hashes checked
/// (so a copy never carries a fresh hash over corrupt input), and checks its
/// header.
pub fn read_shard(shard: &InputShard, buf: &mut Vec<u8>) -> Result<ShardHeader, InputError> {
    let raw_path = shard.path(&shard.entry.raw_data.basename)?;
    prolong_mds::read_shard_raw(&shard.dataset, &shard.entry, buf)?;
    let header = ShardHeader::parse(buf).map_err(|reason| InputError::BadInput {
        path: raw_path.clone(),
        reason: format!("bad shard: {reason}"),
    })?;
    if header.samples as u64 != shard.entry.samples {
        return Err(InputError::BadInput {
            path: raw_path,
            reason: format!(
                "holds {} samples, index.json says {}",
                header.samples, shard.entry.samples
            ),
        });
    }
    Ok(header)
}

/// One sample: its columns' encoded bytes and its length in tokens.
pub struct Doc<'a> {
    pub fields: Vec<&'a [u8]>,
    pub length: u64,
}

/// Calls `f(sample_index, doc)` for every sample of the shard, in order;
/// `buf` holds the shard meanwhile.
pub fn for_each_doc(
    shard: &InputShard,
    buf: &mut Vec<u8>,
    mut f: impl FnMut(usize, &Doc<'_>) -> Result<(), InputError>,
) -> Result<(), InputError> {
    let header = read_shard(shard, buf)?;
    let data: &[u8] = buf;
    for i in 0..header.samples {
        let bad = |reason: String| InputError::BadSample {
            path: shard.raw_path(),
            sample: i,
            reason,
        };
        let fields = split_sample(&shard.columns, header.sample(data, i)).map_err(&bad)?;
        let length = match shard.length {
            LengthFrom::Column(c) => {
                let value = shard.columns[c].encoding.decode(fields[c]).map_err(&bad)?;
                value
                    .as_integer()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| bad(format!("{LENGTH_COLUMN:?} is not a length: {value:?}")))?
            }
            LengthFrom::Tokens(c) => match shard.columns[c].encoding.decode(fields[c]) {
                Ok(Value::Array(a)) => a.len() as u64,
                Ok(other) => return Err(bad(format!("{TOKENS_COLUMN:?} is {other:?}"))),
                Err(reason) => return Err(bad(reason)),
            },
        };
        f(i, &Doc { fields, length })?;
    }
    Ok(())
}

/// Documents copied as they are into one dataset (filter's kept documents,
/// sample's drawn ones), counted as a task's stats count what it wrote.
pub struct DocCopier {
    writer: MdsWriter,
    copied: Copied,
}

/// What a [`DocCopier`] wrote.
#[derive(Debug, Default)]
pub struct Copied {
    pub documents: u64,
    pub tokens: u64,
    /// Their lengths.
    pub histogram: LengthHistogram,
}

impl DocCopier {
    /// A dataset in `dir` with the columns, encodings, compression and hashes
    /// of `like`'s; `size_limit` defaults to the input's.
    pub fn create(
        dir: &Path,
        like: &InputShard,
        size_limit: Option<u64>,
    ) -> Result<DocCopier, InputError> {
        let columns: Vec<(&str, &str)> = like
            .entry
            .column_names
            .iter()
            .zip(&like.entry.column_encodings)
            .map(|(n, e)| (n.as_str(), e.as_str()))
            .collect();
        let options = WriterOptions {
            compression: like.entry.compression.clone(),
            hashes: like.entry.hashes.clone(),
            size_limit: size_limit.or(like.entry.size_limit),
        };
        Ok(DocCopier {
            writer: MdsWriter::create(dir, &columns, options)?,
            copied: Copied::default(),
        })
    }

    /// Writes `doc` (sample `index` of `shard`) as is, and counts it.
    pub fn copy(
        &mut self,
        shard: &InputShard,
        index: usize,
        doc: &Doc<'_>,
    ) -> Result<(), InputError> {
        let mut values = Vec::with_capacity(shard.columns.len());
        for (column, bytes) in shard.columns.iter().zip(&doc.fields) {
            let value = column
                .encoding
                .decode(bytes)
                .map_err(|reason| InputError::BadSample {
                    path: shard.raw_path(),
                    sample: index,
                    reason: format!("column {:?}: {reason}", column.name),
                })?;
            values.push((column.name.as_str(), value));
        }
        self.writer.write(&values)?;
        self.copied.documents += 1;
        self.copied.tokens += doc.length;
        self.copied.histogram.add(doc.length);
        Ok(())
    }

    /// Finishes the dataset (its last shard and index.json).
    pub fn finish(self) -> Result<Copied, MdsError> {
        self.writer.finish()?;
        Ok(self.copied)
    }
}
