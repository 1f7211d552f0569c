//! Special tokens: the control tokens the recipe writes around documents and
//! chat turns, each with its id and its text (both are needed: packing writes
//! ids, chat templates and evaluation prompts write text).

/// A special token of a tokenizer: its id and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialToken {
    pub id: u32,
    pub text: &'static str,
}

/// Llama-3's `<|begin_of_text|>`, which starts every document.
pub const LLAMA3_BOS: SpecialToken = SpecialToken {
    id: 128_000,
    text: "<|begin_of_text|>",
};
/// Llama-3's `<|end_of_text|>`, which ends a document.
pub const LLAMA3_EOS: SpecialToken = SpecialToken {
    id: 128_001,
    text: "<|end_of_text|>",
};
/// Llama-3's `<|eot_id|>`, which ends a chat turn.
pub const LLAMA3_EOT: SpecialToken = SpecialToken {
    id: 128_009,
    text: "<|eot_id|>",
};
