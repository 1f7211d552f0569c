//! The Llama-3 chat format (docs/recipe.md, "SFT chat format"):
//!
//! ```text
//! <|begin_of_text|>
//! then per message: <|start_header_id|>{role}<|end_header_id|>\n\n{content.strip()}<|eot_id|>
//! ```
//!
//! The mask is 1 on the assistant's content tokens and their `<|eot_id|>`, 0
//! elsewhere. Special tokens are inserted as ids (the [`Tokenizer`] encodes
//! special-token text literally); the text between them is encoded piece by
//! piece, as the `tokenizers` crate encodes the rendered string with its
//! special tokens recognised: the role, then `\n\n` and the content as one
//! text. The content's tokens are those after the longest common prefix of
//! that text's ids with the ids of `\n\n` alone (with Llama-3's pre-tokenizer
//! `\n\n` is always a piece of its own, so this is exactly the content).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Message, Role, trim};
use crate::tokenize::{LLAMA3_BOS, LLAMA3_EOT};
use crate::tokenize::{TokenizeError, Tokenizer};

/// What separates a header from the content.
const HEADER_END: &str = "\n\n";

/// The special tokens of the format, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTokens {
    pub bos: String,
    pub start_header: String,
    pub end_header: String,
    pub end_of_turn: String,
}

impl ChatTokens {
    /// Llama-3's: `<|begin_of_text|>`, `<|start_header_id|>`,
    /// `<|end_header_id|>`, `<|eot_id|>`.
    pub fn llama3() -> ChatTokens {
        ChatTokens {
            bos: LLAMA3_BOS.text.into(),
            start_header: "<|start_header_id|>".into(),
            end_header: "<|end_header_id|>".into(),
            end_of_turn: LLAMA3_EOT.text.into(),
        }
    }

    /// The tokens a Hugging Face `tokenizer_config.json` names. Read from it:
    /// `bos_token` (a string, or an object with `content`), the BOS; and
    /// `chat_template` (a string, or a list of `{name, template}` of which
    /// the one named `default`, else the first), which must contain the
    /// header and end-of-turn tokens of the Llama-3 layout literally
    /// (`<|start_header_id|>`, `<|end_header_id|>`, `<|eot_id|>`) — the only
    /// layout written; any other template is an error. Nothing else is read
    /// (`eos_token` is not: pack appends its own EOS after each conversation).
    pub fn from_tokenizer_config(path: &Path) -> Result<ChatTokens, TemplateError> {
        let bad = |reason: String| TemplateError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let config: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let bos = match config.get("bos_token") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(o)) => match o.get("content") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(bad("bos_token has no string \"content\"".into())),
            },
            _ => return Err(bad("no bos_token (the format starts with one)".into())),
        };
        let template = match config.get("chat_template") {
            Some(Value::String(s)) => s.as_str(),
            Some(Value::Array(named)) => named
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                .or(named.first())
                .and_then(|t| t.get("template"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad("chat_template list has no template".into()))?,
            _ => return Err(bad("no chat_template".into())),
        };
        let tokens = ChatTokens {
            bos,
            ..ChatTokens::llama3()
        };
        for token in [
            &tokens.start_header,
            &tokens.end_header,
            &tokens.end_of_turn,
        ] {
            if !template.contains(token.as_str()) {
                return Err(bad(format!(
                    "chat_template does not use {token}: only the Llama-3 chat layout is written"
                )));
            }
        }
        Ok(tokens)
    }
}

/// A special token and its id in the tokenizer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialToken {
    pub text: String,
    pub id: u32,
}

/// The format's special tokens with their ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialTokens {
    pub bos: SpecialToken,
    pub start_header: SpecialToken,
    pub end_header: SpecialToken,
    pub end_of_turn: SpecialToken,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("the tokenizer has no added token {0:?}")]
    NoSuchToken(String),
    #[error(transparent)]
    Tokenizer(#[from] TokenizeError),
}

/// One conversation as the model sees it: ids, and per id 1 where it is
/// trained on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub input_ids: Vec<u32>,
    pub mask: Vec<u8>,
}

/// Encodes conversations in the Llama-3 chat format with one tokenizer.
pub struct ChatEncoder<'a> {
    tokenizer: &'a Tokenizer,
    special: SpecialTokens,
    /// The ids of each role's name, indexed by `Role as usize` ([`Role::ALL`] order).
    roles: [Vec<u32>; 3],
    header_end: Vec<u32>,
}

impl<'a> ChatEncoder<'a> {
    pub fn new(tokenizer: &'a Tokenizer, tokens: &ChatTokens) -> Result<Self, TemplateError> {
        let id = |text: &str| {
            tokenizer
                .added_token_id(text)
                .map(|id| SpecialToken {
                    text: text.into(),
                    id,
                })
                .ok_or_else(|| TemplateError::NoSuchToken(text.into()))
        };
        let special = SpecialTokens {
            bos: id(&tokens.bos)?,
            start_header: id(&tokens.start_header)?,
            end_header: id(&tokens.end_header)?,
            end_of_turn: id(&tokens.end_of_turn)?,
        };
        let roles = Role::ALL.map(|r| tokenizer.encode(r.name()));
        let [system, user, assistant] = roles;
        Ok(ChatEncoder {
            tokenizer,
            special,
            roles: [system?, user?, assistant?],
            header_end: tokenizer.encode(HEADER_END)?,
        })
    }

    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    /// Encodes conversations (their texts in parallel), in order.
    pub fn encode_batch(
        &self,
        conversations: &[Vec<Message>],
    ) -> Result<Vec<Encoded>, TemplateError> {
        let bodies: Vec<String> = conversations
            .iter()
            .flatten()
            .map(|m| format!("{HEADER_END}{}", trim(&m.content)))
            .collect();
        let mut bodies = self.tokenizer.encode_batch(&bodies)?.into_iter();
        let mut out = Vec::with_capacity(conversations.len());
        for messages in conversations {
            let mut e = Encoded {
                input_ids: vec![self.special.bos.id],
                mask: vec![0],
            };
            for m in messages {
                let body = bodies.next().expect("one body per message");
                let role = &self.roles[m.role as usize];
                let header = self.header_end.len().min(body.len());
                let content_at = (0..header)
                    .find(|&i| body[i] != self.header_end[i])
                    .unwrap_or(header);
                let trained = u8::from(m.role == Role::Assistant);
                e.push(self.special.start_header.id, 0);
                e.extend(role, 0);
                e.push(self.special.end_header.id, 0);
                e.extend(&body[..content_at], 0);
                e.extend(&body[content_at..], trained);
                e.push(self.special.end_of_turn.id, trained);
            }
            out.push(e);
        }
        Ok(out)
    }
}

impl Encoded {
    fn push(&mut self, id: u32, mask: u8) {
        self.input_ids.push(id);
        self.mask.push(mask);
    }

    fn extend(&mut self, ids: &[u32], mask: u8) {
        self.input_ids.extend_from_slice(ids);
        self.mask.resize(self.input_ids.len(), mask);
    }

    /// Tokens trained on.
    pub fn trained(&self) -> u64 {
        self.mask.iter().map(|&m| u64::from(m)).sum()
    }
}
