use anyhow::Context;
use prolong_data::filter::filter_task;
use prolong_data::stage::filter::FilterStep;
use prolong_data::task::TaskSpec;

use super::progress;
use super::summary;
use super::task_args::{StageArgs, StageCommand};

/// `prolong-data filter` (its help text is `HELP` below).
pub type Args = StageArgs<FilterStep>;

impl StageCommand for FilterStep {
    const HELP: &'static str = r#"Keep the tokenized documents whose length is within [--min-tokens, --max-tokens].

Inputs are tokenized MDS datasets ({domain, input_ids[, mask], length});
the output has the same columns, encodings, compression and hashes (each
input shard's recorded hashes are checked before it is read, so fresh
hashes never vouch for corrupt input). Task R
of --world-size N takes input shards R, R+N, ... (of all inputs in order)
and writes OUT/procR-N/, then OUT/procR-N.stats.json and OUT/procR-N.done;
the last task to finish merges OUT/index.json. A re-run skips completed
tasks and redoes the others. The recipe keeps books and code repositories
of at least 64K tokens (--min-tokens 65536).

Example:
  prolong-data filter data/tok/books --min-tokens 65536 --out data/long/books"#;

    const JSON_HELP: &'static str = "Print the stats as JSON";

    fn run(&self, task: TaskSpec, json: bool) -> anyhow::Result<()> {
        let options = self.options();
        let outcome = progress::following("filter", |p| {
            filter_task(&self.inputs, task.at(&self.out), &options, p)
        })
        .with_context(|| format!("filter into {}", self.out.display()))?;
        let stats = &outcome.stats;
        if json {
            return summary::print_json(stats);
        }
        let max = stats.max_tokens.map_or("∞".to_string(), |m| m.to_string());
        println!(
            "filter {} → {}{}",
            task.name(),
            self.out.display(),
            summary::skipped_note(outcome.skipped, " (already done)")
        );
        println!("keep       {} ≤ length ≤ {max}", stats.min_tokens);
        println!("shards     {}", stats.shards.len());
        println!(
            "documents  {} in, {} out",
            stats.counts.documents_in, stats.counts.documents_out
        );
        println!(
            "tokens     {} in, {} out",
            stats.counts.tokens_in, stats.counts.tokens_out
        );
        for (reason, d) in &stats.dropped {
            println!(
                "dropped    {} documents ({} tokens) {reason}",
                d.documents, d.tokens
            );
        }
        summary::print_length_histogram("kept length", &stats.length_histogram, "documents");
        summary::print_merge_state(outcome.merged, &self.out.join("index.json"));
        Ok(())
    }
}
