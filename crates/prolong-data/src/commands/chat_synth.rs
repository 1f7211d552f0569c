use prolong_data::chat::synth::{load_texts, synthesize};
use prolong_data::stage::chat_synth::ChatSynthStep;

/// Generate a small chat set from plain texts: questions about passages.
///
/// Each conversation quotes a passage (a few hundred to a few thousand
/// tokens of consecutive lines of one text) and asks 1 to 3 questions whose
/// answers are computed exactly from it: the line after a quoted line, the
/// word after a quoted phrase, line N, the first or last line, how often a
/// word occurs. Written as {"messages": [...], "source": "TEXT:FIRST-LAST"}
/// JSONL (.jsonl, or zstd for .jsonl.zst), for `prolong-data chat`. The same
/// texts and seed give the same bytes; conversation i does not depend on
/// --conversations (each draws from SplitMix64 seeded by (seed, i)).
///
/// Example:
///   prolong-data chat-synth --texts fixtures/cache/kjv.txt fixtures/cache/gutenberg \
///       --conversations 300 --seed 0 --out data/chat/synth.jsonl.zst
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    step: ChatSynthStep,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let step = &args.step;
    let texts = load_texts(&step.texts)?;
    let (changed, stats) = synthesize(&texts, step.conversations, step.seed, &step.out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
        return Ok(());
    }
    println!(
        "chat-synth seed {} → {}{}",
        stats.seed,
        step.out.display(),
        if changed { "" } else { " (unchanged)" }
    );
    println!("texts          {}", stats.texts);
    println!(
        "conversations  {} ({} messages, {} bytes of JSONL)",
        stats.conversations, stats.messages, stats.jsonl_bytes
    );
    for (kind, n) in &stats.questions {
        println!("question       {n} {kind}");
    }
    Ok(())
}
