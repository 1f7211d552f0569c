use anyhow::Context;
use prolong_data::chat::stage::chat_task;
use prolong_data::chat::template::{ChatEncoder, ChatTokens};
use prolong_data::stage::chat::ChatStep;
use prolong_data::task::TaskSpec;
use prolong_data::tokenize::Tokenizer;
use prolong_data::tokenize::stage::input_files;

use super::progress;
use super::summary;
use super::task_args::{StageArgs, StageCommand};

/// `prolong-data chat` (its help text is `HELP` below).
pub type Args = StageArgs<ChatStep>;

impl StageCommand for ChatStep {
    const HELP: &'static str = r#"Tokenize chat conversations for SFT into MDS {domain, input_ids, length, mask}.

Inputs are JSONL (plain, .gz, .zst), one conversation a line, as
{"messages": [{"role", "content"}, ...]} (UltraChat) or
{"conversations": [{"from", "value"}, ...]} (ShareGPT: human → user,
gpt/chatgpt → assistant); schemas/chat.schema.json. Each conversation is
written in the Llama-3 chat format:
  <|begin_of_text|> then per message
  <|start_header_id|>{role}<|end_header_id|>\n\n{content.strip()}<|eot_id|>
with mask 1 on the assistant's content tokens and their <|eot_id|>, 0
elsewhere (pack keeps the mask and gives the EOS it appends mask 0).
--tokenizer-config takes bos_token from a tokenizer_config.json and checks
that its chat_template is Llama-3's layout. Conversations that are empty,
have an unknown role, an empty content or no assistant turn, and malformed
lines, are counted by reason (with file and line) and skipped.

Example:
  prolong-data chat data/chat/synth.jsonl.zst --out data/tok/chat \
      --tokenizer fixtures/cache/tokenizer.json"#;

    const JSON_HELP: &'static str = "Print the summary as JSON";

    fn run(&self, task: TaskSpec, json: bool) -> anyhow::Result<()> {
        let tokenizer_path = self.tokenizer.clone().context("--tokenizer is required")?;
        let tokens = match &self.tokenizer_config {
            Some(path) => ChatTokens::from_tokenizer_config(path)?,
            None => ChatTokens::llama3(),
        };
        let tokenizer = Tokenizer::from_file(&tokenizer_path)?;
        let encoder = ChatEncoder::new(&tokenizer, &tokens)
            .with_context(|| format!("tokenizer {}", tokenizer_path.display()))?;
        prolong_data::task::check_apart(&self.out, &self.inputs)?;
        let files = input_files(&self.inputs)?;
        let options = self.options(
            &self.out,
            prolong_data::tokenize::stage::tokenizer_hash(&tokenizer_path)?,
        );
        let outcome = progress::reading(task.take(&files), "chat", |p| {
            chat_task(&encoder, &files, task.at(&self.out), &options, p)
        })
        .with_context(|| format!("chat into {}", self.out.display()))?;
        let stats = outcome.stats;
        if json {
            return summary::print_json(&stats);
        }
        println!(
            "chat {} → {}{}",
            task.name(),
            self.out.display(),
            summary::skipped_note(outcome.skipped, " (already complete)")
        );
        if let Some(t) = &stats.special_tokens {
            println!(
                "tokens         {} {}, {} {}, {} {}, {} {}",
                t.bos.text,
                t.bos.id,
                t.start_header.text,
                t.start_header.id,
                t.end_header.text,
                t.end_header.id,
                t.end_of_turn.text,
                t.end_of_turn.id
            );
        }
        println!("files          {}", stats.files.len());
        println!(
            "conversations  {} in, {} out ({} messages)",
            stats.conversations_in, stats.conversations_out, stats.messages
        );
        println!(
            "tokens         {} ({} trained on, mask 1)",
            stats.tokens, stats.trained_tokens
        );
        summary::print_skipped(&stats.skipped, 15);
        summary::print_length_histogram("length", &stats.length_histogram, "conversations");
        Ok(())
    }
}
