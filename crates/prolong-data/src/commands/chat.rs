use std::path::PathBuf;

use anyhow::Context;
use prolong_data::chat::stage::{ChatOptions, chat_task};
use prolong_data::chat::template::{ChatEncoder, ChatTokens};
use prolong_data::tokenize::Tokenizer;
use prolong_data::tokenize::stage::input_files;

use super::progress;
use super::summary;
use super::task_args::TaskArgs;
use super::text_io_args::TextIoArgs;

/// Tokenize chat conversations for SFT into MDS {domain, input_ids, length, mask}.
///
/// Inputs are JSONL (plain, .gz, .zst), one conversation a line, as
/// {"messages": [{"role", "content"}, ...]} (UltraChat) or
/// {"conversations": [{"from", "value"}, ...]} (ShareGPT: human → user,
/// gpt/chatgpt → assistant); schemas/chat.schema.json. Each conversation is
/// written in the Llama-3 chat format:
///   <|begin_of_text|> then per message
///   <|start_header_id|>{role}<|end_header_id|>\n\n{content.strip()}<|eot_id|>
/// with mask 1 on the assistant's content tokens and their <|eot_id|>, 0
/// elsewhere (pack keeps the mask and gives the EOS it appends mask 0).
/// --tokenizer-config takes bos_token from a tokenizer_config.json and checks
/// that its chat_template is Llama-3's layout. Conversations that are empty,
/// have an unknown role, an empty content or no assistant turn, and malformed
/// lines, are counted by reason (with file and line) and skipped.
///
/// Example:
///   prolong-data chat data/chat/synth.jsonl.zst --out data/tok/chat \
///       --tokenizer fixtures/cache/tokenizer.json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    io: TextIoArgs,
    /// HF tokenizer_config.json whose bos_token to use (default: Llama-3's tokens).
    #[arg(long)]
    tokenizer_config: Option<PathBuf>,
    /// The domain column of every sample (default: the output folder's name).
    #[arg(long)]
    domain: Option<String>,
    /// MDS shard size limit in bytes.
    #[arg(long, default_value_t = prolong_mds::DEFAULT_SIZE_LIMIT)]
    size_limit: u64,
    #[command(flatten)]
    task: TaskArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let task = args.task.resolve()?;
    let tokens = match &args.tokenizer_config {
        Some(path) => ChatTokens::from_tokenizer_config(path)?,
        None => ChatTokens::llama3(),
    };
    let tokenizer = Tokenizer::from_file(&args.io.tokenizer)?;
    let encoder = ChatEncoder::new(&tokenizer, &tokens)
        .with_context(|| format!("tokenizer {}", args.io.tokenizer.display()))?;
    prolong_data::task::check_apart(&args.io.out, &args.io.inputs)?;
    let files = input_files(&args.io.inputs)?;
    let options = ChatOptions {
        domain: summary::domain_or_folder_name(args.domain.clone(), &args.io.out),
        size_limit: args.size_limit,
        tokenizer_hash: prolong_data::tokenize::stage::tokenizer_hash(&args.io.tokenizer)?,
    };
    let bar = progress::bytes_bar(progress::total_bytes(task.take(&files)), "chat");
    let outcome = chat_task(
        &encoder,
        &files,
        &args.io.out,
        task,
        &options,
        &mut |done| bar.set_position(done),
    )
    .with_context(|| format!("chat into {}", args.io.out.display()))?;
    bar.finish_and_clear();
    let stats = outcome.stats;
    if args.json {
        return summary::print_json(&stats);
    }
    println!(
        "chat {} → {}{}",
        task.name(),
        args.io.out.display(),
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
