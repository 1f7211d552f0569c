//! The evaluated model's tokenizer, as HF's `tokenizer(text)` uses it: the
//! special tokens its post-processor adds, and HELMET's truncation of a
//! prompt that is over length.

use prolong_tokenizer::{TokenizeError, Tokenizer, reference_tokenizer};
use serde_json::Value;

use super::{HelmetItem, MvTemplate, Protocol};
use crate::recall::instance::Instance;

/// The model's tokenizer with the special tokens its post-processor adds around a
/// text, and character offsets for truncation.
pub struct ModelText<'t> {
    tok: &'t Tokenizer,
    /// The `tokenizers` crate's tokenizer (offsets, special tokens).
    reference: tokenizers::Tokenizer,
    /// Ids before and after the text's (e.g. BOS; none for Qwen's tokenizer).
    pub prefix: Vec<u32>,
    pub suffix: Vec<u32>,
}

/// A prompt that cannot be cut to the length.
#[derive(Debug, thiserror::Error)]
pub enum TruncateError {
    #[error(
        "the prompt has {prompt_tokens} tokens; cutting the {truncate} over length {length} − {budget} would cut more than the context's {context_tokens}"
    )]
    ContextTooShort {
        prompt_tokens: usize,
        truncate: usize,
        context_tokens: usize,
        length: usize,
        budget: usize,
    },
    #[error("length {length} is not longer than the generation budget {budget}")]
    NoRoom { length: usize, budget: usize },
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
}

/// A prompt as HELMET feeds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub prompt: String,
    /// Tokens of the prompt with the tokenizer's special tokens.
    pub tokens: usize,
    /// Tokens cut from the end of the context (0: not truncated).
    pub truncated: usize,
}

impl<'t> ModelText<'t> {
    /// `tok` and the tokenizer.json it was loaded from.
    pub fn new(tok: &'t Tokenizer, json: &[u8]) -> Result<ModelText<'t>, TokenizeError> {
        let reference = reference_tokenizer(json)?;
        let encode = |special: bool| -> Result<Vec<u32>, TokenizeError> {
            reference
                .encode("a", special)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| TokenizeError::Reference(e.to_string()))
        };
        let (with, plain) = (encode(true)?, encode(false)?);
        // The text's ids sit somewhere inside the ids with special tokens.
        let at = (0..=with.len().saturating_sub(plain.len()))
            .find(|&i| with[i..].starts_with(&plain))
            .ok_or_else(|| {
                TokenizeError::Invalid(
                    "the post-processor changes the text's own tokens (cannot tell its special tokens)".into(),
                )
            })?;
        Ok(ModelText {
            tok,
            prefix: with[..at].to_vec(),
            suffix: with[at + plain.len()..].to_vec(),
            reference,
        })
    }

    /// HF's rule for tokenizer classes whose tokenizer_config.json decides the
    /// special tokens (Llama's, CodeLlama's and Gemma's rebuild the post-processor
    /// from `add_bos_token`, default true, and `add_eos_token`, default false); other
    /// classes keep tokenizer.json's post-processor. `config` is tokenizer_config.json.
    pub fn apply_tokenizer_config(&mut self, config: &Value) -> Result<(), TokenizeError> {
        const REBUILT: [&str; 6] = [
            "LlamaTokenizer",
            "LlamaTokenizerFast",
            "CodeLlamaTokenizer",
            "CodeLlamaTokenizerFast",
            "GemmaTokenizer",
            "GemmaTokenizerFast",
        ];
        let class = config.get("tokenizer_class").and_then(Value::as_str);
        if !class.is_some_and(|c| REBUILT.contains(&c)) {
            return Ok(());
        }
        let flag =
            |key: &str, default: bool| config.get(key).and_then(Value::as_bool).unwrap_or(default);
        let id_of = |key: &str| -> Result<Vec<u32>, TokenizeError> {
            let token = match config.get(key) {
                Some(Value::String(s)) => Some(s.as_str()),
                Some(v) => v.get("content").and_then(Value::as_str),
                None => None,
            };
            let id = token.and_then(|t| self.tok.added_token_id(t)).ok_or_else(|| {
                TokenizeError::Invalid(format!(
                    "tokenizer_config.json: {key} {token:?} is not an added token of tokenizer.json"
                ))
            })?;
            Ok(vec![id])
        };
        let prefix = if flag("add_bos_token", true) {
            id_of("bos_token")?
        } else {
            Vec::new()
        };
        let suffix = if flag("add_eos_token", false) {
            id_of("eos_token")?
        } else {
            Vec::new()
        };
        self.prefix = prefix;
        self.suffix = suffix;
        Ok(())
    }

