//! The tokenize stage: documents (JSONL, JSONL.gz, JSONL.zst, .txt) in,
//! tokenized MDS out: `{domain str, input_ids ndarray:uint32, length int}`,
//! no BOS/EOS (packing adds them).
//!
//! Task R reads input files R, R+N, ...; with `group_by_repo` every task
//! reads every file and keeps the repositories that hash to it (see
//! [`crate::documents::group`]).
//!
//! Output layout of a `--rank R --world-size N` run (see [`crate::task`]):
//!
//! ```text
//! OUT/procR-N/index.json, shard.*.mds    task R's documents, in input order
//! OUT/procR-N.stats.json                 TokenizeStats
//! OUT/procR-N.done                       completion marker, last
//! OUT/index.json                         merged once every task is done
//! ```

use std::path::{Path, PathBuf};

use prolong_mds::{Array, MdsWriter, Value, WriterOptions};
use prolong_packed::columns;
use serde::{Deserialize, Serialize};

use super::Tokenizer;
use crate::StageError;
use crate::documents::{DocumentError, Fields, SkipCounts, SkipReason, read_documents};
use crate::task::{LengthHistogram, Task};

/// Documents longer than this are encoded alone, split at pre-tokenizer
/// boundaries over all threads; shorter ones are encoded a batch at a time,
/// one document per thread.
const LONG_DOCUMENT_BYTES: usize = 1 << 20;
/// Text gathered before a batch is encoded.
const BATCH_BYTES: usize = 16 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenizeOptions {
    /// The `domain` of every output document.
    pub domain: String,
    /// Which fields hold the text and the id, and which rows are kept.
    #[serde(flatten)]
    pub fields: Fields,
    /// MDS shard size limit in bytes.
    pub size_limit: u64,
    /// Which tokenizer encodes: [`tokenizer_hash`] of its tokenizer.json,
    /// recorded with each task's marker so that a re-run with another
    /// tokenizer is refused (empty: not recorded).
    #[serde(default)]
    pub tokenizer_hash: String,
}

/// What identifies a tokenizer.json: a hash of its bytes (not its path, so a
/// copy elsewhere is the same tokenizer).
pub fn tokenizer_hash(path: &Path) -> Result<String, StageError> {
    let bytes = std::fs::read(path).map_err(|err| StageError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    Ok(format!("xxh3:{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)))
}

/// What a task's marker records (see [`Task::check_output`]).
#[derive(Serialize)]
pub struct TokenizeSettings<'a> {
    pub files: &'a [PathBuf],
    #[serde(flatten)]
    pub options: &'a TokenizeOptions,
}

impl Default for TokenizeOptions {
    fn default() -> Self {
        TokenizeOptions {
            domain: String::new(),
            fields: Fields::default(),
            size_limit: prolong_mds::DEFAULT_SIZE_LIMIT,
            tokenizer_hash: String::new(),
        }
    }
}

/// What one task did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TokenizeStats {
    pub task: String,
    pub files: Vec<PathBuf>,
    pub documents_in: u64,
    pub documents_out: u64,
    pub tokens: u64,
    pub text_bytes: u64,
    pub skipped: SkipCountsRecord,
    pub length_histogram: LengthHistogram,
    /// Whether the fast byte-level BPE encoder was used.
    pub fast_encoder: bool,
}

/// Skip counts as stored in the stats file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SkipCountsRecord {
    pub by_reason: std::collections::BTreeMap<String, u64>,
    pub examples: Vec<String>,
}

impl From<&SkipCounts> for SkipCountsRecord {
    fn from(s: &SkipCounts) -> Self {
        SkipCountsRecord {
            by_reason: s.by_reason.clone(),
            examples: s.examples.clone(),
        }
    }
}

/// Expands folders into the input files under them, in sorted path order.
/// A folder's stats files (see [`crate::task::STATS_SUFFIX`]) are passed over:
/// `repos` writes its stats beside its documents, and tokenizing that folder
/// must not read them as JSON documents. A file named on its own is always read.
pub fn input_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, StageError> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            for entry in walkdir::WalkDir::new(input).sort_by_file_name() {
                let entry = entry.map_err(|e| StageError::Io {
                    path: e
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| input.clone()),
                    err: e.into(),
                })?;
                let bookkeeping = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.ends_with(crate::task::STATS_SUFFIX));
                if entry.file_type().is_file()
                    && !bookkeeping
                    && crate::documents::Format::of(entry.path()).is_some()
                {
                    files.push(entry.into_path());
                }
            }
        } else {
            files.push(input.clone());
        }
    }
    if files.is_empty() {
        return Err(StageError::NoInputs(inputs.to_vec()));
    }
    Ok(files)
}

/// Documents (or conversations) gathered until they hold [`BATCH_BYTES`] of
/// text, then encoded together: the tokenize and chat stages' batching.
pub(crate) struct Batch<T> {
    items: Vec<T>,
    bytes: usize,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Batch {
            items: Vec::new(),
            bytes: 0,
        }
    }
}

impl<T> Batch<T> {
    /// Adds `item`, which holds `bytes` of text; true once the batch is full.
    pub(crate) fn push(&mut self, item: T, bytes: usize) -> bool {
        self.bytes += bytes;
        self.items.push(item);
        self.bytes >= BATCH_BYTES
    }

    /// The items gathered, leaving the batch empty.
    pub(crate) fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        std::mem::take(&mut self.items)
    }
}

