use std::path::PathBuf;

use anyhow::Context;
use prolong_data::stage::tokenize::TokenizeStep;
use prolong_data::tokenize::Tokenizer;
use prolong_data::tokenize::stage::{input_files, tokenize_task, tokenizer_hash};

use super::progress;
use super::summary;
use super::task_args::TaskArgs;

/// Tokenize documents into MDS {domain, input_ids, length}, no BOS/EOS.
///
/// Inputs are JSONL (plain, .gz, .zst; the text in --text-field) and .txt
/// files (one document each), or folders holding them. Byte-level BPE
/// tokenizers (Llama-3, GPT-2, Qwen) use the fast encoder, with ids identical
/// to the tokenizers crate; any other tokenizer.json uses the tokenizers crate.
/// Bad records are counted by reason (with file and line) and skipped.
///
/// --select-field/--select-values keep the rows whose (dotted, nested) field
/// holds one of the values (SlimPajama's books: meta.redpajama_set_name =
/// RedPajamaBook). --repo-field/--path-field make one document per
/// repository of per-file rows (The Stack v1), files in path order under
/// `==> PATH <==` headers; every task then reads every input file and keeps
/// the repositories that hash to it.
///
/// Example:
///   prolong-data tokenize fixtures/cache/gutenberg --out data/tok/books \
///       --tokenizer fixtures/cache/tokenizer.json --domain book
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    step: TokenizeStep,
    #[command(flatten)]
    task: TaskArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let task = args.task.resolve()?;
    let step = &args.step;
    let tokenizer_path = step.tokenizer.clone().context("--tokenizer is required")?;
    prolong_data::task::check_apart(&step.out, &step.inputs)?;
    let tokenizer = Tokenizer::from_file(&tokenizer_path)?;
    let files = input_files(&step.inputs)?;
    let options = step.options(&step.out, tokenizer_hash(&tokenizer_path)?);
    // Grouping by repository reads every file in every task.
    let read: Vec<&PathBuf> = if options.group_by_repo.is_some() {
        files.iter().collect()
    } else {
        task.take(&files).collect()
    };
    let bar = progress::bytes_bar(progress::total_bytes(read), "tokenize");
    let stats = tokenize_task(&tokenizer, &files, &step.out, task, &options, &mut |done| {
        bar.set_position(done)
    })
    .with_context(|| format!("tokenize into {}", step.out.display()))?;
    bar.finish_and_clear();
    let Some(stats) = stats.or_else(|| task.read_stats(&step.out)) else {
        anyhow::bail!(
            "{}: task {} is marked done but its stats are unreadable",
            step.out.display(),
            task.name()
        );
    };
    if args.json {
        return summary::print_json(&stats);
    }
    println!("tokenize {} → {}", task.name(), step.out.display());
    println!(
        "encoder    {}",
        if stats.fast_encoder {
            "fast byte-level BPE"
        } else {
            "tokenizers crate"
        }
    );
    println!("files      {}", stats.files.len());
    println!(
        "documents  {} in, {} out",
        stats.documents_in, stats.documents_out
    );
    println!(
        "tokens     {} ({} bytes of text)",
        stats.tokens, stats.text_bytes
    );
    summary::print_skipped(&stats.skipped, 11);
    summary::print_length_histogram("length", &stats.length_histogram, "documents");
    Ok(())
}
