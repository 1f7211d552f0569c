use anyhow::Context;
use prolong_data::filter::filter_task;
use prolong_data::stage::filter::FilterStep;

use super::progress;
use super::summary;
use super::task_args::TaskArgs;

/// Keep the tokenized documents whose length is within [--min-tokens, --max-tokens].
///
/// Inputs are tokenized MDS datasets ({domain, input_ids[, mask], length});
/// the output has the same columns, encodings, compression and hashes (each
/// input shard's recorded hashes are checked before it is read, so fresh
/// hashes never vouch for corrupt input). Task R
/// of --world-size N takes input shards R, R+N, ... (of all inputs in order)
/// and writes OUT/procR-N/, then OUT/procR-N.stats.json and OUT/procR-N.done;
/// the last task to finish merges OUT/index.json. A re-run skips completed
/// tasks and redoes the others. The recipe keeps books and code repositories
/// of at least 64K tokens (--min-tokens 65536).
///
/// Example:
///   prolong-data filter data/tok/books --min-tokens 65536 --out data/long/books
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    step: FilterStep,
    #[command(flatten)]
    task: TaskArgs,
    /// Print the stats as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let task = args.task.resolve()?;
    let options = args.step.options();
    let bar = progress::bar(0, "filter");
    let outcome = filter_task(
        &args.step.inputs,
        &args.step.out,
        task,
        &options,
        &mut progress::follow(&bar),
    )
    .with_context(|| format!("filter into {}", args.step.out.display()))?;
    bar.finish_and_clear();
    let stats = &outcome.stats;
    if args.json {
        return summary::print_json(stats);
    }
    let max = stats.max_tokens.map_or("∞".to_string(), |m| m.to_string());
    println!(
        "filter {} → {}{}",
        task.name(),
        args.step.out.display(),
        summary::skipped_note(outcome.skipped, " (already done)")
    );
    println!("keep       {} ≤ length ≤ {max}", stats.min_tokens);
    println!("shards     {}", stats.shards.len());
    println!(
        "documents  {} in, {} out",
        stats.documents_in, stats.documents_out
    );
    println!(
        "tokens     {} in, {} out",
        stats.tokens_in, stats.tokens_out
    );
    for (reason, d) in &stats.dropped {
        println!(
            "dropped    {} documents ({} tokens) {reason}",
            d.documents, d.tokens
        );
    }
    summary::print_length_histogram("kept length", &stats.length_histogram, "documents");
    summary::print_merge_state(outcome.merged, &args.step.out.join("index.json"));
    Ok(())
}
