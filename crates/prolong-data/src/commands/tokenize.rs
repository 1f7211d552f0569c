use std::path::PathBuf;

use anyhow::Context;
use prolong_data::documents::{GroupFields, Select};
use prolong_data::tokenize::Tokenizer;
use prolong_data::tokenize::stage::{TokenizeOptions, input_files, tokenize_task, tokenizer_hash};

use super::progress;
use super::summary;
use super::task_args::TaskArgs;
use super::text_io_args::TextIoArgs;

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
    io: TextIoArgs,
    /// The domain column of every document (default: the output folder's name).
    #[arg(long)]
    domain: Option<String>,
    /// JSON field holding the text.
    #[arg(long, default_value = "text")]
    text_field: String,
    /// JSON field holding the id (used in reports).
    #[arg(long)]
    id_field: Option<String>,
    /// Keep only rows whose FIELD (dotted path) holds one of --select-values.
    #[arg(long, value_name = "FIELD", requires = "select_values")]
    select_field: Option<String>,
    /// The values --select-field keeps, comma-separated.
    #[arg(long, value_delimiter = ',', requires = "select_field")]
    select_values: Vec<String>,
    /// Group rows into one document per repository named by this field
    /// (The Stack v1: max_stars_repo_name).
    #[arg(long, value_name = "FIELD", requires = "path_field")]
    repo_field: Option<String>,
    /// The field holding a row's path in its repository (max_stars_repo_path).
    #[arg(long, value_name = "FIELD", requires = "repo_field")]
    path_field: Option<String>,
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
    prolong_data::task::check_apart(&args.io.out, &args.io.inputs)?;
    let tokenizer = Tokenizer::from_file(&args.io.tokenizer)?;
    let files = input_files(&args.io.inputs)?;
    let options = TokenizeOptions {
        domain: summary::domain_or_folder_name(args.domain.clone(), &args.io.out),
        text_field: args.text_field,
        id_field: args.id_field,
        select: args.select_field.map(|field| Select {
            field,
            values: args.select_values,
        }),
        group_by_repo: args
            .repo_field
            .zip(args.path_field)
            .map(|(repo, path)| GroupFields { repo, path }),
        size_limit: args.size_limit,
        tokenizer_hash: tokenizer_hash(&args.io.tokenizer)?,
    };
    // Grouping by repository reads every file in every task.
    let read: Vec<&PathBuf> = if options.group_by_repo.is_some() {
        files.iter().collect()
    } else {
        task.take(&files).collect()
    };
    let bar = progress::bytes_bar(progress::total_bytes(read), "tokenize");
    let stats = tokenize_task(
        &tokenizer,
        &files,
        &args.io.out,
        task,
        &options,
        &mut |done| bar.set_position(done),
    )
    .with_context(|| format!("tokenize into {}", args.io.out.display()))?;
    bar.finish_and_clear();
    let Some(stats) = stats.or_else(|| task.read_stats(&args.io.out)) else {
        anyhow::bail!(
            "{}: task {} is marked done but its stats are unreadable",
            args.io.out.display(),
            task.name()
        );
    };
    if args.json {
        return summary::print_json(&stats);
    }
    println!("tokenize {} → {}", task.name(), args.io.out.display());
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