    /// The ids HF's `tokenizer(prompt)` gives: special tokens and the text's.
    pub fn ids(&self, prompt: &str) -> Result<Vec<u32>, TokenizeError> {
        let mut ids = self.prefix.clone();
        self.tok.encode_into(prompt, &mut ids)?;
        ids.extend_from_slice(&self.suffix);
        Ok(ids)
    }

    /// Tokens of `prompt` with special tokens.
    pub fn count(&self, prompt: &str) -> Result<usize, TokenizeError> {
        Ok(self.prefix.len() + self.tok.encode(prompt)?.len() + self.suffix.len())
    }

    /// HELMET's `tokenize()` for an HF model without chat template: when the prompt's
    /// tokens exceed `length − budget` by t, the context is cut before the start of its
    /// t-th token from the end (counting the special tokens `tokenizer(context)` adds:
    /// one of those has offset 0, and the context becomes empty), and the prompt is
    /// made again once (not checked again, as in HELMET).
    pub fn truncate(
        &self,
        item: &HelmetItem,
        mv: MvTemplate,
        length: usize,
        budget: usize,
    ) -> Result<Prepared, TruncateError> {
        let limit = length
            .checked_sub(budget)
            .filter(|&l| l > 0)
            .ok_or(TruncateError::NoRoom { length, budget })?;
        let prompt = item.render(&item.context, mv);
        let tokens = self.count(&prompt)?;
        if tokens <= limit {
            return Ok(Prepared {
                prompt,
                tokens,
                truncated: 0,
            });
        }
        let truncate = tokens - limit;
        let enc = self
            .reference
            .encode(item.context.as_str(), false)
            .map_err(|e| TokenizeError::Reference(e.to_string()))?;
        let offsets = enc.get_offsets();
        let (p, m) = (self.prefix.len(), offsets.len());
        let all = p + m + self.suffix.len();
        let Some(at) = all.checked_sub(truncate) else {
            return Err(TruncateError::ContextTooShort {
                prompt_tokens: tokens,
                truncate,
                context_tokens: all,
                length,
                budget,
            });
        };
        let cut = if (p..p + m).contains(&at) {
            offsets[at - p].0
        } else {
            0
        };
        // A byte-level token inside a character is given the character's offsets.
        let mut cut = cut.min(item.context.len());
        while !item.context.is_char_boundary(cut) {
            cut -= 1;
        }
        let prompt = item.render(&item.context[..cut], mv);
        let tokens = self.count(&prompt)?;
        Ok(Prepared {
            prompt,
            tokens,
            truncated: truncate,
        })
    }
}

/// An instance of `item`: its prompt as HELMET feeds it to a model of `length`.
#[allow(clippy::too_many_arguments)]
pub fn instance(
    item: &HelmetItem,
    mv: MvTemplate,
    length: usize,
    sample: usize,
    seed: u64,
    depths: Vec<f64>,
    haystack_units: usize,
    model: &ModelText,
) -> Result<Instance, TruncateError> {
    let budget = item.task.max_new_tokens();
    let prepared = model.truncate(item, mv, length, budget)?;
    Ok(Instance {
        task: item.task,
        length,
        sample,
        seed,
        input: prepared.prompt,
        answers: item.answers.clone(),
        query: item.query.clone(),
        depths,
        max_new_tokens: budget,
        prompt_tokens: prepared.tokens,
        haystack_units,
        protocol: Protocol::Helmet,
        truncated_tokens: prepared.truncated,
    })
}