/// Progress of a task (tokenize's and chat's), for progress bars: bytes of
/// input files finished (the caller knows the total: the files' sizes).
pub type OnBytes<'a> = dyn FnMut(u64) + 'a;

/// Checks that the task's output folder and its markers suit a run over
/// `files` with `options` (see [`Task::check_output`]); if the task is done,
/// merges the run's index when the run is complete and the index missing,
/// and returns true.
/// What [`tokenize_task`] does first, for callers that skip a completed task
/// without loading the tokenizer.
pub fn finish_if_done(
    files: &[PathBuf],
    task: Task<'_>,
    options: &TokenizeOptions,
) -> Result<bool, StageError> {
    task.check_output(files, &TokenizeSettings { files, options })?;
    if !task.is_done() {
        return Ok(false);
    }
    task.merge_if_complete()?;
    Ok(true)
}

/// Runs task `task` over `files` (already expanded by [`input_files`]).
/// Returns `None` when the task had been completed before (after checking
/// that it was made with the same files and options, and merging the run's
/// index if it is complete and the index missing).
pub fn tokenize_task(
    tokenizer: &Tokenizer,
    files: &[PathBuf],
    task: Task<'_>,
    options: &TokenizeOptions,
    on_progress: &mut OnBytes<'_>,
) -> Result<Option<TokenizeStats>, StageError> {
    if finish_if_done(files, task, options)? {
        return Ok(None);
    }
    let settings = TokenizeSettings { files, options };
    // A task without its marker is redone from scratch.
    let dir = task.clear_output()?;
    let writer = MdsWriter::create(
        &dir,
        &columns::TOKENIZED,
        WriterOptions::default().size_limit(options.size_limit),
    )?;
    let mut output = Output {
        tokenizer,
        writer,
        domain: &options.domain,
        stats: TokenizeStats {
            task: task.spec.name(),
            fast_encoder: tokenizer.is_fast(),
            ..Default::default()
        },
        skipped: SkipCounts::default(),
        batch: Batch::default(),
    };
    output.stats.files = if options.fields.group.is_some() {
        files.to_vec()
    } else {
        task.spec.take(files).cloned().collect()
    };
    // Records count in `documents_in` (each skip, each document).
    let mut add = |record: crate::documents::Record| -> Result<(), StageError> {
        output.stats.documents_in += 1;
        match record {
            // Not one bad record but a file that cannot be read: an error.
            Err(skip) if skip.reason == SkipReason::MalformedXml => {
                return Err(DocumentError::Malformed(skip).into());
            }
            Err(skip) => output.skipped.add(&skip),
            Ok(doc) => output.push(doc.text)?,
        }
        Ok(())
    };
    if options.fields.group.is_some() {
        let scratch = task.out.join(format!(".{}.groups", task.spec.name()));
        crate::documents::group::for_each_repository(
            files,
            &options.fields,
            task.spec,
            &scratch,
            on_progress,
            &mut add,
        )?;
    } else {
        let mut done_bytes = 0;
        for file in task.spec.take(files) {
            for record in read_documents(file, &options.fields)? {
                add(record)?;
            }
            done_bytes += std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
            on_progress(done_bytes);
        }
    }
    output.flush()?;
    let Output {
        writer,
        mut stats,
        skipped,
        ..
    } = output;
    writer.finish()?;
    stats.skipped = (&skipped).into();
    task.complete(&stats, &settings)?;
    task.merge_if_complete()?;
    Ok(Some(stats))
}

/// Documents on their way out: gathered into batches, encoded a batch at a
/// time in input order, written, and counted.
struct Output<'a> {
    tokenizer: &'a Tokenizer,
    writer: MdsWriter,
    domain: &'a str,
    stats: TokenizeStats,
    skipped: SkipCounts,
    batch: Batch<String>,
}

impl Output<'_> {
    fn push(&mut self, text: String) -> Result<(), StageError> {
        let bytes = text.len();
        if self.batch.push(text, bytes) {
            self.flush()?;
        }
        Ok(())
    }

    /// Encodes the batch and writes it; documents that encode to no tokens
    /// are skipped as empty.
    fn flush(&mut self) -> Result<(), StageError> {
        let batch = self.batch.take();
        let (long, short): (Vec<usize>, Vec<usize>) =
            (0..batch.len()).partition(|&i| batch[i].len() >= LONG_DOCUMENT_BYTES);
        let short_texts: Vec<&str> = short.iter().map(|&i| batch[i].as_str()).collect();
        let mut encoded: Vec<Vec<u32>> = vec![Vec::new(); batch.len()];
        for (&i, ids) in short.iter().zip(self.tokenizer.encode_batch(&short_texts)?) {
            encoded[i] = ids;
        }
        for &i in &long {
            encoded[i] = self.tokenizer.encode_long(&batch[i])?;
        }
        for (text, ids) in batch.iter().zip(encoded) {
            self.stats.text_bytes += text.len() as u64;
            if ids.is_empty() {
                self.skipped.add_reason("no_tokens");
                continue;
            }
            self.writer.write(&[
                (columns::DOMAIN, Value::Str(self.domain.into())),
                (columns::INPUT_IDS, Value::Array(Array::from_u32(&ids))),
                (columns::LENGTH, Value::Int(ids.len() as i64)),
            ])?;
            self.stats.documents_out += 1;
            self.stats.tokens += ids.len() as u64;
            self.stats.length_histogram.add(ids.len() as u64);
        }
        Ok(())
    }
}
