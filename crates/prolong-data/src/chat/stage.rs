//! The chat stage: conversations in, tokenized MDS out —
//! `{domain str, input_ids ndarray:uint32, length int, mask ndarray:uint8}`,
//! each conversation one sample in the Llama-3 chat format
//! ([`super::template`]): starting with BOS, no EOS (pack appends it, with
//! mask 0, as it does to every document).
//!
//! Output layout of a `--rank R --world-size N` run (as tokenize's; see
//! [`crate::task`]): task R takes input files R, R+N, ...
//!
//! ```text
//! OUT/procR-N/index.json, shard.*.mds    task R's conversations, in input order
//! OUT/procR-N.stats.json                 ChatStats
//! OUT/procR-N.done                       completion marker, last
//! OUT/index.json                         merged once every task is done
//! ```
//!
//! A task whose marker exists is skipped after checking that it read the
//! same files with the same domain and special tokens; one without is redone
//! from scratch, byte for byte.

use std::path::{Path, PathBuf};

use prolong_mds::{Array, MdsWriter, Value, WriterOptions};
use prolong_packed::columns;
use serde::{Deserialize, Serialize};

use super::template::{ChatEncoder, SpecialTokens};
use super::{Message, parse_conversation};
use crate::StageError;
use crate::documents::{JsonLine, SkipCounts, read_json_lines};
use crate::task::{LengthHistogram, Task};
use crate::tokenize::stage::{Batch, OnBytes, SkipCountsRecord};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatOptions {
    /// The `domain` of every output sample.
    pub domain: String,
    /// MDS shard size limit in bytes.
    pub size_limit: u64,
    /// Which tokenizer encodes ([`crate::tokenize::stage::tokenizer_hash`];
    /// empty: not recorded).
    #[serde(default)]
    pub tokenizer_hash: String,
}

/// What a task's marker records (see [`Task::check_output`]).
#[derive(Serialize)]
struct ChatSettings<'a> {
    files: &'a [PathBuf],
    special_tokens: &'a SpecialTokens,
    #[serde(flatten)]
    options: &'a ChatOptions,
}

/// What one task did: its stats file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatStats {
    pub task: String,
    pub files: Vec<PathBuf>,
    pub domain: String,
    pub special_tokens: Option<SpecialTokens>,
    /// JSON lines read (blank lines aside).
    pub conversations_in: u64,
    pub conversations_out: u64,
    pub messages: u64,
    pub tokens: u64,
    /// Tokens with mask 1: the assistant's content and end-of-turn tokens.
    pub trained_tokens: u64,
    /// By reason: the readers' (`malformed_json`, `invalid_utf8`,
    /// `corrupt_stream`) and chat's (`no_messages`, `empty_conversation`,
    /// `unknown_role`, `empty_content`, `no_assistant_turn`).
    pub skipped: SkipCountsRecord,
    pub length_histogram: LengthHistogram,
}

/// What [`chat_task`] did.
#[derive(Debug, Clone)]
pub struct ChatOutcome {
    pub stats: ChatStats,
    /// The task had been completed before and was not redone.
    pub skipped: bool,
}

/// Runs task `task` of a chat run over `files` (expanded by
/// [`crate::tokenize::stage::input_files`]) into its folder.
pub fn chat_task(
    encoder: &ChatEncoder<'_>,
    files: &[PathBuf],
    task: Task<'_>,
    options: &ChatOptions,
    on_progress: &mut OnBytes<'_>,
) -> Result<ChatOutcome, StageError> {
    let mine: Vec<PathBuf> = task.spec.take(files).cloned().collect();
    let settings = ChatSettings {
        files,
        special_tokens: encoder.special_tokens(),
        options,
    };
    task.check_output(files, &settings)?;
    if task.is_done() {
        let stats = completed_stats(encoder, &mine, task, options)?;
        task.merge_if_complete()?;
        return Ok(ChatOutcome {
            stats,
            skipped: true,
        });
    }
    let dir = task.clear_output()?;
    let writer = MdsWriter::create(
        &dir,
        &[
            columns::TOKENIZED[0],
            columns::TOKENIZED[1],
            columns::TOKENIZED[2],
            columns::MASK_COLUMN,
        ],
        WriterOptions::default().size_limit(options.size_limit),
    )?;
    let mut output = Output {
        encoder,
        writer,
        domain: &options.domain,
        stats: ChatStats {
            task: task.spec.name(),
            files: mine.clone(),
            domain: options.domain.clone(),
            special_tokens: Some(encoder.special_tokens().clone()),
            ..Default::default()
        },
        batch: Batch::default(),
    };
    let mut skipped = SkipCounts::default();
    let mut done_bytes = 0;
    for file in &mine {
        read_file(file, &mut output, &mut skipped)?;
        done_bytes += std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        on_progress(done_bytes);
    }
    output.flush()?;
    let Output {
        writer, mut stats, ..
    } = output;
    writer.finish()?;
    stats.skipped = (&skipped).into();
    task.complete(&stats, &settings)?;
    task.merge_if_complete()?;
    Ok(ChatOutcome {
        stats,
        skipped: false,
    })
}

