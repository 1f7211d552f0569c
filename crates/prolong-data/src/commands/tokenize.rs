use std::path::PathBuf;

use anyhow::Context;
use prolong_data::stage::tokenize::TokenizeStep;
use prolong_data::task::TaskSpec;
use prolong_data::tokenize::Tokenizer;
use prolong_data::tokenize::stage::{input_files, tokenize_task, tokenizer_hash};

use super::progress;
use super::summary;
use super::task_args::{StageArgs, StageCommand};

/// `prolong-data tokenize` (its help text is `HELP` below).
pub type Args = StageArgs<TokenizeStep>;

impl StageCommand for TokenizeStep {
    const HELP: &'static str = r#"Tokenize documents into MDS {domain, input_ids, length}, no BOS/EOS.

Inputs are JSONL (plain, .gz, .zst; the text in --text-field) and .txt
files (one document each), or folders holding them. Byte-level BPE
tokenizers (Llama-3, GPT-2, Qwen) use the fast encoder, with ids identical
to the tokenizers crate; any other tokenizer.json uses the tokenizers crate.
Bad records are counted by reason (with file and line) and skipped.

--select-field/--select-values keep the rows whose (dotted, nested) field
holds one of the values (SlimPajama's books: meta.redpajama_set_name =
RedPajamaBook). --repo-field/--path-field make one document per
repository of per-file rows (The Stack v1), files in path order under
`==> PATH <==` headers; every task then reads every input file and keeps
the repositories that hash to it.

Example:
  prolong-data tokenize fixtures/cache/gutenberg --out data/tok/books \
      --tokenizer fixtures/cache/tokenizer.json --domain book"#;

    const JSON_HELP: &'static str = "Print the summary as JSON";

    fn run(&self, task: TaskSpec, json: bool) -> anyhow::Result<()> {
        let tokenizer_path = self.tokenizer.clone().context("--tokenizer is required")?;
        prolong_data::task::check_apart(&self.out, &self.inputs)?;
        let tokenizer = Tokenizer::from_file(&tokenizer_path)?;
        let files = input_files(&self.inputs)?;
        let options = self.options(&self.out, tokenizer_hash(&tokenizer_path)?);
        // Grouping by repository reads every file in every task.
        let read: Vec<&PathBuf> = if options.fields.group.is_some() {
            files.iter().collect()
        } else {
            task.take(&files).collect()
        };
        let stats = progress::reading(read, "tokenize", |p| {
            tokenize_task(&tokenizer, &files, task.at(&self.out), &options, p)
        })
        .with_context(|| format!("tokenize into {}", self.out.display()))?;
        let Some(stats) = stats.or_else(|| task.at(&self.out).read_stats()) else {
            anyhow::bail!(
                "{}: task {} is marked done but its stats are unreadable",
                self.out.display(),
                task.name()
            );
        };
        if json {
            return summary::print_json(&stats);
        }
        println!("tokenize {} → {}", task.name(), self.out.display());
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
}
