//! Recall generators, checks, scorers and reports (docs/eval-recall.md).
//!
//! Sizing and checks run with a byte-level tokenizer written here (no fixtures) and,
//! when fixtures/cache holds them, with the Llama-3 tokenizer and the KJV (skipping
//! with a message otherwise).

use std::collections::HashSet;
use std::path::PathBuf;

use crate::recall_common::{
    BOS, EOS, SMALL_PROSE, bpe_tokenizer_json, byte_tokenizer, byte_tokenizer_json, fixture,
    llama3, small_prose, succeeded,
};
use prolong_eval::recall::checks::check_helmet_instance;
use prolong_eval::recall::checks::{CheckError, check_answers, check_budget};
use prolong_eval::recall::fit::{FitError, Haystack, fit};
use prolong_eval::recall::generate::{HelmetSources, generate_helmet_all, helmet_item};
use prolong_eval::recall::helmet::{HelmetItem, ModelText, MvTemplate, Protocol, helmet_selection};
use prolong_eval::recall::instance::{read_jsonl, to_jsonl};
use prolong_eval::recall::json_kv::DEPTHS;
use prolong_eval::recall::score::{json_kv_match, normalize, ruler_recall};
use prolong_eval::recall::values::WordLists;
use prolong_eval::recall::{
    Instance, Plan, RecallReport, Scored, Table, Task, check_instance, generate, generate_all,
    score,
};
use prolong_tokenizer::Tokenizer;

mod generation;
mod helmet;
mod helmet_python;
mod report;
mod scoring;

/// The byte tokenizer with a post-processor that puts BOS before and EOS after the text.
fn bos_eos_tokenizer_json() -> serde_json::Value {
    let mut json: serde_json::Value = serde_json::from_str(&byte_tokenizer_json()).unwrap();
    let special =
        |name: &str, id: u32| serde_json::json!({"id": name, "ids": [id], "tokens": [name]});
    json["post_processor"] = serde_json::json!({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                   {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "<|end_of_text|>", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|begin_of_text|>": special("<|begin_of_text|>", BOS),
                           "<|end_of_text|>": special("<|end_of_text|>", EOS)}
    });
    json
}
