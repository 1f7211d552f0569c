//! The chat stage: conversations (UltraChat and ShareGPT layouts) to MDS with
//! a loss mask in the Llama-3 chat format, checked against the `tokenizers`
//! crate's encoding of the rendered template; skips by reason; sharded runs
//! and re-runs; pack keeps the mask and verify accepts it.

use crate::common;

use std::path::{Path, PathBuf};

use prolong_data::StageError;
use prolong_data::chat::stage::{ChatOptions, ChatOutcome, chat_task};
use prolong_data::chat::template::{ChatEncoder, ChatTokens};
use prolong_data::pack::PackOptions;
use prolong_data::task::TaskSpec;
use prolong_data::tokenize::Tokenizer;
use prolong_mds::MdsDataset;

mod format;
mod runs;

const BOS: u32 = 256;
const EOS: u32 = 257;

fn chat_tokenizer(dir: &Path) -> Tokenizer {
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, common::chat_tokenizer_json()).unwrap();
    Tokenizer::from_file(&path).unwrap()
}

fn run(
    tokenizer: &Tokenizer,
    files: &[PathBuf],
    out: &Path,
    task: TaskSpec,
    domain: &str,
) -> Result<ChatOutcome, StageError> {
    let encoder = ChatEncoder::new(tokenizer, &ChatTokens::llama3()).unwrap();
    let options = ChatOptions {
        domain: domain.into(),
        size_limit: prolong_mds::DEFAULT_SIZE_LIMIT,
        tokenizer_hash: String::new(),
    };
    chat_task(&encoder, files, task.at(out), &options, &mut |_| {})
}

/// (input_ids, mask) of every sample.
fn read_chat(dir: &Path) -> Vec<(Vec<u32>, Vec<u8>)> {
    let ds = MdsDataset::open(dir).unwrap();
    (0..ds.len())
        .map(|i| {
            let s = ds.get(i).unwrap();
            let ids = s.u32s("input_ids").unwrap().into_owned();
            let mask = s.array("mask").unwrap().as_u8().unwrap().into_owned();
            assert_eq!(s.integer("length").unwrap(), ids.len() as i128);
            assert_eq!(mask.len(), ids.len());
            (ids, mask)
        })
        .collect()
}

/// The byte tokenizer's ids of a text (one id per byte).
fn bytes(text: &str) -> Vec<u32> {
    text.bytes().map(u32::from).collect()
}
