//! `prolong-data`: the corpus half of the ProLong recipe, one subcommand per
//! stage. Library code lives in the crate; each command only parses its
//! arguments, calls it, and prints a summary.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Subcommand};

mod commands;

#[derive(clap::Parser)]
#[command(
    name = "prolong-data",
    version,
    about = "Build long-context training data: tokenize, pack and inspect MDS datasets",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: not worth boxing the larger options. A stage's own
// command (`commands::task_args::StageArgs`) has its help text here, on its
// variant; the other commands' is on their `Args`.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    Inspect(commands::inspect::Args),
    Verify(commands::verify::Args),
    Merge(commands::merge::Args),
    Pack(commands::pack::Args),
    /// Turn a folder of code repositories into documents, one per repository.
    ///
    /// Each entry of INPUT_DIR is a repository: a git repository (read from its
    /// HEAD commit, bare or not; nothing is checked out) or a plain folder
    /// (walked honouring its .gitignore files). Its kept files, in byte order of
    /// their paths, each after a header line `==> PATH <==` and separated by a
    /// blank line, make the document's text. Binary, oversized, vendored and
    /// generated files, and those failing the BigCode line filters, are skipped
    /// and counted by reason; symbolic links and submodules are never followed.
    ///
    /// Every byte comes from inside the repository's own entry: no git config
    /// (the repository's, /etc/gitconfig, ~/.gitconfig) and no GIT_* variable
    /// is read; a repository pointing elsewhere (a .git file or link, commondir,
    /// objects/info/alternates, a linked objects or refs folder) is skipped as
    /// redirected_git_dir. A missing blob (a partial clone) skips that file
    /// (missing_object); a repository over --max-files entries, --max-depth
    /// path components or --max-repo-bytes bytes read is skipped whole
    /// (too_many_files, too_deep, too_large), found while the tree is streamed,
    /// so a "tree bomb" never fills memory.
    ///
    /// --dedup-files keeps each content (git blob id) in the first entry of
    /// INPUT_DIR, in sorted order, holding it past the path filters, whatever
    /// --world-size: each task first surveys the trees (and blob sizes) of its
    /// entries and of every earlier entry (plain folders are read for it).
    ///
    /// Task R of N (--rank/--world-size, by default SLURM_ARRAY_TASK_ID /
    /// SLURM_ARRAY_TASK_COUNT, else 0 of 1) takes entries R, R+N, ... in sorted
    /// order and writes OUT_DIR/part-RRRRR-of-NNNNN.jsonl.zst, then its
    /// .stats.json, then its .done marker; a completed task is skipped on re-run,
    /// and a re-run with other settings, input folder or entries is refused.
    ///
    /// Example: prolong-data repos data/repos --out data/docs/code --dedup-files
    #[command(verbatim_doc_comment)]
    Repos(commands::repos::Args),
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
    #[command(verbatim_doc_comment)]
    Tokenize(commands::tokenize::Args),
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
    #[command(verbatim_doc_comment)]
    Chat(commands::chat::Args),
    ChatSynth(commands::chat_synth::Args),
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
    #[command(verbatim_doc_comment)]
    Filter(commands::filter::Args),
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
    #[command(verbatim_doc_comment)]
    Sample(commands::sample::Args),
    Mix(commands::mix::Args),
    Run(commands::run::Args),
    Stats(commands::stats::Args),
    Schema(commands::schema::Args),
}

fn main() -> ExitCode {
    prolong_mds::closed_stdout::exit_quietly_on_closed_stdout();
    // Registered stages without a command of their own get the generic one.
    let mut command = Cli::command();
    let mut generic = Vec::new();
    for info in prolong_data::stage::STAGES {
        if command.find_subcommand(info.name).is_none() {
            command = command.subcommand(commands::stage::command(info));
            generic.push(info);
        }
    }
    let matches = command.get_matches();
    let stage = matches
        .subcommand()
        .and_then(|(name, sub)| Some((*generic.iter().find(|i| i.name == name)?, sub)));
    let result = match stage {
        Some((info, sub)) => commands::stage::run(info, sub),
        None => match Cli::from_arg_matches(&matches) {
            Ok(cli) => run(cli.command),
            Err(e) => e.exit(),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", prolong_mds::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Merge(args) => commands::merge::run(args),
        Command::Pack(args) => commands::pack::run(args),
        Command::Repos(args) => args.run(),
        Command::Tokenize(args) => args.run(),
        Command::Chat(args) => args.run(),
        Command::ChatSynth(args) => commands::chat_synth::run(args),
        Command::Filter(args) => args.run(),
        Command::Sample(args) => args.run(),
        Command::Mix(args) => commands::mix::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Stats(args) => commands::stats::run(args),
        Command::Schema(args) => commands::schema::run(args),
    }
}
