//! HELMET's own protocol (docs/eval-recall.md, "Sizing protocols"): instances sized
//! as HELMET's released files are, those files read as they are, and HELMET's prompt
//! text, truncation and BOS rule.
//!
//! * Sizing. JSON KV has a fixed number of records per length ([`JSON_KV_RECORDS`],
//!   HELMET's `test_k{N}_dep6.jsonl`); the RULER tasks are filled until their prompt
//!   has `L − 128` tokens in a *sizing* tokenizer (HELMET's files were made with
//!   Llama-2's, RULER's `tokens_to_generate` 128). The evaluated model's tokenizer
//!   is only used to cut the end of the context when the prompt is longer than
//!   `L − max_new_tokens` ([`ModelText::truncate`]).
//! * Prompts ([`HelmetItem::render`]): HELMET's `prompt_template` (no chat
//!   template) filled with the item's fields, byte for byte; for niah_multivalue
//!   either HELMET HEAD's plural template or the singular one the published numbers
//!   were made with ([`MvTemplate`]).
//! * Special tokens: what the tokenizer's post-processor adds (HF's
//!   `tokenizer(prompt)`), not always BOS ([`ModelText`]).

mod data_file;
mod item;
mod json;
mod model_text;
mod selection;

use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use data_file::{HelmetDataError, MAX_LINE_BYTES, data_file, read_data_file};
pub use item::{HelmetItem, SHOTS, units_of};
pub use json::{json_object_indent4, json_record_line};
pub use model_text::{ModelText, Prepared, TruncateError, instance};
pub use selection::{HELMET_SEED, helmet_selection};

/// HELMET's JSON KV records per length: `data/json_kv/test_k{N}_dep6.jsonl`
/// (N records, counted so that the prompt fits L in Llama-2 tokens).
pub const JSON_KV_RECORDS: [(usize, usize); 6] = [
    (4096, 50),
    (8192, 105),
    (16384, 220),
    (32768, 440),
    (65536, 900),
    (131072, 1800),
];

/// RULER's `tokens_to_generate` when HELMET's files were made: a RULER prompt has at
/// most `L − 128` tokens in the sizing tokenizer.
pub const RULER_SIZING_BUDGET: usize = 128;

/// JSON KV's records at `length`; `None` for a length HELMET has no file for.
pub fn json_kv_records(length: usize) -> Option<usize> {
    JSON_KV_RECORDS
        .iter()
        .find(|&&(l, _)| l == length)
        .map(|&(_, k)| k)
}

/// How instances are made and sized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Filled to 0.9 L … L − budget in the evaluated model's tokenizer, BOS first.
    #[default]
    Fill,
    /// As HELMET's files: see the module docs.
    Helmet,
}

impl Protocol {
    pub const ALL: [Protocol; 2] = [Protocol::Fill, Protocol::Helmet];

    pub fn is_fill(&self) -> bool {
        *self == Protocol::Fill
    }

    /// `--protocol`'s name (the serde name too).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Fill => "fill",
            Protocol::Helmet => "helmet",
        }
    }
}

/// niah_multivalue's prompt wording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MvTemplate {
    /// HELMET HEAD (since its commit of 2025-02-06): RULER's plural template,
    /// "Some special magic numbers are hidden …".
    #[default]
    Head,
    /// The singular template with the plural noun, as HELMET's code had it when the
    /// published ProLong and HELMET numbers were made: "A special magic numbers is
    /// hidden …" (a model that lists one of the four values scores 0.25).
    Paper,
}

/// A name that is no protocol or template, and the names there are.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not one of: {1}")]
pub struct UnknownName(pub String, pub String);

/// The value of `all` whose `name` is `s`: one name table (`name`) serves for parsing
/// and for printing.
fn by_name<T: Copy>(s: &str, all: &[T], name: fn(T) -> &'static str) -> Result<T, UnknownName> {
    all.iter().copied().find(|&t| name(t) == s).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|&t| name(t)).collect();
        UnknownName(s.to_owned(), names.join(", "))
    })
}

impl FromStr for Protocol {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Protocol, UnknownName> {
        by_name(s, &Protocol::ALL, Protocol::name)
    }
}

impl FromStr for MvTemplate {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<MvTemplate, UnknownName> {
        by_name(s, &MvTemplate::ALL, MvTemplate::name)
    }
}

impl MvTemplate {
    pub const ALL: [MvTemplate; 2] = [MvTemplate::Head, MvTemplate::Paper];

    /// `--mv-template`'s name (the serde name too).
    pub fn name(self) -> &'static str {
        match self {
            MvTemplate::Head => "head",
            MvTemplate::Paper => "paper",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_table_and_names() {
        assert_eq!(json_kv_records(131072), Some(1800));
        assert_eq!(json_kv_records(4096), Some(50));
        assert_eq!(json_kv_records(2048), None);
        assert_eq!("paper".parse::<MvTemplate>().unwrap(), MvTemplate::Paper);
        let e = "fil".parse::<Protocol>().unwrap_err();
        assert_eq!(e.to_string(), r#""fil" is not one of: fill, helmet"#);
        let e = "heads".parse::<MvTemplate>().unwrap_err();
        assert_eq!(e.to_string(), r#""heads" is not one of: head, paper"#);
        for p in Protocol::ALL {
            assert_eq!(p.name().parse::<Protocol>().unwrap(), p);
            let serde_name = serde_json::to_value(p).unwrap();
            assert_eq!(serde_name, p.name(), "the CLI name is the serde name");
        }
        for m in MvTemplate::ALL {
            assert_eq!(m.name().parse::<MvTemplate>().unwrap(), m);
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
        }
    }
}
