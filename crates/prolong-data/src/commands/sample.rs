use anyhow::Context;
use prolong_data::sample::sample_task;
use prolong_data::stage::sample::SampleStep;
use prolong_data::task::TaskSpec;

use super::progress;
use super::summary;
use super::task_args::{StageArgs, StageCommand};

/// `prolong-data sample` (its help text is `HELP` below).
pub type Args = StageArgs<SampleStep>;

impl StageCommand for SampleStep {
    const HELP: &'static str = r#"Draw documents from tokenized sources to token shares of a total budget.

Each SOURCE is [NAME=]DIR@SHARE (NAME defaults to DIR's folder name).
Each source's target is round(TOTAL × share / Σ shares) tokens. Documents
are visited in a seeded random order and taken whole while they fit; the
first one that would overshoot is taken only if that lands closer to the
target, so each source is within half a document of its target. Nothing
is truncated or repeated: a source smaller than its target is taken whole
and its shortfall reported.

Every task computes the same global draw (reading every document's
length); task R of --world-size N writes the documents drawn from input
shards R, R+N, ... (of all sources in order) to OUT/NAME/procR-N/ (MDS,
the input's columns, in input order), then OUT/procR-N.stats.json and
OUT/procR-N.done. The last task to finish merges OUT/NAME/index.json and
writes OUT/sample.json (requested and achieved tokens and shares). The
documents drawn do not depend on N. A re-run skips completed tasks. Same
inputs, seed and N: byte-identical outputs.

Example (ShortMix):
  prolong-data sample --tokens 8000000000 --seed 0 --out data/shortmix \
      data/tok/fineweb@25 data/tok/fineweb-edu@25 data/tok/wikipedia@10 \
      data/tok/tulu-v2@10 data/tok/stackexchange@10 data/tok/arxiv@10 \
      data/tok/openwebmath@10"#;

    const JSON_HELP: &'static str = "Print the report as JSON";

    fn run(&self, task: TaskSpec, json: bool) -> anyhow::Result<()> {
        let sources = self.sources(|p| anyhow::Ok(p.to_path_buf()))?;
        let options = self.options();
        let outcome = progress::following("sample", |p| {
            sample_task(&sources, task.at(&self.out), &options, p)
        })
        .with_context(|| format!("sample into {}", self.out.display()))?;
        let report = &outcome.report;
        if json {
            return summary::print_json(report);
        }
        println!(
            "sample {} → {}{} (seed {})",
            task.name(),
            self.out.display(),
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
            stats.counts.documents_out,
            stats.counts.documents_in,
            stats.counts.tokens_out,
            stats.counts.tokens_in
        );
        summary::print_merge_state(outcome.merged, &self.out.join("sample.json"));
        for s in report.sources.iter().filter(|s| s.shortfall_tokens > 0) {
            eprintln!(
                "warning: {} holds {} tokens, {} short of its target {}: taken whole",
                s.name, s.available_tokens, s.shortfall_tokens, s.target_tokens
            );
        }
        Ok(())
    }
}
