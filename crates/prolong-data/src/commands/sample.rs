use anyhow::Context;
use prolong_data::sample::sample_task;
use prolong_data::stage::sample::SampleStep;

use super::progress;
use super::summary;
use super::task_args::TaskArgs;

/// Draw documents from tokenized sources to token shares of a total budget.
///
/// Each SOURCE is [NAME=]DIR@SHARE (NAME defaults to DIR's folder name).
/// Each source's target is round(TOTAL × share / Σ shares) tokens. Documents
/// are visited in a seeded random order and taken whole while they fit; the
/// first one that would overshoot is taken only if that lands closer to the
/// target, so each source is within half a document of its target. Nothing
/// is truncated or repeated: a source smaller than its target is taken whole
/// and its shortfall reported.
///
/// Every task computes the same global draw (reading every document's
/// length); task R of --world-size N writes the documents drawn from input
/// shards R, R+N, ... (of all sources in order) to OUT/NAME/procR-N/ (MDS,
/// the input's columns, in input order), then OUT/procR-N.stats.json and
/// OUT/procR-N.done. The last task to finish merges OUT/NAME/index.json and
/// writes OUT/sample.json (requested and achieved tokens and shares). The
/// documents drawn do not depend on N. A re-run skips completed tasks. Same
/// inputs, seed and N: byte-identical outputs.
///
/// Example (ShortMix):
///   prolong-data sample --tokens 8000000000 --seed 0 --out data/shortmix \
///       data/tok/fineweb@25 data/tok/fineweb-edu@25 data/tok/wikipedia@10 \
///       data/tok/tulu-v2@10 data/tok/stackexchange@10 data/tok/arxiv@10 \
///       data/tok/openwebmath@10
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    step: SampleStep,
    #[command(flatten)]
    task: TaskArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let task = args.task.resolve()?;
    let step = &args.step;
    let sources = step.sources(|p| anyhow::Ok(p.to_path_buf()))?;
    let options = step.options();
    let bar = progress::bar(0, "sample");
    let outcome = sample_task(
        &sources,
        &step.out,
        task,
        &options,
        &mut progress::follow(&bar),
    )
    .with_context(|| format!("sample into {}", step.out.display()))?;
    bar.finish_and_clear();
    let report = &outcome.report;
    if args.json {
        return summary::print_json(report);
    }
    println!(
        "sample {} → {}{} (seed {})",
        task.name(),
        step.out.display(),
        summary::skipped_note(outcome.skipped, " (already done)"),
        report.seed
    );
    println!(
        "{:<16} {:>9} {:>9} {:>14} {:>14} {:>10} {:>10}",
        "source", "share", "achieved", "target", "tokens", "deviation", "documents"
    );
    for s in &report.sources {
        println!(
            "{:<16} {:>8.3}% {:>8.3}% {:>14} {:>14} {:>+10} {:>10}",
            s.name,
            100.0 * s.requested_share,
            100.0 * s.achieved_share,
            s.target_tokens,
            s.achieved_tokens,
            s.deviation_tokens,
            s.documents
        );
    }
    println!(
        "total {} tokens of {} requested",
        report.achieved_tokens, report.total_tokens
    );
    let stats = &outcome.stats;
    println!(
        "this task {} of {} shards' documents ({} of {} tokens) written",
        stats.documents_out, stats.documents_in, stats.tokens_out, stats.tokens_in
    );
    summary::print_merge_state(outcome.merged, &step.out.join("sample.json"));
    for s in report.sources.iter().filter(|s| s.shortfall_tokens > 0) {
        eprintln!(
            "warning: {} holds {} tokens, {} short of its target {}: taken whole",
            s.name, s.available_tokens, s.shortfall_tokens, s.target_tokens
        );
    }
    Ok(())
}
