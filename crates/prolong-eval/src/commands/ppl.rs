//! `prolong-eval ppl`: loss and perplexity of a checkpoint by token position.

use std::path::PathBuf;

use anyhow::Context;
use candle_core::{DType, Device};
use prolong_eval::ppl;
use prolong_train::Llama;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// HF checkpoint directory (config.json + safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Packed MDS dataset (input_ids, optional indices and mask), as for training.
    #[arg(long)]
    pub data: PathBuf,
    /// Evaluate this many sequences (a fixed seeded sample; default: all of them).
    #[arg(long)]
    pub sequences: Option<usize>,
    /// Write ppl.json and ppl.svg into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the JSON report on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let model = Llama::load(&args.model, DType::F32, &Device::Cpu)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    let report = ppl::evaluate(
        &model,
        &args.model,
        &args.data,
        args.sequences,
        |i, n, loss| match loss {
            Some(l) => eprintln!("sequence {i}/{n}: loss {l:.4}"),
            None => eprintln!("sequence {i}/{n}: no label tokens"),
        },
    )?;
    if let Some(dir) = &args.out {
        ppl::write_report(&report, dir)?;
        eprintln!("wrote {}/ppl.json and ppl.svg", dir.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", ppl::table(&report));
    }
    Ok(())
}
