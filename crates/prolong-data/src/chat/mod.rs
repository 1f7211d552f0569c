//! Chat data for SFT: conversations in (JSONL, `.jsonl.gz`, `.jsonl.zst`),
//! tokenized MDS with a loss mask out, in the Llama-3 chat format (see
//! [`template`]); and a small chat set generated from plain texts (see
//! [`synth`]).
//!
//! A conversation is a JSON object per line, in one of two layouts
//! (schemas/chat.schema.json):
//!
//! ```text
//! {"messages": [{"role": "user", "content": "..."}, ...]}        UltraChat, OpenAI
//! {"conversations": [{"from": "human", "value": "..."}, ...]}    ShareGPT
//! ```
//!
//! Roles: `user`/`human` → user, `assistant`/`gpt`/`chatgpt` → assistant,
//! `system` → system (exact, lower case). `messages` wins when a line has both.

pub mod stage;
pub mod synth;
pub mod template;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who speaks a message; [`Role::name`] is what the chat header holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::System, Role::User, Role::Assistant];

    pub fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// A role as UltraChat or ShareGPT writes it.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "system" => Some(Role::System),
            "user" | "human" => Some(Role::User),
            "assistant" | "gpt" | "chatgpt" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// One turn: the `messages` layout is what `chat-synth` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// Why a conversation was skipped, as it appears in the stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatSkip {
    /// Neither a `messages` nor a `conversations` array.
    NoMessages,
    /// An empty array.
    EmptyConversation,
    /// A message that is not an object, or whose role is missing or unknown.
    UnknownRole,
    /// A message whose content is missing, not a string, or only whitespace.
    EmptyContent,
    /// No message by the assistant: nothing to train on.
    NoAssistantTurn,
}

impl ChatSkip {
    pub fn name(self) -> &'static str {
        match self {
            ChatSkip::NoMessages => "no_messages",
            ChatSkip::EmptyConversation => "empty_conversation",
            ChatSkip::UnknownRole => "unknown_role",
            ChatSkip::EmptyContent => "empty_content",
            ChatSkip::NoAssistantTurn => "no_assistant_turn",
        }
    }
}

/// The messages of one JSON line, or why it is skipped (with a detail).
pub fn parse_conversation(object: &Map<String, Value>) -> Result<Vec<Message>, (ChatSkip, String)> {
    let (turns, role_key, content_key) = match (object.get("messages"), object.get("conversations"))
    {
        (Some(Value::Array(turns)), _) => (turns, "role", "content"),
        (_, Some(Value::Array(turns))) => (turns, "from", "value"),
        _ => {
            return Err((
                ChatSkip::NoMessages,
                "no \"messages\" or \"conversations\" array".into(),
            ));
        }
    };
    if turns.is_empty() {
        return Err((ChatSkip::EmptyConversation, "no messages".into()));
    }
    let mut messages = Vec::with_capacity(turns.len());
    for (i, turn) in turns.iter().enumerate() {
        let Some(turn) = turn.as_object() else {
            return Err((
                ChatSkip::UnknownRole,
                format!("message {i} is not an object"),
            ));
        };
        let role = match turn.get(role_key) {
            Some(Value::String(name)) => Role::parse(name)
                .ok_or_else(|| (ChatSkip::UnknownRole, format!("message {i}: role {name:?}")))?,
            _ => {
                return Err((
                    ChatSkip::UnknownRole,
                    format!("message {i} has no string {role_key:?}"),
                ));
            }
        };
        let content = match turn.get(content_key) {
            Some(Value::String(text)) if !trim(text).is_empty() => text.clone(),
            Some(Value::String(_)) => {
                return Err((ChatSkip::EmptyContent, format!("message {i} is empty")));
            }
            _ => {
                return Err((
                    ChatSkip::EmptyContent,
                    format!("message {i} has no string {content_key:?}"),
                ));
            }
        };
        messages.push(Message { role, content });
    }
    if !messages.iter().any(|m| m.role == Role::Assistant) {
        return Err((ChatSkip::NoAssistantTurn, "no assistant message".into()));
    }
    Ok(messages)
}

/// `text` without leading and trailing whitespace as Python's `str.strip()`
/// (and Jinja's `trim`) define it: Unicode White_Space plus the separators
/// U+001C..U+001F, which Rust's `char::is_whitespace` leaves.
pub fn trim(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Vec<Message>, ChatSkip> {
        let v: Value = serde_json::from_str(json).unwrap();
        parse_conversation(v.as_object().unwrap()).map_err(|(skip, _)| skip)
    }

    #[test]
    fn both_layouts_map_their_roles() {
        let sharegpt = parse(
            r#"{"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}, {"from": "chatgpt", "value": "b"}]}"#,
        )
        .unwrap();
        let roles: Vec<Role> = sharegpt.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [Role::System, Role::User, Role::Assistant, Role::Assistant]
        );
        let ultrachat =
            parse(r#"{"messages": [{"role": "user", "content": " q "}, {"role": "assistant", "content": "a"}]}"#)
                .unwrap();
        assert_eq!(
            ultrachat[0].content, " q ",
            "kept as written; trimmed when encoded"
        );
    }

    #[test]
    fn unusable_conversations_say_why() {
        let user = r#"{"role": "user", "content": "q"}"#;
        for (json, why) in [
            (r#"{"text": "x"}"#.to_string(), ChatSkip::NoMessages),
            (r#"{"messages": "x"}"#.to_string(), ChatSkip::NoMessages),
            (
                r#"{"messages": []}"#.to_string(),
                ChatSkip::EmptyConversation,
            ),
            (
                format!(r#"{{"messages": [{user}, {{"role": "bot", "content": "a"}}]}}"#),
                ChatSkip::UnknownRole,
            ),
            (
                format!(r#"{{"messages": [{user}, 3]}}"#),
                ChatSkip::UnknownRole,
            ),
            (
                format!(r#"{{"messages": [{user}, {{"role": "assistant", "content": " \n"}}]}}"#),
                ChatSkip::EmptyContent,
            ),
            (
                format!(r#"{{"messages": [{user}, {{"role": "assistant"}}]}}"#),
                ChatSkip::EmptyContent,
            ),
            (
                format!(r#"{{"messages": [{user}, {user}]}}"#),
                ChatSkip::NoAssistantTurn,
            ),
        ] {
            assert_eq!(parse(&json), Err(why), "{json}");
        }
    }

    #[test]
    fn trim_is_pythons_strip() {
        assert_eq!(trim("\u{1f}\u{a0} a b\u{3000}\n"), "a b");
        assert_eq!(
            trim("\u{200b}x"),
            "\u{200b}x",
            "zero-width space is not whitespace"
        );
    }
}