/// Feeds one file's conversations to `output`, counting what is skipped.
fn read_file(
    file: &Path,
    output: &mut Output<'_, '_>,
    skipped: &mut SkipCounts,
) -> Result<(), StageError> {
    let (mut objects, mut without_messages) = (0u64, 0u64);
    let mut first_keys = None;
    for record in read_json_lines(file)? {
        output.stats.conversations_in += 1;
        let JsonLine { line, object } = match record {
            Ok(l) => l,
            Err(skip) => {
                skipped.add(&skip);
                continue;
            }
        };
        objects += 1;
        first_keys.get_or_insert_with(|| object.keys().cloned().collect::<Vec<_>>().join(", "));
        match parse_conversation(&object) {
            Ok(messages) => output.push(messages)?,
            Err((why, detail)) => {
                if why == super::ChatSkip::NoMessages {
                    without_messages += 1;
                }
                let example = format!("{}:{line}: {} ({detail})", file.display(), why.name());
                skipped.add_with_example(why.name(), example);
            }
        }
    }
    if objects > 0 && without_messages == objects {
        return Err(StageError::NotChat {
            path: file.to_path_buf(),
            lines: objects,
            keys: first_keys.unwrap_or_default(),
        });
    }
    Ok(())
}

/// The stats of a completed task, checked against this run's request.
fn completed_stats(
    encoder: &ChatEncoder<'_>,
    mine: &[PathBuf],
    task: Task<'_>,
    options: &ChatOptions,
) -> Result<ChatStats, StageError> {
    let changed = |reason: String| StageError::changed(task, reason);
    let stats: ChatStats = task
        .read_stats()
        .ok_or_else(|| changed("its stats file is unreadable".into()))?;
    if stats.files != mine {
        return Err(changed(format!("it read {:?}", stats.files)));
    }
    if stats.domain != options.domain {
        return Err(changed(format!("its domain was {:?}", stats.domain)));
    }
    if stats.special_tokens.as_ref() != Some(encoder.special_tokens()) {
        return Err(changed(format!(
            "its special tokens were {:?}",
            stats.special_tokens
        )));
    }
    Ok(stats)
}

/// Conversations on their way out: gathered into batches, encoded a batch at
/// a time in input order, written, and counted.
struct Output<'e, 'a> {
    encoder: &'e ChatEncoder<'e>,
    writer: MdsWriter,
    domain: &'a str,
    stats: ChatStats,
    batch: Batch<Vec<Message>>,
}

impl Output<'_, '_> {
    fn push(&mut self, messages: Vec<Message>) -> Result<(), StageError> {
        let bytes = messages.iter().map(|m| m.content.len()).sum();
        if self.batch.push(messages, bytes) {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StageError> {
        let batch = self.batch.take();
        for (messages, encoded) in batch.iter().zip(self.encoder.encode_batch(&batch)?) {
            let n = encoded.input_ids.len();
            self.writer.write(&[
                (columns::DOMAIN, Value::Str(self.domain.into())),
                (
                    columns::INPUT_IDS,
                    Value::Array(Array::from_u32(&encoded.input_ids)),
                ),
                (columns::LENGTH, Value::Int(n as i64)),
                (columns::MASK, Value::Array(Array::from_u8(&encoded.mask))),
            ])?;
            self.stats.conversations_out += 1;
            self.stats.messages += messages.len() as u64;
            self.stats.tokens += n as u64;
            self.stats.trained_tokens += encoded.trained();
            self.stats.length_histogram.add(n as u64);
        }
        Ok(())
    }
}
